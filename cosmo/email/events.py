"""The events of the e-mail channel, published on the bus (CTI, wallboards, the event log).

The ACD's own events (``acd.item.*``) cover queueing and offers of e-mail
work items; these say what happened to the mail and its case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cosmo.events.bus import Event

__all__ = [
    "EmailCaseChanged",
    "EmailDeferred",
    "EmailFailed",
    "EmailReceived",
    "EmailReplyQueued",
    "EmailSent",
]


@dataclass(frozen=True, slots=True)
class EmailReceived(Event):
    """A customer's message was routed to its case (``new_case``: it opened one)."""

    topic: ClassVar[str] = "email.received"
    email_id: int
    case_id: int
    queue: str
    sender: str
    subject: str
    new_case: bool
    agent: str | None = None
    """The agent holding the case's work item, who should see the follow-up at once."""


@dataclass(frozen=True, slots=True)
class EmailCaseChanged(Event):
    """A case's status, queue or agent changed (accepted, answered, transferred, closed, reopened)."""

    topic: ClassVar[str] = "email.case"
    case_id: int
    status: str
    queue: str
    agent: str | None
    item_id: str | None
    change: str


@dataclass(frozen=True, slots=True)
class EmailReplyQueued(Event):
    """An agent's reply (or an acknowledgement) is queued for the relay."""

    topic: ClassVar[str] = "email.out.queued"
    email_id: int
    case_id: int | None
    kind: str
    agent: str | None


@dataclass(frozen=True, slots=True)
class EmailSent(Event):
    """The relay took a message."""

    topic: ClassVar[str] = "email.out.sent"
    email_id: int
    case_id: int | None
    kind: str
    attempts: int


@dataclass(frozen=True, slots=True)
class EmailDeferred(Event):
    """The relay did not take a message (down, or a temporary refusal); it will be tried again."""

    topic: ClassVar[str] = "email.out.deferred"
    email_id: int
    case_id: int | None
    kind: str
    attempts: int
    error: str
    next_attempt_at: float


@dataclass(frozen=True, slots=True)
class EmailFailed(Event):
    """A message could not be sent: refused for good, or still refused after the retry time."""

    topic: ClassVar[str] = "email.out.failed"
    email_id: int
    case_id: int | None
    kind: str
    attempts: int
    error: str
