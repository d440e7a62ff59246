"""An app of the benchmark's own server, in this process, with every SQL statement noted.

The benchmarks' ``--in-process`` runs send requests through Flask's test client to count the
statements and the CPU of each request without HTTP or other processes in the way.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any


def noted_app(env: dict[str, str]) -> tuple[Any, Any, list[str]]:
    """The app for env's ONSITE_ settings, its test client, and the list its SQL lands in.

    Each statement is noted by its first word, and each transaction's BEGIN and COMMIT by the
    engine's own events (SQLite's BEGIN IMMEDIATE would otherwise count twice).
    """
    from sqlalchemy import event

    from onsite_server import create_app
    from onsite_server.db import get_db

    os.environ.update({k: v for k, v in env.items() if k.startswith("ONSITE_")})
    app = create_app()
    engine = get_db(app).engine
    assert engine is not None
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        word = sql.split(None, 1)[0].upper()
        if word != "BEGIN":  # SQLite's BEGIN IMMEDIATE; the begin event counts every one
            statements.append(word)

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "begin", lambda _c: statements.append("BEGIN"))
    event.listen(engine, "commit", lambda _c: statements.append("COMMIT"))
    return app, app.test_client(), statements


class Phases:
    """The server's CPU (thread time) per phase of each request: its hooks, its view, and the
    named service functions the view calls, each timed where the app looks it up.

    ``wrap(module, name)`` times ``module.name`` from then on; ``take()`` returns what the
    last request spent in each phase (inclusive: a phase counts what it calls) and starts
    afresh. The hooks and views are timed per Flask's own lists, so every request is.
    ``clock``: the thread's CPU time by default.
    """

    def __init__(self, app: Any, clock: Callable[[], float] = time.thread_time) -> None:
        self.clock = clock
        self.spent: dict[str, float] = {}
        for where, hooks in (("before", app.before_request_funcs),
                             ("after", app.after_request_funcs)):
            for funcs in hooks.values():
                funcs[:] = [self._timed(f"{where} {f.__name__}", f) for f in funcs]
        app.teardown_appcontext_funcs[:] = [self._timed(f"teardown {f.__name__}", f)
                                            for f in app.teardown_appcontext_funcs]
        interface = app.session_interface
        interface.open_session = self._timed("cookie session opened", interface.open_session)
        interface.save_session = self._timed("cookie session saved", interface.save_session)
        for endpoint, view in list(app.view_functions.items()):
            app.view_functions[endpoint] = self._timed("view", view)
        app.wsgi_app = self._timed("server (wsgi_app)", app.wsgi_app)

    def _timed(self, name: str, func: Any) -> Any:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = self.clock()
            try:
                return func(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + self.clock() - started

        return timed

    def wrap(self, module: Any, name: str, label: str | None = None) -> None:
        """Time ``module.name`` (a function the app looks up there at call time)."""
        setattr(module, name, self._timed(label or f"{module.__name__}.{name}",
                                          getattr(module, name)))

    def take(self) -> dict[str, float]:
        """Return the last request's seconds per phase and start afresh."""
        spent, self.spent = self.spent, {}
        return spent
