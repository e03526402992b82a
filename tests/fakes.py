"""Fakes at the ports, for service tests: they keep state and let tests look at outcomes."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.gates import Reading
from shared.domain.target import Target
from shared.ports import MissingUpload, ProbeResult, SlotInfo, StoredPackage, TargetError


class FakeAppService:
    """Slots with app settings; `failures` are raised by the next calls, one each."""

    def __init__(self) -> None:
        self.settings: dict[str, dict[str, str]] = {}
        self.failures: list[TargetError] = []
        self.writes = 0
        self.known_slots = ["production", "dev", "test", "qa", "preprod", "staging"]
        self.stacks: dict[str, str] = {}
        self.content: dict[str, bytes] = {}
        """What zip deployment put on each slot."""
        self.hostings: dict[str, dict[str, str]] = {}
        """Site resource id → what `hosting` answers (a web app on a Standard plan when absent)."""

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

    def stack(self, target: Target) -> str:
        self._fail()
        return self.stacks.get(target.resource_id, "PYTHON|3.11")

    def hosting(self, site: Target) -> dict[str, str]:
        """Not one of the calls `failures` script: tests of other calls keep their order."""
        production = Target(site.subscription_id, site.resource_group, site.site)
        return dict(self.hostings.get(production.resource_id, {"kind": "app,linux", "sku": "Standard"}))

    def zip_deploy(self, target: Target, package: str) -> str | None:
        """The package is the slot's content at once (the emulator's tests cover the asynchronous path)."""
        self._fail()
        with open(package, "rb") as f:
            self.content[target.resource_id] = f.read()
        return None

    def deployment_status(self, target: Target, url: str) -> tuple[bool, bool, str]:
        self._fail()
        return True, True, ""

    def set_container(self, target: Target, image: str) -> None:
        """The slot's linuxFxVersion becomes `DOCKER|{image}` (what `stack` then answers)."""
        self._fail()
        self.writes += 1
        self.stacks[target.resource_id] = f"DOCKER|{image}"

    def container(self, target: Target) -> str | None:
        self._fail()
        fx = self.stacks.get(target.resource_id, "")
        return fx[len("DOCKER|"):] if fx.upper().startswith("DOCKER|") else None


class FakeProbe:
    def __init__(self) -> None:
        self.answers: dict[str, list[ProbeResult]] = {}
        self.requests: list[dict[str, Any]] = []

    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        queue = self.answers.get(url) or [ProbeResult(200, "ok")]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout_seconds: float) -> ProbeResult:
        self.requests.append({"method": method, "url": url, "headers": dict(headers), "body": body})
        return self.get(url, timeout_seconds)


class Uploads(dict[str, bytes]):
    """The upload container: blob name → bytes."""

    def add(self, name: str, data: bytes | None = None) -> None:
        self[name] = data if data is not None else f"package {name}".encode()


class FakePackages:
    """Uploads, Slipway's stored copies (by name and snapshot), and packages at URLs."""

    def __init__(self) -> None:
        self.blobs = Uploads()
        self.stored: dict[tuple[str, str], bytes] = {}
        self.urls: dict[str, bytes] = {}

    def upload(self, name: str, path: str) -> None:
        with open(path, "rb") as data:
            self.blobs[name] = data.read()

    def _keep(self, dest: str, data: bytes) -> StoredPackage:
        snapshot = f"2026-01-01T00:00:{len(self.stored):02d}Z"
        self.stored[(dest, snapshot)] = data
        return StoredPackage(dest, snapshot, hashlib.sha256(data).hexdigest(), len(data))

    def store(self, upload: str, dest: str) -> StoredPackage:
        if upload not in self.blobs:
            raise MissingUpload(upload)
        return self._keep(dest, self.blobs[upload])

    def fetch(self, url: str, dest: str) -> StoredPackage:
        if url not in self.urls:
            raise ValueError("GET answered 404")
        return self._keep(dest, self.urls[url])

    def digest(self, name: str, snapshot: str) -> str:
        return hashlib.sha256(self.stored[(name, snapshot)]).hexdigest()

    def blob_url(self, name: str, snapshot: str) -> str:
        return f"https://packages.example/{name}?snapshot={snapshot}"

    def download(self, name: str, snapshot: str) -> tuple[str, str]:
        import tempfile

        data = self.stored[(name, snapshot)]
        with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as out:
            out.write(data)
        return out.name, hashlib.sha256(data).hexdigest()

    def discard(self, name: str) -> None:
        for key in [k for k in self.stored if k[0] == name]:
            del self.stored[key]

    def tamper(self, name: str, data: bytes) -> None:
        """What someone with write access to the storage account could do to a stored package."""
        for key in [k for k in self.stored if k[0] == name]:
            self.stored[key] = data


@dataclass
class FakeClock:
    at: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        """Time jumps ahead, as the time-warping bus makes it for a delayed message."""
        self.advance(seconds)


class FakeMailer:
    """Keeps what it sent; refuses addresses in `refused` as a mail service refuses a bad one."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.refused: set[str] = set()

    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        if self.refused & set(to):
            raise RuntimeError(f"550 5.1.1 recipient rejected: {sorted(self.refused & set(to))}")
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


class FakeFunctionKeys:
    """The function app's host keys: name → value."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.keys = dict(keys or {"default": "the-default-function-key"})

    def verify(self, key: str) -> str | None:
        return next((name for name, value in self.keys.items() if value == key), None)


class FakeLogs:
    """Step logs as an earlier version left them in blobs: a test puts them in `logs`."""

    def __init__(self) -> None:
        self.logs: dict[str, str] = {}

    def read(self, name: str) -> str | None:
        return self.logs.get(name)

    def delete(self, name: str) -> None:
        self.logs.pop(name, None)


@dataclass
class QueuedMessage:
    id: str
    content: str
    dequeue_count: int = 0
    pop_receipt: str = ""


class MemoryQueue:
    """The part of a storage queue client the service tests use: a message received is invisible
    until it is deleted or made visible again (a failed delivery stays away, as for the visibility
    timeout of a real queue within a test)."""

    def __init__(self) -> None:
        self.visible: list[QueuedMessage] = []
        self.invisible: dict[str, QueuedMessage] = {}
        self._ids = itertools.count(1)

    def send(self, body: str) -> None:
        self.visible.append(QueuedMessage(f"m{next(self._ids)}", body))

    def receive_messages(self, max_messages: int = 32, visibility_timeout: int = 30) -> list[QueuedMessage]:
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        for msg in taken:
            msg.dequeue_count += 1
            self.invisible[msg.id] = msg
        return taken

    def delete_message(self, msg: QueuedMessage) -> None:
        self.invisible.pop(msg.id, None)

    def update_message(self, msg: QueuedMessage, visibility_timeout: int = 0) -> None:
        if self.invisible.pop(msg.id, None) is not None:
            self.visible.append(msg)

    def clear_messages(self) -> None:
        self.visible, self.invisible = [], {}

    def create_queue(self) -> None:
        pass


class MemoryBus:
    """Queues in memory that send at once and remember each message's delay, for the test's pump
    to move the fake clock (as the Azurite world's time-warping bus does)."""

    def __init__(self) -> None:
        self.queues: dict[str, MemoryQueue] = {}
        self.delays: dict[str, float] = {}

    def queue(self, name: str) -> MemoryQueue:
        return self.queues.setdefault(name, MemoryQueue())

    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        self.delays[body] = delay_seconds
        self.queue(queue).send(body)
