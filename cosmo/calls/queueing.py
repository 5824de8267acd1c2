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
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
        acd.register_channel(Channel.VOICE, self)

    # ---- entry points ------------------------------------------------------------------
    async def number_call(self, call: Call, session: InviteSession) -> None:
        """A call answered for a configured number: welcome, then its queue."""
        number = self.settings.numbers.get(call.callee)
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
        skills: dict[str, int] | None = None,
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
        item = WorkItem(id=call.id, channel=Channel.VOICE, queue=queue, priority=priority,
                        skills=skills or {}, data=data)
        waiting = _Waiting(call, session, item, spec)
        self._waiting[item.id] = waiting
        call.data["queue"] = queue
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
            if waiting.overflow_to.kind is OverflowKind.NUMBER:
                await self._to_number(waiting, waiting.overflow_to.destination)
            else:
                await self._voicemail(waiting, waiting.overflow_to.destination)
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
        try:
            if waiting.queue.record:
                self._start_recording(call, waiting.session, agent_leg)
            await self.manager.bridge_answered(call, waiting.session, agent_leg, LegRole.AGENT, extension)
        finally:
            self.acd.done(waiting.item.id)

    def _start_recording(self, call: Call, caller: InviteSession, agent: InviteSession) -> None:
        day = datetime.now(UTC)
        path = self.recordings / f"{day:%Y/%m/%d}" / f"{call.id}.wav"
        if self.media.record(path, caller, agent) is not None:
            call.data["recording"] = str(path)

    async def _to_number(self, waiting: _Waiting, number: str) -> None:
        route = self.manager._route(number)
        if route is None:
            log.warning("call %s: overflow number %s has no route", waiting.call.id, number)
            await self._play_and_wait(waiting.session, ["agents-busy", "goodbye"])
            await waiting.session.bye("no route")
            return
        trunk, dialled = route
        self.media.play(waiting.session, ["transferring"])
        leg = await self.manager.dial_trunk(trunk, dialled, waiting.call, caller=waiting.call.caller)
        if leg.state != SessionState.CONFIRMED or waiting.session.state == SessionState.TERMINATED:
            if leg.state == SessionState.CONFIRMED:
                await leg.bye("caller gone")
            else:
                await self._play_and_wait(waiting.session, ["agents-busy", "goodbye"])
                await waiting.session.bye("overflow failed")
            return
        await self.manager.bridge_answered(waiting.call, waiting.session, leg, LegRole.TRUNK, number)

    async def _voicemail(self, waiting: _Waiting, queue: str) -> None:
        """Record a message after the tone (``#`` or hang-up ends it) and queue it as a voicemail item."""
        session, call = waiting.session, waiting.call
        await self._play_and_wait(session, ["agents-busy", "leave-message", "beep"])
        if session.state == SessionState.TERMINATED:
            return
        path = self.voicemail_dir / f"{call.id}.wav"
        recorder = self.media.record(path, session)
        if recorder is None:
            await session.bye("voicemail failed")
            return
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
            await asyncio.wait([hangup, done], timeout=VOICEMAIL_MAX_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            done.cancel()
            if rtp is not None and sink in rtp.dtmf_sinks:
                rtp.dtmf_sinks.remove(sink)
            await self.media.stop_recording(recorder)
        call.data["voicemail"] = str(path)
        target_queue = queue if self.settings.queue(queue) is not None else waiting.item.queue
        item = WorkItem(
            id=f"vm-{call.id}",
            channel=Channel.VOICEMAIL,
            queue=target_queue,
            priority=waiting.item.priority,
            enqueued_at=waiting.item.enqueued_at,
            data={**waiting.item.data, "recording": str(path), "duration_s": round(time.time() - started, 1)},
        )
        try:
            await self.acd.enqueue(item)
        except AcdError as exc:
            log.warning("call %s: voicemail not queued: %s", call.id, exc)
        if session.state != SessionState.TERMINATED:
            await self._play_and_wait(session, ["goodbye"])
            await session.bye("voicemail")

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

    async def _play_and_wait(self, session: InviteSession, prompts: list[str]) -> None:
        player = self.media.play(session, prompts)
        if player is None:
            return
        hangup = asyncio.ensure_future(session.terminated.wait())
        try:
            waits: list[asyncio.Future[Any]] = [player.done, hangup]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()

