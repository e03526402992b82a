"""Step kinds and gate signals, built-in and third-party alike, from Python entry points.

A distribution declares entry points in the groups `slipway.steps` and `slipway.signals`; each names a
`StepKind` or a `SignalKind` (Slipway declares its own built-ins the same way in pyproject.toml, so there
is no second path). The entry point's name is the type users write. Each group is loaded once, on first
use; a plugin that fails to load is logged and remembered (`failures`) so that health shows it and a
definition that uses its type is refused with the reason.

A kind may name its model, handler, stopper or reader as "module:attribute" text, resolved on first use:
the built-ins do, because their models live in the module that builds the unions from this registry.
This module imports nothing of Slipway's own, so every layer may read it.
"""

from __future__ import annotations

import importlib
import logging
import threading
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

logger = logging.getLogger(__name__)

STEPS = "slipway.steps"
SIGNALS = "slipway.signals"
PLUGIN_SECONDS = 30.0
"""A plugin's default time budget per call: well under the step lease, so a hung plugin fails its step
while the run is still claimed."""


@dataclass(frozen=True)
class StepKind:
    """A step type: its pydantic model (deriving shared.schemas.step_base.StepBase, `type: Literal[...]`;
    None: a step only the engine adds, like swap-back), its handler `(deps, ctx) -> Outcome` (None: the
    engine runs it, as a manual intervention), and the stopper `(deps, ctx) -> str` of a step that starts
    a run on another engine."""

    model: Any
    handler: Any = None
    stopper: Any = None
    type: str = ""
    """The type users write; read from the model's `type` literal when empty."""
    timeout_seconds: float = PLUGIN_SECONDS
    """A plugin handler's budget per call (built-ins are not timed)."""


@dataclass(frozen=True)
class SignalKind:
    """A gate signal type: its pydantic model (`type: Literal[...]`, `name`) and a reader
    `(signal: dict, resource_id: str, now) -> Reading` (None: read by the Azure Monitor signals port)."""

    model: Any
    reader: Any = None
    type: str = ""
    timeout_seconds: float = PLUGIN_SECONDS


@dataclass(frozen=True)
class Failure:
    group: str
    name: str
    value: str
    reason: str


@dataclass(frozen=True)
class Loaded:
    name: str
    value: str
    kind: Any
    builtin: bool


BUILTIN_STEPS = {
    "deploy-package": "DEPLOY_PACKAGE", "http-check": "HTTP_CHECK", "wait": "WAIT", "swap": "SWAP",
    "start-swap": "START_SWAP", "complete-swap": "COMPLETE_SWAP", "cancel-swap": "CANCEL_SWAP", "restart": "RESTART",
    "set-app-settings": "SET_APP_SETTINGS", "swap-back": "SWAP_BACK", "manual-intervention": "MANUAL_INTERVENTION",
    "http-request": "HTTP_REQUEST", "arm-deployment": "ARM_DEPLOYMENT", "deploy-container": "DEPLOY_CONTAINER",
    "script": "SCRIPT", "run-pipeline": "RUN_PIPELINE",
}
BUILTIN_SIGNALS = {"metric": "METRIC", "logQuery": "LOG_QUERY", "alerts": "ALERTS", "rest": "REST"}
"""Slipway's own entry points (pyproject.toml declares the same): the function app deploys from
requirements.txt without installing the `slipway` distribution, so they are added when absent."""


def _builtin_points(group: str) -> list[EntryPoint]:
    table = BUILTIN_STEPS if group == STEPS else BUILTIN_SIGNALS
    return [EntryPoint(name, f"shared.plugin_builtins:{attr}", group) for name, attr in table.items()]


def _resolve(ref: Any) -> Any:
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


def _model_type(model: Any) -> str:
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{model.__name__} has no `type: Literal[\"...\"]` field")
    return args[0]


class Group:
    """One group's entry points, loaded once."""

    def __init__(self, group: str, points: Iterable[EntryPoint]) -> None:
        self.group = group
        self.kinds: dict[str, Loaded] = {}
        self.failures: list[Failure] = []
        expected = StepKind if group == STEPS else SignalKind
        for point in points:
            try:
                kind = point.load()
                if not isinstance(kind, expected):
                    raise TypeError(f"{point.value} is a {type(kind).__name__}, not a {expected.__name__}")
                name = kind.type or _model_type(_resolve(kind.model))
                if name != point.name:
                    raise ValueError(f"its model's type is '{name}', not the entry point's name '{point.name}'")
                if name in self.kinds:
                    raise ValueError(f"type '{name}' is already registered by {self.kinds[name].value}")
            except Exception as exc:  # any plugin bug: its type is unavailable, Slipway still starts
                reason = f"{type(exc).__name__}: {exc}"
                logger.error("plugin %s '%s' (%s) failed to load: %s", group, point.name, point.value, reason)
                self.failures.append(Failure(group, point.name, point.value, reason))
                continue
            self.kinds[name] = Loaded(name, point.value, kind, point.value.startswith("shared."))

    def models(self) -> list[Any]:
        return [_resolve(k.kind.model) for k in self.kinds.values() if k.kind.model is not None]

    def failure(self, name: str) -> Failure | None:
        return next((f for f in self.failures if f.name == name), None)


