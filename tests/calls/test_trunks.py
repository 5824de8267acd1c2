"""End to end with SIPp as the provider behind a trunk: registration with
digest (refreshed before the granted expiry, removed on shutdown), outbound
calls that answer a 407 challenge, a B2BUA transit call whose B-leg is
challenged, and the call records these calls leave in the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cosmo_server import CosmoProcess, cosmo_server
from tests.peers.common import free_port
from tests.peers.sipp import SippUas, run_sipp, start_sipp_uas

pytestmark = [pytest.mark.peers]

USERNAME = "cosmo-trunk"
PASSWORD = "s3cret"
REALM = "provider-test"
# Dialled numbers: routes strip the first digit, so both trunks dial DIALLED.
VIA_PROVIDER = "95550123"
VIA_PROVIDER_BAD = "85550123"
DIALLED = "5550123"


def keys(**values: str) -> tuple[str, ...]:
    """SIPp ``-key name value`` arguments."""
    args: list[str] = []
    for name, value in values.items():
        args += ["-key", name, value]
    return tuple(args)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def rfc2069_response(username: str, realm: str, password: str, nonce: str, method: str, uri: str) -> str:
    """The digest ``response`` without qop (RFC 2617 section 3.2.2.1, RFC 2069 form)."""
    return md5(f"{md5(f'{username}:{realm}:{password}')}:{nonce}:{md5(f'{method}:{uri}')}")


def provider_trunk(name: str, port: int, password: str = PASSWORD,
                   register: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trunk to the SIPp provider on 127.0.0.1:``port`` with outbound credentials."""
    trunk: dict[str, Any] = {
        "name": name,
        "outbound": {"host": "127.0.0.1", "port": port, "transport": "udp",
                     "username": USERNAME, "password": password},
    }
    if register is not None:
        trunk["register"] = register
    return trunk


def with_provider(port: int, *, password: str = PASSWORD, bad_trunk: bool = False,
                  register: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], None]:
    """Config change: trunk ``provider`` (and ``provider-bad`` with a wrong password)
    to the SIPp provider; the demo trunk may transit to them."""

    def change(settings: dict[str, Any]) -> None:
        settings["trunks"][0]["inbound"]["transit"] = True
        settings["trunks"].append(provider_trunk("provider", port, password, register))
        settings["routes"] = [{"pattern": r"^9\d+$", "trunk": "provider", "strip": 1}]
        if bad_trunk:
            settings["trunks"].append(provider_trunk("provider-bad", port, "not-" + PASSWORD))
            settings["routes"].append({"pattern": r"^8\d+$", "trunk": "provider-bad", "strip": 1})

    return change


async def start_auth_uas(port: int, calls: int) -> SippUas:
    """SIPp ``uas_auth_invite`` on ``port`` expecting the trunk's credentials for DIALLED."""
    nonce = secrets.token_hex(8)
    uri = f"sip:{DIALLED}@127.0.0.1:{port}"
    response = rfc2069_response(USERNAME, REALM, PASSWORD, nonce, "INVITE", uri)
    args = keys(user=USERNAME, realm=REALM, nonce=nonce, response=response)
    return await start_sipp_uas("uas_auth_invite", port=port, calls=calls, timeout=30, extra_args=args)


async def logged(server: CosmoProcess, text: str, count: int, timeout: float) -> bool:
    """Whether the server logged ``text`` ``count`` times within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while server.log().count(text) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def wait_no_calls(server: CosmoProcess, timeout: float) -> dict[str, Any]:
    """Until no call or session is left (transactions may linger); returns the last stats."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await server.stats()
        if (not stats["calls"] and not stats["sessions"]) or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.2)


