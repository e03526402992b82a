"""One TLS configuration for every outbound HTTP call a process makes with httpx.

httpx builds a new SSL context, loading the whole CA bundle, for every client it creates, and a
module-level `httpx.get` creates a client per call: about 25 ms of CPU holding the interpreter, on
every probe, gate sample and deployment call, which stalls every other invocation the worker runs
meanwhile. The context is built once, as httpx would build it (certifi's bundle, or SSL_CERT_FILE /
SSL_CERT_DIR when set), and shared: an `ssl.SSLContext` may be used from many threads at once.
"""

from __future__ import annotations

import ssl
import threading

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def context() -> ssl.SSLContext:
    """The process's client TLS context: certificates verified, host names checked."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                import httpx

                _context = httpx.create_ssl_context()
    return _context
