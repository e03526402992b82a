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

PAGE_STYLE = """
body { margin: 0; background: #f4f5f7; color: #1f2328; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
       Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.note, .empty { color: #57606a; margin: 0 0 1rem; }
article { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem 1rem; margin: 0 0 1rem; }
article h2 { font-size: 1.05rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .75rem; margin: 0 0 .5rem; color: #57606a; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f6f8fa; border-radius: 4px; padding: .75rem; margin: 0; white-space: pre-wrap;
      overflow-wrap: anywhere; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
a { color: #0550ae; }
a:focus { outline: 2px solid #0550ae; outline-offset: 2px; }
"""
"""The page's style, inline: the sink serves one page and nothing else."""


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
        """The caught mails, newest first: every value escaped, links clickable, a small readable style."""
        def linked(text: str) -> str:
            return re.sub(r"(https?://\S+)", r"<a href='\1'>\1</a>", html.escape(text))

        items = "".join(
            f"<article><h2>{html.escape(m['subject'])}</h2>"
            f"<dl><dt>To</dt><dd>{html.escape(', '.join(m['to']))}</dd>"
            f"<dt>From</dt><dd>{html.escape(str(m['from']))}</dd></dl>"
            f"<pre>{linked(m['text'])}</pre></article>" for m in reversed(self.messages))
        empty = "" if self.messages else "<p class='empty'>No mail yet. Approval mails appear here.</p>"
        return (f"<!doctype html><html lang='en'><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>Mail caught by the local stack</title><style>{PAGE_STYLE}</style>"
                f"<main><h1>Mail caught by the local stack ({len(self.messages)})</h1>"
                f"<p class='note'>Nothing leaves this machine: mails Slipway sends locally are shown here.</p>"
                f"{empty}{items}</main></html>")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._page is not None:
            self._page.shutdown()
            self._page.server_close()
            self._page = None
