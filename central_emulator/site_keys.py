"""Sites whose published keys central may fetch: when a token names a key id central has
not received yet (a site's first link, scanned before its first sync), central reads the
site's ``/.well-known/jwks.json`` once and tries again.

Only where a site registered its JWKS address (``SITE_JWKS_URLS``, or ``POST /_sites``) and
central can reach it; otherwise the keys that sites send are all central has. A fetch per
address at most every ``min_interval`` seconds, so a stream of unknown or forged tokens
cannot make central hammer a site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .store import FhirError, Store

Fetch = Callable[[str], Any]


def _get_json(url: str) -> Any:
    answer = requests.get(url, timeout=5, headers={"Accept": "application/json"})
    answer.raise_for_status()
    return answer.json()


@dataclass
class SiteKeys:
    """Registered JWKS addresses by site, and when each was last fetched."""

    urls: dict[str, str] = field(default_factory=dict)
    min_interval: float = 30.0
    fetch: Fetch = _get_json
    _fetched: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, site: str, url: str) -> None:
        """Remember where a site publishes its keys (an http or https address)."""
        if not site:
            raise ValueError("site is required")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"jwks_url must be an http(s) address, not {url!r}")
        with self._lock:
            self.urls[site] = url
            self._fetched.pop(url, None)

    def refresh(self, store: Store) -> int:
        """Fetch the key sets not fetched recently into the store; return how many came."""
        now = time.monotonic()
        with self._lock:
            due = [u for u in self.urls.values()
                   if now - self._fetched.get(u, -self.min_interval) >= self.min_interval]
            for url in due:
                self._fetched[url] = now
        took = 0
        for url in due:
            try:
                store.add_keys(self.fetch(url))
            except (requests.RequestException, ValueError, FhirError):
                continue  # unreachable or not a key set: the keys the site sends still count
            took += 1
        return took
