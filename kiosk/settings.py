"""Kiosk settings: where the server is, window size, and the data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KioskSettings:
    """What the kiosk needs to start; read from ONSITE_KIOSK_* environment variables."""

    server_url: str = "https://127.0.0.1:8700"
    data_dir: Path = Path.home() / ".onsite-kiosk"
    width: int = 1080
    height: int = 1920
    fullscreen: bool = False
    language: str = "en"

    @classmethod
    def from_env(cls) -> KioskSettings:
        """Build settings from the environment, falling back to the defaults."""
        env = os.environ
        return cls(
            server_url=env.get("ONSITE_KIOSK_SERVER_URL", cls.server_url),
            data_dir=Path(env.get("ONSITE_KIOSK_DATA_DIR", str(cls.data_dir))),
            width=int(env.get("ONSITE_KIOSK_WIDTH", cls.width)),
            height=int(env.get("ONSITE_KIOSK_HEIGHT", cls.height)),
            fullscreen=env.get("ONSITE_KIOSK_FULLSCREEN", "0") == "1",
            language=env.get("ONSITE_KIOSK_LANGUAGE", cls.language),
        )
