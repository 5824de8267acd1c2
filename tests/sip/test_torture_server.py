"""RFC 4475: all 49 torture messages sent to a running server over UDP and TCP.

Each must get the answer the RFC asks of a UAS/registrar (or be dropped, for
the responses among them), and none may disturb the server: afterwards it
still answers OPTIONS and counted no handler error.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from cosmo.sip.errors import SipParseError
from cosmo.sip.message import SipResponse, parse_message
from tests.cosmo_server import cosmo_server
from tests.peers.sipp import run_sipp

TORTURE = Path(__file__).resolve().parents[1] / "data" / "sip-torture"

# What a UAS/registrar answers (None: dropped, as for a response or an
# unframable stream).  Requests for example.com are refused by the registrar
# (404: not a domain Cosmo serves) and INVITEs to unknown numbers get 404:
# both show the message was parsed and handled.
EXPECTED: dict[str, int | None] = {
    # §3.1.1 valid
    "wsinv": 481, "intmeth": 405, "esc01": 404, "escnull": 404, "esc02": 405, "lwsdisp": 200,
    "longreq": 404, "dblreq": 404, "semiuri": 200, "transports": 200, "mpart01": 405,
    "unreason": None, "noreason": None,
    # §3.1.2 invalid
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "scalarlg": None, "quotbal": 400,
    "ltgtruri": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400, "escruri": 400, "baddate": 400,
    "regbadct": 400, "badaspec": 400, "baddn": 400, "badvers": 505, "mismatch01": 400,
    "mismatch02": 400, "bigcode": None,
    # §3.2 transaction layer
    "badbranch": 200,
    # §3.3 application layer
    "insuf": 400, "unkscm": 416, "novelsc": 416, "unksm2": 404, "bext01": 420, "invut": 415,
    "regaut01": 404, "multi01": 400, "mcl01": 400, "bcast": None, "zeromf": 200, "cparam01": 404,
    "cparam02": 404, "regescrt": 404, "sdp01": 406,
    # §3.4 backward compatibility
    "inv2543": 404,
}
# Over a stream, a Content-Length beyond the data just means "wait for more".
TCP_DIFFERENT = {"clerr": None}

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not TORTURE.is_dir(), reason=f"torture messages not found at {TORTURE}"),
]


def every_source(settings: dict[str, Any]) -> None:
    # Messages are sent from 127.0.0.2 so that UDP answers, which go to the
    # Via's port (no rport), reach a socket of the test and not a real 5060.
    settings["trunks"][0]["inbound"]["sources"] = ["127.0.0.0/8"]


def transaction_key(data: bytes) -> bytes:
    """Top Via branch and sent-by: what a server matches a retransmission by."""
    for line in data.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"via", b"v"):
            return value.split(b",")[0].strip()
    return b""


def via_port(data: bytes) -> int:
    for line in data.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"via", b"v"):
            sent_by = value.split(b";")[0].split()[-1]
            host, _, port = sent_by.rpartition(b":")
            return int(port) if host and port.isdigit() else 5060
    return 5060


def status_of(data: bytes | None) -> int | None:
    if not data:
        return None
    try:
        message = parse_message(data)
    except SipParseError:
        return -1
    return message.status if isinstance(message, SipResponse) else -1


def call_id_of(data: bytes) -> bytes | None:
    for line in data.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip()
    return None


def udp_exchange(data: bytes, port: int) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.2", via_port(data)))
        sock.settimeout(1.0)
        sock.sendto(data, ("127.0.0.1", port))
        wanted = call_id_of(data)
        try:
            while True:
                reply, _ = sock.recvfrom(65535)
                # Skip 100 Trying and retransmitted answers to earlier messages
                # (a final non-2xx to an INVITE repeats until ACKed: Timer G).
                if status_of(reply) != 100 and call_id_of(reply) == wanted:
                    return reply
        except TimeoutError:
            return None


def tcp_exchange(data: bytes, port: int) -> bytes | None:
    with socket.create_connection(("127.0.0.1", port), timeout=2.0, source_address=("127.0.0.2", 0)) as sock:
        sock.settimeout(1.0)
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65535)
                if not chunk:
                    break
                received += chunk
                for part in received.split(b"\r\n\r\n")[:-1]:
                    if part.startswith(b"SIP/2.0 ") and not part.startswith(b"SIP/2.0 100 "):
                        return received[received.index(part):]
        except TimeoutError:
            pass
        return None


async def test_every_torture_message_over_udp_and_tcp(tmp_path: Path) -> None:
    assert sorted(EXPECTED) == sorted(p.stem for p in TORTURE.glob("*.dat"))
    async with cosmo_server(tmp_path, every_source, t1=0.02, t4=0.2) as server:
        wrong: list[str] = []
        used: set[bytes] = set()
        for name, expected in sorted(EXPECTED.items()):
            data = (TORTURE / f"{name}.dat").read_bytes()
            # Several messages share a branch and sent-by: a second one within
            # a transaction's lifetime is rightly taken as its retransmission.
            if transaction_key(data) in used:
                await server.wait_idle(timeout=30)
                used.clear()
            used.add(transaction_key(data))
            got = status_of(await asyncio.to_thread(udp_exchange, data, server.sip_port))
            if got != expected:
                wrong.append(f"udp {name}: expected {expected}, got {got}")
        # The same bytes again would be retransmissions of live transactions
        # (same branch): let those end before the TCP round.
        await server.wait_idle(timeout=30)
        used.clear()
        for name, expected in sorted(EXPECTED.items()):
            data = (TORTURE / f"{name}.dat").read_bytes()
            if transaction_key(data) in used:
                await server.wait_idle(timeout=30)
                used.clear()
            used.add(transaction_key(data))
            expected_tcp = TCP_DIFFERENT.get(name, expected)
            got = status_of(await asyncio.to_thread(tcp_exchange, data, server.sip_port))
            if got != expected_tcp:
                wrong.append(f"tcp {name}: expected {expected_tcp}, got {got}")
        assert not wrong, "\n".join(wrong)
        # Undisturbed: keep-alives still answered, nothing crashed.
        result = await run_sipp("options", server.sip_target, calls=3, service="cosmo", timeout=10)
        assert result.ok, result.describe()
        stats = await server.stats()
        assert stats["handler_errors"] == 0
        assert stats["rejected_requests"] > 0
        assert server.proc.returncode is None


async def test_garbage_is_dropped_and_counted(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for junk in (b"\x00\x01\x02" * 50, b"hello\r\n\r\n", b"INVITE\r\n\r\n", bytes(range(256))):
                sock.sendto(junk, ("127.0.0.1", server.sip_port))
        # A TCP peer that sends a header section past the size limit is disconnected.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sip_port)
        writer.write(b"OPTIONS sip:x@y SIP/2.0\r\nX: " + b"a" * 70000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
        stats = await server.stats()
        assert stats["garbage_dropped"] + stats["parse_errors"] >= 4
        assert stats["oversize"] + stats["framing_errors"] >= 1
        result = await run_sipp("options", server.sip_target, calls=2, service="cosmo", timeout=10)
        assert result.ok, result.describe()
