"""SIP dialogs (RFC 3261 §12), sans-I/O.

A :class:`Dialog` holds what RFC 3261 §12.1 says a dialog is: Call-ID, local
and remote tags, local and remote CSeq, local and remote URIs, the remote
target and the route set.  It builds in-dialog requests (§12.2.1.1, loose and
strict routing), checks the order of requests received (§12.2.2) and refreshes
the remote target (§12.2.1.2, §12.2.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import SipParseError, SipUsageError
from .headers import NameAddr, parse_name_addr
from .message import Headers, SipRequest, SipResponse
from .uri import SipUri

log = logging.getLogger(__name__)


class DialogState(StrEnum):
    """RFC 3261 §12: early (after a 1xx with a To tag), confirmed (2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


_MOVES = {
    DialogState.EARLY: {DialogState.CONFIRMED, DialogState.TERMINATED},
    DialogState.CONFIRMED: {DialogState.TERMINATED},
    DialogState.TERMINATED: set(),
}

DialogId = tuple[str, str, str]


@dataclass(slots=True)
class Dialog:
    """The state of one dialog, from the local side's point of view."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # name-addr text without tag, for From (UAC) / To (UAS)
    remote_uri: str
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    local_contact: str = ""
    secure: bool = False
    state: DialogState = DialogState.EARLY
    is_uac: bool = True

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def set_state(self, new: DialogState) -> None:
        """Move to ``new``; illegal moves are refused (a bug here)."""
        if new == self.state:
            return
        if new not in _MOVES[self.state]:
            raise SipUsageError(f"dialog {self.call_id}: illegal transition {self.state} -> {new}")
        log.debug("dialog %s: %s -> %s", self.call_id, self.state, new)
        self.state = new

    # ---- creation ------------------------------------------------------
    @classmethod
    def from_uas(cls, request: SipRequest, local_tag: str, local_contact: str) -> Dialog:
        """The dialog a UAS creates on answering ``request`` (§12.1.1)."""
        remote_target = _contact_uri(request)
        from_ = request.from_
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag or "",
            local_uri=_without_tag(request.headers.get("To") or ""),
            remote_uri=_without_tag(request.headers.get("From") or ""),
            remote_target=remote_target,
            route_set=list(request.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=request.cseq.seq,
            local_contact=local_contact,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            is_uac=False,
        )

    @classmethod
    def from_uac(cls, request: SipRequest, response: SipResponse) -> Dialog:
        """The dialog a UAC creates from a 1xx/2xx with a To tag (§12.1.2)."""
        tag = response.to.tag
        if not tag:
            raise SipParseError("response creating a dialog has no To tag")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=tag,
            local_uri=_without_tag(request.headers.get("From") or ""),
            remote_uri=_without_tag(request.headers.get("To") or ""),
            remote_target=_contact_uri(response),
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_contact=request.headers.get("Contact") or "",
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            is_uac=True,
        )

    # ---- requests within the dialog -------------------------------------
    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        cseq: int | None = None,
    ) -> SipRequest:
        """Build an in-dialog request (§12.2.1.1).

        ACK and CANCEL reuse the CSeq number passed in ``cseq``; every other
        method takes the next local CSeq.
        """
        if cseq is None:
            self.local_seq += 1
            seq = self.local_seq
        else:
            seq = cseq
        headers = Headers()
        uri: SipUri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = parse_name_addr(routes[0])
            if isinstance(first.uri, SipUri) and not first.uri.has_param("lr"):
                # Strict routing (RFC 2543 proxies): the first route becomes the
                # Request-URI and the remote target goes last in the Route set.
                uri = first.uri
                routes = routes[1:] + [f"<{self.remote_target}>"]
        for route in routes:
            headers.add("Route", route)
        headers.add("From", _with_tag(self.local_uri, self.local_tag))
        headers.add("To", _with_tag(self.remote_uri, self.remote_tag))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if self.local_contact and method not in ("ACK", "CANCEL", "BYE"):
            headers.add("Contact", self.local_contact)
        for name, value in extra:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return SipRequest(method, uri, headers, body)

    def next_hop(self) -> SipUri:
        """The URI whose host the request is sent to: the first route, or the target."""
        if self.route_set:
            first = parse_name_addr(self.route_set[0])
            if isinstance(first.uri, SipUri):
                return first.uri
        return self.remote_target

    def receive_request(self, request: SipRequest) -> bool:
        """Check the remote CSeq of an in-dialog request (§12.2.2).

        Returns ``False`` for an out-of-order request, which must be answered
        500; ACK and CANCEL are exempt.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Take a new remote target from a target-refresh request or its 2xx."""
        contacts = message.headers.get_all("Contact")
        if contacts:
            try:
                self.remote_target = _contact_uri(message)
            except SipParseError as exc:
                log.info("dialog %s: ignoring bad Contact: %s", self.call_id, exc)


def dialog_id_of_request(request: SipRequest) -> DialogId | None:
    """The id of the dialog an incoming request belongs to, or ``None`` if it has no To tag."""
    to_tag = request.to.tag
    if not to_tag:
        return None
    return (request.call_id, to_tag, request.from_.tag or "")


def dialog_id_of_response(response: SipResponse) -> DialogId | None:
    """The id of the dialog (as UAC) that a response belongs to."""
    to_tag = response.to.tag
    if not to_tag:
        return None
    return (response.call_id, response.from_.tag or "", to_tag)


def _contact_uri(message: SipRequest | SipResponse) -> SipUri:
    values = message.headers.get_all("Contact")
    if not values:
        raise SipParseError("missing Contact")
    contact: NameAddr = parse_name_addr(values[0])
    return contact.sip_uri


def _with_tag(name_addr: str, tag: str) -> str:
    # §12.1.1: a null tag (an RFC 2543 peer's From) is written as no tag at all.
    return f"{name_addr};tag={tag}" if tag else name_addr


def _without_tag(value: str) -> str:
    addr = parse_name_addr(value)
    params = tuple(p for p in addr.params if p[0].lower() != "tag")
    return str(NameAddr(addr.uri, addr.display, params))
