"""Mail out: Azure Communication Services Email in Azure (identity-based), SMTP locally."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

from shared.config import Settings

logger = logging.getLogger(__name__)


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.email_sender or "slipway@localhost"
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(message)


class AcsMailer:
    """`azure-communication-email` with the managed identity; the SDK loads on first mail."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        if self._client is None:
            from azure.communication.email import EmailClient
            from azure.identity import ManagedIdentityCredential

            credential = ManagedIdentityCredential(client_id=self.settings.managed_identity_client_id or None)
            self._client = EmailClient(self.settings.email_endpoint, credential)
        poller = self._client.begin_send({
            "senderAddress": self.settings.email_sender,
            "recipients": {"to": [{"address": a} for a in to]},
            "content": {"subject": subject, "plainText": text, "html": html},
        })
        poller.result()


class LogMailer:
    """No mail configured: say so in the log, never fail a release over it."""

    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        logger.warning("no mail configured; would send '%s' to %s", subject, ", ".join(to))
