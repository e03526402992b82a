"""Sends queue messages (base64, as the Functions queue trigger expects), delayed when asked."""

from __future__ import annotations

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.storage_clients import StorageClients

MAX_DELAY = 7 * 24 * 3600 - 60
"""Queue visibility is capped at 7 days; longer timers re-arm when they wake up."""
DEFAULT_TTL = 7 * 24 * 3600


class QueueBus:
    def __init__(self, clients: StorageClients) -> None:
        self.clients = clients

    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        client = self.clients.queue(queue)
        delay = max(0, min(int(round(delay_seconds)), MAX_DELAY))
        # A message lives 7 days by default, counted from when it was sent, not from when it becomes
        # visible (Put Message, `messagettl`): a timer delayed close to 7 days would expire a minute
        # after it woke. Give it its delay plus the usual 7 days to be handled.
        ttl = delay + DEFAULT_TTL
        try:
            client.send_message(body, visibility_timeout=delay or None, time_to_live=ttl)
        except ResourceNotFoundError:
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            client.send_message(body, visibility_timeout=delay or None, time_to_live=ttl)