class Registry:
    """The step and signal kinds of this process. `steps`/`signals` load their group on first use."""

    def __init__(self, steps: Iterable[EntryPoint] | None = None, signals: Iterable[EntryPoint] | None = None) -> None:
        self._points = {STEPS: steps, SIGNALS: signals}
        self._groups: dict[str, Group] = {}
        self._lock = threading.RLock()
        self._loading: set[str] = set()

    def _group(self, group: str) -> Group:
        with self._lock:
            if group not in self._groups:
                if group in self._loading:  # a plugin reads the registry while it is being imported
                    raise RuntimeError(f"the plugin registry was asked for {group} while loading it")
                self._loading.add(group)
                try:
                    given = self._points[group]
                    points = list(given) if given is not None else _installed(group)
                    self._groups[group] = Group(group, points)
                finally:
                    self._loading.discard(group)
            return self._groups[group]

    @property
    def steps(self) -> Group:
        return self._group(STEPS)

    @property
    def signals(self) -> Group:
        return self._group(SIGNALS)

    def step_models(self) -> list[Any]:
        return self.steps.models()

    def signal_models(self) -> list[Any]:
        return self.signals.models()

    def step(self, name: str) -> Loaded | None:
        return self.steps.kinds.get(name)

    def signal(self, name: str) -> Loaded | None:
        return self.signals.kinds.get(name)

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {n: _resolve(k.kind.handler) for n, k in self.steps.kinds.items() if k.kind.handler is not None}

    def stoppers(self) -> dict[str, Callable[..., Any]]:
        return {n: _resolve(k.kind.stopper) for n, k in self.steps.kinds.items() if k.kind.stopper is not None}

    def readers(self) -> dict[str, Callable[..., Any]]:
        return {n: _resolve(k.kind.reader) for n, k in self.signals.kinds.items() if k.kind.reader is not None}

    @property
    def failures(self) -> list[Failure]:
        return [*self.steps.failures, *self.signals.failures]

    def failure(self, name: str) -> Failure | None:
        return self.steps.failure(name) or self.signals.failure(name)


def _installed(group: str) -> list[EntryPoint]:
    points = list(entry_points(group=group))
    if not any(p.value.startswith("shared.") for p in points):
        points = [*_builtin_points(group), *points]
    return points


_current = Registry()


def current() -> Registry:
    return _current


def use(registry: Registry) -> Registry:
    """Make `registry` this process's (tests: a registry with a broken plugin); returns the previous one.
    The definition schema's unions are built once, from the registry of the first import."""
    global _current
    previous, _current = _current, registry
    return previous


_started: threading.Thread | None = None
_start_lock = threading.Lock()


def load_at_start() -> threading.Thread:
    """Load both groups of this process's registry in a daemon thread, once per process, so that a plugin that
    fails to load is logged when the host starts rather than at the first step or save that needs it.

    function_app.py calls this when the host indexes the app (`get_functions()`, which the Python worker runs
    right after importing function_app): importing function_app stays free of every plugin's imports (pydantic,
    tests/unit/test_cold_start.py), indexing does not wait for them, and the first invocation mostly finds the
    registry loaded. Returns the thread (tests join it)."""
    global _started
    with _start_lock:
        if _started is None:
            registry = current()

            def load() -> None:
                failures = registry.failures  # loads both groups; each failure is logged as it happens
                logger.info("plugins loaded: %d step kinds, %d signal kinds, %d failed to load",
                            len(registry.steps.kinds), len(registry.signals.kinds), len(failures))

            _started = threading.Thread(target=load, name="slipway-plugins", daemon=True)
            _started.start()
        return _started


class NoAnswer(Exception):
    """A plugin call that did not return within its budget."""


def call(what: str, seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a thread, waiting at most `seconds`: a plugin that hangs cannot hold the step's
    invocation (or the gate's sample) past its lease. What it raises is raised here."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"plugin:{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise NoAnswer(f"plugin {what} did not answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
