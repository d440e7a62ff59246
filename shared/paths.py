"""Where the project's data files live."""

from __future__ import annotations

import os
from pathlib import Path

# Resolved once: the scoring engine asks for it on every score, and resolving touches the disk.
_DEFAULT_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def assets_dir() -> Path:
    """Return the assets folder, overridable with ONSITE_ASSETS_DIR."""
    override = os.environ.get("ONSITE_ASSETS_DIR")
    if override:
        return Path(override)
    return _DEFAULT_ASSETS
