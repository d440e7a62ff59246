"""GET /catalog: instruments, upcoming events and site settings, with ETag revalidation."""

from __future__ import annotations

import logging

from flask import Response, request
from sqlalchemy.exc import OperationalError

from shared.schemas.catalog import CatalogResponse

from ..app_settings import current as current_settings
from ..db import get_db, get_session
from ..models import Site
from ..services.catalog import build_catalog
from ..services.instruments import offered_instruments, sync_windows, windows_current_for
from . import current_kiosk, operation


@operation(
    "/catalog", "GET", summary="Get the kiosk catalog", tag="catalog",
    responses={200: ("The catalog; ETag header set", CatalogResponse),
               304: ("Not modified since the ETag sent in If-None-Match", None)},
    headers={"If-None-Match": "The ETag of the catalog the kiosk holds; a match answers 304 "
                              "with no body"},
)
def get_catalog() -> Response:
    """Return the catalog of the kiosk's site, or 304 when the kiosk's copy is current."""
    session = get_session()
    site = session.get(Site, current_kiosk().site_id)
    assert site is not None  # a kiosk row always references its site (foreign key)
    _record_offered(site)
    catalog = build_catalog(session, site, current_settings())
    headers = {"ETag": catalog.etag, "Cache-Control": "no-cache"}
    inm = request.if_none_match
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2), so W/"x" matches "x".
    if inm.star_tag or inm.contains_weak(catalog.etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(catalog.body, status=200, mimetype="application/json", headers=headers)


def _record_offered(site: Site) -> None:
    """Write down what this site offers, in its own short write transaction, when it changed.

    What a kiosk is shown is what it may file later, even after it is disabled. The write is
    rare (a process's first catalog per site, or a changed setting) and kept out of the GET's
    read transaction: upgrading that to a write could fail at once on SQLite under load. A
    database that refuses the write (read-only, full) still serves the catalog; submissions
    write the windows down again before they need them.
    """
    offered = offered_instruments(site, current_settings())
    if windows_current_for(site, offered):
        return
    try:
        with get_db().transaction() as session:
            row = session.get(Site, site.id)
            assert row is not None
            sync_windows(session, row, offered)
    except OperationalError as exc:
        logging.getLogger(__name__).warning(
            "catalog: could not record the offered instruments (%s); serving the catalog",
            type(exc).__name__)
