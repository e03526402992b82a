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


class TableLimitsPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Table Storage's limits, which Azurite does not enforce, checked on every request before it is
    sent, so that tests against Azurite fail where Azure would (learn.microsoft.com, "Understanding
    the Table service data model" and "Performing entity group transactions"; azure-notes gotcha 17):

    - a transaction: at most 100 operations and 4 MiB of payload;
    - an entity: at most 1 MiB, sized as the service does (4 bytes, plus the keys in UTF-16, plus per
      property 8 bytes, its name in UTF-16 and its value: a string is 4 bytes plus UTF-16);
    - a string or binary property: at most 64 KiB (a string of 32,768 UTF-16 code units; characters
      outside the BMP take two);
    - at most 255 properties, PartitionKey, RowKey and Timestamp included.

    It raises StorageLimitExceeded with the error code Azure would answer with (400).
    """

    MAX_OPERATIONS = 100
    MAX_BATCH_BYTES = 4 * 1024 * 1024
    MAX_ENTITY_BYTES = 1024 * 1024
    MAX_PROPERTY_BYTES = 64 * 1024
    MAX_PROPERTIES = 255

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        parts = getattr(http, "multipart_mixed_info", None)
        if parts:
            operations = []  # a batch holds one change set, which holds the operations
            for part in parts[0]:
                nested = getattr(part, "multipart_mixed_info", None)
                operations.extend(nested[0] if nested else [part])
            if len(operations) > self.MAX_OPERATIONS:
                _refuse("InvalidInput", f"the transaction has {len(operations)} operations; a change set holds at "
                                        f"most {self.MAX_OPERATIONS}")
            body = http.body or b""
            if len(body) > self.MAX_BATCH_BYTES:
                _refuse("RequestBodyTooLarge", f"the transaction's payload is {len(body)} bytes; at most "
                                               f"{self.MAX_BATCH_BYTES}")
            for operation in operations:
                self._entity(operation.body)
        elif "Edm." in str(http.body or "") or http.headers.get("DataServiceVersion"):
            if http.method in ("POST", "PUT", "PATCH", "MERGE"):
                self._entity(http.body)

    def _entity(self, body: object) -> None:
        import json as _json

        if not body:
            return
        try:
            entity = _json.loads(body)
        except (TypeError, ValueError):
            return
        if not isinstance(entity, dict) or "PartitionKey" not in entity:
            return
        names = [k for k in entity if "@odata" not in k]
        if len(names) + 1 > self.MAX_PROPERTIES:  # Timestamp counts too
            _refuse("TooManyProperties", f"the entity has {len(names) + 1} properties; at most {self.MAX_PROPERTIES}")
        size = 4 + 2 * (_utf16(entity.get("PartitionKey", "")) + _utf16(entity.get("RowKey", "")))
        for name in names:
            if name in ("PartitionKey", "RowKey"):
                continue
            value = entity[name]
            kind = entity.get(f"{name}@odata.type", "")
            if isinstance(value, str) and kind != "Edm.Binary":
                value_bytes = 4 + 2 * _utf16(value)
                if 2 * _utf16(value) > self.MAX_PROPERTY_BYTES:
                    _refuse("PropertyValueTooLarge", f"property '{name}' is {2 * _utf16(value)} bytes in UTF-16; "
                                                     f"at most {self.MAX_PROPERTY_BYTES}")
            elif isinstance(value, str):
                value_bytes = 4 + len(value) * 3 // 4
                if value_bytes - 4 > self.MAX_PROPERTY_BYTES:
                    _refuse("PropertyValueTooLarge",
                            f"binary property '{name}' is over {self.MAX_PROPERTY_BYTES} bytes")
            else:
                value_bytes = 8
            size += 8 + 2 * _utf16(name) + value_bytes
        if size > self.MAX_ENTITY_BYTES:
            _refuse("EntityTooLarge", f"the entity is {size} bytes as Table Storage counts it; at most "
                                      f"{self.MAX_ENTITY_BYTES}")


def _utf16(text: str) -> int:
    """Length in UTF-16 code units: characters outside the Basic Multilingual Plane take two."""
    return len(text.encode("utf-16-le")) // 2


class StorageLimitExceeded(Exception):
    """What Azure would answer with a 400 and `code`. Not an AzureError: nothing in the SDK or in
    Slipway may take it for a retryable or expected failure; the call fails as in Azure."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (Table Storage limit, enforced on Azurite by TableLimitsPolicy)")
        self.error_code = code
        self.status_code = 400


def _refuse(code: str, message: str) -> None:
    raise StorageLimitExceeded(code, message)
