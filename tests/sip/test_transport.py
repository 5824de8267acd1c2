"""Tests of cosmo.sip.transport with real sockets on loopback, port 0.

Every scenario runs on the default loop (pytest-asyncio) and again on
uvloop (``test_under_uvloop``).  Each wait is bounded.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable

import pytest

from cosmo.sip.errors import SipUsageError
from cosmo.sip.transport import (
    Address,
    DatagramKind,
    TransportLayer,
    classify_datagram,
)

WAIT = 5.0


def request(n: int = 1, body: bytes = b"") -> bytes:
    head = (
        f"OPTIONS sip:cosmo@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=a{n}\r\n"
        f"To: <sip:cosmo@127.0.0.1>\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def response(n: int = 1) -> bytes:
    return (
        f"SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=a{n}\r\n"
        f"To: <sip:cosmo@127.0.0.1>;tag=b{n}\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Recorder:
    """A TransportUser that queues what it hears."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[bytes, Address, Address]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[Address, str]] = asyncio.Queue()

    def message_received(self, data: bytes, source: Address, local: Address) -> None:
        self.messages.put_nowait((data, source, local))

    def transport_error(self, dest: Address, reason: str) -> None:
        self.errors.put_nowait((dest, reason))

    async def next(self) -> tuple[bytes, Address, Address]:
        return await asyncio.wait_for(self.messages.get(), WAIT)

    async def next_error(self) -> tuple[Address, str]:
        return await asyncio.wait_for(self.errors.get(), WAIT)


class Layers:
    """Transport layers made by a test, closed at the end."""

    def __init__(self) -> None:
        self.made: list[TransportLayer] = []

    def __call__(self, user: Recorder, **kwargs: object) -> TransportLayer:
        layer = TransportLayer(user, **kwargs)  # type: ignore[arg-type]
        self.made.append(layer)
        return layer

    async def close(self) -> None:
        for layer in self.made:
            await layer.close()


