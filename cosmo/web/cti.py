"""The CTI hub: the ``/cti`` WebSocket that feeds agent desktops, the wallboard and integrations.

Theory of operation
-------------------
The hub listens to the event bus and never polls.  ACD events (``acd.**``),
call events (``call.**``) and phone registrations (``agent.*``) become
messages on :class:`~cosmo.web.cti_streams.Stream`\\ s:

* each agent has a desk stream ``agent:<ext>``: its state, the screen-pop
  ``offer``, ``assigned``, ``call`` changes, ``completed`` (wrap-up);
* supervisors and admins read the ``wallboard`` stream: ``agent_state`` of
  every agent at once, and queue figures merged into at most one
  ``wallboard`` message per ``wallboard_interval_s``;
* integrations (API token) read the ``feed``: every desk message of every
  agent (or one agent's desk stream with ``hello {"extension"}``).

What each desktop is shown is kept by :class:`~cosmo.web.cti_desks.Desks`,
which turns the events into stream messages and delivers the screen-pop
(:meth:`CtiHub.pop`, awaited by the voice channel before the agent's phone
rings).  The hub owns the sockets: their streams, heart-beats, throttling,
the commands and the presence policy.

*Commands* are checked in order: JSON and schema (:mod:`cosmo.web.cti_messages`),
the sender's role (:data:`MESSAGE_ROLES`), ownership (an agent acts only on
the item offered to it and the calls the hub knows to be its), then done by
the services: the ACD for states and queue changes, :class:`AgentControls`
for calls.  Every refusal is an ``error`` message and changes nothing.

*Presence.*  The hub sends ``ping`` every ``heartbeat_interval_s``; a socket
silent for ``heartbeat_timeout_s`` is closed.  When an agent's last own
socket has been gone for ``disconnect.after_s``, the agent's state follows the
configured policy (not ready with a reason, or logged out) — never left
``available`` with nobody there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cosmo.acd.errors import AcdError
from cosmo.aiotasks import BackgroundTasks
from cosmo.store.web import Disposition
from cosmo.web.auth import (
    INTEGRATION,
    PRINCIPAL,
    Principal,
    Session,
    UserDirectory,
    same_origin,
)
from cosmo.web.cti_desks import Desk, Desks
from cosmo.web.cti_messages import (
    MAX_TEXT,
    AgentStateCommand,
    Answer,
    CancelTransfer,
    ClientMessage,
    CompleteTransfer,
    Consult,
    CtiProtocolError,
    Dial,
    Hangup,
    Hello,
    Hold,
    Move,
    Reject,
    Reprioritise,
    Resume,
    Seen,
    SetState,
    Transfer,
    WrapUp,
    parse_client_message,
)
from cosmo.web.cti_streams import (
    CLOSE_FLOOD,
    CLOSE_HEARTBEAT,
    CLOSE_SESSION,
    CLOSE_SHUTDOWN,
    Connection,
    Stream,
    dumps,
)
from cosmo.web.knowledge import KnowledgeIndex
from cosmo.web.services import (
    AcdDesk,
    AgentControls,
    ControlError,
    CustomerDirectory,
    DispositionStore,
    EventSource,
)
from cosmo.web.settings import Role, WebSettings

__all__ = ["MESSAGE_ROLES", "CtiHub"]

log = logging.getLogger(__name__)

PEOPLE = frozenset({str(Role.AGENT), str(Role.SUPERVISOR), str(Role.ADMIN)})
AGENTS = frozenset({str(Role.AGENT)})
SUPERVISORS = frozenset({str(Role.SUPERVISOR), str(Role.ADMIN)})
ANYONE = PEOPLE | {INTEGRATION}

MESSAGE_ROLES: dict[str, frozenset[str]] = {
    "hello": ANYONE, "resume": ANYONE, "pong": ANYONE, "seen": AGENTS,
    "state": AGENTS, "answer": AGENTS, "reject": AGENTS, "hangup": AGENTS, "hold": AGENTS,
    "transfer": AGENTS, "consult": AGENTS, "complete_transfer": AGENTS, "cancel_transfer": AGENTS,
    "dial": AGENTS, "wrap_up": AGENTS,
    "agent_state": SUPERVISORS, "reprioritise": SUPERVISORS, "move": SUPERVISORS,
}
"""Who may send each client message type."""

DISPOSITION_RETRIES_S = (0.25, 0.5, 1.0)
"""Waits for the channel's own interaction record before a disposition is stored on its own."""


