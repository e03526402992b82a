"""The real clock, and the local stack's accelerated one. Services take a Clock so that tests can
move time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Starts at `start` and runs `speed` times faster than real time: a week of schedules in
    minutes on the local stack. Never used in Azure (the settings default to the real clock)."""

    def __init__(self, start: datetime | None, speed: int) -> None:
        self.start = start or datetime.now(UTC)
        self.speed = speed
        self._anchor = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._anchor) * self.speed)


class ScaledBus:
    """Delays of messages shrink by the clock's speed, so timers fire on the scaled clock's time."""

    def __init__(self, inner: Any, speed: int) -> None:
        self.inner, self.speed = inner, speed

    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        self.inner.send(queue, body, delay_seconds / self.speed)
