"""The server's token signing keys: one current key per purpose, older ones kept for verifying.

Keys live as PEM files in a folder (``SIGNING_KEY_DIR``, default ``<instance>/keys``), named
``<purpose>-<key id>.pem`` and created with mode 0600. The newest file of a purpose signs; all
of them verify and are published (``GET /.well-known/jwks.json``), so tokens minted before a
rotation keep working until a key is deliberately removed. Advocate links live a year, so a
retired link key stays published at least that long.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from shared.tokens import KeyRing, Purpose, SigningKey

_lock = threading.Lock()


@dataclass(frozen=True)
class KeyStore:
    """The signing keys in one folder."""

    folder: Path

    def _files(self, purpose: Purpose) -> list[Path]:
        found = sorted(self.folder.glob(f"{purpose.label}-*.pem"),
                       key=lambda p: (p.stat().st_mtime_ns, p.name))
        return found

    def current(self, purpose: Purpose) -> SigningKey:
        """Return the key that signs new tokens of a purpose, making the first one if none."""
        with _lock:
            files = self._files(purpose)
            if files:
                return SigningKey.from_pem(files[-1].read_bytes(), purpose)
            return self._write(SigningKey.generate(purpose))

    def rotate(self, purpose: Purpose) -> SigningKey:
        """Make a new current key for a purpose; the old ones stay for verifying."""
        with _lock:
            return self._write(SigningKey.generate(purpose))

    def ring(self, revoked: set[str] | None = None) -> KeyRing:
        """Return every key of every purpose as a verifying ring (with revoked token ids)."""
        ring = KeyRing(revoked=set(revoked or ()))
        for purpose in Purpose:
            self.current(purpose)  # a fresh install publishes its keys from the start
            for path in self._files(purpose):
                ring.add(SigningKey.from_pem(path.read_bytes(), purpose).public, purpose)
        return ring

    def _write(self, key: SigningKey) -> SigningKey:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{key.purpose.label}-{key.key_id}.pem"
        # Created 0600 from the start: a private key must never be readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_pem())
        return key
