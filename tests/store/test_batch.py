"""Tests of cosmo.store.batch.BatchWriter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from cosmo.store import (
    BatchWriter,
    CdrRecord,
    CdrRepository,
    Database,
    EventLogRepository,
    LoggedEvent,
    WriterClosed,
)

START = datetime(2025, 3, 1, tzinfo=UTC)


class Sink:
    """Records the batches it is given; fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.failures = failures
        self.calls = 0

    async def __call__(self, rows: Sequence[int]) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        self.batches.append(list(rows))

    @property
    def rows(self) -> list[int]:
        return [row for batch in self.batches for row in batch]


async def test_flushes_when_full() -> None:
    sink = Sink()
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=10, max_delay=60)
    await writer.start()
    writer.add_many(range(25))
    for _ in range(50):
        if len(sink.rows) >= 20:
            break
        await asyncio.sleep(0.01)
    assert sink.batches == [list(range(10)), list(range(10, 20))]
    assert writer.pending == 5
    await writer.close()
    assert sink.rows == list(range(25))
    assert writer.written == 25


async def test_flushes_after_delay() -> None:
    sink = Sink()
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=100, max_delay=0.05)
    await writer.start()
    writer.add(1)
    writer.add(2)
    assert sink.batches == []  # add() never writes inline
    await asyncio.sleep(0.2)
    assert sink.batches == [[1, 2]]
    writer.add(3)
    await asyncio.sleep(0.2)
    assert sink.batches == [[1, 2], [3]]
    await writer.close()


async def test_close_flushes_rest_and_refuses_more() -> None:
    sink = Sink()
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=100, max_delay=60)
    await writer.start()
    writer.add_many([1, 2, 3])
    await writer.close()
    await writer.close()
    assert sink.batches == [[1, 2, 3]]
    with pytest.raises(WriterClosed):
        writer.add(4)
    with pytest.raises(WriterClosed):
        await writer.start()


async def test_flush_without_task() -> None:
    sink = Sink()
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=2)
    writer.add_many([1, 2, 3])
    await writer.flush()
    assert sink.batches == [[1, 2], [3]]
    assert writer.pending == 0


async def test_failed_batch_is_retried_in_order(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(failures=2)
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=100, max_delay=0.01)
    await writer.start()
    writer.add_many([1, 2])
    with caplog.at_level(logging.ERROR, logger="cosmo.store.batch"):
        for _ in range(100):
            if sink.rows:
                break
            await asyncio.sleep(0.01)
        writer.add(3)
        await writer.close()
    assert sink.rows == [1, 2, 3]
    assert writer.failures == 2 and writer.dropped == 0
    assert "writing 2 rows failed; will retry" in caplog.text


async def test_oldest_rows_dropped_past_max_pending(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(failures=1)
    writer: BatchWriter[int] = BatchWriter(sink, max_rows=2, max_pending=3)
    writer.add_many([1, 2, 3, 4, 5])
    with caplog.at_level(logging.ERROR, logger="cosmo.store.batch"):
        await writer.flush()  # first batch fails: 5 pending > 3
    assert writer.dropped == 2
    assert "dropped the 2 oldest rows" in caplog.text
    await writer.flush()
    assert sink.rows == [3, 4, 5]


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        BatchWriter(Sink(), max_rows=0)
    with pytest.raises(ValueError):
        BatchWriter(Sink(), max_rows=10, max_pending=5)


async def test_many_cdrs_in_few_transactions(tmp_path: object) -> None:
    db = Database("sqlite+aiosqlite://")
    await db.start()
    repo = CdrRepository(db)
    calls = 0

    async def sink(rows: Sequence[CdrRecord]) -> None:
        nonlocal calls
        calls += 1
        await repo.add_many(rows)

    writer: BatchWriter[CdrRecord] = BatchWriter(sink, max_rows=250, max_delay=0.05, name="cdr-writer")
    await writer.start()
    try:
        for i in range(1000):
            start = START + timedelta(seconds=i)
            writer.add(
                CdrRecord(
                    call_id=f"c{i}",
                    direction="inbound",
                    from_uri="sip:a@127.0.0.1",
                    to_uri="sip:b@127.0.0.1",
                    caller="a",
                    callee="b",
                    started_at=start,
                    ended_at=start + timedelta(seconds=30),
                    end_reason="normal",
                )
            )
            if i % 100 == 0:
                await asyncio.sleep(0)
        await writer.close()
        assert len(await repo.recent(limit=2000)) == 1000
        assert calls <= 8
        events = BatchWriter(EventLogRepository(db).append_many, max_rows=10)
        events.add(LoggedEvent(START, "call.started", {"call_id": "c0"}))
        await events.close()
        assert len(await EventLogRepository(db).read()) == 1
    finally:
        await writer.close()
        await db.close()
