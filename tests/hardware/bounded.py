"""``within(seconds, fn, *args)``: call a device method that must not block, and fail if it does.

A driver that hangs on a flooding device would hang the test too; the call runs in a daemon
thread so the test can report the hang instead of waiting for the suite's timeout.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


def within(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``'s result (or its exception, re-raised); an AssertionError if it runs past ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run, name=f"within-{getattr(fn, '__name__', 'call')}", daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")
