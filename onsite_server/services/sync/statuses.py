"""Referral statuses read back from central's Tasks; a status only moves forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select

from ...models import Referral
from .settings import SyncSettings, log

# Task status at central -> our referral status; our statuses only ever move forward.
FROM_TASK: dict[str, str] = {
    "requested": "sent", "received": "acknowledged", "accepted": "acknowledged",
    "ready": "acknowledged", "in-progress": "contacted", "on-hold": "contacted",
    "completed": "closed", "cancelled": "closed", "failed": "closed",
}
_ORDER = ("new", "sent", "acknowledged", "contacted", "closed")


def merge_status(ours: str, theirs: str) -> str:
    """Return the further of two referral statuses: a status never moves back."""
    return max(ours, theirs, key=_ORDER.index)


class Searcher(Protocol):
    """What the status pull needs of the central client."""

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        """Run a FHIR search."""


def pull_statuses(transaction: Callable[[], Any], client: Searcher, settings: SyncSettings,
                  *, chunk: int = 50) -> int:
    """Read the Tasks of forwarded referrals back from central; return how many moved.

    One search per chunk of referrals (``identifier=system|a,system|b``), so a site with many
    open referrals costs a few requests per cycle.
    """
    system = settings.systems("referral-task")
    with transaction() as session:
        open_ids = list(session.scalars(select(Referral.public_id).where(
            Referral.status.in_(("sent", "acknowledged", "contacted")))))
    moved = 0
    for start in range(0, len(open_ids), chunk):
        part = open_ids[start:start + chunk]
        tasks = client.search("Task", {"identifier": ",".join(f"{system}|{p}" for p in part),
                                       "_count": str(len(part))})
        found: dict[str, str] = {}
        for resource in tasks:
            for ident in resource.get("identifier", []):
                if ident.get("system") == system and resource.get("status") in FROM_TASK:
                    found[str(ident.get("value"))] = FROM_TASK[str(resource["status"])]
        if not found:
            continue
        with transaction() as session:
            for referral in session.scalars(select(Referral).where(
                    Referral.public_id.in_(list(found)))):
                merged = merge_status(referral.status, found[referral.public_id])
                if merged != referral.status:
                    log.info("referral %s: %s -> %s (from central)", referral.public_id,
                             referral.status, merged)
                    referral.status = merged
                    moved += 1
    return moved
