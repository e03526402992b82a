"""Which `$(name)` in a step's settings fails the step before it acts, and which a shell keeps."""

from __future__ import annotations

import pytest

from shared.domain.variables import unresolved_in_step

KNOWN = {"SqlServer": "sql-dev", "Release.ReleaseId": "7"}


@pytest.mark.parametrize(("step_type", "config", "missing"), [
    ("set-app-settings", {"settings": {"CONN": "Server=$(SqlServre);db=x"}}, "SqlServre"),
    ("set-app-settings", {"settings": {"CONN": "Server=$(sqlserver);db=x"}}, None),  # names ignore case
    ("http-request", {"url": "https://x/$(Release.ReleaseId)", "body": "$(Slipway.CallbackUrl)"}, None),
    ("http-request", {"url": "https://x/", "headers": {"X-Run": "$(Nope)"}}, "Nope"),
    # a shell's text: `$(date)` is command substitution there, left as it is (Azure DevOps' script tasks)
    ("script", {"job": "migrate", "command": ["sh", "-c", "echo $(date)"], "args": ["$(whoami)"],
                "env": {"WHEN": "$(date +%s)"}}, None),
    ("script", {"job": "$(JobName)", "command": ["sh", "-c", "echo $(date)"]}, "JobName"),
])
def test_an_unknown_name_fails_the_step_except_in_shell_text(step_type: str, config: dict[str, object],
                                                            missing: str | None) -> None:
    assert unresolved_in_step(step_type, {"type": step_type, **config}, KNOWN) == missing
