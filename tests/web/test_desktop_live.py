"""The agent desktop on a running ``cosmo serve``: real phones, the demo IVR, Chromium.

A pjsua2 caller goes through the demo IVR (``ivr_flows/main.yaml``: 2 for
technical support, then the account number 123456); the agent 1001, signed
in on the desktop with a pjsua2 phone registered, gets the screen-pop with
the demo customer's name and the account entered **before** the phone
receives its INVITE (the page's clock against the phone's, both wall clocks
of this machine).  The agent answers on the phone; the desktop follows.
Hold and resume from the desktop reach the phone as re-INVITEs (the caller
hears music, then the agent's tone again), hang-up from the desktop ends the
call, and the disposition saved lands in the customer's history.  Between
them the agent consults a colleague (attended transfer) and goes back to
the caller.  The
supervisor's wallboard counts the caller while they wait.

Needs Debian's ``chromium``, the ``playwright`` package and ``pjsua2``; skipped without them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.acd.test_end_to_end import (
    AGENT_TONE,
    CALLER_TONE,
    login,
    short_times,
    tone_of,
    wait_agent,
    wait_items,
)
from tests.cosmo_server import cosmo_server
from tests.peers.pjphone import PjPhone
from tests.web.test_cti_harness import CtiClient
from tests.web.test_desktop_browser import CHROMIUM, browser, shot, signed_in

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

__all__ = ["browser"]  # the fixture, used by name

IVR_NUMBER = "+15550100"


async def test_pop_before_the_phone_rings_then_hold_resume_hang_up_and_disposition(
        tmp_path: Path, browser: Any) -> None:
    on_hold = tmp_path / "caller-on-hold.wav"
    resumed = tmp_path / "caller-resumed.wav"
    async with cosmo_server(tmp_path, short_times(ring_timeout_s=15, wrap_up_s=60)) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as phone, \
            PjPhone(name="agent-1002", workdir=tmp_path / "pj2") as colleague, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        url = f"http://127.0.0.1:{server.http_port}"
        await login(server, phone, "1001")
        await login(server, colleague, "1002")
        supervisor = await signed_in(browser, url, "supervisor", "supervisor", "/wallboard")
        await supervisor.wait_for_selector("#link:has-text('Live')")
        desk = await signed_in(browser, url, "1001", "agent1001", "/desk")
        await desk.wait_for_selector("#link:has-text('Live')")

        # The caller picks technical support and enters the account while nobody is available.
        call = await caller.call(f"sip:{IVR_NUMBER}@127.0.0.1:{server.sip_port}")
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        await asyncio.sleep(1.0)
        await caller.dial_dtmf("2", call=call)
        await asyncio.sleep(1.5)
        await caller.dial_dtmf("123456", call=call)
        await supervisor.wait_for_selector("[data-queue=support] .waiting:text-is('1')", timeout=30_000)
        await caller.play_tone(CALLER_TONE, call=call)

        # Available (G): the pop is on screen before the phone gets its INVITE.
        await desk.keyboard.press("g")
        incoming = await phone.wait_incoming_call(timeout=20)
        await desk.wait_for_selector("#pop-name:has-text('Ada Byron')")
        await desk.wait_for_selector("#ivr:has-text('123456')")
        popped_at = await desk.evaluate("window.cosmoDesk.desk.poppedAt") / 1000
        print(f"pop on screen {1000 * (incoming['ts'] - popped_at):.1f} ms before the phone received its INVITE")
        assert popped_at < incoming["ts"]
        await supervisor.wait_for_selector("[data-queue=support] .waiting:text-is('0')")
        await shot(desk, "live-desk-offer")

        # Answered on the phone; the desktop follows.
        agent_call = incoming["call"]
        await phone.play_tone(AGENT_TONE, call=agent_call)
        await phone.answer(200, call=agent_call)
        await phone.wait_call_state("CONFIRMED", timeout=10, call=agent_call)
        await wait_agent(server, "1001", state="busy")
        await desk.wait_for_selector("#hold:has-text('Hold')")

        # Hold from the desktop: the caller hears the music, not the agent; resume brings the agent back.
        await desk.keyboard.press("h")
        await desk.wait_for_selector("#hold:has-text('Resume')")
        await caller.record(on_hold, call=call)
        await asyncio.sleep(2.0)
        await caller.stop_record(call=call)
        held_freq, held_level = tone_of(on_hold)
        assert abs(held_freq - AGENT_TONE) > 20 and held_level > -45, (held_freq, held_level)
        await desk.keyboard.press("h")
        await desk.wait_for_selector("#hold:has-text('Hold')")
        await asyncio.sleep(0.5)
        await caller.record(resumed, call=call)
        await asyncio.sleep(1.5)
        await caller.stop_record(call=call)
        back_freq, back_level = tone_of(resumed)
        assert abs(back_freq - AGENT_TONE) < 10 and back_level > -40, (back_freq, back_level)

        # Consult a colleague (T, agent 1002, "Consult first"), then go back to the caller.
        await desk.keyboard.press("t")
        await desk.select_option("#transfer-kind", "agent")
        await desk.select_option("#transfer-target", "1002")
        await desk.click("#transfer-consult")
        consulted = (await colleague.wait_incoming_call(timeout=20))["call"]
        await colleague.answer(200, call=consulted)
        await colleague.wait_call_state("CONFIRMED", timeout=10, call=consulted)
        await desk.wait_for_selector("text=Consulting — the caller is on hold.")
        await shot(desk, "live-desk-consulting")
        await desk.click("button:has-text('Back to caller')")
        await colleague.wait_call_state("DISCONNECTED", timeout=10, call=consulted)
        await desk.wait_for_selector("#hold:has-text('Hold')")

        # Hang up from the desktop (X): both phones see the end; wrap-up with a disposition.
        await desk.keyboard.press("x")
        await phone.wait_call_state("DISCONNECTED", timeout=10, call=agent_call)
        await caller.wait_call_state("DISCONNECTED", timeout=10, call=call)
        await desk.wait_for_selector("#wrap-card:not([hidden])")
        await desk.keyboard.press("1")
        await desk.fill("#wrap-notes", "Balance explained; statement sent by e-mail.")
        await shot(desk, "live-desk-wrap-up")
        await desk.click("#wrap-ready")
        await desk.wait_for_selector("#wrap-card", state="hidden")  # the disposition is stored
        await desk.wait_for_selector("#state-select.presence-available")

        # The interaction is in the customer's history, with what the agent wrote.
        found = await desk.evaluate("fetch('/ui/customers?q=123456').then(r => r.json())")
        [ada] = found["customers"]
        customer = await desk.context.new_page()
        await customer.goto(f"{url}/customers/{ada['id']}")
        await customer.wait_for_selector("#history:has-text('statement sent by e-mail')")
        await shot(customer, "live-customer")


async def test_reject_from_the_desktop_stops_the_ringing_and_requeues_the_call(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_times(ring_timeout_s=15)) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pj1") as phone, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        url = f"http://127.0.0.1:{server.http_port}"
        await login(server, phone, "1001")
        async with session.post(f"{url}/ui/login", json={"username": "1001", "password": "agent1001"}) as response:
            assert response.status == 200
        desk = await CtiClient.connect(session, f"ws://127.0.0.1:{server.http_port}/cti", origin=url)
        await desk.hello()
        await desk.send({"type": "state", "id": 1, "state": "available"})
        call = await caller.call(f"sip:+15550101@127.0.0.1:{server.sip_port}")
        offer = await desk.expect("offer", timeout=20)
        incoming = await phone.wait_incoming_call(timeout=10)
        await desk.send({"type": "reject", "id": 2, "item_id": offer["item_id"]})
        await desk.expect("ack", re=2)
        await phone.wait_call_state("DISCONNECTED", timeout=10, call=incoming["call"])
        [waiting] = await wait_items(server, 1, "support")
        assert waiting["id"] == offer["item_id"]
        view = await wait_agent(server, "1001", state="not_ready")
        assert view["reason"] == "no-answer", view
        await caller.hangup(call=call)
        await desk.close()
