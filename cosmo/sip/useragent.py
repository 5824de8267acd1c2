"""The user-agent core: checks every request as a UAS must, then dispatches it.

Out-of-dialog requests go to a handler per method (the registrar takes
REGISTER, the call layer INVITE); OPTIONS is answered here (keep-alive
probes from trunks and phones); in-dialog requests go to their
:class:`~cosmo.sip.session.InviteSession`.

The checks follow RFC 3261 §8.2 in its order, with the statuses RFC 4475
expects: 416 for a Request-URI scheme we cannot serve (unkscm), 483 when
Max-Forwards is 0 on anything but OPTIONS (zeromf), 420 with Unsupported for
unknown Require options (bext01), 415 with Accept for an INVITE body that is
not SDP (invut), 406 when the INVITE's Accept excludes SDP (sdp01), 481 for a
request in a dialog we do not know, 405 with Allow for unknown methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .dialog import DialogId, dialog_id_of_request
from .errors import SipParseError
from .message import SipRequest, SipResponse
from .session import InviteSession
from .stack import SipStack
from .transaction import ServerTransaction, request_destination
from .transport import Address
from .uri import SipUri

log = logging.getLogger(__name__)

RequestHandler = Callable[[ServerTransaction, SipRequest, Address], None]

# Option tags Cosmo implements (RFC 3261 §19.2); anything else in Require gets 420.
SUPPORTED_OPTIONS = ("path", "replaces")
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "REGISTER", "NOTIFY")
SDP_TYPES = ("application/sdp",)


class UserAgent:
    """The SIP application on top of :class:`SipStack` (it is the stack's ``application``)."""

    def __init__(self, stack: SipStack, *, contact_user: str = "cosmo") -> None:
        self.stack = stack
        self.contact_user = contact_user
        stack.application = self
        self.handlers: dict[str, RequestHandler] = {}
        # Called with each new incoming INVITE session; must ring/answer/reject it.
        self.on_invite: Callable[[InviteSession, Address], None] | None = None
        self._dialogs: dict[DialogId, InviteSession] = {}
        self._pending_uas: dict[tuple[str, str], InviteSession] = {}  # (call-id, from-tag)
        self._pending_uac: dict[tuple[str, str], InviteSession] = {}
        self.allow_header = ", ".join(ALLOWED_METHODS)
        self.supported_header = ", ".join(SUPPORTED_OPTIONS)

    # ---- bookkeeping ----------------------------------------------------
    @property
    def session_count(self) -> int:
        """Sessions alive (dialogs and INVITEs not yet answered)."""
        ids = {id(s) for s in self._dialogs.values()}
        ids.update(id(s) for s in self._pending_uas.values())
        ids.update(id(s) for s in self._pending_uac.values())
        return len(ids)

    def _register_dialog(self, session: InviteSession) -> None:
        assert session.dialog is not None
        self._dialogs[session.dialog.id] = session

    def _register_pending(self, session: InviteSession) -> None:
        assert session.invite is not None
        key = (session.invite.call_id, session.invite.from_.tag or "")
        (self._pending_uac if session.is_uac else self._pending_uas)[key] = session

    def _forget(self, session: InviteSession) -> None:
        for table in (self._dialogs,):
            for key in [k for k, v in table.items() if v is session]:
                del table[key]
        for pending in (self._pending_uac, self._pending_uas):
            for stale in [k for k, v in pending.items() if v is session]:
                del pending[stale]

    def contact_for(self, transport: str) -> str:
        """Cosmo's Contact for requests and responses sent over ``transport``."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{self.contact_user}@{self.stack.sent_by(transport)}{suffix}>"

    def resolve(self, uri: SipUri, default_transport: str = "udp") -> Address:
        """The address to send to for ``uri`` (IP hosts; no DNS, see transaction.request_destination)."""
        transport, host, port = request_destination(uri, default_transport)
        return Address(transport, host, port)

    # ---- SipApplication -------------------------------------------------
    def on_request(self, txn: ServerTransaction | None, request: SipRequest, source: Address) -> None:
        """Check and dispatch a request (see the module docstring)."""
        if txn is None:  # an ACK for a 2xx
            self._on_ack(request)
            return
        status = self._check(request)
        if status is not None:
            code, reason, extra = status
            self.stack.reply(txn, code, reason, extra=extra)
            return
        dialog_id = dialog_id_of_request(request)
        if dialog_id is not None:
            session = self._dialogs.get(dialog_id)
            if session is None:
                self.stack.reply(txn, 481)
                return
            session._on_in_dialog_request(txn, request)
            return
        method = request.method
        if method == "INVITE":
            self._on_invite(txn, request, source)
            return
        handler = self.handlers.get(method)
        if handler is not None:
            handler(txn, request, source)
        elif method == "OPTIONS":
            self.stack.reply(
                txn,
                200,
                extra=(
                    ("Allow", self.allow_header),
                    ("Accept", "application/sdp"),
                    ("Supported", self.supported_header),
                ),
            )
        elif method in ("BYE", "INFO", "UPDATE", "NOTIFY"):
            self.stack.reply(txn, 481)
        else:
            self.stack.reply(txn, 405, extra=(("Allow", self.allow_header),))

    def _check(self, request: SipRequest) -> tuple[int, str | None, tuple[tuple[str, str], ...]] | None:
        method = request.method
        uri = request.uri
        if not isinstance(uri, SipUri):
            return 416, None, ()
        max_forwards = request.max_forwards
        if max_forwards == 0 and method != "OPTIONS":
            return 483, None, ()
        if method not in ("ACK", "CANCEL"):
            unsupported = [opt for opt in request.tokens("Require") if opt not in SUPPORTED_OPTIONS]
            if unsupported:
                return 420, None, (("Unsupported", ", ".join(unsupported)),)
        if method == "INVITE":
            content_type = request.content_type
            if request.body and content_type not in SDP_TYPES:
                return 415, None, (("Accept", "application/sdp"),)
            accept = request.tokens("Accept")
            if accept and not any(a.split(";")[0].strip() in ("application/sdp", "application/*", "*/*")
                                  for a in accept):
                return 406, None, (("Accept", "application/sdp"),)
        return None

    def _on_invite(self, txn: ServerTransaction, request: SipRequest, source: Address) -> None:
        session = InviteSession.incoming(self, txn, request, source)
        self._register_pending(session)
        if self.on_invite is None:
            session.reject(503)
            return
        try:
            self.on_invite(session, source)
        except SipParseError as exc:
            if not txn.final_sent:
                session.reject(exc.status, exc.reason)
        except Exception:
            log.exception("INVITE handler failed for %s", request.call_id)
            if not txn.final_sent:
                session.reject(500)

    def _on_ack(self, request: SipRequest) -> None:
        dialog_id = dialog_id_of_request(request)
        session = self._dialogs.get(dialog_id) if dialog_id is not None else None
        if session is not None:
            session._on_in_dialog_request(None, request)

    def on_cancel(self, invite: ServerTransaction, request: SipRequest) -> None:
        """A CANCEL for a pending INVITE: the session answers 487 and ends."""
        key = (request.call_id, request.from_.tag or "")
        session = self._pending_uas.get(key)
        if session is not None:
            session._on_cancel()
        elif not invite.final_sent:
            self.stack.reply(invite, 487)

    def on_stray_2xx(self, response: SipResponse, source: Address) -> None:
        """A 2xx after the INVITE transaction ended: re-ACK a known dialog, else ACK and BYE."""
        call_id = response.call_id
        from_tag = response.from_.tag or ""
        key = (call_id, from_tag, response.to.tag or "")
        session = self._dialogs.get(key)
        if session is not None:
            session._resend_ack()
            return
        pending = self._pending_uac.get((call_id, from_tag))
        if pending is not None and pending.invite is not None:
            self.ack_and_bye(pending.invite, response, source)

    def on_ack_timeout(self, txn: ServerTransaction) -> None:
        """No ACK came for a 2xx: end that session with BYE."""
        request = txn.request
        key = (request.call_id, request.from_.tag or "")
        session = self._pending_uas.get(key)
        if session is not None:
            session._on_ack_timeout()

    def ack_and_bye(self, invite: SipRequest, response: SipResponse, peer: Address) -> None:
        """Acknowledge an unwanted 2xx (a second fork) and end that dialog (RFC 3261 §13.2.2.4)."""
        from .dialog import Dialog

        dialog = Dialog.from_uac(invite, response)
        ack = dialog.create_request("ACK", cseq=invite.cseq.seq)
        self.stack.send_stateless(ack, peer)
        bye = dialog.create_request("BYE")
        self.stack.send_request(bye, peer)
