"""One place that takes secrets out of text bound for logs: function keys (`code=`), SAS signatures
(`sig=`), approval-link tokens, bearer tokens and account keys, and every secret value this process
read from Key Vault (whatever shape it has: a webhook URL, a password inside a connection string).
The app's error handler, the log handlers the app installs and the local host all use it."""

from __future__ import annotations

import logging
import re
import threading

HIDDEN = "***"
_PATTERNS = [
    # query parameters that carry a secret: function keys, SAS signatures, tokens
    (re.compile(r"(?i)([?&;](?:code|sig|signature|token|access_token|id_token|client_secret|password|key)=)"
                r"[^&#\s'\"]*"), rf"\1{HIDDEN}"),
    # approval-link tokens in paths
    (re.compile(r"(?i)(/approve/)[^/?#\s'\"]+"), rf"\1{HIDDEN}"),
    # Authorization headers and bearer tokens
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1{HIDDEN}"),
    # storage connection strings and Communication Services keys
    (re.compile(r"(?i)\b(AccountKey=|SharedAccessSignature=|accesskey=)[^;\s'\"]*"), rf"\1{HIDDEN}"),
    # function keys in headers as printed by some tools
    (re.compile(r"(?i)(x-functions-key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"), rf"\1{HIDDEN}"),
]


SHORTEST = 6
"""Shorter values are not remembered: masking every "true" or "admin" in every log line would hide more
than it protects (such a value is not a credential worth the name)."""
REMEMBERED = 512
_remembered: dict[str, None] = {}
_longest_first: tuple[str, ...] = ()
"""The remembered values, longest first (a secret inside a longer one: the longer goes whole), kept sorted when
one is remembered rather than on every log line."""
_lock = threading.Lock()


def remember(value: str) -> None:
    """A secret value this process read (from Key Vault): masked in every log line from now on. The newest
    `REMEMBERED` are kept (a long-running host reads the same few secrets again and again)."""
    global _longest_first
    if len(value) < SHORTEST:
        return
    with _lock:
        known = value in _remembered
        _remembered.pop(value, None)
        _remembered[value] = None
        while len(_remembered) > REMEMBERED:
            del _remembered[next(iter(_remembered))]
        if not known:
            _longest_first = tuple(sorted(_remembered, key=len, reverse=True))


def redact(text: str) -> str:
    for value in _longest_first:  # first: a pattern below would mask only the part of a value it recognises
        if value in text:
            text = text.replace(value, HIDDEN)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts every record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error path
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on a logger's handlers (the root's by default), once each. httpx and httpcore log
    every request's URL at INFO, and a URL can be the secret itself (a Slack or Teams webhook): they
    log warnings only."""
    for chatty in ("httpx", "httpcore"):
        if logging.getLogger(chatty).level < logging.WARNING:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
