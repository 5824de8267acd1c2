"""One media clock for the whole process.

Every player, recorder and relay housekeeping job runs from a single 20 ms
schedule instead of a sleeping task per call: the clock keeps absolute
deadlines (``start + k * interval``), so it never drifts, and one callback
per tick walks every subscriber.  A late tick (the loop was busy) is run at
once and the schedule stays on its grid; ticks more than ``max_catch_up``
intervals behind are skipped and counted, so a stall never bursts audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Tick = Callable[[int], None]


@dataclass(slots=True)
class ClockStats:
    """How the clock kept time."""

    ticks: int = 0
    late_ticks: int = 0  # run after their deadline by more than a quarter interval
    skipped_ticks: int = 0
    max_lateness_ms: float = 0.0
    subscriber_errors: int = 0


class Subscription:
    """A subscriber's place on the clock; :meth:`cancel` removes it."""

    __slots__ = ("_clock", "active", "callback")

    def __init__(self, clock: MediaClock, callback: Tick) -> None:
        self._clock = clock
        self.callback = callback
        self.active = True

    def cancel(self) -> None:
        """Stop receiving ticks (idempotent; safe from inside a tick)."""
        if self.active:
            self.active = False
            self._clock._removed += 1


class MediaClock:
    """The shared 20 ms schedule; see the module docstring."""

    def __init__(self, interval: float = 0.020, *, max_catch_up: int = 5) -> None:
        self.interval = interval
        self.max_catch_up = max_catch_up
        self.stats = ClockStats()
        self._subscribers: list[Subscription] = []
        self._removed = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start = 0.0
        self._k = 0

    @property
    def tick_count(self) -> int:
        """Ticks since the clock (re)started."""
        return self._k

    @property
    def subscriber_count(self) -> int:
        """Live subscribers."""
        return len(self._subscribers) - self._removed

    def subscribe(self, callback: Tick) -> Subscription:
        """Call ``callback(tick_number)`` every interval from the next tick on."""
        subscription = Subscription(self, callback)
        self._subscribers.append(subscription)
        if self._handle is None:
            self._begin()
        return subscription

    def close(self) -> None:
        """Stop ticking and drop every subscriber."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for subscription in self._subscribers:
            subscription.active = False
        self._subscribers.clear()
        self._removed = 0

    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._k = 0
        self._handle = self._loop.call_at(self._start + self.interval, self._on_tick)

    def _on_tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        self._k += 1
        deadline = self._start + self._k * self.interval
        lateness = now - deadline
        stats = self.stats
        if lateness > self.interval * self.max_catch_up:
            # The loop stalled: jump to the present instead of bursting frames.
            behind = int(lateness / self.interval)
            self._k += behind
            stats.skipped_ticks += behind
            lateness -= behind * self.interval
        if lateness > self.interval / 4:
            stats.late_ticks += 1
        stats.max_lateness_ms = max(stats.max_lateness_ms, lateness * 1000)
        stats.ticks += 1
        k = self._k
        for subscription in self._subscribers:
            if subscription.active:
                try:
                    subscription.callback(k)
                except Exception:
                    stats.subscriber_errors += 1
                    log.exception("media clock subscriber failed")
        if self._removed > 32 and self._removed * 2 > len(self._subscribers):
            self._subscribers = [s for s in self._subscribers if s.active]
            self._removed = 0
        if self.subscriber_count <= 0:
            self._subscribers.clear()
            self._removed = 0
            self._handle = None
            return
        self._handle = loop.call_at(self._start + (self._k + 1) * self.interval, self._on_tick)
