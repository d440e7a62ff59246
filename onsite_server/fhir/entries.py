"""Transaction Bundle entries: conditional creates, and shared resources merged into central's copy.

An ``Entries`` collects what one outbox row sends. Facts are conditional creates on our
identifiers; a shared resource (``Owned``: the ServiceRequest, Task, contact preference, and a
Patient that gains the chosen contact) is created conditionally while central has none, and
otherwise merged into central's copy (``ownership.merge``) and written to its id with
``If-Match`` on the version read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .ownership import merge

_FULL_URL_NAMESPACE = uuid.UUID("3c1b7a52-9e0d-4b8f-a6f4-5d2e1c0b9a87")
Resource = dict[str, Any]


@dataclass(frozen=True)
class Owned:
    """A resource onsite and central both write: merged into central's copy, never replaced."""

    full_url: str
    system: str
    value: str
    resource: Resource  # onsite's copy, as it is created when central has none
    fields: tuple[str, ...]  # the elements of it that onsite owns (``ownership.merge``)
    create: bool = True  # False: only change what central holds (a withdrawal)

    @property
    def kind(self) -> str:
        """The resource type."""
        return str(self.resource["resourceType"])


Held = Mapping[str, Resource]  # fullUrl of an Owned -> central's copy (with meta.versionId)


@dataclass
class Entries:
    """Bundle entries in order, with the fullUrl of each resource for references."""

    items: list[Resource | Owned] = field(default_factory=list)

    @property
    def owned(self) -> list[Owned]:
        """The shared resources, whose entries depend on what central holds."""
        return [item for item in self.items if isinstance(item, Owned)]

    def own(self, resource: Resource, system: str, value: str, fields: Sequence[str], *,
            create: bool = True) -> str:
        """Add a shared resource (see ``bundle``); return its fullUrl."""
        full_url = _full_url(resource["resourceType"], system, value)
        self.items.append(Owned(full_url, system, value, resource, tuple(fields), create))
        return full_url

    def create(self, resource: Resource, system: str, value: str,
               condition: str | None = None) -> str:
        """Add a conditional create on an identifier (or another ``condition``); return the
        resource's fullUrl."""
        full_url = _full_url(resource["resourceType"], system, value)
        self.items.append({"fullUrl": full_url, "resource": resource, "request": {
            "method": "POST", "url": resource["resourceType"],
            "ifNoneExist": condition or f"identifier={system}|{value}"}})
        return full_url

    def update(self, resource: Resource, system: str, value: str) -> str:
        """Add a conditional update on an identifier; return the resource's fullUrl."""
        full_url = _full_url(resource["resourceType"], system, value)
        self.items.append({"fullUrl": full_url, "resource": resource, "request": {
            "method": "PUT", "url": f"{resource['resourceType']}?identifier={system}|{value}"}})
        return full_url

    def put(self, resource: Resource, resource_id: str) -> str:
        """Add an update by a client-assigned id (what we alone own, such as our keys)."""
        kind = resource["resourceType"]
        full_url = _full_url(kind, "id", resource_id)
        self.items.append({"fullUrl": full_url, "resource": {**resource, "id": resource_id},
                           "request": {"method": "PUT", "url": f"{kind}/{resource_id}"}})
        return full_url

    def bundle(self, held: Held | None = None) -> Resource:
        """Return the transaction Bundle, given central's copies of the shared resources.

        A shared resource central does not hold is a conditional create; one it holds is
        merged (``ownership.merge``) and written to its id with ``If-Match`` on the version
        read, and references to it name that id.
        """
        held = held or {}
        entries: list[Resource] = []
        literal: dict[str, str] = {}
        for item in self.items:
            if not isinstance(item, Owned):
                entries.append(item)
                continue
            theirs = held.get(item.full_url)
            if theirs is None:
                if item.create:
                    entries.append({"fullUrl": item.full_url, "resource": item.resource,
                                    "request": {"method": "POST", "url": item.kind,
                                                "ifNoneExist": f"identifier={item.system}|"
                                                               f"{item.value}"}})
                continue
            rid = str(theirs["id"])
            literal[item.full_url] = f"{item.kind}/{rid}"
            version = str((theirs.get("meta") or {}).get("versionId", ""))
            request: Resource = {"method": "PUT", "url": f"{item.kind}/{rid}"}
            if version:
                request["ifMatch"] = f'W/"{version}"'
            entries.append({"resource": merge(theirs, item.resource, item.fields),
                            "request": request})
        if literal:
            entries = [_point(entry, literal) for entry in entries]
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def created_instead(self, bundle: Resource, answer: Any) -> bool:
        """Say whether a shared resource meant to be created was found already at central.

        The conditional create then wrote nothing (another worker, or central, was first), so
        our version of it is not there yet: read it and merge.
        """
        urls = {item.full_url for item in self.owned}
        replies = answer.get("entry") if isinstance(answer, dict) else None
        if not isinstance(replies, list):
            return False
        for entry, reply in zip(bundle["entry"], replies, strict=False):
            if entry.get("fullUrl") in urls and entry["request"]["method"] == "POST" and \
                    not str((reply.get("response") or {}).get("status", "")).startswith("201"):
                return True
        return False


def _point(value: Any, literal: Mapping[str, str]) -> Any:
    """Return a copy with references to bundle fullUrls replaced by literal ``Type/id``."""
    if isinstance(value, list):
        return [_point(v, literal) for v in value]
    if isinstance(value, dict):
        return {k: (literal.get(v, v) if k == "reference" and isinstance(v, str)
                    else _point(v, literal)) for k, v in value.items()}
    return value


def _full_url(kind: str, system: str, value: str) -> str:
    # Stable per business identifier, so the same fact has the same fullUrl in every retry.
    return f"urn:uuid:{uuid.uuid5(_FULL_URL_NAMESPACE, f'{kind}|{system}|{value}')}"
