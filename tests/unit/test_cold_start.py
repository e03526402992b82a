"""Importing `function_app` (every cold start) only indexes the functions: no pydantic, jinja2, httpx or Azure SDK
loads until a function first needs it (functions/lazy.py). Counted in a fresh interpreter, never timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "jinja2", "httpx", "azure.data", "azure.storage", "azure.identity", "azure.mgmt", "croniter",
         "shared.services", "shared.schemas", "shared.adapters")


def loaded_after(code: str) -> list[str]:
    script = f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.check_output([sys.executable, "-c", script], cwd=REPO, text=True)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_indexing_the_app_loads_none_of_what_the_functions_use() -> None:
    modules = loaded_after("import function_app")
    assert "function_app" in modules and "functions.dashboard" in modules
    heavy = [m for m in modules if m.startswith(HEAVY)]
    assert heavy == []


def test_load_all_loads_what_the_functions_use() -> None:
    modules = loaded_after("import function_app; from functions.lazy import load_all; load_all()")
    assert {"shared.services.approvals", "shared.schemas.definition", "pydantic"} <= set(modules)
