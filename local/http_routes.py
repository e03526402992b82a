"""HTTP trigger routes as the Functions host matches them: route prefix and template constraints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

CONSTRAINTS = {"int": r"-?\d+", "alpha": r"[A-Za-z]+", "guid": r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}",
               "bool": r"(?:true|false|True|False)", "long": r"-?\d+"}


@dataclass
class Route:
    function: Any
    arg_name: str
    methods: set[str] | None
    pattern: re.Pattern[str]
    template: str

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(path)
        if m is None:
            return None
        return {k: unquote(v) for k, v in m.groupdict().items() if v is not None}


def compile_template(prefix: str, template: str) -> re.Pattern[str]:
    """`releases/{id:int}/stages/{stage}` -> a regex over the URL path (still percent-encoded)."""
    parts = [p for p in prefix.strip("/").split("/") if p] + [p for p in template.strip("/").split("/") if p]
    regex = ""
    for part in parts:
        m = re.fullmatch(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}", part)
        if m is None:
            regex += "/" + re.escape(part)
            continue
        catch_all, name, constraint, optional = m.groups()
        if catch_all:
            regex += f"(?:/(?P<{name}>.*))?"
            continue
        body = CONSTRAINTS.get(constraint or "", r"[^/]+")
        regex += f"(?:/(?P<{name}>{body}))?" if optional else f"/(?P<{name}>{body})"
    return re.compile(regex or "/")


def precedence(template: str) -> tuple[int, ...]:
    """Sort key as ASP.NET routing orders templates: per segment a literal beats a constrained
    parameter, which beats a plain one, which beats an optional one; a catch-all comes last."""
    ranks = []
    for part in (p for p in template.strip("/").split("/") if p):
        m = re.fullmatch(r"\{(\*?)[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?(\?)?\}", part)
        if m is None:
            ranks.append(0)
        else:
            catch_all, constraint, optional = m.groups()
            ranks.append(4 if catch_all else 3 if optional else 1 if constraint else 2)
    return (*ranks, 5)
