"""The menu and the referral, with the phone and email pads they both open."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty

from ...visit import CONTACT_METHODS, CONTACT_TIMES, SINGLE_SCREENERS
from ..base import KV_DIR, KioskScreen, load_kv
from ..lang import tr

# The email pad's keys, row by row (7 a row); Delete sits with OK and Cancel below them.
EMAIL_KEYS = (*"abcdefghijklmnopqrstuvwxyz", "@", ".", *"1234567890", "-", "_", "+", ".com")


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
        self.app.do(self.visit.signin.claim_contact, phone=typed)

    def save_email(self, typed: str) -> None:
        """The offline sign-in's email, for staff; forgotten here."""
        self.close_pads()
        self.app.do(self.visit.signin.claim_contact, email=typed)

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
        self.app.do(self.visit.questions.single, iid)


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
        self.app.do(self.visit.referral.consent, self.method, self.when)

    def save_email(self, typed: str) -> None:
        """The address was typed: give consent with it, and forget it here."""
        self.close_pads()
        self.app.do(self.visit.referral.consent, self.method, self.when, email=typed)

    def save_phone(self, typed: str) -> None:
        """The number was typed: give consent with it, and forget it here."""
        self.close_pads()
        self.app.do(self.visit.referral.consent, self.method, self.when, typed)

    def on_leave(self, *_args: Any) -> None:
        """Never leave a typed number or address behind."""
        self.close_pads()
