"""How a sweep runs and when it stops: its options, a stop request, its time window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .approval import Approval


class StopRequest:
    """A request from outside (a signal handler, another thread) to stop a sweep.

    Setting it never interrupts a statement: every executor finishes (commits or rolls
    back) its current batch and starts no other; the run is recorded `stopped` with
    the reason, and the next run carries on where it stopped.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.signal: str | None = None

    def request(self, reason: str, signal_name: str | None = None) -> None:
        if not self.event.is_set():
            self.reason, self.signal = reason, signal_name
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs: guards, parallelism and its nightly window."""

    force: bool = False
    jobs: int = 1
    max_runtime: float | None = None  # seconds; stop cleanly between batches after it
    pause: float = 0.0  # seconds to sleep after each batch
    stop: StopRequest | None = None  # set from outside: stop between batches
    wait_lock: float | None = None  # seconds to wait for each lock (None: exit 4 at once)
    shard: tuple[int, int] | None = None  # --shard I/N: only the tenants of shard I of N
    # Called under the lock once the guards passed, before anything changes: the CLI
    # checks there that the files it will write can be written (exit 2 if not), so a
    # lock held (4) or a guard (5) is reported as such, and a bad path changes nothing.
    preflight: Callable[[], None] | None = None
    approval: Approval = field(default_factory=Approval)  # --ticket, --approved-by


class SweepWindow:
    """The time a sweep may take; when it is up every executor stops before its next batch."""

    def __init__(self, seconds: float | None, stop: StopRequest | None = None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.stopped = threading.Event()
        self.stop = stop

    def is_up(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped.set()
        if self.stop is not None and self.stop.is_set():
            self.stopped.set()
        return self.stopped.is_set()

    @property
    def signalled(self) -> bool:
        return self.stop is not None and self.stop.is_set()


class TenantWindow(SweepWindow):
    """One tenant's view of the sweep's window: also up when this run no longer holds
    the tenant's lock (its lock connection to the state database dropped, so the server
    freed the lock and another process may take the tenant): stop before the next batch.
    It shares the run's deadline and stop."""

    def __init__(self, window: SweepWindow, lock_held: Callable[[], bool]) -> None:
        self.deadline, self.stopped, self.stop = window.deadline, window.stopped, window.stop
        self.lock_held = lock_held
        self.lock_lost = False

    def is_up(self) -> bool:
        if super().is_up():
            return True
        if not self.lock_lost and not self.lock_held():
            self.lock_lost = True
        return self.lock_lost
