"""Real softphones against a running ``cosmo serve``: pjsua2 (the pjsua2-python
wheel) and baresip register as agent 1001 with digest, and receive the calls
Cosmo originates; hang-ups from either side end the call on both."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.cosmo_server import CosmoProcess, cosmo_server
from tests.peers.baresip import Baresip
from tests.peers.pjphone import PjPhone

pytestmark = [pytest.mark.peers]


async def originate(server: CosmoProcess, target: str) -> asyncio.Future[tuple[int, Any]]:
    return asyncio.ensure_future(server.api("POST", "/api/calls", {"to": target}))


def sha256_first(settings: dict[str, Any]) -> None:
    settings["sip"]["auth"]["algorithms"] = ["SHA-256", "MD5"]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_pjsua2_registers_and_answers_a_call_from_cosmo(tmp_path: Path, transport: str) -> None:
    # pjsip answers the topmost challenge it knows: SHA-256 here.
    async with cosmo_server(tmp_path, sha256_first) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj") as phone:
        await phone.register("1001", "secret1001", f"sip:127.0.0.1:{server.sip_port}", transport=transport)
        bindings = await server.registrations("1001")
        assert len(bindings) == 1 and bindings[0]["source"].startswith(f"{transport}:127.0.0.1:")

        placed = await originate(server, "1001")
        incoming = await phone.wait_incoming_call(timeout=10)
        assert "INVITE sip:1001@127.0.0.1" in incoming["msg"]
        await phone.answer(200)
        status, call = await placed
        assert status == 201 and call["answered"], call
        await phone.wait_call_state("CONFIRMED", timeout=5)

        # Cosmo hangs up: the phone sees BYE.
        status, _ = await server.api("POST", f"/api/calls/{call['id']}/hangup")
        assert status == 200
        await phone.wait_call_state("DISCONNECTED", timeout=5)
        assert (await server.wait_idle(timeout=15))["sessions"] == 0

        # The phone un-registers: the binding is gone.
        await phone.unregister()
        assert await server.registrations("1001") == []


async def test_pjsua2_hangs_up_first(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server, PjPhone(name="agent-1001", workdir=tmp_path / "pj") as phone:
        await phone.register("1001", "secret1001", f"sip:127.0.0.1:{server.sip_port}")
        placed = await originate(server, "1001")
        await phone.wait_incoming_call(timeout=10)
        await phone.answer(200)
        _, call = await placed
        await phone.wait_call_state("CONFIRMED", timeout=5)
        await phone.hangup()
        await phone.wait_call_state("DISCONNECTED", timeout=5)
        for _ in range(50):
            _, body = await server.api("GET", "/api/calls")
            if not body["calls"]:
                break
            await asyncio.sleep(0.1)
        assert body["calls"] == []


async def test_baresip_registers_and_answers_a_call_from_cosmo(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        phone = Baresip(
            name="agent-1001",
            aor=f"sip:1001@127.0.0.1:{server.sip_port}",
            password="secret1001",
            regint=300,
            workdir=tmp_path / "baresip",
        )
        async with phone:
            await server.wait_registered("1001")
            placed = await originate(server, "1001")
            await phone.wait_incoming_call()
            await phone.answer()
            status, call = await placed
            assert status == 201 and call["answered"], call
            await phone.wait_established()
            await phone.hangup()  # the phone ends the call
            await phone.wait_closed()
            assert (await server.wait_idle(timeout=15))["sessions"] == 0


async def test_both_phones_ring_first_answer_wins(tmp_path: Path) -> None:
    """Agent 1001 on two phones: both ring (parallel fork), the first to answer
    gets the call and the other is cancelled."""
    async with cosmo_server(tmp_path) as server, PjPhone(name="desk", workdir=tmp_path / "pj") as desk:
        mobile = Baresip(name="mobile", aor=f"sip:1001@127.0.0.1:{server.sip_port}", password="secret1001",
                         regint=300, workdir=tmp_path / "baresip")
        async with mobile:
            await desk.register("1001", "secret1001", f"sip:127.0.0.1:{server.sip_port}")
            await server.wait_registered("1001", count=2)
            placed = await originate(server, "1001")
            await desk.wait_incoming_call(timeout=10)
            await mobile.wait_incoming_call()
            await desk.answer(200)
            status, call = await placed
            assert status == 201 and call["answered"], call
            await mobile.wait_closed()  # CANCELled
            await desk.wait_call_state("CONFIRMED", timeout=5)
            await server.api("POST", f"/api/calls/{call['id']}/hangup")
            await desk.wait_call_state("DISCONNECTED", timeout=5)


async def test_unregistered_agent_is_not_called(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        status, call = await server.api("POST", "/api/calls", {"to": "1002"})
        assert status == 200 and not call["answered"]
        assert call["end_reason"] == "no answer"
