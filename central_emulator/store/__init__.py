"""The emulator's FHIR store (a package: base shapes and rules, the transaction's view, Bundle
handling, and the Store itself in core.py); its public names are re-exported here."""

from __future__ import annotations

from .base import (
    ADVOCATE_SYSTEM,
    KEYS_CONTENT_TYPE,
    MEMBER_SYSTEM,
    REVOKED_CONTENT_TYPE,
    Control,
    FhirError,
    Resource,
    identifiers,
    now_iso,
)
from .core import Store

__all__ = ["ADVOCATE_SYSTEM", "KEYS_CONTENT_TYPE", "MEMBER_SYSTEM", "REVOKED_CONTENT_TYPE",
           "Control", "FhirError", "Resource", "Store", "identifiers", "now_iso"]
