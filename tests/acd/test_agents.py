"""Tests of cosmo.acd.agents: the agent state machine, its transition table, snapshots."""

from __future__ import annotations

import itertools
import json

import pytest

from cosmo.acd import (
    TRANSITIONS,
    Actor,
    AgentSnapshot,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    AgentStateMachine,
    UnknownReasonError,
)

REASONS = frozenset({"break", "lunch", "training", "no-answer"})

LO = AgentState.LOGGED_OUT
AV = AgentState.AVAILABLE
NR = AgentState.NOT_READY
RS = AgentState.RESERVED
BU = AgentState.BUSY
WU = AgentState.WRAP_UP

# Written out independently of TRANSITIONS: what the person may ask for...
ON_REQUEST = {(LO, AV), (LO, NR), (AV, NR), (AV, LO), (NR, AV), (NR, LO), (RS, NR), (RS, LO), (WU, AV), (WU, NR), (WU, LO)}
# ...and what the router does.
BY_ROUTER = {(AV, RS), (RS, NR), (RS, BU), (RS, AV), (BU, RS), (BU, WU), (BU, AV), (BU, NR), (WU, AV), (WU, NR)}


def machine_in(state: AgentState, reason: str | None = None, since: float = 100.0) -> AgentStateMachine:
    if state is NR and reason is None:
        reason = "break"
    return AgentStateMachine.restore(AgentSnapshot("1001", state, since, reason), REASONS)


def test_table_is_the_one_written_here() -> None:
    assert {pair for pair, actors in TRANSITIONS.items() if Actor.AGENT in actors} - {(NR, NR)} == ON_REQUEST
    assert {pair for pair, actors in TRANSITIONS.items() if Actor.ROUTER in actors} - {(NR, NR)} == BY_ROUTER


@pytest.mark.parametrize(
    ("old", "new", "actor"),
    [(a, b, actor) for a, b in itertools.permutations(AgentState, 2) for actor in Actor],
)
def test_every_transition_allowed_or_refused_cleanly(old: AgentState, new: AgentState, actor: Actor) -> None:
    machine = machine_in(old)
    reason = "lunch" if new is NR else None
    allowed = (old, new) in (ON_REQUEST if actor is Actor.AGENT else BY_ROUTER)
    if allowed:
        event = machine.transition(new, 200.0, actor=actor, reason=reason, item_id="i1")
        assert event == AgentStateChanged(
            extension="1001", from_state=old, to_state=new, reason=reason, item_id="i1", ts=200.0
        )
        assert event.at == 200.0
        assert (machine.state, machine.reason, machine.since) == (new, reason, 200.0)
        return
    before = machine.snapshot()
    with pytest.raises(AgentStateError) as info:
        machine.transition(new, 200.0, actor=actor, reason=reason)
    if (old, new) in TRANSITIONS:
        assert str(info.value) == f"agent 1001: {old} -> {new} is made by the router, not on request"
    else:
        assert str(info.value) == f"agent 1001: {old} -> {new} is not allowed"
    assert info.value.status == 409
    assert machine.snapshot() == before


@pytest.mark.parametrize("state", list(AgentState))
def test_same_state_is_idempotent(state: AgentState) -> None:
    machine = machine_in(state)
    before = machine.snapshot()
    assert machine.transition(state, 300.0, reason="break" if state is NR else None) is None
    assert machine.snapshot() == before


def test_new_not_ready_reason_is_a_transition() -> None:
    machine = machine_in(NR, "break")
    event = machine.transition(NR, 300.0, actor=Actor.AGENT, reason="lunch")
    assert event is not None and (event.from_state, event.to_state, event.reason) == (NR, NR, "lunch")
    assert machine.reason == "lunch"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (None, "agent 1001: not_ready needs a reason"),
        ("nap", "agent 1001: unknown not-ready reason 'nap' (known: break, lunch, no-answer, training)"),
    ],
)
def test_not_ready_reason_is_checked(reason: str | None, message: str) -> None:
    machine = machine_in(AV)
    with pytest.raises(UnknownReasonError) as info:
        machine.transition(NR, 1.0, actor=Actor.AGENT, reason=reason)
    assert str(info.value) == message
    assert info.value.status == 422
    assert machine.state is AV


def test_reason_with_another_state_is_refused() -> None:
    machine = machine_in(NR)
    with pytest.raises(AgentStateError, match="^agent 1001: a reason goes with not_ready only, not with available$"):
        machine.transition(AV, 1.0, actor=Actor.AGENT, reason="break")
    assert machine.state is NR


def test_pending_not_ready_is_kept_through_wrap_up_and_cleared_after() -> None:
    machine = machine_in(BU)
    machine.defer_not_ready("lunch")
    machine.transition(WU, 10.0)
    assert machine.pending_reason == "lunch"
    machine.transition(NR, 20.0, reason="lunch")
    assert machine.pending_reason is None


def test_pending_needs_work() -> None:
    machine = machine_in(AV)
    with pytest.raises(AgentStateError, match="^agent 1001: only an agent at work can defer not_ready"):
        machine.defer_not_ready("break")
    with pytest.raises(UnknownReasonError):
        machine_in(BU).defer_not_ready("nap")


def test_snapshot_round_trip_through_json() -> None:
    machine = machine_in(BU)
    machine.defer_not_ready("break")
    snap = machine.snapshot(wrap_up_until=None)
    data = json.loads(json.dumps(snap.to_dict()))
    assert AgentSnapshot.from_dict(data) == snap
    restored = AgentStateMachine.restore(AgentSnapshot.from_dict(data), REASONS)
    assert (restored.state, restored.pending_reason, restored.since) == (BU, "break", 100.0)


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        (AgentSnapshot("1001", NR, 1.0, None), "agent 1001: not_ready needs a reason"),
        (AgentSnapshot("1001", AV, 1.0, "break"), "agent 1001: stored reason 'break' on available"),
        (AgentSnapshot("1001", AV, 1.0, None, "break"), "agent 1001: stored pending reason on available"),
    ],
)
def test_restore_refuses_inconsistent_snapshots(snapshot: AgentSnapshot, message: str) -> None:
    with pytest.raises(AgentStateError) as info:
        AgentStateMachine.restore(snapshot, REASONS)
    assert str(info.value) == message


def test_malformed_stored_state() -> None:
    with pytest.raises(AgentStateError, match="is malformed"):
        AgentSnapshot.from_dict({"extension": "1001", "state": "dancing", "since": 1.0})
    with pytest.raises(AgentStateError, match="is malformed"):
        AgentSnapshot.from_dict({"extension": "1001"})


def test_event_is_json_for_the_event_log() -> None:
    event = machine_in(AV).transition(NR, 5.0, actor=Actor.AGENT, reason="break")
    assert event is not None
    assert event.to_dict() == {
        "topic": "acd.agent.state",
        "ts": 5.0,
        "extension": "1001",
        "from_state": "available",
        "to_state": "not_ready",
        "reason": "break",
        "item_id": None,
    }
