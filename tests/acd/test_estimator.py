"""Tests of cosmo.acd.estimator: Erlang C, the queue-length predictor, sliding-window statistics."""

from __future__ import annotations

import math

import pytest

from cosmo.acd import (
    AcdStatistics,
    Agent,
    AgentState,
    Channel,
    QueueSpec,
    QueueStatistics,
    Router,
    ServiceLevelTarget,
    WorkItem,
    erlang_c,
    erlang_c_wait,
    queue_length_wait,
)
from cosmo.acd.estimator import SlidingWindow


@pytest.mark.parametrize(
    ("traffic", "agents", "expected"),
    [
        (2.0, 3, 4 / 9),  # worked by hand: B(3, 2) = 4/19, C = 4/9
        (1.0, 2, 1 / 3),
        (0.0, 3, 0.0),
        (3.0, 3, 1.0),
        (5.0, 2, 1.0),
    ],
)
def test_erlang_c(traffic: float, agents: int, expected: float) -> None:
    assert erlang_c(traffic, agents) == pytest.approx(expected)


def test_erlang_c_large_and_fractional() -> None:
    # A = 10 erlangs on 12 agents: C is about 0.4493 (standard Erlang C tables).
    assert erlang_c(10.0, 12) == pytest.approx(0.4493, abs=1e-4)
    between = erlang_c(10.0, 12.5)
    assert erlang_c(10.0, 13) < between < erlang_c(10.0, 12)


def test_erlang_c_wait() -> None:
    # λ = 1/90 per s, AHT 180 s: A = 2 erlangs on 3 agents; W = C·AHT/(N−A) = 4/9·180 = 80 s.
    assert erlang_c_wait(1 / 90, 180.0, 3) == pytest.approx(80.0)
    assert erlang_c_wait(1 / 60, 180.0, 3) == math.inf
    assert erlang_c_wait(0.0, 180.0, 3) == 0.0


@pytest.mark.parametrize(
    ("position", "agents", "free", "expected"),
    [(1, 4.0, 0, 45.0), (4, 4.0, 0, 180.0), (2, 4.0, 2, 0.0), (3, 2.0, 1, 180.0), (1, 0.0, 0, None)],
)
def test_queue_length_wait(position: int, agents: float, free: int, expected: float | None) -> None:
    assert queue_length_wait(position, agents, 180.0, free) == expected


def test_sliding_window() -> None:
    window = SlidingWindow(60.0)
    window.add(0.0, 10.0)
    window.add(30.0, 20.0)
    assert window.mean(59.0) == 15.0
    assert window.count(60.0) == 1  # the first fell out at exactly 60 s
    assert window.total(91.0) == 0.0
    assert window.mean(91.0) is None


def test_service_level_and_handle_time() -> None:
    stats = QueueStatistics("support", ServiceLevelTarget(0.8, 20.0), wrap_up_s=10.0, window_s=600.0)
    assert stats.service_level(0.0) is None
    assert stats.average_handle_s(0.0) == 190.0  # default + wrap-up
    stats.record_answered(10.0, 5.0)
    stats.record_answered(20.0, 25.0)
    stats.record_answered(30.0, 20.0)
    stats.record_lost(40.0, 50.0)
    assert stats.service_level(40.0) == 0.5
    stats.record_handled(50.0, 110.0)
    stats.record_handled(60.0, 130.0)
    assert stats.average_handle_s(60.0) == 130.0
    assert stats.service_level(615.0) == pytest.approx(1 / 3)  # the first answer left the window
    assert stats.service_level(1000.0) is None


def test_short_abandons_left_out() -> None:
    stats = QueueStatistics("support", ServiceLevelTarget(0.8, 20.0), short_abandon_s=5.0)
    stats.record_answered(1.0, 1.0)
    stats.record_lost(2.0, 3.0)
    assert stats.service_level(3.0) == 1.0


def test_statistics_from_router_events() -> None:
    spec = QueueSpec("support", service_level=ServiceLevelTarget(0.8, 20.0), ring_timeout_s=None)
    router = Router([spec])
    stats = AcdStatistics([spec], window_s=3600.0)
    stats.observe(router.add_agent(Agent("1001"), 0.0))
    stats.observe(router.add_agent(Agent("1002"), 0.0))
    stats.observe(router.set_agent_state("1001", AgentState.AVAILABLE, 0.0))
    stats.observe(router.set_agent_state("1002", AgentState.AVAILABLE, 0.0))
    for n in range(4):
        stats.observe(router.add_item(WorkItem(f"c{n}", Channel.VOICE, "support"), float(n)))
    stats.observe(router.offer_accepted("c0", "1001", 5.0))  # waited 5 s
    stats.observe(router.offer_accepted("c1", "1002", 31.0))  # waited 30 s
    stats.observe(router.remove_item("c3", 40.0))
    stats.observe(router.item_done("c0", 125.0))
    queue = stats.queue("support")
    assert queue is not None
    assert queue.service_level(130.0) == pytest.approx(1 / 3)
    assert queue.average_handle_s(130.0) == 120.0
    assert queue.arrival_rate(130.0) == pytest.approx(4 / 3600.0)
    # c2 is offered to 1001 now; a new caller would be second behind nobody waiting.
    status = router.queue_status("support", 130.0)
    assert status.waiting == 0
    assert queue.estimated_wait(130.0, status) == pytest.approx(120.0 / 2)
