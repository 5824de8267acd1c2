"""SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states).

Theory of operation
-------------------
:class:`TransactionLayer` is a sans-I/O core in the style of aioquic: it
never reads a clock or touches a socket.  Its inputs are

* :meth:`TransactionLayer.receive` — a parsed, validated message and where it
  came from, at time ``now``;
* :meth:`TransactionLayer.send_request` / :meth:`ServerTransaction.respond`
  — what the transaction user (TU) wants to send;
* :meth:`TransactionLayer.handle_timer` — the time has reached
  :meth:`TransactionLayer.get_timer`;
* :meth:`TransactionLayer.transport_error` — a destination is unreachable.

Its outputs are pulled: :meth:`datagrams_to_send` (bytes and destination) and
:meth:`next_event` (what the TU must hear about).

The four machines follow the figures of RFC 3261 §17 exactly; their timers
carry their RFC names (A, B, D, E, F, G, H, I, J, K) and RFC 6026's L and M.
Two deliberate additions:

* An INVITE server transaction that sent a 2xx enters ``ACCEPTED`` and
  retransmits the 2xx (T1 doubling to T2) until the TU's dialog sees the ACK
  (RFC 3261 §13.3.1.4 puts this in the UAS core; keeping it here gives one
  timer discipline).  No ACK within 64*T1 raises :class:`AckTimeout` so the
  TU can send BYE.
* The INVITE server transaction sends ``100 Trying`` at once (§17.2.1 allows
  it; a B2BUA rarely answers within 200 ms).

Matching uses the branch when it carries the magic cookie and RFC 2543 rules
otherwise (§17.2.3; RFC 4475 badbranch).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .errors import SipUsageError
from .headers import Via, parse_via
from .message import Headers, SipRequest, SipResponse, make_response
from .uri import SipUri

log = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"


class Destination(Protocol):
    """Where a message goes or came from (``cosmo.sip.transport.Address`` fits)."""

    @property
    def transport(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def reliable(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Timers:
    """The RFC 3261 timer base values (§17.1.1.1, table 4), in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    # Timer D: "at least 32 seconds" for unreliable transports (§17.1.1.2).
    d: float = 32.0

    @property
    def b(self) -> float:
        """64*T1: INVITE and non-INVITE transaction timeouts (B, F, H, J, L, M)."""
        return 64 * self.t1


