"""Sending queued mail through the configured SMTP relay (aiosmtplib), with retries.

Theory of operation
-------------------
Messages to send are rows with status ``queued``; their bytes are already on
disk.  A message just queued is stored without a due time and handed to the
relay in memory (:meth:`OutboundRelay.submit`); one the relay could not send
gets the time of its next try, and the store is read for those when that time
comes.  At start, messages held by a previous run (queued, no due time) are
made due at once, so nothing queued is forgotten by a crash.  One task sends
each round over ``concurrency`` connections, one message after the other on
each (a relay takes many transactions per connection, RFC 5321 §4.1.4), and
records the tries of the round in one transaction:

* taken by the relay: ``sent``;
* refused for good (a 5xx answer): ``failed`` with the relay's words;
* not taken now (connection refused, timeout, a 4xx answer): ``queued``
  again, next try after ``retry_initial_s × 2^(tries-1)`` capped at
  ``retry_max_s``; ``failed`` once ``give_up_after_s`` have passed since
  the message was queued.

So a relay that is down leaves replies queued, visible with their tries and
last error in the case, and they go out by themselves when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiosmtplib

from cosmo.aiotasks import cancel_and_wait
from cosmo.email.settings import RelaySettings
from cosmo.email.storage import MailStore
from cosmo.store.email import Attempt, EmailRecord

__all__ = ["OutboundRelay", "SendResult", "retry_delay"]

log = logging.getLogger(__name__)

_IDLE_WAKE_S = 60.0
_ROUND = 200
"""Messages sent in one round at most."""
_GATHER_S = 0.05
"""Pause after a wake-up so that messages queued together go out in one round."""
_QUIT_S = 5.0
"""How long a relay may take to answer QUIT before the connection is dropped."""


def retry_delay(settings: RelaySettings, attempts: int) -> float:
    """Seconds before try ``attempts + 1`` (``attempts`` ≥ 1 tries made so far)."""
    return float(min(settings.retry_max_s, settings.retry_initial_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class SendResult:
    """What came of one try: ``sent``, ``queued`` (again) or ``failed``."""

    record: EmailRecord
    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


class OutgoingRows(Protocol):
    """What the relay needs of the store (:class:`cosmo.store.email.EmailRepository`)."""

    async def due_outgoing(self, now: datetime, limit: int = 100) -> list[EmailRecord]: ...

    async def next_outgoing_at(self) -> datetime | None: ...

    async def release_held(self, now: datetime) -> int: ...

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None: ...


class OutboundRelay:
    """The sender task.  See the module documentation.  ``on_result`` hears every try."""

    def __init__(self, settings: RelaySettings, rows: OutgoingRows, files: MailStore, *, local_hostname: str,
                 on_result: Callable[[SendResult], None], clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.rows = rows
        self.files = files
        self.local_hostname = settings.local_hostname or local_hostname
        self.on_result = on_result
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._held: list[EmailRecord] = []
        # When the store next has a message due (a retry); None: none known.
        self._db_due_at: datetime | None = self._now()

    async def start(self) -> None:
        """Start sending (idempotent); what was queued before a restart goes first."""
        if self._task is None:
            self._wake.set()
            self._task = asyncio.create_task(self._run(), name="email-relay")

    async def close(self) -> None:
        """Stop (a try in progress is abandoned and stays queued)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def wake(self) -> None:
        """Something was queued: look now."""
        self._wake.set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def submit(self, records: Sequence[EmailRecord]) -> None:
        """Send these just-queued messages (stored with no due time: held for this relay, see the module)."""
        self._held.extend(records)
        self._wake.set()

    async def _run(self) -> None:
        # Messages a previous run held in memory when it stopped are due now.
        try:
            released = await self.rows.release_held(self._now())
            if released:
                log.info("e-mail relay: %d message(s) queued before the restart go out now", released)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("e-mail relay: queued messages could not be released; they go at the next start")
        while True:
            self._wake.clear()
            try:
                round_ = self._held[:_ROUND]
                del self._held[:len(round_)]
                polled = False
                if self._db_due_at is not None and self._db_due_at <= self._now() and len(round_) < _ROUND:
                    held = {r.id for r in round_} | {r.id for r in self._held}
                    round_ += [r for r in await self.rows.due_outgoing(self._now(), limit=_ROUND - len(round_))
                               if r.id not in held]
                    polled = True
                if round_:
                    await self._send_round(round_)
                if polled:
                    self._db_due_at = await self.rows.next_outgoing_at()
                if self._held or (self._db_due_at is not None and self._db_due_at <= self._now()):
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("e-mail relay: a sending round failed; trying again shortly")
                self._db_due_at = self._now() + timedelta(seconds=5)
            due_at = self._db_due_at
            wait = _IDLE_WAKE_S if due_at is None else max(0.0, (due_at - self._now()).total_seconds())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(wait, _IDLE_WAKE_S))
            except TimeoutError:
                if due_at is None:
                    self._db_due_at = self._now()  # look at the store now and then, whatever happened
                continue
            # Woken by new mail: let what comes with it (a batch's acknowledgements) join the round.
            await asyncio.sleep(_GATHER_S)

    async def _send_round(self, due: list[EmailRecord]) -> None:
        """Send what is due over ``concurrency`` connections, then record every result in one transaction."""
        lanes = max(1, min(self.settings.concurrency, len(due)))
        chunks = [due[i::lanes] for i in range(lanes)]
        raws = await asyncio.to_thread(self._read_all, due)
        results = [r for chunk in await asyncio.gather(*(self._send_chunk(c, raws) for c in chunks)) for r in chunk]
        now = self._now()
        await self.rows.record_attempts([
            Attempt(r.record.id, r.status, r.error, r.next_attempt_at, now if r.status == "sent" else None)
            for r in results
        ])
        for result in results:
            if result.next_attempt_at is not None and (self._db_due_at is None or
                                                       result.next_attempt_at < self._db_due_at):
                self._db_due_at = result.next_attempt_at
            self.on_result(result)

    def _read_all(self, records: list[EmailRecord]) -> dict[int, bytes | OSError]:
        out: dict[int, bytes | OSError] = {}
        for record in records:
            try:
                out[record.id] = self.files.read(record.eml_path)
            except OSError as exc:
                out[record.id] = exc
        return out

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            validate_certs=settings.verify_certificate,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password is not None else None,
            timeout=settings.timeout_s,
            local_hostname=self.local_hostname,
        )

    async def _send_chunk(self, records: list[EmailRecord], raws: dict[int, bytes | OSError]) -> list[SendResult]:
        """Send ``records`` one after the other over one connection (opened again once if the relay drops it)."""
        results: list[SendResult] = []
        pending = list(records)
        client: aiosmtplib.SMTP | None = None
        reconnected = False
        try:
            while pending:
                record = pending[0]
                attempts = record.attempts + 1
                raw = raws.get(record.id)
                if not isinstance(raw, bytes):
                    results.append(SendResult(record, "failed", attempts, f"the message's file is gone: {raw}"))
                    pending.pop(0)
                    continue
                try:
                    if client is None:
                        client = self._client()
                        await client.connect()
                    # sendmail, not send(): an acknowledgement goes with the null sender ``<>``.
                    await client.sendmail(record.mail_from or "", list(record.rcpt_to), raw)
                except aiosmtplib.SMTPServerDisconnected as exc:
                    client = None
                    if not reconnected:
                        reconnected = True
                        continue  # the same message once more, on a new connection
                    results.extend(self._deferred(r, r.attempts + 1, f"relay disconnected: {exc}") for r in pending)
                    break
                except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError) as exc:
                    # The relay cannot be reached: everything for this connection waits for the next try.
                    client = None
                    results.extend(self._deferred(r, r.attempts + 1, f"{type(exc).__name__}: {exc}")
                                   for r in pending)
                    break
                except aiosmtplib.SMTPException as exc:
                    results.append(self._refused(record, attempts, exc))
                    pending.pop(0)
                    await self._reset(client)
                except asyncio.CancelledError:
                    # Stopped mid-transaction: drop the connection (a QUIT now would be read as message data).
                    if client is not None:
                        client.close()
                        client = None
                    raise
                except Exception as exc:
                    log.exception("e-mail %d: sending failed unexpectedly", record.id)
                    results.append(self._deferred(record, attempts, f"{type(exc).__name__}: {exc}"))
                    pending.pop(0)
                    client = None
                else:
                    log.info("e-mail %d (%s, case %s) sent to %s", record.id, record.kind, record.case_id,
                             ", ".join(record.rcpt_to))
                    results.append(SendResult(record, "sent", attempts))
                    pending.pop(0)
        finally:
            if client is not None:
                try:
                    await asyncio.wait_for(client.quit(), _QUIT_S)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
        return results

    @staticmethod
    async def _reset(client: aiosmtplib.SMTP | None) -> None:
        if client is None or not client.is_connected:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()

    def _refused(self, record: EmailRecord, attempts: int, exc: aiosmtplib.SMTPException) -> SendResult:
        """A refusal of this message: failed for good on 5xx, tried again later on 4xx."""
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            error = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            permanent = bool(codes) and all(code >= 500 for code in codes)
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            error, permanent = f"{exc.code} {exc.message}", exc.code >= 500
        else:
            error, permanent = f"{type(exc).__name__}: {exc}", False
        return self._failed(record, attempts, error) if permanent else self._deferred(record, attempts, error)

    def _failed(self, record: EmailRecord, attempts: int, error: str) -> SendResult:
        log.warning("e-mail %d (%s, case %s) refused by the relay for good: %s", record.id, record.kind,
                    record.case_id, error)
        return SendResult(record, "failed", attempts, error)

    def _deferred(self, record: EmailRecord, attempts: int, error: str) -> SendResult:
        now = self._now()
        if (now - record.received_at).total_seconds() >= self.settings.give_up_after_s:
            return self._failed(record, attempts, f"given up after {attempts} tries; last: {error}")
        next_at = now + timedelta(seconds=retry_delay(self.settings, attempts))
        log.warning("e-mail %d (%s, case %s) not sent (try %d): %s; next try at %s", record.id, record.kind,
                    record.case_id, attempts, error, next_at.isoformat(timespec="seconds"))
        return SendResult(record, "queued", attempts, error, next_at)
