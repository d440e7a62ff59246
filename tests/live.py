"""A WSGI app served for real on loopback, in a thread of the test process."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def serve_in_thread(wsgi_app: Any, *, ssl_context: ssl.SSLContext | None = None
                    ) -> Iterator[int]:
    """Serve wsgi_app on a free 127.0.0.1 port (threaded); yield the port, then stop it."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
