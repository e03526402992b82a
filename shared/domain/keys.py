"""Storage keys never hold raw user text (`/ \\ # ?` and control characters are not allowed)."""

from __future__ import annotations

import hashlib


def key_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
