"""`slipway definition apply|export|validate`: a definition kept as a YAML or JSON file in a repository
and applied from CI, with a diff first.

`apply` finds the definition by name, shows what would change (a unified diff of the definition as the
server would store it, keys sorted), then creates it, or updates it with `If-Match` on the revision it
diffed against: when someone changed it in between the server answers 412 and nothing is overwritten.
Applying the same file again changes nothing (the server makes a revision only when the body differs).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from slipway_cli.api import ApiError, Client

READ_ONLY = ("id", "revision", "modifiedBy", "modifiedOn", "warnings")
"""What reads add to a definition; never part of a file (shared.schemas.definition.READ_ONLY)."""
EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
MAX_FILE_BYTES = 1_000_000
NAME_PAGES = 100
"""How many pages of a name lookup to follow (each one bounded on the server)."""
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "examples" / "definition.schema.json"


class DefinitionFileError(Exception):
    """The file cannot be read as a definition (not found, not YAML or JSON, not a mapping)."""


# -- reading files


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core schema for plain scalars: `23:30` stays a string (YAML
    1.1 reads a base-60 integer, 1410), `2026-12-01` stays a string (not a date, which JSON has not),
    and only true/false are booleans (not yes/no/on/off). yaml.org/spec/1.2.2, 10.3 Core Schema."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                           "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
               r"|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))


def parse_text(text: str, *, json_only: bool = False) -> dict[str, Any]:
    """A definition from YAML (or JSON, which YAML 1.2 reads too); a mapping or DefinitionFileError."""
    try:
        data = json.loads(text) if json_only else yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (safe)
    except (ValueError, yaml.YAMLError) as exc:
        raise DefinitionFileError(f"not valid {'JSON' if json_only else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise DefinitionFileError("a definition is a mapping (name, stages, ...) at the top level")
    return data


def read_file(path: str) -> dict[str, Any]:
    """A definition file: `.json` is read as JSON, anything else as YAML; `-` is standard input."""
    if path == "-":
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(MAX_FILE_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionFileError(f"cannot read {path}: {exc}") from None
    if len(text) > MAX_FILE_BYTES:
        raise DefinitionFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return parse_text(text, json_only=path.lower().endswith(".json"))
    except DefinitionFileError as exc:
        raise DefinitionFileError(f"{path}: {exc}") from None


# -- diffs


def without_read_only(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in READ_ONLY}


def render_diff(current: dict[str, Any] | None, proposed: dict[str, Any], *, current_label: str,
                proposed_label: str) -> str:
    """A unified diff of two definitions as sorted, indented JSON without read-only fields; "" when equal.
    `current` None: the definition does not exist yet (everything is added)."""
    def lines(definition: dict[str, Any] | None) -> list[str]:
        if definition is None:
            return []
        return (json.dumps(without_read_only(definition), indent=2, sort_keys=True) + "\n").splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(current), lines(proposed), fromfile=current_label,
                                        tofile=proposed_label))


# -- the API


def find_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """The definition of that name (case-insensitive), following the server's bounded pages."""
    cursor = None
    for _ in range(NAME_PAGES):
        params = {"name": name, **({"continuationToken": cursor} if cursor else {})}
        page = client.call("GET", "/definitions", params=params)
        if page["value"]:
            found: dict[str, Any] = page["value"][0]
            return found
        cursor = page.get("continuationToken")
        if not cursor:
            return None
    raise ApiError(f"gave up looking for definition '{name}' after {NAME_PAGES} pages")


def _current(client: Client, definition_id: int) -> tuple[dict[str, Any], str]:
    response = client.send("GET", f"/definitions/{definition_id}")
    return client.json_of(response), response.headers.get("ETag", "")


# -- commands


def add_parser(groups: Any) -> None:
    commands = groups.add_parser("definition", help="apply, export and validate definitions kept as files"
                                 ).add_subparsers(dest="command", required=True)
    apply = commands.add_parser(
        "apply", help="create or update a definition from a YAML or JSON file (by its name)",
        description="Create or update the definition the file names (found by name, case-insensitive). Prints a "
                    "unified diff of what changes first; a new revision is made only when something changed. The "
                    "update names the revision it diffed against (If-Match): when someone changed the definition "
                    "in between, nothing is overwritten and the exit code is 2. Exit codes: 0 applied (or nothing "
                    "to do), 2 an error or a refused update; with --diff --exit-code: 1 when there are changes.")
    apply.add_argument("-f", "--file", required=True, help="the definition's YAML or JSON file ('-': standard input)")
    apply.add_argument("--diff", action="store_true", help="only print what would change (exit 0), save nothing")
    apply.add_argument("--exit-code", action="store_true",
                       help="with --diff: exit 1 when there are changes, 0 when none (as git diff --exit-code)")
    apply.add_argument("--yes", "-y", action="store_true",
                       help="apply without asking (needed when standard input is not a terminal, e.g. in CI)")
    export = commands.add_parser("export", help="write the current revision as a file that apply accepts",
                                 description="Write the current revision without its read-only fields (id, "
                                             "revision, modifiedBy, modifiedOn, warnings): applying it changes "
                                             "nothing. Secret setting values are written as {secret: true}, which "
                                             "keeps the stored value when applied.")
    export.add_argument("definition", help="the definition's id or name")
    export.add_argument("-o", "--format", choices=["yaml", "json"],
                        help="default: from the file's extension, else yaml")
    export.add_argument("-f", "--file", help="write here (default: standard output)")
    validate = commands.add_parser(
        "validate", help="check a file against the definition's JSON Schema, offline",
        description="Check a YAML or JSON file against the definition's JSON Schema without calling Slipway; each "
                    "error is printed with its path (stages[0].target.site). Rules across fields (unique stage "
                    "names, slots that exist) are checked by the server: `apply --diff` runs them all.")
    validate.add_argument("file", help="the definition's YAML or JSON file")
    validate.add_argument("--schema", metavar="FILE",
                          help="the JSON Schema (GET /api/schemas/definition.json; default: the one in Slipway's "
                               "repository, examples/definition.schema.json)")


