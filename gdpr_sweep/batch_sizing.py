"""Batch sizes: fixed (`batch_size = 5000`) or adaptive (`batch_size = "auto"`).

The adaptive size aims each batch at `batch_time` (like pt-online-schema-change's
`--chunk-time`): after every batch the next size is the keys per second the last batch
achieved times the target, at most twice the last size (growth is cautious: a bigger
batch may meet colder pages or more locks) and at least a tenth of it; a batch that took
longer than the target shrinks the next one in the same proportion at once. Sizes are
rounded to two significant digits (a handful of distinct statements, readable audit
trails) and kept within [MIN_BATCH_SIZE, MAX_BATCH_SIZE] (MAX_HASH_BATCH_SIZE for a
rule with `hash` columns, whose batch is held in memory). The first batch has the
fixed default size, a safe start on any table.
"""

from __future__ import annotations

import math
from typing import Literal

MIN_BATCH_SIZE = 100
MAX_BATCH_SIZE = 1_000_000
#: `hash` columns: a batch's inputs are read into memory to compute the pseudonyms.
MAX_HASH_BATCH_SIZE = 20_000
FIRST_AUTO_BATCH_SIZE = 5000
MAX_GROWTH = 2.0
MAX_SHRINK = 10.0


class BatchSizer:
    """The size of the next batch; `record` what the last one took."""

    def __init__(
        self,
        batch_size: int | Literal["auto"],
        batch_time: float,
        largest: int = MAX_BATCH_SIZE,
    ) -> None:
        self.adaptive = batch_size == "auto"
        self.size = FIRST_AUTO_BATCH_SIZE if batch_size == "auto" else int(batch_size)
        self.target = batch_time
        self.ceiling = largest
        self.largest = self.size

    def record(self, seconds: float) -> None:
        """The last batch, of `size` pinned keys (or the last few), took `seconds`
        (its statements and commit: how long it held its locks)."""
        if not self.adaptive:
            return
        rate = self.target / seconds if seconds > 0 else MAX_GROWTH
        wanted = min(self.size * rate, self.size * MAX_GROWTH)
        wanted = max(wanted, self.size / MAX_SHRINK)
        self.size = max(MIN_BATCH_SIZE, min(self.ceiling, _two_digits(wanted)))
        self.largest = max(self.largest, self.size)


def first_batch_size(batch_size: int | Literal["auto"]) -> int:
    """The size of the first batch (what `plan --sql` shows)."""
    return FIRST_AUTO_BATCH_SIZE if batch_size == "auto" else int(batch_size)


def _two_digits(value: float) -> int:
    if value < 1:
        return 1
    scale = 10 ** max(0, math.floor(math.log10(value)) - 1)
    return int(value // scale * scale)