async def test_provider_registration_with_digest_is_refreshed_and_removed(tmp_path: Path) -> None:
    # The registrar grants 8 s although 60 s were asked: the refresh is due at
    # 80 % of the granted 8 s; the scenario accepts it from 6 s up to 8 s.
    uas_port = free_port("both")
    args = keys(user=USERNAME, password=PASSWORD, expires="8", refresh_min="6", refreshes="1")
    register = {"enabled": True, "expires": 60}
    async with await start_sipp_uas("uas_registrar_auth", port=uas_port, calls=1, timeout=30,
                                    extra_args=args) as uas:
        async with cosmo_server(tmp_path, with_provider(uas_port, register=register)) as server:
            assert await logged(server, "trunk provider: registered (200)", count=2, timeout=12), \
                server.log()[-3000:]
        # Stopping the server removed the binding (Expires: 0), which ends the scenario.
        result = await uas.wait(timeout=10)
        assert result.ok, result.describe()
        assert result.successful == 1 and result.failed == 0
    assert "registration failed" not in server.log()


async def test_register_credentials_are_used_before_the_outbound_ones(tmp_path: Path) -> None:
    uas_port = free_port("both")
    args = keys(user="cosmo-register", password="r3gister", expires="60", refresh_min="48", refreshes="0")
    register = {"enabled": True, "expires": 60, "username": "cosmo-register", "password": "r3gister"}
    async with await start_sipp_uas("uas_registrar_auth", port=uas_port, calls=1, timeout=20,
                                    extra_args=args) as uas:
        async with cosmo_server(tmp_path, with_provider(uas_port, register=register)) as server:
            assert await logged(server, "trunk provider: registered (200)", count=1, timeout=5), \
                server.log()[-3000:]
        result = await uas.wait(timeout=10)
        assert result.ok, result.describe()


async def test_a_grant_shorter_than_five_seconds_is_refreshed_before_it_lapses(tmp_path: Path) -> None:
    # 80 % of 4 s is 3.2 s; the scenario accepts the refresh from 3 s up to 4 s.
    uas_port = free_port("both")
    args = keys(user=USERNAME, password=PASSWORD, expires="4", refresh_min="3", refreshes="1")
    register = {"enabled": True, "expires": 60}
    async with await start_sipp_uas("uas_registrar_auth", port=uas_port, calls=1, timeout=20,
                                    extra_args=args) as uas:
        async with cosmo_server(tmp_path, with_provider(uas_port, register=register)) as server:
            refreshed = await logged(server, "trunk provider: registered (200)", count=2, timeout=6)
        result = await uas.wait(timeout=10)
        assert result.ok, result.describe()
        assert refreshed


async def test_outbound_call_answers_a_proxy_challenge_and_hangs_up(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with (
        await start_auth_uas(uas_port, calls=1) as uas,
        cosmo_server(tmp_path, with_provider(uas_port)) as server,
    ):
        status, call = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER})
        assert status == 201, call
        assert call["answered"] is True
        assert call["sip_status"] == 200
        assert call["trunk"] == "provider"
        status, body = await server.api("POST", f"/api/calls/{call['id']}/hangup")
        assert status == 200, body
        result = await uas.wait(timeout=10)  # ends with Cosmo's BYE answered
        assert result.ok, result.describe()
        stats = await wait_no_calls(server, timeout=10)
        assert stats["calls"] == 0 and stats["sessions"] == 0, stats


async def test_outbound_call_with_wrong_credentials_is_refused(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with (
        await start_auth_uas(uas_port, calls=1) as uas,
        cosmo_server(tmp_path, with_provider(uas_port, password="wrong-" + PASSWORD)) as server,
    ):
        status, call = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER})
        assert status == 200, call
        assert call["answered"] is False
        assert call["sip_status"] == 403
        assert call["end_reason"] == "rejected 403"
        result = await uas.wait(timeout=10)  # the scenario's refusal path
        assert result.ok, result.describe()
        # Not wait_idle: the two INVITE client transactions (407, 403) stay
        # completed for Timer D, 32 s on UDP (RFC 3261 17.1.1.2).
        stats = await wait_no_calls(server, timeout=5)
        assert stats["calls"] == 0 and stats["sessions"] == 0, stats
        _, body = await server.api("GET", "/api/calls")
        assert body["calls"] == []


