"""The asyncio adapter around the sans-I/O SIP core.

:class:`SipStack` is the only place where the parser, the transaction layer
and the transports meet the event loop.  Like aioquic's protocol adapter it
feeds the core, drains its outputs (bytes to send, events) and re-arms a
single ``loop.call_at`` for the core's next timer.

Bad input never escapes: a message that cannot be parsed is dropped (and
counted) or, when enough of a request survived, answered statelessly with the
status its error carries (400, 505, 513).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import SipParseError, SipUsageError
from .headers import Via, parse_via_sent_by
from .message import (
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
    response_from_headers,
    validate_request,
    validate_response,
)
from .transaction import (
    AckTimeout,
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Timers,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
)
from .transport import Address, TransportLayer

log = logging.getLogger(__name__)
trace = logging.getLogger("cosmo.sip.trace")


class SipApplication(Protocol):
    """What the layer above the stack (the user-agent core) receives."""

    def on_request(self, txn: ServerTransaction | None, request: SipRequest, source: Address) -> None:
        """A new request; ``txn`` is ``None`` for an ACK to a 2xx."""

    def on_cancel(self, invite: ServerTransaction, request: SipRequest) -> None:
        """A CANCEL for a pending INVITE (already answered 200 by the stack)."""

    def on_stray_2xx(self, response: SipResponse, source: Address) -> None:
        """A retransmitted 2xx to an INVITE whose transaction is gone (re-send the ACK)."""

    def on_ack_timeout(self, txn: ServerTransaction) -> None:
        """A 2xx was never acknowledged: the dialog should be ended with BYE."""


@dataclass(slots=True)
class StackStats:
    """Counters of what the stack received and dropped."""

    messages_in: int = 0
    requests_in: int = 0
    responses_in: int = 0
    parse_errors: int = 0
    rejected_requests: int = 0
    dropped_responses: int = 0
    handler_errors: int = 0
    by_status_out: dict[int, int] = field(default_factory=dict)


class ClientRequest:
    """A request in flight: provisional responses go to ``on_provisional``; await
    :meth:`final` for the final response (a timeout or transport error yields a
    locally generated 408 or 503, RFC 3261 §8.1.3.1)."""

    __slots__ = ("_final", "dest", "on_provisional", "request", "responses", "transaction")

    def __init__(self, request: SipRequest, dest: Address,
                 on_provisional: Callable[[SipResponse], None] | None) -> None:
        self.request = request
        self.dest = dest
        self.transaction: ClientTransaction | None = None
        self._final: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self.on_provisional = on_provisional
        # Every 2xx received (a forked INVITE may bring several).
        self.responses: list[SipResponse] = []

    async def final(self) -> SipResponse:
        """The final response (the first one, for a forked INVITE)."""
        return await asyncio.shield(self._final)

    @property
    def done(self) -> bool:
        """Whether a final response has arrived."""
        return self._final.done()

    def _on_response(self, response: SipResponse) -> None:
        if response.status < 200:
            if self.on_provisional is not None:
                self.on_provisional(response)
            return
        if 200 <= response.status < 300:
            self.responses.append(response)
        if not self._final.done():
            self._final.set_result(response)
        elif response.status < 300 and self.on_provisional is not None:
            # A further 2xx from another fork, or a retransmission.
            self.on_provisional(response)

    def _on_failure(self, reason: str) -> None:
        if not self._final.done():
            status = 408 if reason == "timeout" else 503
            self._final.set_result(make_response(self.request, status, f"Local {reason}"))


class SipStack:
    """SIP transport + transaction layers on one event loop.

    Call :meth:`listen` for each listener, set :attr:`application`, then send
    requests with :meth:`send_request` and responses with :meth:`respond`.
    """

    def __init__(
        self,
        *,
        timers: Timers | None = None,
        user_agent: str = "Cosmo",
        max_message_size: int = 65535,
        tcp_idle_timeout: float = 600.0,
        advertised_host: str | None = None,
    ) -> None:
        self.transactions = TransactionLayer(timers)
        self.transports = TransportLayer(
            self, max_message_size=max_message_size, tcp_idle_timeout=tcp_idle_timeout
        )
        self.user_agent = user_agent
        self.advertised_host = advertised_host
        self.application: SipApplication | None = None
        self.stats = StackStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    # ---- lifecycle -------------------------------------------------------
    async def listen(self, transport: str, host: str, port: int, ssl_context: object = None) -> Address:
        """Open a listener; returns its bound address (port 0 gives a free port)."""
        self._loop = asyncio.get_running_loop()
        return await self.transports.listen(transport, host, port, ssl_context)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Close transports and stop the timer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.transports.close()

    # ---- identifiers and local addresses -------------------------------
    @staticmethod
    def new_branch() -> str:
        """A fresh RFC 3261 branch (magic cookie + 96 random bits)."""
        return "z9hG4bK" + secrets.token_hex(12)

    @staticmethod
    def new_tag() -> str:
        """A fresh From/To tag."""
        return secrets.token_hex(6)

    @staticmethod
    def new_call_id() -> str:
        """A fresh Call-ID."""
        return secrets.token_hex(16)

    def local_address(self, transport: str) -> Address:
        """The listener used to send over ``transport`` (for Via and Contact)."""
        local = self.transports.local_address(transport)
        if local is None:
            raise SipUsageError(f"no {transport} listener")
        return local

    def sent_by(self, transport: str) -> str:
        """``host:port`` to put in Via and Contact for ``transport``."""
        local = self.local_address(transport)
        host = self.advertised_host or local.host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{local.port}"

    def make_via(self, transport: str, branch: str | None = None) -> str:
        """A top Via for a request leaving over ``transport`` (with ``rport``, RFC 3581)."""
        via = Via(transport.upper(), *self._split(self.sent_by(transport)),
                  params=(("branch", branch or self.new_branch()), ("rport", None)))
        return str(via)

    @staticmethod
    def _split(sent_by: str) -> tuple[str, int]:
        host, _, port = sent_by.rpartition(":")
        return host, int(port)

    # ---- sending ---------------------------------------------------------
    def send_request(self, request: SipRequest, dest: Address,
                     on_provisional: Callable[[SipResponse], None] | None = None) -> ClientRequest:
        """Send ``request`` in a new client transaction.

        Adds a top Via (fresh branch) when the request has none, and the
        User-Agent and Max-Forwards headers when missing.
        """
        if request.headers.get("Via") is None:
            request.headers.prepend("Via", self.make_via(dest.transport))
        self._fill_common(request)
        handle = ClientRequest(request, dest, on_provisional)
        txn = self.transactions.send_request(request, dest, self._now())
        txn.user_data = handle
        handle.transaction = txn
        self._after_core()
        return handle

    def send_stateless(self, message: SipRequest | SipResponse, dest: Address) -> None:
        """Send outside a transaction (the ACK for a 2xx)."""
        if isinstance(message, SipRequest):
            if message.headers.get("Via") is None:
                message.headers.prepend("Via", self.make_via(dest.transport))
            self._fill_common(message)
        self.transactions.send_stateless(message, dest)
        self._after_core()

    def respond(self, txn: ServerTransaction, response: SipResponse) -> None:
        """Send ``response`` through server transaction ``txn``."""
        if response.headers.get("Server") is None and response.status >= 200:
            response.headers.add("Server", self.user_agent)
        txn.respond(response, self._now())
        counts = self.stats.by_status_out
        counts[response.status] = counts.get(response.status, 0) + 1
        self._after_core()

    def reply(self, txn: ServerTransaction, status: int, reason: str | None = None, *,
              to_tag: str | None = None, extra: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> None:
        """Answer the request of ``txn`` with ``status`` (a convenience for :meth:`respond`)."""
        self.respond(txn, make_response(txn.request, status, reason, to_tag=to_tag, extra=extra, body=body))

    def _fill_common(self, request: SipRequest) -> None:
        headers = request.headers
        if headers.get("Max-Forwards") is None:
            headers.add("Max-Forwards", "70")
        if headers.get("User-Agent") is None:
            headers.add("User-Agent", self.user_agent)

    # ---- TransportUser -----------------------------------------------------
    def message_received(self, data: bytes, source: Address, local: Address) -> None:
        """Parse, validate and feed one message from the transports."""
        self.stats.messages_in += 1
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("recv %d bytes from %s:\n%s", len(data), source, data.decode("utf-8", "replace"))
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.stats.parse_errors += 1
            log.info("unparsable message from %s: %s", source, exc)
            if not data.lstrip(b"\r\n").startswith(b"SIP/"):  # never answer a response
                self._reject_stateless(exc, source, exc.headers if isinstance(exc.headers, Headers) else None)
            return
        try:
            if isinstance(message, SipRequest):
                self.stats.requests_in += 1
                validate_request(message)
            else:
                self.stats.responses_in += 1
                validate_response(message)
        except SipParseError as exc:
            if isinstance(message, SipRequest):
                log.info("rejecting %s from %s: %s", message.method, source, exc)
                if message.method != "ACK":
                    self._reject_stateless(exc, source, message.headers)
            else:
                self.stats.dropped_responses += 1
                log.info("dropping invalid response from %s: %s", source, exc)
            return
        try:
            self.transactions.receive(message, source, self._now())
        except SipParseError as exc:  # a typed view failed deep inside; treat like above
            self.stats.parse_errors += 1
            log.info("message from %s failed processing: %s", source, exc)
        self._after_core()

    def transport_error(self, dest: Address, reason: str) -> None:
        """A destination could not be reached: fail its client transactions."""
        log.info("transport error towards %s: %s", dest, reason)
        self.transactions.transport_error(dest)
        self._after_core()

    def _reject_stateless(self, exc: SipParseError, source: Address, headers: Headers | None) -> None:
        # Answer only when the request's routing headers survived; otherwise drop (UDP)
        # and let a stream transport close on its own framing errors.
        if headers is None or exc.status < 400:
            return
        # The Via alone says where the answer goes; RFC 4475 insuf wants a 400
        # even for a request that lacks From, To and Call-ID.
        vias = headers.get_all("Via")
        if not vias:
            return
        try:
            via = parse_via_sent_by(vias[0])
        except SipParseError:
            return
        if via.host != source.host or via.param("rport") is not None:
            headers = headers.copy()
            headers.remove_first("Via")
            stamped = via.with_param("received", source.host)
            if via.param("rport") is not None:
                stamped = stamped.with_param("rport", str(source.port))
            headers.prepend("Via", str(stamped))
            via = stamped
        reason = f"{exc.reason} ({exc.detail})"[:200].replace("\r", " ").replace("\n", " ")
        response = response_from_headers(headers, exc.status, reason)
        self.stats.rejected_requests += 1
        dest = self.transactions.response_destination(via, source)
        self.transports.send(bytes(response), dest)

    # ---- core plumbing ----------------------------------------------------
    def _now(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def _after_core(self) -> None:
        core = self.transactions
        send = self.transports.send
        for data, dest in core.datagrams_to_send():
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug("send %d bytes to %s:\n%s", len(data), dest, data.decode("utf-8", "replace"))
            send(data, dest)
        while (event := core.next_event()) is not None:
            try:
                self._dispatch(event)
            except Exception:  # the application's fault; the stack carries on
                self.stats.handler_errors += 1
                log.exception("error handling %s", type(event).__name__)
        # Handlers may have sent more.
        for data, dest in core.datagrams_to_send():
            send(data, dest)
        self._arm_timer()

    def _dispatch(self, event: object) -> None:
        app = self.application
        if isinstance(event, ResponseReceived):
            txn = event.transaction
            if txn is None:
                if app is not None:
                    app.on_stray_2xx(event.response, event.source)  # type: ignore[arg-type]
            elif isinstance(txn.user_data, ClientRequest):
                txn.user_data._on_response(event.response)
        elif isinstance(event, RequestReceived):
            if app is None:
                if event.transaction is not None:
                    self.reply(event.transaction, 503)
            else:
                app.on_request(event.transaction, event.request, event.source)  # type: ignore[arg-type]
        elif isinstance(event, TransactionTimedOut):
            if isinstance(event.transaction.user_data, ClientRequest):
                event.transaction.user_data._on_failure(event.reason)
        elif isinstance(event, CancelReceived):
            if app is not None:
                app.on_cancel(event.invite, event.request)
        elif isinstance(event, AckTimeout):
            if app is not None:
                app.on_ack_timeout(event.transaction)
        elif isinstance(event, TransactionTerminated):
            pass

    def _arm_timer(self) -> None:
        when = self.transactions.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and not self._closed:
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.transactions.handle_timer(self._now())
        self._after_core()


__all__ = ["ClientRequest", "SipApplication", "SipStack", "StackStats"]
