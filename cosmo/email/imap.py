"""IMAP intake: polling configured mailboxes (aioimaplib), each message fetched once.

Theory of operation
-------------------
Every ``poll_interval_s`` a poller logs in, SELECTs its mailbox and reads
the mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1).  The store keeps, per
configured mailbox, the UIDVALIDITY and the highest UID stored so far; the
poller asks for ``UID SEARCH UID last+1:*`` and fetches the new messages in
UID order (``BODY.PEEK[]``, so fetching alone marks nothing read), ``batch``
at a time.  Each batch's files are written and synced, then its rows are
inserted *and the position moved* in one transaction: a crash before the
commit fetches the batch again, a crash after it never does.  So nothing is
fetched twice or skipped, across restarts too; a unique key on
(mailbox, UIDVALIDITY, UID) guards the same rule in the database.

Only then is the server told (``after_store``): ``\\Seen`` set, the message
moved (``UID MOVE``, RFC 6851, else COPY + ``\\Deleted`` + EXPUNGE), expunged,
or left alone.  A failure there is logged; the message is already stored.

When the server reports a different UIDVALIDITY the old UIDs mean nothing:
the mailbox is read again from UID 1, skipping messages whose Message-ID
was already stored from this mailbox.

A message larger than ``max_message_size`` is not fetched; a row noting the
problem (with its UID and size) is stored in its place and routed like any
message, so an agent sees that it exists.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import aioimaplib  # type: ignore[import-untyped]

from cosmo.aiotasks import cancel_and_wait
from cosmo.email.errors import EmailError
from cosmo.email.mime import message_ids
from cosmo.email.settings import ImapMailboxSettings
from cosmo.email.storage import MailStore
from cosmo.store.email import EmailRecord, NewIncoming, incoming_record

__all__ = ["ImapError", "ImapPoller", "parse_fetch", "parse_uidvalidity"]

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_MESSAGE_ID_HEADER = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class ImapError(EmailError):
    """The IMAP server refused a command or answered what could not be read."""


class MailboxRows(Protocol):
    """What the poller needs of the store (:class:`cosmo.store.email.EmailRepository`)."""

    async def mailbox_position(self, name: str) -> tuple[int, int] | None: ...

    async def set_mailbox_position(self, name: str, uidvalidity: int, last_uid: int) -> None: ...

    async def add_from_mailbox(self, name: str, uidvalidity: int, last_uid: int,
                               messages: Sequence[NewIncoming]) -> list[int]: ...

    async def mailbox_message_ids(self, name: str, message_ids: Collection[str]) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """One message of a FETCH response: its UID, RFC822.SIZE and body (when asked for)."""

    uid: int
    size: int | None = None
    body: bytes | None = None


def parse_uidvalidity(lines: Sequence[bytes | bytearray]) -> int | None:
    """The UIDVALIDITY in a SELECT response's lines."""
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    return None


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[Fetched]:
    """The messages of a ``UID FETCH`` response (aioimaplib gives literals as ``bytearray`` lines)."""
    out: list[Fetched] = []
    uid: int | None = None
    size: int | None = None
    body: bytes | None = None
    started = False

    def finish() -> None:
        if started and uid is not None:
            out.append(Fetched(uid, size, body))

    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if _FETCH_START.match(line):
            finish()
            started, uid, size, body = True, None, None, None
        if not started:
            continue
        if (match := _UID.search(line)) is not None:
            uid = int(match.group(1))
        if (match := _SIZE.search(line)) is not None:
            size = int(match.group(1))
    finish()
    return out


def _uid_set(uids: Sequence[int]) -> str:
    return ",".join(str(uid) for uid in uids)


def _message_id(raw: bytes) -> str | None:
    end = raw.find(b"\r\n\r\n")
    header = raw if end < 0 else raw[:end]
    match = _MESSAGE_ID_HEADER.search(header)
    if match is None:
        return None
    ids = message_ids(match.group(1).decode("ascii", errors="replace"))
    return ids[0] if ids else None


