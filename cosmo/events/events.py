"""The events Cosmo publishes.  Each is a frozen dataclass with a ``topic``.

Fields are plain values (strings, numbers), so ``to_dict()`` is JSON as is and
the same event can cross the MQTT bridge to other nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from cosmo.events.bus import Event

__all__ = ["AgentRegistered", "AgentUnregistered", "CallAnswered", "CallEnded", "CallHeld", "CallStarted", "Direction"]

Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True, slots=True)
class CallStarted(Event):
    """A call entered the system (an INVITE accepted from a trunk, or a call placed)."""

    topic: ClassVar[str] = "call.started"
    call_id: str
    direction: Direction
    caller: str
    callee: str
    trunk: str | None = None


@dataclass(frozen=True, slots=True)
class CallAnswered(Event):
    """The call was answered (200 OK to the INVITE)."""

    topic: ClassVar[str] = "call.answered"
    call_id: str


@dataclass(frozen=True, slots=True)
class CallHeld(Event):
    """One leg of a call was put on hold (``held``) or resumed, by its phone or by Cosmo."""

    topic: ClassVar[str] = "call.hold"
    call_id: str
    sip_call_id: str
    held: bool


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The call ended; ``duration_s`` counts from start to end."""

    topic: ClassVar[str] = "call.ended"
    call_id: str
    reason: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class AgentRegistered(Event):
    """An agent's phone registered a contact (or refreshed it) for ``expires`` seconds."""

    topic: ClassVar[str] = "agent.registered"
    extension: str
    contact: str
    expires: int


@dataclass(frozen=True, slots=True)
class AgentUnregistered(Event):
    """An agent's contact went away: removed by the phone, or expired."""

    topic: ClassVar[str] = "agent.unregistered"
    extension: str
    contact: str