Scenario = Callable[[Layers], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Callable[[], Awaitable[None]]:
    """Register ``fn`` for the uvloop run and make a pytest-asyncio test of it."""
    SCENARIOS[fn.__name__] = fn

    @pytest.mark.asyncio
    async def test() -> None:
        await run(fn)

    test.__name__ = test.__qualname__ = fn.__name__
    test.__doc__ = fn.__doc__
    return test


async def run(fn: Scenario) -> None:
    layers = Layers()
    try:
        await asyncio.wait_for(fn(layers), 20)
    finally:
        await layers.close()


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def wait_until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes, failing after WAIT."""
    return await asyncio.wait_for(reader.read(), WAIT)


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


# ---- values and the datagram filter (no I/O) ----------------------------


def test_address_str_and_reliable() -> None:
    assert str(Address("udp", "127.0.0.1", 5060)) == "udp:127.0.0.1:5060"
    assert str(Address("tcp", "::1", 5060)) == "tcp:[::1]:5060"
    assert not Address("udp", "127.0.0.1", 5060).reliable
    assert all(Address(t, "::1", 1).reliable for t in ("tcp", "tls", "ws", "wss"))
    assert Address("tls", "::1", 5061).family == socket.AF_INET6


def test_address_of_normalises() -> None:
    class Place:
        transport = "TCP"
        host = "[0:0:0:0:0:0:0:1]"
        port = 5060

    assert Address.of(Place()) == Address("tcp", "::1", 5060)
    with pytest.raises(ValueError):
        Address.of(Address("udp", "example.com", 5060))


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (request(), DatagramKind.MESSAGE),
        (response(), DatagramKind.MESSAGE),
        (b"\r\n" + request(), DatagramKind.MESSAGE),
        (b"\r\n\r\n", DatagramKind.KEEPALIVE),
        (b"\r\n", DatagramKind.KEEPALIVE),
        (b"", DatagramKind.GARBAGE),
        (b"\x00\x00\x00\x00", DatagramKind.GARBAGE),
        # A STUN Binding request (RFC 5389 §6): type 0x0001, magic cookie.
        (bytes.fromhex("000100002112a442") + bytes(12), DatagramKind.GARBAGE),
        (b"INVITE", DatagramKind.GARBAGE),
        (b"\r\n\x16\x03\x01" + bytes(40), DatagramKind.GARBAGE),
        (b"I" * 101, DatagramKind.OVERSIZE),
        (b"I" * 100, DatagramKind.MESSAGE),
    ],
)
def test_classify_datagram(data: bytes, kind: DatagramKind) -> None:
    assert classify_datagram(data, 100 if data.startswith(b"II") else 65535) is kind


# ---- UDP ------------------------------------------------------------------


@scenario
async def test_udp_round_trip(make: Layers) -> None:
    alice, bob = Recorder(), Recorder()
    a, b = make(alice), make(bob)
    a_local = await a.listen("udp", "127.0.0.1", 0)
    b_local = await b.listen("udp", "127.0.0.1", 0)
    assert b_local.port != 0 and a.local_address("udp") == a_local

    a.send(request(), b_local)
    data, source, local = await bob.next()
    assert (data, source, local) == (request(), a_local, b_local)
    b.send(response(), source, local=local)
    assert await alice.next() == (response(), b_local, a_local)
    assert (a.stats.datagrams_out, b.stats.datagrams_in) == (1, 1)
    assert (b.stats.datagrams_out, a.stats.datagrams_in) == (1, 1)


@scenario
async def test_udp_junk_dropped_and_counted(make: Layers) -> None:
    bob = Recorder()
    b = make(bob, max_message_size=1000)
    b_local = await b.listen("udp", "127.0.0.1", 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (
            b"\r\n\r\n",
            b"\r\n",
            bytes.fromhex("000100002112a442") + os.urandom(12),
            b"\x00\x00\x00\x00",
            b"INVITE sip:x SIP/2.0\r\n" + b"X" * 2000,
        ):
            sock.sendto(junk, ("127.0.0.1", b_local.port))
        sock.sendto(request(7), ("127.0.0.1", b_local.port))
        data, _, _ = await bob.next()
    assert data == request(7)
    assert bob.messages.empty()
    stats = b.stats
    assert (stats.datagrams_in, stats.keepalives_in, stats.garbage_dropped, stats.oversize) == (6, 2, 2, 1)


@scenario
async def test_udp_without_listener_of_family_reports_error(make: Layers) -> None:
    alice = Recorder()
    a = make(alice)
    await a.listen("udp", "127.0.0.1", 0)
    dest = Address("udp", "::1", 5060)
    a.send(request(), dest)
    assert await alice.next_error() == (dest, "no udp listener for IPv6")
    a.send(request(), Address("sctp", "127.0.0.1", 5060))
    assert (await alice.next_error())[1] == "no sctp connection"
    named = Address("udp", "sip.example.com", 5060)
    a.send(request(), named)
    assert await alice.next_error() == (
        named,
        "not an address: 'sip.example.com' does not appear to be an IPv4 or IPv6 address",
    )
    assert a.stats.send_errors == 3


@scenario
async def test_send_normalises_destinations(make: Layers) -> None:
    class Place:  # what a URI resolves to: upper-case transport, bracketed IPv6
        def __init__(self, transport: str, host: str, port: int) -> None:
            self.transport, self.host, self.port = transport, host, port

    alice, bob = Recorder(), Recorder()
    a, b = make(alice), make(bob)
    await a.listen("udp", "127.0.0.1", 0)
    b_udp = await b.listen("udp", "127.0.0.1", 0)
    a.send(request(1), Address("UDP", "127.0.0.1", b_udp.port))
    a.send(request(2), Place("udp", "127.0.0.1", b_udp.port))
    assert [(await bob.next())[0] for _ in range(2)] == [request(1), request(2)]
    if ipv6_available():
        b_tcp = await b.listen("tcp", "::1", 0)
        for n in (3, 4):  # one connection, whichever way the address is written
            a.send(request(n), Place("TCP", "[0:0:0:0:0:0:0:1]", b_tcp.port))
        assert [(await bob.next())[0] for _ in range(2)] == [request(3), request(4)]
        assert a.stats.connections_total == 1 and a.is_connected(b_tcp)


# ---- TCP ------------------------------------------------------------------


@scenario
async def test_tcp_message_split_across_many_writes(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    message = request(1, body=b"v=0\r\n" * 20)
    for i in range(0, len(message), 7):
        writer.write(message[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    data, source, local = await bob.next()
    assert data == message
    assert source == Address("tcp", *writer.get_extra_info("sockname")[:2])
    assert local == b_local
    writer.close()


@scenario
async def test_tcp_several_messages_in_one_write(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    _, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    messages = [request(1), request(2, body=b"hello\r\n\r\nworld"), response(3)]
    writer.write(b"\r\n".join(messages))
    await writer.drain()
    assert [(await bob.next())[0] for _ in messages] == messages
    assert b.stats.messages_in == 3
    writer.close()


@scenario
async def test_tcp_ping_gets_pong(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    writer.write(b"\r\n\r\n")
    assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
    writer.write(b"\r\n\r\n" + request(1))
    assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
    assert (await bob.next())[0] == request(1)
    assert b.stats.keepalives_in == 2
    writer.close()


@scenario
async def test_tcp_garbage_closes_only_that_connection(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    good_reader, good = await asyncio.open_connection("127.0.0.1", b_local.port)
    bad_reader, bad = await asyncio.open_connection("127.0.0.1", b_local.port)
    await wait_until(lambda: b.stats.connections_open == 2)
    bad.write(b"GARBAGE" * (100_000 // 7))
    assert await read_eof(bad_reader) == b""
    assert (b.stats.framing_errors, b.stats.oversize) == (1, 1)

    good.write(request(5))
    data, source, _ = await bob.next()
    assert data == request(5)
    b.send(response(5), source)
    assert await asyncio.wait_for(good_reader.readexactly(len(response(5))), WAIT) == response(5)
    await wait_until(lambda: b.stats.connections_open == 1)
    assert b.stats.connections_total == 2
    bad.close()
    good.close()


@scenario
async def test_tcp_binary_junk_closes_at_once(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a TLS ClientHello
    assert await read_eof(reader) == b""
    assert (b.stats.garbage_dropped, b.stats.framing_errors) == (1, 1)
    writer.close()


@scenario
async def test_tcp_response_reuses_the_connection(make: Layers) -> None:
    bob = Recorder()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    writer.write(request(1))
    _, source, _ = await bob.next()
    assert b.is_connected(source)
    b.send(response(1), source)
    b.send(request(2), source)  # a new request on the same flow (RFC 5626)
    expected = response(1) + request(2)
    assert await asyncio.wait_for(reader.readexactly(len(expected)), WAIT) == expected
    assert (b.stats.connections_total, b.stats.messages_out) == (1, 2)
    writer.close()


@scenario
async def test_tcp_outbound_connect_and_answer_on_it(make: Layers) -> None:
    alice, bob = Recorder(), Recorder()
    a, b = make(alice), make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    # Queued until connected, then sent in order.
    for n in range(1, 4):
        a.send(request(n), b_local)
    for n in range(1, 4):
        data, source, _ = await bob.next()
        assert data == request(n)
    b.send(response(1), source)
    data, a_source, a_local = await alice.next()
    assert (data, a_source) == (response(1), b_local)
    assert a_local == Address("tcp", "127.0.0.1", source.port)
    a.send(request(4), b_local)
    assert (await bob.next())[0] == request(4)
    assert (a.stats.connections_total, b.stats.connections_total) == (1, 1)
    assert a.stats.messages_out == 4


@scenario
async def test_tcp_connect_failure_reported(make: Layers) -> None:
    alice = Recorder()
    a = make(alice)
    dest = Address("tcp", "127.0.0.1", free_tcp_port())
    a.send(request(1), dest)
    a.send(request(2), dest)
    err_dest, reason = await alice.next_error()
    assert err_dest == dest and reason.startswith("connect failed: ")
    assert (a.stats.connect_failures, a.stats.send_errors) == (1, 2)
    assert not a.is_connected(dest)


@scenario
async def test_tcp_idle_connection_closed(make: Layers) -> None:
    bob = Recorder()
    b = make(bob, tcp_idle_timeout=0.2)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    assert await read_eof(reader) == b""
    assert b.stats.idle_closed == 1
    await wait_until(lambda: b.stats.connections_open == 0)
    writer.close()


@scenario
async def test_tcp_peer_that_does_not_read_is_dropped(make: Layers) -> None:
    bob = Recorder()
    b = make(bob, write_buffer_limit=256 * 1024)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", b_local.port))
        await loop.sock_sendall(sock, request(1))
        _, source, _ = await bob.next()
        big = request(2, body=b"x" * 60_000)
        for _ in range(2000):  # far more than the kernel buffers on loopback
            b.send(big, source)
            if b.stats.write_overflows:
                break
        assert b.stats.write_overflows == 1
        dest, reason = await bob.next_error()
        assert (dest, reason) == (source, "peer is not reading")
        await wait_until(lambda: b.stats.connections_open == 0)


@scenario
async def test_handler_exception_logged_and_survived(make: Layers) -> None:
    class Failing(Recorder):
        def message_received(self, data: bytes, source: Address, local: Address) -> None:
            if b"CSeq: 1 " in data:
                raise RuntimeError("handler bug")
            super().message_received(data, source, local)

    bob = Failing()
    b = make(bob)
    b_local = await b.listen("tcp", "127.0.0.1", 0)
    _, writer = await asyncio.open_connection("127.0.0.1", b_local.port)
    logger = logging.getLogger("cosmo.sip.transport")
    handler = ListHandler()
    records = handler.records
    logger.addHandler(handler)
    try:
        writer.write(request(1) + request(2))
        assert (await bob.next())[0] == request(2)
    finally:
        logger.removeHandler(handler)
    assert b.stats.handler_errors == 1
    [record] = [r for r in records if r.exc_info]
    assert record.exc_info is not None and str(record.exc_info[1]) == "handler bug"
    writer.close()


# ---- TLS ------------------------------------------------------------------


@functools.cache
def tls_files() -> tuple[str, str]:
    """A self-signed certificate for localhost, 127.0.0.1 and ::1, and its key."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory = tempfile.mkdtemp(prefix="cosmo-tls-")
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert_path, key_path = tls_files()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=cert_path)
    return server, client


