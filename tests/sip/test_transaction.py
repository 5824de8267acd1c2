"""Tests of :mod:`cosmo.sip.transaction`: the four RFC 3261 §17 machines, RFC 6026, matching.

A client :class:`TransactionLayer` and a server one are wired together in
memory by :class:`Link`, aioquic-style: what one layer puts in
``datagrams_to_send()`` is turned back into a message with ``parse_message``
and fed to the other, a loss filter may drop any datagram, and a simulated
clock calls ``handle_timer(now)`` at each ``get_timer()`` deadline.  Send
times, events and the moment of each event are recorded, so the timer
schedules of RFC 3261 are asserted to the exact instant.

Both layers use the default timers (T1 0.5 s, T2 4 s, T4 5 s, Timer D 32 s);
the literal schedules below are those values worked out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmo.sip.errors import SipUsageError
from cosmo.sip.headers import parse_via
from cosmo.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
)
from cosmo.sip.transaction import (
    AckTimeout,
    CancelReceived,
    ClientTransaction,
    Destination,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Timers,
    TransactionEvent,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
)

from .conftest import TORTURE_MISSING, torture_messages, wire

S = TransactionState
T1, T2, T4, TIMER_D = 0.5, 4.0, 5.0, 32.0
TIMEOUT = 64 * T1  # Timers B, F, H, J, L, M

CLIENT_HOST = "192.0.2.10"
SERVER_HOST = "192.0.2.20"
CALL_ID = "3848276298220188511@192.0.2.10"
ROUTES = ("<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>")


def test_default_timers_are_those_of_rfc_3261_table_4() -> None:
    timers = Timers()
    assert (timers.t1, timers.t2, timers.t4, timers.d, timers.b) == (T1, T2, T4, TIMER_D, TIMEOUT)


# --- the in-memory link ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """A destination or source, as the transport layer reports it."""

    transport: str
    host: str
    port: int
    reliable: bool


def places(transport: str) -> tuple[Place, Place]:
    """(client, server) addresses; a TCP client connects from an ephemeral port."""
    reliable = transport == "tcp"
    client = Place(transport, CLIENT_HOST, 49152 if reliable else 5060, reliable)
    return client, Place(transport, SERVER_HOST, 5060, reliable)


@dataclass(frozen=True, slots=True)
class Sent:
    """One datagram put on the wire: the n-th of the run, when, by whom, to where."""

    index: int
    at: float
    sender: str
    message: SipRequest | SipResponse
    dest: Destination
    dropped: bool

    def is_(self, what: str) -> bool:
        """``what`` is a method (``"INVITE"``) or a status with the CSeq method (``"486 INVITE"``)."""
        message = self.message
        if isinstance(message, SipRequest):
            return message.method == what
        return f"{message.status} {message.cseq.method}" == what


Handler = Callable[["Link", TransactionEvent], None]
E = TypeVar("E")


@dataclass
class Peer:
    """One side: its layer, its address, what its TU heard (with the time) and how it reacts."""

    name: str
    layer: TransactionLayer
    addr: Place
    events: list[tuple[float, TransactionEvent]] = field(default_factory=list)
    handler: Handler | None = None

    def of(self, kind: type[E]) -> list[tuple[float, E]]:
        """The events of type ``kind`` with their times."""
        return [(at, event) for at, event in self.events if isinstance(event, kind)]

    def terminated_at(self, txn: ClientTransaction | ServerTransaction) -> float:
        """When ``txn`` left the table."""
        times = [at for at, e in self.of(TransactionTerminated) if e.transaction is txn]
        assert len(times) == 1, times
        return times[0]


class Link:
    """A client layer and a server layer joined in memory, with a clock and a loss filter."""

    def __init__(self, transport: str = "udp", *, drop: Callable[[Sent], bool] | None = None) -> None:
        client_addr, server_addr = places(transport)
        self.client = Peer("client", TransactionLayer(), client_addr)
        self.server = Peer("server", TransactionLayer(), server_addr)
        self.drop = drop or (lambda sent: False)
        self.now = 0.0
        self.log: list[Sent] = []
        self._actions: list[tuple[float, Callable[[], None]]] = []

    def other(self, peer: Peer) -> Peer:
        return self.server if peer is self.client else self.client

    def pump(self) -> None:
        """Deliver every pending datagram and event until both layers are quiet."""
        busy = True
        while busy:
            busy = False
            for peer in (self.client, self.server):
                self._drain(peer)
                for data, dest in peer.layer.datagrams_to_send():
                    busy = True
                    message = parse_message(data)
                    sent = Sent(len(self.log), self.now, peer.name, message, dest, False)
                    dropped = self.drop(sent)
                    self.log.append(replace(sent, dropped=dropped))
                    if not dropped:
                        other = self.other(peer)
                        # A fresh parse: the receiver stamps the top Via in place.
                        other.layer.receive(parse_message(data), peer.addr, self.now)
                        self._drain(other)

    def _drain(self, peer: Peer) -> None:
        while (event := peer.layer.next_event()) is not None:
            peer.events.append((self.now, event))
            if peer.handler is not None:
                peer.handler(self, event)

    def inject(self, message: SipRequest | SipResponse, *, to: str = "server") -> None:
        """Hand ``message`` to one side now, as if the other had sent it (a retransmission, say)."""
        peer = self.server if to == "server" else self.client
        peer.layer.receive(message, self.other(peer).addr, self.now)
        self.pump()

    def call_at(self, at: float, action: Callable[[], None]) -> None:
        """Run a TU action at ``at`` (after the layers' timers due at that instant)."""
        self._actions.append((at, action))

    def run_until(self, until: float) -> None:
        """Fire timers and TU actions in time order up to ``until``; the clock ends at ``until``."""
        self.pump()
        while True:
            deadlines = [t for p in (self.client, self.server) if (t := p.layer.get_timer()) is not None]
            deadlines += [at for at, _ in self._actions]
            if not deadlines or min(deadlines) > until:
                break
            self.now = max(self.now, min(deadlines))
            for peer in (self.client, self.server):
                peer.layer.handle_timer(self.now)
                self.pump()
            due = [a for a in self._actions if a[0] <= self.now]
            self._actions = [a for a in self._actions if a[0] > self.now]
            for _, action in due:
                action()
                self.pump()
        if until != math.inf:
            self.now = until

    def settle(self) -> None:
        """Run until nothing is left to happen, then check both tables are empty."""
        self.run_until(math.inf)
        for peer in (self.client, self.server):
            layer = peer.layer
            assert (peer.name, layer.client_count, layer.server_count, layer.get_timer()) == (
                peer.name, 0, 0, None)

    def sends(self, sender: str, what: str) -> list[Sent]:
        """Every ``what`` that ``sender`` put on the wire, dropped or not."""
        return [s for s in self.log if s.sender == sender and s.is_(what)]

    def times(self, sender: str, what: str) -> list[float]:
        return [s.at for s in self.sends(sender, what)]

    def send(self, request: SipRequest) -> ClientTransaction:
        """The client TU starts a transaction toward the server, now."""
        txn = self.client.layer.send_request(request, self.server.addr, self.now)
        self.pump()
        return txn

    def respond(self, txn: ServerTransaction, status: int) -> None:
        """The server TU answers ``txn`` now."""
        txn.respond(make_response(txn.request, status, to_tag="b1"), self.now)
        self.pump()


# --- messages and TU behaviours -------------------------------------------------------------


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-74bf9",
    transport: str = "udp",
    sent_by: str = f"{CLIENT_HOST}:5060",
    via_params: str = "",
    cseq: int = 1,
    routes: tuple[str, ...] = ROUTES,
    uri: str = "sip:bob@example.com",
    call_id: str = CALL_ID,
    from_tag: str = "9fxced76sl",
) -> SipRequest:
    """A request as baresip writes one (Route set from a preloaded outbound proxy)."""
    via = f"Via: SIP/2.0/{transport.upper()} {sent_by}"
    if branch is not None:
        via += f";branch={branch}"
    lines = [f"{method} {uri} SIP/2.0", via + via_params]
    lines += [f"Route: {route}" for route in routes]
    lines += [
        "Max-Forwards: 70",
        f'From: "Alice" <sip:alice@example.com>;tag={from_tag}',
        "To: <sip:bob@example.com>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@{CLIENT_HOST}:5060>",
        "User-Agent: baresip v1.0.0 (x86_64/linux)",
        "", "",
    ]
    message = parse_message(wire("\n".join(lines)))
    assert isinstance(message, SipRequest)
    return message


