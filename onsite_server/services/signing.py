"""The server's token signing keys: one current key per purpose, older ones kept for verifying,
and retired ones refused.

Keys live as PEM files in a folder (``SIGNING_KEY_DIR``, default ``<instance>/keys``), named
``<purpose>-<key id>.pem`` and created with mode 0600. The newest file of a purpose signs
(status ``active``); all of them verify and are published (``GET /.well-known/jwks.json``,
status ``rotated`` for the older ones), so tokens minted before a rotation keep working until
a key is deliberately retired. Advocate links live a year, so a rotated link key stays
published at least that long.

A compromised key is **retired** (``onsite-server keys retire KID``): its private key file is
deleted, its key id goes into ``retired.json`` in the same folder, and from then on no token
it signed verifies, here or at central (the retirement travels to central with the keys,
docs/tokens.md). Retiring the key that signs makes a new one at once.

The verifying ring and each purpose's signing key are kept in process between requests (every
check-in scan needs the ring, every ticket and advocate link a signing key) and read again
whenever the folder's state changes: its listing with each file's size, mtime and
inode, stat'ed on every call. ``keys rotate`` and ``keys retire`` run in another process, and
with ONSITE_MULTI_NODE every node shares the folder, so only what is on disk can say the
ring is current.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shared.tokens import KeyRing, Purpose, SigningKey

_lock = threading.Lock()
K = TypeVar("K")
T = TypeVar("T")
RETIRED_FILE = "retired.json"

# folder -> (the folder's state when the ring was built, the ring without revoked ids).
_rings: dict[Path, tuple[tuple[Any, ...], KeyRing]] = {}
# (folder, purpose) -> (the folder's state when it was read, the key that signs).
_signing: dict[tuple[Path, Purpose], tuple[tuple[Any, ...], SigningKey]] = {}


def _folder_state(folder: Path) -> tuple[Any, ...] | None:
    """Return what changes whenever a key or the retired list changes: every file's name,
    size, mtime and inode (a key is written once; retired.json is replaced, a new inode), and
    the folder's own mtime. None when the folder cannot be read (nothing is cached then)."""
    try:
        top = folder.stat()
        with os.scandir(folder) as found:
            files = sorted((e.name, (s := e.stat()).st_size, s.st_mtime_ns, s.st_ino)
                           for e in found if not e.name.startswith("."))
    except OSError:
        return None
    return (top.st_mtime_ns, top.st_ino, tuple(files))


def _kept(cache: dict[K, tuple[tuple[Any, ...], T]], key: K, folder: Path,
          read: Callable[[], T]) -> T:
    """What read() gives, kept under key while the folder's state is unchanged."""
    state = _folder_state(folder)
    cached = cache.get(key)
    if state is not None and cached is not None and cached[0] == state:
        return cached[1]
    # The state is taken before the files are read: a change made while reading leaves a
    # newer state on disk, so the next call reads again.
    value = read()
    if state is not None:
        cache[key] = (state, value)
    return value


class UnknownKey(ValueError):
    """A key id that names none of this site's keys."""


@dataclass(frozen=True)
class KeyInfo:
    """One key as the ``keys list`` command shows it."""

    kid: str
    purpose: Purpose
    status: str  # active, rotated or retired
    since: datetime | None  # created (from the file) or retired


