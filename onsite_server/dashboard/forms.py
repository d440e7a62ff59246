"""Dashboard forms: FlaskForm classes whose ``validate_<field>`` methods name the bad field.

All of the dashboard's forms live here, the events, check-in and report pages' too. Every form
carries the CSRF token (Flask-WTF); templates render it with
``form.hidden_tag()`` or ``{{ form.csrf_token }}``. Labels are lazy translations.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..services.events import MAX_CAPACITY, TITLE_MAX, EventInput
from ..services.sites import is_site_zone

NOTE_MAX = 2000


class BaseForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type hints
    """The base of every dashboard form (subclass this one, not FlaskForm, for mypy)."""


class LoginForm(BaseForm):
    """Email and password."""

    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)],
                        render_kw={"autocomplete": "username", "inputmode": "email"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("Log in"))

    def validate_email(self, field: Any) -> None:
        """An address needs an @; anything else is a typo worth naming."""
        if "@" not in (field.data or ""):
            raise ValidationError(_l("Enter the email address of your account."))


class SecondFactorForm(BaseForm):
    """The authenticator app's code, or a recovery code."""

    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=32)],
                       render_kw={"autocomplete": "one-time-code", "autocapitalize": "off",
                                  "spellcheck": "false"})
    submit = SubmitField(_l("Verify"))

    def validate_code(self, field: Any) -> None:
        """Six digits, or a recovery code of ten letters and digits."""
        compact = "".join(ch for ch in (field.data or "") if ch.isalnum())
        if not ((compact.isdigit() and len(compact) == 6) or len(compact) == 10):
            raise ValidationError(_l("Enter the 6-digit code or a 10-character recovery code."))


class EnrolForm(BaseForm):
    """The first code from a newly set-up authenticator app."""

    code = StringField(_l("6-digit code from your authenticator app"),
                       validators=[DataRequired(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("Turn on two-step log-in"))

    def validate_code(self, field: Any) -> None:
        """Exactly six digits."""
        compact = "".join((field.data or "").split())
        if not (compact.isdigit() and len(compact) == 6):
            raise ValidationError(_l("Enter the 6 digits the app shows."))


class NoteForm(BaseForm):
    """A note that goes with an action (acknowledging a crisis, a referral status)."""

    note = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=NOTE_MAX)])
    submit = SubmitField(_l("Save"))

    def validate_note(self, field: Any) -> None:
        """A note of blanks says nothing."""
        if not (field.data or "").strip():
            raise ValidationError(_l("Write a short note of what was done."))


class SetPasswordForm(BaseForm):
    """A new password, typed twice (from an invitation or reset link)."""

    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("New password again"), validators=[DataRequired()],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Set password"))

    def validate_password(self, field: Any) -> None:
        """At least ten characters."""
        from ..services.users import MIN_PASSWORD

        if len(field.data or "") < MIN_PASSWORD:
            raise ValidationError(_l("Use at least %(n)d characters.", n=MIN_PASSWORD))

    def validate_confirm(self, field: Any) -> None:
        """Both entries must match."""
        if field.data != self.password.data:
            raise ValidationError(_l("The two passwords differ."))


