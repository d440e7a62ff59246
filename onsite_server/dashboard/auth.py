"""Dashboard log-in: passwords, the TOTP second factor, session timeouts and role guards.

Sessions are Flask's signed cookie (Secure, HttpOnly, SameSite=Lax) holding the user id, the
id of the session's server-side row (``UserSession``: logging out ends it, so a copy of the
cookie stops working too), the user's ``session_epoch`` (bumped by a password change or reset,
a disable or a new second factor, which ends every session of the user), the log-in time
(12 h absolute) and the last activity (30 min idle). Views marked ``@passive`` (background
refreshes, the session probe) do not count as activity, so a page left polling still times
out.

Failed log-ins are counted on the server, in the audit log (``services.ratelimit``): wrong
passwords and wrong second-factor codes together per account (5 in 15 minutes lock the
account, wherever the attempts come from), and per address over all accounts (a ceiling
against spraying, high enough that staff sharing a clinic's address are not locked out by one
person's mistakes or attempts; and an account that logged in from this browser before is
exempt from it there). Nothing about failures is kept in the cookie, so replaying an
older cookie resets nothing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ..app_settings import current as current_settings
from ..db import get_read_session, get_session
from ..errors import ApiProblem, wants_json
from ..models import User, utcnow
from ..services import audit, ratelimit
from ..services import users as users_service
from ..services.errors import ServiceError
from .forms import EnrolForm, LoginForm, SecondFactorForm, SetPasswordForm
from .i18n import attach_errors

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

# A password that was right waits this long for its second factor before starting over.
PENDING_SECONDS = 300
# Log-in failures (wrong passwords and wrong codes) in the window: per account whatever the
# address (the lock-out), and per address over all accounts (the ceiling against spraying).
# The address limit used to be 10, which let anyone behind a clinic's NAT lock every account
# out; a correct password and code for an account that is not locked now get in until the
# ceiling, which takes 20 accounts' worth of failures.
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 100
FAILURE_WINDOW_SECONDS = 15 * 60
# Accounts that logged in from a browser are remembered in its cookie (OWASP's "device
# cookie"): the address ceiling does not apply to them there. This many are kept.
KNOWN_ACCOUNTS_KEPT = 8
# The page warns this long before the idle timeout, and one tap extends the session.
WARN_SECONDS = 120
# The idle clock ("seen" in the signed cookie) moves at most this often. Writing it on every
# request re-signed and re-sent the cookie with every scan at the door (the check-in desk's
# requests come seconds apart): about a tenth of a scan's CPU. A session may therefore end up
# to this much (and at most a sixtieth of the idle timeout) *earlier* than its idle timeout,
# never later: seen only ever lags activity. "Stay logged in" moves it at once.
SEEN_STEP_SECONDS = 15
# Blueprints that never carry a dashboard session (device tokens or public documents).
SESSIONLESS_BLUEPRINTS = frozenset({"api", "wellknown", "health"})


@dataclass(frozen=True)
class Principal:
    """The logged-in user as plain values: safe to read after a rollback, in error pages."""

    id: int
    email: str
    name: str
    role: str
    site_id: int | None
    advocate_id: int | None

    @property
    def actor(self) -> str:
        """The audit actor string for this user."""
        return audit.user_actor(self.id)


def current_user() -> Principal | None:
    """Return the logged-in user of this request, if any."""
    user: Principal | None = g.get("user")
    return user


def passive(view: F) -> F:
    """Mark a view as background traffic: it does not extend the idle timeout."""
    view.passive = True  # type: ignore[attr-defined]
    return view


def public(view: F) -> F:
    """Mark a dashboard view as open without logging in (the log-in pages themselves)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def role_required(*roles: str) -> Callable[[F], F]:
    """Let only these roles in: a browser goes to the log-in page, a JSON caller gets 403."""
    unknown = set(roles) - set(users_service.ROLES)
    if unknown or not roles:
        raise ValueError(f"role_required: unknown roles {sorted(unknown)}")

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is not None and user.role in roles:
                return view(*args, **kwargs)
            if wants_json():
                raise ApiProblem(403, "Forbidden", "This needs a dashboard log-in with one of "
                                 f"these roles: {', '.join(roles)}.")
            if user is None:
                return redirect(login_url(request.full_path))
            abort(403)

        wrapped.roles = frozenset(roles)  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def safe_next(target: str | None) -> str | None:
    """Return target if it is a path on this server, else None (no open redirects)."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or parts.scheme or parts.netloc or any(ord(c) < 32 for c in target)):
        return None
    return target.rstrip("?") or None


def login_url(next_path: str | None = None) -> str:
    """Return /login, with ?next= when there is somewhere on this server to come back to."""
    target = safe_next(next_path)
    if target in (None, "/"):
        return url_for("auth.login")
    return url_for("auth.login", next=target)


def home_url(role: str) -> str:
    """Return where a role lands after logging in."""
    return url_for("advocate.index") if role == "advocate" else url_for("dashboard.index")


def _limits() -> tuple[int, int]:
    settings = current_settings()
    return settings.dashboard_idle_minutes * 60, settings.dashboard_absolute_hours * 3600


def session_times(now: float | None = None) -> dict[str, int]:
    """Seconds left before the idle and the absolute timeout of the current session."""
    now = time.time() if now is None else now
    idle, absolute = _limits()
    return {"idle_seconds_left": max(0, int(session.get("seen", 0) + idle - now)),
            "absolute_seconds_left": max(0, int(session.get("login_at", 0) + absolute - now)),
            "warn_seconds": WARN_SECONDS}


def _load_user() -> None:
    g.user = None
    if request.blueprint in SESSIONLESS_BLUEPRINTS or request.endpoint in (None, "static"):
        return
    uid = session.get("uid")
    if uid is None:
        return
    now = time.time()
    idle, absolute = _limits()
    if now - float(session.get("login_at", 0)) > absolute or \
            now - float(session.get("seen", 0)) > idle:
        _end_session()
        g.session_expired = True
        return
    found = users_service.live_session_user(get_read_session(), session.get("sid"))
    if found is None or found.user_id != int(uid) or \
            (utcnow() - found.created_at).total_seconds() > absolute:
        # Logged out (here or from a copy of this cookie), or from before session rows.
        _end_session()
        return
    if not found.active or found.session_epoch != session.get("epoch"):
        _end_session()
        return
    g.user = Principal(found.user_id, found.email, found.name, found.role, found.site_id,
                       found.advocate_id)
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "passive", False) and \
            now - float(session.get("seen", 0)) >= min(SEEN_STEP_SECONDS, idle / 60):
        session["seen"] = now


def _end_session() -> None:
    # The language and the accounts known on this browser outlive a log-out.
    kept = {key: session[key] for key in ("lang", "known") if key in session}
    session.clear()
    session.update(kept)


def _account_tag(email: str) -> str:
    # A short hash, not the address: the cookie is signed, not encrypted.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def _known_here(email: str) -> bool:
    """Tell whether this account has logged in from this browser before (its signed cookie)."""
    return _account_tag(email) in (session.get("known") or [])


def start_session(user: User) -> None:
    """Log the user in: a fresh cookie (no fixation), the timers started, the log-in audited."""
    _end_session()
    now = time.time()
    session.permanent = True
    sid = users_service.open_session(get_session(), user,
                                     keep_for=timedelta(seconds=_limits()[1]))
    tag = _account_tag(user.email)
    known = [tag, *[t for t in session.get("known") or [] if t != tag]][:KNOWN_ACCOUNTS_KEPT]
    session.update(uid=user.id, sid=sid, epoch=user.session_epoch, login_at=now, seen=now,
                   known=known)
    user.last_login_at = utcnow()
    audit.record(get_session(), audit.user_actor(user.id), "auth.login",
                 f"user:{user.id}", detail={"address": request.remote_addr})


def _address_actor() -> str:
    return f"address:{request.remote_addr or 'unknown'}"


def _account_actor(email: str) -> str:
    return f"account:{email.strip().lower()}"


def _rate_limited(email: str) -> int:
    """Return seconds to wait when this account, or this address overall, failed too often."""
    db = get_session()
    ratelimit.serialize(db, "dashboard-login")
    by_address = ratelimit.check(db, actor=_address_actor(), action="auth.login_failed",
                                 limit=FAILURES_PER_ADDRESS, window_seconds=FAILURE_WINDOW_SECONDS)
    by_account = ratelimit.check(db, actor=_account_actor(email),
                                 action="auth.login_failed_account", limit=FAILURES_PER_ACCOUNT,
                                 window_seconds=FAILURE_WINDOW_SECONDS)
    if _known_here(email):
        # Someone spraying from a shared address cannot lock out the colleagues who logged in
        # from this browser before; the account's own limit still holds.
        return by_account.retry_after
    return max(by_address.retry_after, by_account.retry_after)


def _record_failure(email: str, user: User | None, reason: str) -> None:
    db = get_session()
    subject = f"user:{user.id}" if user is not None else None
    ratelimit.record(db, actor=_address_actor(), action="auth.login_failed", subject=subject,
                     detail={"reason": reason})
    ratelimit.record(db, actor=_account_actor(email), action="auth.login_failed_account",
                     subject=subject)
    # The account's id, never the typed address: a mistyped password field can hold a password.
    log.warning("dashboard log-in failed (%s) for %s from %s", reason,
                subject or "an unknown account", request.remote_addr)


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """Email and password; then the second factor for admins and advocates."""
    target = safe_next(request.args.get("next"))
    user = current_user()
    if user is not None and request.method == "GET":
        return redirect(target or home_url(user.role))
    form = LoginForm()
    if form.validate_on_submit():
        wait = _rate_limited(form.email.data or "")
        if wait:
            log.warning("dashboard log-in refused: too many failures for the account or from "
                        "%s", request.remote_addr)
            form.password.errors.append(
                _("Too many failed log-ins. Try again in %(minutes)d minutes.",
                  minutes=max(1, (wait + 59) // 60)))
            return render_template("auth/login.html", form=form, next=target), 429
        found = users_service.authenticate(get_session(), form.email.data or "",
                                           form.password.data or "")
        if found is None:
            _record_failure(form.email.data or "",
                            users_service.find_by_email(get_session(), form.email.data or ""),
                            "password")
            form.password.errors.append(_("The email or the password is wrong."))
        elif users_service.needs_second_factor(found):
            _end_session()
            session["pending"] = {"uid": found.id, "epoch": found.session_epoch,
                                  "at": time.time(), "next": target}
            if found.totp_secret is None:
                return redirect(url_for("auth.enrol"))
            return redirect(url_for("auth.second_factor"))
        else:
            start_session(found)
            return redirect(target or home_url(found.role))
    return render_template("auth/login.html", form=form, next=target)


def _pending_user() -> User | None:
    pending = session.get("pending")
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > \
            PENDING_SECONDS:
        session.pop("pending", None)
        return None
    user = get_session().get(User, int(pending["uid"]))
    if user is None or not user.active or user.session_epoch != pending.get("epoch"):
        session.pop("pending", None)
        return None
    return user


def _finish_login(user: User) -> BaseResponse:
    target = safe_next(session.get("pending", {}).get("next"))
    start_session(user)
    return redirect(target or home_url(user.role))


@bp.route("/login/verify", methods=["GET", "POST"])
@public
def second_factor() -> Any:
    """The authenticator app's 6-digit code, or one of the one-time recovery codes."""
    user = _pending_user()
    if user is None:
        flash(_("Please log in again."), "info")
        return redirect(url_for("auth.login"))
    if user.totp_secret is None:
        return redirect(url_for("auth.enrol"))
    # The count is the account's, on the server: a cookie replayed from just after the password
    # step finds the account locked, whatever that cookie remembers.
    if _rate_limited(user.email):
        return _back_to_password()
    form = SecondFactorForm()
    if form.validate_on_submit():
        code = form.code.data or ""
        if users_service.verify_totp(user, code):
            return _finish_login(user)
        if users_service.use_recovery_code(user, code):
            audit.record(get_session(), audit.user_actor(user.id), "auth.recovery_code_used",
                         f"user:{user.id}", detail={"left": len(user.recovery_codes or [])})
            return _finish_login(user)
        _record_failure(user.email, user, "second factor")
        if _rate_limited(user.email):
            return _back_to_password()
        form.code.errors.append(_("That code is not right, or was already used."))
    return render_template("auth/second_factor.html", form=form)


