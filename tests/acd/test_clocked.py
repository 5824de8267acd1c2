"""Tests of cosmo.acd.clocked: one timer armed for the router's next deadline, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable

from cosmo.acd import Agent, AgentState, Channel, QueueSpec, Router, WorkItem
from cosmo.acd.clocked import ClockedRouter
from cosmo.acd.events import AcdEvent, ItemOffered, OfferWithdrawn


class FakeLoop:
    """A clock and ``call_later`` that run only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], object], FakeHandle]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object], /) -> FakeHandle:
        handle = FakeHandle()
        self.timers.append((self.now + delay, callback, handle))
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for when, callback, handle in sorted(self.timers, key=lambda t: t[0]):
            if when <= self.now and not handle.cancelled:
                handle.cancelled = True
                callback()

    def armed(self) -> list[float]:
        return [when for when, _, handle in self.timers if not handle.cancelled]


class FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def test_one_timer_follows_the_next_deadline() -> None:
    loop = FakeLoop()
    seen: list[AcdEvent] = []
    router = Router([QueueSpec("support", ring_timeout_s=20.0)])
    clocked = ClockedRouter(router, loop, seen.extend, clock=loop.time)
    clocked.run(lambda now: router.add_agent(Agent("1001"), now))
    clocked.run(lambda now: router.set_agent_state("1001", AgentState.AVAILABLE, now))
    assert loop.armed() == []
    clocked.run(lambda now: router.add_item(WorkItem("x", Channel.VOICE, "support"), now))
    assert loop.armed() == [1020.0] and clocked.armed_for == 1020.0
    assert any(isinstance(e, ItemOffered) for e in seen)
    loop.advance(20.0)  # ring timeout: the driver calls handle_timer
    assert any(isinstance(e, OfferWithdrawn) for e in seen)
    assert loop.armed() == []
    clocked.close()
