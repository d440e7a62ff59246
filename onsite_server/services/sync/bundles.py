"""An outbox row turned into what it sends: facts read from the database, then FHIR."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.orm import Session, joinedload

from ...fhir import (
    SHARE_ALL,
    AppointmentFacts,
    Entries,
    FhirInvalid,
    Held,
    MemberFacts,
    MessageFacts,
    Owned,
    ReferralFacts,
    SubmissionFacts,
    add_keys,
    appointment,
    booking_entries,
    referral_entries,
    sharing,
    validate,
)
from ...models import ACTIVE_BOOKING_STATUSES, Booking, Member, OutboxMessage, Referral, Submission
from ..central_keys import snapshot
from .settings import SyncSettings

# Statements built once: each runs once a row, and building a select() (and its cache key)
# costs about as much as running it on SQLite.
_FORWARDED = select(OutboxMessage.id).where(OutboxMessage.referral_id == bindparam("referral"),
                                            OutboxMessage.status == "sent").limit(1)
_SUBMISSIONS = select(Submission).where(Submission.referral_id == bindparam("referral")
                                        ).order_by(Submission.taken_at, Submission.id)
_BOOKINGS = select(Booking).where(Booking.member_id == bindparam("member"),
                                  Booking.status.in_(ACTIVE_BOOKING_STATUSES)
                                  ).order_by(Booking.id)


# The same for a batch's set-based reads (``read_referral_rows``), each IN list a bound
# parameter: a statement built anew costs its construction and its cache key on every chunk.
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_ROWS = select(OutboxMessage).where(OutboxMessage.id.in_(_IDS))
_REFERRALS = select(Referral).where(Referral.id.in_(_IDS)).options(
    joinedload(Referral.member).joinedload(Member.advocate))
_SENT_OF = select(OutboxMessage.referral_id).where(
    OutboxMessage.referral_id.in_(_IDS), OutboxMessage.status == "sent").distinct()
_SUBMISSIONS_OF = select(Submission).where(Submission.referral_id.in_(_IDS)).order_by(
    Submission.taken_at, Submission.id)
_BOOKINGS_OF = select(Booking).where(
    Booking.member_id.in_(_IDS), Booking.status.in_(ACTIVE_BOOKING_STATUSES)).options(
        joinedload(Booking.slot), joinedload(Booking.event)).order_by(Booking.id)


def forwarded(session: Session, referral_id: int) -> bool:
    """Tell whether a version of the referral reached central already (a row of it is sent)."""
    return session.scalars(_FORWARDED, {"referral": referral_id}).first() is not None


def _facts(referral: Referral, member: Member, submissions: Iterable[Submission],
           site: str | None, sent: bool
           ) -> tuple[MemberFacts, ReferralFacts, list[SubmissionFacts]]:
    proposal = referral.proposal or {}
    facts = ReferralFacts(
        public_id=referral.public_id, version=referral.version, status=referral.status,
        priority=referral.priority, programs=tuple(referral.programs or ()),
        reasons=tuple(proposal.get("reasons", [])),
        crisis_triggers=tuple(g.get("trigger", "") for g in proposal.get("crisis", [])),
        consent=referral.consent, contact_method=referral.contact_method,
        contact_time=referral.contact_time,
        advocate_id=member.advocate.public_id if member.advocate else None,
        authored_at=referral.created_at, site=site,
        contact_phone=referral.contact_phone or member.phone,
        contact_email=referral.contact_email or member.email, forwarded=sent)
    subs = [SubmissionFacts(key=s.idempotency_key, instrument_id=s.instrument_id,
                            version=s.instrument_version, answers=dict(s.answers),
                            skipped=tuple(s.skipped or ()), result=s.result,
                            taken_at=s.taken_at, devices=tuple(s.devices or ()))
            for s in submissions]
    return MemberFacts(member_id=member.member_id, public_id=member.public_id), facts, subs


def _appointment_facts(booking: Booking) -> AppointmentFacts:
    return AppointmentFacts(
        public_id=booking.public_id, status=booking.status, start=booking.slot.start_at,
        end=booking.slot.end_at, event_title=booking.event.title, event_kind=booking.event.kind,
        location=booking.event.location, created_at=booking.created_at)


def _booking_entries(session: Session, row: OutboxMessage, settings: SyncSettings) -> Entries:
    booking = session.get(Booking, row.booking_id) if row.booking_id else None
    if booking is None:
        raise FhirInvalid(f"outbox row {row.key}: its booking is gone")
    member = MemberFacts(member_id=booking.member.member_id,
                         public_id=booking.member.public_id)
    message = None
    if row.kind == "message":
        payload = row.payload
        message = MessageFacts(key=row.key, kind=str(payload["kind"]),
                               language=str(payload["language"]),
                               category=str(payload["category"]), topic=str(payload["topic"]),
                               text=str(payload["text"]))
    return booking_entries(member, _appointment_facts(booking), message, settings.systems)


def _referral_entries(session: Session, row: OutboxMessage, settings: SyncSettings,
                      sent: bool | None = None) -> Entries:
    referral = session.get(Referral, row.referral_id) if row.referral_id else None
    if referral is None:
        raise FhirInvalid(f"outbox row {row.key}: its referral is gone")
    member = session.get(Member, referral.member_id)
    assert member is not None  # a referral's member is a foreign key
    return _entries_of(
        referral, member, session.scalars(_SUBMISSIONS, {"referral": referral.id}),
        lambda: session.scalars(_BOOKINGS, {"member": member.id}), settings,
        forwarded(session, referral.id) if sent is None else sent)


def _entries_of(referral: Referral, member: Member, submissions: Iterable[Submission],
                bookings: Callable[[], Iterable[Booking]], settings: SyncSettings,
                sent: bool) -> Entries:
    """Return a referral row's entries from its loaded referral, member and submissions."""
    facts = _facts(referral, member, submissions, settings.site, sent)
    entries = referral_entries(*facts, settings.systems)
    if sharing(facts[1]) != SHARE_ALL:
        return entries  # only what consent allows, not the member's bookings
    first = entries.items[0]  # the Patient comes first
    subject = first.full_url if isinstance(first, Owned) else first["fullUrl"]
    # The member's current bookings travel with the referral, so the advocate sees them.
    for booking in bookings():
        entries.update(appointment(_appointment_facts(booking), subject, settings.systems),
                       settings.systems("booking"), booking.public_id)
    return entries


