"""The one TLS context every outbound httpx call shares still verifies what httpx's own default does."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor

from shared.adapters import tls


def test_one_context_for_the_process_even_when_asked_for_at_once() -> None:
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: tls.context(), range(32)))
    assert all(c is got[0] for c in got)


def test_it_verifies_certificates_and_host_names() -> None:
    ctx = tls.context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded: public certificates verify
