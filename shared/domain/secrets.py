"""What may leave Slipway, and what readers may see of a definition.

- A REST gate may send app settings as header values only when the app's allowlist
  (`SLIPWAY_GATE_HEADER_SETTINGS`: `NAME@host` or `NAME`, comma-separated) names them, to that host,
  over https; Slipway's own and the platform's secrets (storage keys, the managed identity's
  header, App Service authentication's keys) can never be listed.
- `set-app-settings` values are write-only unless marked `"secret": false`: definitions keep them
  to apply them, and every read shows `{"secret": true}` in their place. An update that sends that
  marker back keeps the value of the revision it replaces.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from shared.domain.errors import FieldError

NEVER_SENT = ("AzureWebJobs", "IDENTITY_", "MSI_", "WEBSITE_AUTH_", "APPLICATIONINSIGHTS_", "SLIPWAY_",
              "CONTAINER_ENCRYPTION", "WEBSITE_RUN_FROM_PACKAGE")
"""Prefixes of settings that are Slipway's own or the platform's credentials."""
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SECRET_MARK = {"secret": True}


def header_allowlist(spec: str) -> dict[str, set[str] | None]:
    """`NAME@host,NAME2` → {NAME: {host}, NAME2: None (any host)}; forbidden names are left out."""
    out: dict[str, set[str] | None] = {}
    for item in spec.split(","):
        name, _, host = item.strip().partition("@")
        if not name or name.startswith(NEVER_SENT):
            continue
        if host:
            hosts = out.get(name, set())
            if hosts is not None:
                out[name] = {*hosts, host.strip().lower()}
        else:
            out[name] = None
    return out


def header_refusal(setting: str, url: str, spec: str) -> str | None:
    """Why a gate may not send `setting` to `url`, or None when it may."""
    if setting.startswith(NEVER_SENT):
        return f"'{setting}' is one of Slipway's or the platform's own secrets and is never sent"
    allowed = header_allowlist(spec)
    if setting not in allowed:
        return (f"'{setting}' is not on the app's allowlist of settings gates may send "
                f"(SLIPWAY_GATE_HEADER_SETTINGS)")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" and host not in LOCAL_HOSTS:
        return f"'{setting}' is sent over https only"
    hosts = allowed[setting]
    if hosts is not None and host not in hosts:
        return f"'{setting}' may be sent to {', '.join(sorted(hosts))} only, not {host}"
    return None


def header_errors(data: dict[str, Any], spec: str) -> list[FieldError]:
    """Every REST gate signal's and http-request step's header settings checked against the allowlist,
    by field (a step's URL may hold variables: its host is judged again when it runs)."""
    errors = []
    for i, stage in enumerate(data.get("stages", [])):
        for j, step in enumerate(stage.get("steps", [])):
            for header, setting in (step.get("headersFromSettings") or {}).items():
                if "$(" not in str(step.get("url", "")):
                    why = header_refusal(setting, step.get("url", ""), spec)
                    if why:
                        errors.append(FieldError(f"stages[{i}].steps[{j}].headersFromSettings.{header}", why))
        for kind in ("preGates", "postGates"):
            for j, signal in enumerate((stage.get(kind) or {}).get("signals", [])):
                for header, setting in (signal.get("headersFromSettings") or {}).items():
                    why = header_refusal(setting, signal.get("url", ""), spec)
                    if why:
                        errors.append(FieldError(f"stages[{i}].{kind}.signals[{j}].headersFromSettings.{header}", why))
    return errors


# -- write-only setting values


def _setting_steps(data: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [(stage["name"], j, step) for stage in data.get("stages", [])
            for j, step in enumerate(stage.get("steps", [])) if step.get("type") == "set-app-settings"]


def redacted(data: dict[str, Any]) -> dict[str, Any]:
    """A definition as readers see it: secret setting values replaced by the marker."""
    out = copy.deepcopy(data)
    for _, _, step in _setting_steps(out):
        step["settings"] = {name: dict(SECRET_MARK) if value.get("secret", True) else value
                            for name, value in (step.get("settings") or {}).items()}
    return out


def restore_kept(data: dict[str, Any], previous: dict[str, Any] | None) -> list[FieldError]:
    """Put back the values an update left as `{"secret": true}`, from the revision it replaces: the
    same stage and step, else the same stage's only value of that name. Errors for markers with none."""
    earlier: dict[tuple[str, int, str], str] = {}
    by_stage: dict[tuple[str, str], set[str]] = {}
    for stage, j, step in _setting_steps(previous or {}):
        for name, value in (step.get("settings") or {}).items():
            if "value" in value:
                earlier[(stage, j, name)] = value["value"]
                by_stage.setdefault((stage, name), set()).add(value["value"])
    errors = []
    for i, stage in enumerate(data.get("stages", [])):
        for j, step in enumerate(stage.get("steps", [])):
            if step.get("type") != "set-app-settings":
                continue
            for name, value in (step.get("settings") or {}).items():
                if "value" in value:
                    continue
                kept = earlier.get((stage["name"], j, name))
                candidates = by_stage.get((stage["name"], name), set())
                if kept is None and len(candidates) == 1:
                    kept = next(iter(candidates))
                if kept is None:
                    errors.append(FieldError(f"stages[{i}].steps[{j}].settings.{name}",
                                             "a secret without a value keeps the earlier one, and there is none "
                                             "(or several): give its value"))
                else:
                    value["value"] = kept
    return errors


def setting_value(value: Any) -> str:
    """A stored setting's value (definitions from before secrets were write-only hold plain strings)."""
    return str(value["value"]) if isinstance(value, dict) else str(value)
