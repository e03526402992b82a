from azure.data.tables import TableServiceClient


def test_azurite_serves_tables(storage_connection: str, unique: str) -> None:
    service = TableServiceClient.from_connection_string(storage_connection)
    table = service.create_table(f"T{unique}")
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "value": 7})
    assert table.get_entity("p", "r")["value"] == 7


def test_a_timer_delayed_close_to_seven_days_lives_a_week_after_it_wakes(storage_connection: str,
                                                                         unique: str) -> None:
    from urllib.parse import parse_qs, urlsplit

    from shared.adapters.queue_bus import MAX_DELAY, QueueBus
    from shared.adapters.storage_clients import StorageClients
    from shared.config import Settings

    sent: list[dict[str, list[str]]] = []

    class Capture:
        def on_request(self, request: object) -> None:
            sent.append(parse_qs(urlsplit(request.http_request.url).query))  # type: ignore[attr-defined]

    bus = QueueBus(StorageClients(Settings(storage_connection=storage_connection), [Capture()]))
    bus.send(f"timers{unique}", "wake me", delay_seconds=MAX_DELAY)
    put = [q for q in sent if "visibilitytimeout" in q][-1]
    visible, ttl = int(put["visibilitytimeout"][0]), int(put["messagettl"][0])
    assert visible == MAX_DELAY and ttl - visible >= 7 * 24 * 3600  # Azurite accepted it: a week after waking
