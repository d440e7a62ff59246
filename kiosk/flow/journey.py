"""One member's visit (``Journey``): where they are, what they answered, what it showed.

It moves by the transition table (table.py), asks the questions of each screener in its plan,
scores them as they finish, offers the follow-ups triage proposes, holds the crisis state and
runs the timers (timeouts.py); ``wipe`` forgets all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.assessments import ScoreResult
from shared.assessments.items import ItemErrors, questions
from shared.crisis import score_item
from shared.triage import CRISIS_TRIGGERS, TriageRules, triage

from .table import (
    ANYWHERE,
    ATTRACT,
    CRISIS,
    IDENTIFIED_ONLY,
    MENU,
    OFFER,
    QUESTION,
    RESULTS,
    TABLE,
    FlowError,
)
from .timeouts import Timeouts

CHECKUP = ("phq2", "gad2", "blood_pressure", "bmi", "ada_risk")
# For "about N minutes left": a question takes about this long to read and answer (the
# check-up's 17 questions in "about 5 minutes").
SECONDS_PER_QUESTION = 15
# Height and weight come in two unit systems; the member answers one of them.
_BODY_SIZE_BY_UNITS: Mapping[str, frozenset[str]] = MappingProxyType({
    "metric": frozenset({"height_cm", "weight_kg"}),
    "imperial": frozenset({"height_in", "weight_lb"}),
})
_BODY_SIZE = frozenset().union(*_BODY_SIZE_BY_UNITS.values())
_BODY_SIZE_ALTERNATIVES = frozenset({"bmi"})  # ADA's own BMI entry: height and weight instead


@dataclass
class Journey:
    """One member's visit: where they are, what they answered, what it showed."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    language: str = "en"
    screen: str = ATTRACT
    identified: bool = False
    member_ref: str | None = None
    plan: list[str] = field(default_factory=list)
    instrument_index: int = 0
    question_index: int = 0
    answers: dict[str, dict[str, object]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, ScoreResult | None] = field(default_factory=dict)
    crisis_triggers: list[str] = field(default_factory=list)
    crisis_close_armed: bool = False
    crisis_armed_at: float = 0.0
    offer: str | None = None  # the follow-up screener on (or waiting for) the offer screen
    offer_from: str | None = None  # the screener whose answers raised it
    declined: list[str] = field(default_factory=list)  # "No thanks": never offered again
    rules: TriageRules | None = field(default=None, repr=False)  # None: assets' rules.json
    units: str = "metric"  # body-size questions in the units the member chose
    started_at: float | None = None
    last_touch: float = 0.0
    screen_since: float = 0.0
    home_language: str = field(init=False, default="en")  # what a wipe returns to

    def __post_init__(self) -> None:
        self.home_language = self.language

    # ------------------------------------------------------------------ moving

    def fire(self, event: str, now: float) -> str:
        """Apply an event at time ``now`` (seconds, monotonic); return the new screen."""
        if event in ANYWHERE:
            return self.end(now, reason=event)
        target = TABLE.get((self.screen, event))
        if target is None:
            raise FlowError(f"{event!r} is not possible on the {self.screen} screen")
        if target in IDENTIFIED_ONLY and not self.identified:
            if (self.screen, event) != (RESULTS, "continue"):
                raise FlowError(f"{target} needs an identified member")
            target = MENU  # anonymous: no referral offer, straight back to the menu
        if self.screen == ATTRACT:
            self.started_at = now
        self._go(target, now)
        return self.screen

    def _go(self, screen: str, now: float) -> None:
        self.screen = screen
        self.screen_since = now
        self.last_touch = now

    def touch(self, now: float) -> None:
        """A tap anywhere: the idle timer (and a running countdown) starts over."""
        self.last_touch = now

    def identify(self, member_ref: str, now: float) -> str:
        """The server matched the member: remember only the opaque reference."""
        self.identified = True
        self.member_ref = member_ref
        return self.fire("identified", now)

    def go_anonymous(self, now: float) -> str:
        """Continue without identifying: screeners and results only."""
        self.identified = False
        self.member_ref = None
        return self.fire("anonymous", now)

    def begin(self, instruments: list[str], now: float, *, single: bool = False) -> str:
        """Start the check-up (or one screener) with its instruments in order."""
        if not instruments:
            raise FlowError("a check-up needs at least one instrument")
        self.plan = list(instruments)
        self.instrument_index = 0
        self.question_index = 0
        return self.fire("single" if single else "checkup", now)

    # ------------------------------------------------------------------ questions

    @property
    def instrument(self) -> str:
        """The instrument being answered."""
        return self.plan[self.instrument_index]

    def current_questions(self) -> list[str]:
        """The linkIds of the current instrument the member is asked, in order.

        Not asked: the other unit system's body-size questions, ADA's "BMI if you know it"
        (height and weight are asked instead), a height or weight already given earlier in
        this visit, and a question whose ``enableWhen`` the answers so far do not meet.
        """
        iid = self.instrument
        given = self.answers.get(iid, {})
        carried = self._carried(iid)
        asked = []
        for link, spec in questions(iid).items():
            if link in _BODY_SIZE and link not in _BODY_SIZE_BY_UNITS[self.units]:
                continue
            if link in _BODY_SIZE_ALTERNATIVES or link in carried:
                continue
            if not all(given.get(str(cond.get("question"))) == cond.get("answer")
                       for cond in spec.get("enableWhen", ())):
                continue
            asked.append(link)
        return asked

    def _carried(self, iid: str) -> dict[str, object]:
        """Height and weight the member gave for an earlier instrument of this visit."""
        carried: dict[str, object] = {}
        for other, answers in self.answers.items():
            if other == iid:
                continue
            for link in _BODY_SIZE_BY_UNITS[self.units]:
                if link in answers and link in questions(iid):
                    carried[link] = answers[link]
        return carried if len(carried) == len(_BODY_SIZE_BY_UNITS[self.units]) else {}

    def set_units(self, units: str) -> None:
        """Choose metric or imperial for height and weight."""
        if units not in _BODY_SIZE_BY_UNITS:
            raise ValueError(f"units: must be metric or imperial, got {units!r}")
        self.units = units

    def question_spec(self) -> Mapping[str, Any]:
        """The definition of the question on screen (type, text, options, unit, range)."""
        return questions(self.instrument)[self.question]

    @property
    def question(self) -> str:
        """The linkId on screen."""
        return self.current_questions()[self.question_index]

    def progress(self) -> tuple[int, int]:
        """(question number, questions in this instrument), for the progress indicator.

        Counted over the questions the member may be asked, a conditional one included, so
        the total never grows mid-way (ADA's pregnancy question after "female": 5 of 5 must
        not become 5 of 6); a question not asked is skipped in the numbering instead.
        """
        possible = self._possible_questions(self.instrument)
        link = self.question
        number = possible.index(link) + 1 if link in possible else self.question_index + 1
        return number, max(len(possible), number)

    def visit_progress(self) -> tuple[int, int, float, int]:
        """(part, parts, share done, minutes left) of the whole check-up or screener."""
        possible = [len(self._possible_questions(iid)) for iid in self.plan]
        number, _total = self.progress()
        done = sum(possible[:self.instrument_index]) + number - 1
        left = sum(possible[self.instrument_index:]) - (number - 1)
        minutes = max(1, math.ceil(left * SECONDS_PER_QUESTION / 60))
        return self.instrument_index + 1, len(self.plan), done / max(done + left, 1), minutes

    def _possible_questions(self, iid: str) -> list[str]:
        """The current_questions of an instrument before ``enableWhen``: all it may ask."""
        carried = self._carried(iid)
        return [link for link in questions(iid)
                if not (link in _BODY_SIZE and link not in _BODY_SIZE_BY_UNITS[self.units])
                and link not in _BODY_SIZE_ALTERNATIVES and link not in carried]

    def answer(self, value: object, now: float) -> str:
        """Record the answer on screen and move on."""
        return self._record(value, now, skip=False)

    def skip(self, now: float) -> str:
        """"Prefer not to answer": the screener will not be scored."""
        return self._record(None, now, skip=True)

    def back(self, now: float) -> str:
        """One question back within a screener; otherwise the screen's own Back."""
        if self.screen == QUESTION and self.question_index > 0:
            self.question_index -= 1
            self.touch(now)
            return self.screen
        if self.screen == OFFER:
            return self._reopen(now)
        return self.fire("back", now)

    def _record(self, value: object, now: float, *, skip: bool) -> str:
        if self.screen != QUESTION:
            raise FlowError(f"no question on the {self.screen} screen")
        iid, link = self.instrument, self.question
        answers = self.answers.setdefault(iid, {})
        skipped = self.skipped.setdefault(iid, [])
        answers.pop(link, None)
        if link in skipped:
            skipped.remove(link)
        if skip:
            skipped.append(link)
        else:
            answers[link] = value
        self.touch(now)
        if self.question_index + 1 < len(self.current_questions()):
            self.question_index += 1
            return self.screen
        return self._finish_instrument(now)

    def _finish_instrument(self, now: float) -> str:
        iid = self.instrument
        # An answer to a question no longer asked (Back, then a different answer) is dropped.
        asked = set(self.current_questions())
        self.answers[iid] = {k: v for k, v in self.answers.get(iid, {}).items() if k in asked}
        self.skipped[iid] = [k for k in self.skipped.get(iid, []) if k in asked]
        carried = self._carried(iid)
        if carried:
            self.answers.setdefault(iid, {}).update(carried)
        try:
            stored, triage = score_item(iid, latest_version(iid), self.answers.get(iid, {}),
                                        self.skipped.get(iid, []))
        except ItemErrors:
            # Out-of-range numbers are caught on the entry screen; anything left unscored.
            stored, triage = None, None
        self.results[iid] = stored
        flags = triage.flags if triage is not None else frozenset()
        for trig in CRISIS_TRIGGERS:
            if trig.instrument == iid and trig.flag in flags and \
                    trig.trigger not in self.crisis_triggers:
                self.crisis_triggers.append(trig.trigger)
        self.offer = self._follow_up()
        self.offer_from = iid if self.offer is not None else None
        self.instrument_index += 1
        self.question_index = 0
        new_crisis = any(t.instrument == iid and t.flag in flags for t in CRISIS_TRIGGERS)
        if new_crisis:
            self.crisis_close_armed = False
            return self.fire("crisis", now)
        if self.offer is not None:
            return self.fire("offer", now)
        if self.instrument_index < len(self.plan):
            self.touch(now)
            return self.screen
        return self.fire("finished", now)

    # ------------------------------------------------------------------ follow-ups

    def _follow_up(self) -> str | None:
        """The follow-up screener triage offers now: not planned, taken or declined this visit."""
        scored = {iid: r for iid, r in self.results.items() if r is not None}
        # An unscored screener still counts as taken: triage never re-offers it.
        unscored = {iid: self.skipped.get(iid, []) for iid, r in self.results.items()
                    if r is None}
        proposal = triage(scored, skipped=unscored, rules=self.rules)
        return next((s for s in proposal.next_screeners
                     if s not in self.plan and s not in self.declined), None)

    @property
    def reopenable(self) -> str | None:
        """The screener Back on the offer screen reopens (None when Back is not possible).

        Not one that raised a crisis: its crisis was queued and its screen shown, and the
        member closed that screen deliberately.
        """
        iid = self.offer_from
        if self.offer is None or iid is None:
            return None
        if any(t.instrument == iid and t.trigger in self.crisis_triggers
               for t in CRISIS_TRIGGERS):
            return None
        return iid

    def accept_offer(self, now: float) -> str:
        """"Yes, continue": the offered screener is asked next."""
        if self.screen != OFFER or self.offer is None:
            raise FlowError("no follow-up is on offer")
        self.plan.insert(self.instrument_index, self.offer)
        self._clear_offer()
        return self.fire("accept", now)

    def decline_offer(self, now: float) -> str:
        """"No thanks": never offered again this visit; the plan goes on, or the results."""
        if self.screen != OFFER or self.offer is None:
            raise FlowError("no follow-up is on offer")
        self.declined.append(self.offer)
        self._clear_offer()
        return self.fire("decline" if self.instrument_index < len(self.plan) else "finished",
                         now)

    def _clear_offer(self) -> None:
        self.offer = None
        self.offer_from = None

    def _reopen(self, now: float) -> str:
        """Back from the offer: the last question of the screener that raised it, unscored."""
        iid = self.reopenable
        if iid is None:
            raise FlowError("Back is not possible on this offer")
        self._clear_offer()
        self.results.pop(iid, None)
        self.instrument_index = self.plan.index(iid)
        self.question_index = len(self.current_questions()) - 1
        return self.fire("back", now)

    # ------------------------------------------------------------------ crisis

    def close_crisis(self, now: float, *, confirm: bool) -> str:
        """Close the crisis screen in two steps: first ask, then confirm (not too soon).

        A confirm that comes sooner than ``timeouts.crisis_confirm`` after the first step is
        ignored: it was the same hurried gesture, not a second, deliberate act.
        """
        if self.screen != CRISIS:
            raise FlowError("the crisis screen is not showing")
        if not confirm:
            if not self.crisis_close_armed:
                self.crisis_close_armed = True
                self.crisis_armed_at = now
            self.touch(now)
            return self.screen
        if not self.crisis_close_armed:
            raise FlowError("closing the crisis screen needs the first step first")
        if not self.crisis_confirm_ready(now):
            return self.screen
        self.crisis_close_armed = False
        if self.offer is not None:
            return self.fire("offer", now)
        return self.fire("resume" if self.instrument_index < len(self.plan) else "closed", now)

    def crisis_confirm_ready(self, now: float) -> bool:
        """Tell whether the crisis screen's second step may be taken now."""
        return self.crisis_close_armed and \
            now - self.crisis_armed_at >= self.timeouts.crisis_confirm

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> str | None:
        """Check the timers; return "countdown" while the warning shows, else None.

        Ends the visit (back to the attract screen, everything wiped) when a timer runs out.
        """
        if self.screen == ATTRACT:
            return None
        if self.screen == CRISIS:
            # Never the idle timer: only its own, longer time, or a deliberate close.
            if now - self.screen_since >= self.timeouts.crisis_screen:
                self.end(now, reason="crisis_timeout")
            return None
        if self.started_at is not None and now - self.started_at >= self.timeouts.session_cap:
            self.end(now, reason="cap_timeout")
            return None
        idle = now - self.last_touch
        if idle >= self.timeouts.idle + self.timeouts.countdown:
            self.end(now, reason="idle_timeout")
            return None
        if idle >= self.timeouts.idle:
            return "countdown"
        return None

    def countdown_left(self, now: float) -> float:
        """Seconds left on the visible countdown (0 when it is not running)."""
        idle = now - self.last_touch
        if idle < self.timeouts.idle:
            return 0.0
        return max(0.0, self.timeouts.idle + self.timeouts.countdown - idle)

    # ------------------------------------------------------------------ ending

    def end(self, now: float, *, reason: str = "end") -> str:
        """End the visit: wipe everything and show the attract screen.

        On the crisis screen only its own timeout ends the visit; "End session" and the idle
        timer must not take the guidance away (DESIGN.md §3.6).
        """
        if self.screen == CRISIS and reason not in ("crisis_timeout",):
            self.touch(now)
            return self.screen
        self.wipe(now)
        return self.screen

    def wipe(self, now: float = 0.0) -> None:
        """Forget the member: answers, results, reference, language, crisis state."""
        self.identified = False
        self.member_ref = None
        self.plan = []
        self.instrument_index = 0
        self.question_index = 0
        self.answers = {}
        self.skipped = {}
        self.results = {}
        self.crisis_triggers = []
        self.crisis_close_armed = False
        self.offer = None
        self.offer_from = None
        self.declined = []
        self.units = "metric"
        self.started_at = None
        self.language = self.home_language
        self._go(ATTRACT, now)

    def holds_member_data(self) -> bool:
        """Tell whether anything of a member is still held (tests assert it never is)."""
        return bool(self.member_ref or self.answers or self.skipped or self.results or
                    self.crisis_triggers or self.plan or self.identified or
                    self.offer or self.offer_from or self.declined)


def latest_version(instrument_id: str) -> str:
    """The newest version of an instrument: what the kiosk asks and scores."""
    from shared.assessments import available_versions

    return available_versions(instrument_id)[-1]
