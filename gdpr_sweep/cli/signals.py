"""Stopping cleanly: SIGTERM and Ctrl-C ask a sweep to stop after its current batch."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sweep_options import StopRequest


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C ask the sweep to stop after its current batch.

    A second Ctrl-C interrupts at once (the open batch's transaction rolls back). Only
    in the main thread, where Python delivers signals.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.request("signal", name)
        sys.stderr.write(f"gdpr-sweep: {name}: stopping after the current batch\n")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
