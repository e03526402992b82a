"""`http-request`: call a REST API or an Azure Function, and succeed on its answer or on its callback.

Completion by the answer: the status must be one the step expects (any 2xx by default) and the JSON
answer must meet the step's criteria; 429, 5xx and network errors are retried with back-off until the
step's timeout. Completion by callback: the call carries a single-use URL; the service answers 2xx at
once and later POSTs its result there (`shared/services/callbacks.py`); the step fails when the
timeout passes first. A URL is a random 256-bit token that Slipway keeps only as its hash, bound to
one step of one deployment attempt, accepted once.

A crash between the call and its record sends the call again: every call of one step attempt carries
the same `Idempotency-Key`, so the service can answer the repeat without acting twice.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.domain import variables as names
from shared.domain.gates import compare
from shared.domain.keys import key_hash
from shared.domain.secrets import header_refusal
from shared.services.deps import Deps
from shared.services.mail import base_url
from shared.services.steps.context import Outcome, StepContext

CALLBACK_HEADER = "X-Slipway-Callback"


def http_request(deps: Deps, ctx: StepContext) -> Outcome:
    cfg = ctx.step.config
    state = dict(ctx.run.state)
    deadline = datetime.fromisoformat(state.get("deadline") or
                                      (ctx.now + timedelta(minutes=int(cfg.get("timeoutMinutes", 10)))).isoformat())
    state["deadline"] = deadline.isoformat()
    if state.get("requested"):  # the service took the call: this run only looks whether its time is up
        if ctx.now >= deadline:
            return Outcome.fail(f"no callback before {deadline.isoformat()}")
        return Outcome.retry(f"waiting for the callback until {deadline.isoformat()}",
                             (deadline - ctx.now).total_seconds(), state)
    url = ctx.expand(cfg["url"])
    headers = {name: ctx.expand(value) for name, value in (cfg.get("headers") or {}).items()}
    for header, setting in (cfg.get("headersFromSettings") or {}).items():
        refused = header_refusal(setting, url, deps.settings.gate_header_settings)
        if refused:
            return Outcome.fail(f"header {header} not sent: {refused}")
        headers[header] = os.environ.get(setting, "")
    for header, reference in (cfg.get("headersFromSecrets") or {}).items():
        headers[header] = ctx.secret(reference)  # masked in all it writes; a vault that cannot answer fails
    dep = ctx.release.stages[ctx.stage.name].current
    assert dep is not None
    headers["Idempotency-Key"] = f"slipway-{ctx.release.id}-{key_hash(ctx.stage.name)[:10]}-{dep.attempt}-" \
                                 f"{ctx.step.index}"
    extra: dict[str, str] = {}
    if cfg.get("completion") == "callback":
        token = secrets.token_urlsafe(32)
        hashed = key_hash(token)
        issued = [*(state.get("intent") or {}).get("callbacks", []), *state.get("callbacks", []), hashed]
        deps.store.create_link(hashed, {"kind": "callback", "definitionId": int(ctx.release.definition_id),
                                        "releaseId": ctx.release.id, "stage": ctx.stage.name,
                                        "attempt": dep.attempt, "step": ctx.step.index,
                                        "approver": "", "expires": deadline.isoformat()})
        ctx.intend({"callbacks": sorted(set(issued))})  # durable before the call: the answer may come at once
        state["callbacks"] = sorted(set(issued))
        extra["Slipway.CallbackUrl"] = headers[CALLBACK_HEADER] = f"{base_url(deps)}/api/callbacks/{token}"
    body, content_type = _body(ctx, cfg.get("body"), extra)
    if content_type and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = content_type
    method = cfg.get("method", "POST")
    shown = _without_query(url)
    answer = deps.probe.request(method, url, headers, body, float(cfg.get("requestTimeoutSeconds", 20)))
    ctx.debug(f"{method} {shown} -> {answer.status} {answer.error or ''} body: {answer.body[:500]!r}")
    if answer.error or answer.status is None or answer.status == 429 or answer.status >= 500:
        seen = answer.error or f"HTTP {answer.status}"
        ctx.log(f"{method} {shown}: {seen}")
        tries = int(state.get("tries", 0)) + 1
        if ctx.now >= deadline:
            return Outcome.fail(f"{method} {shown}: {seen} (gave up at {deadline.isoformat()} after {tries} tries)")
        delay = answer.retry_after if answer.retry_after is not None else min(300.0, 2.0 ** tries)
        delay = max(0.0, min(delay, (deadline - ctx.now).total_seconds()))
        return Outcome.retry(f"{seen}; trying again in {delay:g}s", delay, {**state, "tries": tries})
    ctx.log(f"{method} {shown}: HTTP {answer.status}")
    expected = cfg.get("expectStatus") or []
    if (answer.status not in expected) if expected else not 200 <= answer.status < 300:
        return Outcome.fail(f"{method} {shown} answered HTTP {answer.status}, expected "
                            f"{', '.join(map(str, expected)) or '2xx'}: {answer.body[:300]}")
    if cfg.get("completion") == "callback":
        ctx.log(f"waiting for the callback until {deadline.isoformat()}")
        return Outcome.retry(f"waiting for the callback until {deadline.isoformat()}",
                             (deadline - ctx.now).total_seconds(), {**state, "requested": True})
    verdict, message, outputs = judge(cfg, answer.body)
    for name, value in outputs.items():
        ctx.log(f"output {name} = {value}")
    if not verdict:
        return Outcome.fail(f"{method} {shown}: {message}")
    return Outcome.ok(f"{method} {shown}: HTTP {answer.status}{'; ' + message if message else ''}",
                      state={"outputs": outputs} if outputs else {})


def judge(cfg: dict[str, Any], text: str, given: dict[str, Any] | None = None) -> tuple[bool, str, dict[str, str]]:
    """The step's criteria and outputs on a JSON answer (or a callback's body): (passed, why, outputs)."""
    criteria, wanted = cfg.get("criteria") or [], cfg.get("outputs") or {}
    if not criteria and not wanted:
        return True, "", {k: str(v) for k, v in (given or {}).items()}
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return False, "the answer is not JSON, so its criteria cannot be judged", {}
    for c in criteria:
        value = pick(data, c["jsonPath"])
        if not compare(value, c.get("operator", "=="), c.get("value")):
            return False, f"{c['jsonPath']} is {value!r}, expected {c.get('operator', '==')} {c.get('value')!r}", {}
    outputs = {k: str(v) for k, v in (given or {}).items()}
    outputs.update({name: "" if (v := pick(data, path)) is None else
                    (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for name, path in wanted.items()})
    return True, f"{len(criteria)} criteria met" if criteria else "", outputs


def pick(body: Any, path: str) -> Any:
    """`$.a.b[0].c` out of a JSON value; None when it is not there."""
    node = body
    for key, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]", path):
        try:
            node = node[key] if key else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _body(ctx: StepContext, body: Any, extra: dict[str, str]) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    variables = {**ctx.variables(), **extra}
    if isinstance(body, str):
        return names.expand(body, variables, ctx.secret).encode(), "text/plain; charset=utf-8"
    return json.dumps(names.expand_all(body, variables, ctx.secret)).encode(), "application/json"


def _without_query(url: str) -> str:
    """The URL as the log shows it: a query string may hold a function key (`?code=`), so it is left out."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))
