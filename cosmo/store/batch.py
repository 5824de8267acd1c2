"""``BatchWriter``: many small writes turned into few transactions.

Theory of operation
-------------------
At high call rates, one transaction per CDR or per event costs more than the
write itself (a WAL sync on SQLite, a round trip on PostgreSQL).  Producers
call :meth:`BatchWriter.add`, which only appends to a list and never blocks.
One background task waits for the first row, then for ``max_delay`` seconds
or until ``max_rows`` rows are waiting, whichever comes first, and hands the
whole batch to the *sink* (for example ``CdrRepository.add_many``) in one
call.  A sink failure is logged and the batch is put back in front to be
retried after a back-off, so a database hiccup loses nothing; past
``max_pending`` rows the oldest are dropped with an error in the log rather
than letting memory grow without bound.  ``close()`` lets a write in progress
finish, then flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from cosmo.store.errors import WriterClosed

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF_S = 5.0


class BatchWriter(Generic[T]):
    """Collects rows in memory and writes them with ``sink`` in batches.

    :param sink: writes one batch in one transaction; called from one task at a time.
    :param max_rows: a batch is written as soon as this many rows wait.
    :param max_delay: seconds the first waiting row may wait before its batch is written.
    :param max_pending: rows kept while the sink keeps failing; older ones are dropped.
    :param name: names the writer in logs and its task.
    """

    def __init__(
        self,
        sink: Callable[[Sequence[T]], Awaitable[object]],
        *,
        max_rows: int = 500,
        max_delay: float = 0.2,
        max_pending: int = 100_000,
        name: str = "batch-writer",
    ) -> None:
        if max_rows < 1 or max_delay < 0 or max_pending < max_rows:
            raise ValueError("need max_rows >= 1, max_delay >= 0 and max_pending >= max_rows")
        self._sink = sink
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._max_pending = max_pending
        self._name = name
        self._rows: list[T] = []
        self._has_rows = asyncio.Event()
        self._full = asyncio.Event()
        self._stopping = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        """Rows written so far."""
        self.dropped = 0
        """Rows dropped because the sink kept failing."""
        self.failures = 0
        """Failed sink calls so far."""

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    async def start(self) -> None:
        """Start the background task.  Safe to call more than once."""
        if self._closing:
            raise WriterClosed(f"{self._name} is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    def add(self, row: T) -> None:
        """Queue one row; never blocks.  Raises :class:`WriterClosed` after ``close()``."""
        if self._closing:
            raise WriterClosed(f"{self._name} is closed")
        self._rows.append(row)
        self._has_rows.set()
        if len(self._rows) >= self._max_rows:
            self._full.set()

    def add_many(self, rows: Sequence[T]) -> None:
        """Queue several rows; never blocks."""
        for row in rows:
            self.add(row)

    async def flush(self) -> None:
        """Write everything waiting now, and return when it is written (or has failed)."""
        while self._rows:
            if not await self._write_once():
                return

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking rows, write the rest, stop the task.  Safe to call more than once.

        A write in progress is allowed to finish (cancelling a database call
        half-way can cost the connection); after ``timeout`` seconds the task
        is cancelled and its batch kept for the final flush.
        """
        if self._closing and self._task is None:
            return
        self._closing = True
        self._stopping.set()
        self._rearm()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.warning("%s: still writing after %.1f s; cancelling", self._name, timeout)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.flush()
        if self._rows:
            self.dropped += len(self._rows)
            log.error("%s: %d rows could not be written at close", self._name, len(self._rows))
            self._rows.clear()

    async def _run(self) -> None:
        backoff = self._max_delay or 0.05
        while not self._closing:
            await self._has_rows.wait()
            if self._closing:
                break
            if not self._full.is_set() and self._max_delay > 0:
                try:
                    await asyncio.wait_for(self._full.wait(), self._max_delay)
                except TimeoutError:
                    pass
            if await self._write_once():
                backoff = self._max_delay or 0.05
            else:
                try:
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _write_once(self) -> bool:
        """Write up to ``max_rows`` waiting rows; ``False`` when the sink failed."""
        async with self._write_lock:
            batch = self._rows[: self._max_rows]
            del self._rows[: len(batch)]
            self._rearm()
            if not batch:
                return True
            try:
                await self._sink(batch)
            except asyncio.CancelledError:
                self._rows[:0] = batch
                self._rearm()
                raise
            except Exception:  # The root of the writer's work: any sink failure is retried.
                self.failures += 1
                self._rows[:0] = batch
                overflow = len(self._rows) - self._max_pending
                if overflow > 0:
                    del self._rows[:overflow]
                    self.dropped += overflow
                    log.error("%s: dropped the %d oldest rows, the sink keeps failing", self._name, overflow)
                self._rearm()
                log.exception("%s: writing %d rows failed; will retry", self._name, len(batch))
                return False
            self.written += len(batch)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: wrote %d rows, %d pending", self._name, len(batch), len(self._rows))
            return True

    def _rearm(self) -> None:
        """Set the task's wake-up events from the rows waiting (both stay set once closing)."""
        if self._rows or self._closing:
            self._has_rows.set()
        else:
            self._has_rows.clear()
        if len(self._rows) >= self._max_rows or self._closing:
            self._full.set()
        else:
            self._full.clear()
