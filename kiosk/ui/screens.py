"""The journey's screens: thin views over ``kiosk.visit.Visit``; layout lives in ``kv/``.

Each screen reads what to show from the visit in ``refresh`` and calls the app for every
action (``app.act``), which moves the visit and then shows whatever screen it is on.
Widgets that depend on the member's answers (answer buttons, results, QR codes) are built
here; everything fixed is in the screen's kv file with its text bound to ``tr``.
"""

from __future__ import annotations

import io
import time
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.image import Image as CoreImage
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.image import Image
from kivy.utils import escape_markup

from shared.schemas.pairing import PairingQr

from ..flow import QUESTION
from ..visit import CONTACT_METHODS, CONTACT_TIMES, SINGLE_SCREENERS, question_unit
from .base import KV_DIR, KioskScreen, load_kv
from .devices import show_device_panel
from .keypad import BACK
from .lang import tr

# Height in US units: typed as feet (this range), then inches; sent as total inches.
FEET_INCHES_QUESTION = "height_in"
FEET = (3, 8)
# Taps in the attract screen's top-left corner that open admin mode (with the PIN after).
ADMIN_TAPS = 5
ADMIN_TAP_WINDOW = 4.0
# The sign-in keypad: digits, or letters for ids such as E1001 (ABC and 123 swap them).
ID_DIGIT_KEYS = (*"123456789", "ABC", "0", BACK)
ID_LETTER_KEYS = (*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "-", "123", BACK)
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
ID_MAX, DOB_DIGITS = 32, 8
# The email pad's keys, row by row (7 a row); Delete sits with OK and Cancel below them.
EMAIL_KEYS = (*"abcdefghijklmnopqrstuvwxyz", "@", ".", *"1234567890", "-", "_", "+", ".com")


def _mask(text: str) -> str:
    return "\u2022 " * len(text) if text else ""


class AttractScreen(KioskScreen):
    """Branding, a big Start, the language choice; a hidden corner opens admin mode."""

    kv_name = "attract"
    site_name = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._taps: list[float] = []

    def refresh(self) -> None:
        """Show the site's name from the catalog."""
        catalog = self.visit.catalog()
        self.site_name = catalog.settings.branding.name if catalog is not None else ""

    def corner_tap(self) -> None:
        """Count taps on the hidden corner; enough, quickly enough, ask for the admin PIN."""
        now = time.monotonic()
        self._taps = [t for t in self._taps if now - t < ADMIN_TAP_WINDOW] + [now]
        if len(self._taps) >= ADMIN_TAPS:
            self._taps = []
            self.app.open_admin()


class PrivacyScreen(KioskScreen):
    """A short, plain privacy notice and consent."""

    kv_name = "privacy"
    retention_days = NumericProperty(0)  # 0: the site did not say (the wording has no number)

    def refresh(self) -> None:
        """The site's own retention, from its catalog."""
        self.retention_days = self.visit.retention_days() or 0


