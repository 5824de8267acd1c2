"""The ACD end to end: real phones against a running ``cosmo serve`` on 127.0.0.1.

* two pjsua2 agents log in through the API; a pjsua2 caller dials the demo
  number; the longest-idle skilled agent's phone rings, answers, both sides
  hear each other's tone; the agent is busy with the item, then in wrap-up,
  then available again;
* RONA: an agent whose phone rings out goes not ready (``no-answer``), the
  call goes to the next agent and keeps its place ahead of a later caller;
* restart: durable items (a voicemail left by a caller) and agent states are
  the same after ``kill -9`` and a new start on the same data directory;
* bad input over the API gets a 4xx with a message and changes nothing;
* a late answer: a SIPp phone that answers after its offer was withdrawn
  gets BYE, and the call stays with the agent who has it.

Waits are bounded polls of the API or of the phones' events; no assertion
depends on how long something took.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.audio import dominant_frequency, read_wav, rms_dbfs
from tests.cosmo_server import TOKEN, CosmoProcess, cosmo_server, stop_server
from tests.peers.pjphone import PjPhone
from tests.peers.sipp import SCENARIO_DIR, SippUas, start_sipp_uas

pytestmark = [pytest.mark.peers]

NUMBER = "+15550101"  # the demo number straight to queue support (no IVR)
CALLER_TONE = 440
AGENT_TONE = 1000


# ---- helpers -------------------------------------------------------------------------------


def short_times(*, ring_timeout_s: float = 4, wrap_up_s: int = 2, survey: bool = False) -> Any:
    """A config change: support's timers short enough for a test, no recording prompt,
    and no post-call survey unless ``survey``."""

    def change(settings: dict[str, Any]) -> None:
        support = next(q for q in settings["queues"] if q["name"] == "support")
        support["ring_timeout_s"] = ring_timeout_s
        support["wrap_up_s"] = wrap_up_s
        support["record"] = False
        support.pop("record_announcement", None)
        if not survey:
            support.pop("survey_flow", None)

    return change


async def agent(server: CosmoProcess, extension: str) -> dict[str, Any]:
    status, body = await server.api("GET", f"/api/agents/{extension}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def set_state(server: CosmoProcess, extension: str, state: str, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"state": state}
    if reason is not None:
        body["reason"] = reason
    status, answer = await server.api("POST", f"/api/agents/{extension}/state", body)
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


async def items(server: CosmoProcess, queue: str | None = None) -> list[dict[str, Any]]:
    status, body = await server.api("GET", "/api/items" + (f"?queue={queue}" if queue else ""))
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def wait_agent(server: CosmoProcess, extension: str, timeout: float = 15.0, **fields: Any) -> dict[str, Any]:
    """Poll ``GET /api/agents/{ext}`` until ``fields`` match; the last view on a time-out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await agent(server, extension)
        if all(view.get(k) == v for k, v in fields.items()):
            return view
        if loop.time() > deadline:
            raise AssertionError(f"agent {extension}: wanted {fields} within {timeout} s, last {view}")
        await asyncio.sleep(0.1)


async def wait_items(server: CosmoProcess, count: int, queue: str | None = None,
                     timeout: float = 15.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found := await items(server, queue)) != count:
        if loop.time() > deadline:
            raise AssertionError(f"wanted {count} waiting items within {timeout} s, got {found}")
        await asyncio.sleep(0.1)
    return found


def tone_of(path: Path, *, skip_s: float = 0.5) -> tuple[float, float]:
    """(dominant frequency, level in dBFS) of a recording, its first ``skip_s`` left out."""
    wav = read_wav(path)
    samples = wav.mono()[int(skip_s * wav.rate):]
    return dominant_frequency(samples, wav.rate), rms_dbfs(samples)


async def login(server: CosmoProcess, phone: PjPhone, extension: str) -> None:
    await phone.register(extension, f"secret{extension}", f"sip:127.0.0.1:{server.sip_port}")
    await server.wait_registered(extension)


# ---- a call reaches the longest-idle agent --------------------------------------------------


