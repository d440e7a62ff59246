"""Dashboard fixtures: one account per role, logged-in clients, and a live server driven by
Debian's Chromium through Playwright (with axe-core for accessibility checks).

Reuse them from any dashboard test:
- ``staff``: {"admin"|"coordinator"|"advocate": Staff} at ``site`` (TOTP set for admin and
  advocate); ``auth``: ``auth.login("coordinator")``;
- ``as_admin``, ``as_coordinator``, ``as_advocate``: a logged-in Flask test client each;
- ``live_url``: the app served on a real socket in this process (plain HTTP);
  ``live_https_url``: the same over HTTPS with the server's own self-signed certificate, as
  ``onsite-server serve`` and ``scripts/run.sh`` serve it; ``page``: a Playwright page;
  ``browser_login(page, staff)``; ``axe_violations(page)``; ``screenshot(page, name)``.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from onsite_server.app_settings import override

from ...live import serve_in_thread
from ..conftest import PG_URL, drop_pg_database, fresh_pg_database
from .helpers import ROLES, AuthActions, Staff, gen_staff, totp_code

REPO = Path(__file__).resolve().parents[3]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("ONSITE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# Screenshots land here for people to look at (kept out of git).
SCREENSHOTS = Path(os.environ.get("ONSITE_SCREENSHOTS", REPO / "build" / "screenshots"))


@pytest.fixture
def staff(app: Flask, site: Any) -> dict[str, Staff]:
    """One account per role at ``site``."""
    return {role: gen_staff(app, role, site) for role in ROLES}


@pytest.fixture
def auth(app: Flask, client: FlaskClient, staff: dict[str, Staff]) -> AuthActions:
    """Log the shared test client in and out as any role."""
    return AuthActions(app, client, staff)


def _logged_in(app: Flask, auth: AuthActions, role: str) -> FlaskClient:
    return auth.login(role, app.test_client())


@pytest.fixture
def as_admin(app: Flask, auth: AuthActions) -> FlaskClient:
    """A test client logged in as the site's admin."""
    return _logged_in(app, auth, "admin")


@pytest.fixture
def as_coordinator(app: Flask, auth: AuthActions) -> FlaskClient:
    """A test client logged in as the site's coordinator."""
    return _logged_in(app, auth, "coordinator")


@pytest.fixture
def as_advocate(app: Flask, auth: AuthActions) -> FlaskClient:
    """A test client logged in as the site's advocate."""
    return _logged_in(app, auth, "advocate")


# --- browser ------------------------------------------------------------------------------

@pytest.fixture
def sqlite_only_url(sqlite_folder: Path, sqlite_template: Path) -> str:
    """A SQLite database URL: browser tests override ``database_url`` with it.

    What a page does is covered on both backends by the test-client tests; the browser tests
    check what a person sees and run once, which halves their share of CI's time. One journey
    runs on both (``journey_database_url``).
    """
    return _copy_of(sqlite_template, sqlite_folder)


def _copy_of(sqlite_template: Path, tmp_path: Path) -> str:
    """A copy of the session's migrated SQLite template (see ../conftest.py)."""
    shutil.copyfile(sqlite_template, tmp_path / "onsite.sqlite")
    return f"sqlite:///{tmp_path / 'onsite.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def journey_database_url(request: pytest.FixtureRequest, sqlite_folder: Path) -> Iterator[str]:
    """SQLite, then PostgreSQL when ONSITE_TEST_PG_URL is set (a clean skip otherwise).

    For the one browser journey that also runs on PostgreSQL (``test_events_browser``): the
    live server's threads, its connection pool and the desk's polling meet the real database
    there, at the cost of one browser test's time.
    """
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("ONSITE_TEST_PG_URL is not set: no PostgreSQL for the browser journey")
        url = fresh_pg_database(request.getfixturevalue("pg_template"))
        yield url
        drop_pg_database(url)
        return
    yield _copy_of(request.getfixturevalue("sqlite_template"), sqlite_folder)


def _whole_answers(app: Flask) -> Any:
    """The app as WSGI, each answer read whole and closed before the server sends it.

    When Chromium drops a connection mid-answer (a navigation cancels a script's download),
    Werkzeug's development server can fail while draining the socket and skip closing the
    answer's file; the ResourceWarning then errors (warnings are errors) in whichever test
    runs next. The dashboard streams nothing and its static files are small.
    """
    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    return wsgi


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread; yield http://localhost:PORT."""
    with serve_in_thread(_whole_answers(app)) as port:
        # localhost, not 127.0.0.1: Chromium keeps Secure cookies on http://localhost only.
        yield f"http://localhost:{port}"


