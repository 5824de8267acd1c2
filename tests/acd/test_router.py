"""Tests of cosmo.acd.router: routing rules, offers, RONA, wrap-up, overflow, restore, at chosen times."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from cosmo.acd import (
    AcdConfigError,
    Agent,
    AgentSnapshot,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    Channel,
    ItemAssigned,
    ItemChanged,
    ItemCompleted,
    ItemOffered,
    ItemOverflowed,
    ItemQueued,
    ItemRelaxed,
    ItemRemoved,
    ItemState,
    OfferWithdrawn,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueSpec,
    RelaxationStep,
    Router,
    RoutingError,
    Strategy,
    UnknownAgentError,
    UnknownItemError,
    UnknownQueueError,
    UnknownReasonError,
    WithdrawReason,
    WorkItem,
)
from cosmo.acd.events import AcdEvent

V, E, CB = Channel.VOICE, Channel.EMAIL, Channel.CALLBACK
AV, NR, LO = AgentState.AVAILABLE, AgentState.NOT_READY, AgentState.LOGGED_OUT
RS, BU, WU = AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP


def offers(events: Iterable[AcdEvent]) -> list[tuple[str, str]]:
    return [(e.item_id, e.extension) for e in events if isinstance(e, ItemOffered)]


def moves(events: Iterable[AcdEvent]) -> list[tuple[str, str, str, str | None]]:
    return [(e.extension, e.from_state, e.to_state, e.reason) for e in events if isinstance(e, AgentStateChanged)]


def make(queues: list[QueueSpec], agents: list[Agent], available: Iterable[str] = ()) -> Router:
    router = Router(queues)
    for agent in agents:
        router.add_agent(agent, 0.0)
    for ext in available:
        router.set_agent_state(ext, AV, 0.0)
    return router


def item(item_id: str, queue: str = "support", channel: Channel = V, **kw: object) -> WorkItem:
    return WorkItem(item_id, channel, queue, **kw)  # type: ignore[arg-type]


SUPPORT = QueueSpec("support", skills={"support": 1})
SALES = QueueSpec("sales", skills={"sales": 1})
BOTH = {"support": 3, "sales": 3}


# --------------------------------------------------------------------------- item order


def test_longest_waiting_item_anywhere_wins() -> None:
    router = make([SUPPORT, SALES], [Agent("1001", skills=BOTH)])
    router.add_item(item("s1", "support"), 10.0)
    router.add_item(item("p1", "sales"), 5.0)
    router.add_item(item("s2", "support"), 1.0)
    router.add_item(item("cb", "sales", CB, enqueued_at=-20.0), 12.0)  # a callback keeps its time
    router.agent_config("1001")
    events = router.set_agent_state("1001", AV, 20.0)
    assert offers(events) == [("cb", "1001")]
    assert moves(events) == [("1001", LO, AV, None), ("1001", AV, RS, None)]


def test_priority_before_wait_then_aging_catches_up() -> None:
    aging = QueueSpec("support", skills={"support": 1}, aging_rate=0.5)
    router = make([aging, SALES], [Agent("1001", skills=BOTH)])
    router.add_item(item("old", "support", priority=0), 0.0)  # ages 0.5 a second
    router.add_item(item("vip", "sales", priority=3), 4.0)  # sales does not age
    # At 5 s: old is at 2.5 < 3.
    assert offers(router.set_agent_state("1001", AV, 5.0)) == [("vip", "1001")]
    router.offer_accepted("vip", "1001", 5.0)
    router.add_item(item("vip2", "sales", priority=3), 6.0)
    router.item_done("vip", 9.0)
    # At 9 s: old is at 4.5 > 3: aging moved it ahead.
    assert router.agent("1001").offer == "old"


def test_equal_priority_and_time_go_by_arrival() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)])
    for name in ("a", "b", "c"):
        router.add_item(item(name, enqueued_at=5.0), 5.0)
    assert [i.id for i in router.waiting("support")] == ["a", "b", "c"]
    assert offers(router.set_agent_state("1001", AV, 6.0)) == [("a", "1001")]


def test_waiting_order_and_position() -> None:
    router = make([QueueSpec("support", aging_rate=1.0)], [])
    router.add_item(item("a", priority=0), 0.0)
    router.add_item(item("b", priority=5), 3.0)  # score 2 > a's 0
    router.add_item(item("c", priority=0), 1.0)
    assert [i.id for i in router.waiting("support")] == ["b", "a", "c"]
    assert [router.position(x) for x in "abc"] == [2, 1, 3]


# --------------------------------------------------------------------------- skills and relaxation


def test_relaxation_step_makes_the_offer_at_its_deadline() -> None:
    spec = QueueSpec("support", skills={"support": 4}, relaxation=(RelaxationStep(30, min_level=2),))
    router = make([spec], [Agent("1001", skills={"support": 2})], available=["1001"])
    assert offers(router.add_item(item("c1"), 100.0)) == []
    assert router.next_deadline() == 130.0
    assert router.handle_timer(129.9) == []
    events = router.handle_timer(130.0)
    assert [type(e) for e in events] == [ItemRelaxed, AgentStateChanged, ItemOffered]
    assert events[0] == ItemRelaxed("c1", "support", 1, ts=130.0)
    assert offers(events) == [("c1", "1001")]
    assert router.item("c1").step == 1


def test_relaxation_overflow_to_another_queue_keeps_enqueue_time() -> None:
    support = QueueSpec("support", skills={"support": 3}, relaxation=(RelaxationStep(60, overflow_to="general"),))
    general = QueueSpec("general")
    router = make([support, general], [Agent("1001", skills={"sales": 1})], available=["1001"])
    router.add_item(item("c1", enqueued_at=-10.0), 0.0)
    events = router.handle_timer(60.0)
    assert events[0] == ItemOverflowed(
        "c1", "support", OverflowKind.QUEUE, "general", V, OverflowReason.RELAXATION, 70.0, ts=60.0
    )
    assert offers(events) == [("c1", "1001")]
    assigned = router.offer_accepted("c1", "1001", 65.0)
    assert next(e for e in assigned if isinstance(e, ItemAssigned)).wait_s == 75.0


def test_item_skills_add_to_the_queue_skills() -> None:
    router = make([SUPPORT], [Agent("1001", skills={"support": 5}), Agent("1002", skills={"support": 1, "spanish": 4})])
    router.set_agent_state("1001", AV, 0.0)
    router.set_agent_state("1002", AV, 1.0)
    assert offers(router.add_item(item("es", skills={"spanish": 3}), 2.0)) == [("es", "1002")]


def test_simultaneous_relaxations_offer_the_best_item_first() -> None:
    late = QueueSpec("late", skills={"x": 5}, relaxation=(RelaxationStep(30, min_level=1),))
    early = QueueSpec("early", skills={"y": 5}, relaxation=(RelaxationStep(10, min_level=1),))
    router = make([late, early], [Agent("1001", skills={"x": 1, "y": 1})], available=["1001"])
    router.add_item(item("old", "late"), 0.0)  # relaxes at 30
    router.add_item(item("new", "early"), 15.0)  # relaxes at 25, but waited less
    assert offers(router.handle_timer(40.0)) == [("old", "1001")]


# --------------------------------------------------------------------------- agent selection


def selection_router(strategy: Strategy) -> Router:
    spec = QueueSpec("support", skills={"support": 1}, strategy=strategy)
    return make(
        [spec, SALES],
        [Agent("1001", skills={"support": 2, "sales": 1}), Agent("1002", skills={"support": 5, "sales": 1})],
    )


def test_longest_idle_is_the_default() -> None:
    router = selection_router(Strategy.LONGEST_IDLE)
    router.set_agent_state("1002", AV, 1.0)
    router.set_agent_state("1001", AV, 2.0)
    assert offers(router.add_item(item("c1"), 3.0)) == [("c1", "1002")]
    router = selection_router(Strategy.LONGEST_IDLE)
    router.set_agent_state("1001", AV, 1.0)
    router.set_agent_state("1002", AV, 2.0)
    assert offers(router.add_item(item("c1"), 3.0)) == [("c1", "1001")]


def test_the_preferred_agent_comes_first_when_free() -> None:
    router = selection_router(Strategy.LONGEST_IDLE)
    router.set_agent_state("1002", AV, 1.0)  # idle longest
    router.set_agent_state("1001", AV, 2.0)
    preferred = item("c1")
    preferred.data["preferred_agent"] = "1001"
    assert offers(router.add_item(preferred, 3.0)) == [("c1", "1001")]
    # Not free (reserved by c1): the queue's strategy picks among the others.
    other = item("c2")
    other.data["preferred_agent"] = "1001"
    assert offers(router.add_item(other, 4.0)) == [("c2", "1002")]


def test_most_skilled() -> None:
    router = selection_router(Strategy.MOST_SKILLED)
    router.set_agent_state("1001", AV, 1.0)
    router.set_agent_state("1002", AV, 2.0)
    assert offers(router.add_item(item("c1"), 3.0)) == [("c1", "1002")]


def test_least_occupied() -> None:
    router = selection_router(Strategy.LEAST_OCCUPIED)
    router.set_agent_state("1001", AV, 0.0)
    router.set_agent_state("1002", AV, 0.0)
    # 1001 takes a long sales call: 50 of its 100 logged-in seconds occupied.
    router.add_item(item("p1", "sales"), 10.0)
    router.offer_accepted("p1", "1001", 10.0)
    router.item_done("p1", 60.0)
    router.set_agent_state("1002", NR, 70.0, "break")
    router.set_agent_state("1002", AV, 90.0)  # idle less long, but never occupied
    assert offers(router.add_item(item("c1"), 100.0)) == [("c1", "1002")]


def test_round_robin() -> None:
    router = selection_router(Strategy.ROUND_ROBIN)
    router.set_agent_state("1001", AV, 0.0)
    router.set_agent_state("1002", AV, 0.0)
    taken = []
    for n in range(4):
        (item_id, ext), = offers(router.add_item(item(f"c{n}"), 10.0 + n))
        taken.append(ext)
        router.offer_accepted(item_id, ext, 10.5 + n)
        router.item_done(item_id, 10.6 + n)
    assert taken == ["1001", "1002", "1001", "1002"]


# --------------------------------------------------------------------------- offers


def test_accept_done_wrap_up_then_available_by_deadline() -> None:
    spec = QueueSpec("support", skills={"support": 1}, wrap_up_s=15.0)
    router = make([spec], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("c1", data={"caller": "+15551234", "ivr": {"account": "42"}}), 10.0)
    events = router.offer_accepted("c1", "1001", 14.0)
    assert events == [
        AgentStateChanged(extension="1001", from_state=RS, to_state=BU, item_id="c1", ts=14.0),
        ItemAssigned("c1", "1001", "support", V, 4.0, ts=14.0),
    ]
    router.add_item(item("c2"), 20.0)
    events = router.item_done("c1", 74.0)
    assert events == [
        ItemCompleted("c1", "1001", "support", V, 60.0, ts=74.0),
        AgentStateChanged(extension="1001", from_state=BU, to_state=WU, item_id="c1", ts=74.0),
    ]
    assert router.agent("1001").wrap_up_until == 89.0
    assert router.next_deadline() == 89.0
    events = router.handle_timer(89.0)
    assert moves(events) == [("1001", WU, AV, None), ("1001", AV, RS, None)]
    assert offers(events) == [("c2", "1001")]
    with pytest.raises(UnknownItemError):
        router.item("c1")


def test_rona_requeues_at_original_place_and_sets_no_answer() -> None:
    spec = QueueSpec("support", skills={"support": 1}, ring_timeout_s=20.0)
    router = make([spec], [Agent("1001", skills=BOTH), Agent("1002", skills=BOTH)], available=["1001"])
    events = router.add_item(item("x"), 0.0)
    assert next(e for e in events if isinstance(e, ItemOffered)).expires_at == 20.0
    router.add_item(item("y"), 1.0)
    events = router.handle_timer(20.0)
    assert events == [
        OfferWithdrawn("x", "1001", "support", WithdrawReason.NO_ANSWER, ts=20.0),
        AgentStateChanged(extension="1001", from_state=RS, to_state=NR, reason="no-answer", item_id="x", ts=20.0),
    ]
    assert [i.id for i in router.waiting("support")] == ["x", "y"]
    assert router.position("x") == 1
    assert offers(router.set_agent_state("1002", AV, 21.0)) == [("x", "1002")]
    # The first phone answers late: refused (the channel sends BYE).
    with pytest.raises(RoutingError) as info:
        router.offer_accepted("x", "1001", 22.0)
    assert str(info.value) == "item x is not offered to agent 1001 (it is offered to agent 1002)"
    assert router.agent("1002").offer == "x"


def test_late_accept_after_timeout_in_the_same_call() -> None:
    spec = QueueSpec("support", ring_timeout_s=20.0)
    router = make([spec], [Agent("1001")], available=["1001"])
    router.add_item(item("x"), 0.0)
    with pytest.raises(RoutingError, match=r"^item x is not offered to agent 1001 \(it is queued\)$"):
        router.offer_accepted("x", "1001", 25.0)
    # What the deadline did before the refusal comes out of the next call.
    carried = router.handle_timer(25.0)
    assert [type(e) for e in carried] == [OfferWithdrawn, AgentStateChanged]


def test_decline_with_a_reason() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    with pytest.raises(UnknownReasonError):
        router.offer_declined("x", "1001", 2.0, reason="nap")
    assert router.item("x").state is ItemState.OFFERED
    events = router.offer_declined("x", "1001", 3.0, reason="break")
    assert moves(events) == [("1001", RS, NR, "break")]
    assert events[0] == OfferWithdrawn("x", "1001", "support", WithdrawReason.DECLINED, ts=3.0)
    assert router.item("x").state is ItemState.QUEUED


def test_abandon_while_ringing_frees_the_agent() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.add_item(item("y"), 1.0)
    events = router.remove_item("x", 4.0)
    assert events[:3] == [
        OfferWithdrawn("x", "1001", "support", WithdrawReason.REMOVED, ts=4.0),
        AgentStateChanged(extension="1001", from_state=RS, to_state=AV, item_id="x", ts=4.0),
        ItemRemoved("x", "support", V, "abandoned", 4.0, ts=4.0),
    ]
    assert offers(events) == [("y", "1001")]


def test_abandon_while_waiting_and_assigned_refused() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    with pytest.raises(RoutingError, match="^item x is assigned to agent 1001: end it with item_done$"):
        router.remove_item("x", 2.0)
    router.add_item(item("y"), 3.0)
    assert router.remove_item("y", 9.0) == [ItemRemoved("y", "support", V, "abandoned", 6.0, ts=9.0)]


# --------------------------------------------------------------------------- capacity


def test_email_capacity_three_and_no_call_meanwhile() -> None:
    router = make([QueueSpec("mail")], [Agent("1001", capacity={V: 1, E: 3})], available=["1001"])
    for n in range(4):
        router.add_item(item(f"m{n}", "mail", E), float(n))
    router.add_item(item("call", "mail", V), 0.5)
    taken = []
    for t in range(3):
        status = router.agent("1001")
        assert status.offer is not None
        taken.append(status.offer)
        router.offer_accepted(status.offer, "1001", 10.0 + t)
    assert taken == ["m0", "m1", "m2"]  # the call waits: not mixed
    assert router.agent("1001").state is BU and router.agent("1001").offer is None
    for m in taken:
        router.item_done(m, 20.0)
    assert router.agent("1001").offer == "m3"  # still on e-mail: the next e-mail, not the call
    router.offer_accepted("m3", "1001", 21.0)
    assert offers(router.item_done("m3", 22.0)) == [("call", "1001")]


def test_mixed_agent_takes_a_call_during_email_but_not_two_calls() -> None:
    router = make([QueueSpec("mail")], [Agent("1001", capacity={V: 1, CB: 1, E: 2}, mixed=True)], available=["1001"])
    router.add_item(item("m0", "mail", E), 0.0)
    router.offer_accepted("m0", "1001", 1.0)
    assert offers(router.add_item(item("call", "mail", V), 2.0)) == [("call", "1001")]
    router.offer_accepted("call", "1001", 3.0)
    assert offers(router.add_item(item("cb", "mail", CB), 4.0)) == []
    assert offers(router.add_item(item("m1", "mail", E), 5.0)) == [("m1", "1001")]


# --------------------------------------------------------------------------- agent requests


def test_not_ready_while_busy_is_pending() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    assert router.set_agent_state("1001", NR, 2.0, "lunch") == []
    assert router.agent("1001").pending_reason == "lunch"
    router.add_item(item("y"), 3.0)
    assert moves(router.item_done("x", 4.0)) == [("1001", BU, NR, "lunch")]
    assert router.item("y").state is ItemState.QUEUED


def test_available_while_busy_cancels_pending() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    router.set_agent_state("1001", NR, 2.0, "lunch")
    router.set_agent_state("1001", AV, 3.0)
    assert moves(router.item_done("x", 4.0)) == [("1001", BU, AV, None)]


def test_not_ready_while_ringing_withdraws_the_offer() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH), Agent("1002", skills=BOTH)], available=["1001", "1002"])
    router.add_item(item("x"), 5.0)
    events = router.set_agent_state("1001", NR, 6.0, "break")
    assert events[0] == OfferWithdrawn("x", "1001", "support", WithdrawReason.AGENT, ts=6.0)
    assert moves(events)[0] == ("1001", RS, NR, "break")
    assert offers(events) == [("x", "1002")]


def test_wrap_up_ended_early_by_the_agent() -> None:
    spec = QueueSpec("support", wrap_up_s=60.0)
    router = make([spec], [Agent("1001")], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    router.item_done("x", 2.0)
    assert moves(router.set_agent_state("1001", AV, 10.0)) == [("1001", WU, AV, None)]
    assert router.next_deadline() is None


@pytest.mark.parametrize(
    ("state", "reason", "error", "message"),
    [
        ("wrap_up", None, AgentStateError, "agent 1001: wrap_up is set by the router, not on request"),
        ("busy", None, AgentStateError, "agent 1001: busy is set by the router, not on request"),
        ("dancing", None, AgentStateError, "agent 1001: unknown state 'dancing'"),
        ("not_ready", "nap", UnknownReasonError, None),
        ("available", "break", AgentStateError, "agent 1001: a reason goes with not_ready only, not with available"),
        ("logged_out", None, AgentStateError, "agent 1001 is busy with 1 item(s): it can log out once they are done"),
    ],
)
def test_refused_requests_change_nothing(state: str, reason: str | None, error: type[Exception], message: str | None) -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    before = router.agent("1001")
    with pytest.raises(error) as info:
        router.set_agent_state("1001", state, 2.0, reason)
    if message is not None:
        assert str(info.value) == message
    assert router.agent("1001") == before


def test_available_to_wrap_up_refused() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    with pytest.raises(AgentStateError, match="^agent 1001: wrap_up is set by the router, not on request$"):
        router.set_agent_state("1001", WU, 1.0)
    assert router.agent("1001").state is AV


def test_unknown_things_are_404() -> None:
    router = make([SUPPORT], [Agent("1001")])
    with pytest.raises(UnknownAgentError) as agent_error:
        router.set_agent_state("9999", AV, 0.0)
    with pytest.raises(UnknownQueueError) as queue_error:
        router.add_item(item("x", "nowhere"), 0.0)
    with pytest.raises(UnknownItemError) as item_error:
        router.item_done("nope", 0.0)
    assert str(agent_error.value) == "unknown agent '9999'"
    assert str(queue_error.value) == "item x: unknown queue 'nowhere'"
    assert str(item_error.value) == "unknown item 'nope'"
    assert {agent_error.value.status, queue_error.value.status, item_error.value.status} == {404}
    with pytest.raises(RoutingError, match="^item y is already in the router$"):
        router.add_item(item("y"), 0.0)
        router.add_item(item("y"), 0.0)


# --------------------------------------------------------------------------- overflow


def test_max_wait_to_voicemail_leaves_the_router() -> None:
    spec = QueueSpec("support", skills={"support": 5}, max_wait_s=90.0,
                     max_wait_target=OverflowTarget.parse("voicemail:support"))
    router = make([spec], [Agent("1001", skills={"support": 1})], available=["1001"])
    router.add_item(item("x"), 10.0)
    assert router.next_deadline() == 100.0
    assert router.handle_timer(100.0) == [
        ItemOverflowed("x", "support", OverflowKind.VOICEMAIL, "support", V, OverflowReason.MAX_WAIT, 90.0, ts=100.0)
    ]
    with pytest.raises(UnknownItemError):
        router.item("x")


def test_no_agents_rule_at_arrival_and_when_the_last_agent_leaves() -> None:
    spec = QueueSpec("support", skills={"support": 1}, no_agents_target=OverflowTarget.parse("queue:general"))
    router = make([spec, QueueSpec("general", skills={"general": 1})], [Agent("1001", skills={"support": 2})])
    events = router.add_item(item("x"), 0.0)
    assert [type(e) for e in events] == [ItemQueued, ItemOverflowed]
    assert router.item("x").queue == "general"
    router.set_agent_state("1001", NR, 1.0, "break")  # logged in: the queue is staffed
    router.add_item(item("y"), 2.0)
    assert router.item("y").queue == "support"
    events = router.set_agent_state("1001", LO, 3.0)
    assert events[1] == ItemOverflowed("y", "support", OverflowKind.QUEUE, "general", V, OverflowReason.NO_AGENTS, 1.0, ts=3.0)
    assert router.item("y").queue == "general"


@pytest.mark.parametrize("target", ["voicemail:support", "number:+15550199"])
def test_items_without_a_caller_on_the_line_stay_when_calls_go_to_voicemail_or_a_number(target: str) -> None:
    """A stored voicemail, an e-mail or a callback cannot leave a message or be transferred:
    the no-agents and max-wait rules that send callers there leave them waiting."""
    spec = QueueSpec("support", skills={"support": 1}, max_wait_s=60.0,
                     max_wait_target=OverflowTarget.parse(target), no_agents_target=OverflowTarget.parse(target))
    router = make([spec], [Agent("1001", skills={"support": 2}, capacity={V: 1, E: 1})])
    for name, channel in (("vm", Channel.VOICEMAIL), ("mail", E), ("cb", CB)):
        events = router.add_item(item(name, channel=channel), 0.0)
        assert [type(e) for e in events] == [ItemQueued], events
    call_events = router.add_item(item("call"), 0.0)
    assert [type(e) for e in call_events] == [ItemQueued, ItemOverflowed]  # a caller goes there at once
    router.set_agent_state("1001", NR, 1.0, "break")
    assert router.next_deadline() is None  # no max-wait timer for items that cannot go
    assert router.handle_timer(100.0) == []
    events = router.set_agent_state("1001", LO, 101.0)
    assert not [e for e in events if isinstance(e, ItemOverflowed)], events
    assert [i.id for i in router.waiting("support")] == ["vm", "mail", "cb"]


# --------------------------------------------------------------------------- restore and configuration


def test_restore_agents_from_snapshots() -> None:
    router = make([SUPPORT, QueueSpec("mail")], [])
    assert router.add_agent(Agent("1001"), 50.0, snapshot=AgentSnapshot("1001", NR, 40.0, "lunch")) == []
    assert router.agent("1001").since == 40.0
    # Busy on a call that died with the process: available again.
    events = router.add_agent(Agent("1002"), 50.0, snapshot=AgentSnapshot("1002", BU, 45.0, None, "break"))
    assert moves(events) == [("1002", BU, NR, "break")]
    # Busy on a durable e-mail: comes back busy with it.
    mail = item("m1", "mail", E, enqueued_at=10.0)
    events = router.add_agent(
        Agent("1003", capacity={E: 2}), 50.0, snapshot=AgentSnapshot("1003", BU, 45.0), held=[mail]
    )
    assert events == []
    assert router.agent("1003").items == ("m1",)
    assert router.item("m1").state is ItemState.ASSIGNED
    # Wrap-up still running is resumed with its deadline.
    router.add_agent(Agent("1004"), 50.0, snapshot=AgentSnapshot("1004", WU, 45.0, wrap_up_until=60.0))
    assert router.next_deadline() == 60.0
    assert moves(router.handle_timer(60.0)) == [("1004", WU, AV, None)]
    with pytest.raises(AcdConfigError, match="^agent 1001 is already known$"):
        router.add_agent(Agent("1001"), 50.0)


def test_snapshot_follows_the_agent() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    router.item_done("x", 2.0)
    assert router.snapshot("1001") == AgentSnapshot("1001", AV, 2.0)


def test_configure_queues_reload_keeps_items() -> None:
    router = make([SUPPORT], [Agent("1001", skills={"support": 1})], available=["1001"])
    router.set_agent_state("1001", NR, 0.0, "break")
    router.add_item(item("x"), 0.0)
    with pytest.raises(AcdConfigError, match="^queue 'support' still holds items: it cannot be removed$"):
        router.configure_queues([SALES], 1.0)
    stricter = QueueSpec("support", skills={"support": 4}, relaxation=(RelaxationStep(10, min_level=1),))
    events = router.configure_queues([stricter, SALES], 20.0)
    assert events == [ItemRelaxed("x", "support", 1, ts=10.0)]
    assert [i.id for i in router.waiting("support")] == ["x"]


def test_queue_status() -> None:
    router = make([SUPPORT, SALES], [Agent("1001", skills=BOTH), Agent("1002", skills={"support": 1})])
    router.set_agent_state("1001", AV, 0.0)
    router.set_agent_state("1002", NR, 0.0, "break")
    router.add_item(item("s1"), 1.0)  # offered to 1001
    router.add_item(item("s2"), 2.0)
    router.add_item(item("p1", "sales"), 3.0)
    status = router.queue_status("support", 10.0)
    assert (status.waiting, status.offered, status.longest_wait_s) == (1, 1, 8.0)
    assert (status.agents_staffed, status.agents_available, status.agents_busy, status.agents_not_ready) == (2, 0, 1, 1)
    assert status.agents_effective == 0.5  # 1001 also serves sales, which has work waiting
    assert status.agents_free == 0


def test_events_are_json() -> None:
    router = make([SUPPORT], [Agent("1001", skills=BOTH)], available=["1001"])
    events = router.add_item(item("x"), 1.0)
    data = [e.to_dict() for e in events]
    json.dumps(data)
    assert data[-1] == {
        "topic": "acd.item.offered",
        "ts": 1.0,
        "item_id": "x",
        "extension": "1001",
        "queue": "support",
        "channel": "voice",
        "expires_at": 21.0,
    }


def test_a_late_timer_is_caught_up_by_the_next_call() -> None:
    spec = QueueSpec("support", wrap_up_s=10.0)
    router = make([spec], [Agent("1001")], available=["1001"])
    router.add_item(item("x"), 0.0)
    router.offer_accepted("x", "1001", 1.0)
    router.item_done("x", 2.0)  # wrap-up until 12
    events = router.add_item(item("y"), 30.0)  # nobody called handle_timer at 12
    assert moves(events) == [("1001", WU, AV, None), ("1001", AV, RS, None)]
    assert events[0].at == 12.0
    assert offers(events) == [("y", "1001")]


def test_update_and_remove_agent() -> None:
    router = make([SUPPORT, SALES], [Agent("1001", skills={"sales": 2})], available=["1001"])
    router.add_item(item("x", "support"), 0.0)
    assert router.agent("1001").queues == ("sales",)
    events = router.update_agent(Agent("1001", name="Ann", skills={"support": 2}), 5.0)
    assert offers(events) == [("x", "1001")]
    assert router.agent("1001").queues == ("support",)
    with pytest.raises(AgentStateError, match="^agent 1001 is reserved: log it out first$"):
        router.remove_agent("1001", 6.0)
    router.set_agent_state("1001", LO, 6.0)
    assert router.item("x").state is ItemState.QUEUED
    router.remove_agent("1001", 7.0)
    with pytest.raises(UnknownAgentError):
        router.agent("1001")


def test_acd_imports_no_channel_or_io_room() -> None:
    import ast
    from pathlib import Path

    import cosmo.acd

    channels = ("cosmo.sip", "cosmo.rtp", "cosmo.calls", "cosmo.web", "cosmo.email")
    for path in Path(cosmo.acd.__file__).parent.glob("*.py"):
        # The core is sans-I/O; service.py runs it on the loop with the store.
        forbidden = channels if path.name == "service.py" else (*channels, "cosmo.store", "asyncio")
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


# --------------------------------------------------------------------------- supervisors' changes


def test_a_raised_priority_or_a_move_changes_who_is_served_next() -> None:
    router = make([SUPPORT, SALES], [Agent("1001", skills={"sales": 3})])
    router.add_item(item("old", "sales"), 10.0)
    router.add_item(item("new", "sales"), 20.0)
    router.add_item(item("moved", "support"), 5.0)
    events = router.change_item("new", 30.0, priority=5)
    assert [(e.item_id, e.queue, e.priority, e.from_queue) for e in events if isinstance(e, ItemChanged)] == \
        [("new", "sales", 5, "sales")]
    router.change_item("moved", 31.0, queue="sales")
    assert router.item("moved").queue == "sales" and router.item("moved").enqueued_at == 5.0
    assert [i.id for i in router.waiting("sales")] == ["new", "moved", "old"]
    assert offers(router.set_agent_state("1001", AV, 32.0)) == [("new", "1001")]
    with pytest.raises(RoutingError, match="item new is offered: only a waiting item can be changed"):
        router.change_item("new", 33.0, priority=0)
    with pytest.raises(UnknownQueueError):
        router.change_item("old", 33.0, queue="nowhere")
    with pytest.raises(UnknownItemError):
        router.change_item("gone", 33.0, priority=1)
