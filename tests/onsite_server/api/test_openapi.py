"""The OpenAPI document: valid, matching the routes, and fuzzed with schemathesis."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from onsite_server.api import registry
from onsite_server.openapi import _openapi_path

# The API description: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def test_document_is_valid_openapi(client: Any) -> None:
    from openapi_spec_validator import validate

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


# schemathesis's generation modes (checked against its GenerationMode in the test). It and
# openapi-spec-validator are imported by the tests that use them: at the top of this module they
# cost every pytest worker about 0.45 s of CPU to collect it.
MODES = ("positive", "negative")


@pytest.mark.parametrize("mode", MODES)
def test_fuzz_api(app: Flask, kiosk: dict[str, Any], mode: str) -> None:
    """Schemathesis fuzzes every operation with valid and invalid data: no 5xx, every answer
    conforms to the document, and what the document calls invalid is refused."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.generation import GenerationMode

    assert {m.value for m in GenerationMode} == set(MODES)
    # Every conformance check except positive_data_acceptance (see the comment below).
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance,
              negative_data_rejection]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {kiosk['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(registry.operations)
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # Business rules (an unknown pairing code, a full slot) may rightly refuse
            # schema-valid data, so "positive data acceptance" is not a property of this API:
            # a schema cannot say what a valid member reference is.
            case.call_and_validate(headers=headers, checks=checks)

        check()
