"""Fixtures shared by every test: one in-memory Azurite per test session."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.azurite import Azurite  # noqa: E402


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running Azurite; every test names its own tables, queues and containers."""
    with Azurite() as running:
        yield running


@pytest.fixture
def storage_connection(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def unique() -> str:
    """A short random suffix that is valid in table, queue and container names."""
    return uuid.uuid4().hex[:10]
