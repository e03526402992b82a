from azure.data.tables import TableServiceClient


def test_azurite_serves_tables(storage_connection: str, unique: str) -> None:
    service = TableServiceClient.from_connection_string(storage_connection)
    table = service.create_table(f"T{unique}")
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "value": 7})
    assert table.get_entity("p", "r")["value"] == 7
