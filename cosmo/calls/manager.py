"""Call control: every INVITE that reaches Cosmo, and every call Cosmo places.

Inbound, the :class:`CallManager` decides who is calling (a trunk by source
address or digest credentials, or an authenticated agent phone; anybody else
gets 407, then 403 — never a free call), then what was dialled:

* a configured number → the call is answered locally and handed to
  ``on_local_call`` (the IVR/queue entry point);
* an agent's extension (from an agent phone) → the agent's phones ring;
* a number matching an outbound route (from an agent, or from a trunk marked
  ``transit``) → a B2BUA bridge out through the route's trunk;
* anything else → 404.

Outbound it offers the verbs the ACD and the API use: :meth:`ring_agent`
(parallel fork to every registered contact; the first answer wins and the
others are cancelled) and :meth:`dial_trunk`.

Every call ends with a :class:`~cosmo.calls.call.CallRecord` handed to
``on_record`` and events on the bus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from cosmo.config import Settings
from cosmo.events.events import CallAnswered, CallEnded, CallStarted
from cosmo.sip.auth import DigestAuthenticator, FailureThrottle
from cosmo.sip.challenge import Challenger
from cosmo.sip.errors import SipParseError
from cosmo.sip.headers import NameAddr, parse_name_addr
from cosmo.sip.registrar import LocationService, aor_for
from cosmo.sip.session import InviteSession, SessionState
from cosmo.sip.transport import Address
from cosmo.sip.uri import SipUri, parse_uri
from cosmo.sip.useragent import UserAgent

from .call import Call, CallRecord, CallState, Direction, Leg, LegRole
from .trunks import Trunk, TrunkDirectory

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where call events go (the event bus)."""

    def publish(self, event: object) -> None: ...


class MediaNegotiator(Protocol):
    """Produces Cosmo's SDP for a leg it terminates (the media engine)."""

    def answer(self, call: Call, offer: bytes) -> bytes:
        """The SDP answer to ``offer`` (raises SdpError 488/400 when impossible)."""

    def offer(self, call: Call) -> bytes:
        """An SDP offer (for INVITEs without SDP and for calls Cosmo places)."""

    def release(self, call: Call) -> None:
        """Free what the call held (ports)."""


LocalCallHandler = Callable[[Call, InviteSession], Awaitable[None]]


