"""The registrar of a running server, driven byte by byte over UDP: digest
challenge and answer (SHA-256 first, MD5 too), no user enumeration, throttling
of a source that keeps failing, expiry limits, and bindings kept across a
restart."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from cosmo.sip.auth import DigestClient, parse_challenge
from cosmo.sip.message import SipResponse, parse_message
from tests.cosmo_server import cosmo_server
from tests.peers.common import free_port

pytestmark = [pytest.mark.peers]


class Phone:
    """A minimal UDP registrant that speaks through Cosmo's own message classes."""

    def __init__(self, server_port: int, user: str = "1001") -> None:
        self.server = ("127.0.0.1", server_port)
        self.user = user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", free_port("udp")))
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]
        self.cseq = 0
        self.call_id = f"reg-{self.port}@127.0.0.1"

    def close(self) -> None:
        self.sock.close()

    def register(self, *, expires: int = 300, authorization: str | None = None,
                 contact: str | None = None) -> SipResponse:
        self.cseq += 1
        lines = [
            f"REGISTER sip:127.0.0.1:{self.server[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{self.port}x{self.cseq};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@127.0.0.1>;tag=t{self.port}",
            f"To: <sip:{self.user}@127.0.0.1>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: {contact or f'<sip:{self.user}@127.0.0.1:{self.port}>'}",
            f"Expires: {expires}",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        self.sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), self.server)
        data, _ = self.sock.recvfrom(65535)
        response = parse_message(data)
        assert isinstance(response, SipResponse)
        return response

    def register_with(self, password: str, **kwargs: Any) -> SipResponse:
        challenge = self.register(**kwargs)
        assert challenge.status == 401, challenge
        values = challenge.headers.get_all("WWW-Authenticate")
        client = DigestClient(self.user, password)
        uri = f"sip:127.0.0.1:{self.server[1]}"
        return self.register(authorization=client.authorize(values[0], "REGISTER", uri), **kwargs)


def sha256_first(settings: dict[str, Any]) -> None:
    settings["sip"]["auth"]["algorithms"] = ["SHA-256", "MD5"]


async def test_challenge_offers_sha256_then_md5_and_both_work(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, sha256_first) as server:
        phone = Phone(server.sip_port)
        try:
            challenge = await asyncio.to_thread(phone.register)
            algorithms = [parse_challenge(v).algorithm for v in challenge.headers.get_all("WWW-Authenticate")]
            assert algorithms == ["SHA-256", "MD5"]
            nonce = parse_challenge(challenge.headers.get_all("WWW-Authenticate")[1])
            client = DigestClient("1001", "secret1001")
            ok = await asyncio.to_thread(
                phone.register,
                authorization=client.authorize(nonce, "REGISTER", f"sip:127.0.0.1:{server.sip_port}"),
            )
            assert ok.status == 200
            assert ok.headers.get("Contact") == f"<sip:1001@127.0.0.1:{phone.port}>;expires=300"
            ok = await asyncio.to_thread(phone.register_with, "secret1001")
            assert ok.status == 200
            _, body = await server.api("GET", "/api/registrations?extension=1001")
            assert [r["contact"] for r in body["registrations"]] == [f"sip:1001@127.0.0.1:{phone.port}"]
        finally:
            phone.close()


async def test_wrong_password_and_unknown_user_look_the_same(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        known, unknown = Phone(server.sip_port, "1001"), Phone(server.sip_port, "7777")
        try:
            a = await asyncio.to_thread(known.register_with, "not-the-password")
            b = await asyncio.to_thread(unknown.register_with, "not-the-password")
            assert (a.status, a.reason) == (b.status, b.reason) == (401, "Unauthorized")
            assert a.headers.get("WWW-Authenticate") is not None
        finally:
            known.close()
            unknown.close()


async def test_a_source_that_keeps_failing_is_blocked(tmp_path: Path) -> None:
    def strict(settings: dict[str, Any]) -> None:
        settings["sip"]["auth"].update(max_failures=3, failure_window=60, block_time=60)

    async with cosmo_server(tmp_path, strict) as server:
        phone = Phone(server.sip_port)
        try:
            for _ in range(3):
                assert (await asyncio.to_thread(phone.register_with, "guess")).status == 401
            blocked = await asyncio.to_thread(phone.register)
            assert (blocked.status, blocked.reason) == (403, "Too Many Failed Attempts")
            # Even the right password is refused while the block lasts.
            assert (await asyncio.to_thread(phone.register)).status == 403
        finally:
            phone.close()


async def test_expiry_limits_and_unregister(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        phone = Phone(server.sip_port)
        try:
            brief = await asyncio.to_thread(phone.register_with, "secret1001", expires=10)
            assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
            capped = await asyncio.to_thread(phone.register_with, "secret1001", expires=999999)
            assert capped.status == 200
            assert (capped.headers.get("Contact") or "").endswith(";expires=3600")
            gone = await asyncio.to_thread(phone.register_with, "secret1001", expires=0)
            assert gone.status == 200 and gone.headers.get("Contact") is None
        finally:
            phone.close()


async def test_registrations_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    async with cosmo_server(tmp_path / "first", data_dir=data_dir) as server:
        phone = Phone(server.sip_port)
        try:
            assert (await asyncio.to_thread(phone.register_with, "secret1001")).status == 200
        finally:
            phone.close()
        await asyncio.sleep(0.5)  # the binding is written in the background
    async with cosmo_server(tmp_path / "second", data_dir=data_dir) as server:
        _, body = await server.api("GET", "/api/registrations?extension=1001")
        assert len(body["registrations"]) == 1
