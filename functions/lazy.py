"""Modules the functions use, loaded on their first use rather than when the host indexes the app.

Importing `function_app` is part of every cold start: the Python worker imports it to learn the functions and
their triggers (learn.microsoft.com/azure/azure-functions/python-scale-performance-reference-guide, "import
modules lazily"; functions-reference-python, "Cold starts"). Only the decorators need to run then. The services,
schemas and adapters (pydantic, jinja2, httpx, the Azure SDKs) load when a function first calls them:
`approvals = lazy("shared.services.approvals")` is a module object whose first attribute read imports the real
module, through the import system's own per-module locks, so concurrent first calls import it once.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module `__name__` until an attribute is read; then it is that module's attribute."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # introspection (copy, pickle, doctest) must not load the module
        value = getattr(importlib.import_module(self.__name__), attr)
        self.__dict__[attr] = value  # the next read is a plain attribute
        return value


_made: list[LazyModule] = []


def lazy(name: str) -> Any:
    """The module `name`, imported on its first attribute read."""
    made = LazyModule(name)
    _made.append(made)
    return made


def load_all() -> int:
    """Import every module a function would load on first use; how many. The local stack does this when its clock
    is accelerated: there a second of first-use imports would look like an hour of the pipeline's time."""
    for made in _made:
        importlib.import_module(made.__name__)
    return len(_made)