@dataclass(frozen=True)
class KeyStore:
    """The signing keys in one folder."""

    folder: Path

    def retired(self) -> dict[str, dict[str, Any]]:
        """Return the retired keys: key id -> {"purpose", "retired_at"}."""
        path = self.folder / RETIRED_FILE
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): dict(v) for k, v in dict(data).items()}

    def _files(self, purpose: Purpose) -> list[Path]:
        retired = self.retired()
        found = sorted((p for p in self.folder.glob(f"{purpose.label}-*.pem")
                        if p.stem.split("-", 1)[1] not in retired),
                       key=lambda p: (p.stat().st_mtime_ns, p.name))
        return found

    def current(self, purpose: Purpose) -> SigningKey:
        """Return the key that signs new tokens of a purpose, making the first one if none.

        Kept in process while the folder's state is unchanged, as the ring is: finding and
        parsing the key cost about 0.3 ms of every ticket and advocate link minted, inside
        the booking's write turn, against 25 µs for the state.
        """
        with _lock:
            return _kept(_signing, (self.folder, purpose), self.folder,
                         lambda: self._read_current(purpose))

    def _read_current(self, purpose: Purpose) -> SigningKey:
        files = self._files(purpose)
        if not files:
            return self._write(SigningKey.generate(purpose))
        return SigningKey.from_pem(files[-1].read_bytes(), purpose)

    def current_kid(self, purpose: Purpose) -> str:
        """Return the key id of the key that signs ``purpose`` tokens (from its file name,
        without reading the private key; making the first key if none)."""
        files = self._files(purpose)
        if files:
            return files[-1].stem.split("-", 1)[1]
        return self.current(purpose).key_id

    def rotate(self, purpose: Purpose) -> SigningKey:
        """Make a new current key for a purpose; the old ones stay for verifying."""
        with _lock:
            return self._write(SigningKey.generate(purpose))

    def retire(self, kid: str, now: datetime | None = None) -> Purpose:
        """Retire a key for good (compromised): delete its private key, refuse its tokens.

        Returns the key's purpose. When it was the key that signs, a new one takes over.
        Retiring a key already retired changes nothing.
        """
        with _lock:
            retired = self.retired()
            if kid in retired:
                return Purpose.from_label(str(retired[kid]["purpose"]))
            # A key id is 16 hex digits: never a glob pattern that could match another key.
            well_formed = len(kid) == 16 and set(kid) <= set("0123456789abcdef")
            matches = list(self.folder.glob(f"*-{kid}.pem")) if well_formed else []
            if len(matches) != 1:
                raise UnknownKey(f"no signing key has the id {kid!r} (see `keys list`)")
            path = matches[0]
            purpose = Purpose.from_label(path.name.rsplit("-", 1)[0])
            was_current = self._files(purpose)[-1] == path
            retired[kid] = {"purpose": purpose.label, "retired_at": (now or datetime.now(UTC))
                            .astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            # The retirement is written before the key goes: a crash in between leaves the key
            # refused (its file is ignored), never trusted again.
            self.save_json(RETIRED_FILE, retired)
            path.unlink()
            if was_current or not self._files(purpose):
                self._write(SigningKey.generate(purpose))
            return purpose

    def ring(self, revoked: set[str] | None = None) -> KeyRing:
        """Return every key of every purpose as a verifying ring (with revoked token ids and
        the retired key ids); from the in-process cache while the folder is unchanged."""
        base = _kept(_rings, self.folder, self.folder, self._read_ring)
        # A copy per call: a caller may add to it (revoke), the cached ring stays as read.
        return KeyRing(keys=dict(base.keys), revoked=set(revoked or ()),
                       retired=dict(base.retired), active=set(base.active))

    def _read_ring(self) -> KeyRing:
        ring = KeyRing()
        for kid, entry in self.retired().items():
            ring.retire(kid, _parse_time(entry.get("retired_at")))
        for purpose in Purpose:
            current = self.current(purpose)  # a fresh install publishes its keys from the start
            for path in self._files(purpose):
                ring.add(SigningKey.from_pem(path.read_bytes(), purpose).public, purpose,
                         active=path.stem.endswith(current.key_id))
        return ring

    def jwks(self) -> dict[str, Any]:
        """Return the published JWK Set: keys with their status, and the retired key ids."""
        return self.ring().jwks()

    def describe(self) -> list[KeyInfo]:
        """Return every key, retired ones included, newest first within each purpose."""
        found: list[KeyInfo] = []
        for purpose in Purpose:
            self.current(purpose)  # as published: a fresh install has its keys from the start
            files = self._files(purpose)
            for index, path in enumerate(reversed(files)):
                found.append(KeyInfo(
                    kid=path.stem.split("-", 1)[1], purpose=purpose,
                    status="active" if index == 0 else "rotated",
                    since=datetime.fromtimestamp(path.stat().st_mtime, UTC)))
        for kid, entry in sorted(self.retired().items()):
            found.append(KeyInfo(kid=kid, purpose=Purpose.from_label(str(entry["purpose"])),
                                 status="retired",
                                 since=_parse_time(entry.get("retired_at"))))
        return found

    def _write(self, key: SigningKey) -> SigningKey:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{key.purpose.label}-{key.key_id}.pem"
        # Written whole under a hidden name, then linked in: another process (a second
        # gunicorn worker making or reading the first key at the same moment) never finds a
        # key file half written, which it could not parse. Created 0600 from the start: a
        # private key must never be readable by others. The link, like O_EXCL before it,
        # never replaces a key file.
        temporary = self.folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.to_pem())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return key

    def save_json(self, name: str, data: Any) -> None:
        """Replace a small JSON file in the folder atomically (readers see old or new, whole)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / name)


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