async def test_longest_idle_agent_answers_and_both_hear_each_other(tmp_path: Path) -> None:
    heard_by_caller = tmp_path / "caller-heard.wav"
    heard_by_agent = tmp_path / "agent-heard.wav"
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="agent-1002", workdir=tmp_path / "pj2") as grace, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        await login(server, ada, "1001")
        await login(server, grace, "1002")
        # 1002 becomes available first, so it has been idle longest; both have support >= 3.
        await set_state(server, "1002", "available")
        await set_state(server, "1001", "available")

        call = await caller.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        await caller.play_tone(CALLER_TONE, call=call)
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        incoming = (await grace.wait_incoming_call(timeout=20))["call"]
        await grace.play_tone(AGENT_TONE, call=incoming)
        await grace.answer(200, call=incoming)
        await grace.wait_call_state("CONFIRMED", timeout=10, call=incoming)

        # The screen: 1002 is busy with the caller's item; 1001 is still waiting for work.
        busy = await wait_agent(server, "1002", state="busy")
        assert len(busy["items"]) == 1 and busy["offer"] is None, busy
        assert (await agent(server, "1001"))["state"] == "available"
        assert await items(server, "support") == []

        await caller.record(heard_by_caller, call=call)
        await grace.record(heard_by_agent, call=incoming)
        await asyncio.sleep(2.5)
        await caller.stop_record(call=call)
        await grace.stop_record(call=incoming)

        await caller.hangup(call=call)
        await grace.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        wrap_up = await wait_agent(server, "1002", state="wrap_up")
        assert wrap_up["items"] == [] and wrap_up["wrap_up_until"] is not None, wrap_up
        await wait_agent(server, "1002", state="available")
        # 1001's phone never rang.
        assert ada.events.take("incoming_call") is None

    caller_freq, caller_level = tone_of(heard_by_caller)
    agent_freq, agent_level = tone_of(heard_by_agent)
    assert abs(caller_freq - AGENT_TONE) < 10 and caller_level > -40, (caller_freq, caller_level)
    assert abs(agent_freq - CALLER_TONE) < 10 and agent_level > -40, (agent_freq, agent_level)


# ---- RONA ------------------------------------------------------------------------------------

RONA_TIMEOUT_S = 6  # long enough for the second caller to queue behind the first while 1002 rings


async def test_agent_who_does_not_answer_goes_not_ready_and_the_call_keeps_its_place(tmp_path: Path) -> None:
    heard_by_agent = tmp_path / "agent-heard.wav"
    async with cosmo_server(tmp_path, short_times(ring_timeout_s=RONA_TIMEOUT_S)) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="agent-1002", workdir=tmp_path / "pj2") as grace, \
            PjPhone(name="first", workdir=tmp_path / "pja") as first, \
            PjPhone(name="second", workdir=tmp_path / "pjb") as second:
        await login(server, ada, "1001")
        await login(server, grace, "1002")
        await set_state(server, "1001", "not_ready", "break")
        await set_state(server, "1002", "available")

        first_call = await first.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        await first.play_tone(CALLER_TONE, call=first_call)
        await first.wait_call_state("CONFIRMED", timeout=10, call=first_call)
        # The second caller hears the same welcome prompt, a moment later.
        second_call = await second.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        await second.play_tone(660, call=second_call)
        await second.wait_call_state("CONFIRMED", timeout=10, call=second_call)

        ringing = await grace.wait_incoming_call(timeout=20)  # 1002 rings, and nobody answers
        offered = await wait_agent(server, "1002", state="reserved")
        assert offered["offer"] is not None, offered
        # While 1002 rings, only the second caller is waiting for routing.
        (queued,) = await wait_items(server, 1, "support")
        assert (queued["data"]["caller"], queued["position"]) == ("second", 1), queued

        # The ring timeout: 1002's phone is cancelled, 1002 is not ready (no-answer).
        await grace.wait_call_state("DISCONNECTED", timeout=15, call=ringing["call"])
        rona = await wait_agent(server, "1002", state="not_ready")
        assert rona["reason"] == "no-answer" and rona["offer"] is None and rona["items"] == [], rona
        # The first caller is back in its place, ahead of the second.
        queued = await wait_items(server, 2, "support")
        assert [(i["data"]["caller"], i["state"]) for i in queued] == [("first", "queued"), ("second", "queued")]
        assert [item["position"] for item in queued] == [1, 2], queued
        assert queued[0]["id"] == offered["offer"], (queued, offered)

        # The next agent gets the first caller.
        await set_state(server, "1001", "available")
        incoming = (await ada.wait_incoming_call(timeout=10))["call"]
        await ada.answer(200, call=incoming)
        await ada.wait_call_state("CONFIRMED", timeout=10, call=incoming)
        busy = await wait_agent(server, "1001", state="busy")
        assert busy["items"] == [offered["offer"]], busy
        (still_waiting,) = await wait_items(server, 1, "support")
        assert still_waiting["data"]["caller"] == "second", still_waiting
        await ada.record(heard_by_agent, call=incoming)
        await asyncio.sleep(2.0)
        await ada.stop_record(call=incoming)
        # 1002 (not ready) was not rung again.
        assert grace.events.take("incoming_call") is None

        await first.hangup(call=first_call)
        await second.hangup(call=second_call)
        await ada.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        await wait_items(server, 0, "support")

    freq, level = tone_of(heard_by_agent)
    assert abs(freq - CALLER_TONE) < 10 and level > -40, (freq, level)


