"""Agents' call control against a running ``cosmo serve`` and real pjsua2 phones.

Hold from Cosmo's side (the caller hears music, the agent's phone gets a
re-INVITE), resume (the agent's tone reaches the caller again), a blind
transfer to another queue (the caller waits there, the agent wraps up), a
transfer to another agent's phone, and the refusals: a call that is not the
agent's, an unknown queue or call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.acd.test_end_to_end import (
    AGENT_TONE,
    CALLER_TONE,
    NUMBER,
    login,
    set_state,
    short_times,
    tone_of,
    wait_agent,
    wait_items,
)
from tests.cosmo_server import CosmoProcess, cosmo_server
from tests.peers.pjphone import PjPhone

pytestmark = [pytest.mark.peers]


async def control(server: CosmoProcess, path: str, body: dict[str, Any] | None, status: int) -> dict[str, Any]:
    got, answer = await server.api("POST", path, body if body is not None else {})
    assert got == status, answer
    return answer  # type: ignore[no-any-return]


async def connected(server: CosmoProcess, caller: PjPhone, agent: PjPhone, extension: str) -> tuple[int, int, str]:
    """A caller put through to ``extension``: (caller's call, agent's call, Cosmo's call id)."""
    call = await caller.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
    await caller.play_tone(CALLER_TONE, call=call)
    await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
    incoming = (await agent.wait_incoming_call(timeout=20))["call"]
    await agent.play_tone(AGENT_TONE, call=incoming)
    await agent.answer(200, call=incoming)
    await agent.wait_call_state("CONFIRMED", timeout=10, call=incoming)
    await wait_agent(server, extension, state="busy")
    status, body = await server.api("GET", f"/api/agents/{extension}/calls")
    assert status == 200 and len(body["calls"]) == 1, body
    return call, incoming, body["calls"][0]["call_id"]


async def test_hold_resume_and_transfer_to_a_queue(tmp_path: Path) -> None:
    on_hold = tmp_path / "caller-on-hold.wav"
    resumed = tmp_path / "caller-resumed.wav"
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        await login(server, ada, "1001")
        await set_state(server, "1001", "available")
        call, incoming, call_id = await connected(server, caller, ada, "1001")

        # Refusals change nothing.
        refused = await control(server, f"/api/agents/1002/calls/{call_id}/hold", {"on": True}, 403)
        assert refused["error"] == f"call {call_id} is not agent 1002's"
        refused = await control(server, "/api/agents/1001/calls/nope/hangup", None, 404)
        assert refused["error"] == "no call nope"
        refused = await control(server, f"/api/agents/1001/calls/{call_id}/transfer",
                                {"kind": "queue", "target": "nowhere"}, 404)
        assert refused["error"] == "no queue nowhere"
        refused = await control(server, f"/api/agents/1001/calls/{call_id}/transfer", {"kind": "fax"}, 400)

        # Hold: the phone gets a re-INVITE, the caller hears the music instead of the agent's tone.
        await control(server, f"/api/agents/1001/calls/{call_id}/hold", {"on": True}, 200)
        await caller.record(on_hold, call=call)
        await asyncio.sleep(2.0)
        await caller.stop_record(call=call)
        await control(server, f"/api/agents/1001/calls/{call_id}/hold", {"on": False}, 200)
        await caller.record(resumed, call=call)
        await asyncio.sleep(2.0)
        await caller.stop_record(call=call)

        # Blind transfer to billing: the agent's phone is hung up, the caller waits in billing.
        await control(server, f"/api/agents/1001/calls/{call_id}/transfer", {"kind": "queue", "target": "billing"},
                      200)
        await ada.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        [waiting] = await wait_items(server, 1, "billing")
        assert waiting["data"]["caller"] == "caller" and waiting["data"]["transferred_by"] == "1001", waiting
        await wait_agent(server, "1001", state="wrap_up")
        assert (await caller.calls())[0]["state"] == "CONFIRMED"
        await caller.hangup(call=call)
        await wait_items(server, 0, "billing")

    held_freq, held_level = tone_of(on_hold)
    assert abs(held_freq - AGENT_TONE) > 20 and held_level > -45, (held_freq, held_level)
    back_freq, back_level = tone_of(resumed)
    assert abs(back_freq - AGENT_TONE) < 10 and back_level > -40, (back_freq, back_level)


async def test_transfer_to_another_agent(tmp_path: Path) -> None:
    heard = tmp_path / "caller-heard.wav"
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="agent-1002", workdir=tmp_path / "pj2") as grace, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        await login(server, ada, "1001")
        await login(server, grace, "1002")
        await set_state(server, "1001", "available")
        call, incoming, call_id = await connected(server, caller, ada, "1001")

        await control(server, f"/api/agents/1001/calls/{call_id}/transfer", {"kind": "agent", "target": "1002"}, 200)
        await ada.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        second = (await grace.wait_incoming_call(timeout=20))["call"]
        await grace.play_tone(660, call=second)
        await grace.answer(200, call=second)
        await grace.wait_call_state("CONFIRMED", timeout=10, call=second)
        await asyncio.sleep(0.5)
        await caller.record(heard, call=call)
        await asyncio.sleep(2.0)
        await caller.stop_record(call=call)
        status, body = await server.api("GET", "/api/agents/1002/calls")
        assert status == 200 and [c["call_id"] for c in body["calls"]] == [call_id], body
        await grace.hangup(call=second)
        await caller.wait_call_state("DISCONNECTED", timeout=10, call=call)

    freq, level = tone_of(heard)
    assert abs(freq - 660) < 10 and level > -40, (freq, level)


