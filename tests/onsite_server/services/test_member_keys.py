"""A member reference resolved to the member's keys (a booking's read phase, issue 20 P2):
the same member and the same refusals as resolving it to a loaded Member."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from onsite_server.models import Kiosk
from onsite_server.services.members import (
    MemberKeys,
    MemberRefError,
    make_member_ref,
    resolve_member_keys,
    resolve_member_ref,
)

from ..helpers import gen_member, gen_site


def _kiosk(session: Session, site_id: int) -> Kiosk:
    kiosk = Kiosk(site_id=site_id, label="desk")
    session.add(kiosk)
    session.flush()
    return kiosk


def test_a_reference_resolves_to_the_loaded_members_keys(app: Flask, session: Session) -> None:
    site = gen_site(session)
    member = gen_member(session, site)
    member.language = "es"
    kiosk = _kiosk(session, site.id)
    session.flush()
    secret = app.config["SECRET_KEY"]
    ref = make_member_ref(secret, member, kiosk)
    keys = resolve_member_keys(session, secret, ref, kiosk, 3600)
    loaded = resolve_member_ref(session, secret, ref, kiosk, 3600)
    assert keys == MemberKeys(loaded.id, loaded.public_id, "es")
    assert keys == MemberKeys(member.id, member.public_id, member.language)


def test_every_reference_refused_as_a_member_is_refused_as_keys(
        app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    site, elsewhere = gen_site(session), gen_site(session)
    member, stranger = gen_member(session, site), gen_member(session, elsewhere)
    kiosk, other_kiosk = _kiosk(session, site.id), _kiosk(session, site.id)
    session.flush()
    secret = app.config["SECRET_KEY"]
    good = make_member_ref(secret, member, kiosk)
    refused = {
        "another kiosk's": make_member_ref(secret, member, other_kiosk),
        "another employer's member": make_member_ref(secret, stranger, kiosk),
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another secret's": make_member_ref(secret + "x", member, kiosk),
    }
    for what, ref in refused.items():
        with pytest.raises(MemberRefError) as as_member:
            resolve_member_ref(session, secret, ref, kiosk, 3600)
        with pytest.raises(MemberRefError) as as_keys:
            resolve_member_keys(session, secret, ref, kiosk, 3600)
        assert as_keys.value.message == as_member.value.message, what
    # An expired one: the same reference, read an hour and a second later.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)
    with pytest.raises(MemberRefError) as expired:
        resolve_member_keys(session, secret, good, kiosk, 3600)
    assert "expired" in expired.value.message
