"""The dependency rule of design.md, read from the source: what each layer may import, and no
import cycle anywhere in `shared/` (function-level imports count: hiding a cycle inside a function
does not remove it)."""

from __future__ import annotations

import ast
import graphlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every module the file imports, wherever the import statement is: `from a import b` is
    module `a.b` when that is a module, else `a`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import"
            base = node.module or ""
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("functions").rglob("*.py"),
             ROOT / "function_app.py"]
    modules = {_module(f): f for f in files}
    return {name: _imports(path, set(modules)) for name, path in modules.items()}


GRAPH = _graph()
STDLIB = sys.stdlib_module_names
PURE = {"croniter"}
"""Libraries the domain may use besides the standard library: computation only, no I/O (cron
expressions are not the domain's to parse by hand)."""


def _top(name: str) -> str:
    return name.split(".")[0]


def _own(name: str) -> bool:
    return name in GRAPH


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("shared.domain")))
def test_the_domain_imports_only_the_standard_library_and_itself(module: str) -> None:
    foreign = {i for i in GRAPH[module] if not (_top(i) in STDLIB or i.startswith("shared.domain")
                                                 or i == "__future__" or _top(i) in PURE)}
    assert not foreign, f"{module} imports {sorted(foreign)}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("shared.services")))
def test_services_reach_the_outside_only_through_ports(module: str) -> None:
    bad = {i for i in GRAPH[module] if i.startswith(("shared.adapters", "shared.bootstrap", "functions", "azure"))}
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("shared")))
def test_only_functions_import_azure_functions_and_only_adapters_azure_sdks(module: str) -> None:
    azure = {i for i in GRAPH[module] if _top(i) == "azure"}
    if not module.startswith("shared.adapters"):
        assert not azure, f"{module} imports {sorted(azure)}"
    assert not {i for i in azure if i.startswith("azure.functions")}, module


def test_shared_has_no_import_cycle() -> None:
    graph = {module: {_owner(i) for i in imported if _owner(i).startswith("shared")} - {module}
             for module, imported in GRAPH.items() if module.startswith("shared")}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def _owner(name: str) -> str:
    """`shared.services.outbox` for `shared.services.outbox.flush`; the package for a package."""
    while name and not _own(name):
        name = name.rpartition(".")[0]
    return name


def test_the_built_in_kinds_fallback_list_is_what_pyproject_declares() -> None:
    """The deployed app has no installed `slipway` package (no entry points of its own): the registry then
    registers the built-ins from its own list, which must say what pyproject.toml declares."""
    import tomllib

    from shared.plugins import BUILTIN_SIGNALS, BUILTIN_STEPS

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]
    for group, table in (("slipway.steps", BUILTIN_STEPS), ("slipway.signals", BUILTIN_SIGNALS)):
        assert {name: value.rsplit(":", 1)[1] for name, value in declared[group].items()
                if value.startswith("shared.plugin_builtins:")} == table, group
