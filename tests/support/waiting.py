"""Waiting in a test for a state the fleet reaches asynchronously (polling the real store or API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout_s: float = 30) -> T:
    """`check()`'s first truthy result; fails the test if none comes within `timeout_s`."""
    end = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < end, "the expected state was not reached"
        time.sleep(0.1)
    return result
