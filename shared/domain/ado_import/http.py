"""The pieces of Azure DevOps' Invoke REST API and Invoke Azure Function tasks and gates (inputs from
microsoft/azure-pipelines-tasks @ 299572e2, Tasks/InvokeRestApiV1 and Tasks/AzureFunctionV1 task.json):
the URL, the headers and the success criteria, as Slipway's `http-request` step and `rest` signal take them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.domain.ado_import.names import HEADER_NAME, secret_name
from shared.domain.ado_import.refs import Scope
from shared.domain.gates import JSON_PATH
from shared.domain.headers import SENSITIVE, reserved

_SENSITIVE_WORDS = ("token", "secret", "password", "key", "auth")
UNKNOWN_HOST = "https://replace-me.invalid"
"""A generic service connection holds the base URL, which the definition does not: `.invalid` never resolves."""
_OPERATORS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_CRITERION = re.compile(
    r"^\s*(eq|ne|gt|ge|lt|le)\s*\(\s*root((?:\s*\[\s*(?:'[^']*'|\"[^\"]*\"|\d+)\s*\]|\.[A-Za-z_][\w-]*)*)"
    r"\s*,\s*(.+?)\s*\)\s*$", re.IGNORECASE)
_SEGMENT = re.compile(r"\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[\s*(\d+)\s*\]|\.([A-Za-z_][\w-]*)")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Criterion:
    json_path: str
    operator: str
    value: str | float | bool


@dataclass(frozen=True)
class Headers:
    plain: dict[str, str]
    secret: dict[str, str]
    """Header → a Key Vault reference placeholder (or, for a signal, the app setting to read it from)."""
    notes: tuple[str, ...]


def criterion(expression: str) -> Criterion | None:
    """`eq(root['status'], 'Healthy')` as a JSON path, an operator and a value; None for anything more
    (and/or, functions other than comparisons, paths with keys JSON paths cannot name)."""
    match = _CRITERION.match(expression)
    if match is None:
        return None
    path = "$"
    for quoted, double, index, dotted in _SEGMENT.findall(match.group(2)):
        key = quoted or double or dotted
        if index:
            path += f"[{index}]"
        elif _KEY.match(key):
            path += "." + key
        else:
            return None
    if len(path) > 200 or not JSON_PATH.fullmatch(path):
        return None
    value = _literal(match.group(3))
    return None if value is None else Criterion(path, _OPERATORS[match.group(1).casefold()], value)


def _literal(text: str) -> str | float | bool | None:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        inner = text[1:-1].replace("''", "'")
        return inner if 0 < len(inner) <= 200 and "'" not in text[1:-1].replace("''", "") else None
    if text.casefold() in ("true", "false"):
        return text.casefold() == "true"
    if re.fullmatch(r"-?\d{1,15}(\.\d{1,9})?", text):
        return float(text)
    return None


def url(selector: str, suffix: str, scope: Scope) -> tuple[str | None, list[str]]:
    """The URL the task called: its service connection's address (which the definition does not hold)
    and `urlSuffix`; None when the result is no URL."""
    notes: list[str] = []
    rewritten = scope.rewrite(suffix.strip())
    notes += rewritten.notes
    tail = rewritten.text.replace(" ", "%20")
    if re.match(r"(?i)^https?://", tail):
        full = tail
    else:
        if selector.casefold() == "connectedservicenamearm":
            base = "https://management.azure.com"
            notes.append("it called Azure Resource Manager with the service connection's token; Slipway sends "
                         "no Azure token: call an endpoint that does not need one, or use an arm-deployment step")
        else:
            base = UNKNOWN_HOST
            notes.append(f"the service connection held the address: replace {UNKNOWN_HOST} in the URL")
        full = base + ("" if not tail or tail.startswith(("/", "?")) else "/") + tail
    if len(full) > 2048 or not re.fullmatch(r"https?://\S+", full):
        return None, notes
    return full, notes


def headers(raw: str, scope: Scope, *, for_signal: bool) -> Headers:
    """The task's headers (a JSON object as text). Azure DevOps' own callback headers (plan and job ids,
    the job's token) have no meaning outside it; credentials go to Key Vault (steps) or to an app setting
    on the gates' allowlist (signals)."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    notes: list[str] = []
    if not raw.strip():
        return Headers(plain, secret, ())
    try:
        parsed: Any = json.loads(raw)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        return Headers(plain, secret, ("its headers are not a JSON object and were left out",))
    dropped_plan: list[str] = []
    seen: set[str] = set()
    for name, value in parsed.items():
        if name.casefold() in seen or len(plain) >= 20 or len(secret) >= 10:
            notes.append(f"header '{name[:64]}' was left out (given twice, or too many headers)")
            continue
        seen.add(name.casefold())
        shown = value if isinstance(value, str) else json.dumps(value) if isinstance(value, int | float) else ""
        if "$(system." in shown.casefold():
            dropped_plan.append(name)
            continue
        if not HEADER_NAME.match(name):
            notes.append(f"header '{name[:64]}' is not a header name Slipway takes and was left out")
            continue
        if reserved(name):
            notes.append(f"header {name} was left out: the HTTP client sets it (or it is Slipway's own)")
            continue
        if name.casefold() in SENSITIVE or any(w in name.casefold() for w in _SENSITIVE_WORDS):
            if for_signal:
                setting = "GATE_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
                secret[name] = setting[:128]
                notes.append(f"header {name} is read from app setting {setting[:128]}: set it and add it to "
                             f"SLIPWAY_GATE_HEADER_SETTINGS")
            else:
                secret[name] = f"@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName={secret_name(name)})"
                notes.append(f"header {name} is read from Key Vault: store it as secret {secret_name(name)} and "
                             f"name the vault")
            continue
        if for_signal:
            if name.casefold() != "content-type":
                notes.append(f"header {name} was left out: a REST signal sends only headers read from app settings")
            continue
        plain[name] = scope.rewrite(shown).text[:1000]
    if dropped_plan:
        notes.append(f"Azure DevOps' callback headers ({', '.join(dropped_plan[:8])}) were left out")
    return Headers(plain, secret, tuple(notes))
