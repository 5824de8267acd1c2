"""The CTI protocol's messages: what a client may send, what the server sends.

Every message is one JSON object in one WebSocket text frame, with a ``type``.
A client message is parsed by :func:`parse_client_message` into one of the
frozen models of :data:`CLIENT_MESSAGES`, or refused with a
:class:`CtiProtocolError` carrying an HTTP-like status (400 not JSON or not an
object, 400 unknown type, 422 a field missing or wrong); the hub answers that
with an ``error`` message and changes nothing.

The server's messages are built as plain dicts on the hot path (a screen-pop
must not wait for validation); the models of :data:`SERVER_MESSAGES` describe
them for ``docs/CTI.md`` (their JSON Schemas) and for the tests, which check
every message received against them.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CLIENT_MESSAGES",
    "SERVER_MESSAGES",
    "ClientMessage",
    "CtiProtocolError",
    "markdown",
    "parse_client_message",
    "schemas",
]

MAX_TEXT = 64 * 1024
"""Longest client message accepted (bytes of its frame)."""

TransferKind = Literal["queue", "agent", "number"]
MessageId = str | int


class CtiProtocolError(Exception):
    """A client message the hub refuses; ``status`` says why, as HTTP would."""

    def __init__(self, status: int, message: str, re: MessageId | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.re = re


# ---------------------------------------------------------------- client -> server


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: MessageId | None = Field(default=None, description="Chosen by the client; echoed as `re` in the reply.")


class Hello(_In):
    """Start receiving the stream afresh: a ``snapshot`` comes first.  Integrations and
    supervisors may name an agent's ``extension`` to watch that agent's desk stream."""

    type: Literal["hello"]
    extension: str | None = Field(default=None, min_length=1, max_length=32)


class Resume(_In):
    """Reconnected: send what came after ``seq`` of stream ``epoch`` (or a snapshot when too much was missed)."""

    type: Literal["resume"]
    epoch: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    extension: str | None = Field(default=None, min_length=1, max_length=32)


class Pong(_In):
    """The answer to a ``ping`` heart-beat."""

    type: Literal["pong"]
    ts: float | None = None


class Seen(_In):
    """The desktop shows the ``offer`` of ``item_id`` (sent at once on receiving it): the phone may ring."""

    type: Literal["seen"]
    item_id: str = Field(min_length=1, max_length=128)


class SetState(_In):
    """An agent sets its own state (``reason``: a reason code, with ``not_ready`` only)."""

    type: Literal["state"]
    state: Literal["available", "not_ready", "logged_out"]
    reason: str | None = Field(default=None, min_length=1, max_length=64)


class Answer(_In):
    """Take the work item offered (where the channel allows answering from the desktop)."""

    type: Literal["answer"]
    item_id: str = Field(min_length=1, max_length=128)


class Reject(_In):
    """Refuse the work item offered: it goes back to its place in the queue."""

    type: Literal["reject"]
    item_id: str = Field(min_length=1, max_length=128)


class Hangup(_In):
    """End the agent's call."""

    type: Literal["hangup"]
    call_id: str = Field(min_length=1, max_length=128)


class Hold(_In):
    """Hold (``on: true``, the caller hears music) or resume (``on: false``) the agent's call."""

    type: Literal["hold"]
    call_id: str = Field(min_length=1, max_length=128)
    on: bool = True


class Transfer(_In):
    """Blind transfer of the caller to a queue, an agent or a number; the agent's leg ends."""

    type: Literal["transfer"]
    call_id: str = Field(min_length=1, max_length=128)
    kind: TransferKind
    target: str = Field(min_length=1, max_length=64)


class Consult(_In):
    """Attended transfer, first step: the caller is held and the agent talks to the target."""

    type: Literal["consult"]
    call_id: str = Field(min_length=1, max_length=128)
    kind: TransferKind
    target: str = Field(min_length=1, max_length=64)


class CompleteTransfer(_In):
    """Attended transfer, done: the caller and the consulted party are connected, the agent leaves."""

    type: Literal["complete_transfer"]
    call_id: str = Field(min_length=1, max_length=128)


class CancelTransfer(_In):
    """Attended transfer, abandoned: the consultation ends and the agent is back with the caller."""

    type: Literal["cancel_transfer"]
    call_id: str = Field(min_length=1, max_length=128)


class Dial(_In):
    """Click-to-dial: the agent's phone rings first, then the number is called through a trunk."""

    type: Literal["dial"]
    number: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]+$")
    customer_id: int | None = Field(default=None, description="The customer called, for the call's wrap-up.")


class WrapUp(_In):
    """Save the disposition code and notes on a finished interaction; ``ready`` ends the wrap-up at once."""

    type: Literal["wrap_up"]
    item_id: str = Field(min_length=1, max_length=128)
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field(default="", max_length=4000)
    customer_id: int | None = None
    ready: bool = False


