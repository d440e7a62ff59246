"""One member's visit, in plain Python: the journey plus what it asks of the backend.

``kiosk.flow.Journey`` decides which screen comes next; ``Visit`` adds the few things a screen
needs from the world around it (identify, queue items as each screener finishes, consent,
bookings, the advocate link) and the words for what happened (``message``, an English
gettext msgid the screen translates). The Kivy screens call only this; tests drive it with a
fake backend and no window. ``end`` and the timers wipe everything of the member here too.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from shared.assessments.items import questions, value_problem
from shared.i18n import N_, pick
from shared.paths import assets_dir
from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogEvent, CatalogResponse, CatalogSlot
from shared.schemas.common import EMAIL_PATTERN
from shared.schemas.members import AdvocateLinkResponse
from shared.triage import CRISIS_TRIGGERS, crisis_guidance, skipped_item_notice
from shared.when import format_when, format_when_where

from .backend import Backend, Identity, Offline, Refused
from .flow import ATTRACT, CHECKUP, QUESTION, Journey, Timeouts, latest_version

# Screeners a member can take one at a time from the menu (all have a kiosk-friendly form).
SINGLE_SCREENERS = ("phq9", "gad7", "blood_pressure", "bmi", "ada_risk", "audit_c", "who5")
CONTACT_METHODS = ("phone", "text", "email")
CONTACT_TIMES = ("morning", "afternoon", "evening", "any")
# The server's own rule for ConsentRequest.email: what it would refuse is refused here, at once.
_EMAIL = re.compile(EMAIL_PATTERN)
EMAIL_MAX = 254


@lru_cache(maxsize=1)
def _result_levels() -> Mapping[str, Mapping[str, str]]:
    data = json.loads((assets_dir() / "kiosk" / "result_levels.json").read_text("utf-8"))
    levels: Mapping[str, Mapping[str, str]] = data["levels"]
    return levels


@lru_cache(maxsize=1)
def _result_words() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(
        (assets_dir() / "kiosk" / "result_words.json").read_text("utf-8"))
    return data


def _number(value: object, language: str) -> str:
    """A member's number as people read it in their language (152, 27.7, 27,7)."""
    from babel.numbers import format_decimal

    if not isinstance(value, int | float):
        return ""
    return str(format_decimal(round(float(value), 1), format="#,##0.#", locale=language))


@lru_cache(maxsize=1)
def _offer_words() -> Mapping[str, Mapping[str, Any]]:
    data = json.loads((assets_dir() / "kiosk" / "follow_ups.json").read_text("utf-8"))
    offers: Mapping[str, Mapping[str, Any]] = data["offers"]
    return offers


@lru_cache(maxsize=1)
def _question_hints() -> Mapping[str, Mapping[str, str]]:
    data = json.loads((assets_dir() / "kiosk" / "question_hints.json").read_text("utf-8"))
    hints: Mapping[str, Mapping[str, str]] = data["hints"]
    return hints


@lru_cache(maxsize=64)
def _texts(instrument_id: str, version: str | None = None) -> Mapping[str, Any]:
    """An instrument's title, preamble and band labels (read once: a definition is a deep copy
    per call, too slow to make on every question)."""
    from shared.assessments import load_definition

    definition = load_definition(instrument_id, version)
    return {"title": definition.get("title"), "preamble": definition.get("preamble"),
            "bands": {b["id"]: b.get("label") for b in
                      definition.get("scoring", {}).get("bands", [])}}


@dataclass(frozen=True)
class Finding:
    """One result in plain words: the member's number, what it means, one next step."""

    instrument: str
    title: str
    level: str  # ok | watch | act | not_scored
    level_words: str  # the level said in words (never colour alone)
    said: str  # "Your blood pressure: 152/96. That is high (stage 2)."
    step: str  # one next step
    crisis: bool  # this instrument raised a crisis this visit


@dataclass(frozen=True)
class CrisisSummary:
    """What the results open with when the visit raised a crisis."""

    heading: str
    seen: list[str]  # what was seen, one line per crisis
    staff: str  # staff were told, or please tell them
    lines: str  # 988 and 911


@dataclass(frozen=True)
class FollowUpOffer:
    """What the offer screen says about a follow-up screener, in the visit's language."""

    instrument: str
    title: str
    topic: str  # what its questions are about ("mood"); empty when the assets do not say
    questions: int
    minutes: int | None


