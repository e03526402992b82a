"""How a `run-pipeline` step on GitHub signs in: with a token kept in Key Vault (`tokenSecret`), or as a GitHub App
installation (`app`), whose private key is read from Key Vault and exchanged by the GitHub adapter for an
installation token. The key is read on every call and goes nowhere else: not into the state, the log or a message.
"""

from __future__ import annotations

from typing import Any

from shared.ports import TargetError
from shared.services.deps import Deps


def github_token(deps: Deps, cfg: dict[str, Any]) -> str:
    """The token the step's GitHub calls carry. A TargetError fails or retries the step: never run without one."""
    app = cfg.get("app")
    if not app:
        return deps.secrets.get(cfg["tokenSecret"])
    key = deps.secrets.get(app["privateKeySecret"])
    try:
        return deps.pipelines.installation_token(str(app["appId"]), int(app["installationId"]), key)
    except TargetError as exc:
        raise TargetError(scrub_key(str(exc), key), retryable=exc.retryable, retry_after=exc.retry_after) from None


def scrub_key(text: str, key: str) -> str:
    """Whatever a message says, it says it without the key or any line of it."""
    if key.strip():
        text = text.replace(key.strip(), "***")
    for line in sorted((line.strip() for line in key.splitlines()), key=len, reverse=True):
        if len(line) >= 16 and not line.startswith("-----"):
            text = text.replace(line, "***")
    return text
