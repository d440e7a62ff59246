"""Telling central the site's token keys, on their own and before a token needs them.

The keys (with their statuses and retirements) and the revoked token ids also travel with
every outbox bundle, but a site with nothing to send would never tell central about a new,
rotated or retired key. So:

- each sync cycle pushes them whenever they differ from what central last accepted;
- issuing an advocate link or a ticket first makes sure central holds the key that signs it
  (a QR scanned minutes after a fresh server's first start must open, issue 15 §5);
- ``onsite-server keys retire`` pushes the retirement at once.

What central last accepted is written to ``central-keys.json`` in the key folder (its digest
and key ids), shared by every process of the site.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from shared.tokens import Purpose

from ..fhir import Entries, add_keys, validate
from ..models import utcnow
from .advocates import revoked_token_ids
from .signing import KeyStore
from .signing import _folder_state as folder_state
from .tickets import revoked_ticket_ids

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("onsite_server.central_keys")

STATE_FILE = "central-keys.json"
KeySnapshot = tuple[dict[str, Any], list[str]]
# After a failed push at issue time, links are issued without trying again for this long, so
# a kiosk does not wait on a central that is down for every member.
RETRY_AFTER_SECONDS = 60.0
_failures: dict[str, float] = {}
_failures_lock = threading.Lock()


class Transactor(Protocol):
    """What a push needs of the central client."""

    def transaction(self, bundle: Any) -> Any:
        """POST a transaction Bundle."""


def snapshot(session: Session, keys: KeyStore, grace: timedelta,
             now: datetime | None = None) -> KeySnapshot:
    """Return the site's JWK Set (statuses, retirements) and the revoked, unexpired token ids."""
    moment = now or utcnow()
    revoked = revoked_token_ids(session, moment) | revoked_ticket_ids(session, grace, moment)
    return keys.jwks(), sorted(revoked)


def digest(keys: KeySnapshot) -> str:
    """Return a stable digest of a key snapshot (what changed since central last took it)."""
    text = json.dumps(list(keys), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_bundle(site: str, keys: KeySnapshot) -> dict[str, Any]:
    """Return the transaction Bundle that gives central the site's keys and revocations."""
    entries = Entries()
    add_keys(entries, site, *keys)
    bundle = entries.bundle()
    validate(bundle)
    return bundle


def accepted(keys: KeyStore) -> dict[str, Any]:
    """Return what central last accepted: {"digest", "kids", "at"} (empty before the first)."""
    path = keys.folder / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def central_holds(keys: KeyStore, kid: str) -> bool:
    """Say whether central has accepted a key set listing this key id."""
    return kid in set(accepted(keys).get("kids", []))


def push(client: Transactor, keys: KeyStore, site: str, snap: KeySnapshot) -> None:
    """Send the keys to central and record that it accepted them (raises CentralError)."""
    client.transaction(key_bundle(site, snap))
    previous = set(accepted(keys).get("kids", []))
    kids = {str(k["kid"]) for k in snap[0].get("keys", [])}
    # Central keeps every key it was given (retired ones excepted), so the ids accumulate.
    keys.save_json(STATE_FILE, {"digest": digest(snap), "kids": sorted(previous | kids),
                                  "at": utcnow().isoformat(timespec="seconds")})


def push_if_changed(transaction: Callable[..., Any], client: Transactor, keys: KeyStore,
                    site: str, grace: timedelta) -> bool:
    """Push the keys when they differ from what central last accepted; return whether sent."""
    with transaction(write=False) as session:
        snap = snapshot(session, keys, grace)
    if accepted(keys).get("digest") == digest(snap):
        return False
    push(client, keys, site, snap)
    return True


@dataclass(frozen=True)
class KeyState:
    """One signing key as the sync health page shows it."""

    kid: str
    purpose: str
    status: str  # active, rotated or retired
    since: datetime | None
    at_central: bool  # central accepted a key set listing it (not said of a retired key)


def overview(keys: KeyStore) -> list[KeyState]:
    """Return every key with its status and whether central holds it."""
    held = set(accepted(keys).get("kids", []))
    return [KeyState(kid=info.kid, purpose=info.purpose.label, status=info.status,
                     since=info.since,
                     at_central=info.status != "retired" and info.kid in held)
            for info in keys.describe()]


# (key folder, purpose) -> the folder's state when last read, and whether central then held
# the key that signs. Every booking and advocate link asks; the folder's state (one listing
# and a stat per file) costs a third of finding the current key and reading what central
# accepted, and changes whenever either does (a key made, rotated or retired, central's
# acceptance written: every process of the site sees it at its next request).
_held: dict[tuple[Path, Purpose], tuple[tuple[Any, ...], bool]] = {}


def _holds_current(keys: KeyStore, purpose: Purpose) -> bool:
    """``central_holds`` for the key that now signs ``purpose`` tokens, read again only
    when the key folder changed."""
    state = folder_state(keys.folder)
    known = _held.get((keys.folder, purpose))
    if state is not None and known is not None and known[0] == state:
        return known[1]
    held = central_holds(keys, keys.current_kid(purpose))
    if state is not None:  # read before the answer: a change meanwhile is read again next
        _held[(keys.folder, purpose)] = (state, held)
    return held


def ensure_published(settings: Settings, transaction: Callable[..., Any],
                     purpose: Purpose) -> bool:
    """Make sure central holds the key that now signs ``purpose`` tokens; return whether it
    does. Never raises: a central that is down only delays the QR's first scan.

    Called before a token is issued. Once central holds the key it costs a look at the key
    folder (``_holds_current``); until then it pushes with a short timeout
    (CENTRAL_KEY_PUSH_TIMEOUT_SECONDS, 0 turns it off), and after a failure it waits
    RETRY_AFTER_SECONDS before trying again.
    """
    from ..central import CentralError, client_for
    from ..config import ConfigError

    keys = KeyStore(Path(settings.signing_key_dir))
    if _holds_current(keys, purpose):
        return True
    timeout = settings.central_key_push_timeout_seconds
    if timeout <= 0:
        return False
    where = str(keys.folder)
    with _failures_lock:
        if time.monotonic() - _failures.get(where, -RETRY_AFTER_SECONDS) < RETRY_AFTER_SECONDS:
            return False
    try:
        client = client_for(settings.central)
        client.connect_timeout = client.read_timeout = timeout
        with transaction(write=False) as session:
            snap = snapshot(session, keys, timedelta(days=settings.ticket_grace_days))
        push(client, keys, settings.site_slug, snap)
    except (CentralError, ConfigError, OSError) as exc:
        with _failures_lock:
            _failures[where] = time.monotonic()
        log.warning("central does not hold the %s key yet and the push failed (%s); the sync "
                    "worker sends it", purpose.label, exc)
        return False
    with _failures_lock:
        _failures.pop(where, None)
    return True

