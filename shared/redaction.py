"""One place that takes secrets out of text bound for logs: function keys (`code=`), SAS signatures
(`sig=`), approval-link tokens, bearer tokens and account keys. The app's error handler, the
log handlers the app installs and the local host all use it."""

from __future__ import annotations

import logging
import re

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


def redact(text: str) -> str:
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
    """Put the filter on a logger's handlers (the root's by default), once each."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