class CallManager:
    """See the module docstring."""

    def __init__(
        self,
        ua: UserAgent,
        settings: Settings,
        *,
        location: LocationService,
        trunks: TrunkDirectory,
        authenticator: DigestAuthenticator,
        agent_ha1: Callable[[str, str], str | None],
        media: MediaNegotiator,
        events: EventSink,
        on_record: Callable[[CallRecord], None],
        throttle: FailureThrottle | None = None,
        challenger: Challenger | None = None,
    ) -> None:
        self.ua = ua
        self.challenger = challenger
        self.settings = settings
        self.location = location
        self.trunks = trunks
        self.authenticator = authenticator
        self.agent_ha1 = agent_ha1
        self.media = media
        self.events = events
        self.on_record = on_record
        self.throttle = throttle if throttle is not None else FailureThrottle()
        self.calls: dict[str, Call] = {}
        self.agent_extensions = {a.extension for a in settings.agents}
        # What a locally answered call does next; the IVR/ACD replace this.
        self.on_local_call: LocalCallHandler = _wait_for_hangup
        self.ring_timeout = 30.0
        self._tasks: set[asyncio.Task[None]] = set()
        ua.on_invite = self._on_invite

    # ---- lifecycle -------------------------------------------------------
    async def close(self) -> None:
        """Hang up every call (BYE/CANCEL) and wait briefly for them to end."""
        for call in list(self.calls.values()):
            for leg in call.legs:
                self._spawn(leg.session.bye("shutdown"), f"shutdown-{call.id}")
        tasks = list(self._tasks)
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(coro: Awaitable[None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s failed", name)

    # ---- inbound ---------------------------------------------------------
    def _on_invite(self, session: InviteSession, source: Address) -> None:
        request = session.invite
        assert request is not None
        now = time.time()  # the authenticator's clock: nonces outlive a restart
        trunk = self.trunks.by_source(source.host)
        agent: str | None = None
        if trunk is None:
            identity = self._authenticate(session, source, now)
            if identity is None:
                return
            kind, name = identity
            if kind == "trunk":
                trunk = self.trunks.get(name)
            else:
                agent = name
        number = _dialled(request.uri)
        caller = _user_of(request.headers.get("From"))
        call = Call(
            direction=Direction.INBOUND,
            caller=caller,
            callee=number,
            from_uri=request.headers.get("From") or "",
            to_uri=request.headers.get("To") or "",
            trunk=trunk.name if trunk else None,
        )
        if agent is not None:
            call.data["agent"] = agent
        numbers = self.settings.numbers
        entry = numbers.get(number)
        if entry is not None and (entry.trunk is None or trunk is None or entry.trunk == trunk.name):
            self._start(call, session, LegRole.CALLER, caller)
            self._spawn(self._answer_local(call, session), f"local-{call.id}")
            return
        if agent is not None and number in self.agent_extensions:
            self._start(call, session, LegRole.AGENT, caller)
            self._spawn(self._bridge_to_agent(call, session, number), f"internal-{call.id}")
            return
        route = self._route(number) if (agent is not None or (trunk is not None and trunk.settings.inbound.transit)) else None
        if route is not None:
            out_trunk, out_number = route
            self._start(call, session, LegRole.CALLER, caller)
            self._spawn(self._bridge_to_trunk(call, session, out_trunk, out_number), f"b2bua-{call.id}")
            return
        log.info("INVITE for unknown number %r from %s", number, source)
        session.reject(404)

    def _authenticate(self, session: InviteSession, source: Address, now: float) -> tuple[str, str] | None:
        """Digest-authenticate an INVITE that no trunk's source matched (407 first)."""
        request = session.invite
        assert request is not None
        if self.throttle.is_blocked(source.host, now):
            session.reject(403, "Too Many Failed Attempts")
            return None
        credentials = request.headers.get("Proxy-Authorization")
        stale = False
        if credentials is not None:
            result = self.authenticator.verify(credentials, "INVITE", self._any_ha1, now)
            if result.ok and result.username is not None:
                self.throttle.record_success(source.host)
                if self.trunks.by_username(result.username) is not None:
                    return ("trunk", self.trunks.by_username(result.username).name)  # type: ignore[union-attr]
                return ("agent", result.username)
            if result.stale:
                stale = True
            else:
                self.throttle.record_failure(source.host, now)
                log.info("INVITE from %s: authentication failed (%s)", source, result.reason)
        if self.challenger is not None:
            challenges = self.challenger.challenge(request, now, stale=stale)
        else:
            challenges = self.authenticator.challenge(now, stale=stale)
        session.reject(407, extra=tuple(("Proxy-Authenticate", c) for c in challenges))
        return None

    def _any_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        return self.trunks.ha1(username, algorithm) or self.agent_ha1(username, algorithm)

    def _route(self, number: str) -> tuple[Trunk, str] | None:
        for route in self.settings.routes:
            rewritten = route.rewrite(number)
            if rewritten is not None:
                trunk = self.trunks.get(route.trunk)
                if trunk is not None and trunk.peer is not None:
                    return trunk, rewritten
        return None

    def _start(self, call: Call, session: InviteSession, role: LegRole, target: str) -> None:
        call.legs.append(Leg(role, session, target))
        self.calls[call.id] = call
        session.data["call_id"] = call.id
        self.events.publish(
            CallStarted(call_id=call.id, direction=str(call.direction), caller=call.caller,
                        callee=call.callee, trunk=call.trunk)
        )

    def _answered(self, call: Call) -> None:
        if call.set_state(CallState.ANSWERED):
            self.events.publish(CallAnswered(call_id=call.id))

    def _ended(self, call: Call, reason: str, by: str, status: int | None = None) -> None:
        if call.state == CallState.ENDED:
            return
        call.end_reason = reason
        call.hangup_by = by
        if status is not None:
            call.sip_status = status
        call.set_state(CallState.ENDED)
        self.calls.pop(call.id, None)
        self.media.release(call)
        record = call.record()
        self.events.publish(CallEnded(call_id=call.id, reason=reason, duration_s=record.duration_s))
        try:
            self.on_record(record)
        except Exception:
            log.exception("call %s: could not store the call record", call.id)

    async def _answer_local(self, call: Call, session: InviteSession) -> None:
        """Answer a call to a configured number and hand it to ``on_local_call``."""
        request = session.invite
        assert request is not None
        try:
            sdp = self.media.answer(call, request.body) if request.body else self.media.offer(call)
        except Exception as exc:  # SdpError carries the status (488/400)
            status = getattr(exc, "status", 488)
            session.reject(status, getattr(exc, "reason", None))
            self._ended(call, f"media: {exc}", "local", status)
            return
        session.answer(sdp)
        call.sip_status = 200
        if not await session.wait_confirmed(self.settings.sip.t1 * 64):
            self._ended(call, session.end_reason or "no ack", session.ended_by or "remote", session.final_status)
            return
        self._answered(call)
        try:
            await self.on_local_call(call, session)
        finally:
            if session.state != SessionState.TERMINATED:
                await session.bye()
            self._ended(call, session.end_reason or "hangup", session.ended_by or "local")

    async def _bridge_to_trunk(self, call: Call, a_leg: InviteSession, trunk: Trunk, number: str) -> None:
        """Signalling B2BUA: A-leg in, B-leg out through ``trunk``; SDP passed through."""
        invite = a_leg.invite
        assert invite is not None and trunk.peer is not None
        from_ = _from_for_trunk(trunk, call.caller, self.settings.sip.domain)
        b_leg = InviteSession.outgoing(
            self.ua,
            request_uri=trunk.request_uri(number),
            peer=trunk.peer,
            from_=from_,
            to=NameAddr(trunk.request_uri(number)),
            sdp=invite.body,
            credentials=trunk.outbound_credentials(),
        )
        call.legs.append(Leg(LegRole.TRUNK, b_leg, number))
        await self._bridge(call, a_leg, b_leg)

    async def _bridge_to_agent(self, call: Call, a_leg: InviteSession, extension: str) -> None:
        invite = a_leg.invite
        assert invite is not None
        b_leg = await self.ring_agent(extension, invite.body, caller=call.caller, call=call,
                                      on_ringing=lambda: _ring(a_leg), cancelled=a_leg.terminated)
        if b_leg is None:
            if a_leg.state != SessionState.TERMINATED:
                a_leg.reject(480)
            self._ended(call, "no answer", "remote", 480)
            return
        call.legs.append(Leg(LegRole.AGENT, b_leg, extension))
        await self._connect(call, a_leg, b_leg)

    async def _bridge(self, call: Call, a_leg: InviteSession, b_leg: InviteSession) -> None:
        b_leg.on_state.append(lambda s: _ring(a_leg) if s.state == SessionState.EARLY else None)
        start = asyncio.ensure_future(b_leg.start())
        cancel_wait = asyncio.ensure_future(a_leg.terminated.wait())
        done, _ = await asyncio.wait({start, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
        if cancel_wait in done and start not in done:
            b_leg.cancel()  # the caller gave up
            await start
            self._ended(call, "cancelled", "remote", 487)
            return
        cancel_wait.cancel()
        response = start.result()
        call.sip_status = response.status
        if response.status >= 300:
            if a_leg.state != SessionState.TERMINATED:
                status = response.status if response.status < 700 else 500
                a_leg.reject(503 if status in (401, 407, 408) else status)
            self._ended(call, f"rejected {response.status}", "remote", response.status)
            return
        await self._connect(call, a_leg, b_leg)

    async def _connect(self, call: Call, a_leg: InviteSession, b_leg: InviteSession) -> None:
        if a_leg.state == SessionState.TERMINATED:
            await b_leg.bye()
            self._ended(call, "cancelled", "remote", 487)
            return
        a_leg.answer(b_leg.remote_sdp)
        if not await a_leg.wait_confirmed(self.settings.sip.t1 * 64):
            await b_leg.bye()
            self._ended(call, a_leg.end_reason or "no ack", "remote", 200)
            return
        self._answered(call)
        # Re-INVITEs pass through: one side's new offer becomes the other's (signalling only).
        a_leg.on_reinvite = lambda s, offer: None
        b_leg.on_reinvite = lambda s, offer: None
        await _first_to_end(a_leg, b_leg)
        ender, other = (a_leg, b_leg) if a_leg.state == SessionState.TERMINATED else (b_leg, a_leg)
        await other.bye()
        by = "caller" if ender is a_leg else "callee"
        self._ended(call, ender.end_reason or "hangup", by, 200)

    # ---- outbound verbs ----------------------------------------------------
    async def ring_agent(
        self,
        extension: str,
        sdp: bytes,
        *,
        caller: str = "",
        call: Call | None = None,
        timeout: float | None = None,
        on_ringing: Callable[[], None] | None = None,
        cancelled: asyncio.Event | None = None,
    ) -> InviteSession | None:
        """Ring every registered contact of ``extension`` in parallel (RFC 3261 §16.7-style fork).

        Returns the session that answered first (the others are cancelled, or
        hung up if they answered too), or ``None`` when nobody answered within
        ``timeout`` (default :attr:`ring_timeout`) or ``cancelled`` was set.
        """
        bindings = self.location.bindings(aor_for(extension))
        if not bindings:
            return None
        domain = self.settings.sip.domain
        caller_uri = SipUri(host=domain, user=caller or "anonymous")
        legs: list[InviteSession] = []
        for binding in bindings:
            contact = parse_uri(binding.contact)
            if not isinstance(contact, SipUri):
                continue
            leg = InviteSession.outgoing(
                self.ua,
                request_uri=contact,
                peer=binding.source,
                from_=NameAddr(caller_uri, caller or None),
                to=NameAddr(SipUri(host=domain, user=extension)),
                sdp=sdp,
                extra=(("X-Cosmo-Call", call.id),) if call else (),
            )
            if on_ringing is not None:
                leg.on_state.append(lambda s: on_ringing() if s.state == SessionState.EARLY else None)
            legs.append(leg)
        starts = {asyncio.ensure_future(leg.start()): leg for leg in legs}
        winner: InviteSession | None = None
        waiters: set[asyncio.Future[object]] = set(starts)  # type: ignore[arg-type]
        cancel_task = asyncio.ensure_future(cancelled.wait()) if cancelled is not None else None
        if cancel_task is not None:
            waiters.add(cancel_task)  # type: ignore[arg-type]
        deadline = time.monotonic() + (timeout if timeout is not None else self.ring_timeout)
        pending_starts = set(starts)
        while pending_starts and winner is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if cancel_task is not None and cancel_task in done:
                break
            for task in done:
                if task in starts:
                    pending_starts.discard(task)
                    waiters.discard(task)
                    response = task.result()
                    if 200 <= response.status < 300 and winner is None:  # type: ignore[union-attr]
                        winner = starts[task]
        if cancel_task is not None:
            cancel_task.cancel()
        for task, leg in starts.items():
            if leg is winner:
                continue
            if leg.state in (SessionState.CALLING, SessionState.EARLY):
                leg.cancel()
            elif leg.state == SessionState.CONFIRMED:
                self._spawn(leg.bye("answered elsewhere"), f"bye-fork-{leg.call_id}")
        if winner is None:
            await asyncio.gather(*starts, return_exceptions=True)
        return winner

    async def dial_trunk(self, trunk: Trunk, number: str, sdp: bytes, *, caller: str = "") -> InviteSession:
        """Place a call to ``number`` through ``trunk``; returns the session after its final response."""
        if trunk.peer is None:
            raise ValueError(f"trunk {trunk.name} has no outbound peer")
        session = InviteSession.outgoing(
            self.ua,
            request_uri=trunk.request_uri(number),
            peer=trunk.peer,
            from_=_from_for_trunk(trunk, caller, self.settings.sip.domain),
            to=NameAddr(trunk.request_uri(number)),
            sdp=sdp,
            credentials=trunk.outbound_credentials(),
        )
        await session.start()
        return session

    async def originate(self, target: str, *, caller: str = "cosmo") -> Call:
        """Place a call from Cosmo to an agent extension or an outside number (API, tests).

        Returns once the call was answered or failed; an answered call stays
        up until either side hangs up (see :meth:`hangup`).
        """
        call = Call(direction=Direction.OUTBOUND, caller=caller, callee=target)
        sdp = self.media.offer(call)
        self.calls[call.id] = call
        self.events.publish(CallStarted(call_id=call.id, direction=str(call.direction), caller=caller,
                                        callee=target, trunk=None))
        session: InviteSession | None
        if target in self.agent_extensions:
            session = await self.ring_agent(target, sdp, caller=caller, call=call)
            role = LegRole.AGENT
        else:
            route = self._route(target)
            if route is None:
                self._ended(call, "no route", "local", 404)
                return call
            call.trunk = route[0].name
            session = await self.dial_trunk(route[0], route[1], sdp, caller=caller)
            role = LegRole.TRUNK
            if session.state != SessionState.CONFIRMED:
                self._ended(call, session.end_reason or "failed", "remote", session.final_status)
                return call
        if session is None:
            self._ended(call, "no answer", "remote", 480)
            return call
        call.legs.append(Leg(role, session, target))
        session.data["call_id"] = call.id
        call.sip_status = 200
        self._answered(call)
        self._spawn(self._watch(call, session), f"watch-{call.id}")
        return call

    async def _watch(self, call: Call, session: InviteSession) -> None:
        await session.terminated.wait()
        self._ended(call, session.end_reason or "hangup", session.ended_by or "remote", 200)

    async def hangup(self, call_id: str, reason: str = "hangup") -> bool:
        """Hang up every leg of a call; False when there is no such call."""
        call = self.calls.get(call_id)
        if call is None:
            return False
        for leg in call.legs:
            await leg.session.bye(reason)
        return True


async def _wait_for_hangup(call: Call, session: InviteSession) -> None:
    await session.terminated.wait()


async def _first_to_end(a: InviteSession, b: InviteSession) -> None:
    waits = [asyncio.ensure_future(a.terminated.wait()), asyncio.ensure_future(b.terminated.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


def _ring(session: InviteSession) -> None:
    if session.state == SessionState.INCOMING:
        session.ring(180)


def _dialled(uri: object) -> str:
    if isinstance(uri, SipUri):
        return uri.user_unescaped or ""
    return str(uri).split(":", 1)[-1].split(";", 1)[0]  # tel:+1555...


def _user_of(value: str | None) -> str:
    if not value:
        return ""
    try:
        addr = parse_name_addr(value)
    except SipParseError:
        return ""
    if isinstance(addr.uri, SipUri):
        return addr.uri.user_unescaped or ""
    return str(addr.uri)


def _from_for_trunk(trunk: Trunk, caller: str, domain: str) -> NameAddr:
    out = trunk.settings.outbound
    user = out.from_user or caller or "cosmo"
    host = out.from_domain or domain
    return NameAddr(SipUri(host=host, user=user))