@scenario
async def test_tls_round_trip(make: Layers) -> None:
    server_context, client_context = tls_contexts()
    alice, bob = Recorder(), Recorder()
    a, b = make(alice, tls_client_context=client_context), make(bob)
    b_local = await b.listen("tls", "127.0.0.1", 0, server_context)
    assert b.local_address("tls") == b_local
    a.send(request(1), b_local)
    data, source, local = await bob.next()
    assert (data, source.transport, local) == (request(1), "tls", b_local)
    b.send(response(1), source)
    assert await alice.next() == (response(1), b_local, Address("tls", "127.0.0.1", source.port))

    # A ping over TLS gets its pong, from a plain asyncio client.
    reader, writer = await asyncio.open_connection("127.0.0.1", b_local.port, ssl=client_context)
    writer.write(b"\r\n\r\n")
    assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
    writer.close()


@scenario
async def test_tls_untrusted_server_reported(make: Layers) -> None:
    server_context, _ = tls_contexts()
    alice, bob = Recorder(), Recorder()
    a, b = make(alice, tls_client_context=ssl.create_default_context()), make(bob)
    b_local = await b.listen("tls", "127.0.0.1", 0, server_context)
    a.send(request(1), b_local)
    dest, reason = await alice.next_error()
    assert dest == b_local and "CERTIFICATE_VERIFY_FAILED" in reason
    assert a.stats.connect_failures == 1 and b.stats.connections_total == 0


