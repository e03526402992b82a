"""Everything a service needs, passed in one object. `shared/bootstrap.py` builds the real one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.ports import AppServicePort, Clock, HttpProbePort, LogPort, Mailer, MessageBus, PackagePort


@dataclass
class Deps:
    settings: Settings
    store: Any
    """A `shared.adapters.table_store.TableStore` (or a test double with the same methods)."""
    bus: MessageBus
    clock: Clock
    app_service: AppServicePort
    packages: PackagePort
    logs: LogPort
    probe: HttpProbePort
    mailer: Mailer
