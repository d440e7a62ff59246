"""The onsite server: a Flask app factory over SQLAlchemy, for one site's kiosks and staff."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, redirect, url_for
from werkzeug.datastructures import ImmutableDict
from werkzeug.routing import IntegerConverter, Map

from . import app_settings as settings_module
from . import config as config_module
from .instance import ensure_private_dir, open_private
from .settings import boolean as settings_boolean

__version__ = "0.1.0"


class DatabaseId(IntegerConverter):
    """``<int:...>`` in our URLs: a whole number a database id can hold (64-bit), else 404.

    Werkzeug's own converter takes any length of digits, and SQLite's driver cannot bind a
    number past 2**63 - 1: ``/dashboard/crisis/alert/99999999999999999999`` answered 500.
    """

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = 2**63 - 1, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


class OnsiteMap(Map):
    """Werkzeug's URL map, with DatabaseId for ``int``."""

    default_converters = ImmutableDict({**Map.default_converters, "int": DatabaseId})


class OnsiteFlask(Flask):
    """Flask whose config freezes the setting keys once the typed settings are built."""

    config_class = settings_module.SettingsConfig
    url_map_class = OnsiteMap


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then instance/config.py, then ONSITE_* env, then test_config."""
    instance_path = os.environ.get("ONSITE_INSTANCE_PATH")
    if test_config and test_config.get("INSTANCE_PATH"):
        instance_path = str(test_config["INSTANCE_PATH"])
    app = OnsiteFlask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.from_mapping(config_module.DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(config_module.from_environment())
    if test_config:
        app.config.update(test_config)
    ensure_private_dir(app.instance_path)
    _finish_config(app)
    # Converted and checked once; from here on code reads settings.current(), never a raw key.
    settings = settings_module.install(app)
    # Flask reads this one itself: give it the converted number.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length

    from .services.users import configure_hashing

    configure_hashing(settings.password_hash_cost)

    from . import accesslog, db, errors, health, logs, metrics, security

    accesslog.install_werkzeug_filter()

    db.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    health.init_app(app)
    metrics.init_app(app)
    logs.init_app(app)
    proxies = settings.trusted_proxies
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address (rate limits, lock-outs, the audit log) and https as the
        # scheme come from the proxies' headers, trusting only as many hops as are ours.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    from . import dashboard
    from .advocate import bp as advocate_bp
    from .api import bp as api_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(advocate_bp)

    from .wellknown import bp as wellknown_bp

    app.register_blueprint(wellknown_bp)
    dashboard.init_app(app)
    # After the dashboard's hooks: the roster upload's larger body limit is set before any
    # hook reads a form, this one included.
    app.before_request(errors.refuse_nul_characters)

    @app.get("/")
    def root():  # type: ignore[no-untyped-def]
        """Send a visitor to the log-in page, and a logged-in user to their home page."""
        from .dashboard.auth import current_user, home_url

        user = current_user()
        return redirect(home_url(user.role) if user else url_for("auth.login"), 302)

    settings_module.freeze(app)
    return app


def _finish_config(app: Flask) -> None:
    if settings_boolean("MULTI_NODE", app.config["MULTI_NODE"]):
        from .nodes import check_shared_material

        # Before anything below makes a per-node secret or key folder in the instance.
        check_shared_material(app.config, app.instance_path)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + str(Path(app.instance_path) / "onsite.sqlite")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    if not app.config.get("SIGNING_KEY_DIR"):
        app.config["SIGNING_KEY_DIR"] = str(Path(app.instance_path) / "keys")
    if not app.config.get("CENTRAL_WEB_URL"):
        base = str(app.config["CENTRAL_URL"]).rstrip("/")
        app.config["CENTRAL_WEB_URL"] = base.removesuffix("/fhir")
    cert = app.config.get("TLS_CERT")
    if cert and not app.config.get("TLS_FINGERPRINT_SHA256"):
        from .tls import fingerprint_sha256

        app.config["TLS_FINGERPRINT_SHA256"] = fingerprint_sha256(cert)


def _instance_secret(path: Path) -> str:
    # A per-installation secret that survives restarts, so member references and sessions
    # stay valid; several gunicorn workers read the same file.
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w") as fh:
        fh.write(value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
