"""SIP transports: UDP, TCP and TLS (RFC 3261 §18, RFC 5626 keep-alive).

Theory of operation
-------------------
:class:`TransportLayer` is a thin asyncio adapter.  It owns the listening
sockets and the stream connections and hands every whole SIP message, as
bytes, to a :class:`TransportUser` together with where it came from and
where it arrived.  It never parses a message: the layer above parses,
validates and feeds the transaction layer, and chooses where answers go
(RFC 3261 §18.2.2, RFC 3581 §4) — :meth:`TransportLayer.send` goes to any
:class:`Address` it is given.

* **UDP** — one datagram endpoint per listener.  :func:`classify_datagram`
  (no I/O) drops what is obviously not SIP: CRLF keep-alives silently,
  binary junk such as STUN and oversize datagrams with a count.  A datagram
  to send leaves from the listener named by ``local``, or else from the first
  listener of the destination's address family.
* **TCP and TLS** — one server per listener; connections live in one table
  keyed by the peer's :class:`Address`: the source of an inbound connection,
  or the destination of an outbound connect.  Sending to the source of a
  received message therefore answers on the same connection (§18.2.2), and
  sending to an address without a connection opens one in a named background
  task, queuing what is sent until it is up.  Each connection cuts its stream
  with a :class:`~cosmo.sip.message.StreamFramer`; a framing error closes that
  connection only.  A double-CRLF ping is answered with a CRLF pong
  (RFC 5626 §4.4.1).  A connection with no traffic for ``tcp_idle_timeout``
  is closed.  When a peer stops reading, reading from it pauses once its
  write buffer passes a quarter of ``write_buffer_limit``, and the connection
  is dropped when the buffer would pass the limit.

Failures caused by peers never raise: they are counted in
:class:`TransportStats`, logged, and reported to the user's optional
``transport_error(dest, reason)`` from a later loop iteration, so the caller
of :meth:`~TransportLayer.send` is never re-entered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, cast

from .errors import SipParseError, SipUsageError
from .message import StreamFramer

log = logging.getLogger(__name__)
trace = logging.getLogger("cosmo.sip.trace")

UDP = "udp"
TCP = "tcp"
TLS = "tls"
WS = "ws"
WSS = "wss"
RELIABLE_TRANSPORTS = frozenset({TCP, TLS, WS, WSS})
STREAM_TRANSPORTS = frozenset({TCP, TLS})

# The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes).
MAX_UDP_PAYLOAD = 65507
# Shorter than any start line plus CRLF ("SIP/2.0 100 x\r\n" is 15 bytes).
MIN_DATAGRAM_SIZE = 16
# How long close() lets connections flush before aborting them.
CLOSE_GRACE = 1.0
# How many destinations send() remembers as already normalised.
_CHECKED_MAX = 4096

# A SIP message starts with a method (a token, RFC 3261 §25.1) or "SIP/".
_START_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")
_CRLF_BYTES = frozenset(b"\r\n")
_PONG = b"\r\n"
_TLS_HANDSHAKE = 0x16


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message came from or goes to: transport, IP literal and port.

    ``host`` is an IP address without brackets, as the socket layer reports
    it; :meth:`of` builds one from anything with ``transport``, ``host`` and
    ``port`` and normalises it.
    """

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """Whether the transport is reliable (no retransmissions, RFC 3261 §17.1.1.2)."""
        return self.transport in RELIABLE_TRANSPORTS

    @property
    def family(self) -> socket.AddressFamily:
        """``AF_INET6`` for an IPv6 host, else ``AF_INET``."""
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        if ":" in self.host:
            return f"{self.transport}:[{self.host}]:{self.port}"
        return f"{self.transport}:{self.host}:{self.port}"

    @classmethod
    def of(cls, place: AddressLike) -> Address:
        """An :class:`Address` for ``place``: transport lower-cased, host a canonical IP literal.

        Raises :class:`ValueError` when the host is not an IP address.
        """
        host = place.host
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        host = str(ipaddress.ip_address(host))
        return cls(place.transport.lower(), host, int(place.port))


