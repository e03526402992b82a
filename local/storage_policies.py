"""azure-core pipeline policies for tests and benchmarks: count storage calls, inject failures.

Added to every storage client through the SDK's public `per_call_policies` option
(`shared.bootstrap.build(storage_policies=...)`); nothing in the SDK is patched.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy


class CountingPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts requests by service (table, queue, blob) and method."""

    def __init__(self, hosts: dict[str, str] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.hosts = hosts or {}
        """Maps `host:port` to a service name (Azurite serves each service on its own port)."""
        self._lock = threading.Lock()

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        host = http.url.split("/")[2]
        with self._lock:
            self.counts[f"{self.hosts.get(host) or _service(host)} {http.method}"] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


class CrashPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Fails the `crash_at`-th request from now (1-based) before it is sent, as a crash would.

    With `match` (a regular expression), only requests whose "METHOD URL" it matches are counted.
    """

    def __init__(self) -> None:
        self.crash_at: int | None = None
        self.match: str | None = None
        self.seen = 0
        self._lock = threading.Lock()

    def arm(self, crash_at: int | None, match: str | None = None) -> None:
        with self._lock:
            self.crash_at, self.match, self.seen = crash_at, match, 0

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        if self.match is not None and not re.search(self.match, f"{http.method} {http.url}"):
            return
        with self._lock:
            self.seen += 1
            if self.crash_at is not None and self.seen == self.crash_at:
                self.crash_at = None
                raise InjectedCrash(f"injected crash before storage call {self.seen}: "
                                    f"{request.http_request.method} {request.http_request.url}")


class InjectedCrash(Exception):
    """Raised by CrashPolicy. Not an AzureError, so no SDK retry policy swallows it: the handler
    stops at that storage call as if the process died there."""


def _service(host: str) -> str:
    for name in ("table", "queue", "blob"):
        if f".{name}." in host:
            return name
    return host
