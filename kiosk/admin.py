"""The admin PIN: stored hashed (scrypt), with a lock-out after repeated failures.

The same file keeps the one other thing an admin sets at the kiosk: the default language.

The PIN is set during pairing, before the kiosk shows its first attract screen. A PIN of 4 to
8 digits has at most 10^8 values, so the hash alone cannot protect it against someone holding
the file; what protects it at the screen is the lock-out, which counts failures on disk so a
restart does not reset it. The file lives in the kiosk's data folder, beside nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from shared.i18n import check_language

MAX_FAILURES = 5
LOCK_SECONDS = 300.0
# scrypt cost: about 50 ms on this kind of machine, paid once per attempt.
_N, _R, _P = 2**14, 8, 1


class PinLocked(Exception):
    """Too many wrong PINs: ``seconds`` until the next try."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"admin PIN locked for {seconds:.0f} s")
        self.seconds = seconds


class AdminLock:
    """The hashed admin PIN and its failure count, in ``<data_dir>/admin.json``."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / "admin.json"
        self.clock = clock

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def is_set(self) -> bool:
        """True once a PIN was chosen."""
        return "hash" in self._read()

    def set_pin(self, pin: str) -> None:
        """Choose the PIN (4 to 8 digits); raises ValueError naming the field otherwise."""
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise ValueError("pin: must be 4 to 8 digits")
        salt = secrets.token_bytes(16)
        data = self._read()
        data.update(salt=salt.hex(), hash=_hash(pin, salt).hex(), failures=0, locked_until=0.0)
        self._write(data)

    def default_language(self) -> str | None:
        """The language a fresh visit starts in, as an admin set it (None: not set)."""
        value = self._read().get("language")
        return value if isinstance(value, str) else None

    def set_default_language(self, language: str) -> None:
        """Keep the admin's choice of starting language across restarts."""
        data = self._read()
        data["language"] = check_language(language)
        self._write(data)

    def locked_for(self) -> float:
        """Seconds until the next try is allowed (0 when not locked)."""
        until = float(self._read().get("locked_until", 0.0) or 0.0)  # type: ignore[arg-type]
        return max(0.0, until - self.clock())

    def check(self, pin: str) -> bool:
        """Tell whether the PIN is right; raises PinLocked while locked out."""
        data = self._read()
        if "hash" not in data:
            return False
        wait = self.locked_for()
        if wait > 0:
            raise PinLocked(wait)
        expected = bytes.fromhex(str(data["hash"]))
        if hmac.compare_digest(_hash(pin, bytes.fromhex(str(data["salt"]))), expected):
            data.update(failures=0, locked_until=0.0)
            self._write(data)
            return True
        failures = int(data.get("failures", 0) or 0) + 1  # type: ignore[call-overload]
        data["failures"] = failures
        if failures >= MAX_FAILURES:
            data.update(failures=0, locked_until=self.clock() + LOCK_SECONDS)
        self._write(data)
        return False


def _hash(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