@dataclass(frozen=True)
class ReferralRow:
    """A referral row's entries as read for a batch, with what they were read from."""

    row: OutboxMessage
    entries: Entries
    forwarded: bool  # a version of the referral reached central already
    version: int  # the referral's version the entries were built from


def read_referral_rows(session: Session, row_ids: Sequence[int], settings: SyncSettings
                       ) -> dict[int, ReferralRow | FhirInvalid]:
    """Build the entries of many referral rows, read set-based: five statements for the
    batch (rows, referrals with their members, submissions, bookings, which reached central
    already), not five or six for each row. A row that cannot be built maps to its
    FhirInvalid; a row that is gone, or is not a referral row, is left out."""
    rows = [r for r in session.scalars(_ROWS, {"ids": list(row_ids)})
            if r.kind == "referral" and r.referral_id is not None]
    wanted = {"ids": sorted({int(r.referral_id or 0) for r in rows})}
    referrals = {r.id: r for r in session.scalars(_REFERRALS, wanted)}
    sent = set(session.scalars(_SENT_OF, wanted))
    submissions: dict[int, list[Submission]] = {}
    for sub in session.scalars(_SUBMISSIONS_OF, wanted):
        submissions.setdefault(int(sub.referral_id or 0), []).append(sub)
    members = {"ids": sorted({r.member_id for r in referrals.values()})}
    bookings: dict[int, list[Booking]] = {}
    for booking in session.scalars(_BOOKINGS_OF, members):
        bookings.setdefault(booking.member_id, []).append(booking)
    built: dict[int, ReferralRow | FhirInvalid] = {}
    for row in rows:
        referral = referrals.get(int(row.referral_id or 0))
        try:
            if referral is None:
                raise FhirInvalid(f"outbox row {row.key}: its referral is gone")
            member = referral.member
            was_sent = referral.id in sent
            entries = _entries_of(referral, member, submissions.get(referral.id, []),
                                  partial(iter, bookings.get(member.id, [])),
                                  settings, was_sent)
            built[row.id] = ReferralRow(row, entries, was_sent, referral.version)
        except FhirInvalid as exc:
            built[row.id] = exc
    return built


KeySnapshot = tuple[dict[str, Any], list[str]]


def key_snapshot(session: Session, settings: SyncSettings, now: datetime) -> KeySnapshot:
    """Return the site's public keys (JWKS, with statuses and retirements) and the revoked
    token ids, as sent with a bundle."""
    return snapshot(session, settings.keys, settings.ticket_grace, now)


def build_entries(session: Session, row: OutboxMessage, settings: SyncSettings, *,
                  sent: bool | None = None) -> Entries:
    """Return the entries one outbox row sends, as the data stands now (keys not included).

    ``sent`` is ``forwarded`` for the row's referral when the caller read it already.
    """
    if row.kind in ("booking", "message"):
        return _booking_entries(session, row, settings)
    return _referral_entries(session, row, settings, sent)


def with_keys(bundle: dict[str, Any], settings: SyncSettings, keys: KeySnapshot) -> None:
    """Add the site's public keys and revoked token ids to a Bundle (they go with each one)."""
    extra = Entries()
    add_keys(extra, settings.site, *keys)
    bundle["entry"].extend(extra.bundle()["entry"])


def build_bundle(session: Session, row: OutboxMessage, settings: SyncSettings,
                 now: datetime, *, check: bool = True, keys: KeySnapshot | None = None,
                 held: Held | None = None) -> dict[str, Any]:
    """Build and validate the transaction Bundle for one outbox row, as the data stands now.

    ``held`` is central's copy of the shared resources (none: they are created). An empty
    Bundle (no entries) means consent lets the row send nothing. ``check=False`` skips the
    validation, for the benchmark that times it on its own; ``keys`` is a ``key_snapshot``
    taken once for many rows (it costs two queries and a read of the key files).
    """
    bundle = build_entries(session, row, settings).bundle(held)
    if bundle["entry"]:
        with_keys(bundle, settings, keys if keys is not None else
                  key_snapshot(session, settings, now))
    if check:
        validate(bundle)
    return bundle