class IdentifyScreen(KioskScreen):
    """Employee or badge number and date of birth, both masked; or continue anonymously."""

    kv_name = "identify"
    typed_id = StringProperty("")
    typed_dob = StringProperty("")
    field = StringProperty("id")  # which field the keypad types into
    letters = BooleanProperty(False)
    message = StringProperty("")
    show_id = BooleanProperty(False)  # the "Show" toggles: dots by default, for the queue behind
    show_dob = BooleanProperty(False)

    def on_pre_enter(self, *args: Any) -> None:
        """Start empty, and listen to a badge scanner (it types like a keyboard)."""
        self.typed_id = self.typed_dob = ""
        self.show_id = self.show_dob = False
        self.field = "id"
        self.letters = False
        self._set_pad()
        Window.bind(on_textinput=self._scanned, on_key_down=self._key)
        super().on_pre_enter(*args)

    def on_leave(self, *_args: Any) -> None:
        """Forget what was typed and stop listening to the keyboard."""
        Window.unbind(on_textinput=self._scanned, on_key_down=self._key)
        self.typed_id = self.typed_dob = ""
        self.show_id = self.show_dob = False
        self.ids.keypad.clear()

    def refresh(self) -> None:
        """Show the visit's message (why the last try did not work)."""
        self.message = self.visit.message

    def on_field(self, *_args: Any) -> None:
        """A birth date is digits only; the keypad now types into the other field."""
        if self.field == "dob":
            self.letters = False
        self._set_pad()

    def _set_pad(self) -> None:
        # What the field takes: an id of letters, digits and dashes (typed in capitals), or
        # the eight digits of a birth date.
        pad = self.ids.keypad
        if self.field == "id":
            pad.allowed, pad.max_length, pad.upper = ID_CHARS, ID_MAX, True
            pad.typed = self.typed_id
        else:
            pad.allowed, pad.max_length, pad.upper = "0123456789", DOB_DIGITS, False
            pad.typed = self.typed_dob

    def typed_from_pad(self, typed: str) -> None:
        """The keypad typed into the field it is on."""
        if self.field == "id":
            self.typed_id = typed
        else:
            self.typed_dob = typed

    def _scanned(self, _window: Any, text: str) -> None:
        for ch in text:
            self.press(ch)

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        if key in (13, 271):  # Enter, as a scanner ends its badge; keypad Enter too
            self.press("enter")
            return True
        if key == 8:
            self.press("back")
            return True
        return False

    def press(self, key: str) -> None:
        """One keypad key (or a scanner's character)."""
        self.app.visit.touch()
        if key == "enter":
            if self.field == "id" and self.typed_id:
                self.field = "dob"
            elif self.typed_id and self.typed_dob:
                self.submit()
            return
        if key == "clear":
            self.ids.keypad.clear()
            return
        self.ids.keypad.press(key)

    def submit(self) -> None:
        """Sign in with what was typed; when that did not work, keep the id to try again.

        Only the birth date is cleared (it was impossible, or did not match with this id):
        the member retypes it without typing the id again.
        """
        self.app.act("identify", self.typed_id, self.typed_dob)
        if self.manager is not None and self.manager.current == self.name:
            self.typed_dob = ""
            self.field = "dob"

    def toggle_show(self, field: str) -> None:
        """Show or hide what was typed in one field."""
        self.app.visit.touch()
        if field == "id":
            self.show_id = not self.show_id
        else:
            self.show_dob = not self.show_dob

    def on_typed_id(self, *_args: Any) -> None:
        """Show dots for the id (or the id, when shown)."""
        if self.field == "id":
            self.ids.keypad.typed = self.typed_id
        self.ids.id_field.text = self.typed_id if self.show_id else _mask(self.typed_id)

    on_show_id = on_typed_id

    def on_typed_dob(self, *_args: Any) -> None:
        """Show dots (or the digits, when shown) and where the slashes go for the birth date."""
        if self.field == "dob":
            self.ids.keypad.typed = self.typed_dob
        typed = self.typed_dob
        shown = typed if self.show_dob else "".join("\u2022" for _ in typed)
        self.ids.dob_field.text = "/".join(p for p in (shown[:2], shown[2:4], shown[4:]) if p)

    on_show_dob = on_typed_dob


