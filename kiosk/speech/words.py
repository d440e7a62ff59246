"""What each screen says when its speaker button is tapped: one pure function per screen.

A function gets the visit, the current language's ``_`` (gettext) and ``view``: what the
screen holds of its own (the menu's open list, the booking heading it chose), read by
attribute so that tests pass a plain namespace and reach every screen without a window. It
returns sentences: the screen's question and its answers, or its message, and the buttons
a member may tap. The fixed words are the msgids the screen's kv file shows (a test holds
them to it); what a member typed (an id, a birth date, a number, an address) is never said.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.i18n import N_

from ..visit import CONTACT_METHODS, CONTACT_TIMES, SINGLE_SCREENERS
from .utterance import Utterance, sentences

Gettext = Callable[[str], str]
Words = Callable[[Any, Gettext, Any], list[str]]

# The words before the list of buttons (speech only: the screen shows the buttons).
CHOICES = N_("You can tap:")
# How a number question is answered (speech only: the screen shows the number pad).
TYPE_NUMBER = N_("Type the number, then tap OK.")
# How the email pad is used (speech only: the pad shows its keys).
TYPE_EMAIL = N_("Type your address on the keys, then tap OK.")
# The referral's choices, by the screen's ids (referral.kv).
METHOD_WORDS = {"phone": N_("Phone call"), "text": N_("Text message"), "email": N_("Email")}
TIME_WORDS = {"morning": N_("Morning"), "afternoon": N_("Afternoon"),
              "evening": N_("Evening"), "any": N_("Any time")}


def _v(view: Any, name: str, default: Any = "") -> Any:
    return getattr(view, name, default)


def _choices(_: Gettext, buttons: Sequence[str]) -> list[str]:
    shown = [b for b in buttons if b and b.strip()]
    if not shown:
        return []
    return [_(CHOICES), *sentences(*shown)]


def _message(visit: Any, _: Gettext, view: Any) -> list[str]:
    # The visit's line, as the screens show it (a msgid with its fields).
    return sentences(_(visit.message).format(**visit.message_args) if visit.message else "")


def attract(visit: Any, _: Gettext, view: Any) -> list[str]:
    """Branding, what the check-up is, and Start."""
    return [*sentences(_v(view, "site_name") or _("Onsite Wellness"), _("Wellness check-up"),
                       _("A few minutes. Private. Nothing stays on this screen.")),
            *_choices(_, [_("Start")])]


def privacy(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The whole notice, then the one way on."""
    return [*sentences(
        _("Your privacy"),
        _("What we ask: your mood, stress and drinking, and your blood pressure, height, "
          "weight and diabetes risk. It takes about 5 minutes. You can skip any question or "
          "stop at any time."),
        _("Who sees it: your employer never sees your answers. If you sign in and say yes to "
          "being contacted, your results go to your own health advocate in the central "
          "advocate system, so they can reach you. If not, your answers stay here and are "
          "only counted without your name."),
        _("Your safety: if an answer shows you may be in danger, we tell staff here right "
          "away, and your advocate too if you signed in. Someone will come to help you."),
        _retention(_, _v(view, "retention_days", 0)),
        _("Nothing stays on this kiosk. When you finish, or walk away, the screen is cleared "
          "and your answers leave it."),
        _("Our privacy policy says what goes to your health advocate, when and why. Ask the "
          "staff for a copy.")),
        *_choices(_, [_("I have read this and agree")])]


def _retention(_: Gettext, days: int) -> str:
    # The site's own period, as the notice shows it (privacy.kv); no number when unknown.
    if days:
        return _("How long: the site keeps your answers for {days} days after your advocate "
                 "has them. After that, only counts without names are kept.").format(days=days)
    return _("How long: the site keeps your answers for a set time after your advocate has "
             "them. Staff can tell you how long. After that, only counts without names are "
             "kept.")


def identify(visit: Any, _: Gettext, view: Any) -> list[str]:
    """How to sign in and why the last try did not work; never what was typed."""
    return [*sentences(_("Sign in"), _("Type your employee or badge number, or scan your "
                                       "badge. Then type your date of birth.")),
            *_message(visit, _, view),
            *_choices(_, [_("Sign in"), _("Continue without signing in")])]


def menu(visit: Any, _: Gettext, view: Any) -> list[str]:
    """Who is signed in, and what this member can reach."""
    buttons = []
    if _v(view, "ask_contact", False):
        buttons += [_("Leave a phone number"), _("Leave an email")]
    if _v(view, "picking", False):
        buttons += [visit.instrument_title(iid) for iid in SINGLE_SCREENERS]
    buttons.append(_("Quick check-up (about 5 minutes)"))
    buttons.append(_("Hide the list") if _v(view, "picking", False) else _("Take one screener"))
    if visit.identified:
        buttons += [_("Book an appointment"), _("Connect with my advocate")]
    buttons.append(_("I am finished"))
    return [*sentences(_("What would you like to do?"), _v(view, "signed_in")),
            *_message(visit, _, view), *_choices(_, buttons)]