class ImapPoller:
    """Polls one mailbox.  See the module documentation.  ``on_stored`` hears the rows stored."""

    def __init__(self, settings: ImapMailboxSettings, rows: MailboxRows, files: MailStore,
                 on_stored: Callable[[list[EmailRecord]], None], *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.rows = rows
        self.files = files
        self.on_stored = on_stored
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.last_error: str | None = None
        self.polls = 0

    @property
    def source(self) -> str:
        """How its messages' ``source`` reads: ``imap:<name>``."""
        return f"imap:{self.settings.name}"

    async def start(self) -> None:
        """Start polling (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"email-imap-{self.settings.name}")

    async def close(self) -> None:
        """Stop polling (a batch being stored is finished or not started: never half)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def poll_now(self) -> None:
        """Poll without waiting for the interval."""
        self._wake.set()

    async def _run(self) -> None:
        name = self.settings.name
        while True:
            self._wake.clear()
            try:
                stored = await self.poll_once()
                self.last_error = None
                if stored:
                    log.info("IMAP %s: %d new message(s) stored", name, stored)
            except asyncio.CancelledError:
                raise
            except (EmailError, aioimaplib.AioImapException, OSError, TimeoutError) as exc:
                if self.last_error != str(exc):
                    log.warning("IMAP %s: %s; trying again in %g s", name, exc, self.settings.poll_interval_s)
                self.last_error = str(exc)
            except Exception:
                log.exception("IMAP %s: polling failed", name)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
            except TimeoutError:
                pass

    async def poll_once(self) -> int:
        """One poll: log in, store every new message, log out.  Returns how many were stored."""
        settings = self.settings
        client = self._client()
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), settings.timeout_s)
            self._ok(await client.login(settings.username, settings.password.get_secret_value()), "LOGIN")
            response = self._ok(await client.select(_quoted(settings.mailbox)), f"SELECT {settings.mailbox}")
            uidvalidity = parse_uidvalidity(response.lines)
            if uidvalidity is None:
                raise ImapError(f"SELECT {settings.mailbox}: no UIDVALIDITY in the answer")
            stored = await self._fetch_new(client, uidvalidity)
            self.polls += 1
            try:
                await client.logout()
            except (aioimaplib.AioImapException, OSError, TimeoutError):
                pass
            return stored
        finally:
            await self._disconnect(client)

    def _client(self) -> aioimaplib.IMAP4:
        settings = self.settings
        if settings.security == "tls":
            context = ssl.create_default_context()
            if not settings.verify_certificate:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return aioimaplib.IMAP4_SSL(settings.host, settings.effective_port, timeout=settings.timeout_s,
                                        ssl_context=context)
        return aioimaplib.IMAP4(settings.host, settings.effective_port, timeout=settings.timeout_s)

    @staticmethod
    async def _disconnect(client: aioimaplib.IMAP4) -> None:
        transport = getattr(getattr(client, "protocol", None), "transport", None)
        if transport is not None:
            transport.close()

    @staticmethod
    def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
        if response.result != "OK":
            text = b" ".join(bytes(line) for line in response.lines if not isinstance(line, bytearray))
            raise ImapError(f"{what} refused: {response.result} {text.decode('utf-8', 'replace')}".strip())
        return response

    async def _fetch_new(self, client: aioimaplib.IMAP4, uidvalidity: int) -> int:
        settings = self.settings
        position = await self.rows.mailbox_position(settings.name)
        dedupe = False
        last_uid = 0
        if position is not None:
            stored_validity, last_uid = position
            if stored_validity != uidvalidity:
                log.warning("IMAP %s: UIDVALIDITY changed %d -> %d; reading the mailbox again, skipping messages "
                            "already stored", settings.name, stored_validity, uidvalidity)
                dedupe, last_uid = True, 0
                await self.rows.set_mailbox_position(settings.name, uidvalidity, 0)
        response = self._ok(await client.uid_search(f"UID {last_uid + 1}:*"), "UID SEARCH")
        uids = sorted({int(n) for line in response.lines if not isinstance(line, bytearray)
                       for n in bytes(line).split() if n.isdigit() and int(n) > last_uid})
        if position is not None and position[0] == uidvalidity and not uids:
            return 0
        if position is None and not uids:
            await self.rows.set_mailbox_position(settings.name, uidvalidity, 0)
            return 0
        stored = 0
        for start in range(0, len(uids), settings.batch):
            chunk = uids[start:start + settings.batch]
            stored += await self._store_chunk(client, uidvalidity, chunk, dedupe)
        return stored

    async def _store_chunk(self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int], dedupe: bool) -> int:
        settings = self.settings
        sizes = {f.uid: f.size for f in parse_fetch(
            self._ok(await client.uid("fetch", _uid_set(uids), "(UID RFC822.SIZE)"), "UID FETCH RFC822.SIZE").lines
        )}
        now = datetime.fromtimestamp(self.clock(), UTC)
        bodies: dict[int, bytes] = {}
        small = [uid for uid in uids if (sizes.get(uid) or 0) <= settings.max_message_size]
        if small:
            response = self._ok(await client.uid("fetch", _uid_set(small), "(UID BODY.PEEK[])"), "UID FETCH BODY")
            bodies = {f.uid: f.body for f in parse_fetch(response.lines) if f.body is not None}
        messages: list[tuple[int, bytes, tuple[str, ...]]] = []
        for uid in uids:
            if uid in bodies:
                messages.append((uid, bodies[uid], ()))
            elif uid in sizes and (sizes[uid] or 0) > settings.max_message_size:
                problem = (f"message of {sizes[uid]} bytes is larger than max_message_size "
                           f"({settings.max_message_size}); left in {settings.mailbox} (UID {uid}), not fetched")
                messages.append((uid, _placeholder(settings.mailbox, uid, sizes[uid] or 0), (problem,)))
            # else: expunged between SEARCH and FETCH: nothing to store
        if dedupe:
            ids = {uid: _message_id(raw) for uid, raw, _ in messages}
            known = await self.rows.mailbox_message_ids(settings.name, {m for m in ids.values() if m})
            messages = [m for m in messages if ids[m[0]] is None or ids[m[0]] not in known]
        paths = await asyncio.to_thread(self.files.write_messages, "in", [raw for _, raw, _ in messages], now)
        rows = [
            NewIncoming(source=self.source, eml_path=path, size=len(raw), received_at=now, problems=problems,
                        message_id=_message_id(raw), imap_uid=uid, data={"mailbox": settings.mailbox})
            for (uid, raw, problems), path in zip(messages, paths, strict=True)
        ]
        ids_stored = await self.rows.add_from_mailbox(settings.name, uidvalidity, max(uids), rows)
        if ids_stored:
            self.on_stored([incoming_record(email_id, row, mailbox=settings.name)
                            for email_id, row in zip(ids_stored, rows, strict=True)])
        await self._after_store(client, [uid for uid, _, problems in messages if not problems])
        return len(ids_stored)

    async def _after_store(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        settings = self.settings
        if not uids or settings.after_store == "keep":
            return
        uid_set = _uid_set(uids)
        try:
            if settings.after_store == "seen":
                self._ok(await client.uid("store", uid_set, "+FLAGS.SILENT (\\Seen)"), "UID STORE \\Seen")
            elif settings.after_store == "move" and settings.move_to is not None:
                if client.has_capability("MOVE"):
                    self._ok(await client.uid("move", uid_set, _quoted(settings.move_to)), "UID MOVE")
                else:
                    self._ok(await client.uid("copy", uid_set, _quoted(settings.move_to)), "UID COPY")
                    await self._expunge(client, uid_set)
            elif settings.after_store == "delete":
                await self._expunge(client, uid_set)
        except (EmailError, aioimaplib.AioImapException) as exc:
            log.warning("IMAP %s: stored messages %s not marked on the server (%s): %s", settings.name, uid_set,
                        settings.after_store, exc)

    async def _expunge(self, client: aioimaplib.IMAP4, uid_set: str) -> None:
        self._ok(await client.uid("store", uid_set, "+FLAGS.SILENT (\\Deleted)"), "UID STORE \\Deleted")
        if client.has_capability("UIDPLUS"):
            self._ok(await client.uid("expunge", uid_set), "UID EXPUNGE")
        else:
            self._ok(await client.expunge(), "EXPUNGE")


def _quoted(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 3501 §4.3) when it needs one."""
    if re.fullmatch(r"[A-Za-z0-9_./-]+", mailbox):
        return mailbox
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _placeholder(mailbox: str, uid: int, size: int) -> bytes:
    return (
        f"Subject: (message too large to fetch: {size} bytes)\r\n"
        f"X-Cosmo-Imap: {mailbox} UID {uid}\r\n\r\n"
        f"A message of {size} bytes in mailbox {mailbox} (UID {uid}) is larger than the configured limit "
        f"and was left on the server.\r\n"
    ).encode()
