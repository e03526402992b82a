"""What the local Functions host reads before it starts: host.json and local.settings.json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any


def load_host_json(app_dir: Path) -> dict[str, Any]:
    path = app_dir / "host.json"
    return json.loads(path.read_text()) if path.exists() else {"version": "2.0"}  # type: ignore[no-any-return]


def load_local_settings(app_dir: Path) -> dict[str, str]:
    """`Values` of local.settings.json, created from local.settings.example.json on the first run;
    settings added to the example since then keep their example value until the file names them."""
    path = app_dir / "local.settings.json"
    example = app_dir / "local.settings.example.json"
    if not path.exists() and example.exists():
        shutil.copyfile(example, path)
    values: dict[str, str] = {}
    for source in (example, path):
        if source.exists():
            values.update({k: str(v) for k, v in json.loads(source.read_text()).get("Values", {}).items()})
    return values


def parse_timespan(value: str | None, default: float) -> float:
    """A .NET TimeSpan as host.json writes it ("00:00:02", "1.00:00:00", "00:00:00.100") in seconds."""
    if not value:
        return default
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?", value.strip())
    if m is None:
        raise ValueError(f"not a TimeSpan: {value!r}")
    days, hours, minutes, seconds, fraction = m.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


def expand(value: str, env: dict[str, str]) -> str:
    """`%SETTING%` expansion, as the host applies it to binding properties."""
    def lookup(m: re.Match[str]) -> str:
        if m[1] not in env:
            raise KeyError(f"setting '{m[1]}' used in a binding is not defined")
        return env[m[1]]
    return re.sub(r"%([^%]+)%", lookup, value)
