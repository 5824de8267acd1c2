"""What the e-mail channel needs of the rest of Cosmo, and the work items it hands to the ACD.

Each collaborator is a small :class:`typing.Protocol` (the ACD service, the
customer directory, the event bus), so this room depends on behaviour and
the composition root passes the real objects in.

A case waiting for an agent is one ``email`` work item (:func:`work_item`):
its id names the case (``email-<case>-<n>``), its ``enqueued_at`` is the
arrival of the oldest unanswered customer message (the response-time clock),
and its ``data`` is what the agent's screen shows: sender, subject, the start
of the text, the customer, and the agent who last handled the case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cosmo.acd.errors import AcdError
from cosmo.acd.model import Channel, OverflowTarget, WorkItem
from cosmo.email.rules import RuleSet
from cosmo.store.customers import CustomerRecord, InteractionRecord
from cosmo.store.email import CaseRecord

__all__ = [
    "SNIPPET_CHARS",
    "BatchEnqueue",
    "CustomerDirectory",
    "EmailAcd",
    "EventBus",
    "InteractionSink",
    "ItemFacts",
    "OfferHandler",
    "Reprioritising",
    "case_of_item",
    "item_priority",
    "work_item",
]

SNIPPET_CHARS = 200
"""Characters of the text a work item carries for the offer's preview."""

_ITEM_ID = re.compile(r"^email-(\d+)-\d+$")


class OfferHandler(Protocol):
    """The ACD's channel interface (``cosmo.acd.service.ChannelHandler``)."""

    def offer(self, item: WorkItem, extension: str) -> None: ...

    def withdraw(self, item: WorkItem, extension: str, reason: str) -> None: ...

    def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None: ...


class EmailAcd(Protocol):
    """What the channel needs of the ACD (:class:`cosmo.acd.service.AcdService`)."""

    def register_channel(self, channel: Channel, handler: OfferHandler) -> None: ...

    async def enqueue(self, item: WorkItem) -> None: ...

    def accepted(self, item_id: str, extension: str) -> bool: ...

    def declined(self, item_id: str, extension: str, reason: str | None = None) -> None: ...

    def done(self, item_id: str) -> None: ...

    def abandon(self, item_id: str, reason: str = "abandoned") -> None: ...

    def item(self, item_id: str) -> WorkItem | None: ...

    def items_view(self, queue: str | None = None) -> list[dict[str, Any]]: ...

    async def flush(self) -> None: ...


@runtime_checkable
class BatchEnqueue(Protocol):
    """An ACD that stores several durable work items in one transaction, then routes them in order.

    Returns, per item, ``None`` or the :class:`~cosmo.acd.errors.AcdError` that refused it.
    """

    async def enqueue_many(self, items: Sequence[WorkItem]) -> list[AcdError | None]: ...


@runtime_checkable
class Reprioritising(Protocol):
    """An ACD that can change a waiting item's priority in place (used as the response-time target nears)."""

    def reprioritise(self, item_id: str, priority: int) -> None: ...


class CustomerDirectory(Protocol):
    """Customers (:class:`cosmo.store.customers.CustomerRepository`)."""

    async def find(self, by: str, value: str) -> CustomerRecord | None: ...

    async def add(self, name: str, **fields: Any) -> CustomerRecord: ...


class Subscription(Protocol):
    def unsubscribe(self) -> None: ...


class EventBus(Protocol):
    """The event bus (:class:`cosmo.events.bus.EventBus`)."""

    def publish(self, event: Any) -> None: ...

    def subscribe(self, selector: str, handler: Callable[[Any], object]) -> Subscription: ...


InteractionSink = Callable[[InteractionRecord], None]
"""Where the channel records each contact in the customer's history."""


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """The message a work item shows: the customer's latest."""

    email_id: int
    sender: str | None
    sender_name: str
    subject: str
    text: str
    attachments: int
    to: str


def case_of_item(item_id: str) -> int | None:
    """The case a work item id names (``email-12-3`` is case 12), ``None`` for other ids."""
    match = _ITEM_ID.match(item_id)
    return int(match.group(1)) if match else None


def item_priority(case: CaseRecord, rules: RuleSet, now: float) -> int:
    """The case's priority plus what its queue's response-time target adds after the wait so far."""
    target = rules.target(case.queue)
    if target is None or case.waiting_since is None:
        return case.priority
    return case.priority + target.boost(now - case.waiting_since.timestamp())


def work_item(case: CaseRecord, facts: ItemFacts, customer: Mapping[str, Any] | None, rules: RuleSet,
              now: float) -> WorkItem:
    """The ACD work item of a case that waits for an agent (see the module documentation)."""
    assert case.item_id is not None, "the case has no work item id"
    waiting_since: datetime | None = case.waiting_since
    enqueued_at = waiting_since.timestamp() if waiting_since is not None else now
    data: dict[str, object] = {
        "email_id": facts.email_id,
        "case_id": case.id,
        "case": f"#{case.id}",
        "from": facts.sender,
        "from_name": facts.sender_name,
        "to": facts.to,
        "subject": facts.subject,
        "snippet": " ".join(facts.text.split())[:SNIPPET_CHARS],
        "attachments": facts.attachments,
        "language": case.language,
        "rules": list(case.rules),
        "base_priority": case.priority,
        "waiting_since": enqueued_at,
        "preferred_agent": case.agent,
    }
    if customer is not None:
        data["customer"] = dict(customer)
    return WorkItem(
        id=case.item_id, channel=Channel.EMAIL, queue=case.queue, priority=item_priority(case, rules, now),
        skills=dict(case.skills), enqueued_at=enqueued_at, data=data,
    )