class ContactPads:
    """The phone and email pads (kv in referral.kv) over a screen; the screen saves what is typed.

    The screen using them has ``save_phone(typed)`` and ``save_email(typed)``.
    """

    phone_pad: Any = None
    email_pad: Any = None

    def open_phone_pad(self) -> None:
        """Open the number pad."""
        load_kv(KV_DIR / "referral.kv")  # the pads' rules, also for screens other than referral
        self.phone_pad = Factory.PhonePad()
        self.phone_pad.screen = self
        self.phone_pad.open(animation=False)
        app = App.get_running_app()
        app.hold_input()  # the pad's keys now sit under the finger
        app.read_screen()  # with read-aloud on, the pad is read as a new screen would be

    def open_email_pad(self) -> None:
        """Open the email pad (its keys: EMAIL_KEYS, on a Keypad)."""
        load_kv(KV_DIR / "referral.kv")
        self.email_pad = Factory.EmailPad()
        self.email_pad.screen = self
        self.email_pad.open(animation=False)
        app = App.get_running_app()
        app.hold_input()
        app.read_screen()

    def email_key(self, key: str) -> None:
        """One key of the email pad ("back" deletes)."""
        if self.email_pad is not None:
            self.email_pad.ids.keyboard.press(key)

    def close_pads(self) -> None:
        """Close the number or address pad (Cancel), forgetting what was typed."""
        for pad in (self.phone_pad, self.email_pad):
            if pad is not None:
                pad.typed = ""
                pad.dismiss(animation=False)
        self.phone_pad = self.email_pad = None


class MenuScreen(ContactPads, KioskScreen):
    """Quick check-up, a single screener, booking, the advocate, finish.

    Who is signed in shows at the top ("Signed in as Ana"). After a sign-in the kiosk could
    not check (offline), the member may leave a phone number or email for staff.
    """

    kv_name = "menu"
    identified = BooleanProperty(False)
    picking = BooleanProperty(False)
    message = StringProperty("")
    signed_in = StringProperty("")
    ask_contact = BooleanProperty(False)

    def refresh(self) -> None:
        """Offer what this member can reach; list single screeners when asked."""
        visit = self.visit
        self.identified = visit.identified
        self.message = visit.message
        name = visit.signed_in_name
        self.signed_in = tr._("Signed in as {name}").format(name=name) if name else \
            tr._("Signed in; not checked yet") if visit.offline_claim else ""
        self.ask_contact = visit.offline_claim and not visit.claim_contact_given
        box = self.ids.screeners
        box.clear_widgets()
        if not self.picking:
            return
        for iid in SINGLE_SCREENERS:
            button = Factory.SecondaryButton(text=self.visit.instrument_title(iid))
            button.bind(on_release=lambda _b, i=iid: self._single(i))
            box.add_widget(button)

    def save_phone(self, typed: str) -> None:
        """The offline sign-in's phone number, for staff; forgotten here."""
        self.close_pads()
        self.app.act("claim_contact", phone=typed)

    def save_email(self, typed: str) -> None:
        """The offline sign-in's email, for staff; forgotten here."""
        self.close_pads()
        self.app.act("claim_contact", email=typed)

    def on_leave(self, *_args: Any) -> None:
        """Never leave a typed number or address behind."""
        self.close_pads()

    def toggle_picking(self) -> None:
        """Show or hide the list of single screeners."""
        self.app.hold_input()  # the list appears under the finger
        self.picking = not self.picking
        self.refresh()

    def _single(self, iid: str) -> None:
        self.picking = False
        self.app.act("single", iid)


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
        self.app.act("answer", button.answer_value)

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
        self.app.act("answer", value)

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
            self.app.act("answer", int(self.feet) * 12 + int(typed))

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


class ResultsScreen(KioskScreen):
    """A crisis first when there was one; then each finding in plain words with the member's
    own numbers and one next step; colours explained and never alone; not a diagnosis."""

    kv_name = "results"
    next_text = StringProperty("")

    def refresh(self) -> None:
        """Build the crisis card (if any), the colour legend and one card per finding."""
        visit = self.visit
        box = self.ids.rows
        box.clear_widgets()
        crisis = visit.crisis_summary()
        if crisis is not None:
            lines = [f"[b]{escape_markup(crisis.heading)}[/b]",
                     *(escape_markup(seen) for seen in crisis.seen),
                     f"[b]{escape_markup(crisis.staff)}[/b]",
                     f"[b]{escape_markup(crisis.lines)}[/b]"]
            card = Factory.ResultCard(text="\n".join(lines), fs=40)
            card.level = "act"
            box.add_widget(card)
        box.add_widget(Factory.KLabel(text=visit.results_legend(), fs=32))
        for finding in visit.findings():
            lines = [f"[b]{escape_markup(finding.title)}: {escape_markup(finding.level_words)}[/b]",
                     escape_markup(finding.said)]
            if finding.step:
                lines.append(f"[b]{escape_markup(visit.next_step_words())}[/b] "
                             f"{escape_markup(finding.step)}")
            card = Factory.ResultCard(text="\n".join(lines))
            card.level = finding.level  # a kv-declared property: set after building
            box.add_widget(card)
        for notice in visit.notices():
            box.add_widget(Factory.Notice(text=notice))
        self.next_text = tr._("Next") if visit.identified else tr._("Back to the menu")


