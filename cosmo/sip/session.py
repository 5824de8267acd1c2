"""INVITE sessions: the dialog usage of a call leg, as UAS or UAC (RFC 3261 §13-15).

Theory of operation
-------------------
An :class:`InviteSession` is one leg of a call as seen by Cosmo.  It is
driven by the user-agent core (:mod:`cosmo.sip.useragent`), which routes
in-dialog requests to it, and by the call layer, which calls its verbs:

* UAS: :meth:`ring`, :meth:`answer`, :meth:`reject`; the dialog is confirmed
  when the ACK arrives (:meth:`wait_confirmed`).
* UAC: :meth:`start` sends the INVITE, retries once with credentials on
  401/407, creates early dialogs on 1xx with a To tag, acknowledges every 2xx
  (a fork's extra 2xx is acknowledged and ended with BYE, §13.2.2.4);
  :meth:`cancel` follows §9.1 (CANCEL only after a provisional response).
* Both: :meth:`bye`, :meth:`reinvite`; a BYE, a CANCEL or a missing ACK from
  the peer ends the session.  Every end is recorded once in ``end_reason``
  and ``ended_by``, and the ``terminated`` event is set.

All requests of a session go to ``peer``: the address the INVITE came from
(UAS) or went to (UAC).  That is symmetric signalling: it reuses the TCP/TLS
connection and crosses NAT the way phones expect (RFC 5626 §5.3 flows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from .auth import DigestClient, choose_challenge
from .dialog import Dialog, DialogState
from .errors import SipError, SipUsageError
from .headers import NameAddr
from .message import Headers, SipRequest, SipResponse, make_response
from .stack import ClientRequest
from .transaction import ServerTransaction
from .transport import Address
from .uri import SipUri

if TYPE_CHECKING:
    from .useragent import UserAgent

log = logging.getLogger(__name__)


class SessionState(StrEnum):
    """Where a leg is: the invite-session states of pjsip/RFC 3261 §13 in trade words."""

    CALLING = "calling"  # UAC: INVITE sent
    INCOMING = "incoming"  # UAS: INVITE received, nothing sent but 100
    EARLY = "early"  # a 1xx with a To tag went out / came in
    CONNECTING = "connecting"  # UAS: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  # in a call
    TERMINATED = "terminated"


_MOVES = {
    SessionState.CALLING: {SessionState.EARLY, SessionState.CONFIRMED, SessionState.TERMINATED},
    SessionState.INCOMING: {SessionState.EARLY, SessionState.CONNECTING, SessionState.TERMINATED},
    SessionState.EARLY: {SessionState.CONNECTING, SessionState.CONFIRMED, SessionState.TERMINATED},
    SessionState.CONNECTING: {SessionState.CONFIRMED, SessionState.TERMINATED},
    SessionState.CONFIRMED: {SessionState.TERMINATED},
    SessionState.TERMINATED: set(),
}


class SessionError(SipError):
    """A session verb was used in a state that does not allow it."""


class InviteSession:
    """One INVITE-created dialog usage; see the module's theory of operation."""

    def __init__(self, ua: UserAgent, *, is_uac: bool, peer: Address) -> None:
        self.ua = ua
        self.is_uac = is_uac
        self.peer = peer
        self.state = SessionState.CALLING if is_uac else SessionState.INCOMING
        self.dialog: Dialog | None = None
        self.invite: SipRequest | None = None
        self.local_sdp: bytes = b""
        self.remote_sdp: bytes = b""
        self.final_status: int | None = None
        self.end_reason: str | None = None
        self.ended_by: str | None = None
        self.terminated = asyncio.Event()
        self.confirmed = asyncio.Event()
        self.data: dict[str, object] = {}  # free for the call layer
        self.on_state: list[Callable[[InviteSession], None]] = []
        # Asked for the SDP answer to a re-INVITE offer; None keeps the current one.
        self.on_reinvite: Callable[[InviteSession, bytes], bytes | None] | None = None
        # In-dialog requests other than BYE/ACK/re-INVITE (INFO, NOTIFY ...): return a status.
        self.on_request: Callable[[InviteSession, SipRequest], int] | None = None
        # UAS
        self._txn: ServerTransaction | None = None
        self._local_tag = ua.stack.new_tag()
        self._ack_wait: asyncio.TimerHandle | None = None
        # UAC
        self._client: ClientRequest | None = None
        self._ack: SipRequest | None = None
        self._cancel_requested = False
        self._provisional = asyncio.Event()
        self._credentials: DigestClient | None = None

    def __repr__(self) -> str:
        call_id = self.invite.call_id if self.invite else "?"
        return f"<InviteSession {'UAC' if self.is_uac else 'UAS'} {call_id} {self.state}>"

    @property
    def call_id(self) -> str:
        """The Call-ID of this leg."""
        if self.invite is None:
            raise SipUsageError("session has no INVITE yet")
        return self.invite.call_id

    def _set_state(self, new: SessionState) -> None:
        old = self.state
        if new == old:
            return
        if new not in _MOVES[old]:
            raise SessionError(f"{self!r}: illegal transition {old} -> {new}")
        log.debug("%s: %s -> %s", self.invite.call_id if self.invite else "?", old, new)
        self.state = new
        if new == SessionState.CONFIRMED:
            self.confirmed.set()
        for callback in list(self.on_state):
            try:
                callback(self)
            except Exception:
                log.exception("session state callback failed")

    def _end(self, reason: str, by: str) -> None:
        if self.state == SessionState.TERMINATED:
            return
        self.end_reason = reason
        self.ended_by = by
        if self._ack_wait is not None:
            self._ack_wait.cancel()
        if self.dialog is not None:
            self.dialog.set_state(DialogState.TERMINATED)
        self._set_state(SessionState.TERMINATED)
        self.ua._forget(self)
        self.terminated.set()

    # ==== UAS ===============================================================
    @classmethod
    def incoming(cls, ua: UserAgent, txn: ServerTransaction, request: SipRequest, source: Address) -> InviteSession:
        """A session for an INVITE received out of any dialog."""
        session = cls(ua, is_uac=False, peer=source)
        session._txn = txn
        session.invite = request
        session.remote_sdp = request.body
        return session

    def _ensure_uas_dialog(self) -> Dialog:
        if self.dialog is None:
            assert self.invite is not None
            contact = self.ua.contact_for(self.peer.transport)
            self.dialog = Dialog.from_uas(self.invite, self._local_tag, contact)
            self.ua._register_dialog(self)
        return self.dialog

    def ring(self, status: int = 180, sdp: bytes | None = None) -> None:
        """Send a provisional response (180 Ringing, or 183 with early media SDP)."""
        txn = self._uas_txn()
        dialog = self._ensure_uas_dialog()
        body = sdp or b""
        extra: tuple[tuple[str, str], ...] = (("Contact", dialog.local_contact),)
        if body:
            extra += (("Content-Type", "application/sdp"),)
            self.local_sdp = body
        self.ua.stack.respond(txn, make_response(txn.request, status, to_tag=self._local_tag, extra=extra, body=body))
        if self.state == SessionState.INCOMING:
            self._set_state(SessionState.EARLY)

    def answer(self, sdp: bytes) -> None:
        """Send 200 OK with ``sdp``; the session is confirmed when the ACK arrives."""
        txn = self._uas_txn()
        dialog = self._ensure_uas_dialog()
        self.local_sdp = sdp
        extra = (
            ("Contact", dialog.local_contact),
            ("Allow", self.ua.allow_header),
            ("Supported", self.ua.supported_header),
            ("Content-Type", "application/sdp"),
        )
        self.ua.stack.respond(txn, make_response(txn.request, 200, to_tag=self._local_tag, extra=extra, body=sdp))
        self.final_status = 200
        self._set_state(SessionState.CONNECTING)

    def reject(self, status: int, reason: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer the INVITE with a final error response and end the session."""
        txn = self._uas_txn()
        self.ua.stack.respond(txn, make_response(txn.request, status, reason, to_tag=self._local_tag, extra=extra))
        self.final_status = status
        self._end(f"rejected {status}", "local")

    def _uas_txn(self) -> ServerTransaction:
        if self.is_uac or self._txn is None:
            raise SessionError("not an incoming session")
        if self._txn.final_sent:
            raise SessionError(f"final response already sent ({self.final_status})")
        return self._txn

    def _on_ack(self, request: SipRequest) -> None:
        if request.body:
            self.remote_sdp = request.body  # offer in 200, answer in ACK (RFC 3264 §2)
        if self.state == SessionState.CONNECTING:
            self._set_state(SessionState.CONFIRMED)

    def _on_cancel(self) -> None:
        txn = self._txn
        if txn is not None and not txn.final_sent:
            self.ua.stack.respond(txn, make_response(txn.request, 487, to_tag=self._local_tag))
            self.final_status = 487
            self._end("cancelled", "remote")

    def _on_ack_timeout(self) -> None:
        log.info("%s: no ACK for 200 OK; ending with BYE", self.call_id)
        self._send_bye_nowait("ack-timeout")

    async def wait_confirmed(self, timeout: float) -> bool:
        """Wait until the call is confirmed (ACK received / sent); False on timeout or end."""
        waiters = {asyncio.ensure_future(self.confirmed.wait()), asyncio.ensure_future(self.terminated.wait())}
        _done, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return self.state == SessionState.CONFIRMED

    # ==== UAC ===============================================================
    @classmethod
    def outgoing(
        cls,
        ua: UserAgent,
        *,
        request_uri: SipUri,
        peer: Address,
        from_: NameAddr,
        to: NameAddr,
        sdp: bytes,
        credentials: DigestClient | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        call_id: str | None = None,
    ) -> InviteSession:
        """A session that will send an INVITE to ``request_uri`` via ``peer``."""
        session = cls(ua, is_uac=True, peer=peer)
        headers = Headers()
        headers.add("From", str(from_.with_tag(session._local_tag)))
        headers.add("To", str(to))
        headers.add("Call-ID", call_id or ua.stack.new_call_id())
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", ua.contact_for(peer.transport))
        headers.add("Allow", ua.allow_header)
        headers.add("Supported", ua.supported_header)
        for name, value in extra:
            headers.add(name, value)
        if sdp:
            headers.add("Content-Type", "application/sdp")
        session.invite = SipRequest("INVITE", request_uri, headers, sdp)
        session.local_sdp = sdp
        session._credentials = credentials
        return session

    def set_offer(self, sdp: bytes) -> None:
        """Put the SDP offer into an outgoing INVITE that has not been sent yet."""
        if not self.is_uac or self.invite is None or self._client is not None:
            raise SessionError("set_offer() is for a new outgoing session")
        self.invite.body = sdp
        self.local_sdp = sdp
        if sdp:
            self.invite.headers.set("Content-Type", "application/sdp")
        else:
            self.invite.headers.remove("Content-Type")

    async def start(self) -> SipResponse:
        """Send the INVITE and return its final response (after one auth retry)."""
        if not self.is_uac or self.invite is None or self._client is not None:
            raise SessionError("start() is for a new outgoing session")
        self.ua._register_pending(self)
        response = await self._send_invite()
        if response.status in (401, 407) and self._credentials is not None and not self._cancel_requested:
            header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            challenges = response.headers.get_all(header)
            if challenges:
                invite = self.invite
                cseq = invite.cseq.seq + 1
                invite.headers.set("CSeq", f"{cseq} INVITE")
                invite.headers.remove_first("Via")
                auth_name = "Authorization" if response.status == 401 else "Proxy-Authorization"
                challenge = choose_challenge(challenges)
                invite.headers.set(
                    auth_name,
                    self._credentials.authorize(challenge, "INVITE", str(invite.uri), body=invite.body),
                )
                response = await self._send_invite()
        self.final_status = response.status
        if response.status >= 300:
            reason = "cancelled" if self._cancel_requested and response.status == 487 else f"rejected {response.status}"
            self._end(reason, "remote" if not self._cancel_requested else "local")
        return response

    async def _send_invite(self) -> SipResponse:
        assert self.invite is not None
        self._client = self.ua.stack.send_request(self.invite, self.peer, on_provisional=self._on_uac_response)
        response = await self._client.final()
        if 200 <= response.status < 300:
            self._on_uac_2xx(response)
        return response

    def _on_uac_response(self, response: SipResponse) -> None:
        if response.status < 200:
            self._provisional.set()
            if response.status > 100 and response.to.tag and self.state == SessionState.CALLING:
                if response.body:
                    self.remote_sdp = response.body
                assert self.invite is not None
                self.dialog = Dialog.from_uac(self.invite, response)
                self._set_state(SessionState.EARLY)
            return
        if 200 <= response.status < 300:
            self._on_uac_2xx(response)

    def _on_uac_2xx(self, response: SipResponse) -> None:
        assert self.invite is not None
        tag = response.to.tag or ""
        if self.dialog is not None and self.dialog.remote_tag == tag and self.state == SessionState.CONFIRMED:
            self._resend_ack()  # a retransmitted 2xx (§13.2.2.4)
            return
        if self.state in (SessionState.CONFIRMED, SessionState.TERMINATED) or (
            self.dialog is not None and self.dialog.remote_tag != tag and self.dialog.state == DialogState.CONFIRMED
        ):
            # A second fork answered: acknowledge and hang it up (§13.2.2.4).
            self.ua.ack_and_bye(self.invite, response, self.peer)
            return
        if self.dialog is None or self.dialog.remote_tag != tag:
            self.dialog = Dialog.from_uac(self.invite, response)
        else:
            self.dialog.refresh_target(response)
            self.dialog.route_set = list(reversed(response.headers.get_all("Record-Route")))
        self.dialog.set_state(DialogState.CONFIRMED)
        if response.body:
            self.remote_sdp = response.body
        self.ua._register_dialog(self)
        self._ack = self.dialog.create_request("ACK", cseq=self.invite.cseq.seq)
        self._resend_ack()
        self._set_state(SessionState.CONFIRMED)
        if self._cancel_requested:
            # The 2xx crossed our CANCEL: the call exists, so end it (§9.1).
            self._send_bye_nowait("cancelled")

    def _resend_ack(self) -> None:
        if self._ack is not None:
            ack = SipRequest(self._ack.method, self._ack.uri, self._ack.headers.copy(), self._ack.body)
            ack.headers.remove("Via")
            self.ua.stack.send_stateless(ack, self.peer)

    def cancel(self) -> None:
        """Cancel the outgoing INVITE (RFC 3261 §9.1): now if a provisional came, else when one does."""
        if not self.is_uac or self.state not in (SessionState.CALLING, SessionState.EARLY):
            return
        if self._cancel_requested:
            return
        self._cancel_requested = True
        asyncio.get_running_loop().create_task(self._cancel_when_provisional(), name=f"cancel-{self.call_id}")

    async def _cancel_when_provisional(self) -> None:
        try:
            await asyncio.wait_for(self._provisional.wait(), timeout=self.ua.stack.transactions.timers.b)
        except TimeoutError:
            return  # Timer B ends the INVITE; nothing to cancel
        client = self._client
        if client is None or client.done or client.transaction is None:
            return
        cancel = client.transaction.make_cancel()
        handle = self.ua.stack.send_request(cancel, self.peer)
        await handle.final()

    # ==== both ==============================================================
    async def bye(self, reason: str = "hangup") -> None:
        """Hang up: BYE in a confirmed dialog, CANCEL or reject before that."""
        if self.state == SessionState.TERMINATED:
            return
        if self.is_uac and self.state in (SessionState.CALLING, SessionState.EARLY):
            self.cancel()
            await self.terminated.wait()
            return
        if not self.is_uac and self.state in (SessionState.INCOMING, SessionState.EARLY):
            self.reject(480 if reason == "hangup" else 486)
            return
        await self._send_bye(reason)

    def _send_bye_nowait(self, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._send_bye(reason), name=f"bye-{self.call_id}")

    async def _send_bye(self, reason: str) -> None:
        if self.dialog is None or self.state == SessionState.TERMINATED:
            return
        request = self.dialog.create_request("BYE")
        self._end(reason, "local")
        handle = self.ua.stack.send_request(request, self._in_dialog_peer())
        response = await handle.final()
        if response.status >= 300:
            log.info("%s: BYE answered %s", self.call_id, response.status)

    async def reinvite(self, sdp: bytes) -> SipResponse:
        """Send a re-INVITE with a new offer (hold, resume, codec change)."""
        if self.dialog is None or self.state != SessionState.CONFIRMED:
            raise SessionError("re-INVITE needs a confirmed dialog")
        request = self.dialog.create_request("INVITE", body=sdp)
        handle = self.ua.stack.send_request(request, self._in_dialog_peer())
        response = await handle.final()
        if 200 <= response.status < 300:
            self.local_sdp = sdp
            if response.body:
                self.remote_sdp = response.body
            self.dialog.refresh_target(response)
            ack = self.dialog.create_request("ACK", cseq=request.cseq.seq)
            self.ua.stack.send_stateless(ack, self._in_dialog_peer())
        return response

    async def request(self, method: str, body: bytes = b"", content_type: str | None = None,
                      extra: tuple[tuple[str, str], ...] = ()) -> SipResponse:
        """Send another in-dialog request (INFO, NOTIFY, REFER, OPTIONS)."""
        if self.dialog is None or self.state == SessionState.TERMINATED:
            raise SessionError("no dialog")
        request = self.dialog.create_request(method, body=body, content_type=content_type, extra=extra)
        return await self.ua.stack.send_request(request, self._in_dialog_peer()).final()

    def _in_dialog_peer(self) -> Address:
        # Symmetric signalling to the peer we talk to; a Record-Route'd proxy is
        # the one exception: its first route is the next hop.
        if self.dialog is not None and self.dialog.route_set:
            return self.ua.resolve(self.dialog.next_hop(), self.peer.transport)
        return self.peer

    def _on_in_dialog_request(self, txn: ServerTransaction | None, request: SipRequest) -> None:
        dialog = self.dialog
        assert dialog is not None
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        assert txn is not None
        if not dialog.receive_request(request):
            self.ua.stack.reply(txn, 500, "CSeq Out Of Order")
            return
        if method == "BYE":
            self.ua.stack.reply(txn, 200)
            if not self.is_uac and self._txn is not None and not self._txn.final_sent:
                # BYE before our final response: the INVITE gets 487 (§15.1.2).
                self.ua.stack.respond(self._txn, make_response(self._txn.request, 487, to_tag=self._local_tag))
            self._end("remote-bye", "remote")
        elif method == "INVITE":
            self._on_reinvite(txn, request)
        elif method == "UPDATE" and not request.body:
            self.ua.stack.reply(txn, 200, extra=(("Contact", dialog.local_contact),))
        else:
            status = 200
            if self.on_request is not None:
                status = self.on_request(self, request)
            elif method not in ("INFO", "OPTIONS", "NOTIFY", "UPDATE"):
                status = 501
            self.ua.stack.reply(txn, status)

    def _on_reinvite(self, txn: ServerTransaction, request: SipRequest) -> None:
        dialog = self.dialog
        assert dialog is not None
        if self.state != SessionState.CONFIRMED:
            self.ua.stack.reply(txn, 491)  # §14.2: an INVITE still pending
            return
        answer = self.local_sdp
        if request.body:
            self.remote_sdp = request.body
            if self.on_reinvite is not None:
                new = self.on_reinvite(self, request.body)
                if new is not None:
                    answer = new
        dialog.refresh_target(request)
        self.local_sdp = answer
        extra = (("Contact", dialog.local_contact), ("Content-Type", "application/sdp"))
        self.ua.stack.respond(txn, make_response(request, 200, extra=extra, body=answer))
