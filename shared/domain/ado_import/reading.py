"""Typed reading of a parsed Azure DevOps document that may hold anything.

Structure that the import needs (an object, a list) must have its type, or the import is refused with
the JSON path of what is wrong; scalars are read leniently (Azure DevOps writes booleans as "true",
numbers as strings, enums as names or numbers, and exports leave server-owned fields blank).
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from shared.domain.errors import FieldError, Invalid

Segment = str | int
Path = tuple[Segment, ...]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LARGEST = 10**15
"""Numbers beyond this are not numbers any Azure DevOps field holds (and big ints do not print)."""


def render(path: Path) -> str:
    """`$.environments[1].variables.Name`, with `['odd key']` for keys that are not identifiers."""
    out = "$"
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _IDENTIFIER.match(segment):
            out += "." + segment
        else:
            out += "['" + clean(segment).replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def refuse(path: Path, message: str) -> NoReturn:
    raise Invalid([FieldError(render(path), message)])


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def mapping(value: Any, path: Path, *, required: bool = False) -> dict[str, Any]:
    """An object; absent (null) is an empty one unless `required`."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        refuse(path, f"must be an object, not {describe(value)}")
    return value


def sequence(value: Any, path: Path, *, required: bool = False) -> list[Any]:
    """A list; absent (null) is an empty one unless `required`."""
    if value is None and not required:
        return []
    if not isinstance(value, list):
        refuse(path, f"must be a list, not {describe(value)}")
    return value


def get(obj: dict[str, Any], *names: str) -> Any:
    """The first of `names` present, matched exactly and then case-insensitively (task inputs are
    written by hand as often as by the portal)."""
    for name in names:
        if name in obj:
            return obj[name]
    folded = {str(k).casefold(): v for k, v in obj.items()}
    for name in names:
        if name.casefold() in folded:
            return folded[name.casefold()]
    return None


def clean(text: str) -> str:
    """Lone surrogates (legal in JSON text, not in UTF-8) become U+FFFD."""
    if all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return text
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def text(value: Any) -> str:
    """A scalar as text; structures and absent values are empty."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _LARGEST else ""
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else ""
    return ""


def flag(value: Any, default: bool = False) -> bool:
    """true/false as a boolean, a string in any case, or 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return value.strip().casefold() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return default


def number(value: Any) -> float | None:
    """A finite number given as a number or as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < _LARGEST else None
    if isinstance(value, float):
        return value if math.isfinite(value) and abs(value) < _LARGEST else None
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,15}(\.\d{1,9})?\s*", value):
        return float(value)
    return None


def whole(value: Any) -> int | None:
    """A whole number given as a number or as text."""
    found = number(value)
    return int(found) if found is not None and found == int(found) else None
