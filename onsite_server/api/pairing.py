"""POST /pair: a kiosk trades a one-time pairing code for its device token."""

from __future__ import annotations

from flask import current_app, request

from shared.schemas.common import Problem
from shared.schemas.pairing import PairRequest, PairResponse

from ..app_settings import current as current_settings
from ..db import get_session, keep_on_refusal
from ..models import Site
from ..services.pairing import PairingError, PairingLimits, pair_limited
from . import operation


@operation(
    "/pair", "POST", summary="Pair a kiosk", tag="pairing", auth=False,
    request_model=PairRequest,
    responses={201: ("Paired; the token is shown only once", PairResponse),
               400: ("Unknown, used or expired code", Problem),
               429: ("Too many failed pairings from this address or in all; see Retry-After",
                     Problem)},
)
def pair_kiosk(body: PairRequest) -> tuple[PairResponse, int]:
    """Exchange a pairing code for a device token."""
    session = get_session()
    settings = current_settings()
    limits = PairingLimits(
        per_address=settings.pairing_failures_per_address,
        total=settings.pairing_failures_total,
        window_seconds=settings.pairing_failure_window_seconds,
    )
    # Too many failures raise PairingRateLimited, a ServiceError: 429 with Retry-After.
    try:
        paired = pair_limited(session, body.pairing_code, body.app_version,
                              address=request.remote_addr, limits=limits)
    except PairingError:
        # The failure must count although the answer is a 400: its audit row is kept.
        keep_on_refusal()
        raise
    site = session.get(Site, paired.kiosk.site_id)
    assert site is not None
    return PairResponse(
        kiosk_id=paired.kiosk.public_id, token=paired.token, site=site.slug,
        site_name=site.name, timezone=site.timezone,
        tls_fingerprint_sha256=current_app.config.get("TLS_FINGERPRINT_SHA256"),
    ), 201
