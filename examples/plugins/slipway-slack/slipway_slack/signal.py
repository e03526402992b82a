"""`statuspage`: a gate signal that passes while a Statuspage-style page says `status.indicator` is `none`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from shared.domain.gates import Reading
from shared.plugins import SignalKind
from shared.schemas.fields import Name
from shared.schemas.step_base import Strict


class StatuspageSignal(Strict):
    """A status page's overall indicator (`none`, `minor`, `major`, `critical`): green at `none`."""

    type: Literal["statuspage"]
    name: Name
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """The page's JSON summary, e.g. https://www.githubstatus.com/api/v2/status.json."""
    timeoutSeconds: float = Field(10, gt=0, le=20)
    operator: Literal["=="] = "=="
    threshold: Literal["none"] = "none"


def read_statuspage(signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
    """One GET; every failure is an errored reading (never a pass, never raised)."""
    import httpx  # on first use: a plugin adds nothing to the function app's cold start

    name = signal["name"]
    try:
        answer = httpx.get(signal["url"], timeout=float(signal.get("timeoutSeconds", 10)), follow_redirects=False)
    except httpx.HTTPError as exc:
        return Reading(name, error=f"{type(exc).__name__}: {exc}")
    if answer.status_code != 200:
        retry = answer.headers.get("Retry-After")
        return Reading(name, error=f"HTTP {answer.status_code}",
                       retry_after=float(retry) if retry and retry.isdigit() else None)
    try:
        indicator = answer.json()["status"]["indicator"]
    except (ValueError, KeyError, TypeError) as exc:
        return Reading(name, error=f"unreadable answer: {type(exc).__name__}: {exc}")
    if not isinstance(indicator, str):
        return Reading(name, error=f"unreadable answer: status.indicator is {indicator!r}")
    return Reading(name, value=indicator)


STATUSPAGE = SignalKind(StatuspageSignal, read_statuspage)