def question(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The question and its answers (or how to type the number), and the way to skip it."""
    said = sentences(visit.preamble(), _v(view, "question") or visit.question_text())
    said += _message(visit, _, view)
    device = _v(view, "device", None)
    if device:  # a paired cuff or scale takes the reading (the panel's words and buttons)
        said += sentences(*device)
        return said + _choices(_, [*_v(view, "device_buttons", []), _("Prefer not to answer")])
    spec = visit.journey.question_spec()
    if spec.get("type") in ("integer", "decimal"):
        said += sentences(_v(view, "range_text"), _(TYPE_NUMBER))
        return said + _choices(_, [_("Prefer not to answer")])
    answers = [_(text) if isinstance(value, bool) else text for value, text in visit.options()]
    return said + _choices(_, [*answers, _("Prefer not to answer")])


def offer(visit: Any, _: Gettext, view: Any) -> list[str]:
    """Why a few more questions, how many, and yes or no thanks."""
    return [*sentences(_("A few more questions?"), _v(view, "why"), _v(view, "details"),
                       _("It is your choice. Your results so far are saved either way.")),
            *_choices(_, [_("Yes, continue"), _("No thanks")])]


def results(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The crisis first, then each finding in words with its next step."""
    said = sentences(_("Your results"), _("A screening is not a diagnosis. Only a doctor or "
                                          "counselor can diagnose."))
    crisis = visit.crisis_summary()
    if crisis is not None:
        said += sentences(crisis.heading, *crisis.seen, crisis.staff, crisis.lines)
    for finding in visit.findings():
        said += sentences(f"{finding.title}: {finding.level_words}.", finding.said)
        if finding.step:
            said += sentences(f"{visit.next_step_words()} {finding.step}")
    said += sentences(*visit.notices())
    nxt = _("Next") if visit.identified else _("Back to the menu")
    return said + _choices(_, [nxt])


def crisis(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The guidance, 988 and 911, the site's own line, and staff here."""
    said: list[str] = []
    if _v(view, "armed", False):
        said += sentences(_("Close this screen? You can still ask staff for help."))
    for shown in visit.crisis():
        said += sentences(shown["title"], shown["text"],
                          *(res["label"] for res in shown["resources"]))
    local = visit.local_crisis_resources()
    if local:
        said += sentences(_("Help near you"), *local)
    said += sentences(_("Staff on site can help you now. Ask at the front desk."))
    button = _("Yes, close this screen") if _v(view, "armed", False) else _("I have read this")
    return said + _choices(_, [button])


def referral(visit: Any, _: Gettext, view: Any) -> list[str]:
    """How and when the advocate may reach the member, and yes or no."""
    said = sentences(_("Talk with your advocate"),
                     _("One advocate will contact you. They can help with all of your "
                       "results. How should they reach you?"))
    said += sentences(*(_(METHOD_WORDS[m]) for m in CONTACT_METHODS if m in METHOD_WORDS))
    said += sentences(_("When is best?"),
                      *(_(TIME_WORDS[t]) for t in CONTACT_TIMES if t in TIME_WORDS))
    said += _message(visit, _, view)
    if _v(view, "decided", False):
        return said + _choices(_, [_("Next")])
    return said + _choices(_, [_("Yes, contact me"), _("No thanks")])


def booking(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The heading, the message, and the events, times or the yes-or-no on show."""
    said = sentences(_v(view, "heading"))
    said += _message(visit, _, view)
    if _v(view, "offline", False):
        said += sentences(_("Booking needs a connection to the site server, and this kiosk "
                            "is offline right now. Your advocate can contact you to book a "
                            "time."))
        return said + _choices(_, [_("Ask my advocate to contact me")])
    return said + sentences(*_v(view, "entries", [])) + _choices(_, _v(view, "buttons", []))


def qr(visit: Any, _: Gettext, view: Any) -> list[str]:
    """What the codes are for (or that they need the connection)."""
    said = sentences(_("Take it with you"), _v(view, "summary"))
    if _v(view, "offline", False):
        said += sentences(_("The codes need a connection to the site server, and this kiosk "
                            "is offline right now. Your advocate will contact you."))
    else:
        said += sentences(_("Point your phone's camera at a code."), *_v(view, "captions", []))
    return said + _choices(_, [_("I am finished")])


def done(visit: Any, _: Gettext, view: Any) -> list[str]:
    """Thank you, and 988 again after a visit that raised a crisis."""
    return [*sentences(_("Thank you!"),
                       _("Your session is over and this screen has been cleared."),
                       _("Take care of yourself."), visit.crisis_reminder()),
            *_choices(_, [_("Back to the start")])]


def phone_pad(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The phone pad over the referral or the menu (never the digits typed)."""
    return [*sentences(_("Your phone number, with its area code"), _(TYPE_NUMBER)),
            *_choices(_, [_("OK"), _("Cancel")])]


def email_pad(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The email pad over the referral or the menu (never the address typed)."""
    return [*sentences(_("Your email address"), _(TYPE_EMAIL)),
            *_choices(_, [_("OK"), _("Delete"), _("Cancel")])]


def staff(visit: Any, _: Gettext, view: Any) -> list[str]:
    """The admin screens (staff only): the words they show, as the screen lists them."""
    return sentences(*_v(view, "labels", []))


SCREENS: dict[str, Words] = {
    "attract": attract, "privacy": privacy, "identify": identify, "menu": menu,
    "question": question, "offer": offer, "results": results, "crisis": crisis,
    "referral": referral, "booking": booking, "qr": qr, "done": done,
    "admin_pin": staff, "admin": staff, "setup": staff, "admin_devices": staff,
    # A pad open over a screen is read instead of the screen under it.
    "phone_pad": phone_pad, "email_pad": email_pad,
}


def utterance(screen: str, visit: Any, _: Gettext, view: Any = None,
              language: str | None = None) -> Utterance:
    """What the speaker button says on ``screen``: in ``language``, the one ``_`` speaks (the
    admin screens keep the last visit's), by default the visit's."""
    words = SCREENS.get(screen)
    said = words(visit, _, view) if words is not None else []
    return Utterance(language or visit.language, tuple(said))
