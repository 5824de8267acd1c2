"""The flow registry: loading a directory, hot reload, refused files, running by name."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cosmo.ivr.errors import FlowNotFound
from cosmo.ivr.interpreter import Outcome
from cosmo.ivr.port import DigitSpec, Input, PromptPart, SpeechSpec
from cosmo.ivr.registry import FlowRegistry, ReloadReport
from cosmo.ivr.settings import IvrSettings
from cosmo.ivr.simulator import SimulatedPort
from tests.ivr.helpers import REPO, keys, prompt_exists

PICK = """\
entry: menu
nodes:
  menu:
    menu: {prompt: main-menu, options: [{key: 1, next: queue}], timeout_s: 20}
  queue:
    queue: {queue: QUEUE}
"""


def write(path: Path, text: str) -> None:
    """Write and move the modification time on, so that even a same-size change is seen."""
    stamp = path.stat().st_mtime_ns + 1_000_000_000 if path.exists() else None
    path.write_text(text)
    if stamp is not None:
        os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    shutil.copytree(REPO / "ivr_flows", directory)
    write(directory / "pick.yaml", PICK.replace("QUEUE", "support"))
    return directory


def registry_for(directory: Path, **settings: Any) -> FlowRegistry:
    return FlowRegistry(IvrSettings(flows_dir=directory, **settings), prompt_exists=prompt_exists)


def test_load_a_directory(flows: Path) -> None:
    registry = registry_for(flows)
    report = registry.load()
    assert report == ReloadReport(loaded=("main", "pick", "survey"))
    assert registry.names() == ["main", "pick", "survey"]
    assert "main" in registry and "nothing" not in registry
    main = registry.get("main")
    assert main is not None and main.name == "main" and main.entry == "welcome"
    assert registry.problems == ()
    assert registry.reload() == ReloadReport()  # nothing changed: nothing read


def test_changes_swap_refuse_and_remove(flows: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_for(flows)
    registry.load()
    first = registry.get("pick")
    write(flows / "pick.yaml", PICK.replace("QUEUE", "billing"))
    assert registry.reload() == ReloadReport(loaded=("pick",))
    second = registry.get("pick")
    assert second is not None and second is not first and second.digest != first.digest  # type: ignore[union-attr]

    caplog.set_level(logging.ERROR, "cosmo.ivr.registry")
    write(flows / "pick.yaml", PICK.replace("QUEUE", "sales") + "  broken: {goto: nowhere}\n")
    assert registry.reload() == ReloadReport(refused=("pick",))
    assert registry.get("pick") is second  # the last good version keeps serving
    assert [str(p).replace(str(flows), "F") for p in registry.problems] == [
        "F/pick.yaml:7:3: warning: node 'broken' is never reached from entry 'menu'",
        "F/pick.yaml:7:18: error: unknown node 'nowhere'",
    ]
    assert "IVR flow pick refused (1 error), the previous version keeps serving:" in caplog.text
    assert f"{flows}/pick.yaml:7:18: error: unknown node 'nowhere'" in caplog.text
    assert registry.reload() == ReloadReport()  # a refused file is read again only when it changes

    write(flows / "pick.yaml", PICK.replace("QUEUE", "sales"))
    assert registry.reload() == ReloadReport(loaded=("pick",))
    assert registry.problems == ()

    (flows / "pick.yaml").unlink()
    assert registry.reload() == ReloadReport(removed=("pick",))
    assert registry.get("pick") is None and registry.names() == ["main", "survey"]


def test_a_new_file_that_is_broken_is_not_served(flows: Path) -> None:
    registry = registry_for(flows)
    registry.load()
    write(flows / "extra.yaml", "entry: a\nnodes:\n  a:\n    paly: {}\n")
    assert registry.reload() == ReloadReport(refused=("extra",))
    assert registry.get("extra") is None


def test_refused_files_are_checked_again_when_flows_come(flows: Path) -> None:
    registry = registry_for(flows)
    write(flows / "caller.yaml", "entry: a\nnodes:\n  a:\n    call: {flow: helper, next: b}\n  b:\n    hangup: {}\n")
    registry.load()
    assert registry.get("caller") is None
    assert [p.message for p in registry.problems] == ["unknown flow 'helper'"]
    write(flows / "helper.yaml", "entry: a\nnodes:\n  a:\n    return:\n")
    assert registry.reload() == ReloadReport(loaded=("helper", "caller"))
    assert registry.get("caller") is not None


class HeldPort(SimulatedPort):
    """A caller who waits in the menu until told to press a key."""

    def __init__(self) -> None:
        super().__init__()
        self.in_menu = asyncio.Event()
        self.press = asyncio.Event()

    async def listen(self, parts: Sequence[PromptPart], *, digits: DigitSpec | None = None,
                     speech: SpeechSpec | None = None, barge_in: bool = True) -> Input:
        self.in_menu.set()
        await self.press.wait()
        return Input("digits", "1")


async def test_a_running_call_keeps_its_version(flows: Path) -> None:
    registry = registry_for(flows)
    registry.load()
    held = HeldPort()
    running = asyncio.create_task(registry.run("pick", held))
    await asyncio.wait_for(held.in_menu.wait(), 5)
    write(flows / "pick.yaml", PICK.replace("QUEUE", "billing"))
    registry.reload()
    later = SimulatedPort(keys("1"))
    result = await registry.run("pick", later)
    assert later.queued is not None and later.queued.queue == "billing"
    held.press.set()
    result = await asyncio.wait_for(running, 5)
    assert result.outcome is Outcome.QUEUED
    assert held.queued is not None and held.queued.queue == "support"
    await registry.close()


async def test_start_watches_and_close_stops(flows: Path) -> None:
    registry = registry_for(flows, reload_interval_s=0.05)
    await registry.start()
    await registry.start()  # idempotent
    assert registry.get("pick") is not None
    write(flows / "pick.yaml", PICK.replace("QUEUE", "billing"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        step = registry.get("pick")
        if step is not None and step.nodes["queue"].queue == "billing":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the change was not picked up")
    await registry.close()
    await registry.close()  # idempotent
    write(flows / "pick.yaml", PICK.replace("QUEUE", "sales"))
    await asyncio.sleep(0.2)
    assert registry.get("pick").nodes["queue"].queue == "billing"  # type: ignore[union-attr]


async def test_run_by_name(flows: Path) -> None:
    sessions: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()
        sessions.append(session)
        return session

    registry = FlowRegistry(IvrSettings(flows_dir=flows), http_session_factory=factory)
    registry.load()
    with pytest.raises(FlowNotFound, match="no IVR flow 'nothing'"):
        await registry.run("nothing", SimulatedPort())
    sim = SimulatedPort(keys("5"))
    result = await registry.run("survey", sim)
    assert result.outcome is Outcome.HANGUP and sim.data == {"survey": {"rating": 5}}
    assert len(sessions) == 1 and not sessions[0].closed
    await registry.close()
    assert sessions[0].closed


def test_missing_directory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_for(tmp_path / "nowhere")
    assert registry.load() == ReloadReport()
    assert registry.names() == []
    assert "IVR flows: no directory" in caplog.text


def test_new_settings_check_every_flow_again(flows: Path) -> None:
    registry = registry_for(flows)
    registry.load()
    main = registry.get("main")
    # A configuration reload without the calendar main.yaml names: refused, the last good version serves.
    report = registry.reconfigure(IvrSettings(flows_dir=flows, calendars={}))
    assert report.refused == ("main",) and registry.get("main") is main
    assert [p.message for p in registry.problems if p.severity == "error"] == ["unknown calendar 'business'"]
    report = registry.reconfigure(IvrSettings(flows_dir=flows))
    assert "main" in report.loaded and registry.problems == ()
