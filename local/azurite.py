"""Start and stop Azurite (the Azure Storage emulator from npm) for the local stack and tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and accepted only by the emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://[\d.]+:(\d+)")


_DECLARED = re.compile(r"for (container|queue|table) in \[([^\]]*)\]")


def provisioned(bicep: str) -> dict[str, list[str]]:
    """The names a Bicep file's `for container|queue|table in [...]` loops create (literal names only: a
    name given by a variable is the app's own deployment container, which the app never uses)."""
    found: dict[str, list[str]] = {"container": [], "queue": [], "table": []}
    for kind, names in _DECLARED.findall(bicep):
        found[kind] += re.findall(r"'([A-Za-z0-9-]+)'", names)
    return found


class AzuriteNotInstalled(RuntimeError):
    """node_modules/.bin/azurite is missing: run `npm install` at the repository root."""


class Azurite:
    """One Azurite process with blob, queue and table services.

    Ports default to 0 (free ports, read back from Azurite's output) so that parallel test
    runs never collide. With `location`, data persists on disk; otherwise it lives in memory.
    """

    def __init__(self, *, location: Path | None = None, blob_port: int = 0, queue_port: int = 0,
                 table_port: int = 0, host: str = "127.0.0.1") -> None:
        self.location = location
        self.host = host
        self.requested = {"blob": blob_port, "queue": queue_port, "table": table_port}
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[str] | None = None

    @staticmethod
    def executable() -> Path:
        exe = Path(os.environ.get("AZURITE_BIN", REPO / "node_modules" / ".bin" / "azurite"))
        if not exe.exists():
            raise AzuriteNotInstalled(f"{exe} not found: run `npm install` in {REPO}")
        return exe

    def start(self, timeout: float = 60.0) -> Azurite:
        args = [str(self.executable()), "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--loose",
                "--blobHost", self.host, "--queueHost", self.host, "--tableHost", self.host,
                "--blobPort", str(self.requested["blob"]), "--queuePort", str(self.requested["queue"]),
                "--tablePort", str(self.requested["table"]),
                # Azurite closes a keep-alive connection after 5 idle seconds (its own default), and a
                # client that reuses a pooled connection just as it closes gets "connection reset": a
                # POST (a table insert) is not retried by azure-core, so an idle moment failed a write.
                # Azure's front ends keep idle connections for minutes (Azure Load Balancer's default
                # idle timeout is 4 minutes): so does the local stack.
                "--blobKeepAliveTimeout", "240", "--queueKeepAliveTimeout", "240",
                "--tableKeepAliveTimeout", "240"]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True)
        output: list[str] = []
        timer = threading.Timer(timeout, self.stop)
        timer.start()
        try:
            assert self._proc.stdout is not None
            while len(self.ports) < 3:
                line = self._proc.stdout.readline()
                if not line:
                    break
                output.append(line)
                if m := _LISTENING.search(line):
                    self.ports[m[1].lower()] = int(m[2])
        finally:
            timer.cancel()
        if len(self.ports) < 3:
            self.stop()
            raise RuntimeError("Azurite did not start:\n" + "".join(output[-20:]))
        # Keep draining output so Azurite never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def provision(self, bicep: Path = REPO / "infra" / "app" / "storage.bicep") -> None:
        """Create the containers, queues and tables the deployment creates (`infra/app/storage.bicep` declares
        them, read from that file so the two never differ): a freshly deployed Slipway finds them there, and so
        does the local stack. (The app still creates one it finds missing, as after a manual deletion.)"""
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        declared = provisioned(bicep.read_text())
        blobs = BlobServiceClient.from_connection_string(self.connection_string)
        queues = QueueServiceClient.from_connection_string(self.connection_string)
        tables = TableServiceClient.from_connection_string(self.connection_string)
        existing = {c.name for c in blobs.list_containers()}
        for name in declared["container"]:
            if name not in existing:
                blobs.create_container(name)
        existing = {q.name for q in queues.list_queues()}
        for name in declared["queue"]:
            if name not in existing:
                queues.create_queue(name)
        for name in declared["table"]:
            tables.create_table_if_not_exists(name)

    def _drain(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdout is not None:
            for _ in proc.stdout:
                pass

    @property
    def credential(self) -> dict[str, str]:
        """The account's shared key, as the storage SDKs take it (what the emulators use to read blobs)."""
        return {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}

    @property
    def connection_string(self) -> str:
        base = f"http://{self.host}"
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={base}:{self.ports['blob']}/{ACCOUNT};"
                f"QueueEndpoint={base}:{self.ports['queue']}/{ACCOUNT};"
                f"TableEndpoint={base}:{self.ports['table']}/{ACCOUNT};")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
