"""Received messages stored durably before they are acknowledged, many per transaction.

Theory of operation
-------------------
Every SMTP session that reaches the end of DATA calls :meth:`IntakeWriter.store`
and waits.  One writer task takes whatever messages are waiting (up to
``max_batch``), writes their files and syncs them (in a worker thread), then
inserts their rows in one transaction and commits.  Only then do the waiting
sessions get their ids and answer ``250``: a group commit, so the cost of the
syncs and the commit is shared by all the messages that arrived meanwhile,
and throughput grows with the number of concurrent senders instead of being
bound by one sync per message.

A failure (disk full, database down) fails every message of the batch; their
sessions answer ``451`` and the senders try again later (RFC 5321 §4.5.4.1),
so nothing they were told was stored is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cosmo.email.errors import EmailError
from cosmo.email.storage import MailStore
from cosmo.store.email import EmailRecord, NewIncoming, incoming_record

__all__ = ["IntakeWriter", "Received"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """A message as received: its bytes, the envelope and what the intake noticed."""

    raw: bytes
    source: str
    received_at: datetime
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


class IncomingRows(Protocol):
    """What the writer needs of the store (:class:`cosmo.store.email.EmailRepository`)."""

    async def add_incoming(self, messages: Sequence[NewIncoming]) -> list[int]: ...


_Waiting = tuple[Received, "asyncio.Future[int]"]


class IntakeWriter:
    """Group commit of received messages.  See the module documentation.

    ``on_stored`` hears the rows of every committed batch, in order (the router needs not read them back).
    """

    def __init__(self, files: MailStore, rows: IncomingRows, on_stored: Callable[[list[EmailRecord]], None], *,
                 max_batch: int = 128) -> None:
        self.files = files
        self.rows = rows
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._pending: asyncio.Queue[_Waiting | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        """Transactions committed so far (a measure of the grouping)."""

    async def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="email-intake-writer")

    async def close(self) -> None:
        """Store what is waiting, then stop (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._pending.put_nowait(None)
        await task

    async def store(self, message: Received) -> int:
        """Store ``message`` durably; returns its id once committed.

        Raises :class:`EmailError` when it could not be stored (the caller answers 451).
        """
        if self._task is None or self._closing:
            raise EmailError("the e-mail intake is not running")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.put_nowait((message, future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._pending.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch and not self._pending.empty():
                item = self._pending.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._write(batch)
            if stop:
                return

    async def _write(self, batch: list[_Waiting]) -> None:
        messages = [message for message, _ in batch]
        try:
            paths = await asyncio.to_thread(
                self.files.write_messages, "in", [m.raw for m in messages], messages[0].received_at
            )
            rows = [
                NewIncoming(
                    source=m.source, eml_path=path, size=len(m.raw), received_at=m.received_at,
                    mail_from=m.mail_from, rcpt_to=m.rcpt_to, problems=m.problems,
                )
                for m, path in zip(messages, paths, strict=True)
            ]
            ids = await self.rows.add_incoming(rows)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("e-mail intake: %d message(s) could not be stored", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(EmailError(f"cannot store the message: {exc}"))
            return
        self.batches += 1
        for (_, future), email_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(email_id)
        self.on_stored([incoming_record(email_id, row) for email_id, row in zip(ids, rows, strict=True)])
