# SPDX-License-Identifier: Apache-2.0
"""Waiting for a condition in a test: poll it with a deadline, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(cond: Callable[[], Any], what: str = "the condition", timeout: float = 10.0) -> Any:
    """Call cond until it returns something true, and return that; fail naming `what` once
    `timeout` seconds have passed without it."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.0005)
