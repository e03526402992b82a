"""Function keys checked by the app itself: this function app's host keys, read through ARM.

The API's routes are anonymous to the Functions host so that an Entra token alone is enough (the
host never waives keys for App Service authentication's callers). A key that comes with a request
is compared, in constant time, with the host keys `list_host_keys` returns
(`POST …/sites/{app}/host/default/listkeys`). They are kept for a few minutes; a key not among them
reads them again at most every 30 seconds, so a key created in the portal works at once and a
revoked one stops within the cache time.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable

from shared.domain.target import Target
from shared.ports import TargetError

logger = logging.getLogger(__name__)
KEEP_SECONDS = 300.0
REREAD_SECONDS = 30.0


class FunctionKeys:
    def __init__(self, function_app_id: str, read: Callable[[Target], dict[str, str]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.site = _site(function_app_id)
        self._read = read
        self._clock = clock
        self._keys: dict[str, str] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, key: str) -> str | None:
        if self.site is None or not key:
            return None
        name = self._match(self._current(force=False), key)
        if name is None and self._stale(REREAD_SECONDS):
            name = self._match(self._current(force=True), key)
        return name

    @staticmethod
    def _match(keys: dict[str, str], key: str) -> str | None:
        found = None
        for name, value in keys.items():
            if hmac.compare_digest(value.encode(), key.encode()):
                found = name
        return found

    def _stale(self, age: float) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= age

    def _current(self, *, force: bool) -> dict[str, str]:
        with self._lock:
            if force or self._stale(KEEP_SECONDS):
                assert self.site is not None
                try:
                    self._keys = self._read(self.site)
                except TargetError as exc:
                    logger.warning("could not read this app's host keys: %s", exc)
                self._read_at = self._clock()
            return self._keys


def _site(resource_id: str) -> Target | None:
    parts = resource_id.strip("/").split("/")
    shape = [p.lower() for p in parts[0:7:2]] + [parts[5].lower()] if len(parts) == 8 else []
    if shape != ["subscriptions", "resourcegroups", "providers", "sites", "microsoft.web"]:
        return None
    return Target(parts[1], parts[3], parts[7])
