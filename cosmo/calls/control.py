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
* **click-to-dial** — the agent's phone rings first; once it answers, the
  customer is dialled through the outbound routes and the two are bridged.

Errors are :class:`CallControlError` with an HTTP-like status (403 not the
agent's call, 404 no such call/queue/route, 409 not possible in this state).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from cosmo.acd.model import Channel, ItemState, WorkItem
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


class AgentCallControl:
    """See the module documentation."""

    def __init__(self, manager: CallManager, voice: VoiceQueue) -> None:
        self.manager = manager
        self.voice = voice
        self._transfers = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

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
        """Attended transfer is not offered yet: a blind transfer is."""
        self._legs(extension, call_id)
        raise CallControlError(501, "attended transfer is not available yet: use a blind transfer")

    async def complete_transfer(self, extension: str, call_id: str) -> None:
        self._legs(extension, call_id)
        raise CallControlError(409, f"call {call_id} has no consultation to complete")

    async def cancel_transfer(self, extension: str, call_id: str) -> None:
        self._legs(extension, call_id)
        raise CallControlError(409, f"call {call_id} has no consultation to cancel")

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
        caller = partner
        then: Callable[[], Awaitable[object]]
        if kind == "queue":
            if self.voice.settings.queue(target) is None:
                raise CallControlError(404, f"no queue {target}")
            item_id = f"{call.id}-t{next(self._transfers)}"
            kept = call.data.get("priority")
            priority = kept if isinstance(kept, int) else 0

            def then() -> Awaitable[object]:
                return self.voice.queue_call(call, caller, target, priority=priority, item_id=item_id)
        elif kind == "agent":
            if target not in self.manager.agent_extensions:
                raise CallControlError(404, f"no agent {target}")
            if target == extension:
                raise CallControlError(409, "a call cannot be transferred to the agent who has it")

            def then() -> Awaitable[object]:
                return self._to_agent(call, caller, target)
        elif kind == "number":
            if self.manager.route(target) is None:
                raise CallControlError(404, f"no route to {target}")

            def then() -> Awaitable[object]:
                return self.voice.transfer_to_number(call, caller, target)
        else:
            raise CallControlError(400, f"unknown transfer target kind {kind!r}")
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
            queue = call.data.get("queue")
            if isinstance(queue, str) and caller.state != SessionState.TERMINATED:
                await self.voice.queue_call(call, caller, queue, item_id=f"{call.id}-t{next(self._transfers)}")
            return
        await self.voice.stay_bridged(call, caller, leg, extension)

    async def dial(self, extension: str, number: str) -> str:
        """Click-to-dial: ring the agent's phone, then the customer; returns the call id."""
        if extension not in self.manager.agent_extensions:
            raise CallControlError(404, f"no agent {extension}")
        if self.manager.route(number) is None:
            raise CallControlError(404, f"no route to {number}")
        call = Call(direction=Direction.OUTBOUND, caller=extension, callee=number)
        task = asyncio.get_running_loop().create_task(self.manager.agent_dial(call, extension, number),
                                                      name=f"dial-{call.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call.id

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