class CrisisScreen(KioskScreen):
    """Guidance for the trigger; closes in two steps, or after its own long time."""

    kv_name = "crisis"
    armed = BooleanProperty(False)
    ready = BooleanProperty(False)  # the second step may be taken (a moment after the first)

    def refresh(self) -> None:
        """Show the guidance for every crisis this visit raised."""
        journey = self.visit.journey
        self.armed = journey.crisis_close_armed
        self.ready = journey.crisis_confirm_ready(self.visit.clock())
        if self.armed and not self.ready:
            Clock.schedule_once(lambda _dt: self._check_ready(), 0.1)
        box = self.ids.guidance
        box.clear_widgets()
        for shown in self.visit.crisis():
            box.add_widget(Factory.Title(text=shown["title"], halign="left"))
            box.add_widget(Factory.KLabel(text=shown["text"], fs=40))
            for res in shown["resources"]:
                # Each resource's label already says how to reach it ("call or text 988").
                box.add_widget(Factory.KLabel(text=f"[b]{res['label']}[/b]", markup=True, fs=42))
        local = self.visit.local_crisis_resources()
        if local:
            box.add_widget(Factory.Title(text=tr._("Help near you"), halign="left"))
            for line in local:
                box.add_widget(Factory.KLabel(text=f"[b]{escape_markup(line)}[/b]", markup=True,
                                              fs=42))

    def _check_ready(self) -> None:
        """Offer the second step once its moment has come (while this screen still shows)."""
        if self.manager is None or self.manager.current != self.name:
            return
        journey = self.visit.journey
        if not journey.crisis_close_armed:
            return
        self.ready = journey.crisis_confirm_ready(self.visit.clock())
        if not self.ready:
            Clock.schedule_once(lambda _dt: self._check_ready(), 0.1)
        else:
            self.app.hold_input()  # the button just woke up under a finger, maybe

    def close(self, confirm: bool) -> None:
        """First tap asks; the second, elsewhere and a moment later, closes."""
        self.app.act("close_crisis", confirm=confirm)


class ReferralScreen(ContactPads, KioskScreen):
    """One advocate will contact you: how, when, and consent; or stop contacting me."""

    kv_name = "referral"
    method = StringProperty("")
    when = StringProperty("")
    message = StringProperty("")
    decided = BooleanProperty(False)  # consent given: "Next" replaces the yes/no choice
    methods = CONTACT_METHODS
    times = CONTACT_TIMES

    def refresh(self) -> None:
        """Show the visit's message (the answer to a consent) and whether it was given."""
        self.message = tr._(self.visit.message) if self.visit.message else ""
        self.decided = self.visit.consented is True

    def on_pre_enter(self, *args: Any) -> None:
        """Nothing chosen yet (not even what the previous member chose)."""
        self.method = self.when = ""
        for name in (*CONTACT_METHODS, *CONTACT_TIMES):
            self.ids[name].state = "normal"
        super().on_pre_enter(*args)

    def agree(self) -> None:
        """Give consent with the chosen channel and time (a call or text asks the number,
        an email the address)."""
        if self.method in ("phone", "text"):
            self.open_phone_pad()
            return
        if self.method == "email":
            self.open_email_pad()
            return
        self.app.act("consent", self.method, self.when)

    def save_email(self, typed: str) -> None:
        """The address was typed: give consent with it, and forget it here."""
        self.close_pads()
        self.app.act("consent", self.method, self.when, email=typed)

    def save_phone(self, typed: str) -> None:
        """The number was typed: give consent with it, and forget it here."""
        self.close_pads()
        self.app.act("consent", self.method, self.when, typed)

    def on_leave(self, *_args: Any) -> None:
        """Never leave a typed number or address behind."""
        self.close_pads()