class AgentStateCommand(_In):
    """A supervisor sets an agent's state."""

    type: Literal["agent_state"]
    extension: str = Field(min_length=1, max_length=32)
    state: Literal["available", "not_ready", "logged_out"]
    reason: str | None = Field(default=None, min_length=1, max_length=64)


class Reprioritise(_In):
    """A supervisor changes the priority of a waiting item (higher is served first)."""

    type: Literal["reprioritise"]
    item_id: str = Field(min_length=1, max_length=128)
    priority: int = Field(ge=-1000, le=1000)


class Move(_In):
    """A supervisor moves a waiting item to another queue; it keeps its time in queue."""

    type: Literal["move"]
    item_id: str = Field(min_length=1, max_length=128)
    queue: str = Field(min_length=1, max_length=64)


ClientMessage = (
    Hello | Resume | Pong | Seen | SetState | Answer | Reject | Hangup | Hold | Transfer | Consult | CompleteTransfer
    | CancelTransfer | Dial | WrapUp | AgentStateCommand | Reprioritise | Move
)

CLIENT_MESSAGES: dict[str, type[_In]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (Hello, Resume, Pong, Seen, SetState, Answer, Reject, Hangup, Hold, Transfer, Consult,
                  CompleteTransfer, CancelTransfer, Dial, WrapUp, AgentStateCommand, Reprioritise, Move)
}
"""Client message models by ``type``."""


