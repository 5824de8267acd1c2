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
from typing import Any, Protocol

from cosmo.config import Settings
from cosmo.events.events import CallAnswered, CallEnded, CallHeld, CallStarted
from cosmo.rtp.dtmf import DtmfDigit
from cosmo.sip.auth import DigestAuthenticator, FailureThrottle
from cosmo.sip.challenge import Challenger
from cosmo.sip.errors import SipParseError, SipProtocolError
from cosmo.sip.headers import NameAddr, parse_name_addr
from cosmo.sip.message import SipRequest
from cosmo.sip.registrar import LocationService, aor_for
from cosmo.sip.session import InviteSession, SessionError, SessionState
from cosmo.sip.transport import Address
from cosmo.sip.uri import SipUri, parse_uri
from cosmo.sip.useragent import UserAgent

from .call import Call, CallRecord, CallState, Direction, Leg, LegRole
from .media import CallMedia
from .trunks import Trunk, TrunkDirectory

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where call events go (the event bus)."""

    def publish(self, event: Any) -> None: ...


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
        media: CallMedia,
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
        self.on_local_call: LocalCallHandler = self.welcome_then_hold
        self._partners: dict[int, InviteSession] = {}  # bridged legs, by id of the other leg
        media.on_timeout = self._rtp_timeout
        media.on_hold_change = self._hold_changed
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
            _done, pending = await asyncio.wait(tasks, timeout=5)
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
        if trunk is not None and _user_of(request.headers.get("From")) in self.agent_extensions and (
            request.headers.get("Authorization") is not None or _dialled(request.uri) not in self.settings.numbers
        ):
            # An agent's phone on a trusted trunk network (the demo runs on one
            # machine) calling an extension or out: it authenticates as the agent.
            trunk = None
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
        route = self.route(number) if (agent is not None or (trunk is not None and trunk.settings.inbound.transit)) else None
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

    def route(self, number: str) -> tuple[Trunk, str] | None:
        """The trunk and dialled digits for an outside number (the first matching route)."""
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
            CallStarted(call_id=call.id, direction="inbound" if call.direction == Direction.INBOUND else "outbound", caller=call.caller,
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
        # Keyed by role; two legs of one role (an agent calling an agent) are "agent" and "agent-2".
        media_stats: dict[str, dict[str, object]] = {}
        for leg in call.legs:
            stats = self.media.statistics(leg.session)
            if stats:
                key, n = str(leg.role), 2
                while key in media_stats:
                    key, n = f"{leg.role}-{n}", n + 1
                media_stats[key] = stats
        call.data["media"] = media_stats
        for leg in call.legs:
            self._partners.pop(id(leg.session), None)
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
            if request.body:
                sdp = await self.media.answer(call, session, request.body)
            else:
                sdp = await self.media.offer(call, session)  # offer in 200, answer in ACK
        except SipProtocolError as exc:  # SdpError: 488 no common codec, 400 malformed
            session.reject(exc.status, exc.reason)
            self._ended(call, f"media: {exc}", "system", exc.status)
            return
        session.answer(sdp)
        call.sip_status = 200
        if not await session.wait_confirmed(self.settings.sip.t1 * 64):
            self._ended(call, session.end_reason or "no ack", _ender(session, "caller"), session.final_status)
            return
        if not request.body:
            try:
                self.media.apply_answer(session, session.remote_sdp)
            except SipProtocolError as exc:
                log.info("call %s: unusable SDP answer in ACK: %s", call.id, exc)
                await session.bye("bad sdp")
        self._wire_leg(call, session)
        self._answered(call)
        try:
            await self.on_local_call(call, session)
        finally:
            if session.state != SessionState.TERMINATED:
                await session.bye()
            self._ended(call, session.end_reason or "hangup", _ender(session, "caller"))

    # ---- bridges -------------------------------------------------------------
    async def _bridge_to_trunk(self, call: Call, a_leg: InviteSession, trunk: Trunk, number: str) -> None:
        """B2BUA out through ``trunk``: media anchored in Cosmo, or bypassed when the trunk says so."""
        invite = a_leg.invite
        assert invite is not None and trunk.peer is not None
        b_leg = InviteSession.outgoing(
            self.ua,
            request_uri=trunk.request_uri(number),
            peer=trunk.peer,
            from_=_from_for_trunk(trunk, call.caller, self.settings.sip.domain),
            to=NameAddr(trunk.request_uri(number)),
            sdp=b"",
            credentials=trunk.outbound_credentials(),
        )
        anchored = trunk.settings.media == "anchor"
        if anchored:
            b_leg.set_offer(await self.media.offer(call, b_leg))
        else:
            b_leg.set_offer(invite.body)
        call.legs.append(Leg(LegRole.TRUNK, b_leg, number))
        b_leg.on_state.append(lambda s: _ring(a_leg) if s.state == SessionState.EARLY else None)
        start = asyncio.ensure_future(b_leg.start())
        cancel_wait = asyncio.ensure_future(a_leg.terminated.wait())
        done, _ = await asyncio.wait({start, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
        if cancel_wait in done and start not in done:
            b_leg.cancel()  # the caller gave up
            await start
            self._ended(call, "cancelled", "caller", 487)
            return
        cancel_wait.cancel()
        response = start.result()
        call.sip_status = response.status
        if response.status >= 300:
            if a_leg.state != SessionState.TERMINATED:
                # Our own credentials or reachability are not the caller's business.
                a_leg.reject(503 if response.status in (401, 407, 408) else response.status)
            self._ended(call, f"rejected {response.status}", "callee", response.status)
            return
        await self._connect(call, a_leg, b_leg, anchored=anchored)

    async def _bridge_to_agent(self, call: Call, a_leg: InviteSession, extension: str) -> None:
        b_leg = await self.ring_agent(extension, caller=call.caller, call=call,
                                      on_ringing=lambda: _ring(a_leg), cancelled=a_leg.terminated)
        if b_leg is None:
            if a_leg.state != SessionState.TERMINATED:
                a_leg.reject(480)
                self._ended(call, "no answer", "callee", 480)
            else:
                self._ended(call, "cancelled", "caller", 487)
            return
        call.legs.append(Leg(LegRole.AGENT, b_leg, extension))
        await self._connect(call, a_leg, b_leg, anchored=True)

    async def _connect(self, call: Call, a_leg: InviteSession, b_leg: InviteSession, *, anchored: bool) -> None:
        """Answer the A-leg now that the B-leg answered, bridge them, and wait for either to end."""
        invite = a_leg.invite
        assert invite is not None
        if a_leg.state == SessionState.TERMINATED:
            await b_leg.bye("cancelled")
            self._ended(call, "cancelled", "caller", 487)
            return
        try:
            if anchored:
                self.media.apply_answer(b_leg, b_leg.remote_sdp)
                if invite.body:
                    a_sdp = await self.media.answer(call, a_leg, invite.body)
                else:
                    a_sdp = await self.media.offer(call, a_leg)
            else:
                a_sdp = b_leg.remote_sdp
        except SipProtocolError as exc:
            a_leg.reject(exc.status, exc.reason)
            await b_leg.bye("bad sdp")
            self._ended(call, f"media: {exc}", "system", exc.status)
            return
        a_leg.answer(a_sdp)
        if not await a_leg.wait_confirmed(self.settings.sip.t1 * 64):
            await b_leg.bye("no ack")
            self._ended(call, a_leg.end_reason or "no ack", "caller", 200)
            return
        self._answered(call)
        if anchored:
            if not invite.body:
                self.media.apply_answer(a_leg, a_leg.remote_sdp)
            self._wire_leg(call, a_leg)
            self._wire_leg(call, b_leg)
            self._partners[id(a_leg)] = b_leg
            self._partners[id(b_leg)] = a_leg
            self.media.bridge(a_leg, b_leg)
        else:
            # Bypassed media: re-INVITEs keep the SDP each side already has.
            a_leg.on_reinvite = lambda s, offer: None
            b_leg.on_reinvite = lambda s, offer: None
        await _first_to_end(a_leg, b_leg)
        ender, other = (a_leg, b_leg) if a_leg.state == SessionState.TERMINATED else (b_leg, a_leg)
        await other.bye(ender.end_reason or "hangup")
        self._ended(call, ender.end_reason or "hangup", _ender(ender, "caller" if ender is a_leg else "callee"), 200)

    async def bridge_answered(self, call: Call, a_leg: InviteSession, b_leg: InviteSession,
                              role: LegRole, target: str, *,
                              keep_caller: Callable[[], bool] | None = None) -> InviteSession:
        """Bridge an answered caller to a just-answered leg (an agent from a queue, an
        overflow number), wait for either to hang up, hang up the other; returns the
        leg that ended first and ends the call.

        When ``b_leg`` ends first and ``keep_caller()`` says so, the caller stays on
        the line, unbridged, for what comes next (a transfer, a post-call survey);
        the call goes on.
        """
        call.legs.append(Leg(role, b_leg, target))
        b_leg.data["call_id"] = call.id
        self.media.apply_answer(b_leg, b_leg.remote_sdp)
        self._wire_leg(call, b_leg)
        self._partners[id(a_leg)] = b_leg
        self._partners[id(b_leg)] = a_leg
        self.media.bridge(a_leg, b_leg)
        await _first_to_end(a_leg, b_leg)
        ender, other = (a_leg, b_leg) if a_leg.state == SessionState.TERMINATED else (b_leg, a_leg)
        if ender is b_leg and keep_caller is not None and keep_caller():
            self._partners.pop(id(a_leg), None)
            self._partners.pop(id(b_leg), None)
            self.media.release_leg(b_leg)
            call.data[f"{role}_hangup_by"] = _ender(b_leg, "callee")
            return ender
        await other.bye(ender.end_reason or "hangup")
        self._ended(call, ender.end_reason or "hangup", _ender(ender, "caller" if ender is a_leg else "callee"), 200)
        return ender

    # ---- per-leg media wiring ---------------------------------------------------
    def _wire_leg(self, call: Call, session: InviteSession) -> None:
        """DTMF into the call's data, re-INVITEs to the media, SIP INFO DTMF."""
        rtp = self.media.rtp(session)
        if rtp is not None:
            rtp.dtmf_sinks.append(lambda digit: self._digit(call, digit.digit))
        session.on_reinvite = lambda s, offer: self.media.reoffer(s, offer)
        session.on_request = lambda s, request: self._in_dialog_request(call, s, request)

    def _digit(self, call: Call, digit: str) -> None:
        entered = call.data.get("dtmf", "")
        call.data["dtmf"] = f"{entered}{digit}" if isinstance(entered, str) else digit
        log.info("call %s: DTMF %s", call.id, digit)

    def _in_dialog_request(self, call: Call, session: InviteSession, request: SipRequest) -> int:
        if request.method == "INFO":
            digit = dtmf_from_info(request.content_type, request.body)
            if digit is None:
                return 415 if request.body else 200
            rtp = self.media.rtp(session)
            if rtp is not None:
                rtp.inject_digit(DtmfDigit(digit, 0, "sip-info"))
            else:
                self._digit(call, digit)
            return 200
        return 200 if request.method in ("OPTIONS", "NOTIFY", "UPDATE") else 501

    async def hold(self, session: InviteSession, on: bool) -> None:
        """Put a leg on hold from Cosmo's side (re-INVITE with ``a=sendonly``) or resume it;
        its partner hears music meanwhile.  Raises ``SessionError`` when the leg cannot
        take a re-INVITE, ``SipProtocolError`` for an unusable answer."""
        if session.state != SessionState.CONFIRMED:
            raise SessionError("the leg is not connected")
        response = await session.reinvite(self.media.hold_offer(session, on))
        if not 200 <= response.status < 300:
            raise SessionError(f"the phone refused the re-INVITE: {response.status} {response.reason}")
        if response.body:
            self.media.apply_answer(session, response.body)
        self._hold_changed(session, on)

    def park(self, session: InviteSession) -> None:
        """Take a bridged leg away from its partner without a re-INVITE (an attended
        transfer's consultation): the partner hears music, neither hears the other,
        and ``session`` is free to be bridged to someone else."""
        partner = self._partners.get(id(session))
        self.media.unbridge(session)
        if partner is not None:
            self.media.hold_music(partner)
        self._publish_hold(session, True)

    def unpark(self, session: InviteSession) -> None:
        """Bridge a parked leg back to its partner (the music stops)."""
        partner = self._partners.get(id(session))
        if partner is not None and partner.state != SessionState.TERMINATED:
            self.media.bridge(session, partner)
        self._publish_hold(session, False)

    def _publish_hold(self, key: object, holding: bool) -> None:
        call_id = getattr(key, "data", {}).get("call_id")
        if isinstance(call_id, str):
            self.events.publish(CallHeld(call_id=call_id, sip_call_id=getattr(key, "call_id", ""), held=holding))

    def _hold_changed(self, key: object, holding: bool) -> None:
        """A leg put the call on hold (or resumed): the other side hears music meanwhile."""
        partner = self._partners.get(id(key))
        self._publish_hold(key, holding)
        if partner is None:
            return
        relay = self.media.legs[key].relay if key in self.media.legs else None
        if holding:
            if relay is not None:
                if relay.a is self.media.rtp(key):
                    relay.to_b = False
                else:
                    relay.to_a = False
            self.media.hold_music(partner)
        else:
            self.media.stop_playing(partner, "resumed")
            if relay is not None:
                relay.to_a = relay.to_b = True

    def _rtp_timeout(self, key: object) -> None:
        """A leg's RTP stopped: end the whole call with BYE on every leg."""
        call_id = getattr(key, "data", {}).get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None:
            return
        log.info("call %s: RTP timeout, hanging up", call.id)
        for leg in call.legs:
            self._spawn(leg.session.bye("rtp-timeout"), f"rtp-timeout-{call.id}")

    async def welcome_then_hold(self, call: Call, session: InviteSession) -> None:
        """What a call to a number does until the IVR and queue take it: the welcome
        prompt, then music on hold until the caller hangs up."""
        player = self.media.play(session, ["welcome"])
        if player is not None:
            waiter = asyncio.ensure_future(session.terminated.wait())
            waits: list[asyncio.Future[Any]] = [player.done, waiter]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if session.state != SessionState.TERMINATED:
            self.media.hold_music(session)
            await session.terminated.wait()

    # ---- outbound verbs ----------------------------------------------------
    async def ring_agent(
        self,
        extension: str,
        *,
        caller: str = "",
        call: Call | None = None,
        timeout: float | None = None,
        on_ringing: Callable[[], None] | None = None,
        cancelled: asyncio.Event | None = None,
    ) -> InviteSession | None:
        """Ring every registered contact of ``extension`` in parallel (RFC 3261 §16.7-style fork).

        Each fork gets its own media offer.  Returns the session that answered
        first (the others are cancelled, or hung up if they answered too), or
        ``None`` when nobody answered within ``timeout`` (default
        :attr:`ring_timeout`) or ``cancelled`` was set.
        """
        bindings = self.location.bindings(aor_for(extension))
        if not bindings:
            return None
        call = call or Call(direction=Direction.OUTBOUND, caller=caller, callee=extension)
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
                sdp=b"",
                extra=(("X-Cosmo-Call", call.id),),
            )
            leg.set_offer(await self.media.offer(call, leg))
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
                    if 200 <= response.status < 300 and winner is None:
                        winner = starts[task]
        if cancel_task is not None:
            cancel_task.cancel()
        for leg in starts.values():
            if leg is winner:
                continue
            if leg.state in (SessionState.CALLING, SessionState.EARLY):
                leg.cancel()
            elif leg.state == SessionState.CONFIRMED:
                self._spawn(leg.bye("answered elsewhere"), f"bye-fork-{leg.call_id}")
            self.media.release_leg(leg)
        if winner is None:
            await asyncio.gather(*starts, return_exceptions=True)
        return winner

    async def dial_trunk(self, trunk: Trunk, number: str, call: Call, *, caller: str = "") -> InviteSession:
        """Place a call to ``number`` through ``trunk``; returns the session after its final response."""
        if trunk.peer is None:
            raise ValueError(f"trunk {trunk.name} has no outbound peer")
        session = InviteSession.outgoing(
            self.ua,
            request_uri=trunk.request_uri(number),
            peer=trunk.peer,
            from_=_from_for_trunk(trunk, caller, self.settings.sip.domain),
            to=NameAddr(trunk.request_uri(number)),
            sdp=b"",
            credentials=trunk.outbound_credentials(),
        )
        session.set_offer(await self.media.offer(call, session))
        await session.start()
        if session.state == SessionState.CONFIRMED:
            self.media.apply_answer(session, session.remote_sdp)
        else:
            self.media.release_leg(session)
        return session

    async def originate(self, target: str, *, caller: str = "cosmo") -> Call:
        """Place a call from Cosmo to an agent extension or an outside number (API, tests).

        Returns once the call was answered or failed; an answered call hears
        music on hold until either side hangs up (see :meth:`hangup`).
        """
        call = Call(direction=Direction.OUTBOUND, caller=caller, callee=target)
        self.calls[call.id] = call
        self.events.publish(CallStarted(call_id=call.id, direction="inbound" if call.direction == Direction.INBOUND else "outbound", caller=caller,
                                        callee=target, trunk=None))
        session: InviteSession | None
        if target in self.agent_extensions:
            session = await self.ring_agent(target, caller=caller, call=call)
            role = LegRole.AGENT
            if session is not None:
                self.media.apply_answer(session, session.remote_sdp)
        else:
            route = self.route(target)
            if route is None:
                self._ended(call, "no route", "system", 404)
                return call
            call.trunk = route[0].name
            session = await self.dial_trunk(route[0], route[1], call, caller=caller)
            role = LegRole.TRUNK
            if session.state != SessionState.CONFIRMED:
                # The refused leg stays on the call: its record names the INVITE.
                _add_placed_leg(call, Leg(role, session, target))
                self._ended(call, session.end_reason or "failed", "callee", session.final_status)
                return call
        if session is None:
            self._ended(call, "no answer", "callee", 480)
            return call
        _add_placed_leg(call, Leg(role, session, target))
        session.data["call_id"] = call.id
        call.sip_status = 200
        self._wire_leg(call, session)
        self._answered(call)
        self.media.hold_music(session)
        self._spawn(self._watch(call, session), f"watch-{call.id}")
        return call

    async def agent_dial(self, call: Call, extension: str, number: str) -> None:
        """Click-to-dial: ring the agent's phones, then dial ``number`` through the
        outbound routes and bridge the two until either hangs up."""
        self.calls[call.id] = call
        self.events.publish(CallStarted(call_id=call.id, direction="outbound", caller=extension, callee=number,
                                        trunk=None))
        agent_leg = await self.ring_agent(extension, caller=number, call=call)
        if agent_leg is None:
            self._ended(call, "agent did not answer", "callee", 480)
            return
        _add_placed_leg(call, Leg(LegRole.AGENT, agent_leg, extension))
        agent_leg.data["call_id"] = call.id
        self.media.apply_answer(agent_leg, agent_leg.remote_sdp)
        self._wire_leg(call, agent_leg)
        route = self.route(number)
        if route is None:
            await agent_leg.bye("no route")
            self._ended(call, "no route", "system", 404)
            return
        call.trunk = route[0].name
        customer = await self.dial_trunk(route[0], route[1], call)
        if customer.state != SessionState.CONFIRMED or agent_leg.state != SessionState.CONFIRMED:
            if customer.state == SessionState.CONFIRMED:
                await customer.bye("agent gone")
            await agent_leg.bye("customer did not answer")
            self._ended(call, customer.end_reason or "failed", "callee", customer.final_status)
            return
        call.sip_status = 200
        self._answered(call)
        await self.bridge_answered(call, agent_leg, customer, LegRole.TRUNK, number)

    def partner(self, session: InviteSession) -> InviteSession | None:
        """The leg ``session`` is bridged to, if any."""
        return self._partners.get(id(session))

    async def _watch(self, call: Call, session: InviteSession) -> None:
        await session.terminated.wait()
        self._ended(call, session.end_reason or "hangup", _ender(session, "callee"), 200)

    async def hangup(self, call_id: str, reason: str = "hangup") -> bool:
        """Hang up every leg of a call; False when there is no such call."""
        call = self.calls.get(call_id)
        if call is None:
            return False
        for leg in call.legs:
            await leg.session.bye(reason)
        return True


def _ender(session: InviteSession, remote: str) -> str:
    """Who ended a call, in the record's words: ``remote`` (caller or callee) or ``system``."""
    return "system" if session.ended_by == "local" else remote


def _add_placed_leg(call: Call, leg: Leg) -> None:
    """Add a leg Cosmo placed; the first one's INVITE gives the call its From and To."""
    call.legs.append(leg)
    invite = leg.session.invite
    if invite is not None and not call.from_uri:
        call.from_uri = invite.headers.get("From") or ""
        call.to_uri = invite.headers.get("To") or ""


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


def dtmf_from_info(content_type: str | None, body: bytes) -> str | None:
    """The digit of a SIP INFO DTMF body: ``application/dtmf-relay`` (``Signal=5``)
    or ``application/dtmf`` (``5``), as Cisco and most phones send them."""
    text = body.decode("ascii", "replace").strip()
    value: str | None = None
    if content_type == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, rest = line.partition("=")
            if name.strip().lower() == "signal":
                value = rest.strip()
    elif content_type == "application/dtmf":
        value = text
    if value is None:
        return None
    value = {"10": "*", "11": "#"}.get(value, value)
    return value if len(value) == 1 and value in "0123456789*#ABCDabcd" else None
