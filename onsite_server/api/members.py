"""POST /members/advocate-link: the member's one advocate, and the QR codes that reach them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import current_app

from shared.schemas.common import Problem
from shared.schemas.members import AdvocateLinkRequest, AdvocateLinkResponse, AdvocatePublic
from shared.tokens import Purpose

from ..app_settings import current as current_settings
from ..db import get_db, get_session
from ..services.advocates import advocate_link
from ..services.central_keys import ensure_published
from ..services.pairing import kiosk_actor
from ..services.signing import KeyStore
from . import current_kiosk, member_for_ref, operation


@operation(
    "/members/advocate-link", "POST", summary="Get the member's advocate and advocate link",
    tag="members", request_model=AdvocateLinkRequest,
    responses={200: ("The assigned advocate, the link QR and the vCard QR contents",
                     AdvocateLinkResponse),
               409: ("No advocate can be assigned (none is active)", Problem)},
)
def post_advocate_link(body: AdvocateLinkRequest) -> AdvocateLinkResponse:
    """Assign an advocate if needed, then issue a signed link to central's connect page."""
    settings = current_settings()
    # Central must know the signing key before the member scans: a fresh server's first link
    # would otherwise be refused until the sync worker had run (docs/tokens.md).
    ensure_published(settings, get_db(current_app).transaction, Purpose.ADVOCATE_LINK)
    session = get_session()
    kiosk = current_kiosk()
    member = member_for_ref(session, kiosk, body.member_ref)
    # With no active advocate, advocates.NoAdvocate (a ServiceError) answers 409.
    link = advocate_link(
        session, member, keys=KeyStore(Path(settings.signing_key_dir)),
        web_url=settings.central_web_url,
        lifetime=timedelta(days=settings.advocate_link_days),
        actor=kiosk_actor(kiosk), organization=settings.branding_name)
    adv = link.advocate
    return AdvocateLinkResponse(
        advocate=AdvocatePublic(name=adv.name, phone=adv.phone, email=adv.email,
                                languages=list(adv.languages or [])),
        link_url=link.link_url, vcard=link.vcard)
