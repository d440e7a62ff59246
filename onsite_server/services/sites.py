"""Sites and their settings, shared by the CLI and the admin pages.

A site's own settings (``Site.settings``) override the server's defaults key by key; a key
left unset follows the server. Local crisis resources are added to the fixed 988/911
guidance and can never replace it: the guidance itself is not a setting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.assessments import list_instruments

from ..models import Employer, Site
from . import audit
from .errors import N_, ServiceError, required_text
from .suppression import SuppressionError, check_minimum

if TYPE_CHECKING:
    from ..settings import Settings

# Kiosk timers a site may set, with the bounds that keep a kiosk usable and safe; the crisis
# screen never goes below two minutes (the crisis contract: it must not time out quickly).
TIMEOUTS: dict[str, tuple[str, int, int]] = {
    "idle_seconds": ("KIOSK_IDLE_TIMEOUT_SECONDS", 30, 600),
    "idle_countdown_seconds": ("KIOSK_IDLE_COUNTDOWN_SECONDS", 5, 120),
    "session_cap_seconds": ("KIOSK_SESSION_CAP_SECONDS", 120, 3600),
    "crisis_screen_seconds": ("KIOSK_CRISIS_SCREEN_SECONDS", 120, 3600),
    "sync_seconds": ("KIOSK_SYNC_SECONDS", 10, 600),
}
MAX_RESOURCES = 10
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{1,30}$")
_WHOLE = re.compile(r"^[+-]?[0-9]{1,9}$")


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError("invalid", "Invalid request", [{"field": field, "message": message}])


# Files in the system's zone folder that are not a place's zone: "localtime" is whichever
# machine reads it (the server's clock on the dashboard, the kiosk's on the kiosk), "Factory"
# has no offset of its own, and the posix/ and right/ trees are copies for other tools.
_NOT_A_PLACE = ("localtime", "Factory", "posixrules")
_NOT_A_PLACE_TREES = ("posix/", "right/")


def is_site_zone(name: str) -> bool:
    """Whether name is an IANA time zone a site can be in (America/New_York, UTC)."""
    if name in _NOT_A_PLACE or name.startswith(_NOT_A_PLACE_TREES):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_timezone(name: str, field: str = "timezone") -> str:
    """Return name if it is an IANA timezone, else refuse naming the field."""
    if not is_site_zone(name):
        raise _invalid(field, N_("unknown timezone %(name)r", name=name))
    return name


# A slug names a site or an employer in the settings file (ONSITE_SITE_SLUG), the audit log
# (``site:<slug>``), pairing and the CLI: lowercase letters, digits and inner hyphens, at most
# the 64 characters its column holds. Anything else (a space, a newline, "~", which marks a
# roster import's staging employer) is refused before it is stored.
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def check_slug(value: str, field: str = "slug") -> str:
    """Return value if it is a slug (a-z, 0-9, inner hyphens, 1-64), else refuse naming field."""
    if not _SLUG.fullmatch(value):
        raise _invalid(field, N_("%(slug)r is not a slug: use 1 to 64 lowercase letters, digits "
                                 "and hyphens, with a letter or digit first and last",
                                 slug=value))
    return value


def get_or_create_employer(session: Session, slug: str, name: str) -> Employer:
    """Return the employer with slug, creating it if new."""
    employer = session.scalars(select(Employer).where(Employer.slug == slug)).first()
    if employer is None:
        # Checked when it is made: an employer stored before slugs were checked keeps its own.
        check_slug(slug, "employer")
        employer = Employer(slug=slug, name=name)
        session.add(employer)
        session.flush()
    return employer


def create_site(session: Session, *, employer_slug: str, employer_name: str | None, slug: str,
                name: str, timezone: str = "America/New_York") -> Site:
    """Create a site (and its employer if new)."""
    check_slug(slug)
    name = required_text(name, "name")
    if employer_name is not None:
        employer_name = required_text(employer_name, "employer_name")
    check_timezone(timezone)
    if session.scalars(select(Site).where(Site.slug == slug)).first():
        raise ServiceError("conflict", "Conflict",
                           [{"field": "slug", "message": N_("site %(slug)r exists", slug=slug)}])
    employer = get_or_create_employer(session, employer_slug, employer_name or employer_slug)
    site = Site(employer=employer, slug=slug, name=name, timezone=timezone, settings={})
    session.add(site)
    session.flush()
    return site


def find_site(session: Session, slug: str) -> Site:
    """Return the site with slug, or refuse naming the field."""
    site = session.scalars(select(Site).where(Site.slug == slug)).first()
    if site is None:
        raise ServiceError("not_found", "Not Found",
                           [{"field": "site",
                             "message": N_("no site with slug %(slug)r", slug=slug)}])
    return site


def luminance(color: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.1)."""
    channels = []
    for i in (1, 3, 5):
        c = int(color[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(color: str) -> float:
    """WCAG contrast ratio of white text on this colour."""
    return 1.05 / (luminance(color) + 0.05)


@dataclass(frozen=True)
class Setting:
    """One setting as the admin page shows it: the site's value, the default, the result."""

    key: str
    own: Any
    default: Any

    @property
    def effective(self) -> Any:
        """The value in force: the site's own, else the server's default."""
        return self.default if self.own in (None, "", []) else self.own


def settings_view(site: Site, settings: Settings) -> dict[str, Setting]:
    """Every site setting with its own value and the server default it overrides."""
    own = site.settings or {}
    timeouts = own.get("timeouts") or {}
    out = {
        "enabled_instruments": Setting("enabled_instruments", own.get("enabled_instruments"),
                                       list(settings.enabled_instruments)),
        "branding_name": Setting("branding_name", own.get("branding_name"),
                                 settings.branding_name),
        "branding_color": Setting("branding_color", own.get("branding_color"),
                                  settings.branding_color),
        "local_crisis_resources": Setting("local_crisis_resources",
                                          own.get("local_crisis_resources"), []),
        "min_cell": Setting("min_cell", own.get("min_cell"), settings.min_cell),
    }
    for key, (config_key, _low, _high) in TIMEOUTS.items():
        out[key] = Setting(key, timeouts.get(key), getattr(settings, config_key.lower()))
    return out


def effective(site: Site, settings: Settings) -> dict[str, Any]:
    """The value in force of every site setting: the site's own, else the server's default.

    The one overlay of a site's settings on the server's: the kiosk catalog and the admin
    page (through ``settings_view``) both read it.
    """
    return {key: setting.effective for key, setting in settings_view(site, settings).items()}


def known_instruments() -> list[str]:
    """Instrument ids this server can offer, sorted."""
    return sorted({instrument_id for instrument_id, _version in list_instruments()})


def _check_resources(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(resources) > MAX_RESOURCES:
        raise _invalid("local_crisis_resources", N_("at most %(n)d entries", n=MAX_RESOURCES))
    out = []
    for i, res in enumerate(resources, start=1):
        label = str(res.get("label") or "").strip()
        phone = str(res.get("phone") or "").strip() or None
        url = str(res.get("url") or "").strip() or None
        if not label or len(label) > 120:
            raise _invalid("local_crisis_resources", N_("entry %(i)d: a name of 1-120 characters "
                                                     "is required", i=i))
        if phone is None and url is None:
            raise _invalid("local_crisis_resources", N_("entry %(i)d: give a phone number or a "
                                                     "web address", i=i))
        if phone is not None and not _PHONE.match(phone):
            raise _invalid("local_crisis_resources", N_("entry %(i)d: %(phone)r is not a phone "
                                                     "number", i=i, phone=phone))
        if phone is not None and "".join(ch for ch in phone if ch.isdigit()) in ("988", "911"):
            raise _invalid("local_crisis_resources", N_("entry %(i)d: 988 and 911 are always "
                                                     "shown; list local resources only", i=i))
        if url is not None and not url.startswith("https://"):
            raise _invalid("local_crisis_resources", N_("entry %(i)d: the web address must start "
                                                     "with https://", i=i))
        out.append({"label": label, "phone": phone, "url": url})
    return out


def check_min_cell(value: Any) -> int | None:
    """A report's minimum cell size as typed (blank: follow the server), never below 5."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and _WHOLE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("min_cell", N_("must be a whole number"))
    try:
        return check_minimum(value)
    except SuppressionError as exc:
        raise _invalid("min_cell", exc.message) from exc


def update_settings(session: Session, site: Site, changes: Mapping[str, Any], *, actor: str,
                    timezone: str | None = None) -> None:
    """Validate and store the site's own settings (None or blank: follow the server)."""
    own: dict[str, Any] = dict(site.settings or {})
    # In this order, so that of several bad values the same one is named first as always.
    _apply(own, changes, _BRANDING_CHECKS)
    timeouts = dict(own.get("timeouts") or {})
    _apply(timeouts, changes, _TIMEOUT_CHECKS)
    _set(own, "timeouts", timeouts or None)
    _apply(own, changes, _REPORT_AND_CRISIS_CHECKS)
    if timezone is not None and timezone != site.timezone:
        site.timezone = check_timezone(timezone)
    before = dict(site.settings or {})
    site.settings = own
    audit.record(session, actor, "site.settings_changed", f"site:{site.slug}",
                 detail={"keys": sorted(k for k in set(before) | set(own)
                                        if before.get(k) != own.get(k)),
                         "timezone": site.timezone})


_Check = Callable[[Any], Any]


def _apply(target: dict[str, Any], changes: Mapping[str, Any],
           checks: tuple[tuple[str, _Check], ...]) -> None:
    """Check each changed key in turn and store what it stores (None: follow the server)."""
    for key, check in checks:
        if key in changes:
            _set(target, key, check(changes[key]))


def _check_enabled_instruments(wanted: Any) -> list[str] | None:
    if wanted is None:
        return None
    known = set(known_instruments())
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise _invalid("enabled_instruments", N_("unknown instruments %(ids)s", ids=unknown))
    if not wanted:
        raise _invalid("enabled_instruments", N_("choose at least one instrument"))
    return list(wanted)


def _check_branding_name(value: Any) -> str | None:
    name = (value or "").strip()
    if len(name) > 80:
        raise _invalid("branding_name", N_("at most %(n)d characters", n=80))
    return name or None


def _check_branding_color(value: Any) -> str | None:
    color = (value or "").strip()
    if color:
        if not _COLOR.match(color):
            raise _invalid("branding_color", N_("must look like #0b5fa5"))
        if contrast_with_white(color) < 4.5:
            raise _invalid("branding_color", N_(
                "white text on it would be hard to read (contrast %(ratio).1f:1, "
                "needs 4.5:1)", ratio=contrast_with_white(color)))
    return color.lower() or None


def _timeout_check(key: str, low: int, high: int) -> _Check:
    def check(value: Any) -> int | None:
        if value is not None and not (low <= int(value) <= high):
            raise _invalid(key, N_("must be between %(low)d and %(high)d seconds",
                                   low=low, high=high))
        return int(value) if value is not None else None
    return check


def _check_local_resources(value: Any) -> list[dict[str, Any]] | None:
    return _check_resources(list(value or [])) or None


_BRANDING_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("enabled_instruments", _check_enabled_instruments),
    ("branding_name", _check_branding_name),
    ("branding_color", _check_branding_color),
)
_TIMEOUT_CHECKS: tuple[tuple[str, _Check], ...] = tuple(
    (key, _timeout_check(key, low, high)) for key, (_config_key, low, high) in TIMEOUTS.items())
_REPORT_AND_CRISIS_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("min_cell", check_min_cell),
    ("local_crisis_resources", _check_local_resources),
)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
