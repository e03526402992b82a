"""Fakes at the ports, for service tests: they keep state and let tests look at outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.gates import Reading
from shared.domain.target import Target
from shared.ports import ProbeResult, SlotInfo, TargetError


class FakeAppService:
    """Slots with app settings; `failures` are raised by the next calls, one each."""

    def __init__(self) -> None:
        self.settings: dict[str, dict[str, str]] = {}
        self.failures: list[TargetError] = []
        self.writes = 0
        self.known_slots = ["production", "dev", "test", "qa", "preprod", "staging"]

    def slots(self, site: Target) -> list[str]:
        self._fail()
        return list(self.known_slots)

    def _fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def read_slot(self, target: Target) -> SlotInfo:
        self._fail()
        return SlotInfo(f"https://{target.site}-{target.slot}.example", dict(self.settings.get(target.resource_id, {})))

    def write_app_settings(self, target: Target, settings: dict[str, str]) -> None:
        self._fail()
        self.writes += 1
        self.settings[target.resource_id] = dict(settings)


class FakeProbe:
    def __init__(self) -> None:
        self.answers: dict[str, list[ProbeResult]] = {}

    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        queue = self.answers.get(url) or [ProbeResult(200, "ok")]
        return queue.pop(0) if len(queue) > 1 else queue[0]


class FakePackages:
    def __init__(self) -> None:
        self.blobs: set[str] = set()

    def read_url(self, blob_name: str) -> str:
        return f"https://packages.example/{blob_name}?sig=read"

    def exists(self, blob_name: str) -> bool:
        return blob_name in self.blobs


@dataclass
class FakeClock:
    at: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        self.sent.append({"to": to, "subject": subject, "text": text, "html": html})


class FakeSignals:
    """Gate signals whose readings a test scripts: `script[name]` is a list (one per call; the last
    repeats) or a function of the time. Every call is kept, to count provider calls per sample."""

    def __init__(self) -> None:
        self.script: dict[str, Any] = {}
        self.calls: list[tuple[str, datetime]] = []

    def read(self, signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
        name = signal["name"]
        self.calls.append((name, now))
        found = self.script.get(name)
        if found is None:
            return Reading(name, error="no script")
        if callable(found):
            return found(now)  # type: ignore[no-any-return]
        reading = found.pop(0) if len(found) > 1 else found[0]
        return reading  # type: ignore[no-any-return]
