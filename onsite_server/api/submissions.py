"""POST /submissions: a kiosk's batch of answers, answered item by item."""

from __future__ import annotations

from typing import Any

from flask import current_app

from shared.schemas.submissions import SubmissionBatch, SubmissionBatchResponse, SubmissionItem

from ..db import get_read_session, get_session
from ..errors import field_problem
from ..services.submissions import process_batch
from . import authenticated_kiosk, operation, registry

# The envelope documents its items by reference; each item is validated on its own.
registry.extra_models.append(SubmissionItem)


@operation(
    "/submissions", "POST", summary="Submit a batch of instrument answers", tag="submissions",
    request_model=SubmissionBatch,
    responses={200: ("One answer per item: accepted, replayed, rejected or conflict",
                     SubmissionBatchResponse)},
)
def submit_batch(body: SubmissionBatch) -> dict[str, Any]:
    """Re-score, store and triage each item; one bad item does not sink the batch."""
    limit = int(current_app.config["MAX_BATCH"])
    if len(body.items) > limit:
        raise field_problem("items", f"must hold at most {limit} items per request")
    # The kiosk row is only read, so the read-only checks can finish before the write lock.
    results = process_batch(
        get_session, authenticated_kiosk(), body.items,
        secret=str(current_app.config["SECRET_KEY"]),
        ref_max_age=int(current_app.config["MEMBER_REF_TTL_SECONDS"]),
        read_session_factory=get_read_session,
    )
    return {"results": results}
