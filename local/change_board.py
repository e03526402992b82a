"""A stand-in for a team's change-management service, for the six-kind sample pipeline's http-request
step: it takes a change request (answers 202 at once, as a service with a callback does), records it,
and a moment later posts its result to the single-use URL Slipway gave it in `X-Slipway-Callback`."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class ChangeBoard:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 1.0) -> None:
        self.host, self.port, self.delay = host, port, delay
        self.changes: list[dict[str, Any]] = []
        self._numbers = itertools.count(1001)
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> ChangeBoard:
        board = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 65536))
                callback = self.headers.get("X-Slipway-Callback", "")
                try:
                    request = json.loads(raw or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                number = f"CHG-{next(board._numbers)}"
                board.changes.append({"number": number, "request": request,
                                      "key": self.headers.get("Idempotency-Key")})
                body = json.dumps({"change": number, "status": "accepted"}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if callback:
                    threading.Timer(board.delay, board._answer, (callback, number)).start()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _answer(self, callback: str, number: str) -> None:
        try:
            httpx.post(callback, json={"result": "succeeded", "message": f"change {number} recorded and approved",
                                       "outputs": {"change": number}}, timeout=30)
        except httpx.HTTPError:
            logger.exception("change board: the callback for %s failed", number)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
