"""What the log filter takes out: known secret shapes, and every secret value the process read."""

from __future__ import annotations

import logging

import pytest

from shared import redaction


@pytest.fixture(autouse=True)
def forget() -> None:
    redaction._remembered.clear()
    redaction._longest_first = ()


def test_known_shapes_are_masked() -> None:
    text = "GET https://x/api/a?code=abc123&x=1 Authorization: Bearer eyJ.abc.def AccountKey=Zm9v;"
    assert redaction.redact(text) == "GET https://x/api/a?code=***&x=1 Authorization: Bearer *** AccountKey=***;"


def test_a_secret_value_read_is_masked_wherever_it_appears() -> None:
    webhook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    redaction.remember(webhook)
    redaction.remember("XXXXXXXXXXXXXXXX")  # a secret inside a longer one: the longer goes whole
    assert redaction.redact(f"HTTP Request: POST {webhook} \"HTTP/1.1 200 OK\"") == \
        'HTTP Request: POST *** "HTTP/1.1 200 OK"'
    assert redaction.redact("token XXXXXXXXXXXXXXXX, again XXXXXXXXXXXXXXXX") == "token ***, again ***"


def test_short_values_are_not_remembered_and_the_newest_are_kept() -> None:
    redaction.remember("admin")
    assert redaction.redact("admin logged in") == "admin logged in"
    for n in range(redaction.REMEMBERED + 1):
        redaction.remember(f"secret-{n:04d}")
    assert redaction.redact("secret-0000") == "secret-0000"  # the oldest went
    assert redaction.redact(f"secret-{redaction.REMEMBERED:04d}") == "***"


def test_the_filter_masks_a_record_and_httpx_logs_warnings_only(caplog: pytest.LogCaptureFixture) -> None:
    redaction.remember("Server=db;Password=hunter2-very-secret")
    log = logging.getLogger("test.redaction")
    handler = logging.Handler()
    records: list[logging.LogRecord] = []
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(redaction.RedactingFilter())
    log.addHandler(handler)
    try:
        log.warning("connecting with %s", "Server=db;Password=hunter2-very-secret")
    finally:
        log.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["connecting with ***"]
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    redaction.install(logging.getLogger("test.redaction.install"))
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