async def test_transit_call_with_a_challenged_b_leg(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with (
        await start_auth_uas(uas_port, calls=2) as uas,
        cosmo_server(tmp_path, with_provider(uas_port)) as server,
    ):
        result = await run_sipp("uac_call", server.sip_target, service=VIA_PROVIDER, calls=2, rate=5,
                                limit=1, timeout=15)
        assert result.ok, result.describe()
        assert result.successful == 2 and result.failed == 0
        uas_result = await uas.wait(timeout=10)
        assert uas_result.ok, uas_result.describe()
        assert uas_result.successful == 2 and uas_result.failed == 0
        stats = await wait_no_calls(server, timeout=10)
        assert stats["calls"] == 0 and stats["sessions"] == 0, stats
        assert stats["handler_errors"] == 0


CDR_COLUMNS = ("direction", "trunk", "caller", "callee", "end_reason", "hangup_by", "sip_status")


def read_cdrs(server: CosmoProcess) -> list[sqlite3.Row]:
    """Every row of ``cdrs`` in the server's SQLite database, oldest first."""
    connection = sqlite3.connect(server.data_dir / "cosmo.db")
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM cdrs ORDER BY id").fetchall()
    finally:
        connection.close()


async def test_every_call_leaves_one_call_record(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with await start_auth_uas(uas_port, calls=3) as uas:
        async with cosmo_server(tmp_path, with_provider(uas_port, bad_trunk=True)) as server:
            status, answered = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER})
            assert status == 201, answered
            status, body = await server.api("POST", f"/api/calls/{answered['id']}/hangup")
            assert status == 200, body
            status, refused = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER_BAD})
            assert status == 200 and refused["sip_status"] == 403, refused
            result = await run_sipp("uac_call", server.sip_target, service=VIA_PROVIDER, calls=1, timeout=15)
            assert result.ok, result.describe()
            uas_result = await uas.wait(timeout=10)
            assert uas_result.ok, uas_result.describe()
            assert (await wait_no_calls(server, timeout=10))["calls"] == 0
        rows = read_cdrs(server)  # the server has stopped: the CDR writer flushed its last batch
    assert len(rows) == 3, [dict(r) for r in rows]
    assert len({r["call_id"] for r in rows}) == 3
    by_call = {r["call_id"]: r for r in rows}
    assert [by_call[answered["id"]][c] for c in CDR_COLUMNS] == [
        "outbound", "provider", "cosmo", VIA_PROVIDER, "hangup", "system", 200,
    ]
    assert by_call[answered["id"]]["answered_at"] is not None
    assert [by_call[refused["id"]][c] for c in CDR_COLUMNS] == [
        "outbound", "provider-bad", "cosmo", VIA_PROVIDER_BAD, "rejected 403", "callee", 403,
    ]
    assert by_call[refused["id"]]["answered_at"] is None
    (transit,) = [r for r in rows if r["direction"] == "inbound"]
    assert [transit[c] for c in CDR_COLUMNS] == [
        "inbound", "demo", "sipp", VIA_PROVIDER, "remote-bye", "caller", 200,
    ]
    assert transit["answered_at"] is not None


async def test_outbound_call_records_name_their_invite(tmp_path: Path) -> None:
    uas_port = free_port("both")
    async with (
        await start_auth_uas(uas_port, calls=2) as uas,
        cosmo_server(tmp_path, with_provider(uas_port, bad_trunk=True)) as server,
    ):
        status, answered = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER})
        assert status == 201, answered
        status, body = await server.api("POST", f"/api/calls/{answered['id']}/hangup")
        assert status == 200, body
        status, refused = await server.api("POST", "/api/calls", {"to": VIA_PROVIDER_BAD})
        assert status == 200 and refused["sip_status"] == 403, refused
        uas_result = await uas.wait(timeout=10)
        assert uas_result.ok, uas_result.describe()
    rows = read_cdrs(server)
    assert [r["call_id"] for r in rows] == [answered["id"], refused["id"]]
    for row in rows:
        assert row["from_uri"].startswith("<sip:cosmo@cosmo.local>;tag="), dict(row)
        assert row["to_uri"] == f"<sip:{DIALLED}@127.0.0.1:{uas_port}>", dict(row)
        assert json.loads(row["extra"])["sip_call_id"], dict(row)
