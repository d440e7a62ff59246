"""Who owns which element of the resources onsite and central both write, and the merge.

The ServiceRequest and the Task of a referral are shared: the kiosk's findings are ours, the
work on them is central's. An update never replaces what central holds: it reads central's
copy, sets only the elements onsite owns on it (``merge``) and writes it back with
``If-Match`` on the version it read, so an advocate's edit in between makes the write fail
(412) instead of being lost, and the worker reads again. docs/advocate-handoff.md has the
table this code follows.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

Resource = dict[str, Any]

# Written on every note onsite adds, so a merge tells our notes from central's.
ONSITE_AUTHOR = "Onsite Wellness (kiosk findings)"

# Elements onsite owns: set from our copy on every update (an element we no longer send is
# removed). Everything else on central's copy is central's and stays as it is.
SERVICE_REQUEST_FIELDS: tuple[str, ...] = (
    "intent", "code", "category", "subject", "reasonCode", "reasonReference",
    "supportingInfo", "authoredOn", "requester")
TASK_FIELDS: tuple[str, ...] = ("intent", "focus", "for", "authoredOn", "requester")

# FHIR request-priority, least to most pressing: a priority only ever rises.
PRIORITY_ORDER: tuple[str, ...] = ("routine", "urgent", "asap", "stat")
# Task statuses in the order work moves; on-hold sits beside in-progress. A status only
# moves forward, and a closed Task stays closed.
TASK_ORDER: Mapping[str, int] = {"draft": 0, "requested": 1, "received": 2, "accepted": 3,
                                 "ready": 4, "in-progress": 5, "on-hold": 5, "completed": 6}
TASK_CLOSED = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
REQUEST_CLOSED = frozenset({"completed", "revoked", "entered-in-error"})


def higher_priority(central: str | None, ours: str | None) -> str | None:
    """Return the more pressing of two request priorities (an unknown one counts lowest)."""
    def rank(value: str | None) -> int:
        return PRIORITY_ORDER.index(value) if value in PRIORITY_ORDER else -1
    return ours if rank(ours) > rank(central) else central


def request_status(central: str | None, ours: str | None, priority: str | None) -> str | None:
    """Return a ServiceRequest's status after an update from onsite.

    Onsite sets ``active`` when it creates the request and ``revoked`` when consent is
    withdrawn; everything in between is central's. A crisis (``stat``) reopens a request that
    onsite revoked, since a crisis is sent whatever the consent.
    """
    if central == "revoked" and ours == "active" and priority == "stat":
        return "active"
    if central is None:
        return ours
    if central in REQUEST_CLOSED:
        return central
    return "revoked" if ours == "revoked" else central


def task_status(central: str | None, ours: str | None, priority: str | None) -> str | None:
    """Return a Task's status after an update from onsite: forward only, closed stays closed.

    ``cancelled`` from onsite (its ServiceRequest was revoked) closes an open Task; a crisis
    reopens a Task cancelled that way.
    """
    if central == "cancelled" and ours == "requested" and priority == "stat":
        return "requested"
    if central is None:
        return ours
    if central in TASK_CLOSED:
        return central
    if ours == "cancelled":
        return "cancelled"
    if ours is not None and TASK_ORDER.get(ours, -1) > TASK_ORDER.get(central, 0):
        return ours
    return central


def _identifiers(central: Any, ours: Any) -> list[Any]:
    out = [copy.deepcopy(i) for i in (central or [])]
    seen = {(i.get("system"), i.get("value")) for i in out if isinstance(i, dict)}
    for ident in ours or []:
        if (ident.get("system"), ident.get("value")) not in seen:
            out.append(copy.deepcopy(ident))
    return out


# Evidence only accumulates: answers deleted onsite after the retention period are still at
# central, and its references to them stay. References carry their target's identifier, so
# ours replaces the same one central resolved.
# A member's contact points accumulate the same way: ours is added beside central's.
_UNION = frozenset({"supportingInfo", "reasonReference", "telecom"})
PATIENT_FIELDS: tuple[str, ...] = ("telecom",)
# The member's contact preference is theirs, told through the kiosk: onsite sets it all;
# central's notes and its status (completed once contacted) stay.
PREFERENCE_FIELDS: tuple[str, ...] = ("category", "subject", "requester", "about", "medium",
                                      "authoredOn")


def _key(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    if "reference" in item or "identifier" in item:
        ident = item.get("identifier")
        return (ident.get("system"), ident.get("value")) if isinstance(ident, dict) else None
    return (item.get("system"), item.get("value")) if "value" in item else None


def _union(central: Any, ours: Any) -> list[Any]:
    key = _key
    mine = [copy.deepcopy(r) for r in ours or []]
    keys = {key(r) for r in mine} - {None}
    return [copy.deepcopy(r) for r in central or [] if key(r) is None or key(r) not in keys] + mine


def _shared_request_parts(out: Resource, ours: Mapping[str, Any], meta: Resource) -> None:
    """Set the security label, notes and performer of a ServiceRequest, Task or
    CommunicationRequest: our label and notes replace ours, central's notes and performer stay."""
    if "security" in (ours.get("meta") or {}):
        meta["security"] = copy.deepcopy(ours["meta"]["security"])
    else:
        meta.pop("security", None)
    theirs = [n for n in out.get("note", []) if n.get("authorString") != ONSITE_AUTHOR]
    notes = theirs + copy.deepcopy(list(ours.get("note", [])))
    if notes:
        out["note"] = notes
    else:
        out.pop("note", None)
    if not out.get("performer") and ours.get("performer"):
        out["performer"] = copy.deepcopy(ours["performer"])


def _take_fields(out: Resource, ours: Mapping[str, Any], fields: Sequence[str]) -> None:
    """Set the onsite-owned elements from ours (lists of references are joined)."""
    for name in fields:
        if name in _UNION:
            joined = _union(out.get(name), ours.get(name))
            if joined:
                out[name] = joined
        elif name in ours:
            out[name] = copy.deepcopy(ours[name])
        else:
            out.pop(name, None)


def merge(central: Mapping[str, Any], ours: Mapping[str, Any],
          fields: Sequence[str]) -> Resource:
    """Return central's copy with onsite's elements set on it; central's own elements stay.

    ``fields`` are the onsite-owned elements to take from ``ours`` (none for a withdrawal,
    which only changes the status). The priority only rises, our notes (``ONSITE_AUTHOR``)
    are replaced and central's kept, the status follows ``request_status``/``task_status``.
    """
    kind = central.get("resourceType")
    out: Resource = copy.deepcopy(dict(central))
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items()
            if k not in ("versionId", "lastUpdated")}
    _take_fields(out, ours, fields)
    if fields and kind in ("ServiceRequest", "Task", "CommunicationRequest"):
        _shared_request_parts(out, ours, meta)
    if fields and "identifier" in ours:
        out["identifier"] = _identifiers(out.get("identifier"), ours["identifier"])
    if meta:
        out["meta"] = meta
    priority = higher_priority(out.get("priority"), ours.get("priority"))
    if priority is not None:
        out["priority"] = priority
    status_of = task_status if kind == "Task" else request_status
    status = status_of(out.get("status"), ours.get("status"), priority)
    if status is not None:
        out["status"] = status
    return out
