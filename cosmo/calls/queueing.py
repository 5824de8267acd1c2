"""The voice channel of the ACD: callers wait in queues, agents' phones ring.

Theory of operation
-------------------
:meth:`VoiceQueue.queue_call` turns an answered call into a ``voice`` work
item and keeps the caller company while it waits: music on hold, and every
``announce_interval_s`` their position and estimated wait (say-as fragments
from ``media/``).  The ACD decides who gets the call; its offers arrive here
(:class:`~cosmo.acd.service.ChannelHandler`):

* ``offer`` rings every registered phone of the agent (parallel fork).  The
  first phone to answer is bridged to the caller, if the ACD still agrees
  (``accepted``): an answer that comes after the offer was withdrawn — the
  ring timeout passed, the caller hung up — gets BYE, so nothing is ever
  assigned twice.  A phone that refuses, or an agent with no phone, is a
  decline (the ACD puts the call back in its place).
* ``withdraw`` cancels the ringing (RONA, the caller left, the agent logged out).
* ``overflow`` sends the caller on: to a number through the dial plan, or to
  a voicemail box (the message becomes a ``voicemail`` item of the same queue).

When caller and agent are bridged the call is recorded if the queue says so
(stereo WAV, caller left and agent right; its path lands on the CDR), and the
ACD hears ``done`` when either side hangs up, which starts the agent's wrap-up.
A caller who hangs up while waiting is an abandon with its wait time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmo.acd.errors import AcdError
from cosmo.acd.model import Channel, OverflowKind, OverflowTarget, WorkItem
from cosmo.calls.call import Call, LegRole
from cosmo.rtp.sayas import say_duration, say_position
from cosmo.sip.session import InviteSession, SessionState

if TYPE_CHECKING:
    from cosmo.acd.service import AcdService
    from cosmo.calls.manager import CallManager
    from cosmo.config import QueueSettings, Settings

__all__ = ["VoiceQueue"]

log = logging.getLogger(__name__)

POP_TIMEOUT_S = 0.5
"""Longest wait for the agent's screen-pop before the phone rings anyway."""

VOICEMAIL_MAX_S = 120.0
"""Longest voicemail message; ``#`` ends one sooner."""


@dataclass(eq=False)
class _Waiting:
    """A caller in a queue."""

    call: Call
    session: InviteSession
    item: WorkItem
    queue: QueueSettings
    ringing: dict[str, asyncio.Event] = field(default_factory=dict)
    connected: bool = False
    # Set with the outcome: the answered agent leg, or where an overflow sends the caller.
    agent_leg: InviteSession | None = None
    agent: str | None = None
    overflow_to: OverflowTarget | None = None
    outcome: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    announcer: asyncio.Task[None] | None = None

    def finish(self, outcome: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)


