"""End to end with SIPp against a running ``cosmo serve``: registration with
digest, OPTIONS, inbound calls hung up from either side, CANCEL through the
B2BUA, and a 500-call run that must leave nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.cosmo_server import cosmo_server
from tests.peers.common import free_port
from tests.peers.sipp import run_sipp, start_sipp_uas

pytestmark = [pytest.mark.peers]

NUMBER = "+15550101"  # the demo number straight to a queue (no IVR)


def md5_first(settings: dict[str, Any]) -> None:
    # SIPp 3.6 computes only MD5 digests and answers the topmost challenge,
    # so these tests offer MD5 first (the demo's order too; RFC 8760 lets the
    # server choose it).
    settings["sip"]["auth"]["algorithms"] = ["MD5", "SHA-256"]


async def test_register_with_digest_and_unregister(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, md5_first) as server:
        result = await run_sipp("register_digest", server.sip_target, service="1001",
                                auth=("1001", "secret1001"), calls=3, rate=10, timeout=20)
        assert result.ok, result.describe()
        status, body = await server.api("GET", "/api/registrations?extension=1001")
        assert status == 200
        assert body["registrations"] == []  # the scenario ends by un-registering


async def test_register_with_wrong_password_is_refused(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, md5_first) as server:
        result = await run_sipp("register_bad_password", server.sip_target, service="1001",
                                auth=("1001", "wrong-password"), calls=2, rate=10, timeout=20)
        assert result.ok, result.describe()
        status, body = await server.api("GET", "/api/registrations?extension=1001")
        assert body["registrations"] == []


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, md5_first) as server:
        result = await run_sipp("register_bad_password", server.sip_target, service="7777",
                                auth=("7777", "anything"), calls=1, timeout=20)
        assert result.ok, result.describe()


async def test_options_keepalive_is_answered(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        for transport in ("u1", "t1"):
            result = await run_sipp("options", server.sip_target, calls=5, rate=20, transport=transport,
                                    service="cosmo", timeout=15)
            assert result.ok, f"{transport}: {result.describe()}"


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_inbound_call_answered_and_hung_up_by_caller(tmp_path: Path, transport: str) -> None:
    async with cosmo_server(tmp_path) as server:
        result = await run_sipp("uac_call", server.sip_target, service=NUMBER, calls=5, rate=10,
                                transport=transport, timeout=20)
        assert result.ok, result.describe()
        stats = await server.wait_idle(timeout=15)
        assert stats["calls"] == 0 and stats["sessions"] == 0


async def test_inbound_call_hung_up_by_cosmo(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        sipp = asyncio.ensure_future(
            run_sipp("uac_call_server_hangup", server.sip_target, service=NUMBER, calls=1, timeout=20)
        )
        calls: list[dict[str, Any]] = []
        for _ in range(100):
            _, body = await server.api("GET", "/api/calls")
            calls = [c for c in body["calls"] if c["answered_at"]]
            if calls:
                break
            await asyncio.sleep(0.1)
        assert calls, "the call never showed up as answered"
        status, body = await server.api("POST", f"/api/calls/{calls[0]['id']}/hangup")
        assert status == 200, body
        result = await sipp
        assert result.ok, result.describe()
        assert (await server.wait_idle(timeout=15))["sessions"] == 0


def transit_to(uas_port: int) -> Any:
    def change(settings: dict[str, Any]) -> None:
        settings["trunks"][0]["inbound"]["transit"] = True
        settings["trunks"].append(
            {"name": "carrier", "outbound": {"host": "127.0.0.1", "port": uas_port, "transport": "udp"}}
        )
        settings["routes"] = [{"pattern": r"^9\d+$", "trunk": "carrier", "strip": 1}]

    return change


async def test_cancel_before_answer_reaches_the_far_end(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with await start_sipp_uas("uas_ringing", port=uas_port, calls=2, timeout=30) as uas:
        async with cosmo_server(tmp_path, transit_to(uas_port)) as server:
            result = await run_sipp("uac_cancel", server.sip_target, service="95550123", calls=2, rate=5,
                                    timeout=20)
            assert result.ok, result.describe()
            uas_result = await uas.wait(timeout=20)
            assert uas_result.ok, uas_result.describe()
            assert (await server.wait_idle(timeout=15))["sessions"] == 0


async def test_unknown_number_is_404_and_no_call_is_free(tmp_path: Path) -> None:
    def no_trunk_for_loopback(settings: dict[str, Any]) -> None:
        settings["trunks"][0]["inbound"]["sources"] = ["10.255.255.0/24"]

    async with cosmo_server(tmp_path) as server:
        result = await run_sipp("uac_call", server.sip_target, service="+19999999", calls=1, timeout=10)
        assert not result.ok
        assert "404" in result.stderr or "404" in result.errors
    async with cosmo_server(tmp_path / "b", no_trunk_for_loopback) as server:
        result = await run_sipp("uac_call", server.sip_target, service=NUMBER, calls=1, timeout=10)
        assert not result.ok
        assert "407" in result.stderr or "407" in result.errors


async def test_500_calls_at_50_cps_leave_no_dialog_or_transaction(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        result = await run_sipp("uac_call", server.sip_target, service=NUMBER, calls=500, rate=50,
                                limit=200, timeout=120, extra_args=("-d", "200"))
        assert result.ok, result.describe()
        assert result.successful == 500 and result.failed == 0
        stats = await server.wait_idle(timeout=30)
        assert stats["calls"] == 0
        assert stats["sessions"] == 0
        assert stats["client_transactions"] == 0 and stats["server_transactions"] == 0
        assert stats["handler_errors"] == 0