class TransactionState(StrEnum):
    """The states of RFC 3261 §17 figures 5-8, plus RFC 6026 ``accepted``."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# Legal moves per machine; anything else is a bug here and is refused.
_ICT = {
    TransactionState.CALLING: {TransactionState.PROCEEDING, TransactionState.ACCEPTED,
                               TransactionState.COMPLETED, TransactionState.TERMINATED},
    TransactionState.PROCEEDING: {TransactionState.ACCEPTED, TransactionState.COMPLETED,
                                  TransactionState.TERMINATED},
    TransactionState.ACCEPTED: {TransactionState.TERMINATED},
    TransactionState.COMPLETED: {TransactionState.TERMINATED},
}
_NICT = {
    TransactionState.TRYING: {TransactionState.PROCEEDING, TransactionState.COMPLETED,
                              TransactionState.TERMINATED},
    TransactionState.PROCEEDING: {TransactionState.COMPLETED, TransactionState.TERMINATED},
    TransactionState.COMPLETED: {TransactionState.TERMINATED},
}
_IST = {
    TransactionState.PROCEEDING: {TransactionState.ACCEPTED, TransactionState.COMPLETED,
                                  TransactionState.TERMINATED},
    TransactionState.ACCEPTED: {TransactionState.TERMINATED},
    TransactionState.COMPLETED: {TransactionState.CONFIRMED, TransactionState.TERMINATED},
    TransactionState.CONFIRMED: {TransactionState.TERMINATED},
}
_NIST = {
    TransactionState.TRYING: {TransactionState.PROCEEDING, TransactionState.COMPLETED,
                              TransactionState.TERMINATED},
    TransactionState.PROCEEDING: {TransactionState.COMPLETED, TransactionState.TERMINATED},
    TransactionState.COMPLETED: {TransactionState.TERMINATED},
}


# Events delivered to the TU.
@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request. ``transaction`` is ``None`` for an ACK to a 2xx (it has none)."""

    transaction: ServerTransaction | None
    request: SipRequest
    source: Destination


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction, or a stray 2xx to an INVITE (``transaction`` None)."""

    transaction: ClientTransaction | None
    response: SipResponse
    source: Destination


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matching a pending INVITE server transaction (RFC 3261 §9.2).

    The layer has already answered the CANCEL with 200; the TU should answer
    the INVITE with 487 unless it already sent a final response.
    """

    invite: ServerTransaction
    request: SipRequest


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B or F fired, or the transport failed: the request got no final answer."""

    transaction: ClientTransaction
    reason: str


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """A 2xx to an INVITE was never acknowledged within 64*T1 (RFC 3261 §13.3.1.4)."""

    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """A transaction left the table (for bookkeeping above)."""

    transaction: Transaction


TransactionEvent = (
    RequestReceived | ResponseReceived | CancelReceived | TransactionTimedOut | AckTimeout
    | TransactionTerminated
)


class Transaction:
    """What client and server transactions share: state, timers, table key."""

    __slots__ = ("__weakref__", "_table", "_timers", "key", "layer", "request", "state", "user_data")

    # Allowed transitions, set by each kind of transaction before this __init__.
    _table: dict[TransactionState, set[TransactionState]]

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 state: TransactionState) -> None:
        self.layer = layer
        self.key = key
        self.request = request
        self.state = state
        self._timers: dict[str, int] = {}
        # Free slot for the adapter above (a future, a callback).
        self.user_data: object = None

    @property
    def method(self) -> str:
        """The method of the request that created the transaction."""
        return self.request.method

    def _set_state(self, new: TransactionState) -> None:
        old = self.state
        if new == old:
            return
        if new not in self._table.get(old, ()):
            raise SipUsageError(f"{type(self).__name__}: illegal transition {old} -> {new}")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s: %s -> %s", type(self).__name__, self.method, self.key[0], old, new)
        self.state = new
        if new == TransactionState.TERMINATED:
            self._timers.clear()
            self.layer._remove(self)

    def _start_timer(self, name: str, delay: float, now: float) -> None:
        self._timers[name] = self.layer._schedule(self, name, now + delay)

    def _stop_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    def _fire(self, name: str, now: float) -> None:
        raise NotImplementedError


class ClientTransaction(Transaction):
    """An INVITE or non-INVITE client transaction (RFC 3261 §17.1)."""

    __slots__ = ("_data", "_interval", "_invite", "dest", "last_response")

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 dest: Destination, now: float) -> None:
        self._invite = request.method == "INVITE"
        self._table = _ICT if self._invite else _NICT
        super().__init__(layer, key, request,
                         TransactionState.CALLING if self._invite else TransactionState.TRYING)
        self.dest = dest
        self._data = bytes(request)
        self.last_response: SipResponse | None = None
        timers = layer.timers
        self._interval = timers.t1
        layer._send(self._data, dest)
        if not dest.reliable:
            self._start_timer("A" if self._invite else "E", timers.t1, now)
        self._start_timer("B" if self._invite else "F", timers.b, now)

    def make_cancel(self) -> SipRequest:
        """A CANCEL for this INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From,
        To, CSeq number, top Via and Route set as the request."""
        if not self._invite:
            raise SipUsageError("only an INVITE can be cancelled")
        return _request_like(self.request, "CANCEL")

    def _receive(self, response: SipResponse, now: float) -> None:
        status = response.status
        state = self.state
        S = TransactionState
        if self._invite:
            if state in (S.CALLING, S.PROCEEDING):
                self._stop_timer("A")
                self.last_response = response
                if status < 200:
                    # §17.1.1.2: Timer B guards Calling only; a ringing INVITE waits
                    # for its final response until the TU cancels it (§9.1).
                    self._stop_timer("B")
                    self._set_state(S.PROCEEDING)
                    self._deliver(response)
                elif status < 300:
                    # RFC 6026 §8.4: stay to absorb 2xx retransmissions for 64*T1;
                    # each one goes to the TU, whose dialog re-sends the ACK.
                    self._stop_timer("B")
                    self._set_state(S.ACCEPTED)
                    self._start_timer("M", self.layer.timers.b, now)
                    self._deliver(response)
                else:
                    self._stop_timer("B")
                    self._send_ack(response)
                    self._set_state(S.COMPLETED)
                    self._deliver(response)
                    delay = 0.0 if self.dest.reliable else self.layer.timers.d
                    self._complete_after(delay, "D", now)
            elif state == S.ACCEPTED:
                if 200 <= status < 300:
                    self._deliver(response)
            elif state == S.COMPLETED and status >= 300:
                self._send_ack(response)  # §17.1.1.2: retransmitted final response
        else:
            if state in (S.TRYING, S.PROCEEDING):
                self.last_response = response
                if status < 200:
                    self._set_state(S.PROCEEDING)
                    self._deliver(response)
                else:
                    self._stop_timer("E")
                    self._stop_timer("F")
                    self._set_state(S.COMPLETED)
                    self._deliver(response)
                    delay = 0.0 if self.dest.reliable else self.layer.timers.t4
                    self._complete_after(delay, "K", now)

    def _complete_after(self, delay: float, timer: str, now: float) -> None:
        if delay <= 0:
            self._set_state(TransactionState.TERMINATED)
        else:
            self._start_timer(timer, delay, now)

    def _deliver(self, response: SipResponse) -> None:
        self.layer._events.append(ResponseReceived(self, response, self.dest))

    def _send_ack(self, response: SipResponse) -> None:
        # §17.1.1.3: the ACK for a non-2xx final response belongs to the transaction.
        ack = _request_like(self.request, "ACK")
        to = response.headers.get("To")
        if to is not None:
            ack.headers.set("To", to)
        self.layer._send(bytes(ack), self.dest)

    def _fire(self, name: str, now: float) -> None:
        S = TransactionState
        timers = self.layer.timers
        if name in ("A", "E"):
            if self.state in (S.CALLING, S.TRYING, S.PROCEEDING):
                self.layer._send(self._data, self.dest)
                if name == "A":
                    self._interval *= 2
                elif self.state == S.PROCEEDING:
                    self._interval = timers.t2  # §17.1.2.2: in Proceeding, every T2
                else:
                    self._interval = min(2 * self._interval, timers.t2)
                self._start_timer(name, self._interval, now)
        elif name in ("B", "F"):
            self.layer._events.append(TransactionTimedOut(self, "timeout"))
            self._set_state(S.TERMINATED)
        elif name in ("D", "K", "M"):
            self._set_state(S.TERMINATED)

    def _transport_failed(self) -> None:
        if self.state in (TransactionState.CALLING, TransactionState.TRYING,
                          TransactionState.PROCEEDING):
            self.layer._events.append(TransactionTimedOut(self, "transport error"))
            self._set_state(TransactionState.TERMINATED)


class ServerTransaction(Transaction):
    """An INVITE or non-INVITE server transaction (RFC 3261 §17.2)."""

    __slots__ = ("_acked", "_interval", "_invite", "_last", "_last_status", "response_dest", "source")

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 source: Destination, now: float) -> None:
        self._invite = request.method == "INVITE"
        self._table = _IST if self._invite else _NIST
        super().__init__(layer, key, request,
                         TransactionState.PROCEEDING if self._invite else TransactionState.TRYING)
        self.source = source
        self.response_dest = layer.response_destination(request.via, source)
        self._last: bytes | None = None
        self._last_status = 0
        self._interval = layer.timers.t1
        self._acked = False
        if self._invite:
            self._send(make_response(request, 100))

    @property
    def final_sent(self) -> bool:
        """Whether a final response has been sent."""
        return self._last_status >= 200

    def respond(self, response: SipResponse, now: float) -> None:
        """Send ``response`` (RFC 3261 §17.2.1/§17.2.2 and RFC 6026 §8.5).

        Provisional responses may be repeated; after a final response the
        transaction only retransmits.  Sending a second final response is a
        usage error.
        """
        S = TransactionState
        status = response.status
        if self._last_status >= 200:
            raise SipUsageError(
                f"final response {self._last_status} already sent for {self.method}; not sending {status}"
            )
        if self.state == S.TERMINATED:
            raise SipUsageError("transaction already terminated")
        self._send(response)
        timers = self.layer.timers
        reliable = self.response_dest.reliable
        if status < 200:
            if self.state == S.TRYING:
                self._set_state(S.PROCEEDING)
            return
        if self._invite:
            if status < 300:
                self._set_state(S.ACCEPTED)
                if not reliable:
                    self._start_timer("G2xx", timers.t1, now)
                self._start_timer("L", timers.b, now)
                self.layer._accepted[(self.request.call_id, self.request.cseq.seq)] = self
            else:
                self._set_state(S.COMPLETED)
                if not reliable:
                    self._start_timer("G", timers.t1, now)
                self._start_timer("H", timers.b, now)
        else:
            self._set_state(S.COMPLETED)
            if reliable:
                self._set_state(S.TERMINATED)
            else:
                self._start_timer("J", timers.b, now)

    def _send(self, response: SipResponse) -> None:
        data = bytes(response)
        self._last = data
        self._last_status = response.status
        self.layer._send(data, self.response_dest)

    def _receive_retransmission(self, request: SipRequest, now: float) -> None:
        S = TransactionState
        if request.method == "ACK":
            if self.state == S.COMPLETED:
                self._stop_timer("G")
                self._stop_timer("H")
                self._set_state(S.CONFIRMED)
                delay = 0.0 if self.response_dest.reliable else self.layer.timers.t4
                if delay <= 0:
                    self._set_state(S.TERMINATED)
                else:
                    self._start_timer("I", delay, now)
            return
        # A retransmitted request: answer with the last response (§17.2.1, §17.2.2).
        if self._last is not None and self.state in (S.PROCEEDING, S.COMPLETED, S.ACCEPTED):
            self.layer._send(self._last, self.response_dest)

    def _ack_for_2xx(self) -> None:
        # The dialog's ACK arrived: stop retransmitting the 2xx (§13.3.1.4).
        self._acked = True
        self._stop_timer("G2xx")

    def _fire(self, name: str, now: float) -> None:
        S = TransactionState
        timers = self.layer.timers
        if name in ("G", "G2xx"):
            if self._last is not None and self.state in (S.COMPLETED, S.ACCEPTED):
                self.layer._send(self._last, self.response_dest)
                self._interval = min(2 * self._interval, timers.t2)
                self._start_timer(name, self._interval, now)
        elif name == "L":
            self._timers.pop("G2xx", None)
            if not self._acked:
                self.layer._events.append(AckTimeout(self))
            self.layer._accepted.pop((self.request.call_id, self.request.cseq.seq), None)
            self._set_state(S.TERMINATED)
        elif name == "H":
            log.info("no ACK for %s response to %s (call %s)", self._last_status, self.method,
                     self.request.headers.get("Call-ID"))
            self._set_state(S.TERMINATED)
        elif name in ("I", "J"):
            self._set_state(S.TERMINATED)


def _request_like(request: SipRequest, method: str) -> SipRequest:
    """ACK (non-2xx) or CANCEL built from ``request`` (RFC 3261 §9.1, §17.1.1.3)."""
    headers = Headers()
    top_via = request.headers.get("Via")
    if top_via is not None:
        headers.add("Via", top_via)
    for name in ("Route",):
        for value in request.headers.get_all(name):
            headers.add(name, value)
    for name in ("From", "To", "Call-ID"):
        if (present := request.headers.get(name)) is not None:
            headers.add(name, present)
    headers.add("CSeq", f"{request.cseq.seq} {method}")
    headers.add("Max-Forwards", "70")
    return SipRequest(method, request.uri, headers)


def _server_key(request: SipRequest, via: Via) -> tuple[str, ...]:
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, via.sent_by.lower(), method)
    # RFC 2543 matching (§17.2.3): no usable branch.
    return (
        "2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.seq),
        via.sent_by.lower(),
        branch or "",
        method,
    )


def _client_key(branch: str, method: str) -> tuple[str, ...]:
    # §17.1.3: the branch of the top Via and the CSeq method (CANCEL shares the INVITE's branch).
    return (branch, method)


class TransactionLayer:
    """The sans-I/O transaction table: see the module's theory of operation."""

    def __init__(self, timers: Timers | None = None) -> None:
        self.timers = timers or Timers()
        self._clients: dict[tuple[str, ...], ClientTransaction] = {}
        self._servers: dict[tuple[str, ...], ServerTransaction] = {}
        self._accepted: dict[tuple[str, int], ServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction, str]] = []
        self._counter = itertools.count()
        self._outgoing: list[tuple[bytes, Destination]] = []
        self._events: deque[TransactionEvent] = deque()
        self.stray_responses = 0

    # ---- outputs -------------------------------------------------------
    def datagrams_to_send(self) -> list[tuple[bytes, Destination]]:
        """What to send now, in order; the list is handed over and cleared."""
        out = self._outgoing
        self._outgoing = []
        return out

    def next_event(self) -> TransactionEvent | None:
        """The next event for the TU, or ``None``."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or ``None``."""
        heap = self._heap
        while heap:
            deadline, token, txn, name = heap[0]
            if txn._timers.get(name) == token:
                return deadline
            heapq.heappop(heap)
        return None

    @property
    def client_count(self) -> int:
        """Client transactions alive."""
        return len(self._clients)

    @property
    def server_count(self) -> int:
        """Server transactions alive."""
        return len(self._servers)

    # ---- inputs --------------------------------------------------------
    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, token, txn, name = heapq.heappop(heap)
            if txn._timers.get(name) == token:
                del txn._timers[name]
                txn._fire(name, now)

    def send_request(self, request: SipRequest, dest: Destination, now: float) -> ClientTransaction:
        """Start a client transaction for ``request`` (not for an ACK).

        The request must already carry its top Via with a fresh branch.
        """
        if request.method == "ACK":
            raise SipUsageError("an ACK is sent with send_stateless, not in a transaction")
        top = request.headers.get("Via")
        branch = parse_via(top).branch if top is not None else None
        if not branch or not branch.startswith(MAGIC_COOKIE):
            raise SipUsageError("a request needs a top Via with an RFC 3261 branch")
        key = _client_key(branch, request.method)
        if key in self._clients:
            raise SipUsageError(f"branch {branch} {request.method} already in use")
        txn = ClientTransaction(self, key, request, dest, now)
        if txn.state != TransactionState.TERMINATED:
            self._clients[key] = txn
        if request.method == "CANCEL":
            # §9.1: with no final response 64*T1 after the CANCEL, the INVITE is
            # given up (Timer B, reported as a timeout).
            invite = self._clients.get(_client_key(branch, "INVITE"))
            if invite is not None and invite.state == TransactionState.PROCEEDING:
                invite._start_timer("B", self.timers.b, now)
        return txn

    def send_stateless(self, message: SipRequest | SipResponse, dest: Destination) -> None:
        """Send a message outside any transaction (an ACK for a 2xx; a 2xx retransmission)."""
        self._send(bytes(message), dest)

    def receive(self, message: SipRequest | SipResponse, source: Destination, now: float) -> None:
        """Feed a parsed and validated message that arrived from ``source``."""
        if isinstance(message, SipRequest):
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, source, now)

    def transport_error(self, dest: Destination) -> None:
        """Fail the client transactions waiting on ``dest`` (RFC 3261 §17.1.4)."""
        for txn in [t for t in self._clients.values() if _same_place(t.dest, dest)]:
            txn._transport_failed()

    def response_destination(self, via: Via, source: Destination) -> Destination:
        """Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4)."""
        if source.reliable:
            return source
        if via.param("rport") is not None:
            return source
        port = via.port or 5060
        if port == source.port:
            return source
        return _Place(source.transport, source.host, port)

    # ---- internals -----------------------------------------------------
    def _receive_request(self, request: SipRequest, source: Destination, now: float) -> None:
        via = request.via
        via = self._stamp_via(request, via, source)
        key = _server_key(request, via)
        txn = self._servers.get(key)
        method = request.method
        # An ACK that matches an accepted INVITE acknowledges its 2xx: it is the
        # dialog's ACK (RFC 2543 peers; UAs that reuse the INVITE branch).
        if txn is not None and not (method == "ACK" and txn.state == TransactionState.ACCEPTED):
            txn._receive_retransmission(request, now)
            return
        if method == "ACK":
            accepted = self._accepted.get((request.call_id, request.cseq.seq))
            if accepted is not None:
                accepted._ack_for_2xx()
            self._events.append(RequestReceived(None, request, source))
            return
        txn = ServerTransaction(self, key, request, source, now)
        self._servers[key] = txn
        if method == "CANCEL":
            invite_key = key[:-1] + ("INVITE",)
            invite = self._servers.get(invite_key)
            if invite is None:
                txn.respond(make_response(request, 481), now)
                return
            # §9.2: a CANCEL that matches a transaction is answered 200 even when
            # the INVITE already got its final response; it then changes nothing.
            txn.respond(make_response(request, 200), now)
            if not invite.final_sent:
                self._events.append(CancelReceived(invite, request))
            return
        self._events.append(RequestReceived(txn, request, source))

    def _stamp_via(self, request: SipRequest, via: Via, source: Destination) -> Via:
        # §18.2.1 "received" and RFC 3581 "rport" on the top Via.
        rport = via.param("rport")
        if via.host == source.host and rport != "":
            return via
        stamped = via.with_param("received", source.host)
        if rport is not None:
            stamped = stamped.with_param("rport", str(source.port))
        headers = request.headers
        headers.remove_first("Via")
        headers.prepend("Via", str(stamped))
        return stamped

    def _receive_response(self, response: SipResponse, source: Destination, now: float) -> None:
        vias = response.headers.get_all("Via")
        if len(vias) != 1:
            # §8.1.3.3: a UAC discards a response with more than one Via (RFC 4475 bcast).
            self.stray_responses += 1
            return
        via = parse_via(vias[0])
        branch = via.branch
        cseq = response.cseq
        txn = self._clients.get(_client_key(branch or "", cseq.method))
        if txn is not None:
            txn._receive(response, now)
            return
        if cseq.method == "INVITE" and 200 <= response.status < 300:
            self._events.append(ResponseReceived(None, response, source))
            return
        self.stray_responses += 1

    def _schedule(self, txn: Transaction, name: str, deadline: float) -> int:
        token = next(self._counter)
        heapq.heappush(self._heap, (deadline, token, txn, name))
        return token

    def _send(self, data: bytes, dest: Destination) -> None:
        self._outgoing.append((data, dest))

    def _remove(self, txn: Transaction) -> None:
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
        elif self._servers.get(txn.key) is txn:
            del self._servers[txn.key]
            if txn.method == "INVITE":
                self._accepted.pop((txn.request.call_id, txn.request.cseq.seq), None)
        self._events.append(TransactionTerminated(txn))


@dataclass(frozen=True, slots=True)
class _Place:
    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport.lower() != "udp"


def _same_place(a: Destination, b: Destination) -> bool:
    return a.transport == b.transport and a.host == b.host and a.port == b.port


def request_destination(uri: SipUri, default_transport: str = "udp") -> tuple[str, str, int]:
    """(transport, host, port) for sending to ``uri`` without DNS (RFC 3263 §4 simplified).

    Cosmo's peers are configured by IP or resolved by the caller; a ``maddr``
    parameter wins over the host, ``transport`` picks the transport, and the
    port defaults to 5060 (5061 for sips/TLS).
    """
    transport = uri.transport or ("tls" if uri.scheme == "sips" else default_transport)
    host = uri.param("maddr") or uri.host
    if host.startswith("["):
        host = host[1:-1]
    port = uri.port or (5061 if transport == "tls" else 5060)
    return transport, host, port