@pytest.fixture
def live_tls_cert(app: Flask) -> tuple[Path, Path]:
    """The server's own self-signed (certificate, key), made the way ``onsite-server serve`` does.

    ``serve`` calls ``tls.ensure_self_signed`` on the instance folder and hands the pair to the
    workers as ``ONSITE_TLS_CERT``/``ONSITE_TLS_KEY``; the app's config gets the same here.
    """
    from onsite_server.tls import ensure_self_signed

    cert, key = ensure_self_signed(Path(app.instance_path))
    override(app, TLS_CERT=str(cert), TLS_KEY=str(key))
    return cert, key


@pytest.fixture
def live_https_url(app: Flask, live_tls_cert: tuple[Path, Path]) -> Iterator[str]:
    """Serve the app over TLS with its own certificate; yield https://127.0.0.1:PORT.

    This is how staff reach the dashboard (scripts/run.sh opens https://127.0.0.1:8700/): on
    HTTPS the browser obeys the pages' Referrer-Policy and Flask-WTF's strict CSRF check wants
    a Referer, which plain ``http://localhost`` never shows. Playwright contexts accept the
    self-signed certificate (``ignore_https_errors``) as a person clicks through the warning;
    ``requests`` calls pass ``verify=str(live_tls_cert[0])``.
    """
    import ssl

    cert, key = live_tls_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve_in_thread(_whole_answers(app), ssl_context=context) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh test installs chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)
        yield chromium
        chromium.close()


# axe-core is sent to each browser context once, as an init script that only defines a
# function: every document then holds it, uncompiled until a check calls it, so a page runs no
# axe code before it is checked (as when the checks injected axe with evaluate), and axe enters
# the page outside its CSP, which rightly forbids injected scripts. Sending its 550 kB with
# every check took about 90 ms a check, the check itself 60-300 ms (docs/BENCHMARKS.md,
# "Session 14: the browser tests").
AXE_LOADER = "__onsiteAxe"


@functools.cache
def _axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: scripts/bootstrap.sh test runs npm ci")
    return AXE.read_text(encoding="utf-8")


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context (Playwright's ``new_context`` options) ready for ``axe_violations``.

    The tests' contexts come from here, so that their pages are checked without axe-core
    being sent again.
    """
    context = browser.new_context(**options)
    context.add_init_script(
        f"Object.defineProperty(window, {AXE_LOADER!r}, {{configurable: true, "
        f"value: function () {{\n{_axe_source()}\n}}}});")
    return context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (own cookies), 1280x900.

    The context accepts the server's self-signed certificate (``live_https_url``), as a person
    does once on the browser's warning page; plain ``live_url`` is unaffected.
    """
    context = new_context(browser, viewport={"width": 1280, "height": 900},
                          ignore_https_errors=True)
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


def browser_login(page: Any, base_url: str, staff: Staff) -> None:
    """Log in through the real form (password, then the TOTP code when asked)."""
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if "/login/verify" in page.url:
        assert staff.totp_secret
        for offset in (0, 1):
            page.locator("input[name=code]").fill(totp_code(staff.totp_secret, offset))
            page.get_by_role("button", name="Verify").click()
            page.wait_for_load_state()
            if "/login" not in page.url:
                break
    assert "/login" not in page.url, page.content()[:1000]


# WCAG 2.1 A and AA: the rules every page is checked against.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Runs axe-core on the page (loading it from the context's init script the first time in this
# document); null when the context has no init script (not made by new_context). Only what a
# failure shows leaves the page: the whole result (every rule's passing elements, with their
# HTML) was 60-270 kB a page, and passing it to Python took longer than the check.
# resultTypes only keeps axe from building selectors for passing elements it would throw away;
# it runs the same rules and reports every violating element.
AXE_RUN = f"""async ([exclude, tags]) => {{
  if (!window.axe) {{
    if (typeof window.{AXE_LOADER} !== "function") {{ return null; }}
    window.{AXE_LOADER}();
  }}
  const result = await axe.run({{include: [document], exclude: exclude}},
    {{runOnly: {{type: "tag", values: tags}}, resultTypes: ["violations"]}});
  return result.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map(n => n.target)}}));
}}"""


def axe_violations(page: Any, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Run axe-core (WCAG 2.1 A and AA rules) on the page; return its violations."""
    args = [[[sel] for sel in (exclude or [])], AXE_TAGS]
    violations: list[dict[str, Any]] | None = page.evaluate(AXE_RUN, args)
    if violations is None:
        # A context made without new_context: send axe-core with this check. evaluate() runs
        # outside the page's CSP, which rightly forbids injected scripts.
        page.evaluate(_axe_source())
        violations = page.evaluate(AXE_RUN, args)
    assert violations is not None
    return violations


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots (to look at, not to compare)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def browser_tools() -> dict[str, Any]:
    """The browser helpers as one fixture, for tests in other folders."""
    return {"login": browser_login, "axe": axe_violations, "screenshot": screenshot,
            "chromium_found": shutil.which(CHROMIUM) is not None}
