"""A thin driver that runs a :class:`~cosmo.acd.router.Router` on an injected clock and timer.

The router is sans-I/O: every call takes ``now`` and the router only *says*
when it next needs :meth:`~cosmo.acd.router.Router.handle_timer`.  This
driver does the rest: it reads ``now`` from ``clock`` (POSIX time by default,
so event stamps and stored enqueue times share one clock), hands every
call's events to ``sink``, and keeps exactly one timer armed for the next
deadline through ``scheduler.call_later``.  An asyncio event loop is a
:class:`Scheduler` as it is; nothing here imports asyncio or starts a task.

    clocked = ClockedRouter(router, loop, publish_and_store)
    clocked.run(lambda now: router.add_item(item, now))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cosmo.acd.events import AcdEvent
from cosmo.acd.router import Router

__all__ = ["ClockedRouter", "Scheduler", "TimerHandle"]


class TimerHandle(Protocol):
    """What ``call_later`` returns (``asyncio.TimerHandle`` fits)."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What the driver needs of an event loop (``asyncio.AbstractEventLoop`` fits)."""

    def call_later(self, delay: float, callback: Callable[[], object], /) -> TimerHandle: ...


class ClockedRouter:
    """Runs router calls at ``clock()`` time, sends their events to ``sink``, keeps one timer armed."""

    def __init__(
        self,
        router: Router,
        scheduler: Scheduler,
        sink: Callable[[list[AcdEvent]], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self._scheduler = scheduler
        self._sink = sink
        self._clock = clock
        self._handle: TimerHandle | None = None
        self._armed_for: float | None = None

    @property
    def armed_for(self) -> float | None:
        """The deadline the armed timer is for (``None``: no timer)."""
        return self._armed_for

    def run(self, call: Callable[[float], list[AcdEvent]]) -> list[AcdEvent]:
        """``call(now)`` on the router; its events go to the sink and are returned.

        The timer is re-armed even when the call raises (the router may have
        processed deadlines before refusing).
        """
        try:
            events = call(self._clock())
        finally:
            self._arm()
        self._sink(events)
        return events

    def close(self) -> None:
        """Cancel the timer (idempotent)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_for = None

    def _arm(self) -> None:
        deadline = self.router.next_deadline()
        if deadline == self._armed_for:
            return
        self.close()
        if deadline is not None:
            self._armed_for = deadline
            self._handle = self._scheduler.call_later(max(0.0, deadline - self._clock()), self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_for = None
        self.run(self.router.handle_timer)
