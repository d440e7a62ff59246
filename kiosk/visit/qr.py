"""The QR screen's codes: the ticket just booked, the advocate's link and contact card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.i18n import N_
from shared.schemas.members import AdvocateLinkResponse

from ..backend import Offline, Refused
from .words import QrCode

if TYPE_CHECKING:
    from .base import VisitCore


class QrCodes:
    """The advocate link fetched for this visit, and the codes shown for it."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit
        self.advocate: AdvocateLinkResponse | None = None

    def holds_member_data(self) -> bool:
        """Tell whether the member's advocate link is held."""
        return self.advocate is not None

    def qr_codes(self) -> list[QrCode]:
        """The codes for the QR screen, with what scanning each does; fetches the link.

        Just after a booking its ticket comes first (it sits with the booking's summary, above
        the fold); the advocate's link and contact card follow.
        """
        visit = self.visit
        identity = visit.online_identity
        booked = visit.booking.booked
        codes: list[QrCode] = []
        if booked is not None and booked.ticket_url:
            codes.append(QrCode("ticket", booked.ticket_url,
                                N_("Scan to keep your ticket on your phone.")))
        if identity is not None and self.advocate is None:
            try:
                self.advocate = visit.backend.advocate_link(identity)
            except (Offline, Refused):
                visit.needs_connection = True
        if self.advocate is not None:
            codes.append(QrCode("advocate", self.advocate.link_url,
                                N_("Scan to connect with your advocate, {name}.")))
            codes.append(QrCode("vcard", self.advocate.vcard,
                                N_("Scan to save your advocate's phone and email.")))
        return codes
