"""Small helpers for the background tasks of Cosmo's services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTasks", "cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (when there is one) and wait until it has finished: its
    ``finally`` blocks have run when this returns.  An exception the task ended
    with is raised here."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BackgroundTasks:
    """The fire-and-forget tasks of one service: kept referenced while they run (the
    event loop holds only weak references), a failure logged as it happens, all
    cancelled and awaited by :meth:`close`."""

    def __init__(self, log: logging.Logger, what: str = "task") -> None:
        self._log = log
        self._what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, object], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in a task of this set."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s %s failed", self._what, task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        """Cancel every task and wait until all have finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