class CtiHub:
    """See the module documentation."""

    def __init__(
        self,
        *,
        acd: AcdDesk,
        bus: EventSource,
        customers: CustomerDirectory,
        controls: AgentControls,
        dispositions: DispositionStore,
        knowledge: KnowledgeIndex,
        users: UserDirectory,
        settings: Callable[[], WebSettings],
        reasons: Callable[[], Sequence[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.acd = acd
        self.bus = bus
        self.controls = controls
        self.dispositions = dispositions
        self.users = users
        self.settings = settings
        self.reasons = reasons
        self.clock = clock
        self.desks = Desks(acd=acd, customers=customers, knowledge=knowledge, users=users, settings=settings,
                           clock=clock)
        self._connections: set[Connection] = set()
        self._subscriptions: list[Any] = []
        self._tasks = BackgroundTasks(log, "CTI: task")
        self._heartbeat: asyncio.Task[None] | None = None
        self._connection_ids = 0
        self._started = False

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the bus, start the heart-beats, watch agents left available with no desktop."""
        if self._started:
            return
        self._started = True
        self.desks.started = True
        self._subscriptions = [
            self.bus.subscribe("acd.**", self.desks.on_acd),
            self.bus.subscribe("call.**", self.desks.on_call),
            self.bus.subscribe("agent.*", self.desks.on_phone),
        ]
        self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop(), name="cti-heartbeat")
        for user in self.users.agents():
            if user.extension is not None:
                self._arm_away(self.desks.desk(user.extension), at_start=True)

    async def close(self) -> None:
        """Close every socket (1001), stop the timers and tasks.  Idempotent."""
        if not self._started:
            return
        self._started = False
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions = []
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        for desk in self.desks.all.values():
            if desk.away is not None:
                desk.away.cancel()
                desk.away = None
        await asyncio.gather(*(c.close(CLOSE_SHUTDOWN, "server stopping") for c in list(self._connections)),
                             return_exceptions=True)
        await self._tasks.close()
        await self.desks.close()

    async def pop(self, extension: str, item: Mapping[str, Any]) -> None:
        """Show the offer of ``item`` on ``extension``'s desktop; await it before ringing the phone.

        See :meth:`cosmo.web.cti_desks.Desks.pop`.
        """
        await self.desks.pop(extension, item)

    def connected_agents(self) -> set[str]:
        """Extensions with at least one desktop connected now."""
        return self.desks.connected_agents()

    def resize(self, max_messages: int, max_bytes: int) -> None:
        """New replay-buffer limits for every stream (a configuration reload)."""
        for stream in (self.desks.wallboard, self.desks.feed, *(d.stream for d in self.desks.all.values())):
            stream.resize(max_messages, max_bytes)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name)

    # ---- sockets -----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /cti``: the WebSocket.  The gate has set the principal (401 before this otherwise)."""
        principal = request[PRINCIPAL]
        if principal.is_person and not same_origin(request):
            raise web.HTTPForbidden(text='{"error": "cross-site WebSocket refused"}', content_type="application/json")
        ws = web.WebSocketResponse(max_msg_size=MAX_TEXT, autoping=True)
        await ws.prepare(request)
        self._connection_ids += 1
        label = f"{principal.username}#{self._connection_ids}"
        connection = Connection(ws, principal, self.clock(), label=label)
        connection.next_ping = connection.last_heard + self.settings().heartbeat_interval_s
        connection.start()
        self._connections.add(connection)
        own = self._own_desk(principal)
        if own is not None:
            own.own.add(connection)
            if own.away is not None:
                own.away.cancel()
                own.away = None
        if principal.role == INTEGRATION:
            self.desks.feed_used = True
        stream = self._default_stream(principal)
        settings = self.settings()
        connection.reply({
            "type": "welcome", "user": principal.to_dict(), "stream": stream.name, "epoch": stream.epoch,
            "seq": stream.seq, "heartbeat_s": settings.heartbeat_interval_s, "server_time": self.clock(),
            "dispositions": list(settings.dispositions), "reasons": list(self.reasons()),
        })
        log.info("CTI %s: connected (%s)", label, stream.name)
        try:
            async for frame in ws:
                if frame.type == web.WSMsgType.TEXT:
                    self._receive(connection, frame.data)
                elif frame.type == web.WSMsgType.BINARY:
                    connection.last_heard = self.clock()
                    connection.error(None, 400, "text frames only (JSON)")
                elif frame.type == web.WSMsgType.ERROR:
                    log.info("CTI %s: socket error %s", label, ws.exception())
                    break
        finally:
            await self._gone(connection)
        return ws

    def _own_desk(self, principal: Principal) -> Desk | None:
        if principal.role == Role.AGENT and principal.extension is not None:
            return self.desks.desk(principal.extension)
        return None

    def _default_stream(self, principal: Principal) -> Stream:
        if principal.role == Role.AGENT and principal.extension is not None:
            return self.desks.desk(principal.extension).stream
        if principal.role == INTEGRATION:
            return self.desks.feed
        return self.desks.wallboard

    async def _gone(self, connection: Connection) -> None:
        self._connections.discard(connection)
        for pop in self.desks.pops.values():
            if connection in pop.watchers:
                pop.watchers.discard(connection)
                if not pop.watchers and pop.waiting <= 0:
                    pop.done()
        await connection.close(CLOSE_SHUTDOWN, "gone")
        await connection.finish()
        own = self._own_desk(connection.principal)
        if own is not None:
            own.own.discard(connection)
            if not own.own and self._started:
                self._arm_away(own)
        log.info("CTI %s: disconnected", connection.label)

    def end_user(self, username: str) -> None:
        """A user was removed or changed: close their sockets (they come back with the new role)."""
        for connection in list(self._connections):
            if connection.principal.is_person and connection.principal.username == username:
                connection.close_soon(CLOSE_SESSION, "your account changed; sign in again")

    def end_session(self, session: Session) -> None:
        """A session ended (signed out, expired, user removed): close its sockets."""
        for connection in list(self._connections):
            if connection.principal.session is not None \
                    and connection.principal.session.token_hash == session.token_hash:
                connection.close_soon(CLOSE_SESSION, "session ended; sign in again")

    async def _heartbeat_loop(self) -> None:
        """Each socket is pinged every ``heartbeat_interval_s`` from its own connection time, in
        small ticks: a thousand desktops never get their pings (and send their pongs) at once."""
        while True:
            settings = self.settings()
            interval = settings.heartbeat_interval_s
            await asyncio.sleep(min(0.25, interval / 10))
            now = self.clock()
            ping: str | None = None
            for connection in list(self._connections):
                if connection.next_ping > now:
                    continue
                connection.next_ping = now + interval
                session = connection.principal.session
                if now - connection.last_heard > settings.heartbeat_timeout_s:
                    connection.close_soon(CLOSE_HEARTBEAT, "no heart-beat answered")
                elif session is not None and session.expires_at <= now:
                    connection.close_soon(CLOSE_SESSION, "session expired; sign in again")
                else:
                    ping = ping or dumps({"type": "ping", "ts": now})
                    connection.send(ping)

    # ---- presence policy -------------------------------------------------------------------------
    def _arm_away(self, desk: Desk, *, at_start: bool = False) -> None:
        policy = self.settings().disconnect
        if policy.state == "keep" or desk.own:
            return
        if at_start:
            try:
                state = self.acd.agent_view(desk.extension)["state"]
            except AcdError:
                return
            if state in ("logged_out", "not_ready"):
                return
        if desk.away is not None:
            desk.away.cancel()
        desk.away = asyncio.get_running_loop().call_later(policy.after_s, self._away, desk)

    def _away(self, desk: Desk) -> None:
        desk.away = None
        if desk.own or not self._started:
            return
        policy = self.settings().disconnect
        try:
            view = self.acd.agent_view(desk.extension)
        except AcdError:
            return
        state = view["state"]
        if state == "logged_out" or policy.state == "keep" or (
                policy.state == "not_ready" and (state == "not_ready" or view.get("pending_reason"))):
            return
        reason = policy.reason if policy.state == "not_ready" else None
        try:
            self.acd.set_agent_state(desk.extension, policy.state, reason)
        except AcdError as exc:
            log.warning("CTI: agent %s has no desktop, but %s failed: %s; trying again later",
                        desk.extension, policy.state, exc)
            desk.away = asyncio.get_running_loop().call_later(max(policy.after_s, 5.0), self._away, desk)
            return
        log.info("CTI: agent %s has had no desktop for %.0f s: %s%s", desk.extension, policy.after_s,
                 policy.state, f" ({reason})" if reason else "")

    # ---- client messages -------------------------------------------------------------------------
    def _receive(self, connection: Connection, text: str) -> None:
        now = self.clock()
        connection.last_heard = now
        limit = self.settings().rate_limit
        if not connection.admit(now, limit.messages_per_s, limit.burst):
            if connection.dropped >= limit.close_after:
                log.warning("CTI %s: message flood; closing", connection.label)
                connection.close_soon(CLOSE_FLOOD, "message flood")
            return
        try:
            message = parse_client_message(text)
        except CtiProtocolError as exc:
            connection.error(exc.re, exc.status, exc.message)
            return
        role = connection.principal.role
        if role not in MESSAGE_ROLES[message.type]:
            connection.error(message.id, 403, f"{role} may not send {message.type!r}")
            return
        session = connection.principal.session
        if session is not None and session.expires_at <= now:
            connection.error(message.id, 401, "session expired; sign in again")
            connection.close_soon(CLOSE_SESSION, "session expired; sign in again")
            return
        try:
            self._dispatch(connection, message)
        except CtiProtocolError as exc:
            connection.error(message.id, exc.status, exc.message)
        except AcdError as exc:
            connection.error(message.id, exc.status, str(exc))

    def _dispatch(self, connection: Connection, message: ClientMessage) -> None:
        principal = connection.principal
        if isinstance(message, Hello | Resume):
            self._attach(connection, message)
            return
        if message.type == "pong":
            return
        if isinstance(message, Seen):
            pop = self.desks.pops.get((message.item_id, principal.extension or ""))
            if pop is not None and connection in pop.watchers:
                pop.done()
            return
        if isinstance(message, AgentStateCommand | Reprioritise | Move):
            self._supervise(connection, message)
            return
        extension = principal.extension
        if extension is None:  # an agent always has one (settings), but be explicit
            raise CtiProtocolError(403, "no extension to act for")
        desk = self.desks.desk(extension)
        if isinstance(message, SetState):
            self.acd.set_agent_state(extension, message.state, message.reason)
            self._spawn(self._ack_after_flush(connection, message), f"cti-state-{extension}")
        elif isinstance(message, Answer | Reject):
            if desk.offer is None or desk.offer["item_id"] != message.item_id:
                raise CtiProtocolError(403, f"item {message.item_id} is not offered to you")
            verb = self.controls.answer if isinstance(message, Answer) else self.controls.reject
            self._control(connection, message, verb(extension, message.item_id))
        elif isinstance(message, Hangup | Hold | Transfer | Consult | CompleteTransfer | CancelTransfer):
            if message.call_id not in desk.calls:
                raise CtiProtocolError(403, f"call {message.call_id} is not yours")
            self._control(connection, message, self._call_verb(extension, message))
        elif isinstance(message, Dial):
            self._spawn(self._dial(connection, desk, message), f"cti-dial-{extension}")
        elif isinstance(message, WrapUp):
            self._wrap_up_checked(connection, desk, message)

    def _call_verb(self, extension: str, message: ClientMessage) -> Coroutine[Any, Any, Any]:
        controls = self.controls
        if isinstance(message, Hangup):
            return controls.hangup(extension, message.call_id)
        if isinstance(message, Hold):
            return controls.hold(extension, message.call_id, message.on)
        if isinstance(message, Transfer):
            return controls.transfer(extension, message.call_id, message.kind, message.target)
        if isinstance(message, Consult):
            return controls.consult(extension, message.call_id, message.kind, message.target)
        if isinstance(message, CompleteTransfer):
            return controls.complete_transfer(extension, message.call_id)
        assert isinstance(message, CancelTransfer)
        return controls.cancel_transfer(extension, message.call_id)

    def _control(self, connection: Connection, message: ClientMessage, verb: Coroutine[Any, Any, Any]) -> None:
        async def run() -> None:
            try:
                await verb
            except ControlError as exc:
                connection.error(message.id, exc.status, exc.message)
                return
            except AcdError as exc:
                connection.error(message.id, exc.status, str(exc))
                return
            connection.reply({"type": "ack", "re": message.id, "command": message.type, "result": {}})

        self._spawn(run(), f"cti-{message.type}-{connection.label}")

    async def _ack_after_flush(self, connection: Connection, message: ClientMessage,
                               result: dict[str, Any] | None = None) -> None:
        await self.acd.flush()  # the state acknowledged is the state stored
        connection.reply({"type": "ack", "re": message.id, "command": message.type, "result": result or {}})

    async def _dial(self, connection: Connection, desk: Desk, message: Dial) -> None:
        try:
            call_id = await self.controls.dial(desk.extension, message.number)
        except ControlError as exc:
            connection.error(message.id, exc.status, exc.message)
            return
        self.desks.dialling(desk, call_id, message.number, message.customer_id, self.clock())
        connection.reply({"type": "ack", "re": message.id, "command": "dial", "result": {"call_id": call_id}})

    def _wrap_up_checked(self, connection: Connection, desk: Desk, message: WrapUp) -> None:
        context = desk.wrap.get(message.item_id)
        if context is None:
            if message.item_id in desk.items:
                raise CtiProtocolError(409, f"item {message.item_id} is still in progress; wrap it up when it ends")
            raise CtiProtocolError(404, f"no finished work {message.item_id} of yours to wrap up")
        if message.disposition not in self.settings().dispositions:
            raise CtiProtocolError(422, f"unknown disposition {message.disposition!r}")
        self._spawn(self._wrap_up(connection, desk, context, message), f"cti-wrap-{desk.extension}")

    async def _wrap_up(self, connection: Connection, desk: Desk, context: dict[str, Any], message: WrapUp) -> None:
        def at(ts: object) -> datetime | None:
            return datetime.fromtimestamp(ts, UTC) if isinstance(ts, int | float) else None

        customer_id = message.customer_id if message.customer_id is not None else context.get("customer_id")
        disposition = Disposition(
            ref=context.get("call_id") or message.item_id, agent=desk.extension, channel=context["channel"],
            disposition=message.disposition, notes=message.notes,
            customer_id=customer_id if isinstance(customer_id, int) else None, queue=context.get("queue"),
            started_at=at(context.get("started_at")), ended_at=at(context.get("ended_at")),
            data={"item_id": message.item_id, **({"caller": context["caller"]} if context.get("caller") else {})},
        )
        try:
            interaction_id = await self.dispositions.update(disposition)
            for delay in DISPOSITION_RETRIES_S:
                if interaction_id is not None or context["channel"] not in ("voice", "callback", "webcall"):
                    break
                await asyncio.sleep(delay)  # the call's own record may still be on its way to the store
                interaction_id = await self.dispositions.update(disposition)
            if interaction_id is None:
                interaction_id = await self.dispositions.add(disposition)
        except Exception:
            log.exception("CTI: agent %s: saving the disposition of %s failed", desk.extension, message.item_id)
            connection.error(message.id, 503, "the disposition could not be saved; try again")
            return
        desk.wrap.pop(message.item_id, None)
        self.desks.push(desk, {"type": "wrap_up_saved", "ts": self.clock(), "extension": desk.extension,
                          "item_id": message.item_id, "interaction_id": interaction_id,
                          "disposition": message.disposition})
        result: dict[str, Any] = {"interaction_id": interaction_id}
        if message.ready:
            try:
                self.acd.set_agent_state(desk.extension, "available")
                await self.acd.flush()
            except AcdError as exc:
                result["ready_error"] = str(exc)
        connection.reply({"type": "ack", "re": message.id, "command": "wrap_up", "result": result})

    def _supervise(self, connection: Connection, message: AgentStateCommand | Reprioritise | Move) -> None:
        acd = self.acd
        if isinstance(message, AgentStateCommand):
            acd.set_agent_state(message.extension, message.state, message.reason)
            log.info("CTI: %s set agent %s %s%s", connection.principal.username, message.extension, message.state,
                     f" ({message.reason})" if message.reason else "")
        elif isinstance(message, Reprioritise):
            acd.reprioritise(message.item_id, message.priority)
            log.info("CTI: %s set item %s priority %d", connection.principal.username, message.item_id,
                     message.priority)
        else:
            acd.move_item(message.item_id, message.queue)
            log.info("CTI: %s moved item %s to %s", connection.principal.username, message.item_id, message.queue)
        self.desks.wallboard_changed()
        self._spawn(self._ack_after_flush(connection, message), f"cti-{message.type}")

    # ---- hello, resume and snapshots ---------------------------------------------------------------
    def _attach(self, connection: Connection, message: Hello | Resume) -> None:
        stream = self._stream_for(connection.principal, message.extension)
        if isinstance(message, Resume):
            missed = stream.missed(message.epoch, message.seq)
            if missed is not None:
                for text in missed:
                    connection.send(text)
                connection.attach(stream)
                connection.reply({"type": "resumed", "seq": stream.seq, "replayed": len(missed)})
                if stream is self.desks.wallboard:
                    self.desks.wallboard_resumed()
                return
            reason = "epoch" if message.epoch != stream.epoch else "missed"
        else:
            reason = "hello"
        connection.reply(self.desks.snapshot(stream, reason))
        connection.attach(stream)

    def _stream_for(self, principal: Principal, extension: str | None) -> Stream:
        if extension is None:
            return self._default_stream(principal)
        if principal.role == Role.AGENT and extension != principal.extension:
            raise CtiProtocolError(403, f"agent {principal.extension} may not watch agent {extension}'s desk")
        try:
            self.acd.agent_view(extension)
        except AcdError:
            raise CtiProtocolError(404, f"no agent {extension}") from None
        return self.desks.desk(extension).stream