@dataclass(frozen=True)
class QrCode:
    """One QR code and what scanning it does (caption is an English msgid)."""

    kind: str  # advocate | vcard | ticket
    content: str
    caption: str


def email_problem(typed: str) -> str | None:
    """Why an email address would be refused (the server's pattern), or None when it is fine."""
    if not typed:
        return N_("Please type your email address.")
    if len(typed) > EMAIL_MAX or not _EMAIL.fullmatch(typed):
        return N_("That email address does not look complete. "
                  "Please check it, for example name@example.com.")
    return None


def mask_email(typed: str) -> str:
    """Show an email address being typed with its name part hidden: only the last key shows.

    The part after the @ stays readable: it is where typing mistakes hide, and it says little
    about who the member is.
    """
    name, at, domain = typed.partition("@")
    if at:
        return "\u2022" * len(name) + at + domain
    return "\u2022" * (len(name) - 1) + name[-1:]


def parse_birth_date(typed: str) -> str | None:
    """Read eight keypad digits (month, day, year) as an ISO date, or None when not a real date."""
    digits = "".join(ch for ch in typed if ch.isdigit())
    if len(digits) != 8:
        return None
    try:
        born = date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None
    if born.year < 1900 or born > date.today():
        return None
    return born.isoformat()


class Visit:
    """The journey of the member at the screen, and the backend it talks to."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.monotonic,
                 timeouts: Timeouts | None = None, language: str = "en") -> None:
        self.backend = backend
        self.clock = clock
        self.journey = Journey(timeouts=timeouts or Timeouts(), language=language)
        self._forget()

    def _forget(self) -> None:
        self.identity: Identity | None = None
        self.session_id = str(uuid.uuid4())
        self.message = ""
        self.message_args: dict[str, str] = {}
        self.submitted: list[str] = []
        self.bookings: list[BookingOut] = []
        self.booked: BookingOut | None = None
        self.event: CatalogEvent | None = None
        self.moving: BookingOut | None = None  # the booking being rescheduled
        # A booking or a cancellation waiting for the member's "yes": (what, slot or booking id).
        self.pending: tuple[str, str] | None = None
        self.advocate: AdvocateLinkResponse | None = None
        self.consented: bool | None = None
        self.contact: tuple[str, str] | None = None  # (channel, time of day) chosen
        self.contact_details: dict[str, str] = {}  # the number or address typed for it
        self.needs_connection = False
        self.claim_contact_given = False  # an offline sign-in's phone or email, for staff
        self.units_from_site = False  # the site's units are applied at the first screener
        # A finished screener kept from the outbox while Back on the offer screen can still
        # reopen it: (item, crisis). Queued once the offer is answered or the visit ends.
        self.held: tuple[dict[str, Any], bool] | None = None
        # Readings the member confirmed from a cuff or scale: the device and the values it gave
        # (issue 19). An item carries a device only while its answers still hold those values.
        self.device_readings: list[dict[str, Any]] = []
        # Read-aloud, switched on by the speaker button for this visit only (issue 19).
        self.read_aloud = False

    # ------------------------------------------------------------------ basics

    @property
    def screen(self) -> str:
        """The screen the journey is on."""
        return self.journey.screen

    @property
    def language(self) -> str:
        """The language of this visit."""
        return self.journey.language

    def say(self, message: str, **args: str) -> None:
        """Set the line the screen shows (an English msgid, translated by the screen)."""
        self.message = message
        self.message_args = dict(args)

    def touch(self) -> None:
        """A tap anywhere restarts the idle timer."""
        self.journey.touch(self.clock())

    def fire(self, event: str) -> str:
        """Apply a journey event; ending events wipe the visit."""
        self.say("")
        screen = self.journey.fire(event, self.clock())
        if screen == ATTRACT:
            self._wiped()
        return screen

    def end(self) -> str:
        """"End session": wipe everything (the crisis screen stays until closed)."""
        screen = self.journey.end(self.clock())
        if screen == ATTRACT:
            self._wiped()
        return screen

    def tick(self) -> str | None:
        """Check the timers; "countdown" while the warning shows; wipes when one ran out."""
        was = self.journey.screen
        state = self.journey.tick(self.clock())
        if was != ATTRACT and self.journey.screen == ATTRACT:
            self._wiped()
        return state

    def _wiped(self) -> None:
        """The journey forgot the member: queue a screener still held, then forget here too."""
        if self.held is not None:
            # The member finished it: leaving on the offer screen must not lose it.
            item, crisis = self.held
            self.backend.submit(self.identity, [item], crisis=crisis)
        self._forget()

    def holds_member_data(self) -> bool:
        """Tell whether anything of a member is still held."""
        return (self.journey.holds_member_data() or self.identity is not None or
                bool(self.submitted or self.bookings) or self.booked is not None or
                self.advocate is not None or self.moving is not None or
                self.pending is not None or
                self.consented is not None or self.contact is not None or
                self.held is not None)

    def catalog(self) -> CatalogResponse | None:
        """The cached catalog, or None before pairing."""
        return self.backend.catalog()

    def retention_days(self) -> int | None:
        """How many days the site keeps answers after the advocate has them (None: unknown,
        before pairing or from a server that does not say; the notice then names no number)."""
        catalog = self.catalog()
        return catalog.settings.retention_days if catalog is not None else None

    # ------------------------------------------------------------------ identify

    def identify(self, typed_id: str, typed_birth_date: str) -> bool:
        """Sign the member in; False (with a message) when that did not work."""
        typed_id = typed_id.strip()
        if not typed_id:
            self.say(N_("Please type your employee or badge number."))
            return False
        born = parse_birth_date(typed_birth_date)
        if born is None:
            self.say(N_("Please type your date of birth as 8 numbers: month, day, year."))
            return False
        try:
            identity = self.backend.identify(typed_id, born)
        except Refused:
            self.say(N_("We could not find you with that number and date of birth. "
                     "Please check them, or continue without signing in."))
            return False
        except Offline:
            self.say(N_("We cannot check your number right now. "
                     "You can continue without signing in."))
            return False
        self.identity = identity
        self.journey.identify(identity.member_ref or identity.pending or "pending", self.clock())
        self.say("")  # an earlier try's "We could not find you" is over
        if not identity.online:
            # Honest: nothing is checked yet, and a miss would file the answers without a name.
            self.say(N_("This kiosk is offline, so we could not check your number and date of "
                     "birth yet. We will check them when it is back online. If they do not "
                     "match, your results cannot reach your advocate: leave a phone number or "
                     "email so staff can reach you."))
        return True

    @property
    def signed_in_name(self) -> str | None:
        """The first name the server matched, for "Signed in as Ana" (None offline or anonymous)."""
        if self.identity is None or not self.identity.online:
            return None
        return self.identity.first_name or None

    @property
    def offline_claim(self) -> bool:
        """True while the member's sign-in waits for the server to check it."""
        return self.identity is not None and self.identity.pending is not None

    def claim_contact(self, phone: str | None = None, email: str | None = None) -> bool:
        """Add a phone number or email to an offline sign-in, for staff should it not match."""
        if self.identity is None or self.identity.pending is None:
            return False
        if phone is not None:
            digits = "".join(ch for ch in phone if ch.isdigit())
            if not 7 <= len(digits) <= 15:
                self.say(N_("Please type your phone number, with its area code."))
                return False
            contact: dict[str, str] = {"phone": digits}
        else:
            typed = (email or "").strip()
            problem = email_problem(typed)
            if problem is not None:
                self.say(problem)
                return False
            contact = {"email": typed}
        self.identity = self.backend.claim_contact(self.identity, **contact)
        self.claim_contact_given = True
        self.say(N_("Thank you. If your details do not match, staff will use this to reach "
                 "you."))
        return True

    def anonymous(self) -> str:
        """Continue without signing in."""
        self.identity = None
        return self.journey.go_anonymous(self.clock())

    @property
    def identified(self) -> bool:
        """True when the member signed in (online or waiting for the connection)."""
        return self.identity is not None

    @property
    def online_identity(self) -> Identity | None:
        """The identity when the server matched it (booking and the advocate link need it)."""
        return self.identity if self.identity is not None and self.identity.online else None

    # ------------------------------------------------------------------ screeners

    def checkup(self) -> str:
        """Start the quick check-up."""
        self._site_units()
        return self.journey.begin(list(CHECKUP), self.clock())

    def single(self, instrument_id: str) -> str:
        """Start one screener."""
        self._site_units()
        return self.journey.begin([instrument_id], self.clock(), single=True)

    def _site_units(self) -> None:
        # Height and weight are first asked in the site's units (US sites: feet, inches and
        # pounds), once per visit: a member's own switch is kept for the rest of the visit.
        if self.units_from_site:
            return
        catalog = self.catalog()
        self.journey.set_units(catalog.settings.units if catalog is not None else "imperial")
        self.units_from_site = True

    def answer(self, value: object) -> str:
        """Record the answer on screen (checked first for numbers); queue finished screeners."""
        if self.journey.screen != QUESTION:
            return self.journey.screen
        problem = value_problem(self.journey.question_spec(), value)
        if problem:
            spec = self.journey.question_spec()
            self.say(N_("Please enter a number from {low} to {high}."),
                     low=f"{spec.get('min', '')}", high=f"{spec.get('max', '')}")
            return self.journey.screen
        return self._step(lambda now: self.journey.answer(value, now))

    def answer_from_device(self, answers: Mapping[str, int | float],
                           device: Mapping[str, str]) -> str:
        """A device reading the member confirmed: answer its questions as the journey asks them.

        The device is noted first: the last answer may finish the screener and queue it.
        """
        values: dict[str, int | float] = {}
        self.device_readings.append({"instrument": self.journey.instrument,
                                     "device": dict(device), "values": values})
        while self.journey.screen == QUESTION and self.journey.question in answers:
            asked = (self.journey.instrument, self.journey.question)
            values[asked[1]] = answers[asked[1]]  # only what it answers: not a typed height
            self.answer(answers[asked[1]])
            if self.journey.screen == QUESTION and \
                    (self.journey.instrument, self.journey.question) == asked:
                del values[asked[1]]
                break  # refused (out of the question's range): the message says why
        return self.journey.screen

    def _devices_of(self, instrument: str) -> list[dict[str, Any]]:
        """The devices behind this screener's answers (typed answers are self-reported)."""
        answers = self.journey.answers.get(instrument, {})
        found = []
        for reading in self.device_readings:
            given = {link: value for link, value in reading["values"].items()
                     if link in answers}
            if reading["instrument"] == instrument and given and all(
                    answers[link] == value for link, value in given.items()):
                found.append({**reading["device"], "link_ids": sorted(given)})
        return found

    def skip(self) -> str:
        """"Prefer not to answer"."""
        return self._step(self.journey.skip)

    def _step(self, move: Callable[[float], str]) -> str:
        """Move the journey on (the message cleared), then queue what that finished."""
        self.say("")
        screen = move(self.clock())
        self._queue_finished()
        return screen

    def back(self) -> str:
        """Back: one question, or the screen's own Back (from the offer: the last question)."""
        if self.pending is not None:  # Back from the confirmation: the list again
            self.say("")
            self.pending = None
            self.touch()
            return self.screen
        self.moving = None
        return self._step(self.journey.back)

    # ------------------------------------------------------------------ follow-ups

    def follow_up_offer(self) -> FollowUpOffer | None:
        """The follow-up screener on offer, described for the offer screen."""
        iid = self.journey.offer
        if iid is None:
            return None
        words = _offer_words().get(iid, {})
        minutes = words.get("minutes")
        return FollowUpOffer(instrument=iid, title=self.instrument_title(iid),
                             topic=pick(words["topic"], self.language) if "topic" in words
                             else "", questions=len(questions(iid)),
                             minutes=int(minutes) if minutes is not None else None)

    def accept_offer(self) -> str:
        """"Yes, continue": the follow-up screener is next."""
        return self._step(self.journey.accept_offer)

    def decline_offer(self) -> str:
        """"No thanks": not offered again this visit; the plan goes on, or the results show."""
        return self._step(self.journey.decline_offer)

    def _queue_finished(self) -> None:
        """Queue each screener as soon as it is finished, a crisis before its screen shows.

        The one exception: a screener the offer screen's Back can reopen is held until the
        offer is answered (or the visit ends), so a changed answer is never sent twice.
        """
        self.held = None
        reopenable = self.journey.reopenable
        for iid, result in self.journey.results.items():
            if iid in self.submitted:
                continue
            crisis = any(t.instrument == iid and t.trigger in self.journey.crisis_triggers
                         for t in CRISIS_TRIGGERS)
            item: dict[str, Any] = {
                "idempotency_key": str(uuid.uuid4()),
                "session_id": self.session_id,
                "instrument_id": iid,
                "instrument_version": latest_version(iid),
                "answers": dict(self.journey.answers.get(iid, {})),
                "skipped": list(self.journey.skipped.get(iid, [])),
                "kiosk_result": None if result is None else {
                    "total": result.total, "band": result.band, "flags": sorted(result.flags)},
                "taken_at": datetime.now(UTC).isoformat(),
            }
            devices = self._devices_of(iid)
            if devices:
                item["devices"] = devices
            if iid == reopenable:
                self.held = (item, crisis)
                continue
            self.backend.submit(self.identity, [item], crisis=crisis)
            self.submitted.append(iid)

    def question_text(self) -> str:
        """The question on screen in the visit's language."""
        return pick(self.journey.question_spec().get("text"), self.language)

    def preamble(self) -> str:
        """The instrument's lead-in ("Over the last 2 weeks..."), or the kiosk's hint for a
        measurement the member may not have (assets/kiosk/question_hints.json), or empty."""
        iid = self.journey.instrument
        own = _texts(iid).get("preamble") or _question_hints().get(iid)
        return pick(own, self.language)

    def instrument_title(self, instrument_id: str | None = None) -> str:
        """An instrument's title in the visit's language."""
        return pick(_texts(instrument_id or self.journey.instrument).get("title"), self.language)

    def options(self) -> list[tuple[object, str]]:
        """The answer choices on screen: (value, text in the visit's language)."""
        spec = self.journey.question_spec()
        if spec.get("type") == "boolean":
            return [(True, N_("Yes")), (False, N_("No"))]  # the screen translates them
        return [(opt["value"], pick(opt.get("text"), self.language))
                for opt in spec.get("options", [])]

    # ------------------------------------------------------------------ results

    def findings(self) -> list[Finding]:
        """The results as plain findings, one per question asked (issue 15).

        A short screener followed by its full form (PHQ-2 then PHQ-9) shows the full form
        only. An instrument whose crisis item was positive is never "healthy": its finding is
        the crisis's own words and step, whatever its total.
        """
        words = _result_words()
        levels = _result_levels()
        lang = self.language
        taken = self.journey.results
        crisis_by_instrument = {t.instrument: t.trigger for t in CRISIS_TRIGGERS
                                if t.trigger in self.journey.crisis_triggers}
        found = []
        for iid, result in taken.items():
            if words["replaced_by"].get(iid) in taken:
                continue
            texts = _texts(iid, result.version if result else None)
            title = pick(texts.get("title"), lang)
            entry = words["findings"].get(iid, {})
            trigger = crisis_by_instrument.get(iid)
            measure = ""
            if result is None:
                level = "not_scored"
                said = pick(words["not_scored"]["said"], lang)
                step = pick(words["not_scored"]["step"], lang)
            else:
                level = levels.get(iid, {}).get(result.band, "watch")
                numbers = {"total": _number(result.total, lang),
                           **{k: _number(v, lang) for k, v in result.details.items()
                              if isinstance(v, int | float)}}
                measure = pick(entry.get("measure"), lang).format(**numbers) \
                    if entry.get("measure") else ""
                band = entry.get("bands", {}).get(result.band)
                if band is not None:
                    said, step = pick(band["said"], lang), pick(band["step"], lang)
                else:  # an instrument the wording does not cover: its own band label
                    label = texts.get("bands", {}).get(result.band)
                    said, step = (pick(label, lang) if label else result.band), ""
                said = f"{measure} {said}".strip()
            if trigger is not None:
                level = "act"
                item = words["crisis"]["item"][trigger]
                said = f"{measure} {pick(item['said'], lang)}".strip()
                step = pick(item["step"], lang)
            found.append(Finding(iid, title, level, pick(words["levels"][level], lang),
                                 said, step, trigger is not None))
        return found

    def crisis_summary(self) -> CrisisSummary | None:
        """What was seen, whether staff were told, 988/911; None when no crisis was raised."""
        triggers = self.journey.crisis_triggers
        if not triggers:
            return None
        words = _result_words()["crisis"]
        lang = self.language
        staff = "staff_told" if self.staff_told() else "staff_not_told"
        return CrisisSummary(pick(words["heading"], lang),
                             [pick(words["seen"][t], lang) for t in triggers],
                             pick(words[staff], lang), pick(words["lines"], lang))

    def crisis_reminder(self) -> str:
        """The 988 line the done screen repeats after a visit that raised a crisis (or '')."""
        if not self.journey.crisis_triggers:
            return ""
        return str(pick(_result_words()["crisis"]["done"], self.language))

    def next_step_words(self) -> str:
        """The words before each finding's next step ("Next step:")."""
        return str(pick(_result_words()["next_step"], self.language))

    def results_legend(self) -> str:
        """What the colours of the results mean, in words."""
        return str(pick(_result_words()["legend"], self.language))

    def staff_told(self) -> bool:
        """Tell whether the crisis has surely reached the site server (so staff were alerted).

        Said only when the kiosk is online with nothing left to send: the crisis travels first,
        so an empty outbox means it arrived. Otherwise the member is asked to tell staff.
        """
        try:
            status = self.backend.status()
        except (Offline, OSError):
            return False
        return status.online and status.outbox_depth == 0

    def notices(self) -> list[str]:
        """Gentle notices owed for skipped questions (the 988 line for PHQ-9 item 9)."""
        found = []
        for iid, links in self.journey.skipped.items():
            for link in links:
                notice = skipped_item_notice(iid, link)
                if notice is not None:
                    found.append(pick(notice.text, self.language))
        return found

    def crisis(self) -> list[dict[str, Any]]:
        """The guidance for each crisis this visit raised, in the visit's language."""
        shown = []
        for trigger in self.journey.crisis_triggers:
            guidance = crisis_guidance(trigger)
            shown.append({
                "trigger": trigger,
                "title": pick(guidance.title, self.language),
                "text": pick(guidance.text, self.language),
                "resources": [{"label": pick(r["label"], self.language),
                               "phone": r.get("phone"), "sms": r.get("sms"), "url": r.get("url")}
                              for r in guidance.resources],
            })
        return shown

    def local_crisis_resources(self) -> list[str]:
        """The site's own crisis resources, one line each ("name: number"), shown after the
        fixed 988/911 guidance and never instead of it (empty before pairing)."""
        catalog = self.backend.catalog()
        if catalog is None:
            return []
        lines = []
        for res in catalog.settings.local_crisis_resources:
            ways = [w for w in (res.phone, res.sms, res.url) if w]
            label = pick(res.label, self.language)
            lines.append(f"{label}: {', '.join(ways)}" if ways else label)
        return lines

    def close_crisis(self, *, confirm: bool) -> str:
        """The two-step close of the crisis screen (a follow-up offer may show next)."""
        screen = self.journey.close_crisis(self.clock(), confirm=confirm)
        self._queue_finished()
        return screen

    def after_results(self) -> str:
        """Continue from the results: the referral offer, or the menu when anonymous."""
        return self.fire("continue")

    # ------------------------------------------------------------------ referral

    def consent(self, method: str, contact_time: str, phone: str | None = None,
                email: str | None = None) -> bool:
        """Agree to be contacted by the advocate, by this channel at this time of day.

        A call or a text needs a phone number, an email an address: the kiosk cannot see what
        is on file, so it asks (the server refuses a consent with nothing to reach them by).
        """
        if self.identity is None:
            return False
        if method not in CONTACT_METHODS or contact_time not in CONTACT_TIMES:
            self.say(N_("Please choose how and when we may contact you."))
            return False
        if method in ("phone", "text"):
            digits = "".join(ch for ch in phone or "" if ch.isdigit())
            if not 7 <= len(digits) <= 15:
                self.say(N_("Please type your phone number, with its area code."))
                return False
            phone, email = digits, None
        else:
            email = (email or "").strip()
            problem = email_problem(email)
            if problem is not None:
                self.say(problem)
                return False
            phone = None
        try:
            self.backend.consent(self.identity, consent=True, contact_method=method,
                                 contact_time=contact_time, phone=phone, email=email)
        except Refused as exc:
            self.say(N_("That did not work: {reason}"), reason=exc.reason)
            return False
        self.contact = (method, contact_time)
        self.contact_details = {"phone": phone} if phone else {"email": email} if email else {}
        self.consented = True
        self.say(N_("Thank you. Your advocate will contact you."))
        return True

    def decline_contact(self) -> str:
        """"No thanks": the advocate will not contact the member about this; on to the menu."""
        self.stop_contact()
        if self.consented is False:
            return self._keep_message("done")  # the menu says what was recorded
        return self.screen

    def stop_contact(self) -> None:
        """"Stop contacting me": withdraw consent."""
        if self.identity is None:
            return
        try:
            self.backend.consent(self.identity, consent=False)
        except Refused as exc:
            self.say(N_("That did not work: {reason}"), reason=exc.reason)
            return
        self.consented = False
        self.say(N_("We will not contact you about this."))

    # ------------------------------------------------------------------ booking

    def events(self) -> list[CatalogEvent]:
        """Upcoming events from the cached catalog."""
        catalog = self.backend.catalog()
        return list(catalog.events) if catalog is not None else []

    def slots(self) -> list[CatalogSlot]:
        """The chosen event's slots."""
        return list(self.event.slots) if self.event is not None else []

    @property
    def site_timezone(self) -> str:
        """The site's time zone (the catalog's); every time a member sees is on its clock."""
        catalog = self.catalog()
        return catalog.site.timezone if catalog is not None else "UTC"

    def event_title(self, event: CatalogEvent) -> str:
        """The event's name in the visit's language, or the other one when it has none."""
        return pick(event.title, self.language)

    def event_description(self, event: CatalogEvent) -> str:
        """The event's description in the visit's language, or the other one ("" for none)."""
        return pick(event.description, self.language)

    def when(self, moment: datetime) -> str:
        """A time as the member reads it: "Mon, Dec 7 · 10:10 AM", on the site's clock."""
        return format_when(moment, self.site_timezone, self.language)

    def when_where(self, moment: datetime, place: str | None) -> str:
        """Day, time and place: "Mon, Dec 7 · 10:10 AM · Room B", on the site's clock."""
        return format_when_where(moment, self.site_timezone, self.language, place)

    def booking_event(self, booking: BookingOut) -> CatalogEvent | None:
        """The catalog's event of a booking (its words in both languages and its place)."""
        return next((e for e in self.events() if e.id == booking.event_id), None)

    def booking_summary(self, booking: BookingOut) -> tuple[str, str]:
        """What and when-where of a booking, in the visit's language on the site's clock."""
        event = self.booking_event(booking)
        title = self.event_title(event) if event is not None else booking.event_title
        return title, self.when_where(booking.start_at, event.location if event else None)

    def choose_event(self, event_id: str | None) -> None:
        """Open an event's slots (None: back to the list of events)."""
        self.pending = None
        self.event = next((e for e in self.events() if e.id == event_id), None)

    def load_bookings(self) -> None:
        """Fetch the member's bookings; offline, say booking needs the connection."""
        identity = self.online_identity
        self.needs_connection = identity is None
        if identity is None:
            self.bookings = []
            return
        try:
            self.bookings = self.backend.bookings(identity)
        except Offline:
            self.needs_connection = True
            self.bookings = []

    def choose_slot(self, slot_id: str) -> None:
        """A slot was tapped: ask the member to confirm before anything is booked."""
        if any(s.id == slot_id for s in self.slots()):
            self.say("")
            self.pending = ("book", slot_id)

    def choose_cancel(self, booking_id: str) -> None:
        """"Cancel it" was tapped: ask the member to confirm first."""
        if any(b.booking_id == booking_id for b in self.bookings):
            self.say("")
            self.pending = ("cancel", booking_id)

    def pending_slot(self) -> CatalogSlot | None:
        """The slot waiting for the member's confirmation, if any."""
        if self.pending is None or self.pending[0] != "book":
            return None
        return next((s for s in self.slots() if s.id == self.pending[1]), None)

    def pending_cancel(self) -> BookingOut | None:
        """The booking the member asked to cancel, waiting for their confirmation."""
        if self.pending is None or self.pending[0] != "cancel":
            return None
        return next((b for b in self.bookings if b.booking_id == self.pending[1]), None)

    def confirm(self) -> str:
        """The member said yes: book (or cancel) what was waiting for it."""
        pending, self.pending = self.pending, None
        if pending is None:
            return self.screen
        what, ref = pending
        if what == "book":
            return self.book_slot(ref)
        self.cancel(ref)
        return self.screen

    def keep(self) -> None:
        """The member said no: nothing is booked or cancelled; back to the list."""
        self.pending = None
        self.say("")

    def book(self, slot_id: str) -> bool:
        """Book (or join the waitlist for) a slot, or move the booking being rescheduled."""
        identity = self.online_identity
        if identity is None:
            self.needs_connection = True
            return False
        try:
            if self.moving is not None:
                booking = self.backend.reschedule(identity, self.moving.booking_id, slot_id)
                self.moving = None
            else:
                booking = self.backend.book(identity, slot_id)
        except Offline:
            self.needs_connection = True
            self.say(N_("Booking needs the connection, which is down right now."))
            return False
        except Refused as exc:
            self.say(N_("That did not work: {reason}"), reason=exc.reason)
            return False
        self.booked = booking
        if booking.status == "waitlisted":
            self.say(N_("That time is full. You are on the waitlist, number {n}."),
                     n=str(booking.waitlist_position or ""))
        return True

    def book_slot(self, slot_id: str) -> str:
        """Book a slot and go on to the QR screen; stay (with a message) when that failed."""
        if self.book(slot_id):
            return self.fire("booked") if not self.message else self._keep_message("booked")
        return self.screen

    def _keep_message(self, event: str) -> str:
        message, args = self.message, self.message_args
        screen = self.fire(event)
        self.say(message, **args)
        return screen

    def cancel(self, booking_id: str) -> None:
        """Cancel one of the member's bookings."""
        identity = self.online_identity
        if identity is None:
            return
        try:
            self.backend.cancel(identity, booking_id)
        except Offline:
            self.needs_connection = True
            return
        except Refused as exc:
            self.say(N_("That did not work: {reason}"), reason=exc.reason)
            return
        if self.booked is not None and self.booked.booking_id == booking_id:
            self.booked = None
        self.say(N_("Your booking is cancelled."))
        self.load_bookings()

    def start_moving(self, booking_id: str) -> None:
        """Pick a booking to reschedule; the next slot chosen replaces it."""
        self.moving = next((b for b in self.bookings if b.booking_id == booking_id), None)
        if self.moving is not None:
            self.choose_event(self.moving.event_id)

    def ask_follow_up(self) -> str:
        """Offline booking: ask the advocate to follow up instead (the consent is queued).

        The channel and time the member chose on the referral screen are used. A member who
        has not chosen goes to the referral screen to choose (and type the number or address):
        guessing "email to the address on file" fails at the server when there is none.
        """
        if self.identity is None:
            return self.screen
        if self.contact is None:
            screen = self.fire("follow_up")
            self.say(N_("Choose how your advocate may contact you to book a time."))
            return screen
        method, when = self.contact
        try:
            self.backend.consent(self.identity, consent=True, contact_method=method,
                                 contact_time=when, **self.contact_details)
        except Refused as exc:
            self.say(N_("That did not work: {reason}"), reason=exc.reason)
            return self.screen
        self.consented = True
        self.say(N_("Your advocate will contact you to book a time."))
        return self.screen

    # ------------------------------------------------------------------ QR

    def qr_codes(self) -> list[QrCode]:
        """The codes for the QR screen, with what scanning each does; fetches the link.

        Just after a booking its ticket comes first (it sits with the booking's summary, above
        the fold); the advocate's link and contact card follow.
        """
        identity = self.online_identity
        codes: list[QrCode] = []
        if self.booked is not None and self.booked.ticket_url:
            codes.append(QrCode("ticket", self.booked.ticket_url,
                                N_("Scan to keep your ticket on your phone.")))
        if identity is not None and self.advocate is None:
            try:
                self.advocate = self.backend.advocate_link(identity)
            except (Offline, Refused):
                self.needs_connection = True
        if self.advocate is not None:
            codes.append(QrCode("advocate", self.advocate.link_url,
                                N_("Scan to connect with your advocate, {name}.")))
            codes.append(QrCode("vcard", self.advocate.vcard,
                                N_("Scan to save your advocate's phone and email.")))
        return codes


def question_unit(spec: Mapping[str, Any]) -> str:
    """The unit to show beside a number entry (UCUM codes read as people write them)."""
    unit = str(spec.get("unit", ""))
    return {"mm[Hg]": "mmHg", "[in_i]": "in", "[lb_av]": "lb", "a": ""}.get(unit, unit)
