"""A Slipway wired to Azurite, with fakes at the App Service, probe and package ports.

`World.pump` plays the queue trigger: it receives step messages and runs the real handler, and a
time-warping bus turns delayed messages into immediate ones while the fake clock jumps ahead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from local.azurite import Azurite
from local.storage_policies import CountingPolicy, CrashPolicy, TableLimitsPolicy
from shared import bootstrap
from shared.adapters.queue_bus import QueueBus
from shared.adapters.storage_clients import StorageClients
from shared.config import EVENTS_QUEUE, MAIL_QUEUE, QUEUES, STEPS_POISON_QUEUE, STEPS_QUEUE, Settings
from shared.messages import MessageKind
from shared.schemas.release import ReleaseIn
from shared.services import definitions, releases
from shared.services.deps import Deps
from tests.fakes import (
    FakeAppService,
    FakeClock,
    FakeFunctionKeys,
    FakeLogs,
    FakeMailer,
    FakePackages,
    FakeProbe,
    FakeSignals,
    MemoryBus,
)
from tests.memory_store import MemoryStore

SUB = "00000000-0000-0000-0000-0000000000aa"


class TimeWarpBus(QueueBus):
    """Sends delayed messages at once and remembers their delay, for the pump to move the clock."""

    def __init__(self, clients: StorageClients) -> None:
        super().__init__(clients)
        self.delays: dict[str, float] = {}

    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        self.delays[body] = delay_seconds
        super().send(queue, body, 0)


@dataclass
class World:
    deps: Deps
    counter: CountingPolicy
    crash: CrashPolicy
    bus: TimeWarpBus | MemoryBus
    failures: list[tuple[str, str, Exception]] = field(default_factory=list)

    @property
    def clock(self) -> FakeClock:
        return self.deps.clock  # type: ignore[return-value]

    @property
    def app_service(self) -> FakeAppService:
        return self.deps.app_service  # type: ignore[return-value]

    def queue(self, name: str = STEPS_QUEUE) -> Any:
        if isinstance(self.bus, MemoryBus):
            return self.bus.queue(name)
        return self.deps.store.clients.queue(name)  # type: ignore[attr-defined]

    def define(self, stages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """Create a definition, and deliver the message that registers its schedules."""
        body = {"name": "Tailspin", "artifacts": [{"alias": "web", "source": "tailspin-web"}],
                "stages": stages, **extra}
        created = definitions.create(self.deps, body, by="amita")
        self.deliver(EVENTS_QUEUE, only=MessageKind.SCHEDULES)
        return created

    def release(self, definition_id: int, version: str = "1.0.0", **kw: Any) -> Any:
        art = {"alias": "web", "version": version, "package": f"tailspin-web/{version}.zip",
               "sha256": hashlib.sha256(version.encode()).hexdigest()}
        self.deps.packages.blobs.add(art["package"], version.encode())  # type: ignore[attr-defined]
        body = ReleaseIn(definitionId=definition_id, artifacts=[art], description="")
        return releases.create(self.deps, body, by="amita", **kw)[0]

    def receive(self, name: str = STEPS_QUEUE) -> list[Any]:
        return list(self.queue(name).receive_messages(max_messages=32, visibility_timeout=60))

    def pump(self, limit: int = 200) -> int:
        """Run step messages until the queue is empty, then send the mails they caused; returns
        how many steps ran."""
        ran = self.deliver(STEPS_QUEUE, limit)
        self.deliver(MAIL_QUEUE, limit)
        return ran

    def deliver(self, queue: str, limit: int = 200, only: MessageKind | None = None) -> int:
        """Play the queue trigger on `queue` until it is empty (messages of another kind than
        `only` are made visible again, untouched). A reaction that raises leaves its message, as
        the host does, and is counted in `failures`."""
        ran = 0
        while ran < limit:
            batch = [m for m in self.receive(queue) if self._kind_is(queue, m, only)]
            if not batch:
                return ran
            for msg in batch:
                self.clock.advance(self.bus.delays.pop(msg.content, 0.0))
                try:
                    bootstrap.react(self.deps, queue, msg.content, msg.id)
                except Exception as exc:  # noqa: BLE001  (the host logs it and delivers again later)
                    self.failures.append((queue, msg.content, exc))
                    continue
                self.queue(queue).delete_message(msg)
                ran += 1
        raise AssertionError(f"still busy after {limit} messages")

    def _kind_is(self, queue: str, msg: Any, only: MessageKind | None) -> bool:
        if only is None or json.loads(msg.content).get("kind") == only:
            return True
        self.queue(queue).update_message(msg, visibility_timeout=0)
        return False

    def get(self, release_id: int) -> Any:
        return releases.get(self.deps, release_id)


@pytest.fixture
def world(request: pytest.FixtureRequest, unique: str) -> Iterator[World]:
    """Services on the in-memory store and queues; on Azurite for modules marked `azurite` (storage
    faults, operation counts, Table Storage's limits, the real adapters)."""
    if request.node.get_closest_marker("azurite") is None:
        yield memory_world()
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    settings = Settings(storage_connection=azurite.connection_string, table_name=f"T{unique}",
                        packages_container=f"p{unique}", logs_container=f"l{unique}", auth_mode="development",
                        package_store_container=f"s{unique}", website_auth_enabled="true")
    hosts = {f"127.0.0.1:{port}": name for name, port in azurite.ports.items()}
    counter, crash = CountingPolicy(hosts), CrashPolicy()
    deps = bootstrap.build(settings, storage_policies=[counter, crash, TableLimitsPolicy()], clock=FakeClock(),
                           app_service=FakeAppService(), packages=FakePackages(), probe=FakeProbe(),
                           mailer=FakeMailer(), signals=FakeSignals(), function_keys=FakeFunctionKeys())
    clients = deps.store.clients
    deps.bus = bus = TimeWarpBus(clients)
    for name in (*QUEUES, STEPS_POISON_QUEUE):
        q = clients.queue(name)
        try:
            q.create_queue()
        except ResourceExistsError:
            pass
        q.clear_messages()
    yield World(deps, counter, crash, bus)


def memory_world() -> World:
    settings = Settings(auth_mode="development", website_auth_enabled="true")
    bus = MemoryBus()
    deps = bootstrap.build(settings, store=MemoryStore(), bus=bus, logs=FakeLogs(), clock=FakeClock(),
                           app_service=FakeAppService(), packages=FakePackages(), probe=FakeProbe(),
                           mailer=FakeMailer(), signals=FakeSignals(), function_keys=FakeFunctionKeys())
    return World(deps, CountingPolicy({}), CrashPolicy(), bus)


def stage(name: str, trigger: dict[str, Any] | None = None, steps: list[dict[str, Any]] | None = None,
          slot: str | None = None) -> dict[str, Any]:
    return {"name": name, "target": {"subscriptionId": SUB, "resourceGroup": "rg-tailspin", "site": "tailspin",
                                     "slot": slot or name.lower()},
            "trigger": trigger or {"type": "afterRelease"},
            "steps": steps if steps is not None else [{"type": "deploy-package"},
                                                      {"type": "http-check", "path": "/health"}]}


def body(msg: Any) -> dict[str, Any]:
    return json.loads(msg.content)  # type: ignore[no-any-return]
