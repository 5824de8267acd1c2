"""Tests of cosmo.acd.pools: the lazily cleaned item heaps and deadline heap keep their order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cosmo.acd import Agent, Channel, QueueSpec, WorkItem
from cosmo.acd.agents import AgentStateMachine
from cosmo.acd.pools import (
    AgentSlot,
    ItemClass,
    ItemSlot,
    QueueRuntime,
    TimerKind,
    Timers,
)


def slot(seq: int, priority: int, enq: float) -> ItemSlot:
    item = WorkItem(f"i{seq}", Channel.VOICE, "q", priority=priority, enqueued_at=enq)
    result = ItemSlot(item, seq, enq)
    result.score = float(priority)
    return result


operations = st.lists(
    st.tuples(st.sampled_from(["push", "discard", "pop"]), st.integers(0, 3), st.integers(0, 50)), max_size=400
)


@given(operations)
def test_item_class_pops_in_key_order_whatever_was_discarded(ops: list[tuple[str, int, int]]) -> None:
    cls = ItemClass(QueueRuntime(QueueSpec("q")), Channel.VOICE, ())
    live: dict[int, ItemSlot] = {}
    seq = 0
    for op, priority, enq in ops:
        if op == "push":
            seq += 1
            live[seq] = slot(seq, priority, float(enq))
            cls.push(live[seq])
        elif op == "discard" and live:
            victim = live.pop(sorted(live)[enq % len(live)])
            cls.discard(victim)
        elif op == "pop":
            head = cls.head()
            if not live:
                assert head is None
                continue
            best = min(live.values(), key=ItemSlot.order_key)
            assert head is best
            cls.pop_head()
            del live[best.seq]
        assert len(cls) == len(live)
    assert sorted(s.seq for s in cls.slots()) == sorted(live)


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=300))
def test_timers_fire_in_time_order_and_cancelled_ones_never(entries: list[tuple[int, bool]]) -> None:
    timers = Timers()
    owner = AgentSlot(Agent("1001"), AgentStateMachine("1001", frozenset()), 1)
    kept = []
    for at, cancel in entries:
        timer = timers.schedule(float(at), TimerKind.WRAP_UP, owner)
        if cancel:
            timers.cancel(timer)
            timers.cancel(timer)  # twice is harmless
        else:
            kept.append(float(at))
    assert len(timers) == len(kept)
    assert timers.next_at() == (min(kept) if kept else None)
    assert timers.pop_due(-1.0) is None
    fired = []
    while (due := timers.pop_due(100.0)) is not None:
        fired.append(due.at)
    assert fired == sorted(kept)
    assert timers.next_at() is None
