"""The SMTP intake: aiosmtpd sessions on Cosmo's event loop, mail stored before ``250``.

Theory of operation
-------------------
aiosmtpd speaks the protocol (RFC 5321, SIZE RFC 1870, 8BITMIME, SMTPUTF8,
STARTTLS RFC 3207); :class:`IntakePolicy` decides, and the
:class:`~cosmo.email.intake.IntakeWriter` stores.  The listener runs on the
loop Cosmo already runs (``loop.create_server``), not in aiosmtpd's
``Controller`` thread: one loop per process.

Replies chosen here (RFC 3463 enhanced codes):

* ``RCPT TO`` an address that is not ours: ``550 5.1.1``; more than
  ``max_recipients``: ``452 4.5.3`` (the client sends the rest later);
* a message larger than ``max_message_size``: ``552`` (aiosmtpd, at ``MAIL
  FROM ... SIZE=`` when announced, else after DATA);
* an empty message: ``554 5.6.0``; more ``Received`` headers than
  :data:`MAX_HOPS`: ``554 5.4.6`` (a mail loop, RFC 5321 §6.3);
* a message that could not be stored (disk, database): ``451 4.3.0``, so
  the client keeps it and tries again;
* anything else is stored, however malformed, and routed with its problems
  noted: ``250 2.0.0 queued as <id>``.

Before storing, ``Return-Path`` and ``Received`` (RFC 5321 §4.4) are put in
front of the message, as the final delivery does.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from cosmo.email.errors import EmailError, IntakeRefused
from cosmo.email.intake import Received
from cosmo.email.settings import SmtpIntakeSettings, normalise_address

__all__ = ["MAX_HOPS", "IntakePolicy", "SmtpIntake"]

log = logging.getLogger(__name__)

MAX_HOPS = 50
"""``Received`` headers beyond which a message is taken for a loop (RFC 5321 §6.3 asks for a limit of at least 100
hops in relays; a final destination seeing 50 is looking at a loop)."""

_RECEIVED = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class IntakePolicy:
    """What the intake accepts: our addresses, how many recipients, which messages.  Pure."""

    def __init__(self, addresses: Callable[[], set[str]], max_recipients: int) -> None:
        self._addresses = addresses
        self.max_recipients = max_recipients

    def check_recipient(self, address: str, accepted: int) -> str:
        """The address as stored, or :class:`IntakeRefused` (``550``/``452``)."""
        try:
            normalised = normalise_address(address)
        except ValueError:
            raise IntakeRefused(550, "5.1.3", f"<{address}>: bad address syntax") from None
        if normalised not in self._addresses():
            raise IntakeRefused(550, "5.1.1", f"<{address}>: no such mailbox here")
        if accepted >= self.max_recipients:
            raise IntakeRefused(452, "4.5.3", "too many recipients; send the rest in another transaction")
        return normalised

    @staticmethod
    def check_message(raw: bytes) -> None:
        """Refuse what must not be stored: nothing at all, or a looping message."""
        if not raw.strip():
            raise IntakeRefused(554, "5.6.0", "empty message")
        end = _HEADER_END.search(raw)
        header = raw[: end.start()] if end else raw[:65536]
        if len(_RECEIVED.findall(header)) > MAX_HOPS:
            raise IntakeRefused(554, "5.4.6", f"more than {MAX_HOPS} Received headers: mail loop")


def _trace_headers(mail_from: str, helo: str | None, peer: Any, hostname: str, email_id_hint: str,
                   tls: bool, when: datetime) -> bytes:
    host = peer[0] if isinstance(peer, tuple) and peer else "unknown"
    protocol = "ESMTPS" if tls else "ESMTP"
    helo_text = re.sub(r"[^\x21-\x7e]", "", helo or "unknown")[:255] or "unknown"
    received = (
        f"Received: from {helo_text} ([{host}])\r\n"
        f"\tby {hostname} (Cosmo) with {protocol} id {email_id_hint};\r\n"
        f"\t{format_datetime(when)}\r\n"
    )
    return_path = f"Return-Path: <{mail_from}>\r\n"
    return (return_path + received).encode("utf-8", errors="replace")


class _Handler:
    """aiosmtpd's handler hooks."""

    def __init__(self, intake: SmtpIntake) -> None:
        self.intake = intake

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        try:
            normalised = self.intake.policy.check_recipient(address, len(envelope.rcpt_tos))
        except IntakeRefused as refused:
            log.info("SMTP %s: RCPT TO <%s> refused: %s", _peer(session), address, refused.reply)
            return refused.reply
        envelope.rcpt_tos.append(normalised)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            self.intake.policy.check_message(raw)
        except IntakeRefused as refused:
            log.info("SMTP %s: message from <%s> refused: %s", _peer(session), envelope.mail_from, refused.reply)
            return refused.reply
        now = datetime.now(UTC)
        # "" is the null reverse-path (RFC 5321 §4.5.5: a bounce), which aiosmtpd reports as "<>".
        mail_from = (envelope.mail_from or "").strip("<>")
        trace = _trace_headers(mail_from, session.host_name, session.peer, self.intake.settings.hostname,
                               f"{id(envelope):x}", session.ssl is not None, now)
        try:
            email_id = await self.intake.store(Received(
                raw=trace + raw, source="smtp", received_at=now, mail_from=mail_from,
                rcpt_to=tuple(envelope.rcpt_tos),
            ))
        except EmailError as exc:
            log.error("SMTP %s: message from <%s> not stored: %s", _peer(session), mail_from, exc)
            return "451 4.3.0 cannot store the message now; try again later"
        if log.isEnabledFor(logging.DEBUG):
            log.debug("SMTP %s: message %d from <%s> to %s stored", _peer(session), email_id, mail_from,
                      ", ".join(envelope.rcpt_tos))
        return f"250 2.0.0 OK: queued as {email_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session failed: %s", error, exc_info=error)
        return "451 4.3.0 local error; try again later"


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class _Session(SMTP):
    """aiosmtpd's protocol, lenient about long lines (broken mailers send them; RFC 5321 §4.5.3.1.6 says 1000)."""

    line_length_limit = 64 * 1024


