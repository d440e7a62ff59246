"""Shared payload schemas: edge cases found by fuzzing stay fixed."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.schemas.common import AwareDatetime

ADAPTER: TypeAdapter[object] = TypeAdapter(AwareDatetime)


def test_aware_datetime_is_converted_to_utc() -> None:
    value = ADAPTER.validate_python("2026-11-27T09:00:00-05:00")
    assert value.isoformat() == "2026-11-27T14:00:00+00:00"  # type: ignore[attr-defined]


def test_naive_datetime_is_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="timezone offset"):
        ADAPTER.validate_python("2026-11-27T09:00:00")


def test_datetime_that_overflows_in_utc_is_a_validation_error() -> None:
    # Found by schemathesis: year 1 with a positive offset falls before datetime.min in UTC.
    with pytest.raises(ValidationError, match="out of range"):
        ADAPTER.validate_python("0001-01-01T00:00:00+01:00")
