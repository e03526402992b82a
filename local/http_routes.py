"""HTTP trigger routes as the Functions host matches them: route prefix and template constraints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

CONSTRAINTS = {"int": r"[-+]?[0-9]+", "alpha": r"[A-Za-z]+",
               "guid": r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}",
               "bool": r"(?:true|false|True|False)", "long": r"[-+]?[0-9]+"}
RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
"""ASP.NET Core's IntRouteConstraint and LongRouteConstraint accept what Int32/Int64.TryParse does
(dotnet/aspnetcore, src/Http/Routing/src/Constraints): a value out of range does not match, so the
request falls through to 404, as `{id:int}` with 2147483648 does on the real host."""


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
        values = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        for name, constraint in re.findall(r"\{\*?([A-Za-z_][A-Za-z0-9_]*):([a-z]+)\??\}", self.template):
            low_high = RANGES.get(constraint)
            if low_high and name in values and not low_high[0] <= int(values[name]) <= low_high[1]:
                return None
        return values


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
