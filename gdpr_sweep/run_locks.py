"""The tenant locks one command holds: taken as it reaches each tenant, let go when done.

`RunLocks` is what `run` and `apply` use: `take(name)` takes a tenant's lock (waiting
up to `--wait-lock`), and says False when another process holds it — that tenant is
reported "locked" and the others are swept; `release(name)` lets it go as soon as its
batches and recount are done. `writing()` is for the commands that must hold every
tenant they touch from the start (`erase`, `replay`, `hold add/release`,
`audit rotate-key`): the state lock (shared, or exclusive for a rotation) and each
tenant's lock, or LockHeld (exit 4). The locks themselves: `state/lock.py` and
`state/tenant_lock.py`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

from .errors import LockHeld
from .state.lock import Stoppable, sweep_lock
from .state.store import StateStore
from .state.tenant_lock import HeldLock


class RunLocks:
    """The tenant locks of one run (thread-safe: `--jobs` takes them from threads)."""

    def __init__(
        self, store: StateStore, wait: float | None = None, stop: Stoppable | None = None
    ) -> None:
        self.store, self.wait, self.stop = store, wait, stop
        self._held: dict[str, HeldLock] = {}
        self._mutex = threading.Lock()
        self.locked: list[str] = []  # tenants another process held (after `wait`)

    def take(self, name: str) -> bool:
        try:
            lock = self.store.locks.take("tenant", name, self.wait, self.stop)
        except LockHeld:
            with self._mutex:
                self.locked.append(name)
            return False
        with self._mutex:
            self._held[name] = lock
        return True

    def release(self, name: str) -> None:
        with self._mutex:
            lock = self._held.pop(name, None)
        if lock is not None:
            lock.release()

    def still_held(self, name: str) -> bool:
        """Whether this run still holds `name`'s lock (False when the lock connection
        to the state database dropped: another process may have taken it since)."""
        with self._mutex:
            lock = self._held.get(name)
        return lock is not None and lock.still_held()

    def release_all(self) -> None:
        for name in list(self._held):
            self.release(name)

    def __enter__(self) -> RunLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release_all()


@contextlib.contextmanager
def writing(
    store: StateStore,
    tenants: Iterable[str],
    wait: float | None = None,
    stop: Stoppable | None = None,
    exclusive: bool = False,
) -> Iterator[None]:
    """Hold the state lock (shared; `exclusive` for a key rotation) and the lock of
    every tenant in `tenants` (in name order), or raise LockHeld (exit 4)."""
    with (
        sweep_lock(store.engine, store.url, wait=wait, stop=stop, shared=not exclusive),
        RunLocks(store, wait, stop) as locks,
    ):
        for name in sorted(set(tenants)):
            if not locks.take(name):
                raise LockHeld(
                    f"database {name}: another gdpr-sweep is writing it (tenant lock)"
                    + (f" after waiting {wait:g} s" if wait else "")
                )
        yield
