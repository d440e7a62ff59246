"""KioskService, the screens' Backend, against a live onsite server and with none."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pydantic import ValidationError

from kiosk.backend import Backend, Identity, Offline, Refused
from kiosk.service import KioskService, build_backend
from kiosk.settings import KioskSettings

from .conftest import SITE
from .helpers import TlsServer, phq9


def test_a_kiosk_never_paired_works_offline(kiosk_settings: KioskSettings) -> None:
    service = build_backend(kiosk_settings, start=False)
    backend: Backend = service  # the Protocol is satisfied
    assert backend.catalog() is None
    status = backend.status()
    assert (status.paired, status.online, status.outbox_depth) == (False, False, 0)
    who = backend.identify("E1001", "1980-01-15")
    assert who.pending and not who.online
    backend.submit(who, [phq9()], crisis=False)
    backend.crisis_alert("phq9_item9")
    assert backend.status().outbox_depth == 2
    with pytest.raises(Offline):
        backend.book(who, "slot")
    with pytest.raises(Refused) as bad:
        backend.identify("E1001", "15/01/1980")
    assert bad.value.field == "birth_date"
    service.worker.run_once()  # not paired: nothing to do, nothing lost
    assert backend.status().outbox_depth == 2
    service.close()


def test_pair_identify_submit_sync_and_the_catalog_survives_a_restart(
        server: TlsServer, kiosk_settings: KioskSettings) -> None:
    seen = []
    service = KioskService(kiosk_settings, notify=seen.append)
    service.pair(server.url, server.pairing_code(SITE))
    stored = json.loads(kiosk_settings.pairing_path.read_text())
    assert stored["fingerprint"] and stored["token"]
    assert oct(kiosk_settings.pairing_path.stat().st_mode & 0o777) == "0o600"
    server.add_member(SITE, "E8001", date(1975, 5, 6))
    who = service.identify("E8001", "1975-05-06")
    assert who.online and who.first_name == "Alex"
    with pytest.raises(Refused):
        service.identify("E8001", "1975-05-07")
    items = [phq9(key="a" * 8 + "-0000-4000-8000-" + "0" * 12)]
    service.submit(who, items, crisis=False)
    service.consent(who, consent=True, contact_method="phone", contact_time="any",
                    phone="+1 555 0100")
    service.worker.run_once()
    status = service.status()
    assert status.online and status.outbox_depth == 0 and status.last_sync_at
    assert seen and seen[-1].outbox_depth == 0
    stored_subs = [s for s in server.submissions() if s.idempotency_key == items[0]
                   ["idempotency_key"]]
    assert len(stored_subs) == 1 and stored_subs[0].member_id is not None
    catalog = service.catalog()
    assert catalog is not None and catalog.site.slug == SITE
    server.add_advocate()
    link = service.advocate_link(who)
    assert link.link_url
    assert service.bookings(who) == []
    service.close()
    # A restart with the server out of reach still has the catalog (and the pairing).
    server.stop()
    try:
        again = KioskService(kiosk_settings)
        assert again.catalog() is not None and again.status().paired
        assert again.identify("E8001", "1975-05-06").pending  # offline: held for later
        again.close()
    finally:
        server.start()


def test_consent_the_server_would_refuse_is_refused_at_once(kiosk_settings: KioskSettings
                                                           ) -> None:
    service = build_backend(kiosk_settings, start=False)
    who = service.identify("E1001", "1980-01-15")
    with pytest.raises(Refused) as no_method:
        service.consent(who, consent=True, contact_method=None, contact_time="any")
    assert no_method.value.field == "contact_method"
    with pytest.raises(Refused) as bad_phone:
        service.consent(who, consent=True, contact_method="phone", contact_time="any",
                        phone="call me")
    assert bad_phone.value.field == "phone"
    with pytest.raises(Refused):
        service.consent(Identity(), consent=False)
    service.consent(who, consent=False)  # a withdrawal needs nothing else
    assert service.status().outbox_depth == 1
    service.close()


def test_a_contact_left_with_an_offline_sign_in_travels_with_its_items(
        kiosk_settings: KioskSettings) -> None:
    service = build_backend(kiosk_settings, start=False)
    who = service.identify("E1001", "1980-01-15")
    with_phone = service.claim_contact(who, phone="5550100142")
    assert with_phone.pending and with_phone.pending != who.pending and not with_phone.online
    service.submit(with_phone, [phq9()], crisis=False)
    (row,) = [r for r in service.outbox.pending() if r.kind == "submission"]
    assert row.payload["offline_identity"] == {"id": "E1001", "birth_date": "1980-01-15",
                                               "phone": "5550100142"}
    with pytest.raises(ValidationError, match="email"):  # the server's own rule, checked here
        service.claim_contact(who, email="not-an-address")
    service.close()
