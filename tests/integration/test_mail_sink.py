"""The SMTP adapter into the local stack's mail sink: subjects with any letters arrive whole, and the sink's
page shows every mail escaped, styled, links clickable."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local.mail_sink import MailSink
from shared.adapters.mailers import SmtpMailer
from shared.config import Settings


@pytest.fixture
def sink() -> Iterator[MailSink]:
    started = MailSink().start()
    yield started
    started.stop()


def test_a_subject_naming_pipeline_release_and_stage_arrives_whole(sink: MailSink) -> None:
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=sink.smtp_port, email_sender="slipway@localhost"))
    subject = "Approval needed: Zürich web / Release-2 \u2192 Production"
    mailer.send(["tim@contoso.com"], subject, "Review: http://127.0.0.1:7071/api/approve/abc", "<p>hi</p>")
    assert [(m["subject"], m["to"]) for m in sink.messages] == [(subject, ["tim@contoso.com"])]


def test_the_page_escapes_what_a_mail_says_and_has_a_style(sink: MailSink) -> None:
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=sink.smtp_port))
    mailer.send(["tim@contoso.com"], "Approval needed: <script>alert(1)</script> / Release-1 \u2192 QA",
                "<img src=x onerror=alert(2)> decide: http://127.0.0.1:7071/api/approve/tok_1", "")
    page = httpx.get(sink.page_url, timeout=10).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<a href='http://127.0.0.1:7071/api/approve/tok_1'>" in page
    assert "<style>" in page and "Mail caught by the local stack (1)" in page and "Release-1 \u2192 QA" in page


def test_an_empty_sink_says_so(sink: MailSink) -> None:
    assert "No mail yet" in httpx.get(sink.page_url, timeout=10).text
