"""Tests of cosmo.events: the event bus and the event types."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import ClassVar

import pytest

from cosmo.events import (
    AgentRegistered,
    AgentUnregistered,
    CallAnswered,
    CallEnded,
    CallStarted,
    Event,
    EventBus,
    EventBusError,
    event_class,
    topic_matches,
)


def started(call_id: str = "c1") -> CallStarted:
    return CallStarted(call_id, "inbound", "+15551234", "+15550100", "demo", ts=1000.0)


# --------------------------------------------------------------------------- events


def test_events_have_topics_and_json() -> None:
    events = [
        started(),
        CallAnswered("c1", ts=1001.0),
        CallEnded("c1", "normal", 9.5, ts=1010.0),
        AgentRegistered("1001", "sip:1001@127.0.0.1:5070", 600, ts=1.0),
        AgentUnregistered("1001", "sip:1001@127.0.0.1:5070", ts=2.0),
    ]
    assert [e.topic for e in events] == [
        "call.started",
        "call.answered",
        "call.ended",
        "agent.registered",
        "agent.unregistered",
    ]
    assert events[0].to_dict() == {
        "topic": "call.started",
        "ts": 1000.0,
        "call_id": "c1",
        "direction": "inbound",
        "caller": "+15551234",
        "callee": "+15550100",
        "trunk": "demo",
    }
    assert events[2].to_dict() == {
        "topic": "call.ended",
        "ts": 1010.0,
        "call_id": "c1",
        "reason": "normal",
        "duration_s": 9.5,
    }
    for event in events:
        assert json.loads(json.dumps(event.to_dict())) == event.to_dict()
        assert event_class(event.topic) is type(event)


def test_ts_is_set_at_creation() -> None:
    before = time.time()
    event = CallAnswered("c1")
    assert before <= event.ts <= time.time()


def test_events_are_frozen_and_slotted() -> None:
    event = CallAnswered("c1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.call_id = "c2"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_topic_clash_is_refused() -> None:
    with pytest.raises(EventBusError, match="topic 'call.started' already used by CallStarted"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Other(Event):
            topic: ClassVar[str] = "call.started"


def test_bad_topic_is_refused() -> None:
    with pytest.raises(EventBusError, match="invalid topic"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Event):
            topic: ClassVar[str] = "call..x"


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("call.started", "call.started", True),
        ("call.started", "call.ended", False),
        ("call.*", "call.started", True),
        ("call.*", "call", False),
        ("call.*", "call.leg.started", False),
        ("*.started", "call.started", True),
        ("**", "call.started", True),
        ("call.**", "call", True),
        ("call.**", "call.leg.started", True),
        ("**.started", "call.leg.started", True),
        ("**.started", "call.ended", False),
        ("agent.*", "call.started", False),
    ],
)
def test_topic_patterns(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


# --------------------------------------------------------------------------- bus, sync handlers


def test_subscribe_by_topic_pattern_and_class() -> None:
    bus = EventBus()
    by_topic: list[Event] = []
    by_wildcard: list[Event] = []
    by_class: list[CallStarted] = []
    everything: list[Event] = []
    bus.subscribe("call.started", by_topic.append)
    bus.subscribe("call.*", by_wildcard.append)
    bus.subscribe(CallStarted, by_class.append)
    bus.subscribe("**", everything.append)

    first, answered, registered = started(), CallAnswered("c1"), AgentRegistered("1001", "sip:x", 60)
    for event in (first, answered, registered):
        bus.publish(event)

    assert by_topic == [first]
    assert by_wildcard == [first, answered]
    assert by_class == [first]
    assert everything == [first, answered, registered]
    assert bus.published == 3


def test_class_subscription_receives_subclasses() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class TransferCallStarted(CallStarted):
        topic: ClassVar[str] = "call.started.transfer"

    bus = EventBus()
    seen: list[CallStarted] = []
    bus.subscribe(CallStarted, seen.append)
    event = TransferCallStarted("c2", "outbound", "1001", "1002")
    bus.publish(event)
    assert seen == [event]


def test_handlers_run_inline_in_subscription_order() -> None:
    bus = EventBus()
    order: list[str] = []
    bus.subscribe("call.started", lambda e: order.append("first"))
    bus.subscribe(CallStarted, lambda e: order.append("second"))
    bus.publish(started())
    assert order == ["first", "second"]


def test_unsubscribe_is_idempotent_and_context_manager() -> None:
    bus = EventBus()
    seen: list[Event] = []
    subscription = bus.subscribe("call.*", seen.append)
    bus.publish(started("a"))
    subscription.unsubscribe()
    subscription.unsubscribe()
    bus.publish(started("b"))
    with bus.subscribe(CallStarted, seen.append):
        bus.publish(started("c"))
    bus.publish(started("d"))
    assert [e.call_id for e in seen if isinstance(e, CallStarted)] == ["a", "c"]


def test_unsubscribe_during_publish() -> None:
    bus = EventBus()
    seen: list[str] = []
    second = None

    def first(event: Event) -> None:
        seen.append("first")
        assert second is not None
        second.unsubscribe()

    bus.subscribe("call.started", first)
    second = bus.subscribe("call.started", lambda e: seen.append("second"))
    bus.publish(started())
    assert seen == ["first"]


def test_sync_handler_exception_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise ValueError("handler bug")

    bus.subscribe("call.started", broken)
    bus.subscribe("call.started", seen.append)
    with caplog.at_level(logging.ERROR, logger="cosmo.events.bus"):
        bus.publish(started())
    assert len(seen) == 1
    assert bus.handler_errors == 1
    assert "call.started: handler" in caplog.text and "ValueError: handler bug" in caplog.text


def test_bad_subscriptions_and_publications() -> None:
    bus = EventBus()
    with pytest.raises(EventBusError):
        bus.subscribe("call..started", print)
    with pytest.raises(EventBusError):
        bus.subscribe(dict, print)  # type: ignore[call-overload]
    with pytest.raises(EventBusError):
        bus.publish("call.started")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bus, async handlers


async def test_async_handler_is_scheduled_not_awaited() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow(event: CallStarted) -> None:
        await gate.wait()
        seen.append(event.call_id)

    bus.subscribe(CallStarted, slow)
    bus.publish(started("a"))  # returns at once although the handler waits
    assert seen == [] and bus.pending == 1
    gate.set()
    await asyncio.wait_for(bus.drain(), 5)
    assert seen == ["a"] and bus.pending == 0


async def test_async_handler_exception_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()

    async def broken(event: Event) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async bug")

    bus.subscribe("**", broken)
    with caplog.at_level(logging.ERROR, logger="cosmo.events.bus"):
        bus.publish(started())
        await asyncio.wait_for(bus.drain(), 5)
    assert bus.handler_errors == 1
    assert "RuntimeError: async bug" in caplog.text


async def test_async_handlers_start_in_publish_order() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def record(event: CallStarted) -> None:
        seen.append(event.call_id)

    bus.subscribe(CallStarted, record)
    for call_id in ("a", "b", "c"):
        bus.publish(started(call_id))
    await asyncio.wait_for(bus.drain(), 5)
    assert seen == ["a", "b", "c"]


async def test_close_cancels_stuck_handlers(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    cancelled = asyncio.Event()

    async def stuck(event: Event) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bus.subscribe("**", stuck)
    bus.publish(started())
    await bus.close(timeout=0.05)
    assert cancelled.is_set() and bus.pending == 0


def test_async_handler_without_loop_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()

    async def handler(event: Event) -> None:
        raise AssertionError("must not run")

    bus.subscribe("**", handler)
    with caplog.at_level(logging.ERROR, logger="cosmo.events.bus"):
        bus.publish(started())
    assert "needs a running event loop" in caplog.text
    assert bus.handler_errors == 1
