"""What each step type does: the table from a step's `type` to the function that runs it.

Every function reconciles, then acts, and reports an `Outcome`; see `context.py`. The table is the
plugin registry's (shared/plugins.py): built-in kinds and plugins' are entry points alike.
"""

from __future__ import annotations

from collections.abc import Callable

from shared import plugins
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext

Handler = Callable[[Deps, StepContext], Outcome]
Stopper = Callable[[Deps, StepContext], str]


def handler(kind: str) -> Handler | None:
    """The function that runs a step of this type in the current registry."""
    return plugins.current().handlers().get(kind)


def stopper(kind: str) -> Stopper | None:
    """What stops the engine's run of a step that starts one (`ENGINE_STEPS`), from its state alone."""
    return plugins.current().stoppers().get(kind)


def is_plugin(kind: str) -> bool:
    """A kind another distribution provides: its handler is timed and its answers checked."""
    found = plugins.current().step(kind)
    return found is not None and not found.builtin


def __getattr__(name: str) -> dict[str, Handler] | dict[str, Stopper]:
    """`KINDS` and `STOPPERS`: the current registry's tables, read when asked (a plugin module may import
    the step context, and so this package, while the registry is loading it)."""
    if name == "KINDS":
        return plugins.current().handlers()
    if name == "STOPPERS":
        return plugins.current().stoppers()
    raise AttributeError(name)
