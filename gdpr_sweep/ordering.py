"""One topological order for every "this before that" the tool needs (Kahn's algorithm).

Tables ordered so each comes after those it is found from (the subject graph), or
after those whose rows refer to it (deleting without breaking a foreign key). In a
cycle nothing is ready: the first remaining item, in the order given, goes next — the
caller's given order is its tie-break and its cycle-breaker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def dependencies_first(
    items: Sequence[T], depends_on: Callable[[T], Iterable[int]], done: Iterable[int] = ()
) -> list[T]:
    """Order `items` so each comes after every item (by `id`) it depends on.

    `depends_on(item)` names dependencies by `id()`; those that are not among `items`
    (or are in `done`, already placed) are satisfied.
    """
    ids = {id(item) for item in items}
    waiting = {id(item): set(depends_on(item)) & ids - {id(item)} for item in items}
    placed = set(done)
    order: list[T] = []
    remaining = list(items)
    while remaining:
        chosen = next((t for t in remaining if waiting[id(t)] <= placed), remaining[0])
        order.append(chosen)
        placed.add(id(chosen))
        remaining.remove(chosen)
    return order
