"""The screeners: starting them, answering (typed or from a device), follow-up offers, and
queueing each screener for the server as soon as it is finished."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.assessments.items import questions, value_problem
from shared.i18n import N_, pick
from shared.triage import CRISIS_TRIGGERS

from ..flow import CHECKUP, QUESTION, latest_version
from .words import FollowUpOffer, _offer_words, _question_hints, _texts

if TYPE_CHECKING:
    from .base import VisitCore


class Questions:
    """The screeners of this visit and what of them was sent (or is held back) so far."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit
        self.submitted: list[str] = []
        self.units_from_site = False  # the site's units are applied at the first screener
        # A finished screener kept from the outbox while Back on the offer screen can still
        # reopen it: (item, crisis). Queued once the offer is answered or the visit ends.
        self.held: tuple[dict[str, Any], bool] | None = None
        # Readings the member confirmed from a cuff or scale: the device and the values it gave
        # (issue 19). An item carries a device only while its answers still hold those values.
        self.device_readings: list[dict[str, Any]] = []

    def holds_member_data(self) -> bool:
        """Tell whether a screener of the member was sent or is held."""
        return bool(self.submitted) or self.held is not None

    def send_held(self) -> None:
        """Queue the screener still held (the visit ends: leaving must not lose it)."""
        if self.held is not None:
            item, crisis = self.held
            self.visit.backend.submit(self.visit.identity, [item], crisis=crisis)
            self.held = None

    def checkup(self) -> str:
        """Start the quick check-up."""
        self._site_units()
        return self.visit.journey.begin(list(CHECKUP), self.visit.clock())

    def single(self, instrument_id: str) -> str:
        """Start one screener."""
        self._site_units()
        return self.visit.journey.begin([instrument_id], self.visit.clock(), single=True)

    def _site_units(self) -> None:
        # Height and weight are first asked in the site's units (US sites: feet, inches and
        # pounds), once per visit: a member's own switch is kept for the rest of the visit.
        if self.units_from_site:
            return
        catalog = self.visit.catalog()
        self.visit.journey.set_units(catalog.settings.units if catalog is not None
                                     else "imperial")
        self.units_from_site = True

    def answer(self, value: object) -> str:
        """Record the answer on screen (checked first for numbers); queue finished screeners."""
        journey = self.visit.journey
        if journey.screen != QUESTION:
            return journey.screen
        problem = value_problem(journey.question_spec(), value)
        if problem:
            spec = journey.question_spec()
            self.visit.say(N_("Please enter a number from {low} to {high}."),
                           low=f"{spec.get('min', '')}", high=f"{spec.get('max', '')}")
            return journey.screen
        return self.step(lambda now: journey.answer(value, now))

    def answer_from_device(self, answers: Mapping[str, int | float],
                           device: Mapping[str, str]) -> str:
        """A device reading the member confirmed: answer its questions as the journey asks them.

        The device is noted first: the last answer may finish the screener and queue it.
        """
        journey = self.visit.journey
        values: dict[str, int | float] = {}
        self.device_readings.append({"instrument": journey.instrument,
                                     "device": dict(device), "values": values})
        while journey.screen == QUESTION and journey.question in answers:
            asked = (journey.instrument, journey.question)
            values[asked[1]] = answers[asked[1]]  # only what it answers: not a typed height
            self.answer(answers[asked[1]])
            if journey.screen == QUESTION and (journey.instrument, journey.question) == asked:
                del values[asked[1]]
                break  # refused (out of the question's range): the message says why
        return journey.screen

    def _devices_of(self, instrument: str) -> list[dict[str, Any]]:
        """The devices behind this screener's answers (typed answers are self-reported)."""
        answers = self.visit.journey.answers.get(instrument, {})
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
        return self.step(self.visit.journey.skip)

    def step(self, move: Callable[[float], str]) -> str:
        """Move the journey on (the message cleared), then queue what that finished."""
        self.visit.say("")
        screen = move(self.visit.clock())
        self.queue_finished()
        return screen

    def back(self) -> str:
        """Back one question, or the screen's own Back (from the offer: the last question)."""
        return self.step(self.visit.journey.back)

    def follow_up_offer(self) -> FollowUpOffer | None:
        """The follow-up screener on offer, described for the offer screen."""
        iid = self.visit.journey.offer
        if iid is None:
            return None
        words = _offer_words().get(iid, {})
        minutes = words.get("minutes")
        return FollowUpOffer(instrument=iid, title=self.instrument_title(iid),
                             topic=pick(words["topic"], self.visit.language)
                             if "topic" in words else "", questions=len(questions(iid)),
                             minutes=int(minutes) if minutes is not None else None)

    def accept_offer(self) -> str:
        """"Yes, continue": the follow-up screener is next."""
        return self.step(self.visit.journey.accept_offer)

    def decline_offer(self) -> str:
        """"No thanks": not offered again this visit; the plan goes on, or the results show."""
        return self.step(self.visit.journey.decline_offer)

    def queue_finished(self) -> None:
        """Queue each screener as soon as it is finished, a crisis before its screen shows.

        The one exception: a screener the offer screen's Back can reopen is held until the
        offer is answered (or the visit ends), so a changed answer is never sent twice.
        """
        self.held = None
        journey = self.visit.journey
        reopenable = journey.reopenable
        for iid, result in journey.results.items():
            if iid in self.submitted:
                continue
            crisis = any(t.instrument == iid and t.trigger in journey.crisis_triggers
                         for t in CRISIS_TRIGGERS)
            item: dict[str, Any] = {
                "idempotency_key": str(uuid.uuid4()),
                "session_id": self.visit.session_id,
                "instrument_id": iid,
                "instrument_version": latest_version(iid),
                "answers": dict(journey.answers.get(iid, {})),
                "skipped": list(journey.skipped.get(iid, [])),
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
            self.visit.backend.submit(self.visit.identity, [item], crisis=crisis)
            self.submitted.append(iid)

    def question_text(self) -> str:
        """The question on screen in the visit's language."""
        return pick(self.visit.journey.question_spec().get("text"), self.visit.language)

    def preamble(self) -> str:
        """The instrument's lead-in ("Over the last 2 weeks..."), or the kiosk's hint for a
        measurement the member may not have (assets/kiosk/question_hints.json), or empty."""
        iid = self.visit.journey.instrument
        own = _texts(iid).get("preamble") or _question_hints().get(iid)
        return pick(own, self.visit.language)

    def instrument_title(self, instrument_id: str | None = None) -> str:
        """An instrument's title in the visit's language."""
        return pick(_texts(instrument_id or self.visit.journey.instrument).get("title"),
                    self.visit.language)

    def options(self) -> list[tuple[object, str]]:
        """The answer choices on screen: (value, text in the visit's language)."""
        spec = self.visit.journey.question_spec()
        if spec.get("type") == "boolean":
            return [(True, N_("Yes")), (False, N_("No"))]  # the screen translates them
        return [(opt["value"], pick(opt.get("text"), self.visit.language))
                for opt in spec.get("options", [])]