class VoiceQueue:
    """Queued callers and the ringing of agents' phones.  See the module documentation."""

    def __init__(self, manager: CallManager, acd: AcdService, settings: Settings) -> None:
        self.manager = manager
        self.acd = acd
        self.settings = settings
        self.media = manager.media
        self.recordings = settings.data_dir / "recordings"
        self.voicemail_dir = settings.data_dir / "voicemail"
        self._waiting: dict[str, _Waiting] = {}
        self._handoffs: dict[str, Callable[[], Awaitable[object]]] = {}
        # Awaited before an agent's phone rings (the CTI hub's screen-pop), bounded by POP_TIMEOUT_S.
        self.before_ring: Callable[[WorkItem, str], Awaitable[object]] | None = None
        # Runs an IVR flow on an answered caller: a number's flow, a queue's survey
        # for a caller left on the line (the composition root sets it).  False when
        # the flow is not served (its file is missing or was never valid).
        self.run_flow: Callable[[Call, InviteSession, str], Awaitable[bool]] | None = None
        acd.register_channel(Channel.VOICE, self)

    # ---- entry points ------------------------------------------------------------------
    async def number_call(self, call: Call, session: InviteSession) -> None:
        """A call answered for a configured number: its IVR flow, else welcome and its queue."""
        number = self.settings.numbers.get(call.callee)
        if number is not None and number.flow is not None and self.run_flow is not None:
            if await self.run_flow(call, session, number.flow):
                return
            log.warning("call %s: flow %r is not served; %s", call.id, number.flow,
                        f"queue {number.queue} instead" if number.queue else "welcome and music only")
        if number is None or number.queue is None:
            await self.manager.welcome_then_hold(call, session)
            return
        await self._play_and_wait(session, ["welcome"])
        if session.state != SessionState.TERMINATED:
            await self.queue_call(call, session, number.queue)

    async def queue_call(
        self,
        call: Call,
        session: InviteSession,
        queue: str,
        *,
        priority: int = 0,
        skills: Mapping[str, int] | None = None,
        announce: bool = True,
        item_id: str | None = None,
    ) -> str:
        """Queue an answered caller until an agent takes the call or the caller leaves,
        then stay with the caller: the bridge to the agent, or the overflow (a number,
        voicemail), until the caller's session ends.  The caller's session is owned by
        this one task from start to end, so the caller is hung up only when it returns.

        Returns the outcome: ``answered``, ``abandoned``, ``overflow`` or ``failed``.
        """
        spec = self.settings.queue(queue)
        if spec is None:
            log.warning("call %s: no queue %r", call.id, queue)
            return "failed"
        data: dict[str, object] = {"call_id": call.id, "caller": call.caller, "callee": call.callee}
        data.update({k: v for k, v in call.data.items() if k not in ("media",)})
        item = WorkItem(id=item_id or call.id, channel=Channel.VOICE, queue=queue, priority=priority,
                        skills=dict(skills or {}), data=data)
        waiting = _Waiting(call, session, item, spec)
        self._waiting[item.id] = waiting
        call.data["queue"] = queue
        call.data["priority"] = priority
        queued_at = time.time()
        try:
            if spec.record and spec.record_announcement:
                await self._play_and_wait(session, [spec.record_announcement])
            self.media.hold_music(session)
            await self.acd.enqueue(item)
        except AcdError as exc:
            log.warning("call %s: cannot queue to %s: %s", call.id, queue, exc)
            self._waiting.pop(item.id, None)
            await self._play_and_wait(session, ["agents-busy", "goodbye"])
            return "failed"
        if announce:
            waiting.announcer = asyncio.ensure_future(self._announce(waiting))
        hangup = asyncio.ensure_future(session.terminated.wait())
        try:
            either: list[asyncio.Future[Any]] = [waiting.outcome, hangup]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.outcome.done():
                call.data["queue_wait_s"] = round(time.time() - queued_at, 1)
                waiting.finish("abandoned")
                self.acd.abandon(item.id)
            elif not waiting.connected:
                call.data["queue_wait_s"] = round(time.time() - queued_at, 1)
        finally:
            hangup.cancel()
            if waiting.announcer is not None:
                waiting.announcer.cancel()
            for cancel in waiting.ringing.values():
                cancel.set()
            self._waiting.pop(item.id, None)
            call.data["queue_outcome"] = waiting.outcome.result() if waiting.outcome.done() else "failed"
        outcome = waiting.outcome.result()
        if outcome == "answered":
            await self._connect(waiting)
        elif outcome == "overflow" and waiting.overflow_to is not None:
            destination = waiting.overflow_to.destination
            if waiting.overflow_to.kind is OverflowKind.NUMBER:
                await self.transfer_to_number(call, session, destination)
            else:
                target = destination if self.settings.queue(destination) is not None else queue
                await self.record_voicemail(call, session, target, priority=priority,
                                            enqueued_at=item.enqueued_at, data=item.data)
        return outcome

    # ---- the ACD's channel interface -------------------------------------------------------
    def offer(self, item: WorkItem, extension: str) -> None:
        waiting = self._waiting.get(item.id)
        if waiting is None or waiting.outcome.done():
            self.acd.declined(item.id, extension, None)
            return
        cancel = asyncio.Event()
        waiting.ringing[extension] = cancel
        self.manager._spawn(self._ring(waiting, extension, cancel), f"ring-{extension}-{item.id}")

    def withdraw(self, item: WorkItem, extension: str, reason: str) -> None:
        waiting = self._waiting.get(item.id)
        if waiting is not None and (cancel := waiting.ringing.get(extension)) is not None:
            log.info("call %s: stop ringing %s (%s)", item.id, extension, reason)
            cancel.set()

    def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None:
        waiting = self._waiting.get(item.id)
        if waiting is None:
            return
        log.info("call %s: overflow to %s:%s (%s)", item.id, target.kind, target.destination, reason)
        waiting.call.data["overflow"] = f"{target.kind}:{target.destination}"
        waiting.overflow_to = target
        waiting.finish("overflow")  # queue_call takes the caller there
        if waiting.announcer is not None:
            waiting.announcer.cancel()

    # ---- ringing and bridging ------------------------------------------------------------------
    async def _ring(self, waiting: _Waiting, extension: str, cancel: asyncio.Event) -> None:
        item, call = waiting.item, waiting.call
        timeout = waiting.queue.ring_timeout_s + 5.0  # the ACD's ring timeout comes first
        try:
            if self.before_ring is not None:
                # The screen-pop reaches the agent's desktop before the phone rings.
                try:
                    await asyncio.wait_for(self.before_ring(item, extension), POP_TIMEOUT_S)
                except TimeoutError:
                    log.info("call %s: screen-pop to %s slow; ringing anyway", item.id, extension)
                except Exception:  # a desktop problem must not cost the caller the agent
                    log.exception("call %s: screen-pop to %s failed", item.id, extension)
            if cancel.is_set():
                return
            agent_leg = await self.manager.ring_agent(
                extension, caller=call.caller, call=call, timeout=timeout, cancelled=cancel
            )
        finally:
            if waiting.ringing.get(extension) is cancel:
                del waiting.ringing[extension]
        if agent_leg is None:
            if not cancel.is_set():
                self.acd.declined(item.id, extension, None)
            return
        if cancel.is_set() or waiting.outcome.done() or not self.acd.accepted(item.id, extension):
            log.info("call %s: %s answered too late; hanging up that phone", item.id, extension)
            await agent_leg.bye("answered too late")
            self.media.release_leg(agent_leg)
            return
        waiting.connected = True
        waiting.agent_leg, waiting.agent = agent_leg, extension
        call.data["agent"] = extension
        call.data["queue_wait_s"] = round(time.time() - (item.enqueued_at or time.time()), 1)
        waiting.finish("answered")  # queue_call bridges the caller to agent_leg
        if waiting.announcer is not None:
            waiting.announcer.cancel()

    async def _connect(self, waiting: _Waiting) -> None:
        """Bridge the caller to the agent who answered until either hangs up; then wrap-up."""
        call, agent_leg, extension = waiting.call, waiting.agent_leg, waiting.agent
        assert agent_leg is not None and extension is not None
        self.media.stop_playing(waiting.session, "answered")
        if waiting.queue.record:
            self._start_recording(call, waiting.session, agent_leg)
        await self.stay_bridged(call, waiting.session, agent_leg, extension, survey=waiting.queue.survey_flow,
                                on_end=lambda: self.acd.done(waiting.item.id))

    async def stay_bridged(
        self,
        call: Call,
        caller: InviteSession,
        agent_leg: InviteSession,
        extension: str,
        *,
        survey: str | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        """Bridge the caller to an agent's answered phone until either hangs up.

        When the agent's leg ends first the caller goes on to the hand-off an agent
        asked for (:meth:`hand_off`: a transfer), else to the ``survey`` flow; a
        caller who hangs up first ends the call.  ``on_end`` runs as the bridge ends
        (the ACD's ``done``: wrap-up starts).
        """
        call.data["agent"] = extension
        survey = survey if self.run_flow is not None else None

        def keep_caller() -> bool:
            return survey is not None or call.id in self._handoffs

        try:
            ender = await self.manager.bridge_answered(call, caller, agent_leg, LegRole.AGENT, extension,
                                                       keep_caller=keep_caller)
        finally:
            if on_end is not None:
                on_end()
        handoff = self._handoffs.pop(call.id, None)
        if ender is not agent_leg or caller.state == SessionState.TERMINATED:
            return
        if handoff is not None:
            await handoff()
        elif survey is not None and self.run_flow is not None:
            await self.run_flow(call, caller, survey)

    def hand_off(self, call: Call, then: Callable[[], Awaitable[object]]) -> None:
        """What the caller does once the agent's leg ends (a transfer): ``then`` runs in
        the task that owns the caller, instead of the call ending."""
        self._handoffs[call.id] = then

    def cancel_hand_off(self, call: Call) -> None:
        self._handoffs.pop(call.id, None)

    def _start_recording(self, call: Call, caller: InviteSession, agent: InviteSession) -> None:
        day = datetime.now(UTC)
        path = self.recordings / f"{day:%Y/%m/%d}" / f"{call.id}.wav"
        if self.media.record(path, caller, agent) is not None:
            call.data["recording"] = str(path)

    async def transfer_to_number(self, call: Call, session: InviteSession, number: str) -> bool:
        """Connect an answered caller to ``number`` through the dial plan and stay until
        either hangs up.  False (after telling the caller) when it could not be reached."""
        route = self.manager.route(number)
        if route is None:
            log.warning("call %s: no route to %s", call.id, number)
            await self._play_and_wait(session, ["agents-busy", "goodbye"])
            await session.bye("no route")
            return False
        trunk, dialled = route
        self.media.play(session, ["transferring"])
        leg = await self.manager.dial_trunk(trunk, dialled, call, caller=call.caller)
        if leg.state != SessionState.CONFIRMED or session.state == SessionState.TERMINATED:
            if leg.state == SessionState.CONFIRMED:
                await leg.bye("caller gone")
            elif session.state != SessionState.TERMINATED:
                await self._play_and_wait(session, ["agents-busy", "goodbye"])
                await session.bye("transfer failed")
            return False
        await self.manager.bridge_answered(call, session, leg, LegRole.TRUNK, number)
        return True

    async def record_voicemail(
        self,
        call: Call,
        session: InviteSession,
        queue: str,
        *,
        prompts: Sequence[str | Path] = ("agents-busy", "leave-message"),
        max_s: float = VOICEMAIL_MAX_S,
        priority: int = 0,
        enqueued_at: float | None = None,
        data: Mapping[str, Any] | None = None,
        language: str = "en",
    ) -> bool:
        """Record a message after the tone (``#``, hang-up or ``max_s`` ends it) and
        queue it in ``queue`` as a ``voicemail`` work item carrying ``data``.

        Returns False when nothing was recorded (the caller left before the tone).
        """
        await self._play_and_wait(session, [*prompts, "beep"], language)
        if session.state == SessionState.TERMINATED:
            return False
        path = self.voicemail_dir / f"{call.id}.wav"
        recorder = self.media.record(path, session)
        if recorder is None:
            await session.bye("voicemail failed")
            return False
        ended = asyncio.Event()
        rtp = self.media.rtp(session)
        sink = None
        if rtp is not None:
            def sink(digit: Any) -> None:
                if getattr(digit, "digit", "") == "#":
                    ended.set()

            rtp.dtmf_sinks.append(sink)
        started = time.time()
        hangup = asyncio.ensure_future(session.terminated.wait())
        done = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait([hangup, done], timeout=max_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            done.cancel()
            if rtp is not None and sink in rtp.dtmf_sinks:
                rtp.dtmf_sinks.remove(sink)
            await self.media.stop_recording(recorder)
        call.data["voicemail"] = str(path)
        base = {"call_id": call.id, "caller": call.caller, "callee": call.callee}
        item = WorkItem(
            id=f"vm-{call.id}",
            channel=Channel.VOICEMAIL,
            queue=queue,
            priority=priority,
            enqueued_at=enqueued_at,
            data={**base, **(data or {}), "recording": str(path), "duration_s": round(time.time() - started, 1)},
        )
        try:
            await self.acd.enqueue(item)
        except AcdError as exc:
            log.warning("call %s: voicemail not queued: %s", call.id, exc)
        if session.state != SessionState.TERMINATED:
            await self._play_and_wait(session, ["goodbye"], language)
            await session.bye("voicemail")
        return True

    # ---- what a waiting caller hears ----------------------------------------------------------
    async def _announce(self, waiting: _Waiting) -> None:
        interval = waiting.queue.announce_interval_s
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            if waiting.outcome.done() or waiting.ringing:
                continue
            position = self.acd.position(waiting.item.id)
            if position is None:
                continue
            prompts = say_position(position)
            estimate = self.acd.estimated_wait(waiting.item.queue, position)
            if estimate is not None:
                prompts += ["estimated-wait-time", *say_duration(estimate)]
            await self._play_and_wait(waiting.session, prompts)
            if not waiting.outcome.done() and waiting.session.state != SessionState.TERMINATED:
                self.media.hold_music(waiting.session)

    async def _play_and_wait(self, session: InviteSession, prompts: Sequence[str | Path],
                             language: str = "en") -> None:
        player = self.media.play(session, prompts, language=language)
        if player is None:
            return
        hangup = asyncio.ensure_future(session.terminated.wait())
        try:
            waits: list[asyncio.Future[Any]] = [player.done, hangup]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()

