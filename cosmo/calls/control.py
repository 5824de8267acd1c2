"""Call control for agents: what the agent desktop asks of a call, done by Cosmo.

Theory of operation
-------------------
The desktop never talks SIP.  It names an agent and one of the agent's calls;
:class:`AgentCallControl` checks that the call is that agent's, then acts on
the legs as a PBX would, so the phone follows the desktop rather than the
other way round:

* **hang up** — BYE to the agent's phone; the caller's side ends with it.
* **hold / resume** — a re-INVITE to the agent's phone (``a=sendonly``), the
  caller hears music on hold meanwhile; ``call.hold`` events tell the desktop,
  as they do when the phone holds by itself.
* **blind transfer** — to a queue, an agent or a number: the hand-off is
  registered with the voice channel first, then the agent's leg gets BYE; the
  task that owns the caller takes them on (:meth:`VoiceQueue.hand_off`), so the
  caller is never hung up in between.
* **attended transfer** — *consult*: the caller is parked on music (no
  re-INVITE: the agent's phone stays connected to Cosmo) and the target (an
  agent's phones, or a number) rings; once it answers it is bridged to the
  agent's phone.  *Complete*: the caller is handed to the target and the
  agent's leg gets BYE.  *Cancel* (or the target hanging up): the target's
  leg ends and the agent is bridged back to the caller.  An agent who hangs up
  mid-consultation completes the transfer when the target has answered, and
  otherwise sends the caller back to the queue.
* **click-to-dial** — the agent's phone rings first; once it answers, the
  customer is dialled through the outbound routes and the two are bridged.

Errors are :class:`CallControlError` with an HTTP-like status (403 not the
agent's call, 404 no such call/queue/route, 409 not possible in this state).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cosmo.acd.model import Channel, ItemState, WorkItem
from cosmo.aiotasks import BackgroundTasks
from cosmo.calls.call import Call, Direction, LegRole
from cosmo.sip.errors import SipError
from cosmo.sip.session import InviteSession, SessionState

if TYPE_CHECKING:
    from cosmo.calls.manager import CallManager
    from cosmo.calls.queueing import VoiceQueue

__all__ = ["AgentCallControl", "CallControlError", "TransferTarget"]

log = logging.getLogger(__name__)

TransferTarget = Literal["queue", "agent", "number"]

TRANSFER_RING_S = 20.0
"""How long an agent's phone rings for a transfer before the caller goes back to the queue."""


class CallControlError(Exception):
    """A call-control request that cannot be done; ``status`` says why, as HTTP would."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class _Consultation:
    """An attended transfer under way: the caller parked, the agent's phone with the target."""

    call: Call
    agent: str
    agent_leg: InviteSession
    caller: InviteSession
    kind: TransferTarget
    target: str
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    leg: InviteSession | None = None
    """The target's leg once it answered."""