class MultiCheckboxField(SelectMultipleField):  # type: ignore[misc]
    """Checkboxes for a multiple choice (a <select multiple> is hard to use by keyboard)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _seconds(label: Any) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(min=1, max=86400)],
                        render_kw={"inputmode": "numeric"})


class SettingsForm(BaseForm):
    """A site's own settings; a blank field follows the server's default."""

    enabled_instruments = MultiCheckboxField(_l("Instruments offered at the kiosks"),
                                             choices=[])
    branding_name = StringField(_l("Name shown on kiosks and pages"),
                                validators=[Optional(), Length(max=80)])
    branding_color = StringField(_l("Accent colour (#rrggbb)"),
                                 validators=[Optional(), Length(max=7)])
    timezone = StringField(_l("Timezone"), validators=[DataRequired(), Length(max=64)])
    idle_seconds = _seconds(_l("Kiosk idle timeout (seconds)"))
    idle_countdown_seconds = _seconds(_l("Countdown before the kiosk resets (seconds)"))
    session_cap_seconds = _seconds(_l("Longest kiosk session (seconds)"))
    crisis_screen_seconds = _seconds(_l("Crisis screen stays up at least (seconds)"))
    sync_seconds = _seconds(_l("Kiosk sync interval (seconds)"))
    local_crisis_resources = TextAreaField(
        _l("Local crisis resources, one per line: name | phone | web address"),
        validators=[Optional(), Length(max=4000)])
    # Text, not IntegerField: the sites service names what is wrong ("a whole number", "at
    # least 5") in one place for the page and the CLI alike.
    min_cell = StringField(_l("Smallest group shown in reports (people)"),
                           validators=[Optional(), Length(max=12)],
                           render_kw={"inputmode": "numeric"})
    submit = SubmitField(_l("Save settings"))

    def validate_timezone(self, field: Any) -> None:
        """An IANA name such as America/New_York (sites.is_site_zone)."""
        if not is_site_zone((field.data or "").strip()):
            raise ValidationError(_l("Unknown timezone; use a name like America/New_York."))

    def validate_branding_color(self, field: Any) -> None:
        """Six hex digits after #."""
        import re

        value = (field.data or "").strip()
        if value and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValidationError(_l("Use the form #0b5fa5."))

    def validate_local_crisis_resources(self, field: Any) -> None:
        """Each line: a name, then a phone number and/or a web address."""
        for number, line in enumerate((field.data or "").splitlines(), start=1):
            if line.strip() and len([p for p in line.split("|") if p.strip()]) < 2:
                raise ValidationError(_l("Line %(n)d: give a name and a phone number or web "
                                         "address, separated by |.", n=number))

    def resources(self) -> list[dict[str, str]]:
        """The resources typed, as dicts (checked further by the sites service)."""
        out = []
        for line in (self.local_crisis_resources.data or "").splitlines():
            parts = [p.strip() for p in line.split("|")]
            if not any(parts):
                continue
            label, rest = parts[0], parts[1:]
            phone = next((p for p in rest if p and not p.startswith("http")), "")
            url = next((p for p in rest if p.startswith("http")), "")
            out.append({"label": label, "phone": phone, "url": url})
        return out


# What an admin may invite; never "operator", which only the command line grants.
ROLE_CHOICES = [SelectChoice("coordinator", _l("Coordinator")),
                SelectChoice("advocate", _l("Advocate")), SelectChoice("admin", _l("Admin")),
                SelectChoice("employer", _l("Employer (reports only)"))]


class InviteForm(BaseForm):
    """A new staff account; the admin is shown a one-time link to hand over."""

    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    advocate = SelectField(_l("Advocate record (advocates only)"), choices=[],
                           validate_choice=False)
    submit = SubmitField(_l("Invite"))

    def validate_email(self, field: Any) -> None:
        """An address with an @."""
        if "@" not in (field.data or ""):
            raise ValidationError(_l("Enter an email address."))

    def validate_advocate(self, field: Any) -> None:
        """An advocate account is tied to the advocate it acts as."""
        if self.role.data == "advocate" and not field.data:
            raise ValidationError(_l("Choose which advocate this account is."))


class RosterForm(BaseForm):
    """A roster CSV to import for the site's employer."""

    file = FileField(_l("Roster CSV file"), validators=[FileRequired()])
    partial = BooleanField(_l("Import the good rows even if some rows are bad"))
    dry_run = BooleanField(_l("Only check the file; import nothing"))
    submit = SubmitField(_l("Upload"))

    def validate_file(self, field: Any) -> None:
        """A .csv file, or the .txt (.tsv) that Excel's "Unicode Text" saves (roster_file)."""
        name = getattr(field.data, "filename", "") or ""
        if not name.lower().endswith((".csv", ".txt", ".tsv")):
            raise ValidationError(_l("Choose a .csv file."))


