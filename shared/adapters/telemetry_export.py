"""Sends the app's telemetry to Application Insights when the platform configured it; the events
themselves are `shared/telemetry.py`'s."""

from __future__ import annotations

import logging
import os
import threading

_configured = threading.Event()


def configure() -> None:
    """Redact secrets from every log record, and send telemetry to Application Insights when the
    platform configured it (once per process)."""
    from shared import redaction

    redaction.install()
    if _configured.is_set() or not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return
    _configured.set()
    try:
        from azure.identity import ManagedIdentityCredential
        from azure.monitor.opentelemetry import configure_azure_monitor

        client_id = os.environ.get("SLIPWAY_MANAGED_IDENTITY_CLIENT_ID") or None
        configure_azure_monitor(credential=ManagedIdentityCredential(client_id=client_id), logger_name="slipway")
        redaction.install(logging.getLogger("slipway"))
    except Exception:  # telemetry must never stop a release
        logging.getLogger(__name__).exception("could not configure Azure Monitor telemetry")
