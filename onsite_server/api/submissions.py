"""POST /submissions: a kiosk's batch of answers, answered item by item."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import ValidationError

from shared.schemas.submissions import SubmissionBatch, SubmissionBatchResponse, SubmissionItem

from ..db import get_read_session, get_session
from ..errors import validation_problem
from ..models import Site
from ..services.instruments import offered_instruments
from ..services.submissions import BatchSettings, crisis_summary, process_batch, readable_items
from . import authenticated_kiosk, operation, registry

# The envelope documents its items by reference; each item is validated on its own.
registry.extra_models.append(SubmissionItem)


@operation(
    "/submissions", "POST", summary="Submit a batch of instrument answers", tag="submissions",
    request_model=SubmissionBatch, raw_body=True,
    responses={200: ("One answer per item: accepted, replayed, rejected or conflict",
                     SubmissionBatchResponse)},
)
def submit_batch(body: Any) -> dict[str, Any]:
    """Re-score, store and triage each item; one bad item does not sink the batch.

    A body the envelope model refuses is answered 422, but a crisis in any item that can be
    read from it is recorded first (and committed, since a 4xx answer rolls the request back).
    """
    # The kiosk row is only read, so the read-only checks can finish before the write lock.
    kiosk = authenticated_kiosk()
    site = get_read_session().get(Site, kiosk.site_id)
    assert site is not None  # a kiosk row always references its site (foreign key)
    settings = BatchSettings.from_config(current_app.config,
                                         offered_instruments(site, current_app.config))
    try:
        batch = SubmissionBatch.model_validate(body)
    except ValidationError as exc:
        problem = validation_problem(exc)
        items = readable_items(body)
        if items:
            answers = process_batch(get_session, kiosk, items, settings=settings,
                                    read_session_factory=get_read_session,
                                    refuse="the request's envelope is invalid (see errors)")
            problem.extra.update(crisis_summary(answers))
            get_session().commit()
        raise problem from exc
    results = process_batch(get_session, kiosk, batch.items, settings=settings,
                            read_session_factory=get_read_session)
    return {"results": results}
