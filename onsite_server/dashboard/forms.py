"""Dashboard forms: FlaskForm classes whose ``validate_<field>`` methods name the bad field.

Every form carries the CSRF token (Flask-WTF); templates render it with
``form.hidden_tag()`` or ``{{ form.csrf_token }}``. Labels are lazy translations.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

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


__all__ = ["BaseForm", "EnrolForm", "LoginForm", "NoteForm", "SecondFactorForm", "SetPasswordForm"]