def apply(client: Client, args: argparse.Namespace) -> int:
    try:
        body = read_file(args.file)
    except DefinitionFileError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        print(f"slipway: {args.file}: a definition needs a `name`: apply finds it by name", file=sys.stderr)
        return EXIT_ERROR
    body = without_read_only(body)
    found = find_by_name(client, name)
    if found is None:
        preview = client.call("POST", "/definitions", json=body, params={"dryRun": "true"})
        diff = render_diff(None, preview["definition"], current_label="/dev/null", proposed_label=args.file)
        current, etag, changed = None, "", True
    else:
        current, etag = _current(client, found["id"])
        preview = client.call("PUT", f"/definitions/{found['id']}", json=body, params={"dryRun": "true"})
        diff = render_diff(current, preview["definition"], proposed_label=args.file,
                           current_label=f"definition {current['id']} revision {current['revision']}")
        changed = bool(preview["changed"])
    if not changed:
        print(f"no changes: definition {current['id']} '{current['name']}' stays at revision "  # type: ignore[index]
              f"{current['revision']}")  # type: ignore[index]
        return EXIT_OK
    print(diff.rstrip("\n") if diff else "secret setting values change (not shown)", flush=True)
    if args.diff:
        return EXIT_CHANGES if args.exit_code else EXIT_OK
    if not args.yes and not _confirmed(current):
        return EXIT_ERROR
    if current is None:
        created = client.call("POST", "/definitions", json=body)
        print(f"created definition {created['id']} '{created['name']}' (revision {created['revision']})")
        return EXIT_OK
    return _update(client, current, etag, body)


def _confirmed(current: dict[str, Any] | None) -> bool:
    what = "create it" if current is None else f"update definition {current['id']}"
    if not sys.stdin.isatty():
        print(f"slipway: not applied: pass --yes to {what} without asking", file=sys.stderr)
        return False
    answer = input(f"{what[0].upper()}{what[1:]}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _update(client: Client, current: dict[str, Any], etag: str, body: dict[str, Any]) -> int:
    response = client.request("PUT", f"/definitions/{current['id']}", json=body, headers={"If-Match": etag})
    if response.status_code == 412:
        print(f"slipway: definition {current['id']} changed after revision {current['revision']} was diffed; "
              "nothing was overwritten: run apply again to see the new diff", file=sys.stderr)
        return EXIT_ERROR
    updated = client.json_of(client.check(response))
    if updated["revision"] == current["revision"]:
        print(f"no changes: definition {updated['id']} stays at revision {updated['revision']}")
    else:
        print(f"updated definition {updated['id']} '{updated['name']}' to revision {updated['revision']}")
    return EXIT_OK


def export(client: Client, args: argparse.Namespace) -> int:
    ref = str(args.definition)
    if ref.isdigit():
        definition_id = int(ref)
    else:
        found = find_by_name(client, ref)
        if found is None:
            print(f"slipway: no definition is named '{ref}'", file=sys.stderr)
            return EXIT_ERROR
        definition_id = int(found["id"])
    definition = without_read_only(client.call("GET", f"/definitions/{quote(str(definition_id))}"))
    fmt = args.format or ("json" if (args.file or "").lower().endswith(".json") else "yaml")
    text = (json.dumps(definition, indent=2) + "\n" if fmt == "json"
            else yaml.safe_dump(definition, sort_keys=False, allow_unicode=True))
    if args.file:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"wrote definition {definition_id} to {args.file}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- offline validation


def schema_errors(definition: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for every place the definition breaks the schema, paths as the API names fields.
    A step or signal (a oneOf on its `type`) is judged by the kind its `type` names, not by every kind."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    found: list[tuple[str, str]] = []
    for error in validator.iter_errors(definition):
        found += _explained(error)
    return sorted(set(found))


def _explained(error: Any) -> list[tuple[str, str]]:
    if error.validator == "oneOf" and isinstance(error.instance, dict) and error.context:
        branches: dict[int, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        kinds = [b for b in range(len(error.validator_value)) if not any(
            list(sub.relative_path) == ["type"] or (sub.validator == "required" and "'type'" in sub.message)
            for sub in branches.get(b, []))]
        if len(kinds) == 1 and kinds[0] in branches:
            return [item for sub in branches[kinds[0]] for item in _explained(sub)]
        if not kinds:
            kind = error.instance.get("type")
            why = "required" if kind is None else f"unknown type {kind!r}"
            return [(field_path([*error.absolute_path, "type"]), why)]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance and repr(p) in error.message]
        return [(field_path([*error.absolute_path, p]), "required") for p in missing[:1]]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        return [(field_path([*error.absolute_path, p]), "unknown field") for p in error.instance if p not in known]
    return [(field_path(error.absolute_path), error.message)]


def field_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(the definition)"


def validate(client: Client, args: argparse.Namespace) -> int:
    try:
        definition = read_file(args.file)
    except DefinitionFileError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    schema_path = Path(args.schema) if args.schema else SCHEMA_FILE
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"slipway: cannot read the schema {schema_path}: {exc} (download it from "
              f"{args.endpoint.rstrip('/')}/schemas/definition.json and pass --schema)", file=sys.stderr)
        return EXIT_ERROR
    errors = schema_errors(definition, schema)
    for path, message in errors:
        print(f"{args.file}: {path}: {message}")
    if errors:
        return EXIT_CHANGES
    print(f"{args.file}: valid")
    return EXIT_OK