class PairForm(BaseForm):
    """A new kiosk: its name and where it stands."""

    label = StringField(_l("Kiosk name"), validators=[DataRequired(), Length(max=64)],
                        default="kiosk")
    place = StringField(_l("Where it stands"), validators=[Optional(), Length(max=120)])
    submit = SubmitField(_l("Make a pairing code"))


class StatusForm(BaseForm):
    """A referral's next status, with a note of what was done."""

    status = RadioField(_l("New status"), choices=[
        SelectChoice("acknowledged", _l("Acknowledged")),
        SelectChoice("contacted", _l("Contacted")), SelectChoice("closed", _l("Closed"))],
        validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=NOTE_MAX)])
    submit = SubmitField(_l("Save"))

    def validate_note(self, field: Any) -> None:
        """A note of blanks says nothing."""
        if not (field.data or "").strip():
            raise ValidationError(_l("Write a short note of what was done."))


class ActionForm(BaseForm):
    """A button that changes something (disable, revoke, retry): only the CSRF token."""

    submit = SubmitField(_l("Confirm"))


# --- events (dashboard/events.py) ----------------------------------------------------

KIND_LABELS = {"biometric_screening": _l("Biometric screening"), "flu_shot": _l("Flu shot"),
               "coaching": _l("Coaching"), "other": _l("Other")}
KIND_CHOICES = [SelectChoice(value, label) for value, label in KIND_LABELS.items()]


class EventForm(BaseForm):
    """An event's title in both languages, its service and its place."""

    title = StringField(_l("Title (English)"),
                        validators=[DataRequired(), Length(max=TITLE_MAX)])
    title_es = StringField(_l("Title (Spanish)"),
                           validators=[Optional(), Length(max=TITLE_MAX)])
    kind = SelectField(_l("Service"), choices=KIND_CHOICES, default="other")
    location = StringField(_l("Place"), validators=[Optional(), Length(max=TITLE_MAX)])
    description = TextAreaField(_l("Description (English)"),
                                validators=[Optional(), Length(max=2000)])
    description_es = TextAreaField(_l("Description (Spanish)"),
                                   validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Save event"))

    def validate_title(self, field: Any) -> None:
        """A title of blanks names nothing."""
        if not (field.data or "").strip():
            raise ValidationError(_l("Give the event a title."))

    def data_input(self) -> EventInput:
        """The form's values as the service's input."""
        return EventInput(title=self.title.data or "", kind=self.kind.data or "other",
                              title_es=self.title_es.data, location=self.location.data,
                              description=self.description.data,
                              description_es=self.description_es.data)


class SlotsForm(BaseForm):
    """A run of slots: a day, from and to, one every N minutes, seats in each."""

    day = DateField(_l("Day"), validators=[DataRequired()])
    start = TimeField(_l("From"), validators=[DataRequired()])
    end = TimeField(_l("To"), validators=[DataRequired()])
    every = IntegerField(_l("Every (minutes)"), default=15,
                         validators=[DataRequired(), NumberRange(min=5, max=480)])
    capacity = IntegerField(_l("Seats in each slot"), default=2,
                            validators=[DataRequired(), NumberRange(min=1, max=MAX_CAPACITY)])
    submit = SubmitField(_l("Add slots"))

    def validate_end(self, field: Any) -> None:
        """The run must end after it starts."""
        if field.data and self.start.data and field.data <= self.start.data:
            raise ValidationError(_l("Choose an end after the start. For a night past midnight, "
                                     "add the hours after midnight as slots on the next day."))


class CapacityForm(BaseForm):
    """A slot's new seat count."""

    capacity = IntegerField(_l("Seats"), validators=[
        NumberRange(min=0, max=MAX_CAPACITY)])
    submit = SubmitField(_l("Change"))


class ConfirmForm(BaseForm):
    """A deliberate yes (the CSRF token is all it carries)."""

    submit = SubmitField(_l("Yes, cancel and notify them"))


class PromoteForm(BaseForm):
    """Promote from a slot's waitlist: the first in line, or the booking named."""

    booking_id = HiddenField()
    submit = SubmitField(_l("Promote"))


# --- the check-in desk (dashboard/checkin.py) -----------------------------------------

# The longest text a scan may carry (a ticket URL is about 300 characters).
TICKET_MAX_LENGTH = 2000


class ScanForm(BaseForm):
    """What the scanner typed (a ticket URL or its code); the scan itself reads the field
    directly (dashboard/checkin.checkin_scan)."""

    ticket = StringField(_l("Scan or type the ticket code"),
                         validators=[Length(max=TICKET_MAX_LENGTH)],
                         render_kw={"autocomplete": "off", "autocapitalize": "off",
                                    "spellcheck": "false", "autofocus": True})
    submit = SubmitField(_l("Check in"))


class ConfirmNoShowsForm(BaseForm):
    """Yes to "mark no-shows" (the slot, when one, travels in the page's own hidden field)."""

    submit = SubmitField(_l("Yes, mark them as no-shows"))


class RevokeForm(BaseForm):
    """Yes to revoking a kiosk."""

    submit = SubmitField(_l("Yes, revoke this kiosk"))


class UndoCheckInForm(BaseForm):
    """Take back a check-in: the reason is required (it is audited)."""

    reason = StringField(_l("Reason for undoing the check-in"), validators=[Length(max=500)])
    next = HiddenField()
    submit = SubmitField(_l("Undo check-in"))


class WalkInForm(BaseForm):
    """A walk-in: a roster member found by search, or a new one typed in, and a slot."""

    member_id = HiddenField()
    employee_id = StringField(_l("Employee id"), validators=[Optional(), Length(max=64)])
    first_name = StringField(_l("First name"), validators=[Optional(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Optional(), Length(max=100)])
    birth_date = DateField(_l("Birth date"), validators=[Optional()])
    slot_id = SelectField(_l("Slot"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Seat the walk-in"))

    def validate_employee_id(self, field: Any) -> None:
        """A new walk-in needs their employee id, names and birth date."""
        if self.member_id.data:
            return
        missing = [f for f in (field, self.first_name, self.last_name, self.birth_date)
                   if not f.data]
        if missing:
            raise ValidationError(_l("For someone not found by search, fill in employee id, "
                                     "names and birth date."))


class SlotActionForm(BaseForm):
    """A desk button that posts (CSRF token only), with an optional slot."""

    slot_id = HiddenField()


# --- employer reports (dashboard/reports.py) ------------------------------------------

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(field: Any) -> None:
    if not _MONTH.match((field.data or "").strip()):
        raise ValidationError(_l("Enter a month as YYYY-MM, for example 2026-03."))


class ReportForm(BaseForm):
    """The report's period, whole months. A GET form: it changes nothing, so no CSRF token."""

    start = StringField(_l("From month"), validators=[DataRequired()],
                        render_kw={"type": "month", "placeholder": "YYYY-MM"})
    end = StringField(_l("To month (included)"), validators=[DataRequired()],
                      render_kw={"type": "month", "placeholder": "YYYY-MM"})
    # An employer's sites (the view fills the choices; staff see only their own site).
    site = SelectField(_l("Site"), choices=[], validate_choice=False)
    submit = SubmitField(_l("Show report"))

    def validate_start(self, field: Any) -> None:
        """A month as YYYY-MM."""
        _month(field)

    def validate_end(self, field: Any) -> None:
        """A month as YYYY-MM."""
        _month(field)


__all__ = ["KIND_CHOICES", "KIND_LABELS", "ActionForm", "BaseForm", "CapacityForm",
           "ConfirmForm", "EnrolForm", "EventForm", "InviteForm", "LoginForm", "NoteForm",
           "PairForm", "PromoteForm", "ReportForm", "RosterForm", "ScanForm", "SecondFactorForm",
           "SetPasswordForm", "SettingsForm", "SlotActionForm", "SlotsForm", "StatusForm",
           "WalkInForm"]
