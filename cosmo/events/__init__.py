"""Typed events and in-process publish/subscribe."""

from cosmo.events.bus import (
    Event,
    EventBus,
    EventBusError,
    Handler,
    Subscription,
    event_class,
    topic_matches,
)
from cosmo.events.events import (
    AgentRegistered,
    AgentUnregistered,
    CallAnswered,
    CallEnded,
    CallStarted,
    Direction,
)

__all__ = [
    "AgentRegistered",
    "AgentUnregistered",
    "CallAnswered",
    "CallEnded",
    "CallStarted",
    "Direction",
    "Event",
    "EventBus",
    "EventBusError",
    "Handler",
    "Subscription",
    "event_class",
    "topic_matches",
]