def parse_client_message(text: str | bytes) -> ClientMessage:
    """One client frame as its message model.  Raises :class:`CtiProtocolError`."""
    if len(text) > MAX_TEXT:
        raise CtiProtocolError(400, f"message longer than {MAX_TEXT} bytes")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CtiProtocolError(400, "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise CtiProtocolError(400, "message must be a JSON object")
    re = data.get("id")
    if not isinstance(re, str | int) or isinstance(re, bool):
        re = None
    kind = data.get("type")
    model = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        if not isinstance(kind, str):
            raise CtiProtocolError(400, "message has no 'type'", re)
        raise CtiProtocolError(400, f"unknown message type {kind[:40]!r}", re)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise CtiProtocolError(422, f"{kind}: {where}: {first['msg']}", re) from None


# ---------------------------------------------------------------- server -> client


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Streamed(_Out):
    seq: int = Field(ge=1, description="Position in the stream; resume with the last one seen.")
    ts: float = Field(description="POSIX time of the change (for an offer: the router's decision).")


class Welcome(_Out):
    """First message on every socket: who you are and how the stream is numbered."""

    type: Literal["welcome"]
    user: dict[str, Any] = Field(description="username, name, role, extension")
    stream: str = Field(description="`agent:<ext>`, `wallboard` or `feed`")
    epoch: str = Field(description="Identifies the stream's numbering; a new epoch means a fresh snapshot.")
    seq: int = Field(ge=0, description="The stream's last sequence number now.")
    heartbeat_s: float
    server_time: float
    dispositions: list[str]
    reasons: list[str]


class Snapshot(_Out):
    """The whole state of the stream's view; numbered ``seq`` like the message it stands for."""

    type: Literal["snapshot"]
    seq: int = Field(ge=0)
    ts: float
    epoch: str
    view: Literal["agent", "wallboard", "feed"]
    reason: Literal["hello", "missed", "epoch"]
    agent: dict[str, Any] | None = Field(default=None, description="agent view (agent stream)")
    offer: dict[str, Any] | None = Field(default=None, description="the open offer, as its `offer` message")
    items: list[dict[str, Any]] = Field(default_factory=list, description="agent: work in hand (pop contexts); "
                                        "wallboard: waiting items")
    calls: list[dict[str, Any]] = Field(default_factory=list)
    wrap: list[dict[str, Any]] = Field(default_factory=list, description="finished work awaiting a disposition")
    queues: list[dict[str, Any]] = Field(default_factory=list)
    agents: list[dict[str, Any]] = Field(default_factory=list)
    phone_registered: bool | None = None


class AgentStateMessage(_Streamed):
    """An agent's state changed (by the agent, a supervisor, the router or the disconnect policy)."""

    type: Literal["agent_state"]
    extension: str
    agent: dict[str, Any] = Field(description="The agent view: state, reason, since, pending_reason, "
                                  "wrap_up_until, offer, items...")
    from_state: str | None = None


class Customer(_Out):
    model_config = ConfigDict(extra="allow")
    id: int
    name: str


class HistoryEntry(_Out):
    id: int | None
    started_at: str
    ended_at: str | None
    channel: str
    queue: str | None
    agent: str | None
    outcome: str | None
    disposition: str | None
    notes: str


class ArticleRef(_Out):
    id: int
    title: str
    body: str
    tags: list[str]


class Offer(_Streamed):
    """The screen-pop: a work item offered to the agent, with everything known about its customer."""

    type: Literal["offer"]
    extension: str
    item_id: str
    channel: str
    queue: str
    priority: int
    call_id: str | None
    caller: str | None
    callee: str | None
    subject: str | None = Field(description="an e-mail's subject")
    sender: str | None = Field(description="an e-mail's sender")
    snippet: str | None = Field(default=None, description="the start of an e-mail's text")
    customer: Customer | None
    ivr: dict[str, Any] = Field(description="what the caller entered and said in the IVR, by variable")
    enqueued_at: float | None
    wait_s: float = Field(description="waited so far, seconds")
    expires_at: float | None = Field(description="when the offer rings out (RONA)")
    history: list[HistoryEntry] | None = Field(description="previous interactions on every channel; null while "
                                               "still being looked up (an `offer_update` follows)")
    articles: list[ArticleRef]


class OfferUpdate(_Streamed):
    """What the pop could not include in time: the customer's history and articles."""

    type: Literal["offer_update"]
    extension: str
    item_id: str
    customer: Customer | None
    history: list[HistoryEntry]
    articles: list[ArticleRef]


class OfferWithdrawn(_Streamed):
    """The offer ended without the agent taking it (rang out, caller hung up, rejected)."""

    type: Literal["offer_withdrawn"]
    extension: str
    item_id: str
    reason: str


class Assigned(_Streamed):
    """The agent took the item (answered the call): it is in hand."""

    type: Literal["assigned"]
    extension: str
    item_id: str
    call_id: str | None
    channel: str
    queue: str
    wait_s: float


class Completed(_Streamed):
    """The agent's work on the item ended (hang-up): wrap-up, with a disposition to save."""

    type: Literal["completed"]
    extension: str
    item_id: str
    call_id: str | None
    channel: str
    handle_s: float | None
    customer_id: int | None


class CallMessage(_Streamed):
    """One of the agent's calls changed: dialling, connected, held, ended."""

    type: Literal["call"]
    extension: str
    call_id: str
    state: Literal["dialing", "connected", "held", "ended"]
    item_id: str | None = None
    number: str | None = Field(default=None, description="the number dialled (click-to-dial)")
    since: float | None = Field(default=None, description="when the call reached this agent")
    reason: str | None = Field(default=None, description="why it ended")


class PhoneMessage(_Streamed):
    """The agent's phone registered or went away."""

    type: Literal["phone"]
    extension: str
    registered: bool


class WrapUpSaved(_Streamed):
    """A disposition was saved (from any of the agent's desktops)."""

    type: Literal["wrap_up_saved"]
    extension: str
    item_id: str
    interaction_id: int
    disposition: str


class Wallboard(_Streamed):
    """Queue figures and waiting items, pushed when they change (merged to at most one per interval)."""

    type: Literal["wallboard"]
    queues: list[dict[str, Any]]
    items: list[dict[str, Any]] = Field(description="waiting items, the first 50 of each queue")


class Resumed(_Out):
    """The missed messages were replayed (they came just before this one); live from here on."""

    type: Literal["resumed"]
    seq: int
    replayed: int


class Ping(_Out):
    """Heart-beat: answer with `pong` (any message counts as a sign of life)."""

    type: Literal["ping"]
    ts: float


class Ack(_Out):
    """A command was done; ``re`` is the command's ``id``."""

    type: Literal["ack"]
    re: MessageId | None
    command: str
    result: dict[str, Any] = Field(default_factory=dict)


class Error(_Out):
    """A message was refused and changed nothing; ``status`` as HTTP would say it."""

    type: Literal["error"]
    re: MessageId | None
    status: int
    message: str


SERVER_MESSAGES: dict[str, type[_Out]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (Welcome, Snapshot, AgentStateMessage, Offer, OfferUpdate, OfferWithdrawn, Assigned, Completed,
                  CallMessage, PhoneMessage, WrapUpSaved, Wallboard, Resumed, Ping, Ack, Error)
}
"""Server message models by ``type``."""


def markdown() -> str:
    """The message reference of ``docs/CTI.md``: each type's purpose and JSON Schema."""
    parts = []
    for side, title, models in (("client", "Client to server", CLIENT_MESSAGES),
                                ("server", "Server to client", SERVER_MESSAGES)):
        parts.append(f"### {title}\n")
        for name, model in models.items():
            schema = json.dumps(schemas()[side][name], indent=2)
            parts.append(f"#### `{name}`\n\n{inspect.getdoc(model)}\n\n```json\n{schema}\n```\n")
    return "\n".join(parts)


def schemas() -> dict[str, dict[str, dict[str, Any]]]:
    """The JSON Schema of every message: ``{"client": {type: schema}, "server": {type: schema}}``."""
    return {
        "client": {name: model.model_json_schema() for name, model in CLIENT_MESSAGES.items()},
        "server": {name: model.model_json_schema() for name, model in SERVER_MESSAGES.items()},
    }


if __name__ == "__main__":  # python -m cosmo.web.cti_messages > reference.md
    print(markdown())
