"""Kiosk app versions, as both ends of the kiosk API read them.

Every kiosk request names the app's version in ``X-Kiosk-Version``; the server declares the
oldest version it still serves (``KIOSK_MIN_VERSION``) in ``X-Kiosk-Min-Version`` on every
answer, and refuses an older kiosk with 426 (Upgrade Required) and that minimum in the
problem document. The kiosk then keeps everything in its outbox until it is updated.

The API's shape is versioned by its path (``/api/v1``): a server only ever adds optional
fields to v1, so a kiosk at or above the minimum keeps working unchanged.
"""

from __future__ import annotations

import re

KIOSK_VERSION_HEADER = "X-Kiosk-Version"
MIN_KIOSK_VERSION_HEADER = "X-Kiosk-Min-Version"
# Kiosks released before versioning sent no header: they were all 0.1.0.
UNVERSIONED_KIOSK = "0.1.0"

_VERSION = re.compile(r"^\d{1,6}(?:\.\d{1,6}){0,3}$")


def parse_version(text: str, field: str = "version") -> tuple[int, ...]:
    """Read a dotted version (``1.4.2``) as numbers; raises ValueError naming the field."""
    value = text.strip()
    if not _VERSION.match(value):
        raise ValueError(f"{field}: must be a version of dotted numbers, such as 0.2.0")
    numbers = [int(part) for part in value.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()  # 0.2 and 0.2.0 are the same version
    return tuple(numbers)


def is_older(version: str, minimum: str) -> bool:
    """True when ``version`` comes before ``minimum``."""
    return parse_version(version) < parse_version(minimum)