# ---- IPv6, lifecycle -------------------------------------------------------


@scenario
async def test_ipv6_loopback(make: Layers) -> None:
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    alice, bob = Recorder(), Recorder()
    a, b = make(alice), make(bob)
    a_udp = await a.listen("udp", "::1", 0)
    b_udp = await b.listen("udp", "::1", 0)
    b_tcp = await b.listen("tcp", "::1", 0)
    assert str(b_udp) == f"udp:[::1]:{b_udp.port}"
    assert b.local_address("udp", socket.AF_INET6) == b_udp and b.local_address("udp") is None
    a.send(request(1), b_udp)
    assert await bob.next() == (request(1), a_udp, b_udp)
    a.send(request(2), b_tcp)
    data, source, local = await bob.next()
    assert (data, source.host, local) == (request(2), "::1", b_tcp)
    b.send(response(2), source)
    assert (await alice.next())[:2] == (response(2), b_tcp)


@scenario
async def test_close_is_idempotent_and_leaves_no_tasks(make: Layers) -> None:
    before = asyncio.all_tasks()
    alice, bob = Recorder(), Recorder()
    a, b = make(alice), make(bob)
    await a.listen("udp", "127.0.0.1", 0)
    b_tcp = await b.listen("tcp", "127.0.0.1", 0)
    a.send(request(1), b_tcp)
    await bob.next()
    reader, writer = await asyncio.open_connection("127.0.0.1", b_tcp.port)
    writer.write(request(2))
    await bob.next()
    a.send(request(3), Address("tcp", "127.0.0.1", free_tcp_port()))  # a connect under way
    assert len(asyncio.all_tasks() - before) == 1

    await asyncio.gather(a.close(), a.close(), b.close())
    await b.close()
    assert asyncio.all_tasks() == before
    assert await read_eof(reader) == b""
    assert (a.stats.connections_open, b.stats.connections_open) == (0, 0)
    assert alice.errors.empty()
    with pytest.raises(SipUsageError):
        await a.listen("udp", "127.0.0.1", 0)
    a.send(request(4), b_tcp)  # counted, never raises, never reported
    assert a.stats.send_errors == 1
    writer.close()


@pytest.mark.asyncio
async def test_close_without_listening() -> None:
    layer = TransportLayer(Recorder())
    await layer.close()
    await layer.close()


@pytest.mark.asyncio
async def test_listen_refuses_wrong_calls() -> None:
    layer = TransportLayer(Recorder())
    try:
        with pytest.raises(SipUsageError):
            await layer.listen("udp", "localhost", 0)
        with pytest.raises(SipUsageError):
            await layer.listen("tls", "127.0.0.1", 0)
        with pytest.raises(SipUsageError):
            await layer.listen("sctp", "127.0.0.1", 0)
    finally:
        await layer.close()


# ---- the same scenarios on uvloop -----------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_under_uvloop(name: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(SCENARIOS[name]))
