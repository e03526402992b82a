"""The CLI sends the API's own request shapes: what it builds is what the shared schemas accept
(the API, the dashboard and the CLI have one rule set, and the server applies it)."""

from __future__ import annotations

import pytest

from shared.schemas.actions import AbandonIn, DeployIn, IgnoreGateIn
from slipway_cli.main import build_parser, comment_body, deploy_body


def test_stage_commands_send_the_deploy_body_the_api_validates() -> None:
    parser = build_parser()
    plain = deploy_body(parser.parse_args(["stage", "deploy", "1", "Production"]))
    assert plain == {} and DeployIn.model_validate(plain).reason is None
    args = parser.parse_args(["stage", "rollback", "1", "Production", "--break-glass", "incident 42",
                              "--not-before", "2026-12-01T03:00:00Z"])
    body = DeployIn.model_validate(deploy_body(args))
    assert (body.reason, body.breakGlass, body.notBefore) == ("rollback", "incident 42", "2026-12-01T03:00:00+00:00")
    with pytest.raises(ValueError, match="time zone"):
        DeployIn.model_validate(deploy_body(parser.parse_args(["stage", "deploy", "1", "Dev", "--not-before",
                                                               "2026-12-01T03:00"])))


def test_abandon_and_ignore_gate_send_the_bodies_the_api_validates() -> None:
    parser = build_parser()
    assert AbandonIn.model_validate(comment_body(parser.parse_args(["release", "abandon", "3"])))
    args = parser.parse_args(["stage", "ignore-gate", "3", "Production", "--kind", "post", "--comment", "noise"])
    assert IgnoreGateIn.model_validate(comment_body(args)).comment == "noise"
    with pytest.raises(SystemExit):
        parser.parse_args(["stage", "ignore-gate", "3", "Production", "--kind", "post"])  # a reason is required
