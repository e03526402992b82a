"""Taking turns within this process, per key, for writers that would otherwise lose to each other.

Azure runs a Python app's concurrent invocations on the threads of one worker process (the worker's
synchronous thread pool, PYTHON_THREADPOOL_THREAD_COUNT: Azure/azure-functions-python-worker#744; one
worker process per instance unless FUNCTIONS_WORKER_PROCESS_COUNT says otherwise). A burst of creations
for one definition all write its head: racing, all but one lose their ETag-guarded write and read and
write again, each loss three storage operations. Taken in turns, the process's own writers never lose
to each other; other instances still race, and the ETag still decides between them. A turn not given
within `wait_seconds` is taken anyway (the ETag keeps it correct, only dearer), so a stuck writer never
stops the others.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class Serial:
    def __init__(self, wait_seconds: float = 10.0) -> None:
        self.wait_seconds = wait_seconds
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def turn(self, key: Hashable) -> Iterator[None]:
        """Wait for `key`'s turn (at most `wait_seconds`), and hold it for the block."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        held = lock.acquire(timeout=self.wait_seconds)
        try:
            yield
        finally:
            if held:
                lock.release()
