"""Background-task helpers (cosmo.aiotasks)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cosmo.aiotasks import BackgroundTasks, cancel_and_wait


async def test_cancel_and_wait_runs_the_finally_blocks() -> None:
    cleaned = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned.is_set()
    await cancel_and_wait(None)


async def test_background_tasks_log_failures_and_close(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(logging.getLogger("test.tasks"), "job")

    async def fail() -> None:
        raise RuntimeError("boom")

    tasks.spawn(fail(), "failing")
    sleeper = tasks.spawn(asyncio.sleep(60), "sleeping")
    await asyncio.sleep(0.01)
    assert len(tasks) == 1
    assert "job failing failed" in caplog.text and "boom" in caplog.text
    await tasks.close()
    assert sleeper.cancelled() and len(tasks) == 0
