"""In-process publish/subscribe of typed events.

Theory of operation
-------------------
An event is a frozen dataclass deriving from :class:`Event` with a class-level
``topic`` such as ``call.started``.  Subscribers name what they want either by
event class (``bus.subscribe(CallStarted, handler)``, which also receives
subclasses) or by topic pattern: topics are dot-separated segments, ``*``
matches exactly one segment and ``**`` any number of segments (including
none), so ``call.*`` receives ``call.started`` and ``call.ended``, and ``**``
receives everything.

``publish(event)`` never blocks and never raises because of a subscriber:
handlers run in subscription order; a plain function runs inline, and an
``async`` handler (anything returning an awaitable) is scheduled as a task on
the running loop.  Exceptions from either kind are logged with their
traceback and go no further.  The bus belongs to one event loop; it must not be
used from other threads.  ``close()`` waits for handler tasks still running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar, overload

__all__ = ["Event", "EventBus", "EventBusError", "Handler", "Subscription", "event_class", "topic_matches"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound="Event")

Handler = Callable[[E], Awaitable[object] | object]
"""A subscriber: a function or coroutine function taking the event."""

_REGISTRY: dict[str, type[Event]] = {}


class EventBusError(Exception):
    """Base of every error raised by :mod:`cosmo.events`."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event.  Subclasses set ``topic`` and are frozen, slotted dataclasses.

    ``ts`` is the POSIX time at creation; pass it explicitly to replay or test.
    """

    topic: ClassVar[str] = ""
    ts: float = dataclasses.field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Explicit form: dataclass(slots=True) replaces the class, breaking zero-argument super().
        super(Event, cls).__init_subclass__(**kwargs)
        topic = cls.__dict__.get("topic")
        if topic:
            _check_topic(topic)
            other = _REGISTRY.get(topic)
            # dataclass(slots=True) re-creates the class (with only its bare name while
            # this hook runs): the same name in the same module is not a clash.
            if other is not None and (other.__module__, other.__name__) != (cls.__module__, cls.__name__):
                raise EventBusError(f"topic {topic!r} already used by {other.__name__}")
            _REGISTRY[topic] = cls

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data: ``topic``, ``ts`` and every field."""
        data: dict[str, Any] = {"topic": self.topic, "ts": self.ts}
        for field in dataclasses.fields(self):
            if field.name != "ts":
                data[field.name] = _jsonable(getattr(self, field.name))
        return data


def _jsonable(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list | frozenset | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def event_class(topic: str) -> type[Event] | None:
    """The event class published under ``topic``, if one is defined (for decoding JSON)."""
    return _REGISTRY.get(topic)


def _check_topic(topic: str) -> None:
    segments = topic.split(".")
    if not all(segments) or any(s in ("*", "**") for s in segments):
        raise EventBusError(f"invalid topic {topic!r}: dot-separated non-empty segments, no wildcards")


def _check_pattern(pattern: str) -> None:
    if not pattern or not all(pattern.split(".")):
        raise EventBusError(f"invalid topic pattern {pattern!r}")


def topic_matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` matches ``pattern`` (``*`` one segment, ``**`` any number)."""
    return _match(pattern.split("."), topic.split("."))


def _match(pattern: list[str], topic: list[str]) -> bool:
    if not pattern:
        return not topic
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, topic[i:]) for i in range(len(topic) + 1))
    if not topic:
        return False
    return (head == "*" or head == topic[0]) and _match(rest, topic[1:])


class Subscription:
    """A handle returned by :meth:`EventBus.subscribe`; ``unsubscribe()`` ends it (idempotent).

    Also a context manager that unsubscribes on exit.
    """

    __slots__ = ("_bus", "active", "handler", "selector")

    def __init__(self, bus: EventBus, selector: str | type[Event], handler: Callable[[Any], object]) -> None:
        self._bus = bus
        self.selector = selector
        self.handler = handler
        self.active = True

    def matches(self, event: Event) -> bool:
        """True when this subscription wants ``event``."""
        if isinstance(self.selector, str):
            return topic_matches(self.selector, event.topic)
        return isinstance(event, self.selector)

    def unsubscribe(self) -> None:
        """Stop receiving events.  Safe to call more than once."""
        if self.active:
            self.active = False
            self._bus._remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    def __repr__(self) -> str:
        name = self.selector if isinstance(self.selector, str) else self.selector.__name__
        return f"<Subscription {name} -> {getattr(self.handler, '__qualname__', self.handler)!r}>"


class EventBus:
    """Typed in-process publish/subscribe; see the module documentation."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._by_type: dict[type[Event], tuple[Subscription, ...]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self.published = 0
        """Events published so far."""
        self.handler_errors = 0
        """Handler exceptions logged so far."""

    @overload
    def subscribe(self, selector: type[E], handler: Callable[[E], object]) -> Subscription: ...

    @overload
    def subscribe(self, selector: str, handler: Callable[[Event], object]) -> Subscription: ...

    def subscribe(self, selector: str | type[Event], handler: Callable[[Any], object]) -> Subscription:
        """Call ``handler`` for every event matching ``selector`` (an event class or topic pattern).

        Raises :class:`EventBusError` for a malformed pattern or a class that is not an event.
        """
        if isinstance(selector, str):
            _check_pattern(selector)
        elif not (isinstance(selector, type) and issubclass(selector, Event)):
            raise EventBusError(f"cannot subscribe to {selector!r}: not an Event class or topic pattern")
        subscription = Subscription(self, selector, handler)
        self._subscriptions.append(subscription)
        self._by_type.clear()
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        try:
            self._subscriptions.remove(subscription)
        except ValueError:
            return
        self._by_type.clear()

    def subscribers(self, event: Event) -> tuple[Subscription, ...]:
        """The subscriptions ``event`` would be delivered to, in order."""
        kind = type(event)
        found = self._by_type.get(kind)
        if found is None:
            found = tuple(s for s in self._subscriptions if s.matches(event))
            self._by_type[kind] = found
        return found

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to its subscribers; never blocks, never raises for a subscriber."""
        if not isinstance(event, Event) or not event.topic:
            raise EventBusError(f"cannot publish {event!r}: not an Event with a topic")
        self.published += 1
        for subscription in self.subscribers(event):
            if not subscription.active:
                continue
            try:
                result = subscription.handler(event)
            except Exception:  # A subscriber's bug must not reach the publisher.
                self.handler_errors += 1
                log.exception("%s: handler %r failed", event.topic, subscription)
                continue
            if inspect.isawaitable(result):
                self._schedule(event, subscription, result)

    def _schedule(self, event: Event, subscription: Subscription, awaitable: Awaitable[object]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            self.handler_errors += 1
            log.error("%s: async handler %r needs a running event loop; dropped", event.topic, subscription)
            return
        task: asyncio.Task[object] = loop.create_task(
            _await(awaitable), name=f"event:{event.topic}:{getattr(subscription.handler, '__qualname__', '?')}"
        )
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, event, subscription))

    def _task_done(self, task: asyncio.Task[object], event: Event, subscription: Subscription) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.handler_errors += 1
            log.error("%s: handler %r failed", event.topic, subscription, exc_info=exc)

    @property
    def pending(self) -> int:
        """Handler tasks still running."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every handler task started so far (and any they start) has finished."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for handler tasks, then cancel the rest."""
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            tasks = list(self._tasks)
            log.warning("cancelling %d event handler tasks still running", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable
