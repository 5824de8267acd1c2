"""IVR flows on real calls: a pjsua2 caller against a running ``cosmo serve``.

* RFC 4733 digits through the demo flow (``ivr_flows/main.yaml``): 2 for
  technical support, the account number; the call waits in ``support`` with
  the account and the customer found for it in the item's data, at the gold
  customers' priority.
* A post-call survey: the agent hangs up first, the caller rates the call,
  and the rating is stored with the call record.
* After hours (a calendar that is never open) the caller leaves a message:
  it is recorded until ``#`` and queued as a voicemail item.
* A flow's transfer to an outside number: the caller is bridged to a SIPp
  far end through the outbound routes.
* Hot reload during a call: a caller already in the flow finishes on the
  version it started with, a new caller gets the new one, and a broken file
  leaves the last good version serving.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.acd.test_end_to_end import NUMBER, login, set_state, short_times, wait_items
from tests.audio import dominant_frequency, read_wav
from tests.calls.test_sipp import transit_to
from tests.cosmo_server import REPO, CosmoProcess, cosmo_server
from tests.peers.common import free_port
from tests.peers.pjphone import PjPhone
from tests.peers.sipp import start_sipp_uas

pytestmark = [pytest.mark.peers]

IVR_NUMBER = "+15550100"


async def dial(server: CosmoProcess, phone: PjPhone, number: str = IVR_NUMBER) -> int:
    call = await phone.call(f"sip:{number}@127.0.0.1:{server.sip_port}")
    await phone.wait_call_state("CONFIRMED", timeout=10, call=call)
    return call


async def test_digits_through_the_demo_flow_reach_the_queue_with_the_customer(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await dial(server, caller)
        await asyncio.sleep(1.0)
        await caller.dial_dtmf("2", call=call)  # technical support (barges into the menu prompt)
        await asyncio.sleep(1.5)
        await caller.dial_dtmf("123456", call=call)  # the account number: six digits end the input
        [item] = await wait_items(server, 1, "support", timeout=30)
        data = item["data"]
        assert data["ivr"]["account"] == "123456", data
        assert data["customer"]["name"] == "Ada Byron" and data["customer"]["tier"] == "gold", data
        assert item["priority"] > 0, item
        await caller.hangup(call=call)
        await wait_items(server, 0, "support")


def flows_copy(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "ivr_flows", flows)
    return flows


TEST_FLOW = """\
name: pick
entry: menu
nodes:
  menu:
    menu:
      prompt: [main-menu]
      options:
        - {key: "1", next: to_QUEUE}
      timeout_s: 20
  to_QUEUE:
    queue: {queue: QUEUE}
"""


async def test_reload_during_a_call_keeps_its_version(tmp_path: Path) -> None:
    flows = flows_copy(tmp_path)
    (flows / "pick.yaml").write_text(TEST_FLOW.replace("QUEUE", "support"))

    def change(settings: dict[str, Any]) -> None:
        short_times()(settings)
        settings["ivr"] = {**settings.get("ivr", {}), "flows_dir": str(flows), "reload_interval_s": 0.2}
        settings["numbers"]["+15550177"] = {"trunk": "demo", "flow": "pick"}

    async with cosmo_server(tmp_path, change) as server, \
            PjPhone(name="first", workdir=tmp_path / "pja") as first, \
            PjPhone(name="second", workdir=tmp_path / "pjb") as second, \
            PjPhone(name="third", workdir=tmp_path / "pjd") as third:
        first_call = await dial(server, first, "+15550177")
        await asyncio.sleep(0.5)  # in the menu, on the version that says support
        (flows / "pick.yaml").write_text(TEST_FLOW.replace("QUEUE", "billing"))
        await asyncio.sleep(1.5)
        second_call = await dial(server, second, "+15550177")
        await asyncio.sleep(0.5)
        await first.dial_dtmf("1", call=first_call)
        await second.dial_dtmf("1", call=second_call)
        [old] = await wait_items(server, 1, "support")
        [new] = await wait_items(server, 1, "billing")
        assert old["data"]["caller"] == "first" and new["data"]["caller"] == "second", (old, new)

        (flows / "pick.yaml").write_text(TEST_FLOW.replace("QUEUE", "sales") + "  broken: {goto: nowhere}\n")
        await asyncio.sleep(1.5)
        assert "pick.yaml:" in server.log(), server.log()[-2000:]
        third_call = await dial(server, third, "+15550177")
        await asyncio.sleep(0.5)
        await third.dial_dtmf("1", call=third_call)
        await wait_items(server, 2, "billing")
        assert await wait_items(server, 0, "sales") == []
        for phone, call in ((first, first_call), (second, second_call), (third, third_call)):
            await phone.hangup(call=call)


async def test_survey_after_the_agent_hangs_up_is_stored_with_the_call(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_times(survey=True)) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        await login(server, ada, "1001")
        await set_state(server, "1001", "available")
        call = await dial(server, caller, NUMBER)  # support, whose survey_flow is the demo survey
        incoming = (await ada.wait_incoming_call(timeout=20))["call"]
        await ada.answer(200, call=incoming)
        await ada.wait_call_state("CONFIRMED", timeout=10, call=incoming)
        await asyncio.sleep(0.5)
        await ada.hangup(call=incoming)
        await asyncio.sleep(1.0)  # "please rate this call..."
        assert (await caller.calls())[0]["state"] == "CONFIRMED"
        await caller.dial_dtmf("4", call=call)
        await caller.wait_call_state("DISCONNECTED", timeout=15, call=call)  # goodbye, and Cosmo hangs up
        await server.wait_idle(10)
        extra = await cdr_extra(server)
    assert extra["survey"] == {"rating": 4}, extra
    assert extra["agent"] == "1001" and extra["agent_hangup_by"] == "callee", extra


async def cdr_extra(server: CosmoProcess) -> dict[str, Any]:
    """The ``extra`` of the one call record stored (written in batches: polled)."""
    database = server.data_dir / "cosmo.db"
    for _ in range(50):
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT extra FROM cdrs").fetchall()
        if rows:
            return json.loads(rows[0][0])  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise AssertionError("no call record stored")


TRANSFER_FLOW = """\
name: outside
entry: menu
nodes:
  menu:
    menu:
      prompt: main-menu
      options:
        - {key: "9", next: away}
      timeout_s: 20
  away:
    transfer: {number: "9${caller_digits}", prompt: transferring, on_failure: sorry}
  sorry:
    hangup: {prompt: agents-busy}
"""


async def test_a_flow_transfers_the_caller_to_an_outside_number(tmp_path: Path) -> None:
    flows = flows_copy(tmp_path)
    (flows / "outside.yaml").write_text(TRANSFER_FLOW.replace("${caller_digits}", "5550123"))
    uas_port = free_port("both")

    def change(settings: dict[str, Any]) -> None:
        transit_to(uas_port)(settings)
        settings["ivr"] = {**settings.get("ivr", {}), "flows_dir": str(flows)}
        settings["numbers"]["+15550166"] = {"trunk": "demo", "flow": "outside"}

    async with await start_sipp_uas("uas", port=uas_port, calls=1, timeout=40) as uas, \
            cosmo_server(tmp_path, change) as server, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await dial(server, caller, "+15550166")
        await asyncio.sleep(0.5)
        await caller.dial_dtmf("9", call=call)
        await asyncio.sleep(3.0)  # "transferring", then the far end answers
        status, body = await server.api("GET", "/api/calls")
        assert status == 200, body
        [bridged] = body["calls"]
        assert [leg["role"] for leg in bridged["legs"]] == ["caller", "trunk"], bridged
        await caller.hangup(call=call)
        result = await uas.wait(timeout=20)  # the far end got the call and its BYE
        assert result.ok, result.describe()


async def test_after_hours_the_caller_leaves_a_voicemail_that_is_queued(tmp_path: Path) -> None:
    def closed(settings: dict[str, Any]) -> None:
        short_times()(settings)
        settings["ivr"] = {**settings.get("ivr", {}),
                           "calendars": {"business": {"timezone": "UTC", "hours": {}}}}  # never open

    async with cosmo_server(tmp_path, closed) as server, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await dial(server, caller)
        await caller.play_tone(440, call=call)  # the message
        await asyncio.sleep(21.0)  # welcome (4 s), "we are closed" (9 s), "leave a message" (4 s), the tone, 3 s
        await caller.dial_dtmf("#", call=call)  # ends the recording
        await caller.wait_call_state("DISCONNECTED", timeout=15, call=call)  # goodbye
        [item] = await wait_items(server, 1, "support")
    assert item["channel"] == "voicemail", item
    recording = Path(item["data"]["recording"])
    assert recording.is_file() and item["data"]["duration_s"] > 0.5, item
    wav = read_wav(recording)
    assert abs(dominant_frequency(wav.mono(), wav.rate) - 440) < 10