async def test_attended_transfer_consult_cancel_then_complete(tmp_path: Path) -> None:
    consulting = tmp_path / "caller-while-consulting.wav"
    agent_hears = tmp_path / "agent-hears-target.wav"
    back = tmp_path / "caller-back-with-agent.wav"
    after = tmp_path / "caller-after-transfer.wav"
    target_tone = 660
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="agent-1002", workdir=tmp_path / "pj2") as grace, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        await login(server, ada, "1001")
        await login(server, grace, "1002")
        await set_state(server, "1001", "available")
        call, incoming, call_id = await connected(server, caller, ada, "1001")
        base = f"/api/agents/1001/calls/{call_id}"
        refused = await control(server, f"{base}/complete", None, 409)
        assert refused["error"] == f"call {call_id} has no consultation"
        await control(server, f"{base}/consult", {"kind": "queue", "target": "billing"}, 400)

        # Consult 1002, then go back to the caller: 1002's phone is hung up, the agent hears the caller again.
        await control(server, f"{base}/consult", {"kind": "agent", "target": "1002"}, 200)
        first = (await grace.wait_incoming_call(timeout=20))["call"]
        await grace.play_tone(target_tone, call=first)
        await grace.answer(200, call=first)
        await grace.wait_call_state("CONFIRMED", timeout=10, call=first)
        await asyncio.sleep(0.5)
        await caller.record(consulting, call=call)
        await ada.record(agent_hears, call=incoming)
        await asyncio.sleep(2.0)
        await caller.stop_record(call=call)
        await ada.stop_record(call=incoming)
        await control(server, f"{base}/cancel", None, 200)
        await grace.wait_call_state("DISCONNECTED", timeout=10, call=first)
        await asyncio.sleep(0.5)
        await caller.record(back, call=call)
        await asyncio.sleep(1.5)
        await caller.stop_record(call=call)

        # Consult again and complete: the agent leaves, the caller and 1002 talk.
        await control(server, f"{base}/consult", {"kind": "agent", "target": "1002"}, 200)
        second = (await grace.wait_incoming_call(timeout=20))["call"]
        refused = await control(server, f"{base}/complete", None, 409)
        assert refused["error"] == "1002 has not answered: wait, or go back to the caller"
        await grace.play_tone(target_tone, call=second)
        await grace.answer(200, call=second)
        await grace.wait_call_state("CONFIRMED", timeout=10, call=second)
        await asyncio.sleep(0.3)
        await control(server, f"{base}/complete", None, 200)
        await ada.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        await wait_agent(server, "1001", state="wrap_up")
        await asyncio.sleep(0.5)
        await caller.record(after, call=call)
        await asyncio.sleep(1.5)
        await caller.stop_record(call=call)
        status, body = await server.api("GET", "/api/agents/1002/calls")
        assert status == 200 and [c["call_id"] for c in body["calls"]] == [call_id], body
        await caller.hangup(call=call)
        await grace.wait_call_state("DISCONNECTED", timeout=10, call=second)

    held_freq, held_level = tone_of(consulting)  # music on hold: neither agent's tone
    assert abs(held_freq - AGENT_TONE) > 20 and abs(held_freq - target_tone) > 20 and held_level > -45, \
        (held_freq, held_level)
    freq, level = tone_of(agent_hears)
    assert abs(freq - target_tone) < 10 and level > -40, (freq, level)
    freq, level = tone_of(back)
    assert abs(freq - AGENT_TONE) < 10 and level > -40, (freq, level)
    freq, level = tone_of(after)
    assert abs(freq - target_tone) < 10 and level > -40, (freq, level)