# ---- restart -----------------------------------------------------------------------------------


def voicemail_when_nobody_is_in(settings: dict[str, Any]) -> None:
    short_times()(settings)
    support = next(q for q in settings["queues"] if q["name"] == "support")
    support["no_agents_target"] = "voicemail:support"


async def leave_voicemail(server: CosmoProcess, phone: PjPhone) -> None:
    """Call the demo number with nobody logged in, speak after the tone and press # until Cosmo hangs up."""
    call = await phone.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
    await phone.play_tone(CALLER_TONE, call=call)
    await phone.wait_call_state("CONFIRMED", timeout=10, call=call)
    for _ in range(60):  # '#' pressed during the prompts is not heard; the recording ends on one after the tone
        await asyncio.sleep(1.0)
        if phone.events.take("call_state", {"call": call, "state": "DISCONNECTED"}) is not None:
            return
        await phone.dial_dtmf("#", call=call)
    raise AssertionError(f"{phone.name}: Cosmo did not end the voicemail call")


async def test_durable_items_and_agent_states_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    async with cosmo_server(tmp_path / "first", voicemail_when_nobody_is_in, data_dir=data_dir) as server, \
            PjPhone(name="alice", workdir=tmp_path / "pja") as alice, \
            PjPhone(name="bob", workdir=tmp_path / "pjb") as bob, \
            PjPhone(name="agent-1004", workdir=tmp_path / "pj4") as katherine:
        await leave_voicemail(server, alice)
        await leave_voicemail(server, bob)
        before = await wait_items(server, 2, "support")
        assert [(i["channel"], i["data"]["caller"]) for i in before] == [("voicemail", "alice"),
                                                                          ("voicemail", "bob")], before
        assert all(Path(i["data"]["recording"]).is_file() for i in before), before

        await set_state(server, "1003", "not_ready", "lunch")
        await login(server, katherine, "1004")
        await set_state(server, "1004", "available")
        agents_before = {a["extension"]: (a["state"], a["reason"]) for a in await all_agents(server)}
        assert agents_before["1003"] == ("not_ready", "lunch") and agents_before["1004"] == ("available", None)
        before = await items(server)

        await stop_server(server, hard=True)
        assert server.proc.returncode == -9

    async with cosmo_server(tmp_path / "second", voicemail_when_nobody_is_in, data_dir=data_dir) as server:
        after = await items(server)
        agents_after = {a["extension"]: (a["state"], a["reason"]) for a in await all_agents(server)}
    assert agents_after == agents_before
    assert [without_wait(i) for i in after] == [without_wait(i) for i in before]


async def all_agents(server: CosmoProcess) -> list[dict[str, Any]]:
    status, body = await server.api("GET", "/api/agents")
    assert status == 200, body
    return body["agents"]  # type: ignore[no-any-return]


def without_wait(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "wait_s"}


# ---- bad input ------------------------------------------------------------------------------------