def ack_for_2xx(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The UAC core's ACK for a 2xx (§13.2.2.4): a new branch, the 2xx's To."""
    headers = Headers()
    top = invite.via
    headers.add("Via", str(top.with_param("branch", f"z9hG4bK-ack-{top.branch}")))
    headers.add("Max-Forwards", "70")
    for name in ("From", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return SipRequest("ACK", invite.uri, headers)


def uac_acks_2xx(link: Link, event: TransactionEvent) -> None:
    """Client TU: ACK every 2xx to an INVITE, retransmissions and strays included."""
    if (isinstance(event, ResponseReceived) and 200 <= event.response.status < 300
            and event.response.cseq.method == "INVITE"):
        invite = event.transaction.request if event.transaction else request()
        link.client.layer.send_stateless(ack_for_2xx(invite, event.response), link.server.addr)


def uas_answers(*statuses: int) -> Handler:
    """Server TU: answer each new request with ``statuses`` in turn, at once."""

    def handler(link: Link, event: TransactionEvent) -> None:
        if isinstance(event, RequestReceived) and event.transaction is not None:
            for status in statuses:
                event.transaction.respond(
                    make_response(event.request, status, to_tag="b1"), link.now)

    return handler


def uas_ends_cancelled_invites(link: Link, event: TransactionEvent) -> None:
    """Server TU: answer a cancelled INVITE with 487 (RFC 3261 §9.2)."""
    if isinstance(event, CancelReceived):
        event.invite.respond(make_response(event.invite.request, 487, to_tag="b1"), link.now)


def server_txn(link: Link) -> ServerTransaction:
    """The one server transaction the server TU was told about."""
    txns = [e.transaction for _, e in link.server.of(RequestReceived) if e.transaction is not None]
    assert len(txns) == 1, txns
    return txns[0]


def from_server(sent: Sent) -> bool:
    return sent.sender == "server"


def drop_nth(*indices: int, sender: str, what: str) -> Callable[[Sent], bool]:
    """Drop the listed occurrences (0-based) of ``what`` sent by ``sender``."""
    seen: list[int] = []

    def drop(sent: Sent) -> bool:
        if sent.sender != sender or not sent.is_(what):
            return False
        seen.append(sent.index)
        return len(seen) - 1 in indices

    return drop


def finals(peer: Peer) -> list[tuple[float, int]]:
    return [(at, e.response.status) for at, e in peer.of(ResponseReceived)
            if e.response.status >= 200]


# --- INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2) -----------------------------


def test_invite_client_retransmits_on_timer_a_doubling_and_times_out_on_timer_b() -> None:
    link = Link(drop=from_server)
    link.server.handler = uas_answers(480)  # lost, like every response
    txn = link.send(request())
    assert txn.state == S.CALLING
    link.settle()
    assert link.times("client", "INVITE") == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(at, e.reason) for at, e in link.client.of(TransactionTimedOut)] == [(TIMEOUT, "timeout")]
    assert link.client.of(TransactionTimedOut)[0][1].transaction is txn
    assert (txn.state, link.client.terminated_at(txn)) == (S.TERMINATED, TIMEOUT)
    assert finals(link.client) == []


def test_invite_client_over_tcp_sends_once_and_times_out_on_timer_b() -> None:
    link = Link("tcp", drop=from_server)
    link.server.handler = uas_answers(480)
    txn = link.send(request(transport="tcp"))
    link.settle()
    assert link.times("client", "INVITE") == [0]
    assert [(at, e.reason) for at, e in link.client.of(TransactionTimedOut)] == [(TIMEOUT, "timeout")]
    assert link.client.terminated_at(txn) == TIMEOUT


def test_invite_client_stops_timer_a_on_a_provisional_response() -> None:
    # The first 100 Trying is lost, so Timer A fires once; the retransmitted
    # INVITE makes the server repeat its 100, which stops the retransmissions.
    link = Link(drop=drop_nth(0, sender="server", what="100 INVITE"))
    txn = link.send(request())
    link.run_until(20)
    assert link.times("client", "INVITE") == [0, 0.5]
    assert link.times("server", "100 INVITE") == [0, 0.5]
    assert txn.state == S.PROCEEDING
    assert [(at, e.response.status) for at, e in link.client.of(ResponseReceived)] == [(0.5, 100)]
    link.respond(server_txn(link), 486)
    link.settle()


def test_invite_client_in_proceeding_rings_past_timer_b() -> None:
    link = Link()
    link.client.handler = uac_acks_2xx
    txn = link.send(request())
    link.respond(server_txn(link), 180)
    link.run_until(60)  # a trunk call ringing for a minute
    assert link.client.of(TransactionTimedOut) == []
    assert txn.state == S.PROCEEDING
    link.respond(server_txn(link), 200)
    assert finals(link.client) == [(60, 200)]


def test_invite_client_gives_up_64_t1_after_its_cancel_when_no_final_comes() -> None:
    link = Link(drop=lambda sent: sent.sender == "server" and sent.index > 1)
    link.server.handler = uas_ends_cancelled_invites
    txn = link.send(request())
    link.run_until(10)
    assert txn.state == S.PROCEEDING
    cancel = link.client.layer.send_request(txn.make_cancel(), link.server.addr, link.now)
    link.settle()
    assert link.client.terminated_at(cancel) == 10 + TIMEOUT  # Timer F of the CANCEL
    assert [(at, e.reason) for at, e in link.client.of(TransactionTimedOut)
            if e.transaction is txn] == [(10 + TIMEOUT, "timeout")]


def test_invite_client_acks_a_non_2xx_final_itself() -> None:
    # RFC 3261 §17.1.1.3: same Request-URI, Call-ID, From and CSeq number, To
    # of the response, one Via (the INVITE's top Via), the INVITE's Route set.
    link = Link()
    invite = request()
    txn = link.send(invite)
    link.respond(server_txn(link), 486)
    assert txn.state == S.COMPLETED
    assert finals(link.client) == [(0, 486)]
    [ack] = link.sends("client", "ACK")
    message = ack.message
    assert isinstance(message, SipRequest)
    assert (ack.at, ack.dest) == (0, link.server.addr)
    assert message.uri == invite.uri
    assert list(message.headers) == [
        ("Via", f"SIP/2.0/UDP {CLIENT_HOST}:5060;branch=z9hG4bK-74bf9"),
        ("Route", "<sip:p1.example.net;lr>"),
        ("Route", "<sip:p2.example.net;lr>"),
        ("From", '"Alice" <sip:alice@example.com>;tag=9fxced76sl'),
        ("To", "<sip:bob@example.com>;tag=b1"),
        ("Call-ID", CALL_ID),
        ("CSeq", "1 ACK"),
        ("Max-Forwards", "70"),
        ("Content-Length", "0"),
    ]
    assert message.body == b""


def test_invite_client_acks_a_retransmitted_final_again_and_ends_on_timer_d() -> None:
    # The first ACK is lost: the server's Timer G repeats the 486 at T1 and
    # the client transaction answers it with the same ACK.
    link = Link(drop=drop_nth(0, sender="client", what="ACK"))
    txn = link.send(request())
    link.respond(server_txn(link), 486)
    link.settle()
    assert link.times("server", "486 INVITE") == [0, 0.5]
    assert link.times("client", "ACK") == [0, 0.5]
    acks = [s.message for s in link.sends("client", "ACK")]
    assert bytes(acks[0]) == bytes(acks[1])
    assert finals(link.client) == [(0, 486)]  # the retransmission is not passed up
    assert link.client.terminated_at(txn) == TIMER_D


def test_invite_client_over_tcp_ends_as_soon_as_it_has_acked_a_non_2xx() -> None:
    link = Link("tcp")
    txn = link.send(request(transport="tcp"))
    link.respond(server_txn(link), 603)
    assert link.times("client", "ACK") == [0]
    assert (txn.state, link.client.terminated_at(txn)) == (S.TERMINATED, 0)  # Timer D is zero
    link.settle()


def test_invite_client_is_accepted_on_2xx_and_passes_every_retransmission_up() -> None:
    # RFC 6026 §7.2: the 2xx moves the transaction to Accepted, whose Timer M
    # (64*T1) absorbs nothing: each 2xx retransmission reaches the TU, which
    # sends its ACK again.  The first two ACKs are lost.
    link = Link(drop=drop_nth(0, 1, sender="client", what="ACK"))
    link.client.handler = uac_acks_2xx
    txn = link.send(request())
    link.respond(server_txn(link), 200)
    assert txn.state == S.ACCEPTED
    link.settle()
    assert link.times("server", "200 INVITE") == [0, 0.5, 1.5]
    assert finals(link.client) == [(0, 200), (0.5, 200), (1.5, 200)]
    assert all(e.transaction is txn for _, e in link.client.of(ResponseReceived))
    assert link.times("client", "ACK") == [0, 0.5, 1.5]
    assert link.client.terminated_at(txn) == TIMEOUT  # Timer M
    assert link.client.of(TransactionTimedOut) == []


def test_invite_client_over_tcp_also_waits_timer_m_after_a_2xx() -> None:
    link = Link("tcp")
    link.client.handler = uac_acks_2xx
    txn = link.send(request(transport="tcp"))
    link.respond(server_txn(link), 200)
    link.settle()
    assert link.client.terminated_at(txn) == TIMEOUT


def test_a_2xx_after_timer_m_reaches_the_tu_without_a_transaction() -> None:
    link = Link()
    link.client.handler = uac_acks_2xx
    txn = link.send(request())
    link.respond(server_txn(link), 200)
    response = make_response(server_txn(link).request, 200, to_tag="b1")
    link.settle()
    link.client.layer.receive(response, link.server.addr, 100.0)
    event = link.client.layer.next_event()
    assert isinstance(event, ResponseReceived)
    assert (event.transaction, event.response.status, event.source) == (None, 200, link.server.addr)
    assert txn.state == S.TERMINATED
    assert link.client.layer.stray_responses == 0


# --- non-INVITE client transaction (RFC 3261 §17.1.2) ---------------------------------------


def test_non_invite_client_timer_e_doubles_to_t2_and_timer_f_times_out() -> None:
    link = Link(drop=from_server)
    link.server.handler = uas_answers(200)
    txn = link.send(request("OPTIONS"))
    assert txn.state == S.TRYING
    link.settle()
    assert link.times("client", "OPTIONS") == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(at, e.reason) for at, e in link.client.of(TransactionTimedOut)] == [(TIMEOUT, "timeout")]
    assert link.client.terminated_at(txn) == TIMEOUT
    # The server answered each retransmission with its last response, then Timer J.
    assert link.times("server", "200 OPTIONS") == link.times("client", "OPTIONS")
    assert link.server.terminated_at(server_txn(link)) == TIMEOUT


def test_non_invite_client_in_proceeding_retransmits_every_t2_and_ends_on_timer_k() -> None:
    link = Link()
    link.server.handler = uas_answers(100)
    txn = link.send(request("REGISTER"))
    assert txn.state == S.PROCEEDING
    link.run_until(10)
    assert link.times("client", "REGISTER") == [0, 0.5, 4.5, 8.5]
    assert link.times("server", "100 REGISTER") == [0, 0.5, 4.5, 8.5]
    link.respond(server_txn(link), 200)
    assert (txn.state, finals(link.client)) == (S.COMPLETED, [(10, 200)])
    link.settle()
    assert link.times("client", "REGISTER") == [0, 0.5, 4.5, 8.5]
    assert link.client.terminated_at(txn) == 10 + T4  # Timer K
    assert link.server.terminated_at(server_txn(link)) == 10 + TIMEOUT  # Timer J


def test_non_invite_client_absorbs_retransmitted_finals_in_completed() -> None:
    # The server's answers to two retransmissions cross the first 200.
    link = Link(drop=drop_nth(0, 1, sender="server", what="200 OPTIONS"))
    link.server.handler = uas_answers(200)
    txn = link.send(request("OPTIONS"))
    link.run_until(2)
    response = link.sends("server", "200 OPTIONS")[0].message
    link.inject(response, to="client")
    link.inject(response, to="client")
    assert finals(link.client) == [(1.5, 200)]
    link.settle()
    assert link.client.terminated_at(txn) == 1.5 + T4


def test_non_invite_client_over_tcp_sends_once_and_ends_with_its_final() -> None:
    link = Link("tcp")
    link.server.handler = uas_answers(100)
    txn = link.send(request("OPTIONS", transport="tcp"))
    link.run_until(20)
    assert link.times("client", "OPTIONS") == [0]
    link.respond(server_txn(link), 200)
    assert link.client.terminated_at(txn) == 20  # Timer K is zero
    assert link.server.terminated_at(server_txn(link)) == 20  # Timer J is zero
    link.settle()


def test_non_invite_client_over_tcp_times_out_on_timer_f() -> None:
    link = Link("tcp", drop=from_server)
    link.server.handler = uas_answers(200)
    txn = link.send(request("BYE", transport="tcp"))
    link.settle()
    assert link.times("client", "BYE") == [0]
    assert [(at, e.transaction, e.reason) for at, e in link.client.of(TransactionTimedOut)] == [
        (TIMEOUT, txn, "timeout")]


# --- INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1) ----------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_invite_server_sends_100_trying_at_once_and_repeats_its_last_response(transport: str) -> None:
    link = Link(transport)
    txn = link.send(request(transport=transport))
    ist = server_txn(link)
    assert ist.state == S.PROCEEDING
    [trying] = link.sends("server", "100 INVITE")
    assert trying.at == 0
    assert trying.message.headers.get("To") == "<sip:bob@example.com>"  # no tag on a 100
    assert [(at, e.response.status) for at, e in link.client.of(ResponseReceived)] == [(0, 100)]
    # A retransmitted INVITE (a UA that sends one more, or a retransmission
    # that crossed the 100) is answered with the last response sent.
    link.respond(ist, 180)
    link.run_until(1)
    link.inject(request(transport=transport))
    assert link.times("server", "180 INVITE") == [0, 1]
    assert len(link.server.of(RequestReceived)) == 1
    link.respond(ist, 486)
    link.settle()
    assert txn.state == S.TERMINATED


def test_invite_server_retransmits_a_non_2xx_on_timer_g_until_the_ack_then_timer_i() -> None:
    link = Link(drop=drop_nth(0, 1, 2, sender="client", what="ACK"))
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 486)
    assert ist.state == S.COMPLETED
    link.run_until(3.5)
    assert link.times("server", "486 INVITE") == [0, 0.5, 1.5, 3.5]
    assert ist.state == S.CONFIRMED  # the fourth ACK got through
    link.settle()
    assert link.times("server", "486 INVITE") == [0, 0.5, 1.5, 3.5]
    assert link.server.terminated_at(ist) == 3.5 + T4  # Timer I
    assert [e.request.method for _, e in link.server.of(RequestReceived)] == ["INVITE"]


def test_invite_server_without_ack_retransmits_until_timer_h() -> None:
    link = Link(drop=lambda sent: sent.is_("ACK"))
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 404)
    link.settle()
    assert link.times("server", "404 INVITE") == [
        0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert link.server.terminated_at(ist) == TIMEOUT  # Timer H
    assert link.server.of(AckTimeout) == []


def test_invite_server_over_tcp_does_not_retransmit_and_ends_on_the_ack() -> None:
    link = Link("tcp")
    link.send(request(transport="tcp"))
    ist = server_txn(link)
    link.respond(ist, 486)
    assert link.times("server", "486 INVITE") == [0]
    assert link.server.terminated_at(ist) == 0  # ACK at once, Timer I is zero
    link.settle()


def test_invite_server_over_tcp_without_ack_ends_on_timer_h() -> None:
    link = Link("tcp", drop=lambda sent: sent.is_("ACK"))
    link.send(request(transport="tcp"))
    ist = server_txn(link)
    link.respond(ist, 486)
    link.settle()
    assert link.times("server", "486 INVITE") == [0]
    assert link.server.terminated_at(ist) == TIMEOUT


def test_invite_server_retransmits_a_2xx_until_the_dialog_ack_arrives() -> None:
    # The ACK for a 2xx is its own transaction (another branch): the layer
    # matches it to the accepted INVITE by Call-ID and CSeq number, stops the
    # retransmissions and passes it to the TU without a transaction.
    link = Link(drop=drop_nth(0, 1, sender="client", what="ACK"))
    link.client.handler = uac_acks_2xx
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 200)
    assert ist.state == S.ACCEPTED
    link.settle()
    assert link.times("server", "200 INVITE") == [0, 0.5, 1.5]
    acks = [(at, e.transaction, e.request.method) for at, e in link.server.of(RequestReceived)
            if e.request.method == "ACK"]
    assert acks == [(1.5, None, "ACK")]
    assert link.sends("client", "ACK")[2].message.via.branch != ist.request.via.branch
    assert link.server.of(AckTimeout) == []
    assert link.server.terminated_at(ist) == TIMEOUT  # Timer L


def test_invite_server_reports_ack_timeout_when_no_ack_comes_for_its_2xx() -> None:
    link = Link(drop=lambda sent: sent.is_("ACK"))
    link.client.handler = uac_acks_2xx
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 200)
    link.settle()
    assert link.times("server", "200 INVITE") == [
        0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    [(at, event)] = link.server.of(AckTimeout)
    assert (at, event.transaction) == (TIMEOUT, ist)
    assert link.server.terminated_at(ist) == TIMEOUT
    assert link.server.events.index((at, event)) < link.server.events.index(
        (TIMEOUT, TransactionTerminated(ist)))


def test_invite_server_over_tcp_sends_its_2xx_once_and_still_waits_for_the_ack() -> None:
    link = Link("tcp", drop=lambda sent: sent.is_("ACK"))
    link.client.handler = uac_acks_2xx
    link.send(request(transport="tcp"))
    ist = server_txn(link)
    link.respond(ist, 200)
    link.settle()
    assert link.times("server", "200 INVITE") == [0]
    assert [(at, e.transaction) for at, e in link.server.of(AckTimeout)] == [(TIMEOUT, ist)]


def test_invite_server_answers_a_retransmitted_invite_with_its_2xx_in_accepted() -> None:
    link = Link()
    link.client.handler = uac_acks_2xx
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 200)
    link.run_until(0.2)
    link.inject(request())
    assert link.times("server", "200 INVITE") == [0, 0.2]
    # The repeated 2xx reached the client's TU, which ACKed it again.
    assert [e.request.method for _, e in link.server.of(RequestReceived)] == ["INVITE", "ACK", "ACK"]
    link.settle()


def test_invite_server_passes_up_an_rfc_2543_ack_for_its_2xx() -> None:
    # An RFC 2543 UA's ACK for a 2xx carries the INVITE's Via (no branch) and,
    # when the 2xx's Contact is the Request-URI, the same Request-URI.
    link = Link()
    link.inject(request(branch=None))
    ist = server_txn(link)
    link.respond(ist, 200)
    ack = request("ACK", branch=None)
    ack.headers.set("To", "<sip:bob@example.com>;tag=b1")
    link.run_until(0.1)
    link.inject(ack)
    assert [e.request.method for _, e in link.server.of(RequestReceived)] == ["INVITE", "ACK"]
    link.settle()
    assert link.times("server", "200 INVITE") == [0]
    assert link.server.of(AckTimeout) == []


# --- non-INVITE server transaction (RFC 3261 §17.2.2) ---------------------------------------


def test_non_invite_server_repeats_its_last_response_in_proceeding_and_completed() -> None:
    link = Link()
    link.send(request("INFO"))
    ist = server_txn(link)
    assert ist.state == S.TRYING
    # Trying: nothing sent yet, so a retransmission is absorbed.
    link.run_until(0.1)
    link.inject(request("INFO"))
    assert [s for s in link.log if s.sender == "server"] == []
    link.run_until(0.2)
    link.respond(ist, 100)
    assert ist.state == S.PROCEEDING
    link.run_until(0.3)
    link.inject(request("INFO"))
    assert link.times("server", "100 INFO") == [0.2, 0.3]
    link.run_until(0.4)
    link.respond(ist, 200)
    assert ist.state == S.COMPLETED
    link.run_until(0.45)
    link.inject(request("INFO"))
    assert link.times("server", "200 INFO") == [0.4, 0.45]
    assert len(link.server.of(RequestReceived)) == 1
    link.settle()
    assert link.server.terminated_at(ist) == 0.4 + TIMEOUT  # Timer J


def test_non_invite_server_over_tcp_ends_with_its_final_response() -> None:
    link = Link("tcp")
    link.server.handler = uas_answers(200)
    txn = link.send(request("OPTIONS", transport="tcp"))
    ist = server_txn(link)
    assert (ist.state, txn.state) == (S.TERMINATED, S.TERMINATED)
    assert link.server.terminated_at(ist) == 0
    link.settle()


# --- CANCEL (RFC 3261 §9) -------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cancel_of_a_ringing_invite(transport: str) -> None:
    link = Link(transport)
    invite = request(transport=transport)
    txn = link.send(invite)
    ist = server_txn(link)
    link.respond(ist, 180)
    link.run_until(3)
    cancel = txn.make_cancel()
    cancel_txn = link.send(cancel)
    # The layer answers the CANCEL itself and tells the TU, which ends the INVITE.
    assert [s.at for s in link.sends("server", "200 CANCEL")] == [3]
    [(at, event)] = link.server.of(CancelReceived)
    assert (at, event.invite, event.request.method) == (3, ist, "CANCEL")
    assert link.server.of(RequestReceived) == [(0, RequestReceived(ist, ist.request, link.client.addr))]
    assert finals(link.client) == [(3, 200)]
    link.respond(ist, 487)
    assert finals(link.client) == [(3, 200), (3, 487)]
    assert link.times("client", "ACK") == [3]
    link.settle()
    reliable = transport == "tcp"
    assert link.client.terminated_at(cancel_txn) == (3 if reliable else 3 + T4)
    assert link.client.terminated_at(txn) == (3 if reliable else 3 + TIMER_D)
    assert link.times("client", "CANCEL") == [3]


def test_make_cancel_copies_what_rfc_3261_section_9_1_requires() -> None:
    layer = TransactionLayer()
    invite = request(branch="z9hG4bK-c4n", via_params=";rport")
    invite.headers.add("Via", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK-under")
    invite.body = b"v=0\r\n"
    txn = layer.send_request(invite, places("udp")[1], 0)
    cancel = txn.make_cancel()
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert list(cancel.headers) == [
        ("Via", f"SIP/2.0/UDP {CLIENT_HOST}:5060;branch=z9hG4bK-c4n;rport"),
        ("Route", "<sip:p1.example.net;lr>"),
        ("Route", "<sip:p2.example.net;lr>"),
        ("From", '"Alice" <sip:alice@example.com>;tag=9fxced76sl'),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", CALL_ID),
        ("CSeq", "1 CANCEL"),
        ("Max-Forwards", "70"),
    ]
    assert cancel.body == b""


def test_make_cancel_of_a_non_invite_is_a_usage_error() -> None:
    txn = TransactionLayer().send_request(request("OPTIONS"), places("udp")[1], 0)
    with pytest.raises(SipUsageError) as info:
        txn.make_cancel()
    assert str(info.value) == "only an INVITE can be cancelled"


def test_cancel_without_a_matching_invite_is_answered_481() -> None:
    link = Link()
    link.send(request("CANCEL", branch="z9hG4bK-nothing"))
    [answer] = [s for s in link.log if s.sender == "server"]
    assert isinstance(answer.message, SipResponse)
    assert answer.message.start_line() == "SIP/2.0 481 Call/Transaction Does Not Exist"
    assert link.server.of(CancelReceived) == []
    assert finals(link.client) == [(0, 481)]
    link.settle()


def test_cancel_after_the_invite_got_its_final_response_is_answered_200_and_changes_nothing() -> None:
    # RFC 3261 §9.2: a CANCEL matching a transaction gets 200 even after the final response.
    link = Link(drop=lambda sent: sent.is_("ACK"))  # keeps the INVITE in Completed
    txn = link.send(request())
    link.respond(server_txn(link), 486)
    link.run_until(1)
    link.send(txn.make_cancel())
    assert link.times("server", "200 CANCEL") == [1]
    assert link.server.of(CancelReceived) == []
    link.settle()


def test_cancel_for_another_branch_does_not_touch_the_invite() -> None:
    link = Link()
    txn = link.send(request())
    link.send(request("CANCEL", branch="z9hG4bK-other"))
    assert link.times("server", "481 CANCEL") == [0]
    assert server_txn(link).state == S.PROCEEDING
    assert txn.state == S.PROCEEDING
    link.respond(server_txn(link), 486)
    link.settle()


# --- matching (RFC 3261 §17.1.3, §17.2.3; RFC 4475) -----------------------------------------


def heard(layer: TransactionLayer) -> list[TransactionEvent]:
    out = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def test_server_matching_uses_branch_sent_by_and_method() -> None:
    layer = TransactionLayer()
    client, _ = places("udp")
    layer.receive(request("OPTIONS", branch="z9hG4bK-1"), client, 0)
    layer.receive(request("OPTIONS", branch="z9hG4bK-1"), client, 0)  # retransmission
    layer.receive(request("OPTIONS", branch="z9hG4bK-2"), client, 0)
    layer.receive(request("OPTIONS", branch="z9hG4bK-1", sent_by="198.51.100.7:5060"), client, 0)
    layer.receive(request("OPTIONS", branch="z9hG4bK-1", sent_by="192.0.2.10:5062"), client, 0)
    layer.receive(request("INFO", branch="z9hG4bK-1"), client, 0)
    # Host case does not matter in sent-by.
    layer.receive(request("OPTIONS", branch="z9hG4bK-7", sent_by="PBX.example.com"), client, 0)
    layer.receive(request("OPTIONS", branch="z9hG4bK-7", sent_by="pbx.EXAMPLE.com"), client, 0)
    events = heard(layer)
    assert sum(isinstance(e, RequestReceived) for e in events) == 6
    assert layer.server_count == 6


def test_an_ack_for_a_non_2xx_matches_the_invite_transaction() -> None:
    layer = TransactionLayer()
    client, _ = places("udp")
    layer.receive(request(), client, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    event.transaction.respond(make_response(event.request, 486, to_tag="b1"), 0)
    ack = request("ACK")
    ack.headers.set("To", "<sip:bob@example.com>;tag=b1")
    layer.receive(ack, client, 0.1)
    assert event.transaction.state == S.CONFIRMED
    assert heard(layer) == []  # absorbed: the TU does not see this ACK


def test_rfc_2543_requests_are_matched_without_a_branch() -> None:
    # RFC 3261 §17.2.3: Request-URI, From tag, Call-ID, CSeq and top Via.
    layer = TransactionLayer()
    client, _ = places("udp")
    layer.receive(request(branch=None), client, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.datagrams_to_send()
    layer.receive(request(branch=None), client, 0.5)  # retransmission: the 100 again
    assert heard(layer) == []
    assert [parse_message(d).start_line() for d, _ in layer.datagrams_to_send()] == ["SIP/2.0 100 Trying"]
    for other in (request(branch=None, cseq=2), request(branch=None, from_tag="other"),
                  request(branch=None, uri="sip:carol@example.com"),
                  request(branch=None, call_id="another-call"),
                  request(branch=None, sent_by="198.51.100.7")):
        layer.receive(other, client, 1)
    assert len(heard(layer)) == 5
    event.transaction.respond(make_response(event.request, 486, to_tag="b1"), 1)
    ack = request("ACK", branch=None)
    ack.headers.set("To", "<sip:bob@example.com>;tag=b1")
    layer.receive(ack, client, 1.2)
    assert event.transaction.state == S.CONFIRMED
    assert heard(layer) == []


def test_rfc_2543_cancel_matches_its_invite() -> None:
    layer = TransactionLayer()
    client, _ = places("udp")
    layer.receive(request(branch=None), client, 0)
    [event] = heard(layer)
    layer.receive(request("CANCEL", branch=None), client, 0.5)
    [cancelled] = heard(layer)
    assert isinstance(event, RequestReceived) and isinstance(cancelled, CancelReceived)
    assert cancelled.invite is event.transaction


@pytest.mark.skipif(not torture_messages(), reason=TORTURE_MISSING)
def test_rfc_4475_badbranch_falls_back_to_rfc_2543_matching() -> None:
    # The branch is the magic cookie alone: not an RFC 3261 branch.
    data = torture_messages()["badbranch"]
    layer = TransactionLayer()
    source = Place("udp", "192.0.2.1", 5060, False)
    layer.receive(parse_message(data), source, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert event.transaction.key[0] == "2543"
    layer.receive(parse_message(data), source, 0.5)  # retransmission
    assert heard(layer) == []
    event.transaction.respond(make_response(event.request, 200, to_tag="x"), 1)
    layer.receive(parse_message(data), source, 1.5)
    answers = [parse_message(d) for d, _ in layer.datagrams_to_send()]
    assert [a.start_line() for a in answers] == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    assert layer.server_count == 1


@pytest.mark.skipif(not torture_messages(), reason=TORTURE_MISSING)
def test_rfc_4475_bcast_response_with_two_vias_is_dropped() -> None:
    # RFC 3261 §8.1.3.3: a UAC discards a response with more than one Via.
    layer = TransactionLayer()
    invite = request(branch="z9hG4bK1324923", cseq=35, call_id="bcast.0384840201234ksdfak3j2erwedfsASdf")
    txn = layer.send_request(invite, places("udp")[1], 0)
    layer.receive(parse_message(torture_messages()["bcast"]), places("udp")[1], 0.1)
    assert heard(layer) == []
    assert layer.stray_responses == 1
    assert txn.state == S.CALLING


def test_responses_are_matched_by_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    _, server = places("udp")
    invite = layer.send_request(request(), server, 0)
    cancel = layer.send_request(invite.make_cancel(), server, 0.1)
    layer.receive(make_response(cancel.request, 200), server, 0.2)
    [event] = heard(layer)
    assert isinstance(event, ResponseReceived) and event.transaction is cancel
    assert invite.state == S.CALLING
    layer.receive(make_response(request(branch="z9hG4bK-else"), 486), server, 0.3)
    layer.receive(make_response(request("OPTIONS"), 200), server, 0.3)  # right branch, wrong method
    layer.receive(make_response(request(branch="z9hG4bK-else"), 180), server, 0.3)
    assert heard(layer) == []
    assert layer.stray_responses == 3


def test_a_stray_2xx_to_an_invite_goes_to_the_tu_without_a_transaction() -> None:
    # A 2xx from another fork, or retransmitted after Timer M: the TU ACKs it.
    layer = TransactionLayer()
    _, server = places("udp")
    response = make_response(request(branch="z9hG4bK-gone"), 200, to_tag="fork2")
    layer.receive(response, server, 0)
    assert heard(layer) == [ResponseReceived(None, response, server)]
    assert layer.stray_responses == 0


# --- Via stamping and response destination (RFC 3261 §18.2, RFC 3581) ----------------------


def received_via(via_text: str, source: Place) -> str:
    layer = TransactionLayer()
    message = request("OPTIONS", sent_by=via_text)
    layer.receive(message, source, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived)
    return event.request.headers.get_all("Via")[0]


def test_received_is_added_when_the_via_host_is_not_the_source() -> None:
    nat = Place("udp", "203.0.113.9", 5060, False)
    assert received_via("10.0.0.7:5060", nat) == (
        "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-74bf9;received=203.0.113.9")
    assert received_via("pbx.example.com", nat) == (
        "SIP/2.0/UDP pbx.example.com;branch=z9hG4bK-74bf9;received=203.0.113.9")
    assert received_via("203.0.113.9:5060", nat) == "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK-74bf9"


def test_rport_is_filled_with_the_source_port() -> None:
    # RFC 3581 §4: received is added even when the host matches.
    nat = Place("udp", "203.0.113.9", 31337, False)
    layer = TransactionLayer()
    message = request("OPTIONS", sent_by="10.0.0.7:5060", via_params=";rport")
    layer.receive(message, nat, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived)
    assert event.request.headers.get("Via") == (
        "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-74bf9;rport=31337;received=203.0.113.9")
    same = Place("udp", "10.0.0.7", 5060, False)
    layer.receive(request("OPTIONS", branch="z9hG4bK-2", sent_by="10.0.0.7:5060", via_params=";rport"),
                  same, 0)
    [event] = heard(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert event.request.headers.get("Via") == (
        "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-2;rport=5060;received=10.0.0.7")
    # The responses carry the stamped Via and go back to the source port.
    event.transaction.respond(make_response(event.request, 200), 0)
    [(data, dest)] = layer.datagrams_to_send()
    assert parse_message(data).via.param("rport") == "5060"
    assert dest == same


def test_response_destination_follows_rfc_3261_section_18_2_2() -> None:
    layer = TransactionLayer()
    udp = Place("udp", "203.0.113.9", 31337, False)
    tcp = Place("tcp", "203.0.113.9", 49170, True)
    # Reliable: back over the connection the request came on.
    assert layer.response_destination(parse_via("SIP/2.0/TCP 10.0.0.7:5060;branch=z9hG4bK-1"), tcp) is tcp
    # rport: the source address and port.
    assert layer.response_destination(
        parse_via("SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-1;rport=31337;received=203.0.113.9"), udp) is udp
    # Otherwise the received address and the sent-by port (5060 when absent).
    dest = layer.response_destination(
        parse_via("SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bK-1;received=203.0.113.9"), udp)
    assert (dest.transport, dest.host, dest.port, dest.reliable) == ("udp", "203.0.113.9", 5070, False)
    dest = layer.response_destination(
        parse_via("SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK-1;received=203.0.113.9"), udp)
    assert (dest.transport, dest.host, dest.port, dest.reliable) == ("udp", "203.0.113.9", 5060, False)
    same_port = Place("udp", "203.0.113.9", 5070, False)
    assert layer.response_destination(parse_via("SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bK-1"), same_port) is same_port


def test_responses_and_their_retransmissions_go_to_the_response_destination() -> None:
    link = Link(drop=lambda sent: sent.is_("ACK"))
    link.client.addr = Place("udp", "203.0.113.9", 31337, False)  # behind a NAT, no rport
    link.send(request(sent_by="10.0.0.7:5062"))
    link.respond(server_txn(link), 486)
    link.settle()
    dests = {s.dest for s in link.log if s.sender == "server"}
    assert [(d.transport, d.host, d.port) for d in dests] == [("udp", "203.0.113.9", 5062)]


# --- transport errors and usage errors ------------------------------------------------------


def test_transport_error_fails_the_pending_client_transactions_to_that_place() -> None:
    layer = TransactionLayer()
    _, server = places("udp")
    elsewhere = Place("udp", "198.51.100.1", 5060, False)
    invite = layer.send_request(request(), server, 0)
    options = layer.send_request(request("OPTIONS", branch="z9hG4bK-o"), server, 0)
    done = layer.send_request(request("OPTIONS", branch="z9hG4bK-d"), server, 0)
    layer.receive(make_response(done.request, 200), server, 0)
    other = layer.send_request(request("OPTIONS", branch="z9hG4bK-x"), elsewhere, 0)
    heard(layer)
    layer.transport_error(Place("udp", SERVER_HOST, 5060, False))
    events = heard(layer)
    assert events == [
        TransactionTimedOut(invite, "transport error"),
        TransactionTerminated(invite),
        TransactionTimedOut(options, "transport error"),
        TransactionTerminated(options),
    ]
    assert (done.state, other.state) == (S.COMPLETED, S.TRYING)
    assert layer.client_count == 2


def test_send_request_refuses_an_ack_and_a_request_without_an_rfc_3261_branch() -> None:
    layer = TransactionLayer()
    _, server = places("udp")
    cases = [
        (request("ACK"), "an ACK is sent with send_stateless, not in a transaction"),
        (request(branch=None), "a request needs a top Via with an RFC 3261 branch"),
        (request(branch="a1b2c3"), "a request needs a top Via with an RFC 3261 branch"),
    ]
    for message, text in cases:
        with pytest.raises(SipUsageError) as info:
            layer.send_request(message, server, 0)
        assert str(info.value) == text
    layer.send_request(request("OPTIONS"), server, 0)
    with pytest.raises(SipUsageError) as info:
        layer.send_request(request("OPTIONS"), server, 0)
    assert str(info.value) == "branch z9hG4bK-74bf9 OPTIONS already in use"
    assert (layer.client_count, len(layer.datagrams_to_send())) == (1, 1)


def test_send_request_without_any_via_is_a_usage_error() -> None:
    message = request()
    message.headers.remove("Via")
    with pytest.raises(SipUsageError) as info:
        TransactionLayer().send_request(message, places("udp")[1], 0)
    assert str(info.value) == "a request needs a top Via with an RFC 3261 branch"


def test_a_second_final_response_is_a_usage_error() -> None:
    link = Link()
    link.send(request())
    ist = server_txn(link)
    link.respond(ist, 486)
    with pytest.raises(SipUsageError) as info:
        link.respond(ist, 200)
    assert str(info.value) == "final response 486 already sent for INVITE; not sending 200"
    with pytest.raises(SipUsageError) as info:
        link.respond(ist, 180)
    assert str(info.value) == "final response 486 already sent for INVITE; not sending 180"
    link.settle()
    assert link.times("server", "486 INVITE") == [0]
    with pytest.raises(SipUsageError):
        link.respond(ist, 500)


def test_provisional_responses_may_be_repeated() -> None:
    link = Link()
    link.client.handler = uac_acks_2xx
    txn = link.send(request())
    ist = server_txn(link)
    for status in (180, 183, 180):
        link.respond(ist, status)
    assert [e.response.status for _, e in link.client.of(ResponseReceived)] == [100, 180, 183, 180]
    assert txn.state == S.PROCEEDING
    link.respond(ist, 200)
    link.settle()


# --- a hypothesis property over lossy exchanges ---------------------------------------------


def exchange(method: str, statuses: tuple[int, ...], drop: Callable[[Sent], bool]) -> tuple[Link, ClientTransaction]:
    """One request answered at once with ``statuses`` over a link that loses what ``drop`` says.

    The client TU ACKs every 2xx and, as RFC 3261 §9.1 asks of a UAC, CANCELs
    an INVITE still without a final response at 64*T1.
    """
    link = Link(drop=drop)
    link.client.handler = uac_acks_2xx
    link.server.handler = uas_answers(*statuses)
    txn = link.send(request(method))

    def give_up() -> None:
        if txn.state == S.PROCEEDING:
            link.client.layer.send_request(txn.make_cancel(), link.server.addr, link.now)

    if method == "INVITE":
        link.call_at(TIMEOUT, give_up)
    link.settle()
    return link, txn


def random_loss(rng: random.Random, rate: float, budget: int) -> Callable[[Sent], bool]:
    """Drop each datagram with probability ``rate``, at most ``budget`` of them."""
    lost = [0]

    def drop(sent: Sent) -> bool:
        if lost[0] < budget and rng.random() < rate:
            lost[0] += 1
            return True
        return False

    return drop


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from([("OPTIONS", (200,)), ("OPTIONS", (100, 404)), ("INVITE", (200,)),
                          ("INVITE", (180, 200)), ("INVITE", (486,)), ("INVITE", (180, 603))]),
    rng=st.randoms(use_true_random=False),
    rate=st.sampled_from([0.1, 0.3, 0.6, 0.9, 1.0]),
    budget=st.integers(0, 30),
)
def test_a_lossy_exchange_ends_in_one_final_or_one_timeout(
    case: tuple[str, tuple[int, ...]], rng: random.Random, rate: float, budget: int
) -> None:
    method, statuses = case
    link, txn = exchange(method, statuses, random_loss(rng, rate, budget))  # settle() checked the tables
    got = [e.response.status for _, e in link.client.of(ResponseReceived)
           if e.transaction is txn and e.response.status >= 200]
    timeouts = [e for _, e in link.client.of(TransactionTimedOut) if e.transaction is txn]
    final = statuses[-1]
    hypothesis.event(f"{method} {statuses}: {'timed out' if timeouts else 'answered'}")
    if timeouts:
        assert (got, len(timeouts)) == ([], 1)
    elif method == "INVITE" and 200 <= final < 300:
        # RFC 6026: each 2xx retransmission reaches the TU; always the same 2xx.
        assert got and set(got) == {final}
    else:
        assert got == [final]
    # The server TU heard the request at most once: retransmissions were absorbed.
    assert len([e for _, e in link.server.of(RequestReceived) if e.request.method == method]) <= 1
