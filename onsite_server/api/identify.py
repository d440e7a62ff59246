"""POST /identify: employee or badge id plus birth date → an opaque member reference.

Validation errors (empty id, malformed date) are answered with a 422 and do not count as
attempts: they never reach the roster, so they reveal nothing about it.
"""

from __future__ import annotations

import time

from flask import current_app

from shared.schemas.common import Problem
from shared.schemas.identify import IdentifyRequest, IdentifyResponse

from ..db import get_session
from ..errors import ApiProblem
from ..services.identify import (
    NOT_FOUND_DETAIL,
    NOT_FOUND_TITLE,
    identify,
    pad_to_floor,
)
from . import current_kiosk, operation


@operation(
    "/identify", "POST", summary="Identify a member", tag="identify",
    request_model=IdentifyRequest,
    responses={200: ("Matched", IdentifyResponse),
               404: ("No match (one answer for every kind of miss)", Problem),
               429: ("Too many attempts from this kiosk; see Retry-After", Problem)},
)
def post_identify(body: IdentifyRequest) -> IdentifyResponse:
    """Match id + birth date against the roster of the kiosk's employer."""
    started = time.monotonic()
    session = get_session()
    config = current_app.config
    # Too many attempts raise RateLimited, a ServiceError: 429 with Retry-After (errors.py).
    found = identify(
        session, kiosk=current_kiosk(), typed_id=body.id, birth_date=body.birth_date,
        secret=str(config["SECRET_KEY"]),
        rate_per_minute=int(config["IDENTIFY_RATE_PER_MINUTE"]),
    )
    # The attempt must count even though a miss is answered with a 404 (which rolls the
    # request back), so it is committed here, before the answer and the padding sleep.
    session.commit()
    pad_to_floor(started, float(config["IDENTIFY_MIN_SECONDS"]))
    if found is None:
        raise ApiProblem(404, NOT_FOUND_TITLE, NOT_FOUND_DETAIL)
    return IdentifyResponse(member_ref=found.member_ref, first_name=found.first_name,
                            language=found.language)
