"""Step logs on Azurite: a step that takes one run writes its log in one call; one that looks again appends;
a log written whole that gets more lines after all keeps every line, in order."""

from __future__ import annotations

import uuid

from local.azurite import Azurite
from local.storage_policies import CountingPolicy
from shared.adapters.blob_logs import BlobLogs
from shared.adapters.storage_clients import StorageClients
from shared.config import Settings


def logs_on(azurite: Azurite) -> tuple[BlobLogs, CountingPolicy]:
    counter = CountingPolicy({f"127.0.0.1:{port}": name for name, port in azurite.ports.items()})
    clients = StorageClients(Settings(storage_connection=azurite.connection_string), policies=[counter])
    logs = BlobLogs(clients, f"l{uuid.uuid4().hex[:12]}")
    assert logs.container is not None  # created before counting
    counter.reset()
    return logs, counter


def test_a_step_of_one_run_writes_its_log_in_one_call(azurite: Azurite) -> None:
    logs, counter = logs_on(azurite)
    logs.append("1/1/Dev/1/0.log", ["--- run 1 ---", "=> succeeded: done"], new=True, whole=True)
    assert counter.total == 1
    assert logs.read("1/1/Dev/1/0.log") == "--- run 1 ---\n=> succeeded: done\n"


def test_a_step_that_looks_again_appends_one_call_per_run(azurite: Azurite) -> None:
    logs, counter = logs_on(azurite)
    logs.append("d.log", ["run 1: deploying"], new=True)
    logs.append("d.log", ["run 2: still deploying"])
    logs.append("d.log", ["run 3: deployed"], whole=True)
    assert counter.total == 4  # create, then one append per run
    assert logs.read("d.log") == "run 1: deploying\nrun 2: still deploying\nrun 3: deployed\n"


def test_a_log_written_whole_that_gets_more_lines_keeps_them_all(azurite: Azurite) -> None:
    logs, _ = logs_on(azurite)
    logs.append("s.log", ["run 1: swapped", "=> succeeded"], new=True, whole=True)
    logs.append("s.log", ["=> stopped: nothing to stop"])  # a stop after the step ended
    logs.append("s.log", ["run 2 (its host died before recording run 1)"], new=True, whole=True)
    assert logs.read("s.log") == ("run 1: swapped\n=> succeeded\n=> stopped: nothing to stop\n"
                                  "run 2 (its host died before recording run 1)\n")