class BookingScreen(KioskScreen):
    """Events, then slots with seats left, then confirm; your bookings; offline says so."""

    kv_name = "booking"
    offline = BooleanProperty(False)
    confirm_button: Any = None  # the confirmation's yes and no, while it shows
    keep_button: Any = None
    heading = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        """Load the member's bookings (online only)."""
        self.visit.load_bookings()
        self.visit.choose_event(None)
        super().on_pre_enter(*args)

    def refresh(self) -> None:
        """Show events, or the chosen event's slots, and the member's bookings."""
        visit = self.visit
        self.offline = visit.needs_connection
        self.message = tr._(visit.message).format(**visit.message_args) if visit.message else ""
        box = self.ids.entries
        box.clear_widgets()
        if self.offline:
            self.heading = tr._("Booking needs the connection")
            return
        if visit.pending is not None:
            self._confirmation(box)
            return
        if visit.event is None:
            self.heading = tr._("Choose an event")
            for booking in visit.bookings:
                self._add_booking(box, booking)
            events = visit.events()
            for event in events:
                seats = sum(s.seats_left for s in event.slots)
                title = visit.event_title(event)
                button = Factory.BigButton(
                    text=f"{title}\n" + tr._("{n} seats left").format(n=seats))
                button.bind(on_release=lambda _b, e=event.id: self._event(e))
                box.add_widget(button)
            if not events:
                box.add_widget(Factory.Lead(text=tr._("There are no events to book right now.")))
            return
        self.heading = tr._("Choose a time") if visit.moving is None else \
            tr._("Choose a new time")
        for slot in visit.slots():
            seats = tr._("{n} seats left").format(n=slot.seats_left) if slot.seats_left > 0 \
                else tr._("Full: join the waitlist")
            button = Factory.BigButton(text=f"{visit.when(slot.start_at)}\n{seats}")
            button.slot_id = slot.id  # the tour and tests find a slot's button by its id
            button.bind(on_release=lambda _b, s=slot.id: self.app.act("choose_slot", s))
            box.add_widget(button)

    def _confirmation(self, box: Any) -> None:
        """Say what will be booked (or cancelled) and ask for a plain yes or no."""
        visit = self.visit
        slot, booking = visit.pending_slot(), visit.pending_cancel()
        if slot is not None and visit.event is not None:
            full = slot.seats_left <= 0
            self.heading = tr._("Join the waitlist?") if full else tr._("Book this time?")
            title = visit.event_title(visit.event)
            when = visit.when_where(slot.start_at, visit.event.location)
            about = visit.event_description(visit.event)
            if about:
                when += "\n" + about
            yes = tr._("Yes, join the waitlist") if full else tr._("Yes, book it")
            no = tr._("Choose another time")
        elif booking is not None:
            self.heading = tr._("Cancel this booking?")
            title, when = visit.booking_summary(booking)
            yes, no = tr._("Yes, cancel it"), tr._("No, keep it")
        else:  # what was waiting is gone (a new catalog): back to the list
            visit.keep()
            self.refresh()
            return
        box.add_widget(Factory.Lead(text=f"[b]{escape_markup(title)}[/b]\n"
                                         f"{escape_markup(when)}", markup=True))
        confirm = Factory.BigButton(text=yes)
        confirm.bind(on_release=lambda _b: self.app.act("confirm"))
        keep = Factory.SecondaryButton(text=no)
        keep.bind(on_release=lambda _b: self.app.act("keep"))
        box.add_widget(confirm)
        box.add_widget(keep)
        self.confirm_button, self.keep_button = confirm, keep

    def _add_booking(self, box: Any, booking: Any) -> None:
        status = tr._("Waitlist") if booking.status == "waitlisted" else tr._("Booked")
        title, when = self.visit.booking_summary(booking)
        box.add_widget(Factory.KLabel(text=f"[b]{status}[/b]: {escape_markup(title)}\n"
                                           f"{escape_markup(when)}", markup=True))
        row = Factory.BoxLayout(size_hint_y=None, height=self.app.scale * 150,
                                spacing=self.app.scale * 24)
        cancel = Factory.SecondaryButton(text=tr._("Cancel it"))
        cancel.bind(on_release=lambda _b, b=booking.booking_id: self.app.act("choose_cancel", b))
        move = Factory.SecondaryButton(text=tr._("Change the time"))
        move.bind(on_release=lambda _b, b=booking.booking_id: self.app.act("start_moving", b))
        row.add_widget(cancel)
        row.add_widget(move)
        box.add_widget(row)

    def _event(self, event_id: str) -> None:
        self.visit.choose_event(event_id)
        self.app.sync()


