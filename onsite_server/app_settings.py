"""The typed settings on the Flask app: built once by create_app, then frozen.

create_app calls :func:`install` once the layers are merged, and :func:`freeze` last: from
then on a setting key written to ``app.config`` raises, because the typed object would not
see it. Views and commands read :func:`current` or :func:`of`; a test that changes a
setting after create_app calls :func:`override`, which converts and checks it as at start.
"""

from __future__ import annotations

from typing import Any

from flask import Config, Flask, current_app

from .config import DEFAULTS, ConfigError
from .settings import Settings

EXTENSION_KEY = "onsite_server.settings"


class SettingsConfig(Config):
    """Flask's config, whose setting keys are frozen once create_app has built the settings."""

    frozen = False

    def __setitem__(self, key: str, value: Any) -> None:
        if self.frozen and key in DEFAULTS:
            # The typed settings would not see the change: say so rather than ignore it.
            raise RuntimeError(f"{key} is a setting, frozen once the app is built; a test "
                               "changes it with onsite_server.app_settings.override(app, ...)")
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set each key through __setitem__, so frozen settings are guarded here too."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def install(app: Flask) -> Settings:
    """Build the settings from app.config and keep them on the app (create_app calls this)."""
    settings = Settings.from_config(app.config)
    app.extensions[EXTENSION_KEY] = settings
    return settings


def freeze(app: Flask) -> None:
    """Refuse later writes of a setting key to app.config (create_app's last step)."""
    if isinstance(app.config, SettingsConfig):
        app.config.frozen = True


def of(app: Flask) -> Settings:
    """The settings of this app."""
    settings: Settings = app.extensions[EXTENSION_KEY]
    return settings


def current() -> Settings:
    """The settings of the app serving this request or CLI command."""
    return of(current_app)


def override(app: Flask, **changes: Any) -> Settings:
    """Change settings after create_app (tests): re-converted and re-checked as at start."""
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a setting (config.DEFAULTS)")
    settings = Settings.from_config({**app.config, **changes})
    frozen = isinstance(app.config, SettingsConfig) and app.config.frozen
    if isinstance(app.config, SettingsConfig):
        app.config.frozen = False
    try:
        app.config.update(changes)
    finally:
        if isinstance(app.config, SettingsConfig):
            app.config.frozen = frozen
    app.extensions[EXTENSION_KEY] = settings
    return settings
