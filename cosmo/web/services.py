"""What the desktop, the wallboard and the CTI hub need of the rest of Cosmo.

Each collaborator is a small :class:`typing.Protocol`, so the web room depends
on behaviour, not on the classes behind it (rule 3: it never sees a SIP or RTP
object).  The composition root builds a :class:`WebServices` and hands it to
:func:`cosmo.web.desktop.add_web`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cosmo.acd.model import WorkItem
from cosmo.calls.control import CallControlError
from cosmo.store.customers import CustomerRecord, InteractionRecord
from cosmo.store.web import Article, Disposition
from cosmo.web.auth import SessionStore, UserStore
from cosmo.web.email_api import EmailDesk
from cosmo.web.settings import WebSettings

__all__ = [
    "AcdDesk",
    "AgentControls",
    "ControlError",
    "CustomerDirectory",
    "DispositionStore",
    "EventSource",
    "KnowledgeStore",
    "TransferKind",
    "WebServices",
]

TransferKind = Literal["queue", "agent", "number"]


ControlError = CallControlError
"""A call-control command that cannot be done; ``status`` as HTTP would say it
(403 not the agent's call, 404 no such call/queue/agent/route, 409 not now).
It is the voice channel's own error, so the server's call control plugs in as it is."""


class AgentControls(Protocol):
    """Call control for agents, done by the server so that phone and desktop never disagree.

    Every method acts for the agent ``ext`` and must refuse (``ControlError``
    403) a call or item that is not that agent's.  The phone follows:
    re-INVITE for hold, REFER/BYE for transfers, BYE for hang-up.
    """

    async def answer(self, ext: str, item_id: str) -> None:
        """Take the offered item from the desktop (409 where the channel cannot, e.g. a phone
        without auto-answer)."""

    async def reject(self, ext: str, item_id: str) -> None:
        """Refuse the offered item (stop ringing; the ACD puts it back in its place)."""

    async def hangup(self, ext: str, call_id: str) -> None:
        """End the agent's part of the call."""

    async def hold(self, ext: str, call_id: str, on: bool) -> None:
        """Hold or resume the call from the agent's side."""

    async def transfer(self, ext: str, call_id: str, target_kind: TransferKind, target: str) -> None:
        """Blind transfer of the caller."""

    async def consult(self, ext: str, call_id: str, target_kind: TransferKind, target: str) -> None:
        """Attended transfer, first step: hold the caller and call the target from the agent's phone."""

    async def complete_transfer(self, ext: str, call_id: str) -> None:
        """Attended transfer: connect the caller to the consulted party; the agent leaves."""

    async def cancel_transfer(self, ext: str, call_id: str) -> None:
        """Attended transfer: end the consultation and resume the caller."""

    async def dial(self, ext: str, number: str) -> str:
        """Click-to-dial: ring the agent's phone, then ``number``; returns the call id at once."""


class AcdDesk(Protocol):
    """What the web room needs of the ACD (:class:`cosmo.acd.service.AcdService`).

    Methods raise :class:`cosmo.acd.errors.AcdError` (with its ``status``) to refuse.
    """

    def queues_view(self) -> list[dict[str, Any]]: ...

    def agents_view(self) -> list[dict[str, Any]]: ...

    def agent_view(self, extension: str) -> dict[str, Any]: ...

    def items_view(self, queue: str | None = None) -> list[dict[str, Any]]: ...

    def set_agent_state(self, extension: str, state: str, reason: str | None = None) -> object: ...

    def item(self, item_id: str) -> WorkItem | None: ...

    def position(self, item_id: str) -> int | None: ...

    def estimated_wait(self, queue: str, position: int | None = None) -> float | None: ...

    def reprioritise(self, item_id: str, priority: int) -> None:
        """Give a waiting item a new priority (it moves in its queue at once)."""

    def move_item(self, item_id: str, queue: str) -> None:
        """Move a waiting item to another queue, keeping its ``enqueued_at``."""

    async def flush(self) -> None: ...


class Subscription(Protocol):
    def unsubscribe(self) -> None: ...


class EventSource(Protocol):
    """The event bus (:class:`cosmo.events.bus.EventBus`)."""

    def subscribe(self, selector: Any, handler: Callable[[Any], object]) -> Subscription: ...


class CustomerDirectory(Protocol):
    """Customers and their history (:class:`cosmo.store.customers.CustomerRepository`)."""

    async def find(self, by: str, value: str) -> CustomerRecord | None: ...

    async def update(self, customer_id: int, **fields: Any) -> CustomerRecord | None: ...

    async def history(self, customer_id: int, limit: int = 50) -> list[InteractionRecord]: ...

    async def add_interaction(self, interaction: InteractionRecord) -> int: ...


class KnowledgeStore(Protocol):
    """Knowledge-base articles (:class:`cosmo.store.web.KnowledgeRepository`)."""

    async def all(self) -> list[Article]: ...

    async def get(self, article_id: int) -> Article | None: ...

    async def add(self, title: str, body: str = "", tags: Sequence[str] = (), *, by: str | None = None) -> Article:
        ...

    async def update(self, article_id: int, *, title: str, body: str, tags: Sequence[str],
                     by: str | None = None) -> Article | None: ...

    async def remove(self, article_id: int) -> bool: ...

    async def seed(self, path: Any) -> int: ...


class DispositionStore(Protocol):
    """Dispositions on interactions (:class:`cosmo.store.web.DispositionRepository`)."""

    async def update(self, disposition: Disposition) -> int | None: ...

    async def add(self, disposition: Disposition) -> int: ...


@dataclass
class WebServices:
    """Everything :func:`cosmo.web.desktop.add_web` needs, built by the composition root.

    ``settings`` and ``api_tokens`` are read at each use, so a configuration
    reload applies at once; ``reasons`` are the ACD's not-ready reason codes.
    With ``email`` (the e-mail channel) the desktop reads and answers e-mail
    (:mod:`cosmo.web.email_desk`), offering ``email_templates`` (by name) as
    form letters.
    """

    acd: AcdDesk
    bus: EventSource
    customers: CustomerDirectory
    controls: AgentControls
    users: UserStore
    sessions: SessionStore
    knowledge: KnowledgeStore
    dispositions: DispositionStore
    settings: Callable[[], WebSettings]
    api_tokens: Callable[[], Iterable[str]]
    reasons: Callable[[], Sequence[str]]
    clock: Callable[[], float] = field(default=time.time)
    email: EmailDesk | None = None
    email_templates: Callable[[], Mapping[str, str]] = field(default=dict)
