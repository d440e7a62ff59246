"""Kiosk app versions at the API's door: older kiosks are served, too-old ones told (426).

Every answer declares ``KIOSK_MIN_VERSION`` in ``X-Kiosk-Min-Version``; a kiosk whose
``X-Kiosk-Version`` is older is refused before anything is read or stored, so it keeps its
outbox until it is updated (shared/versions.py, docs/deployment.md).
"""

from __future__ import annotations

from flask import Response, current_app, request

from shared.versions import (
    KIOSK_VERSION_HEADER,
    MIN_KIOSK_VERSION_HEADER,
    UNVERSIONED_KIOSK,
    is_older,
    parse_version,
)

from ..errors import ApiProblem, field_problem


def check_kiosk_version() -> None:
    """Refuse a kiosk app older than the server serves (426), before anything is read or stored.

    A kiosk that sends no version predates versioning and is taken as ``UNVERSIONED_KIOSK``.
    """
    minimum = str(current_app.config["KIOSK_MIN_VERSION"])
    sent = request.headers.get(KIOSK_VERSION_HEADER)
    version = UNVERSIONED_KIOSK if sent is None else sent.strip()
    try:
        parse_version(version, KIOSK_VERSION_HEADER)
    except ValueError as exc:
        raise field_problem(KIOSK_VERSION_HEADER, str(exc).partition(": ")[2], 400) from exc
    if is_older(version, minimum):
        raise ApiProblem(
            426, "Kiosk app too old",
            f"This kiosk runs version {version}; this server needs {minimum} or newer. Update "
            "the kiosk app: nothing was stored, so keep the data and send it again then.",
            errors=[{"field": KIOSK_VERSION_HEADER, "message": f"must be {minimum} or newer"}],
            headers={"Upgrade": f"onsite-kiosk/{minimum}"},
            min_kiosk_version=minimum, kiosk_version=version)


def declare_min_version(response: Response) -> Response:
    """Say on every answer which kiosk versions the server serves, so a kiosk can warn early."""
    response.headers[MIN_KIOSK_VERSION_HEADER] = str(current_app.config["KIOSK_MIN_VERSION"])
    return response
