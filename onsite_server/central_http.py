"""How the client to central talks HTTP: a requests Session that does its per-request work
once per address, and a direct path to the kept-alive connection for an address where that work
would change nothing (no proxy, no ``~/.netrc`` entry)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs
    from requests.sessions import _Settings


def origin(url: str) -> tuple[str, str]:
    """Return a URL's scheme and address (host and port), lower-cased."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _NoAuth(requests.auth.AuthBase):
    """No credentials from ~/.netrc: the request goes as it is."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


_NO_AUTH = _NoAuth()


class _SteadyAdapter(HTTPAdapter):
    """An HTTPAdapter that works out a connection pool's key once per address and TLS setting.

    requests asks ``os.path.isdir`` of the CA bundle (``REQUESTS_CA_BUNDLE``) on every
    request, plain http:// included, to tell a file from a directory: one ``stat`` a request,
    and on a worker whose other thread holds the GIL, a wait to take it back after each.
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[tuple[Any, ...], tuple[_HostParams, _PoolKwargs]] = {}

    def build_connection_pool_key_attributes(
            self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        """Return requests' pool key for the request, computed once per address and setting."""
        parts = urlsplit(str(request.url))
        key = (parts.scheme.lower(), parts.hostname, parts.port, verify, cert)
        known = self._keys.get(key)
        if known is None:
            known = super().build_connection_pool_key_attributes(request, verify, cert)
            self._keys[key] = known
        host, pool = known
        return host.copy(), pool.copy()  # urllib3 may change what it is given


REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Answer:
    """What ``CentralClient`` reads of an answer sent straight through urllib3 (the part of
    ``requests.Response`` it uses)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)

    def json(self) -> Any:
        """The body, parsed as JSON (ValueError when it is not)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", "replace")


@dataclass
class _Direct:
    """Requests to one address sent through the connection pool requests set up for it.

    requests does a good deal per request besides sending: it prepares the request (hooks,
    cookies, auth, the body encoding), merges the session's settings, checks the CA bundle
    (``cert_verify``) and builds a ``Response``. For an address with no proxy and no
    ``~/.netrc`` entry, none of that changes between requests, so the bytes go to the same
    urllib3 pool (the same kept-alive connection, the same TLS settings: requests built the
    pool) with the session's default headers.
    """

    adapter: HTTPAdapter
    prepared: requests.PreparedRequest  # the address, for the pool's key
    verify: Any
    cert: Any
    headers: dict[str, str]
    pool: Any = None

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Answer:
        """Send one request; urllib3's and the socket's errors propagate."""
        pool: Any = self.adapter.get_connection_with_tls_context(self.prepared, self.verify,
                                                                 cert=self.cert)
        if pool is not self.pool:  # a pool new to us (the first, or one made again)
            self.adapter.cert_verify(pool, url, self.verify, self.cert)  # type: ignore[no-untyped-call]
            self.pool = pool
        sent = {**self.headers, **headers}
        if body is not None:
            sent["Content-Length"] = str(len(body))
        target = urlsplit(url)._replace(scheme="", netloc="", fragment="").geturl() or "/"
        resp = pool.urlopen(method, target,
                            body=body, headers=sent, redirect=False, assert_same_host=False,
                            preload_content=True, decode_content=True,
                            retries=self.adapter.max_retries,
                            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))
        return Answer(resp.status, resp.data, resp.headers)


class SteadySession(requests.Session):
    """A requests Session that reads the environment's proxy and CA settings once per
    address, not once per request.

    requests re-reads the whole environment on every request (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``: some 150 ``os.environ`` reads, and ``~/.netrc``) when its settings
    come from there; a worker forwarding a backlog spent a fifth of its HTTP time on it. The
    environment of a running process does not change, so the answer for each scheme and host
    (and the session's own settings) is kept, and so is whether the CA bundle is a file or a
    directory (``_SteadyAdapter``). Settings given per request are merged as before.
    """

    def __init__(self) -> None:
        super().__init__()
        self._from_env: dict[tuple[Any, ...], _Settings] = {}
        self._netrc: dict[tuple[str, str], Any] = {}
        self._direct: dict[tuple[str, str], _Direct | None] = {}
        self.mount("https://", _SteadyAdapter())
        self.mount("http://", _SteadyAdapter())

    def direct(self, url: str) -> _Direct | None:
        """Return how to send to url's address without requests' per-request work, or None
        where requests must do it (a proxy, a ``~/.netrc`` entry, cookies or hooks, or an
        adapter of someone else's mounted)."""
        key = origin(url)
        if key not in self._direct:
            self._direct[key] = self._direct_for(url)
        found = self._direct[key]
        if found is not None and (self.cookies or any(self.hooks.values())):
            return None
        return found

    def _direct_for(self, url: str) -> _Direct | None:
        adapter = self.get_adapter(url)
        if not isinstance(adapter, _SteadyAdapter) or self.auth is not None:
            return None
        if self.trust_env and self._netrc_auth(url) is not _NO_AUTH:
            return None
        settings = self.merge_environment_settings(url, {}, None, None, None)
        if requests.utils.select_proxy(url, settings["proxies"]):
            return None
        prepared = requests.PreparedRequest()
        prepared.prepare(method="GET", url=url)
        return _Direct(adapter, prepared, settings["verify"], settings["cert"],
                       {str(k): str(v) for k, v in self.headers.items()})

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare a request; the ~/.netrc lookup (two stat calls) is made once per address."""
        if self.trust_env and not request.auth and not self.auth:
            request.auth = self._netrc_auth(str(request.url))
        return super().prepare_request(request)

    def _netrc_auth(self, url: str) -> Any:
        """The ``~/.netrc`` credentials for url's address (``_NO_AUTH``: none), read once."""
        key = origin(url)
        if key not in self._netrc:
            self._netrc[key] = requests.utils.get_netrc_auth(url) or _NO_AUTH
        return self._netrc[key]

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any,
                                   stream: bool | None, verify: Any, cert: Any) -> _Settings:
        """Return requests' settings for url, the environment's part read once per address."""
        if proxies or stream is not None or verify is not None or cert is not None \
                or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (*origin(url.decode() if isinstance(url, bytes) else str(url)), self.verify,
               str(self.cert), self.stream, tuple(sorted(self.proxies.items())))
        settings = self._from_env.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._from_env[key] = settings
        fresh = settings.copy()  # requests may change what it is given
        fresh["proxies"] = dict(settings["proxies"])
        return fresh
