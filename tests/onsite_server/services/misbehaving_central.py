"""A central that misbehaves as real ones do, on a real socket: a small HTTP(S) server in
front of the central emulator that answers each request as a test script says (a status of
its own, the emulator's answer replaced after it committed, a reset, a slow or huge reply, a
redirect), and otherwise passes the request on to the emulator unchanged."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass(frozen=True)
class Reply:
    """An answer of the front's own: ``forward`` first passes the request to the emulator
    (so central commits) and then answers this instead of the emulator's reply."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    forward: bool = False
    delay: float = 0.0  # seconds before the answer (after the emulator's, when forwarded)
    reset: bool = False  # headers and half the body, then a TCP reset
    # The body made from the request's (used instead of ``body`` when given).
    respond: Callable[[bytes], bytes] | None = None


# A rule: (method, path prefix) the request must match, and the reply (None: pass it on).
Rule = tuple[str, str, Reply | None]


@dataclass
class Front:
    """The misbehaving front: its address, what it was asked, and what it will answer."""

    url: str
    upstream: str
    token: str = ""  # the emulator's static token, for its state
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, float]] = field(default_factory=list)  # method, path, when
    lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, method: str, prefix: str, *replies: Reply | None) -> None:
        """Answer the next matching requests with these replies, in order."""
        with self.lock:
            self.rules += [(method, prefix, reply) for reply in replies]

    def always(self, method: str, prefix: str, reply: Reply | None,
               times: int = 1000) -> None:
        """Answer every matching request (up to ``times``) with the reply."""
        self.then(method, prefix, *([reply] * times))

    def clear(self) -> None:
        """Pass everything on from now on."""
        with self.lock:
            self.rules.clear()

    def take(self, method: str, path: str) -> Reply | None:
        """The reply for a request (the first rule that matches, used up)."""
        with self.lock:
            self.seen.append((method, path, time.monotonic()))
            for index, (m, prefix, reply) in enumerate(self.rules):
                if m == method and path.split("?")[0] == prefix:
                    del self.rules[index]
                    return reply
        return None

    def transactions(self) -> int:
        """How many transaction POSTs reached the front."""
        return sum(1 for m, p, _ in self.seen if m == "POST" and p.rstrip("/") == "/fhir")

    def counts(self) -> dict[str, int]:
        """What central (the emulator) holds, by resource type."""
        return dict(requests.get(f"{self.upstream}/_state", timeout=10, headers={
            "Authorization": f"Bearer {self.token}"}).json()["counts"])


def _handler(front: Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = front.take(self.command, self.path)
            if reply is None or reply.forward:
                passed = requests.request(
                    self.command, front.upstream + self.path.removeprefix("/moved"),
                    data=body or None, allow_redirects=False,
                    headers={k: v for k, v in self.headers.items()
                             if k.lower() in ("authorization", "content-type", "accept")},
                    timeout=30)
                if reply is None:
                    reply = Reply(passed.status_code, passed.content,
                                  (("Content-Type", passed.headers.get(
                                      "Content-Type", "application/fhir+json")),))
            if reply.respond is not None:
                reply = replace(reply, body=reply.respond(body))
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.reset:
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self.wfile.flush()
                # SO_LINGER 0: close() sends a RST, as a crashed proxy or a cut line does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            try:
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = _any

    return Handler


@contextmanager
def misbehaving(upstream: str, *, ssl_context: ssl.SSLContext | None = None,
                host: str = "127.0.0.1", token: str = "") -> Iterator[Front]:
    """Serve a front for the emulator at ``upstream``; yield it, then stop it."""
    front = Front(url="", upstream=upstream.rstrip("/"), token=token)
    server = ThreadingHTTPServer((host, 0), _handler(front))
    server.daemon_threads = True
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if ssl_context is not None else "http"
    front.url = f"{scheme}://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