def _back_to_password() -> BaseResponse:
    """Too many failures for this account: forget the password step and start over there."""
    session.pop("pending", None)
    flash(_("Too many wrong codes. Please log in again."), "error")
    return redirect(url_for("auth.login"))


@bp.route("/login/enrol", methods=["GET", "POST"])
@public
def enrol() -> Any:
    """First log-in of an admin or advocate: set up the authenticator app, get recovery codes."""
    user = _pending_user()
    if user is None:
        flash(_("Please log in again."), "info")
        return redirect(url_for("auth.login"))
    if user.totp_secret is not None:
        return redirect(url_for("auth.second_factor"))
    pending = dict(session["pending"])
    secret = pending.get("secret") or users_service.new_totp_secret()
    if pending.get("secret") != secret:
        pending["secret"] = secret
        session["pending"] = pending
    form = EnrolForm()
    if form.validate_on_submit():
        try:
            codes = users_service.enroll_totp(user, secret, form.code.data or "")
        except ServiceError as exc:
            attach_errors(form, exc, default="code")
        else:
            audit.record(get_session(), audit.user_actor(user.id), "auth.second_factor_enrolled",
                         f"user:{user.id}")
            target = safe_next(pending.get("next")) or home_url(user.role)
            start_session(user)
            return render_template("auth/recovery_codes.html", codes=codes, next=target)
    from shared.qr import qr_svg

    uri = users_service.totp_uri(secret, user.email,
                                 current_settings().branding_name)
    return render_template("auth/enrol.html", form=form, secret=secret, uri=uri,
                           qr=qr_svg(uri))


