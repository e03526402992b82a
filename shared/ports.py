"""What the services need from the outside world. Adapters implement these; unit tests fake them.

Only `shared/adapters/` talks to Azure SDKs; services see these small interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.gates import Reading
from shared.domain.target import Target


class TargetError(Exception):
    """A call to a deployment target failed.

    `retryable` is True for throttling, 5xx and network errors (try again later, after
    `retry_after` seconds when the service said so); False for errors that will not go away
    by themselves (404 site, 403 forbidden, bad request).
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class LastSwap:
    """The site's `slotSwapStatus`: when the last successful swap completed, and between which slots
    (Microsoft.Web `SlotSwapStatus`: timestampUtc, sourceSlotName, destinationSlotName)."""

    at: datetime
    slots: frozenset[str]


@dataclass(frozen=True)
class SlotInfo:
    """What a slot is now: its public URL and its app settings."""

    url: str
    app_settings: dict[str, str]
    state: str = "Running"
    last_swap: LastSwap | None = None


@dataclass(frozen=True)
class SwapProgress:
    """Where a slot swap stands: done, or still running with the token to look at it again."""

    done: bool
    token: str | None = None


class AppServicePort(Protocol):
    """App Service sites and slots through ARM (azure-mgmt-web). Every call raises TargetError."""

    def slots(self, site: Target) -> list[str]:
        """Names of the site's slots, "production" included."""
        ...

    def swap(self, site: Target, source: str, target: str, *, preserve_vnet: bool = True,
             token: str | None = None) -> SwapProgress:
        """Start a swap of two slots (or look again at the one `token` names); never waits long."""
        ...

    def restart(self, target: Target) -> None: ...

    def sticky_names(self, site: Target) -> list[str]: ...

    def set_sticky_names(self, site: Target, names: list[str]) -> None: ...

    def apply_slot_config(self, site: Target, source: str, target: str = "production") -> None:
        """Swap with preview, phase 1: `source` takes `target`'s slot-sticky settings."""
        ...

    def reset_slot_config(self, site: Target, source: str) -> None:
        """Cancel a swap with preview."""
        ...

    def read_slot(self, target: Target) -> SlotInfo:
        """The slot's URL and current app settings. Raises TargetError."""
        ...

    def write_app_settings(self, target: Target, settings: dict[str, str]) -> None:
        """Replace the slot's app settings with `settings` (ARM replaces them all). Raises TargetError."""
        ...

    def stack(self, target: Target) -> str:
        """The slot's linuxFxVersion (`PYTHON|3.11`), else its site kind (`functionapp`)."""
        ...

    def zip_deploy(self, target: Target, package: str) -> str | None:
        """Push the package file to the slot's deployment endpoint; the URL to follow it at, or None
        when it is done already."""
        ...

    def deployment_status(self, target: Target, url: str) -> tuple[bool, bool, str]:
        """(finished, succeeded, status text) of a zip deployment."""
        ...


@dataclass(frozen=True)
class StoredPackage:
    """Slipway's own copy of a build's package: a blob and its snapshot, which no one can change."""

    name: str
    snapshot: str
    sha256: str
    size: int


class PackagePort(Protocol):
    """Build packages: uploaded by builds, then copied into Slipway's own container when a version
    is registered, digested while copied, and kept as a read-only snapshot."""

    def exists(self, upload: str) -> bool:
        """Is there a blob of that name in the upload container?"""
        ...

    def store(self, upload: str, dest: str) -> StoredPackage:
        """Copy an uploaded package to `dest` in Slipway's container, hashing the bytes it writes."""
        ...

    def fetch(self, url: str, dest: str) -> StoredPackage:
        """Download a package from a URL to `dest` in Slipway's container, hashing what it writes.
        Raises ValueError with the reason when the URL does not give a package."""
        ...

    def digest(self, name: str, snapshot: str) -> str:
        """The sha256 of a stored package's snapshot, computed from its bytes now."""
        ...

    def download(self, name: str, snapshot: str) -> tuple[str, str]:
        """A stored package's snapshot in a local temporary file, and the sha256 of those bytes:
        what a zip deployment then sends is exactly what was checked."""
        ...

    def blob_url(self, name: str, snapshot: str) -> str:
        """The snapshot's URL without a signature, for an app reading it with its managed identity."""
        ...

    def discard(self, name: str) -> None:
        """Delete a stored package (and its snapshots) that lost a race to register."""
        ...


class LogPort(Protocol):
    """Per-step logs as append blobs."""

    def append(self, name: str, lines: list[str], *, new: bool = False) -> None:
        """Append lines to the named log; `new` hints that this is its first write."""
        ...

    def read(self, name: str) -> str | None:
        """The whole log, or None when the step wrote nothing yet."""
        ...


@dataclass(frozen=True)
class ProbeResult:
    status: int | None
    body: str
    error: str | None = None


class HttpProbePort(Protocol):
    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        """GET a URL; network errors come back in `error`, never raised."""
        ...


class SignalPort(Protocol):
    """Health signals for gates: Azure Monitor metrics, log queries, fired alerts, REST probes."""

    def read(self, signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
        """One provider call for one signal; failures come back in the reading, never raised.
        `resource_id` is the stage's slot, for signals that name no resource of their own."""
        ...


class FunctionKeysPort(Protocol):
    """This function app's host keys, for callers that authenticate with a function key."""

    def verify(self, key: str) -> str | None:
        """The name of the host key `key` is (`_master` for the master key), or None."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...


class MessageBus(Protocol):
    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        """Send a message, invisible for `delay_seconds` (a durable timer)."""
        ...


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        """Send one mail; raises on failure (the queue delivers the message again, then poisons it)."""
        ...
