"""An SMTP sink for the local stack, with a page listing the mails it caught (links clickable).

Nothing leaves the machine: approval mails sent to the sink are shown at its page instead.
"""

from __future__ import annotations

import html
import re
import socket
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailSink:
    def __init__(self, smtp_port: int = 0, page_port: int = 0) -> None:
        # aiosmtpd's Controller cannot take port 0: pick a free one first
        self.smtp_port = smtp_port or free_port()
        self.page_port = page_port
        self.messages: list[dict[str, Any]] = []
        self._controller: Controller | None = None
        self._page: ThreadingHTTPServer | None = None

    def start(self) -> MailSink:
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
                message = message_from_bytes(envelope.content, policy=policy.default)
                text = message.get_body(preferencelist=("plain",))
                sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                      "subject": str(message["Subject"]),
                                      "text": text.get_content() if text is not None else ""})
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        self._controller.start()

        class Page(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                data = sink.page().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._page = ThreadingHTTPServer(("127.0.0.1", self.page_port), Page)
        self._page.daemon_threads = True
        self.page_port = self._page.server_address[1]
        threading.Thread(target=self._page.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.page_port}/"

    def page(self) -> str:
        def linked(text: str) -> str:
            return re.sub(r"(https?://\S+)", r"<a href='\1'>\1</a>", html.escape(text))

        items = "".join(f"<li><b>{html.escape(m['subject'])}</b> to {html.escape(', '.join(m['to']))}"
                        f"<pre>{linked(m['text'])}</pre></li>" for m in reversed(self.messages))
        return (f"<!doctype html><meta charset='utf-8'><title>Mail caught by the local stack</title>"
                f"<h1>Mail caught by the local stack ({len(self.messages)})</h1><ul>{items}</ul>")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._page is not None:
            self._page.shutdown()
            self._page.server_close()
            self._page = None