@bp.route("/account/link/<token>", methods=["GET", "POST"])
@public
def account_link(token: str) -> Any:
    """An invitation or reset link: choose a password, then log in (with TOTP set-up)."""
    db = get_session()
    try:
        user, purpose = users_service.link_user(db, token)
    except ServiceError:
        return render_template("auth/link_invalid.html"), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            users_service.redeem_link(db, token, form.password.data or "")
        except ServiceError as exc:
            attach_errors(form, exc, default="password")
        else:
            audit.record(db, audit.user_actor(user.id), f"auth.{purpose}_link_used",
                         f"user:{user.id}")
            _end_session()
            flash(_("Your password is set. Log in with it now."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form, email=user.email,
                           purpose=purpose)


@bp.post("/logout")
@public
def logout() -> BaseResponse:
    """End this browser's session (a POST with the CSRF token: no GET changes anything)."""
    user = current_user()
    if user is not None:
        users_service.end_session(get_session(), session.get("sid"))
        audit.record(get_session(), user.actor, "auth.logout", f"user:{user.id}")
    _end_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/session")
@public
@passive
def session_status() -> Response:
    """Seconds left before the idle and absolute timeouts; does not extend the session."""
    if current_user() is None:
        return jsonify(logged_in=False, login_url=login_url(request.args.get("next")))
    return jsonify(logged_in=True, **session_times())


@bp.post("/session/extend")
@public
def extend_session() -> Response:
    """One tap before the idle timeout: counts as activity (the absolute limit still holds)."""
    if current_user() is None:
        raise ApiProblem(401, "Unauthorized", "The session has ended; log in again.")
    session["seen"] = time.time()  # the tap itself, whatever the step (_load_user)
    return jsonify(logged_in=True, **session_times())


@bp.post("/language")
@public
def set_language() -> BaseResponse:
    """Switch the dashboard between English and Spanish for this browser."""
    from .i18n import LANGUAGES

    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")) or url_for("root"))


def init_app(app: Any) -> None:
    """Register the log-in pages and the per-request session check."""
    app.register_blueprint(bp)
    app.before_request(_load_user)
