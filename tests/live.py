"""A WSGI app served for real on loopback, in a thread of the test process."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

POLL = 0.02  # seconds between a served loop's looks at its stop flag


@contextmanager
def serve_in_thread(wsgi_app: Any, *, ssl_context: ssl.SSLContext | None = None,
                    threaded: bool = True) -> Iterator[int]:
    """Serve wsgi_app on a free 127.0.0.1 port; yield the port, then stop it."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=threaded, ssl_context=ssl_context)
    # shutdown() waits for the loop to look at its flag, every poll_interval: at the default
    # 0.5 s, a quarter of a second of each test that served something (docs/BENCHMARKS.md,
    # "Session 10: the tests' CPU").
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL},
                              daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
