"""POST /submissions: a kiosk's batch of answers, answered item by item."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from pydantic import ValidationError

from shared.crisis import triggers_in_raw
from shared.schemas.common import Problem, may_hold_control_characters
from shared.schemas.submissions import SubmissionBatch, SubmissionBatchResponse, SubmissionItem

from ..app_settings import current as current_settings
from ..db import get_read_session, get_session, keep_on_refusal
from ..errors import ApiProblem, field_problem, validation_problem
from ..jsonguard import Repeated
from ..models import Kiosk, Site
from ..services.crisis import crisis_summary
from ..services.instruments import offered_instruments
from ..services.submissions import BatchSettings, process_batch, readable_items
from . import authenticated_kiosk, operation, registry
from .parsing import keys_repeated, repeated_problem

# The envelope documents its items by reference; each item is validated on its own.
registry.extra_models.append(SubmissionItem)

# Entries beyond MAX_BATCH are answered one by one, up to this many times MAX_BATCH in all.
ENTRY_CEILING_FACTOR = 4


@operation(
    "/submissions", "POST", summary="Submit a batch of instrument answers", tag="submissions",
    request_model=SubmissionBatch, raw_body=True,
    responses={200: ("One answer per item: accepted, replayed, rejected or conflict",
                     SubmissionBatchResponse),
               413: ("More than 4 x MAX_BATCH entries (crises in them are still recorded)",
                     Problem)},
)
def submit_batch(body: Any) -> dict[str, Any]:
    """Re-score, store and triage each item; one bad item does not sink the batch.

    A body the envelope model refuses is answered 422, but a crisis in any item that can be
    read from it is recorded first, and kept although the answer is a 4xx (keep_on_refusal).
    """
    # The kiosk row is only read, so the read-only checks can finish before the write lock.
    kiosk = authenticated_kiosk()
    site = get_read_session().get(Site, kiosk.site_id)
    assert site is not None  # a kiosk row always references its site (foreign key)
    settings = BatchSettings.from_config(current_app.config,
                                         offered_instruments(site, current_settings()))
    if isinstance(body, Repeated):
        # The envelope itself names a key twice ("items" twice hides one list of items from
        # whoever reads the other): refused, after the crises in every list were recorded.
        problem = repeated_problem(body)
        assert problem is not None
        lists = body.repeated.get("items") or [body.get("items")]
        raise _refused(problem, kiosk, settings,
                       [raw for items in lists for raw in readable_items({"items": items})])
    try:
        batch = SubmissionBatch.model_validate(body)
    except ValidationError as exc:
        raise _refused(validation_problem(exc), kiosk, settings, readable_items(body)) from exc
    ceiling = ENTRY_CEILING_FACTOR * settings.max_batch
    if len(batch.items) > ceiling:
        # Past the ceiling the per-entry answers themselves would be the burden (a 2 MiB body
        # holds a million tiny entries); the crises are still read and recorded first.
        problem = field_problem("items", f"holds {len(batch.items)} entries; send at most "
                                         f"{settings.max_batch} per request", 413)
        flagged = [raw for raw in batch.items if triggers_in_raw(raw)]
        raise _refused(problem, kiosk, settings, flagged)
    # One look at the body's bytes (read and cached by read_json) instead of walking every
    # string of every item: a kiosk's batch has no escapes unless someone typed one.
    text_checked = not may_hold_control_characters(request.get_data(cache=True))
    results = process_batch(get_session, kiosk, batch.items, settings=settings,
                            read_session_factory=get_read_session, text_checked=text_checked,
                            keys_repeated=keys_repeated())
    return {"results": results}


def _refused(problem: ApiProblem, kiosk: Kiosk, settings: BatchSettings,
             items: list[object]) -> ApiProblem:
    """Record the crises in a refused body's readable items; say so in the problem."""
    if items:
        answers = process_batch(get_session, kiosk, items, settings=settings,
                                read_session_factory=get_read_session,
                                refuse=f"the request was refused ({problem.title})")
        problem.extra.update(crisis_summary(answers))
        # What was recorded stands although the answer is a 4xx (the boundary commits it).
        keep_on_refusal()
    else:
        problem.extra.update({"crisis": [], "crisis_recorded": False})
    return problem
