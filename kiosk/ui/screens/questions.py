"""The questions: one question at a time, and the offer of a follow-up screener."""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from ...flow import QUESTION
from ...visit import question_unit
from ..base import KioskScreen
from ..devices import show_device_panel
from ..keypad import BACK
from ..lang import tr

# Height in US units: typed as feet (this range), then inches; sent as total inches.
FEET_INCHES_QUESTION = "height_in"
FEET = (3, 8)


class QuestionScreen(KioskScreen):
    """One question: answer buttons, or a number with its unit; progress, Back, skip."""

    kv_name = "question"
    progress_text = StringProperty("")
    progress_value = NumericProperty(0)
    title = StringProperty("")
    preamble = StringProperty("")
    question = StringProperty("")
    numeric = BooleanProperty(False)
    typed = StringProperty("")
    unit = StringProperty("")
    range_text = StringProperty("")
    body_size = BooleanProperty(False)
    units = StringProperty("metric")
    message = StringProperty("")
    answer_buttons = ListProperty([])
    # Height in US units is typed as feet, then inches (people know "5 ft 6", not "66 in").
    feet = StringProperty("")  # the feet typed, while the inches are asked
    prefix = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool: list[Any] = []
        self._asked: tuple[str, str, str] | None = None
        self.ids.numpad.bind(on_key=lambda _pad, key: self.number_key(key))

    def on_typed(self, *_args: Any) -> None:
        """The screen resets what is typed (a new question, feet to inches): so does the pad."""
        self.ids.numpad.typed = self.typed

    def refresh(self) -> None:
        """Show the question on screen and its answers."""
        visit = self.visit
        if visit.screen != QUESTION:
            return
        journey = visit.journey
        number, total = journey.progress()
        part, parts, done, minutes = journey.visit_progress()
        # The whole visit's progress, not one screener's: "Part 2 of 5 · about 3 minutes left".
        where = tr._("Part {part} of {parts}").format(part=part, parts=parts) if parts > 1 \
            else tr._("Question {n} of {total}").format(n=number, total=total)
        self.progress_text = where + " \u00b7 " + (
            tr._("about 1 minute left") if minutes == 1 else
            tr._("about {minutes} minutes left").format(minutes=minutes))
        self.progress_value = done
        self.title = visit.instrument_title()
        self.preamble = visit.preamble()
        self.question = visit.question_text()
        spec = journey.question_spec()
        self.numeric = spec.get("type") in ("integer", "decimal")
        self.unit = question_unit(spec)
        self.body_size = journey.question in ("height_cm", "weight_kg", "height_in", "weight_lb")
        self.units = journey.units
        if self.numeric:
            self.range_text = tr._("From {low} to {high}").format(
                low=f"{spec.get('min', ''):g}", high=f"{spec.get('max', ''):g}") \
                if isinstance(spec.get("min"), int | float) else ""
        self.message = tr._(visit.message).format(**visit.message_args) if visit.message else ""
        self.typed = ""
        asked = (visit.session_id, journey.instrument, journey.question)
        if asked != self._asked:  # a new question; a language switch keeps the feet typed
            self._asked, self.feet, self.prefix = asked, "", ""
        if journey.question == FEET_INCHES_QUESTION:
            self.question = tr._("Your height without shoes: type the feet, then the inches.")
            if self.feet:
                self._inches_step()
            else:
                self._feet_step()
        # A paired cuff or scale answers this question, unless the member chose to type it.
        self._show_number_box(self.numeric and not show_device_panel(self))
        options = [] if self.numeric else visit.options()
        # Buttons are reused from question to question: building one (its kv rules) costs
        # more than a frame, and a tap should show the next question at once.
        while len(self._pool) < len(options):
            button = Factory.BigButton()
            button.bind(on_release=self._answer)
            self._pool.append(button)
        wanted = self._pool[:len(options)]
        for button, (value, text) in zip(wanted, options, strict=True):
            button.answer_value = value
            button.text = tr._(text) if isinstance(value, bool) else text
        box = self.ids.answers
        if list(reversed(box.children)) != wanted:
            box.clear_widgets()
            for button in wanted:
                box.add_widget(button)
        self.answer_buttons = wanted

    def _answer(self, button: Any) -> None:
        self.app.do(self.visit.questions.answer, button.answer_value)

    def _feet_step(self) -> None:
        self.unit, self.prefix = "ft", ""
        self.range_text = tr._("From {low} to {high}").format(low=FEET[0], high=FEET[1])

    def _inches_step(self) -> None:
        self.unit, self.prefix = "in", f"{self.feet} ft  "
        self.range_text = tr._("From {low} to {high}").format(low=0, high=11)

    def _show_number_box(self, show: bool) -> None:
        # ids hold weak references: keep the box alive while it is out of the page.
        if not hasattr(self, "_number_box"):
            self._number_box = self.ids.number_box.__self__
        number_box = self._number_box
        page = self.ids.page
        if show and number_box.parent is None:
            page.add_widget(number_box, index=page.children.index(self.ids.skip) + 1)
        elif not show and number_box.parent is not None:
            page.remove_widget(number_box)

    def press(self, key: str) -> None:
        """A key of the number pad (as if tapped)."""
        self.ids.numpad.press(key)

    def number_key(self, key: str) -> bool:
        """The number's own rules, before the keypad's: say whether the key was taken."""
        if key == BACK and not self.typed and self.feet:  # back from inches to feet
            self.feet = ""
            self._feet_step()
            return True
        return key == "." and "." in self.typed  # one decimal point

    def enter_number(self) -> None:
        """Send the typed number (the visit checks its range); feet, then inches, for height."""
        if not self.typed or self.typed == ".":
            return
        if self.visit.journey.question == FEET_INCHES_QUESTION:
            self._enter_feet_or_inches()
            return
        # "72" is sent as a whole number, "72.5" as a decimal; the visit checks the range.
        value: float | int = float(self.typed) if "." in self.typed else int(self.typed)
        self.app.do(self.visit.questions.answer, value)

    def _enter_feet_or_inches(self) -> None:
        typed = self.typed
        self.typed = ""
        if not typed.isdigit():
            return
        if not self.feet:
            if FEET[0] <= int(typed) <= FEET[1]:
                self.feet = typed
                self._inches_step()
            return
        if int(typed) <= 11:
            self.app.do(self.visit.questions.answer, int(self.feet) * 12 + int(typed))

    def choose_units(self, units: str) -> None:
        """Metric or imperial for height and weight."""
        self.visit.journey.set_units(units)
        self.typed = ""
        self.app.sync()


class OfferScreen(KioskScreen):
    """A follow-up screener, offered: what it is about, how long it takes; yes or no thanks."""

    kv_name = "offer"
    why = StringProperty("")
    details = StringProperty("")
    can_back = BooleanProperty(True)

    def refresh(self) -> None:
        """Describe the screener on offer in the visit's language."""
        offer = self.visit.follow_up_offer()
        if offer is None:
            return
        self.why = tr._("Your answers suggest that a few more questions about {topic} could "
                        "help.").format(topic=offer.topic) if offer.topic else \
            tr._("Your answers suggest that a few more questions could help.")
        size = tr._("{n} questions").format(n=offer.questions)
        if offer.minutes:
            size += ", " + tr._("about {minutes} minutes").format(minutes=offer.minutes)
        self.details = f"{offer.title}\n{size}"
        self.can_back = self.visit.journey.reopenable is not None