class QrScreen(KioskScreen):
    """The advocate-link, contact and ticket QR codes, each with what scanning does."""

    kv_name = "qr"
    offline = BooleanProperty(False)

    def refresh(self) -> None:
        """Draw the codes (from shared.qr PNGs) with their captions."""
        from shared.qr import qr_png  # qrcode and Pillow load only when codes are shown

        box = self.ids.codes
        box.clear_widgets()
        codes = self.visit.qr_codes()
        self.offline = not codes
        booked = self.visit.booked
        if booked is not None:
            box.add_widget(Factory.BookingSummary(text=self._summary(booked)))
        name = self.visit.advocate.advocate.name if self.visit.advocate else ""
        for code in codes:
            texture = CoreImage(io.BytesIO(qr_png(code.content, size_px=600)), ext="png").texture
            texture.mag_filter = "nearest"
            card = Factory.QrCard()
            card.caption = tr._(code.caption).format(name=name)
            card.kind = code.kind
            image = Image(texture=texture, size_hint=(None, None), fit_mode="contain")
            image.size = (self.app.scale * 420, self.app.scale * 420)
            card.ids.holder.add_widget(image)
            box.add_widget(card)

    def _summary(self, booked: Any) -> str:
        """What, when and where of the booking just made (or the waitlist's place)."""
        title, when = self.visit.booking_summary(booked)
        head = tr._("You are on the waitlist, number {n}").format(
            n=booked.waitlist_position or "") if booked.status == "waitlisted" \
            else tr._("You are booked")
        return f"[b]{escape_markup(head)}[/b]\n[b]{escape_markup(title)}[/b]\n" \
               f"{escape_markup(when)}"


class DoneScreen(KioskScreen):
    """Thank you; back to the start on its own (988 again after a visit that raised a crisis)."""

    kv_name = "done"
    crisis_line = StringProperty("")

    def refresh(self) -> None:
        """Repeat the crisis line when this visit raised a crisis."""
        self.crisis_line = self.visit.crisis_reminder()