async def test_refused_state_changes_get_a_4xx_and_change_nothing(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path) as server, PjPhone(name="agent-1001", workdir=tmp_path / "pj") as ada:
        await login(server, ada, "1001")
        await set_state(server, "1001", "available")
        before = await agent(server, "1001")

        async def refused(path: str, body: object, status: int, error: str) -> None:
            got, answer = await server.api("POST", path, body)
            assert (got, answer) == (status, {"error": error})
            assert await agent(server, "1001") == before

        await refused("/api/agents/1001/state", {"state": "wrap_up"}, 400,
                      "'state' must be one of available, not_ready, logged_out, got 'wrap_up'")
        await refused("/api/agents/1001/state", {"state": "not_ready", "reason": "nap"}, 422,
                      "agent 1001: unknown not-ready reason 'nap' (known: after-call, break, lunch, meeting, "
                      "no-answer, training)")
        await refused("/api/agents/1001/state", {"state": "not_ready"}, 422, "agent 1001: not_ready needs a reason")
        await refused("/api/agents/9999/state", {"state": "available"}, 404, "unknown agent '9999'")
        status, answer = await server.api("GET", "/api/agents/9999")
        assert (status, answer) == (404, {"error": "unknown agent '9999'"})
        status, answer = await server.api("GET", "/api/items?queue=nope")
        assert (status, answer) == (404, {"error": "unknown queue 'nope'"})

        # 1002 has no phone registered.
        status, answer = await server.api("POST", "/api/agents/1002/state", {"state": "available"})
        assert (status, answer) == (409, {"error": "agent 1002: no phone registered; register the softphone "
                                                   "before going available"})
        assert (await agent(server, "1002"))["state"] == "logged_out"

        # Malformed JSON.
        status, answer = await asyncio.to_thread(raw_post, server, "/api/agents/1001/state", b"{state: available")
        assert (status, answer) == (400, {"error": "body is not valid JSON"})
        assert await agent(server, "1001") == before


def raw_post(server: CosmoProcess, path: str, data: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", data=data, method="POST")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---- a late answer -------------------------------------------------------------------------------


def md5_first_short_ring(settings: dict[str, Any]) -> None:
    short_times(ring_timeout_s=4)(settings)
    # SIPp 3.6 computes only MD5 digests and answers the topmost challenge.
    settings["sip"]["auth"]["algorithms"] = ["MD5", "SHA-256"]


async def sipp_phone(server: CosmoProcess, extension: str, workdir: Path) -> SippUas:
    """SIPp registered as ``extension``'s phone; it answers a call just as the CANCEL comes."""
    return await start_sipp_uas(
        "register_and_wait",
        extra_args=[server.sip_target, "-s", extension, "-au", extension, "-ap", f"secret{extension}",
                    "-oocsf", str(SCENARIO_DIR / "uas_answer_after_cancel.xml"), "-trace_logs",
                    "-log_file", str(workdir / "ooc.log")],
        timeout=120,
        workdir=workdir,
    )


async def wait_for_text(path: Path, text: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        if loop.time() > deadline:
            raise AssertionError(f"{path}: no {text!r} within {timeout} s")
        await asyncio.sleep(0.1)


async def test_a_phone_that_answers_after_the_offer_was_withdrawn_gets_bye(tmp_path: Path) -> None:
    heard_by_caller = tmp_path / "caller-heard.wav"
    sipp_dir = tmp_path / "sipp"
    async with cosmo_server(tmp_path, md5_first_short_ring) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as ada, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        late = await sipp_phone(server, "1002", sipp_dir)
        try:
            await server.wait_registered("1002")
            await login(server, ada, "1001")
            await set_state(server, "1002", "available")  # longest idle: offered first
            await set_state(server, "1001", "available")

            call = await caller.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
            await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
            # 1002 rings out and the call goes to 1001, who answers.
            incoming = (await ada.wait_incoming_call(timeout=20))["call"]
            await ada.play_tone(AGENT_TONE, call=incoming)
            await ada.answer(200, call=incoming)
            await ada.wait_call_state("CONFIRMED", timeout=10, call=incoming)
            # 1002's 200 crossed the CANCEL: Cosmo ended that call with BYE.
            await wait_for_text(sipp_dir / "ooc.log", "late answer ended by BYE", timeout=15)
            rona = await wait_agent(server, "1002", state="not_ready")
            assert rona["reason"] == "no-answer" and rona["items"] == [] and rona["offer"] is None, rona

            # The call stays with 1001 alone.
            busy = await wait_agent(server, "1001", state="busy")
            assert len(busy["items"]) == 1, busy
            assert (await agent(server, "1002"))["items"] == []
            status, calls = await server.api("GET", "/api/calls")
            assert status == 200 and len(calls["calls"]) == 1, calls
            await caller.record(heard_by_caller, call=call)
            await asyncio.sleep(2.0)
            await caller.stop_record(call=call)
            await caller.hangup(call=call)
            await ada.wait_call_state("DISCONNECTED", timeout=10, call=incoming)
        finally:
            await late.stop(grace=1.0)
    freq, level = tone_of(heard_by_caller)
    assert abs(freq - AGENT_TONE) < 10 and level > -40, (freq, level)
