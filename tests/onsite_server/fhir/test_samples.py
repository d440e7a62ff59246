"""The sample Bundles in docs/fhir-samples/ are what the builders make today, and valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from onsite_server.fhir import validate
from onsite_server.fhir.samples import samples, text

FOLDER = Path(__file__).resolve().parents[3] / "docs" / "fhir-samples"


@pytest.mark.parametrize("name", sorted(samples()))
def test_each_sample_is_current_and_valid(name: str) -> None:
    bundle = samples()[name]
    validate(bundle)
    written = (FOLDER / f"{name}.json").read_text(encoding="utf-8")
    assert written == text(bundle), (
        f"docs/fhir-samples/{name}.json is stale: python -m onsite_server.fhir.samples")


def test_every_kind_of_message_has_a_sample() -> None:
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(samples())