class AgentCallControl:
    """See the module documentation."""

    def __init__(self, manager: CallManager, voice: VoiceQueue) -> None:
        self.manager = manager
        self.voice = voice
        self._transfers = itertools.count(1)
        self._tasks = BackgroundTasks(log, "call control: task")
        self._consultations: dict[str, _Consultation] = {}

    # ---- finding the agent's call ------------------------------------------------------
    def calls_of(self, extension: str) -> list[dict[str, Any]]:
        """The calls an agent's phone is in now (for the desktop's snapshot)."""
        found = []
        for call in self.manager.calls.values():
            for leg in call.legs:
                if leg.role == LegRole.AGENT and leg.target == extension \
                        and leg.session.state != SessionState.TERMINATED:
                    found.append({"call_id": call.id, "caller": call.caller, "callee": call.callee,
                                  "queue": call.data.get("queue"), "state": str(call.state)})
        return found

    def _legs(self, extension: str, call_id: str) -> tuple[Call, InviteSession, InviteSession | None]:
        call = self.manager.calls.get(call_id)
        if call is None:
            raise CallControlError(404, f"no call {call_id}")
        agent_leg = next((leg.session for leg in call.legs if leg.role == LegRole.AGENT and leg.target == extension
                          and leg.session.state != SessionState.TERMINATED), None)
        if agent_leg is None:
            raise CallControlError(403, f"call {call_id} is not agent {extension}'s")
        return call, agent_leg, self.manager.partner(agent_leg)

    # ---- verbs ---------------------------------------------------------------------------
    async def answer(self, extension: str, item_id: str) -> None:
        """Take an offered item from the desktop.  A call is answered on the phone
        that rings (409 here); other channels (an e-mail) are taken at once."""
        item = self._offered(extension, item_id)
        if item.channel == Channel.VOICE:
            raise CallControlError(409, "answer the call on your phone: it is ringing")
        if not self.voice.acd.accepted(item_id, extension):
            raise CallControlError(409, f"item {item_id} is no longer offered to agent {extension}")

    async def reject(self, extension: str, item_id: str) -> None:
        """Refuse an offered item: the phone stops ringing, the item goes back to its place,
        and the agent goes not ready as after a ring time-out (the ACD's no-answer reason),
        so the same work is not offered straight back."""
        self._offered(extension, item_id)
        self.voice.acd.declined(item_id, extension)

    def _offered(self, extension: str, item_id: str) -> WorkItem:
        item = self.voice.acd.item(item_id)
        if item is None:
            raise CallControlError(404, f"no item {item_id}")
        if item.agent != extension or item.state != ItemState.OFFERED:
            raise CallControlError(403, f"item {item_id} is not offered to agent {extension}")
        return item

    async def consult(self, extension: str, call_id: str, kind: TransferTarget, target: str) -> None:
        """Attended transfer, first step: the caller hears music, and the agent's phone is
        connected to the target (another agent's phones, or a number through the dial plan)
        as soon as it answers.  Returns at once; the target rings meanwhile."""
        call, agent_leg, caller = self._legs(extension, call_id)
        if caller is None or call.leg(LegRole.CALLER) is None:
            raise CallControlError(409, f"call {call_id} has no caller to transfer")
        if call.id in self._consultations:
            raise CallControlError(409, f"call {call_id} is already in a consultation")
        if kind == "queue":
            raise CallControlError(400, "a consultation is with an agent or a number; a queue takes a blind transfer")
        self._check_target(extension, kind, target)
        log.info("call %s: agent %s consults %s %s", call.id, extension, kind, target)
        consultation = _Consultation(call, extension, agent_leg, caller, kind, target)
        self._consultations[call.id] = consultation
        self.manager.park(agent_leg)
        # Should the agent hang up meanwhile, the caller goes on to the target (or back to the queue).
        self.voice.hand_off(call, lambda: self._agent_left(consultation))
        self._spawn(self._place(consultation), f"consult-{call.id}")

    async def complete_transfer(self, extension: str, call_id: str) -> None:
        """Attended transfer, done: the caller is connected to the consulted party; the agent leaves."""
        consultation = self._consultation(extension, call_id)
        leg = consultation.leg
        if leg is None or leg.state != SessionState.CONFIRMED:
            raise CallControlError(409, f"{consultation.target} has not answered: wait, or go back to the caller")
        del self._consultations[call_id]
        consultation.call.data["transferred_by"] = extension
        self.voice.hand_off(consultation.call, lambda: self._join(consultation, leg))
        log.info("call %s: agent %s completes the transfer to %s", call_id, extension, consultation.target)
        await consultation.agent_leg.bye("transferred")

    async def cancel_transfer(self, extension: str, call_id: str) -> None:
        """Attended transfer, abandoned: the consulted party is hung up, the agent is back with the caller."""
        consultation = self._consultation(extension, call_id)
        await self._back_to_caller(consultation, "consultation cancelled")

    def _consultation(self, extension: str, call_id: str) -> _Consultation:
        self._legs(extension, call_id)
        consultation = self._consultations.get(call_id)
        if consultation is None:
            raise CallControlError(409, f"call {call_id} has no consultation")
        return consultation

    async def _back_to_caller(self, consultation: _Consultation, reason: str) -> None:
        if self._consultations.get(consultation.call.id) is not consultation:
            return
        del self._consultations[consultation.call.id]
        consultation.cancelled.set()
        self.voice.cancel_hand_off(consultation.call)
        if consultation.leg is not None:
            await consultation.leg.bye(reason)
            self.manager.media.release_leg(consultation.leg)
        if consultation.agent_leg.state != SessionState.TERMINATED:
            self.manager.unpark(consultation.agent_leg)

    async def _place(self, consultation: _Consultation) -> None:
        """Ring the target; once it answers, connect it to the agent's phone until it hangs up."""
        call = consultation.call
        leg: InviteSession | None
        if consultation.kind == "agent":
            leg = await self.manager.ring_agent(consultation.target, caller=consultation.agent, call=call,
                                                timeout=TRANSFER_RING_S, cancelled=consultation.cancelled)
        else:
            route = self.manager.route(consultation.target)
            leg = await self.manager.dial_trunk(route[0], route[1], call, caller=consultation.agent) \
                if route is not None else None
            if leg is not None and leg.state != SessionState.CONFIRMED:
                leg = None
        if leg is None:
            log.info("call %s: %s did not answer the consultation", call.id, consultation.target)
            return
        if consultation.cancelled.is_set() or consultation.agent_leg.state == SessionState.TERMINATED:
            await leg.bye("consultation over")
            return
        consultation.leg = leg
        leg.data["call_id"] = call.id
        self.manager.media.apply_answer(leg, leg.remote_sdp)
        self.manager.media.bridge(consultation.agent_leg, leg)
        await leg.terminated.wait()
        # The consulted party hung up before the transfer was completed: back with the caller.
        await self._back_to_caller(consultation, "consulted party hung up")

    async def _agent_left(self, consultation: _Consultation) -> None:
        """The agent hung up during the consultation: a connected target takes the caller
        (as if the agent completed the transfer); otherwise the caller goes back to the queue."""
        if self._consultations.get(consultation.call.id) is not consultation:
            return
        del self._consultations[consultation.call.id]
        leg = consultation.leg
        if leg is not None and leg.state == SessionState.CONFIRMED:
            consultation.call.data["transferred_by"] = consultation.agent
            await self._join(consultation, leg)
            return
        consultation.cancelled.set()
        await self._requeue(consultation.call, consultation.caller)

    async def _join(self, consultation: _Consultation, leg: InviteSession) -> None:
        """Bridge the caller to the consulted party until either hangs up."""
        call, caller = consultation.call, consultation.caller
        if consultation.kind == "agent":
            await self.voice.stay_bridged(call, caller, leg, consultation.target)
        else:
            await self.manager.bridge_answered(call, caller, leg, LegRole.TRUNK, consultation.target)

    async def _requeue(self, call: Call, caller: InviteSession) -> None:
        """A transfer that found nobody: the caller waits in the call's queue again (or the call ends)."""
        queue = call.data.get("queue")
        if isinstance(queue, str) and caller.state != SessionState.TERMINATED:
            await self.voice.queue_call(call, caller, queue, item_id=f"{call.id}-t{next(self._transfers)}")
        elif caller.state != SessionState.TERMINATED:
            await caller.bye("transfer failed")

    def _check_target(self, extension: str, kind: TransferTarget, target: str) -> None:
        """A transfer's target exists (404) and is not the agent itself (409)."""
        if kind == "queue":
            if self.voice.settings.queue(target) is None:
                raise CallControlError(404, f"no queue {target}")
        elif kind == "agent":
            if target not in self.manager.agent_extensions:
                raise CallControlError(404, f"no agent {target}")
            if target == extension:
                raise CallControlError(409, "a call cannot be transferred to the agent who has it")
        elif kind == "number":
            if self.manager.route(target) is None:
                raise CallControlError(404, f"no route to {target}")
        else:
            raise CallControlError(400, f"unknown transfer target kind {kind!r}")

    async def hangup(self, extension: str, call_id: str) -> None:
        """End the agent's part of the call (the caller's side ends with it)."""
        _, agent_leg, _ = self._legs(extension, call_id)
        await agent_leg.bye("agent hung up")

    async def hold(self, extension: str, call_id: str, on: bool) -> None:
        """Hold (caller hears music) or resume the call from the agent's side."""
        _, agent_leg, partner = self._legs(extension, call_id)
        if partner is None:
            raise CallControlError(409, f"call {call_id} is not connected to anyone")
        try:
            await self.manager.hold(agent_leg, on)
        except SipError as exc:
            raise CallControlError(409, f"cannot {'hold' if on else 'resume'} call {call_id}: {exc}") from exc

    async def transfer(self, extension: str, call_id: str, kind: TransferTarget, target: str) -> None:
        """Blind transfer of the caller to a queue, an agent or a number; the agent's leg ends."""
        call, agent_leg, partner = self._legs(extension, call_id)
        if partner is None or call.leg(LegRole.CALLER) is None:
            raise CallControlError(409, f"call {call_id} has no caller to transfer")
        if call.id in self._consultations:
            raise CallControlError(409, f"call {call_id} is in a consultation: complete or cancel it first")
        self._check_target(extension, kind, target)
        caller = partner
        then: Callable[[], Awaitable[object]]
        if kind == "queue":
            item_id = f"{call.id}-t{next(self._transfers)}"
            kept = call.data.get("priority")
            priority = kept if isinstance(kept, int) else 0

            def then() -> Awaitable[object]:
                return self.voice.queue_call(call, caller, target, priority=priority, item_id=item_id)
        elif kind == "agent":

            def then() -> Awaitable[object]:
                return self._to_agent(call, caller, target)
        else:

            def then() -> Awaitable[object]:
                return self.voice.transfer_to_number(call, caller, target)
        log.info("call %s: agent %s transfers the caller to %s %s", call.id, extension, kind, target)
        call.data["transferred_by"] = extension
        self.voice.hand_off(call, then)
        await agent_leg.bye("transferred")

    async def _to_agent(self, call: Call, caller: InviteSession, extension: str) -> None:
        self.voice.media.play(caller, ["transferring"])
        leg = await self.manager.ring_agent(extension, caller=call.caller, call=call, timeout=TRANSFER_RING_S)
        if leg is None or caller.state == SessionState.TERMINATED:
            if leg is not None:
                await leg.bye("caller gone")
            await self._requeue(call, caller)
            return
        await self.voice.stay_bridged(call, caller, leg, extension)

    async def dial(self, extension: str, number: str) -> str:
        """Click-to-dial: ring the agent's phone, then the customer; returns the call id."""
        if extension not in self.manager.agent_extensions:
            raise CallControlError(404, f"no agent {extension}")
        if self.manager.route(number) is None:
            raise CallControlError(404, f"no route to {number}")
        call = Call(direction=Direction.OUTBOUND, caller=extension, callee=number)
        self._spawn(self.manager.agent_dial(call, extension, number), f"dial-{call.id}")
        return call.id

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        self._tasks.spawn(coro, name)

    async def close(self) -> None:
        await self._tasks.close()
