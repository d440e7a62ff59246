"""The member's advocate: who they are, and what the kiosk's two QR codes hold."""

from __future__ import annotations

from pydantic import Field

from .common import Out, Strict


class AdvocateLinkRequest(Strict):
    """Ask for the member's advocate link (an advocate is assigned first if there is none)."""

    member_ref: str = Field(min_length=1, max_length=512,
                            description="From POST /identify.")


class AdvocatePublic(Out):
    """An advocate's public contact details: what the kiosk may show and the vCard holds."""

    name: str
    phone: str | None = None
    email: str | None = None
    languages: list[str] = Field(default_factory=list)


class AdvocateLinkResponse(Out):
    """The member's advocate and the contents of the advocate-link and vCard QR codes."""

    advocate: AdvocatePublic
    link_url: str = Field(description="The advocate-link QR's content: central's connect "
                                      "page with a signed token (no name or health data).")
    vcard: str = Field(description="The 'save contact' QR's content (vCard 3.0).")
