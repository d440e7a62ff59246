"""The staff dashboard (HTML): log-in, navigation per role, the crisis banner and the pages.

Each area is a module that adds its views to ``bp`` (or its own blueprint) and its entries
to the navigation with ``nav.add_nav``; every view is guarded by ``auth.role_required`` (or
marked ``auth.public``), loads rows through ``lookup`` and calls a service.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, g, render_template, request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ..app_settings import current as current_settings
from ..app_settings import of as settings_of
from .auth import current_user, role_required, session_times
from .banner import waited as banner_waited
from .nav import add_nav, nav_for

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
csrf = CSRFProtect()

add_nav("dashboard.index", _l("Home"), ("admin", "coordinator", "employer", "operator"),
        order=0)


@bp.get("/")
@role_required("admin", "coordinator", "employer", "operator")
def index() -> str:
    """The landing page of admins, coordinators, employers and operators."""
    return render_template("dashboard/index.html")


def _template_context() -> dict[str, Any]:
    from . import banner
    from .i18n import LANGUAGES

    user = current_user()
    banners: list[Any] = []
    alerts: list[Any] = []
    if user is not None:
        try:
            banners = banner.crisis_banners(user)
            alerts = banner.operational_alerts(user)
        except SQLAlchemyError:
            # An error page for a database failure must still render; the banner returns
            # on the next page that can reach the database.
            banners, alerts = [], []
    return {
        "current_user": user,
        "nav_items": nav_for(user.role if user else None),
        "crisis_banners": banners,
        "operational_alerts": alerts,
        "languages": LANGUAGES,
        "current_lang": str(get_locale() or "en"),
        "session_timing": session_times() if user is not None else None,
        "branding_name": _branding_name(),
    }


def _branding_name() -> str:
    name = g.get("branding_name")
    return str(name or current_settings().branding_name)


def site_zone() -> ZoneInfo:
    """The timezone of the user's site (else the server's site), cached per request."""
    zone: ZoneInfo | None = g.get("site_zone")
    if zone is not None:
        return zone
    name = "UTC"
    user = current_user()
    if user is not None:
        try:
            from .lookup import current_site

            name = current_site().timezone
        except (HTTPException, SQLAlchemyError):
            name = "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    g.site_zone = zone
    return zone


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a stored UTC time in the site's timezone (a Jinja filter)."""
    if value is None:
        return ""
    try:
        return value.astimezone(site_zone()).strftime(fmt)
    except OverflowError:
        # A kiosk's time stored before such times were refused (year 1 has no local time
        # west of UTC): shown in UTC rather than failing every page with a crisis banner.
        return value.astimezone(UTC).strftime(fmt) + " UTC"


TRIGGERS = {
    "phq9_item9": _l("PHQ-9 question 9: thoughts of self-harm"),
    "hypertensive_crisis": _l("hypertensive crisis (blood pressure above 180/120)"),
}
ROLE_NAMES = {"admin": _l("Admin"), "coordinator": _l("Coordinator"),
              "advocate": _l("Advocate"), "employer": _l("Employer"),
              "operator": _l("Operator")}


def trigger_text(trigger: str) -> str:
    """A crisis trigger in words (the id itself when unknown)."""
    return str(TRIGGERS.get(trigger, trigger))


def instrument_title(instrument_id: str) -> str:
    """An instrument's title in the page's language (its id when unknown)."""
    from shared.assessments import load_definition

    try:
        title = load_definition(instrument_id)["title"]
    except (KeyError, ValueError, OSError):
        return instrument_id
    return str(title.get(str(get_locale() or "en")) or title.get("en") or instrument_id)


def band_label(instrument_id: str, band: str | None, version: str | None = None) -> str:
    """A result band in plain words in the page's language, from the instrument definition.

    ``moderately_severe`` reads "Moderately severe depression symptoms"; a band the definition
    does not name (an older one) reads as its words, never as a code with underscores.
    """
    from shared.assessments import load_definition

    if not band:
        return ""
    lang = str(get_locale() or "en")
    try:
        definition = load_definition(instrument_id, version)
    except (KeyError, ValueError, OSError):
        try:
            definition = load_definition(instrument_id)
        except (KeyError, ValueError, OSError):
            definition = {}
    for candidate in definition.get("scoring", {}).get("bands", ()):
        if candidate.get("id") == band:
            label = candidate.get("label") or {}
            return str(label.get(lang) or label.get("en") or band)
    return band.replace("_", " ")


def audit_detail(detail: Any) -> str:
    """An audit row's detail as JSON that reads as typed ("Clínica", not "Cl\\u00ednica")."""
    # Plain text, not |tojson's Markup: the template escapes it like any other value.
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)


def init_app(app: Flask) -> None:
    """Bind CSRF, translations and log-in to the app; register the dashboard areas."""
    from ..api import bp as api_bp
    from ..wellknown import bp as wellknown_bp

    # Each area module adds its views to bp when imported: one line per area.
    from . import admin, auth, checkin, crisis, events, fleet, i18n  # noqa: F401
    from . import claims as _claims  # noqa: F401  (unmatched sign-ins; its own line for merges)
    from . import reports as _reports  # noqa: F401  (employer reports; its own line for merges)

    @app.before_request
    def _roster_size_limit() -> None:
        # Registered before CSRFProtect, which reads the form (and so the body) first: the
        # roster upload has its own, larger limit than the rest of the server.
        if request.endpoint == "dashboard.roster":
            request.max_content_length = admin.ROSTER_MAX_BYTES

    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's own limits apply
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        hours=settings_of(app).dashboard_absolute_hours)
    # The cookie is signed and sent again only when the session changed (a log-in, the idle
    # clock moved: auth.SEEN_STEP_SECONDS), not with every answer. Its expiry then counts
    # from that change: at most the absolute limit, which the server enforces anyway.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    csrf.init_app(app)
    # Kiosks authenticate with bearer device tokens, not cookies: CSRF cannot reach them.
    csrf.exempt(api_bp)
    csrf.exempt(wellknown_bp)
    i18n.init_app(app)
    auth.init_app(app)
    app.register_blueprint(bp)
    app.context_processor(_template_context)
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["instrument_title"] = instrument_title
    app.jinja_env.filters["audit_detail"] = audit_detail
    app.jinja_env.filters["waited"] = banner_waited
    app.jinja_env.globals.update(trigger_text=trigger_text, instrument_title=instrument_title,
                                 band_label=band_label,
                                 role_name=lambda role: str(ROLE_NAMES.get(role, role)))
    app.jinja_env.globals["request_path"] = lambda: request.full_path.rstrip("?")
    app.jinja_env.globals["session_lang"] = lambda: session.get("lang")
