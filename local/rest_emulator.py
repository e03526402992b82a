"""The HTTP plumbing the local REST emulators share: one threaded server on a free port that hands each
request to the emulator's `handle` and writes what it answers.

`handle(method, raw_path, raw_body, headers, base)` returns `(status, body, headers)`: a body of bytes is
sent as it is, None as no bytes, anything else as JSON (`encode`). Status 0 ends the connection without an
answer (a host that does not exist). HEAD answers carry no body; neither do the statuses in
`bodiless_statuses`, which also go without Content-Length. A client that gave up (a `timeout` fault) is
ignored, and `stop()` sets `_stopping`, which releases the requests such a fault holds.
"""

from __future__ import annotations

import json
import ssl
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Fault:
    """A misbehaviour injected for the next `count` requests of a kind (throttle, error, timeout, …)."""

    fault: str
    count: int
    seconds: float | None = None


@dataclass
class Request:
    """What an emulator was asked, for tests to look at."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
"""Status (0: drop the connection without an answer), body (JSON-able, or bytes sent as they are, or None)
and headers."""


class RestEmulator(ABC):
    content_type: ClassVar[str] = "application/json; charset=utf-8"
    """The Content-Type of answers whose headers do not say."""
    protocol_version: ClassVar[str] = "HTTP/1.0"
    """"HTTP/1.1" keeps connections open between requests."""
    scheme: ClassVar[str] = "http"
    """"https" when `tls_context` gives a context."""
    bodiless_statuses: ClassVar[frozenset[int]] = frozenset()
    """Statuses answered without a body or Content-Length (204 and 304, for an emulator that follows RFC 9110)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @abstractmethod
    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        """One request: `base` is the scheme and Host the client used."""

    def encode(self, body: Any) -> bytes:
        """A body that is neither bytes nor None, as sent."""
        return json.dumps(body).encode()

    def tls_context(self) -> ssl.SSLContext | None:
        """The server side of TLS (called by `start`), or None to serve plain HTTP."""
        return None

    # -- lifecycle

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"emulator": self, "protocol_version": self.protocol_version})
        self._stopping.clear()
        context = self.tls_context()
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        if context is not None:
            # The handshake happens in each request's thread (on its first read), not in accept().
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def stop(self) -> None:
        self._stopping.set()  # releases requests held by a `timeout` fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    emulator: ClassVar[RestEmulator]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _go(self) -> None:
        emulator = self.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        base = f"{emulator.scheme}://{self.headers.get('Host')}"
        status, body, headers = emulator.handle(self.command, self.path, raw, dict(self.headers), base)
        if status == 0:  # no such host in Azure: the connection ends without an answer
            self.close_connection = True
            return
        data = body if isinstance(body, bytes) else b"" if body is None else emulator.encode(body)
        bodiless = status in emulator.bodiless_statuses
        try:
            self.send_response(status)
            for key, value in {"Content-Type": emulator.content_type, **headers}.items():
                self.send_header(key, value)
            if not bodiless:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not bodiless and self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):  # the client gave up (a `timeout` fault)
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _go
