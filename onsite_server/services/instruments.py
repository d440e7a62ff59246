"""Which instruments a site offers, and since when: kiosks may only file what was offered.

A site offers its own ``enabled_instruments`` setting, or the server's ENABLED_INSTRUMENTS.
Each period an instrument is offered is kept as an ``InstrumentWindow``, so an item a kiosk
queued offline is still accepted after its instrument was disabled, when it was taken inside
a window; an instrument the site never offered is refused. Windows are brought up to date the
first time a process serves a site's catalog or checks a submission, and again whenever the
offered set it sees changes (a restart with a new setting, or a site setting saved).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session, object_session

from shared.assessments import list_instruments

from ..models import InstrumentWindow, Site, utcnow

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("onsite_server.instruments")

_OPEN_WINDOWS = select(InstrumentWindow).where(InstrumentWindow.site_id == bindparam("site_id"),
                                               InstrumentWindow.until.is_(None))
_ANY_WINDOW = select(InstrumentWindow.id).where(InstrumentWindow.site_id == bindparam("site_id"))
_COVERING = select(InstrumentWindow.id).where(
    InstrumentWindow.site_id == bindparam("site_id"),
    InstrumentWindow.instrument_id == bindparam("instrument_id"),
    InstrumentWindow.since <= bindparam("start"),
    (InstrumentWindow.until.is_(None)) | (InstrumentWindow.until >= bindparam("end")),
)

_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)

# (database URL, site id) -> the offered set this process last wrote down; saves a query per
# request once the windows are known to be current.
_synced: dict[tuple[str, int], frozenset[str]] = {}
_synced_lock = threading.Lock()


def offered_instruments(site: Site, settings: Settings) -> tuple[str, ...]:
    """Return the instrument ids the site offers now (its own setting, else the server's).

    The server's list is checked at start; a site's own list is stored data, so an id this
    server does not know (a typo, a newer server's instrument) is left out with a warning
    rather than breaking every kiosk's catalog.
    """
    own = (site.settings or {}).get("enabled_instruments")
    if not own or not isinstance(own, list):
        return settings.enabled_instruments
    known = _known()
    unknown = [i for i in own if i not in known]
    if unknown:
        log.warning("site %s: enabled_instruments names unknown instruments %s; left out",
                    site.slug, ", ".join(map(repr, unknown)))
    return tuple(i for i in own if i in known)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(instrument_id for instrument_id, _version in list_instruments())


def _cache_key(session: Session, site: Site) -> tuple[str, int]:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return (str(engine.url), site.id)


def windows_current(session: Session, site: Site, offered: Collection[str]) -> bool:
    """Tell whether this process already wrote down the site's offered set (no query)."""
    with _synced_lock:
        return _synced.get(_cache_key(session, site)) == frozenset(offered)


def windows_current_for(site: Site, offered: Collection[str]) -> bool:
    """Like ``windows_current``, from the site row's own session (no query, no new session)."""
    session = object_session(site)
    return session is not None and windows_current(session, site, offered)


def sync_windows(session: Session, site: Site, offered: Collection[str],
                 now: datetime | None = None) -> None:
    """Open a window for each newly offered instrument and close those no longer offered."""
    wanted = frozenset(offered)
    if windows_current(session, site, wanted):
        return
    now = now or utcnow()
    open_rows = list(session.scalars(_OPEN_WINDOWS, {"site_id": site.id}))
    first = not open_rows and session.scalars(_ANY_WINDOW, {"site_id": site.id}).first() is None
    # A site's very first windows reach back to the start of time: whatever it offered before
    # windows were kept was offered all along, so items queued before this point (or taken on
    # a kiosk whose clock is behind) are not refused.
    since = _BEGINNING if first else now
    have = {w.instrument_id for w in open_rows}
    for window in open_rows:
        if window.instrument_id not in wanted:
            window.until = now
    for instrument_id in sorted(wanted - have):
        session.add(InstrumentWindow(site_id=site.id, instrument_id=instrument_id, since=since))
    session.flush()
    with _synced_lock:
        _synced[_cache_key(session, site)] = wanted


def was_offered(session: Session, site: Site, instrument_id: str, at: datetime,
                slack: timedelta = timedelta(0)) -> bool:
    """Tell whether the site offered the instrument at a time, give or take ``slack``.

    The slack absorbs a kiosk clock that is a little off: an item taken just after an
    instrument was enabled must not be refused because the kiosk's clock is behind.
    """
    found = session.scalars(_COVERING, {"site_id": site.id, "instrument_id": instrument_id,
                                        "start": at + slack, "end": at - slack}).first()
    return found is not None