class SetupScreen(KioskScreen):
    """First start, or admin: pair with a server (URL and code) and set the admin PIN.

    Three cases: not paired (address, code and PIN); paired from the command line but with no
    PIN yet (the PIN only: the code was used already); staff pairing again (empty fields).
    """

    kv_name = "setup"
    message = StringProperty("")
    paired = BooleanProperty(False)
    pin_only = BooleanProperty(False)
    _scan = ""  # what the keyboard (or a USB scanner, which types like one) typed since Enter
    _pin_next = False  # paired by a scan just now: the PIN is chosen next, even when one exists

    def on_pre_enter(self, *args: Any) -> None:
        """Start with no code and no PIN: a used code or an old PIN is never shown again."""
        self.ids.code.text = ""
        self.ids.pin.text = ""
        self._scan, self._pin_next = "", False
        Window.bind(on_textinput=self._typed, on_key_down=self._key)
        super().on_pre_enter(*args)

    def on_leave(self, *_args: Any) -> None:
        """Stop listening for a scanner."""
        Window.unbind(on_textinput=self._typed, on_key_down=self._key)

    def refresh(self) -> None:
        """Which of the three cases this is."""
        status = self.app.backend_status()
        self.paired = bool(status is not None and status.paired)
        self.pin_only = self.paired and (self._pin_next or not self.app.admin.is_set())
        self.message = ""

    def _typed(self, _window: Any, text: str) -> None:
        # Whatever field has the focus (or none), the scanner's text is seen here too.
        self._scan = (self._scan + text)[-1000:]

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        if key not in (13, 271):  # a scanner ends the QR's text with Enter (or keypad Enter)
            return False
        typed, self._scan = self._scan, ""
        found = PairingQr.read(typed[typed.rfind("{"):]) if "{" in typed else None
        if found is None or self.pin_only:
            return False
        self.scanned(found)
        return True

    def scanned(self, qr: PairingQr) -> None:
        """The dashboard's pairing QR was scanned: pair at once, then ask for the admin PIN."""
        self.ids.url.text, self.ids.code.text = qr.server_url, qr.pairing_code
        # A focused PIN field kept the QR's digits (the port): never take them for a PIN.
        self.ids.pin.text = ""
        for field in (self.ids.url, self.ids.code, self.ids.pin):
            field.focus = False
        message = self.app.pair_only(qr.server_url, qr.pairing_code)
        if message:
            self.message = message
            return
        self._pin_next = True
        self.refresh()
        # The cursor waits in the PIN field: type it on the scanner's keyboard, then Enter.
        Clock.schedule_once(lambda _dt: setattr(self.ids.pin, "focus", True), 0.1)

    def pair(self) -> None:
        """Pair with the server and set the PIN (or set the PIN only); say what went wrong."""
        pin = self.ids.pin.text.strip()
        if self.pin_only:
            self.message = self.app.set_first_pin(pin)
            return
        self.message = self.app.pair(self.ids.url.text.strip(), self.ids.code.text.strip(), pin)


class AdminPinScreen(KioskScreen):
    """The admin PIN, on a number pad; locked for a while after repeated failures."""

    kv_name = "admin_pin"
    typed = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        """Start empty."""
        self.typed = ""
        self.message = ""
        super().on_pre_enter(*args)

    def on_typed(self, *_args: Any) -> None:
        """The screen clears the PIN (entering, after a try): so does the pad."""
        self.ids.pad.typed = self.typed

    def press(self, key: str) -> None:
        """A key of the PIN pad (as if tapped)."""
        self.ids.pad.press(key)

    def submit(self) -> None:
        """Check the PIN."""
        typed, self.typed = self.typed, ""
        self.message = self.app.check_pin(typed)


class AdminScreen(KioskScreen):
    """Pairing, sync status and outbox depth with the drain's progress, errors, language."""

    kv_name = "admin"
    paired = BooleanProperty(False)
    online = BooleanProperty(False)
    depth = NumericProperty(0)
    progress = NumericProperty(0)
    draining = BooleanProperty(False)
    last_sync = StringProperty("")
    errors = StringProperty("")
    update_required = StringProperty("")  # the version the server needs, when it refused us
    app_version = StringProperty("")

    def refresh(self) -> None:
        """Read the backend's status."""
        status = self.app.backend_status()
        if status is None:
            return
        self.paired, self.online = status.paired, status.online
        self.depth = status.outbox_depth
        self.draining = status.backlog_at_start > 0 and status.outbox_depth > 0
        self.progress = (status.sent_since_backlog / status.backlog_at_start
                         if status.backlog_at_start else 0)
        self.last_sync = status.last_sync_at or ""
        self.errors = "\n".join(status.last_errors[-5:])
        self.update_required = status.update_required or ""
        self.app_version = status.app_version
