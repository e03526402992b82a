"""Where `slipway import ado --from-org` reads a definition, and what it refuses before any request."""

from __future__ import annotations

import pytest

from slipway_cli import ado
from slipway_cli.main import build_parser


@pytest.mark.parametrize("given, base", [
    ("https://dev.azure.com/contoso", "https://vsrm.dev.azure.com/contoso"),
    ("https://dev.azure.com/contoso/", "https://vsrm.dev.azure.com/contoso"),
    ("https://contoso.visualstudio.com", "https://contoso.vsrm.visualstudio.com"),
    ("https://contoso.vsrm.visualstudio.com", "https://contoso.vsrm.visualstudio.com"),
    ("https://tfs.contoso.local/tfs/DefaultCollection", "https://tfs.contoso.local/tfs/DefaultCollection"),
    ("http://127.0.0.1:7081/contoso", "http://127.0.0.1:7081/contoso"),
])
def test_the_release_service_lives_on_the_vsrm_host(given: str, base: str) -> None:
    assert ado.release_base(given) == base


@pytest.mark.parametrize("given", ["http://dev.azure.com/contoso", "ftp://dev.azure.com/x", "dev.azure.com/contoso",
                                   "https://dev.azure.com/contoso?x=1", "https://"])
def test_urls_that_would_leak_or_mislead_are_refused(given: str) -> None:
    with pytest.raises(ValueError):
        ado.release_base(given)


@pytest.mark.parametrize("argv", [
    ["import", "ado", "def.json", "--from-org", "https://dev.azure.com/c", "--project", "P", "--definition-id", "1"],
    ["import", "ado", "--from-org", "https://dev.azure.com/c", "--definition-id", "1"],
    ["import", "ado", "def.json", "--project", "P"],
    ["import", "ado"],
])
def test_arguments_that_do_not_go_together_are_refused(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ado.PAT_VARIABLE, "secret-pat")
    with pytest.raises(ValueError) as refused:
        ado._document(build_parser().parse_args(argv))
    assert "secret-pat" not in str(refused.value)
