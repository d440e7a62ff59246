"""The OpenAPI document: valid, matching the routes, and fuzzed with schemathesis."""

from __future__ import annotations

from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import positive_data_acceptance

from onsite_server.api import registry
from onsite_server.openapi import _openapi_path


def test_document_is_valid_openapi(client: Any) -> None:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_document_matches_routes(app: Flask, client: Any) -> None:
    """Every documented operation is a real route, and every API route is documented."""
    doc = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi_document":
            continue
        for method in rule.methods or ():
            if method in ("HEAD", "OPTIONS"):
                continue
            routed.add((_openapi_path(rule.rule.removeprefix("/api/v1")), method))
    assert documented == routed
    assert {(_openapi_path(op.path), op.method) for op in registry.operations} == routed


def test_fuzz_api(app: Flask, kiosk: dict[str, Any]) -> None:
    """Schemathesis fuzzes every operation: no 5xx, and every answer conforms to the document."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {kiosk['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(registry.operations)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # Business rules (an unknown pairing code, a full slot) may rightly refuse
            # schema-valid data, so "positive data acceptance" is not a property of this API.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