class AddressLike(Protocol):
    """Anything that names a transport, host and port (a URI's target, say)."""

    @property
    def transport(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class TransportUser(Protocol):
    """What the transport layer delivers to.

    The user may also define ``transport_error(dest, reason: str) -> None``;
    it is then told, from a later loop iteration, when sending to ``dest``
    failed (RFC 3261 §18.4: the transaction layer fails the transactions
    waiting on it).
    """

    def message_received(self, data: bytes, source: Address, local: Address) -> None:
        """One whole SIP message: a UDP datagram or one message framed from a stream.

        Keep-alives never arrive here.  ``local`` is the listener (UDP) or the
        connection's local end (TCP, TLS).
        """


@dataclass(slots=True)
class TransportStats:
    """Counters of a :class:`TransportLayer`.

    ``oversize`` counts datagrams and stream messages over the size limit;
    ``framing_errors`` counts connections closed because what the peer sent
    could not be framed (oversize or not SIP at all).
    """

    datagrams_in: int = 0
    datagrams_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    keepalives_in: int = 0
    garbage_dropped: int = 0
    oversize: int = 0
    framing_errors: int = 0
    connections_open: int = 0
    connections_total: int = 0
    connect_failures: int = 0
    idle_closed: int = 0
    write_overflows: int = 0
    send_errors: int = 0
    handler_errors: int = 0


class DatagramKind(StrEnum):
    """What :func:`classify_datagram` makes of a datagram."""

    MESSAGE = "message"
    KEEPALIVE = "keepalive"
    GARBAGE = "garbage"
    OVERSIZE = "oversize"


def classify_datagram(data: bytes, max_size: int) -> DatagramKind:
    """Whether ``data`` may be a SIP message, a CRLF keep-alive, junk or too large.

    Only the obvious is judged here: the parser decides the rest.  STUN
    (first byte 0x00 or 0x01), empty datagrams and anything not starting
    with a token character after optional CRLFs is junk.
    """
    if len(data) > max_size:
        return DatagramKind.OVERSIZE
    if not data:
        return DatagramKind.GARBAGE
    first = data[0]
    if first in _START_BYTES:
        return DatagramKind.MESSAGE if len(data) >= MIN_DATAGRAM_SIZE else DatagramKind.GARBAGE
    if first in _CRLF_BYTES:
        rest = data.lstrip(b"\r\n")
        if not rest:
            return DatagramKind.KEEPALIVE
        # RFC 3261 §7.5: CRLFs before the start line are ignored.
        if rest[0] in _START_BYTES and len(rest) >= MIN_DATAGRAM_SIZE:
            return DatagramKind.MESSAGE
    return DatagramKind.GARBAGE


def _family(host: str) -> socket.AddressFamily:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise SipUsageError(f"listen needs an IP address, not {host!r}") from None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def _address(transport: str, sockaddr: tuple[str, int] | tuple[str, int, int, int]) -> Address:
    return Address(transport, sockaddr[0], sockaddr[1])


class TransportLayer:
    """UDP, TCP and TLS listeners and connections: see the module's theory of operation.

    ``user`` receives messages.  ``max_message_size`` bounds a datagram or a
    framed stream message; ``tcp_idle_timeout`` closes quiet connections;
    ``connect_timeout`` bounds an outbound connect including the TLS
    handshake; ``tls_client_context`` verifies the servers we connect to
    (default: the system's trust store); ``write_buffer_limit`` bounds what
    is buffered for a peer that does not read.
    """

    def __init__(
        self,
        user: TransportUser,
        *,
        max_message_size: int = 65535,
        tcp_idle_timeout: float = 600.0,
        connect_timeout: float = 5.0,
        tls_client_context: ssl.SSLContext | None = None,
        write_buffer_limit: int = 1 << 20,
    ) -> None:
        self._user = user
        # The destination reported is an Address, or what send() was given when
        # it names no IP address.
        self._on_error: Callable[[object, str], object] | None = getattr(user, "transport_error", None)
        self.max_message_size = max_message_size
        self.tcp_idle_timeout = tcp_idle_timeout
        self.connect_timeout = connect_timeout
        self.write_buffer_limit = write_buffer_limit
        self._tls_client_context = tls_client_context
        self.stats = TransportStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoints: list[_UdpEndpoint] = []
        self._servers: list[tuple[Address, asyncio.Server]] = []
        self._connections: dict[Address, _Connection] = {}
        self._all_connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._checked: dict[Address, Address] = {}
        self._closed = False
        self._close_done: asyncio.Event | None = None

    # ---- lifecycle -----------------------------------------------------
    async def listen(
        self, transport: str, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> Address:
        """Listen on ``host``:``port`` and return the bound address (port 0 picks one).

        ``transport`` is ``"udp"``, ``"tcp"`` or ``"tls"`` (which needs
        ``ssl_context``).  An IPv6 listener serves IPv6 only.  Raises
        :class:`SipUsageError` for a wrong call and :class:`OSError` when the
        address cannot be bound.
        """
        if self._closed:
            raise SipUsageError("the transport layer is closed")
        transport = transport.lower()
        family = _family(host)
        if (transport == TLS) != (ssl_context is not None):
            raise SipUsageError("an ssl_context is needed for tls and only for tls")
        loop = self._bind_loop()
        if transport == UDP:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                _grow_receive_buffer(sock)
                sock.bind((host, port))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            _, endpoint = await loop.create_datagram_endpoint(lambda: _UdpEndpoint(self), sock=sock)
            self._endpoints.append(endpoint)
            local = endpoint.local
        elif transport in STREAM_TRANSPORTS:
            server = await loop.create_server(
                lambda: _Connection(self, transport, None),
                host,
                port,
                family=family,
                ssl=ssl_context,
                ssl_handshake_timeout=self.connect_timeout if ssl_context else None,
            )
            local = _address(transport, server.sockets[0].getsockname())
            self._servers.append((local, server))
        else:
            raise SipUsageError(f"cannot listen on transport {transport!r}")
        log.info("listening on %s", local)
        return local

    async def close(self) -> None:
        """Close listeners and connections and stop connect tasks; idempotent."""
        if self._close_done is not None:
            await self._close_done.wait()
            return
        self._closed = True
        if self._loop is None:
            return
        self._close_done = asyncio.Event()
        try:
            for _, server in self._servers:
                server.close()
            for endpoint in self._endpoints:
                endpoint.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            connections = list(self._all_connections)
            for conn in connections:
                conn.close()
            lost = [conn.lost for conn in connections if conn.transport is not None]
            if lost:
                _, late = await asyncio.wait(lost, timeout=CLOSE_GRACE)
                for conn in connections:
                    if conn.lost in late and conn.transport is not None:
                        conn.transport.abort()
                if late:
                    await asyncio.wait(late, timeout=CLOSE_GRACE)
            for _, server in self._servers:
                # From Python 3.12 this also waits for TLS handshakes under way.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), CLOSE_GRACE)
            endpoints_lost = [endpoint.lost for endpoint in self._endpoints]
            if endpoints_lost:
                await asyncio.wait(endpoints_lost, timeout=CLOSE_GRACE)
            self._connections.clear()
            self._all_connections.clear()
            log.info("transport layer closed")
        finally:
            self._close_done.set()

    # ---- queries -------------------------------------------------------
    def local_address(self, transport: str, family: socket.AddressFamily = socket.AF_INET) -> Address | None:
        """The first listener of ``transport`` and ``family`` (for Via and Contact), or ``None``.

        A listener on a wildcard address reports the wildcard: the layer
        above substitutes the address it advertises.
        """
        transport = transport.lower()
        if transport == UDP:
            for endpoint in self._endpoints:
                if endpoint.local.family == family:
                    return endpoint.local
            return None
        for local, _ in self._servers:
            if local.transport == transport and local.family == family:
                return local
        return None

    def is_connected(self, dest: Address) -> bool:
        """Whether a stream connection to ``dest`` is up (an RFC 5626 flow, say)."""
        conn = self._connections.get(dest)
        return conn is not None and conn.transport is not None and not conn.closing

    # ---- sending -------------------------------------------------------
    def send(
        self,
        data: bytes,
        dest: Address | AddressLike,
        *,
        local: Address | None = None,
        server_name: str | None = None,
    ) -> None:
        """Send one whole message to ``dest``; never raises for peer problems.

        ``dest`` may be any object with ``transport``, ``host`` and ``port``.
        For UDP, ``local`` picks the listener to send from (answer from where
        the request arrived, RFC 3581 §4).  For TLS, ``server_name`` is the
        name the server's certificate must carry when a connection has to be
        opened (RFC 5922 §7); by default the IP address.  Failures are counted
        and reported through ``transport_error``.
        """
        known = self._checked.get(dest) if type(dest) is Address else None
        if known is not None:
            dest = known
        else:
            # A host name here would block the loop in a synchronous resolver,
            # and a non-canonical form would miss the connection table.
            # Resolving names (RFC 3263) is the job of the layer above.
            try:
                normal = Address.of(dest)
            except (ValueError, AttributeError, TypeError) as exc:
                self._fail(dest, f"not an address: {exc}")
                return
            if type(dest) is Address:
                if len(self._checked) >= _CHECKED_MAX:
                    self._checked.clear()
                self._checked[dest] = normal
            dest = normal
        if self._closed:
            self._fail(dest, "transport layer closed")
            return
        if dest.transport == UDP:
            self._send_datagram(data, dest, local)
            return
        conn = self._connections.get(dest)
        if conn is None or conn.closing:
            if dest.transport not in STREAM_TRANSPORTS:
                # RFC 7118 §5: only the client opens WebSocket connections.
                self._fail(dest, f"no {dest.transport} connection")
                return
            conn = self._connect(dest, server_name)
        conn.send(data)

    def _send_datagram(self, data: bytes, dest: Address, local: Address | None) -> None:
        endpoint = self._pick_endpoint(dest, local)
        if endpoint is None:
            self._fail(dest, f"no udp listener for {local or ('IPv6' if dest.family == socket.AF_INET6 else 'IPv4')}")
            return
        if len(data) > MAX_UDP_PAYLOAD:
            self._fail(dest, f"{len(data)} bytes do not fit a datagram")
            return
        if endpoint.paused:
            # The socket buffer is full; retransmission timers cover the loss.
            self._fail(dest, "udp send buffer full")
            return
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("send %d bytes to %s from %s:\n%s", len(data), dest, endpoint.local, _text(data))
        try:
            endpoint.transport.sendto(data, (dest.host, dest.port))
        except OSError as exc:
            self._fail(dest, str(exc))
            return
        self.stats.datagrams_out += 1

    def _pick_endpoint(self, dest: Address, local: Address | None) -> _UdpEndpoint | None:
        family = dest.family
        for endpoint in self._endpoints:
            if local is None:
                if endpoint.local.family == family:
                    return endpoint
            elif endpoint.local == local:
                return endpoint if local.family == family else None
        return None

    def _connect(self, dest: Address, server_name: str | None) -> _Connection:
        conn = _Connection(self, dest.transport, dest)
        self._connections[dest] = conn
        self._all_connections.add(conn)
        context: ssl.SSLContext | None = None
        if dest.transport == TLS:
            if self._tls_client_context is None:
                self._tls_client_context = ssl.create_default_context()
            context = self._tls_client_context
        loop = self._bind_loop()
        task = loop.create_task(self._run_connect(conn, context, server_name), name=f"sip-connect {dest}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conn

    async def _run_connect(self, conn: _Connection, context: ssl.SSLContext | None, server_name: str | None) -> None:
        dest = conn.peer
        assert dest is not None
        loop = self._bind_loop()
        log.debug("connecting to %s", dest)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    dest.host,
                    dest.port,
                    ssl=context,
                    server_hostname=(server_name or dest.host) if context else None,
                    ssl_handshake_timeout=self.connect_timeout if context else None,
                )
        except asyncio.CancelledError:
            self._forget(conn)
            raise
        except (OSError, TimeoutError) as exc:
            reason = f"connect failed: {exc or type(exc).__name__}"
            log.warning("%s: %s", dest, reason)
            self._connect_failed(conn, reason)
        except Exception as exc:  # the root of this task: never let it die silently
            log.exception("%s: connect failed", dest)
            self._connect_failed(conn, f"connect failed: {exc!r}")

    def _connect_failed(self, conn: _Connection, reason: str) -> None:
        self.stats.connect_failures += 1
        self.stats.send_errors += max(len(conn.pending) - 1, 0)
        conn.pending.clear()
        self._forget(conn)
        assert conn.peer is not None
        self._fail(conn.peer, reason)

    # ---- connection table ----------------------------------------------
    def _register(self, conn: _Connection) -> bool:
        """Enter a connection that just came up; refuse it when closing."""
        if self._closed:
            return False
        assert conn.peer is not None
        self._connections[conn.peer] = conn
        self._all_connections.add(conn)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        return True

    def _forget(self, conn: _Connection) -> None:
        if conn.peer is not None and self._connections.get(conn.peer) is conn:
            del self._connections[conn.peer]
        self._all_connections.discard(conn)

    # ---- receiving -----------------------------------------------------
    def _datagram_received(self, data: bytes, addr: tuple[str, int], endpoint: _UdpEndpoint) -> None:
        stats = self.stats
        stats.datagrams_in += 1
        kind = classify_datagram(data, self.max_message_size)
        if kind is DatagramKind.MESSAGE:
            self._deliver(data, Address(UDP, addr[0], addr[1]), endpoint.local)
        elif kind is DatagramKind.KEEPALIVE:
            stats.keepalives_in += 1
        else:
            if kind is DatagramKind.OVERSIZE:
                stats.oversize += 1
            else:
                stats.garbage_dropped += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("dropped %s datagram of %d bytes from %s:%s", kind, len(data), addr[0], addr[1])

    def _deliver(self, data: bytes, source: Address, local: Address) -> None:
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("recv %d bytes from %s on %s:\n%s", len(data), source, local, _text(data))
        try:
            self._user.message_received(data, source, local)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("handling %d bytes from %s failed", len(data), source)

    # ---- failures ------------------------------------------------------
    def _fail(self, dest: object, reason: str) -> None:
        self.stats.send_errors += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send to %s failed: %s", dest, reason)
        if self._on_error is not None and not self._closed:
            self._bind_loop().call_soon(self._report, dest, reason)

    def _report(self, dest: object, reason: str) -> None:
        if self._closed or self._on_error is None:
            return
        try:
            self._on_error(dest, reason)
        except Exception:
            log.exception("transport_error handler failed for %s", dest)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop


class _UdpEndpoint(asyncio.DatagramProtocol):
    """One UDP listener."""

    def __init__(self, layer: TransportLayer) -> None:
        self.layer = layer
        self.transport: asyncio.DatagramTransport
        self.local: Address
        self.paused = False
        self.lost: asyncio.Future[None] = layer._bind_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = _address(UDP, transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.layer._datagram_received(data, addr, self)

    def error_received(self, exc: Exception) -> None:
        # Send errors the kernel reports after the fact (ICMP): no destination is known.
        self.layer.stats.send_errors += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", self.local, exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        self.transport.close()


class _Connection(asyncio.Protocol):
    """One TCP or TLS connection, inbound (``peer`` learnt on connect) or outbound."""

    def __init__(self, layer: TransportLayer, transport_name: str, peer: Address | None) -> None:
        self.layer = layer
        self.name = transport_name
        self.peer = peer
        self.local: Address | None = None
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(layer.max_message_size)
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.last_activity = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.closing = False
        self.registered = False
        self.checked = False
        self.lost: asyncio.Future[None] = layer._bind_loop().create_future()

    # ---- asyncio.Protocol ----------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        layer = self.layer
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        if peername is None or sockname is None:
            transport.abort()
            return
        if self.peer is None:
            self.peer = _address(self.name, peername)
        self.local = _address(self.name, sockname)
        if not layer._register(self):
            transport.abort()
            return
        self.registered = True
        limit = layer.write_buffer_limit
        transport.set_write_buffer_limits(high=limit // 4, low=limit // 16)
        self.last_activity = layer._bind_loop().time()
        self._arm_idle(layer.tcp_idle_timeout)
        log.debug("connection %s up from %s", self.peer, self.local)
        if self.pending:
            data = b"".join(self.pending)
            layer.stats.messages_out += len(self.pending)
            self.pending.clear()
            self.pending_size = 0
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        layer = self.layer
        self.last_activity = layer._bind_loop().time()
        if not self.checked:
            self.checked = True
            if data[0] not in _START_BYTES and data[0] not in _CRLF_BYTES:
                self._garbage(data[0])
                return
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            layer.stats.framing_errors += 1
            if exc.status == 513:
                layer.stats.oversize += 1
            log.warning("closing %s: %s", self.peer, exc.detail)
            self.close()
            return
        assert self.peer is not None and self.local is not None
        for message in messages:
            if self.closing:
                return
            if not message:  # PING: RFC 5626 §4.4.1 wants a single CRLF back
                layer.stats.keepalives_in += 1
                self.write(_PONG)
            elif message[0] not in _START_BYTES:
                self._garbage(message[0])
                return
            else:
                layer.stats.messages_in += 1
                layer._deliver(message, self.peer, self.local)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        # The peer is not reading: stop reading what it sends until it does.
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        layer = self.layer
        if self.registered:
            self.registered = False
            layer.stats.connections_open -= 1
        layer._forget(self)
        if exc is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("connection %s lost: %s", self.peer, exc)
        if not self.lost.done():
            self.lost.set_result(None)

    # ---- used by the layer -------------------------------------------
    def send(self, data: bytes) -> None:
        layer = self.layer
        assert self.peer is not None
        transport = self.transport
        if self.closing:
            layer._fail(self.peer, "connection closed")
            return
        if transport is None:
            if self.pending_size + len(data) > layer.write_buffer_limit:
                layer._fail(self.peer, "too much queued while connecting")
                return
            self.pending.append(data)
            self.pending_size += len(data)
        else:
            if transport.get_write_buffer_size() + len(data) > layer.write_buffer_limit:
                layer.stats.write_overflows += 1
                log.warning("dropping %s: it does not read what is sent", self.peer)
                self.closing = True
                transport.abort()
                layer._fail(self.peer, "peer is not reading")
                return
            transport.write(data)
            self.last_activity = layer._bind_loop().time()
            layer.stats.messages_out += 1
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("send %d bytes to %s from %s:\n%s", len(data), self.peer, self.local, _text(data))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # ---- internals -----------------------------------------------------
    def _garbage(self, first: int) -> None:
        layer = self.layer
        layer.stats.garbage_dropped += 1
        layer.stats.framing_errors += 1
        hint = " (a TLS handshake on a TCP port?)" if first == _TLS_HANDSHAKE and self.name == TCP else ""
        log.warning("closing %s: not SIP, first byte 0x%02x%s", self.peer, first, hint)
        self.close()

    def _arm_idle(self, delay: float) -> None:
        self.idle_timer = self.layer._bind_loop().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        # One timer per connection, re-armed only when it fires: traffic just
        # moves last_activity (no timer churn per packet).
        self.idle_timer = None
        if self.closing:
            return
        layer = self.layer
        idle = layer._bind_loop().time() - self.last_activity
        if idle >= layer.tcp_idle_timeout:
            layer.stats.idle_closed += 1
            log.info("closing %s: idle for %.0f s", self.peer, idle)
            self.close()
        else:
            self._arm_idle(layer.tcp_idle_timeout - idle)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


#: Receive buffer asked for on a UDP listener: a burst of requests that arrives
#: while the loop is busy (a garbage collection, a slow callback) waits in the
#: kernel instead of being dropped.  The kernel caps it at net.core.rmem_max.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


def _grow_receive_buffer(sock: socket.socket) -> None:
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < UDP_RECEIVE_BUFFER:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    except OSError as exc:  # not fatal: the default buffer still works
        log.info("UDP receive buffer left at the default: %s", exc)
