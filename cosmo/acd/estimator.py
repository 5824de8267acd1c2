"""Estimated wait, handle times and service level per queue, from the router's events.

Two estimators, for two questions:

* **How long will this caller wait?**  :func:`queue_length_wait`, the
  queue-length predictor (Whitt, "Improving service by informing customers
  about anticipated delays", Management Science 45(2), 1999): with ``N``
  agents busy, the caller at place ``k`` waits on average for ``k`` service
  completions, which come at rate ``N / AHT``, so ``k × AHT / N``.  It uses
  the backlog as it is now and so follows bursts that a steady-state formula
  averages away; it is the one announcements and ``estimated_wait_s`` use.
* **What wait does this staffing give on average?**  :func:`erlang_c` and
  :func:`erlang_c_wait` (M/M/N): the probability of waiting and the mean wait
  for an arrival rate and handle time.  For staffing and reports; it knows
  nothing of the current queue.

Agents shared between queues are counted fractionally
(:attr:`~cosmo.acd.router.QueueStatus.agents_effective`: an agent serving
``k`` queues with work waiting counts ``1/k`` in each), a documented
approximation of skills-based routing.

:class:`QueueStatistics` keeps, over a sliding window, the arrivals, the
handle times (plus the queue's wrap-up) and the outcomes of the items that
left the queue; the service level is *answered within the target / (answered +
abandoned + overflowed out)*, outcomes counted when they happen (an item
still waiting is not counted yet).  :class:`AcdStatistics` feeds every
queue's statistics from the router's event list.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from cosmo.acd.events import (
    AcdEvent,
    ItemAssigned,
    ItemCompleted,
    ItemOverflowed,
    ItemQueued,
    ItemRemoved,
)
from cosmo.acd.model import OverflowKind, QueueSpec, ServiceLevelTarget
from cosmo.acd.router import QueueStatus

__all__ = [
    "AcdStatistics",
    "QueueStatistics",
    "SlidingWindow",
    "erlang_c",
    "erlang_c_wait",
    "queue_length_wait",
]

DEFAULT_HANDLE_S = 180.0
"""Handle time assumed until a queue has handled anything in its window."""
DEFAULT_WINDOW_S = 1800.0


def _erlang_c_int(traffic: float, agents: int) -> float:
    # Erlang B by its stable recursion B(k) = A·B(k-1) / (k + A·B(k-1)), then
    # C = N·B / (N - A·(1 - B)).
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return agents * b / (agents - traffic * (1.0 - b))


def erlang_c(traffic: float, agents: float) -> float:
    """Probability that an arrival has to wait (Erlang C) with ``traffic`` erlangs on ``agents`` agents.

    A fractional number of agents is interpolated linearly between its
    neighbours.  1.0 when the traffic reaches the agents (the queue grows
    without bound).
    """
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    low = math.floor(agents)
    high = math.ceil(agents)
    c_high = _erlang_c_int(traffic, high)
    if low == high:
        return c_high
    c_low = 1.0 if low <= traffic else _erlang_c_int(traffic, low)
    return c_low + (agents - low) * (c_high - c_low)


def erlang_c_wait(arrival_rate: float, handle_s: float, agents: float) -> float:
    """Mean wait of an arrival in an M/M/N queue: ``C × AHT / (N − A)`` with ``A = λ × AHT``.

    ``math.inf`` when ``A >= N``.
    """
    traffic = arrival_rate * handle_s
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return erlang_c(traffic, agents) * handle_s / (agents - traffic)


def queue_length_wait(position: int, agents: float, handle_s: float, free: int = 0) -> float | None:
    """Expected wait of the item at ``position`` (1-based) with ``agents`` working, ``free`` of them free now.

    ``(position - free) × AHT / agents`` (0 when a free agent is there for
    it); ``None`` when no agent works for the queue.
    """
    if position <= free:
        return 0.0
    if agents <= 0:
        return None
    return (position - free) * handle_s / agents


class SlidingWindow:
    """Values stamped with a time; the ones older than ``span_s`` are dropped as time moves on."""

    __slots__ = ("_entries", "_sum", "span_s")

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._entries: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def add(self, at: float, value: float = 1.0) -> None:
        """Record ``value`` at ``at`` (times are expected in order)."""
        self._entries.append((at, value))
        self._sum += value

    def trim(self, now: float) -> None:
        """Drop what is older than the window."""
        entries = self._entries
        limit = now - self.span_s
        while entries and entries[0][0] <= limit:
            self._sum -= entries.popleft()[1]
        if not entries:
            self._sum = 0.0

    def count(self, now: float) -> int:
        self.trim(now)
        return len(self._entries)

    def total(self, now: float) -> float:
        self.trim(now)
        return self._sum

    def mean(self, now: float) -> float | None:
        self.trim(now)
        return self._sum / len(self._entries) if self._entries else None


class QueueStatistics:
    """One queue's arrivals, handle times and service level over a sliding window.

    ``short_abandon_s``: abandons quicker than this are left out of the
    service level (a caller who hung up at once was never really offered).
    """

    def __init__(
        self,
        name: str,
        target: ServiceLevelTarget,
        *,
        wrap_up_s: float = 0.0,
        window_s: float = DEFAULT_WINDOW_S,
        default_handle_s: float = DEFAULT_HANDLE_S,
        short_abandon_s: float = 0.0,
    ) -> None:
        self.name = name
        self.target = target
        self.wrap_up_s = wrap_up_s
        self.default_handle_s = default_handle_s
        self.short_abandon_s = short_abandon_s
        self._arrivals = SlidingWindow(window_s)
        self._handle = SlidingWindow(window_s)
        self._outcomes = SlidingWindow(window_s)
        self._within = SlidingWindow(window_s)

    def record_arrival(self, at: float) -> None:
        """An item entered the queue."""
        self._arrivals.add(at)

    def record_answered(self, at: float, wait_s: float) -> None:
        """An agent took an item after ``wait_s``."""
        self._outcomes.add(at)
        if wait_s <= self.target.within_s:
            self._within.add(at)

    def record_lost(self, at: float, wait_s: float) -> None:
        """An item left unanswered (abandoned, overflowed out) after ``wait_s``."""
        if wait_s >= self.short_abandon_s:
            self._outcomes.add(at)

    def record_handled(self, at: float, handle_s: float) -> None:
        """An agent finished an item it handled for ``handle_s`` (wrap-up is added here)."""
        self._handle.add(at, handle_s + self.wrap_up_s)

    def arrival_rate(self, now: float) -> float:
        """Arrivals per second over the window."""
        return self._arrivals.count(now) / self._arrivals.span_s

    def average_handle_s(self, now: float) -> float:
        """Mean handle time plus wrap-up over the window (the default until something was handled)."""
        mean = self._handle.mean(now)
        return mean if mean is not None else self.default_handle_s + self.wrap_up_s

    def service_level(self, now: float) -> float | None:
        """Answered within the target / items that left the queue, over the window; ``None`` with none."""
        outcomes = self._outcomes.count(now)
        return self._within.count(now) / outcomes if outcomes else None

    def estimated_wait(self, now: float, status: QueueStatus, position: int | None = None) -> float | None:
        """Expected wait at ``position`` (default: a new arrival, behind every waiting item).

        The queue-length predictor over ``status.agents_effective``; ``None``
        when no agent works for the queue.
        """
        place = position if position is not None else status.waiting + 1
        return queue_length_wait(place, status.agents_effective, self.average_handle_s(now), status.agents_free)

    def steady_state_wait(self, now: float, agents: float) -> float:
        """Erlang C mean wait for the window's arrival rate and handle time with ``agents`` agents."""
        return erlang_c_wait(self.arrival_rate(now), self.average_handle_s(now), agents)


