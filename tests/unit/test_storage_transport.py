"""The storage clients' session reads proxies from the environment only when the environment sets one."""

from __future__ import annotations

import pytest

from shared.adapters import storage_clients


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.lower() in storage_clients.ENVIRONMENT_SETTINGS:
            monkeypatch.delenv(name)


def test_without_a_proxy_in_the_environment_the_session_does_not_scan_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxies(monkeypatch)
    assert storage_clients._transport().session.trust_env is False


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "REQUESTS_CA_BUNDLE"])
def test_a_proxy_or_ca_bundle_in_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    clear_proxies(monkeypatch)
    monkeypatch.setenv(name, "http://proxy.contoso.example:3128" if "proxy" in name.lower() else "/etc/ca.pem")
    assert storage_clients._transport().session.trust_env is True
