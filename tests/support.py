"""Helpers shared by the test tiers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], what: str = "the condition", timeout: float = 30.0) -> T:
    """Poll ``condition`` until it gives a true value, and return that value.

    ``timeout`` is a safety net against a test hanging, never a wait for something to happen: a test
    says what it waits for, so a slow machine only makes it slower.
    """
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"still not true after {timeout:g}s: {what}"
        time.sleep(0.01)