class AcdStatistics:
    """Every queue's :class:`QueueStatistics`, fed with the router's events through :meth:`observe`."""

    def __init__(self, queues: Iterable[QueueSpec], **options: float) -> None:
        self._options = options
        self._queues: dict[str, QueueStatistics] = {}
        self.configure(queues)

    def configure(self, queues: Iterable[QueueSpec]) -> None:
        """Follow a new queue configuration; the windows of queues that stay are kept."""
        kept = {}
        for spec in queues:
            stats = self._queues.get(spec.name)
            if stats is None:
                stats = QueueStatistics(spec.name, spec.service_level, wrap_up_s=spec.wrap_up_s, **self._options)
            else:
                stats.target, stats.wrap_up_s = spec.service_level, spec.wrap_up_s
            kept[spec.name] = stats
        self._queues = kept

    def queue(self, name: str) -> QueueStatistics | None:
        """The statistics of one queue."""
        return self._queues.get(name)

    def observe(self, events: Iterable[AcdEvent]) -> None:
        """Account for router events (the list a router call returned)."""
        queues = self._queues
        for event in events:
            if isinstance(event, ItemOverflowed):
                origin = queues.get(event.from_queue)
                if origin is not None:
                    origin.record_lost(event.at, event.wait_s)
                destination = queues.get(event.destination) if event.kind is OverflowKind.QUEUE else None
                if destination is not None:
                    destination.record_arrival(event.at)
                continue
            if not isinstance(event, ItemQueued | ItemAssigned | ItemCompleted | ItemRemoved):
                continue
            stats = queues.get(event.queue)
            if stats is None:
                continue
            if isinstance(event, ItemQueued):
                stats.record_arrival(event.at)
            elif isinstance(event, ItemAssigned):
                stats.record_answered(event.at, event.wait_s)
            elif isinstance(event, ItemCompleted):
                stats.record_handled(event.at, event.handle_s)
            else:
                stats.record_lost(event.at, event.wait_s)
