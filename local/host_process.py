"""The local Functions host in a process of its own, apart from Azurite and the emulators: what a
crash test kills with SIGKILL and starts again on the same storage, as a worker of the real host
dies (an out-of-memory kill, a scale-in, a platform restart) while its messages are in flight.

`HostProcess(settings).start()` runs `python -m local.host_process` with the settings in its
environment and waits until it answers; `kill()` kills it by pid without warning; `start()` again
brings up a fresh one on the same port. The child is the same `FunctionsHost` the stack runs in
process, with Table Storage's limits enforced as the stack enforces them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from local.azurite import REPO

READY = "slipway host ready at "


class HostProcess:
    def __init__(self, settings: dict[str, str], *, http_port: int, max_polling_interval: float | None = None,
                 log: Path | None = None) -> None:
        self.settings, self.http_port = dict(settings), http_port
        self.max_polling_interval = max_polling_interval
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.starts = 0

    def start(self, timeout: float = 60.0) -> HostProcess:
        env = {**os.environ, "SLIPWAY_HOST_SETTINGS": json.dumps(self.settings),
               "SLIPWAY_HOST_PORT": str(self.http_port),
               "SLIPWAY_HOST_POLLING": "" if self.max_polling_interval is None else str(self.max_polling_interval)}
        out = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen([sys.executable, "-m", "local.host_process"], cwd=REPO, env=env,
                                        stdout=subprocess.PIPE, stderr=out, text=True)
        ready = threading.Event()

        def watch() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                if line.startswith(READY):
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the host process did not start (exit {self.process.poll()}); see {self.log}")
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL by pid: no handler runs, no message is settled, no connection is closed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def main() -> None:
    from local.functions_host import FunctionsHost
    from local.host_settings import load_local_settings
    from local.storage_policies import TableLimitsPolicy
    from shared import bootstrap

    settings = json.loads(os.environ["SLIPWAY_HOST_SETTINGS"])
    os.environ.update(load_local_settings(REPO))
    os.environ.update(settings)
    bootstrap.use(bootstrap.build(storage_policies=[TableLimitsPolicy()]))  # before any function runs
    polling = os.environ.get("SLIPWAY_HOST_POLLING")
    host = FunctionsHost(REPO, http_port=int(os.environ["SLIPWAY_HOST_PORT"]), settings_overrides=settings,
                         max_polling_interval=float(polling) if polling else None)
    host.start()
    print(READY + host.base_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    host.stop()


if __name__ == "__main__":
    main()
