"""The real clock, and the local stack's accelerated one. Services take a Clock so that tests can
move time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import Settings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """Starts at `start` and runs `speed` times faster than real time: a week of schedules in
    minutes on the local stack. Never used in Azure (the settings default to the real clock)."""

    def __init__(self, start: datetime | None, speed: int) -> None:
        self.start = start or datetime.now(UTC)
        self.speed = speed
        self._anchor = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._anchor) * self.speed)

    def sleep(self, seconds: float) -> None:
        """`seconds` of this clock's time pass (a `speed`th of them in real time)."""
        time.sleep(max(0.0, seconds) / self.speed)


class ScaledBus:
    """Delays of messages shrink by the clock's speed, so timers fire on the scaled clock's time."""

    def __init__(self, inner: Any, speed: int) -> None:
        self.inner, self.speed = inner, speed

    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        self.inner.send(queue, body, delay_seconds / self.speed)


_clocks: dict[tuple[str, int], ScaledClock] = {}
_lock = threading.Lock()


def clock_for(settings: Settings) -> SystemClock | ScaledClock:
    """The process's one clock for these settings: the local stack's emulators, its host's timers and
    the app all read the same accelerated clock (`SLIPWAY_CLOCK_START`, `SLIPWAY_CLOCK_SPEED`)."""
    if settings.clock_speed == 1 and not settings.clock_start:
        return SystemClock()
    key = (settings.clock_start, max(1, settings.clock_speed))
    with _lock:
        if key not in _clocks:
            start = datetime.fromisoformat(settings.clock_start) if settings.clock_start else None
            _clocks[key] = ScaledClock(start, key[1])
        return _clocks[key]
