"""The events the ACD core returns.  Every router call returns the list of what it did, in order.

Each event is a frozen :class:`cosmo.events.Event` with a topic under
``acd.``, so the owner can publish it on the bus and append it to the event
log as is; ``ts`` (also readable as ``at``) is the ACD's ``now`` when the
change happened, or the deadline's time for a change a deadline caused.

What the owner must act on:

* :class:`ItemOffered` – ring the agent's phone / show the item on the desktop,
  then call ``offer_accepted`` or ``offer_declined``;
* :class:`OfferWithdrawn` – stop ringing (unless the owner itself declined);
* :class:`ItemOverflowed` with a ``kind`` other than ``queue`` – the item left
  the router: deliver it to voicemail or the number;
* :class:`AgentStateChanged` – store it: it is the agent's history and the
  state to restore.

The others are for the event log, the wallboard and the statistics
(:mod:`cosmo.acd.estimator` consumes them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from cosmo.acd.model import AgentState, Channel, OverflowKind
from cosmo.events.bus import Event

__all__ = [
    "AcdEvent",
    "AgentStateChanged",
    "ItemAssigned",
    "ItemChanged",
    "ItemCompleted",
    "ItemOffered",
    "ItemOverflowed",
    "ItemQueued",
    "ItemRelaxed",
    "ItemRemoved",
    "OfferWithdrawn",
    "OverflowReason",
    "WithdrawReason",
]


class WithdrawReason(enum.StrEnum):
    """Why an offer ended without the agent taking the item."""

    DECLINED = "declined"
    """The owner called ``offer_declined`` (rejected, busy phone, not reachable)."""
    NO_ANSWER = "no-answer"
    """The queue's ring timeout ran out (RONA)."""
    REMOVED = "removed"
    """The item left (the caller hung up)."""
    AGENT = "agent"
    """The agent went not-ready or logged out while it rang."""


class OverflowReason(enum.StrEnum):
    """Which rule sent an item to its overflow target."""

    RELAXATION = "relaxation"
    MAX_WAIT = "max-wait"
    NO_AGENTS = "no-agents"


class _AcdEvent(Event):
    """An event at a time of the ACD's clock."""

    __slots__ = ()

    @property
    def at(self) -> float:
        """When it happened (the same as ``ts``)."""
        return self.ts


@dataclass(frozen=True, slots=True)
class AgentStateChanged(_AcdEvent):
    """One transition of an agent's state: the record to store (and restore from).

    ``reason`` is the not-ready reason when ``to_state`` is ``not_ready``;
    ``item_id`` the work item that caused the change, when one did.
    """

    topic: ClassVar[str] = "acd.agent.state"
    extension: str
    from_state: AgentState
    to_state: AgentState
    reason: str | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class ItemQueued(_AcdEvent):
    """A work item entered the router (``enqueued_at`` may be earlier: a callback keeps its time)."""

    topic: ClassVar[str] = "acd.item.queued"
    item_id: str
    queue: str
    channel: Channel
    priority: int
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class ItemChanged(_AcdEvent):
    """A supervisor changed a waiting item: its ``priority``, or its queue (``from_queue`` → ``queue``)."""

    topic: ClassVar[str] = "acd.item.changed"
    item_id: str
    queue: str
    priority: int
    from_queue: str


@dataclass(frozen=True, slots=True)
class ItemRelaxed(_AcdEvent):
    """A waiting item reached relaxation ``step`` of its queue: more agents may take it."""

    topic: ClassVar[str] = "acd.item.relaxed"
    item_id: str
    queue: str
    step: int


@dataclass(frozen=True, slots=True)
class ItemOffered(_AcdEvent):
    """The router reserved ``extension`` for the item: ring it.  ``expires_at``: the ring timeout."""

    topic: ClassVar[str] = "acd.item.offered"
    item_id: str
    extension: str
    queue: str
    channel: Channel
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class OfferWithdrawn(_AcdEvent):
    """An offer ended without the agent taking the item; a waiting item went back to its place."""

    topic: ClassVar[str] = "acd.offer.withdrawn"
    item_id: str
    extension: str
    queue: str
    reason: WithdrawReason


@dataclass(frozen=True, slots=True)
class ItemAssigned(_AcdEvent):
    """The agent took the item after ``wait_s`` seconds counted from ``enqueued_at``."""

    topic: ClassVar[str] = "acd.item.assigned"
    item_id: str
    extension: str
    queue: str
    channel: Channel
    wait_s: float


@dataclass(frozen=True, slots=True)
class ItemCompleted(_AcdEvent):
    """The agent finished the item after handling it ``handle_s`` seconds (wrap-up not included)."""

    topic: ClassVar[str] = "acd.item.completed"
    item_id: str
    extension: str
    queue: str
    channel: Channel
    handle_s: float


@dataclass(frozen=True, slots=True)
class ItemRemoved(_AcdEvent):
    """The item left the router before being handled (``reason``: ``abandoned`` or the owner's word)."""

    topic: ClassVar[str] = "acd.item.removed"
    item_id: str
    queue: str
    channel: Channel
    reason: str
    wait_s: float


@dataclass(frozen=True, slots=True)
class ItemOverflowed(_AcdEvent):
    """The item was sent to an overflow target.

    For ``kind == queue`` it now waits in that queue, keeping its priority and
    ``enqueued_at``; for any other kind it has left the router and the owner
    delivers it to ``destination``.
    """

    topic: ClassVar[str] = "acd.item.overflowed"
    item_id: str
    from_queue: str
    kind: OverflowKind
    destination: str
    channel: Channel
    reason: OverflowReason
    wait_s: float


AcdEvent = (
    AgentStateChanged
    | ItemQueued
    | ItemChanged
    | ItemRelaxed
    | ItemOffered
    | OfferWithdrawn
    | ItemAssigned
    | ItemCompleted
    | ItemRemoved
    | ItemOverflowed
)
"""Any event the ACD core returns."""
