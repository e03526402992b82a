"""Slipway's name rules, for turning Azure DevOps names into names a definition accepts.

The patterns mirror the request schemas (`shared/schemas/fields.py`, `definition.py`, `variables.py`,
`step_arm.py`, `step_http.py`): the domain may not import them, and the tests check every imported
definition with `parse_definition`, so a drift shows there.
"""

from __future__ import annotations

import re
import unicodedata

from shared.domain.ado_import.reading import clean

NAME_MAX = 64
LONG_NAME_MAX = 128

TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Artifact aliases and sources."""
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()\-]{0,63}$")
SITE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$")
SLOT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}[A-Za-z0-9])?$")
RESOURCE_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
"""App settings (set-app-settings)."""
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
APP_SETTING_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
"""The app setting a header's value is read from (headersFromSettings)."""
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
LOCATION = re.compile(r"^[a-z0-9]{2,40}$")
DEPLOYMENT_NAME = re.compile(r"^[-\w._()]{1,64}$")
KEY_VAULT_SECRET = re.compile(r"^[0-9A-Za-z-]{1,127}$")
PREDEFINED_PREFIXES = ("release.", "build.", "system.", "slipway.", "agent.")
"""Variable names Slipway reserves (`shared/domain/variables.py` PREDEFINED_PREFIXES)."""


def printable(text: str, limit: int = NAME_MAX) -> str:
    """`text` as a Slipway name: no control or format characters, no spaces at the ends, at most
    `limit` characters; empty when nothing is left."""
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in clean(text))
    return " ".join(kept.split())[:limit].strip()


def unique(name: str, taken: set[str], limit: int = NAME_MAX) -> str:
    """`name`, or `name (2)`, `name (3)`… (case-insensitively unique among `taken`), which it joins."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        candidate = name[:limit - len(suffix)].rstrip() + suffix
    taken.add(candidate.casefold())
    return candidate


def token(text: str) -> str | None:
    """`text` as an alias or source: other characters become `-`, leading ones that cannot start it go."""
    replaced = re.sub(r"[^A-Za-z0-9._-]", "-", clean(text).strip())
    trimmed = re.sub(r"^[^A-Za-z0-9]+", "", replaced)[:64]
    return trimmed if TOKEN.match(trimmed) else None


def secret_name(text: str) -> str:
    """A Key Vault secret name for a variable: letters, digits and dashes."""
    name = re.sub(r"-+", "-", re.sub(r"[^0-9A-Za-z-]", "-", clean(text))).strip("-")[:127]
    return name or "secret"


def reserved(name: str) -> bool:
    return name.casefold().startswith(PREDEFINED_PREFIXES)
