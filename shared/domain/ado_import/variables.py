"""Variables and variable groups, at definition and stage scope.

Azure DevOps never exports a secret's value (`isSecret`; prior-art.md §2.10), and a value that came along
anyway must not travel further: each secret becomes a Key Vault reference placeholder the user fills in.
Variable groups are linked by integer id, which names nothing outside the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED
from shared.domain.ado_import.names import GROUP_NAME, VARIABLE_NAME, reserved, secret_name
from shared.domain.ado_import.reading import Path, flag, get, mapping, refuse, sequence, text, whole
from shared.domain.ado_import.refs import Variable
from shared.domain.ado_import.report import Report

MAX_VARIABLES = 200
MAX_GROUPS = 20
MAX_VALUE = 4000


@dataclass
class Declared:
    """A scope's variables: as the Slipway definition declares them, and as references see them."""

    slipway: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Variable] = field(default_factory=dict)


def key_vault_reference(name: str) -> str:
    return f"@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName={secret_name(name)})"


def secret_values(value: Any) -> list[str]:
    """The values of the secret variables of one scope, as far as the document is readable (the import
    itself refuses what is not)."""
    if not isinstance(value, dict):
        return []
    found = []
    for spec in value.values():
        if isinstance(spec, dict) and flag(get(spec, "isSecret")):
            shown = text(get(spec, "value"))
            if len(shown) >= 3:
                found.append(shown)
    return found


def variables(value: Any, path: Path, became: str, report: Report) -> Declared:
    """One scope's variables, each reported. `became` is where they go (`variables`, `stages[1].variables`)."""
    out = Declared()
    data = mapping(value, path)
    if len(data) > MAX_VARIABLES:
        refuse(path, f"Slipway takes at most {MAX_VARIABLES} variables per scope")
    for name, spec in data.items():
        where = (*path, name)
        if isinstance(spec, str):
            spec = {"value": spec}
        spec = mapping(spec, where, required=True)
        secret = flag(get(spec, "isSecret"))
        value_text = "" if secret else text(get(spec, "value"))
        usable = not reserved(name) and VARIABLE_NAME.match(name) is not None
        out.scope[name.casefold()] = Variable(name, value_text, secret, usable)
        if reserved(name):
            report.add(where, "variable", name, DROPPED, "",
                       f"{name} is in a namespace Slipway reserves for its own variables (Release., Build., "
                       f"System., Agent.)" + (": Slipway's step logs need no debug switch." if
                                              name.casefold() == "system.debug" else "."))
            continue
        if not usable:
            report.add(where, "variable", name, DROPPED, "",
                       "not a variable name Slipway takes (a letter or _, then letters, digits, _ . -): rename it "
                       "and the references to it.")
            continue
        if len(value_text) > MAX_VALUE:
            out.scope[name.casefold()] = Variable(name, value_text, secret, False)
            report.add(where, "variable", name, DROPPED, "", f"its value is longer than {MAX_VALUE} characters.")
            continue
        carried = key_vault_reference(name) if secret else value_text
        override = flag(get(spec, "allowOverride"))
        out.slipway[name] = {"value": carried, "allowOverride": True} if override else carried
        at = f"{became}.{name}"
        if secret:
            report.add(where, "variable", name, CHANGED, at,
                       f"secret: Azure DevOps does not export its value. Store it in Key Vault as secret "
                       f"{secret_name(name)} and replace REPLACE-ME in the reference with the vault's name.")
        else:
            report.add(where, "variable", name, MAPPED, at,
                       "settable when a release is created." if override else "a plain value.")
    return out


def variable_groups(value: Any, path: Path, became: str, report: Report) -> list[str]:
    """The groups a scope links that can be named; each link reported."""
    names: list[str] = []
    for k, item in enumerate(sequence(value, path)):
        where = (*path, k)
        group_id = whole(item)
        name = text(get(item, "name")).strip() if isinstance(item, dict) else ""
        if group_id is not None:
            report.add(where, "variableGroup", f"variable group {group_id}", DROPPED, "",
                       f"Azure DevOps links variable group {group_id} by id, and the export does not name it: "
                       f"create a Slipway variable group with its variables (secrets as Key Vault references) and "
                       f"add its name to `{became}`.")
        elif name and GROUP_NAME.match(name) and len(names) < MAX_GROUPS and name not in names:
            report.add(where, "variableGroup", name, CHANGED, f"{became}[{len(names)}]",
                       f"create the Slipway variable group {name} with its variables (secrets as Key Vault "
                       f"references) before saving: a link to a group that does not exist is refused.")
            names.append(name)
        else:
            report.add(where, "variableGroup", name or "variable group", DROPPED, "",
                       "not a variable group Slipway can link (a name of letters, digits, spaces . _ ( ) -; at most "
                       f"{MAX_GROUPS} per scope).")
    return names
