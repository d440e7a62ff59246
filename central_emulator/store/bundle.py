"""Transaction Bundles: checking their entries, resolving their references, and the keys and
revocations onsite servers send in them as Binary resources."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from shared.tokens import KeyRing

from ..validation import Invalid, check_resource, supported
from .base import _TYPE, KEYS_CONTENT_TYPE, REVOKED_CONTENT_TYPE, FhirError, Resource
from .view import _View


def _checked_entries(bundle: Any) -> list[Resource]:
    """Return the entries of a transaction Bundle, or raise naming the first bad one."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(400, "invalid", "the body is not a Bundle", "Bundle")
    if bundle.get("type") != "transaction":
        raise FhirError(400, "not-supported", "only transaction Bundles are accepted here",
                        "Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(400, "invalid", "Bundle.entry is not a list", "Bundle.entry")
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            raise FhirError(400, "invalid", f"entry {index} is not an object", where)
        request = entry.get("request")
        if not isinstance(request, dict) or request.get("method") not in ("POST", "PUT") \
                or not isinstance(request.get("url"), str):
            raise FhirError(400, "not-supported", f"entry {index}: request.method must be "
                            "POST or PUT, with a url", f"{where}.request")
        try:
            check_resource(entry.get("resource"))
        except Invalid as exc:
            raise FhirError(400, exc.code, f"entry {index}: {exc}",
                            f"{where}.resource") from exc
    try:
        check_resource({**bundle, "entry": [
            {k: v for k, v in e.items() if k != "resource"} for e in entries]})
    except Invalid as exc:
        raise FhirError(400, "invalid", f"Bundle: {exc}", "Bundle") from exc
    return entries


def _rewrite(value: Any, urns: Mapping[str, str], view: _View, index: int) -> None:
    """Point references to bundle entries (urn:uuid) or conditions at the assigned ids."""
    if isinstance(value, list):
        for item in value:
            _rewrite(item, urns, view, index)
        return
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        if key == "reference" and isinstance(child, str):
            if child.startswith("urn:"):
                if child not in urns:
                    raise FhirError(400, "invalid", f"entry {index}: the reference {child} "
                                    "names no entry of this Bundle",
                                    f"Bundle.entry[{index}].resource")
                value[key] = urns[child]
            elif "?" in child:
                value[key] = _conditional_reference(child, view, index)
        else:
            _rewrite(child, urns, view, index)


def _check_targets(value: Any, view: _View, index: int, path: str = "") -> None:
    """Refuse a reference to a resource of a type this server holds that it does not hold.

    A real server checks referential integrity: an Observation about a Patient it has never
    seen is refused (422), not stored pointing nowhere. References to types it does not
    serve, absolute URLs and logical references (an identifier alone) are left as they are.
    """
    if isinstance(value, list):
        for number, item in enumerate(value):
            _check_targets(item, view, index, f"{path}[{number}]")
        return
    if not isinstance(value, dict):
        return
    literal = value.get("reference")
    if isinstance(literal, str) and literal.count("/") == 1 and "?" not in literal:
        kind, rid = literal.split("/")
        if supported(kind) and view.get(kind, rid) is None:
            raise FhirError(422, "processing", f"entry {index}: {path.lstrip('.')} names "
                            f"{literal}, which this server does not hold",
                            f"Bundle.entry[{index}].resource{path}")
    for key, child in value.items():
        if key != "reference":
            _check_targets(child, view, index, f"{path}.{key}")


def _conditional_reference(reference: str, view: _View, index: int) -> str:
    kind, _, query = reference.partition("?")
    if not _TYPE.match(kind):
        raise FhirError(400, "invalid", f"entry {index}: {reference!r} is not a reference",
                        f"Bundle.entry[{index}].resource")
    matches, _ = view.store._search(view, kind, parse_qsl(query, keep_blank_values=True))
    if len(matches) != 1:
        raise FhirError(412, "multiple-matches" if matches else "not-found",
                        f"entry {index}: the reference {reference!r} matches {len(matches)} "
                        "resources, not one", f"Bundle.entry[{index}].resource")
    return f"{kind}/{matches[0]['id']}"


def _decode_binary(resource: Mapping[str, Any], index: int) -> Any:
    try:
        return json.loads(base64.b64decode(str(resource.get("data", "")), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise FhirError(400, "invalid", f"entry {index}: Binary.data is not base64 of JSON",
                        f"Bundle.entry[{index}].resource.data") from exc


def _absorb_binary(resource: Mapping[str, Any], ring: KeyRing, index: int) -> None:
    """Trust the public keys and revocations an onsite server sends as Binary resources."""
    if resource.get("resourceType") != "Binary":
        return
    kind = resource.get("contentType")
    if kind == KEYS_CONTENT_TYPE:
        try:
            _add_jwks(ring, _decode_binary(resource, index))
        except FhirError as exc:
            raise FhirError(400, "invalid", f"entry {index}: {exc}",
                            f"Bundle.entry[{index}].resource.data") from exc
    elif kind == REVOKED_CONTENT_TYPE:
        ids = _decode_binary(resource, index)
        try:
            if not isinstance(ids, list):
                raise TypeError("not a list")
            ring.revoke(str(i) for i in ids)
        except (TypeError, ValueError) as exc:
            raise FhirError(400, "invalid", f"entry {index}: the revocation list is not a "
                            f"JSON list of token ids ({exc})",
                            f"Bundle.entry[{index}].resource.data") from exc


def _add_jwks(ring: KeyRing, jwks: Any) -> int:
    """Trust a site's keys and honour its retirements (a retired key id stays refused)."""
    try:
        return ring.add_jwks(jwks)
    except ValueError as exc:
        raise FhirError(400, "invalid", str(exc)) from exc
