"""POST /identify: employee or badge id plus birth date → an opaque member reference.

Validation errors (empty id, malformed date) are answered with a 422 and do not count as
attempts: they never reach the roster, so they reveal nothing about it.
"""

from __future__ import annotations

import time

from shared.schemas.common import Problem
from shared.schemas.identify import IdentifyRequest, IdentifyResponse

from ..app_settings import current as current_settings
from ..db import get_db, release_request_session
from ..errors import ApiProblem
from ..services.identify import (
    NOT_FOUND_DETAIL,
    NOT_FOUND_TITLE,
    identify_counted,
    pad_to_floor,
)
from . import authenticated_kiosk, operation


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
    settings = current_settings()
    kiosk = authenticated_kiosk()  # its columns only: the attempt is written in its own session
    # The service commits the attempt in a transaction of its own, so that it counts although
    # a miss is answered 404; the request's session (only the token check read through it)
    # gives its connection back first. Too many attempts raise RateLimited: 429 + Retry-After.
    release_request_session()
    found = identify_counted(
        get_db().transaction, kiosk=kiosk, typed_id=body.id, birth_date=body.birth_date,
        secret=settings.secret_key, rate_per_minute=settings.identify_rate_per_minute,
    )
    pad_to_floor(started, settings.identify_min_seconds)
    if found is None:
        raise ApiProblem(404, NOT_FOUND_TITLE, NOT_FOUND_DETAIL)
    return IdentifyResponse(member_ref=found.member_ref, first_name=found.first_name,
                            language=found.language)