class SmtpIntake:
    """The SMTP listener.  ``store`` is :meth:`IntakeWriter.store`.  ``start()``/``close()`` are idempotent."""

    def __init__(self, settings: SmtpIntakeSettings, policy: IntakePolicy,
                 store: Callable[[Received], Awaitable[int]]) -> None:
        self.settings = settings
        self.policy = policy
        self.store = store
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[_Session] = weakref.WeakSet()
        self._tls: ssl.SSLContext | None = None
        if settings.cert_file is not None and settings.key_file is not None:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(str(settings.cert_file), str(settings.key_file))

    @property
    def listening(self) -> bool:
        """True while the listener is up."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose for 0).  Raises :class:`EmailError` when stopped."""
        if self._server is None or not self._server.sockets:
            raise EmailError("SMTP intake not started")
        return int(self._server.sockets[0].getsockname()[1])

    def _session(self) -> _Session:
        settings = self.settings
        session = _Session(
            _Handler(self),
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=settings.hostname,
            ident="Cosmo ESMTP",
            tls_context=self._tls,
            require_starttls=settings.require_starttls,
            timeout=settings.timeout_s,
        )
        self._sessions.add(session)
        return session

    async def start(self) -> None:
        """Listen.  Raises :class:`EmailError` when the address cannot be bound."""
        if self._server is not None:
            return
        mail_log = logging.getLogger("mail.log")
        if mail_log.level == logging.NOTSET:
            mail_log.setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._session, self.settings.host, self.settings.port)
        except OSError as exc:
            raise EmailError(
                f"cannot listen for SMTP on {self.settings.host}:{self.settings.port}: {exc.strerror or exc}"
            ) from exc
        log.info("SMTP intake listening on %s:%d%s", self.settings.host, self.port,
                 " (STARTTLS offered)" if self._tls else "")

    async def close(self) -> None:
        """Stop listening and end the open sessions (a message not yet answered gets no 250)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self._sessions):
            transport = session.transport
            if transport is not None:
                transport.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5.0)
        except TimeoutError:
            log.warning("SMTP intake: sessions still open after 5 s; closed anyway")
        log.info("SMTP intake closed")
