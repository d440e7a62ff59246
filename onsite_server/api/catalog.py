"""GET /catalog: instruments, upcoming events and site settings, with ETag revalidation."""

from __future__ import annotations

from flask import Response, current_app, request

from shared.schemas.catalog import CatalogResponse

from ..db import get_session
from ..models import Site
from ..services.catalog import build_catalog
from ..services.instruments import offered_instruments, sync_windows
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
    # What a kiosk is shown is what it may file later, even after it is disabled.
    sync_windows(session, site, offered_instruments(site, current_app.config))
    catalog = build_catalog(session, site, current_app.config)
    headers = {"ETag": catalog.etag, "Cache-Control": "no-cache"}
    inm = request.if_none_match
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2), so W/"x" matches "x".
    if inm.star_tag or inm.contains_weak(catalog.etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(catalog.body, status=200, mimetype="application/json", headers=headers)
