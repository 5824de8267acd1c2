"""The CTI socket against a real server, a real ACD on SQLite and the event bus.

Bad input (not JSON, unknown types, a role's forbidden command, someone else's
call) gets an ``error`` and changes nothing; floods are throttled and closed;
a silent socket is closed and the agent's state follows the disconnect policy;
a reconnecting desktop gets what it missed, or a snapshot; the screen-pop is on
the desktop before ``pop()`` returns; the wallboard is pushed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cosmo.events.events import CallHeld
from cosmo.store.customers import InteractionRecord
from cosmo.web.cti_streams import CLOSE_FLOOD, CLOSE_HEARTBEAT, CLOSE_SESSION
from tests.web.test_cti_harness import API_TOKEN, CtiClient, Harness, harness


async def available(h: Harness, username: str) -> CtiClient:
    client = await h.cti(username)
    reply = await client.command({"type": "state", "state": "available"})
    assert reply["type"] == "ack", reply
    await client.expect("agent_state", extension=username)
    return client


async def answered(h: Harness, client: CtiClient, **call: Any) -> tuple[Any, dict[str, Any]]:
    item = await h.call(**call)
    offer = await client.expect("offer", item_id=item.id)
    reply = await client.command({"type": "answer", "item_id": item.id})
    assert reply["type"] == "ack", reply
    await client.expect("assigned", item_id=item.id)
    return item, offer


async def test_bad_messages_get_errors_and_change_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await h.cti("1001")
        before = h.acd.agent_view("1001")

        async def refused(text: str, status: int, message: str) -> None:
            await agent.ws.send_str(text)
            error = await agent.expect("error")
            assert (error["status"], error["message"]) == (status, message)

        await refused("{not json", 400, "message is not valid JSON")
        await refused("[1, 2]", 400, "message must be a JSON object")
        await refused('{"id": 7}', 400, "message has no 'type'")
        await refused('{"type": "teleport", "id": 8}', 400, "unknown message type 'teleport'")
        await refused('{"type": "hold", "id": 9}', 422, "hold: call_id: Field required")
        await refused('{"type": "state", "state": "asleep"}', 422,
                      "state: state: Input should be 'available', 'not_ready' or 'logged_out'")
        await refused('{"type": "state", "state": "available", "extra": 1}', 422,
                      "state: extra: Extra inputs are not permitted")
        await refused('{"type": "state", "state": "not_ready", "reason": "napping"}', 422,
                      "agent 1001: unknown not-ready reason 'napping' (known: after-call, break, lunch, meeting, "
                      "no-answer, training)")
        await agent.ws.send_bytes(b"\x00\x01")
        error = await agent.expect("error")
        assert error["message"] == "text frames only (JSON)"
        reply = await agent.command({"type": "wrap_up", "item_id": "nothing", "disposition": "resolved"})
        assert (reply["status"], reply["message"]) == (404, "no finished work nothing of yours to wrap up")
        assert h.acd.agent_view("1001") == before
        assert h.controls.done == []
        await agent.close()


async def test_roles_are_checked_on_every_message(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        supervisor = await h.cti("sup")
        assert supervisor.welcome["stream"] == "wallboard"
        for message in ({"type": "state", "state": "available"}, {"type": "answer", "item_id": "x"},
                        {"type": "dial", "number": "+15550199"}):
            reply = await supervisor.command(message)
            assert (reply["status"], reply["message"]) == (403, f"supervisor may not send {message['type']!r}")
        agent = await h.cti("1001")
        supervising: list[dict[str, Any]] = [{"type": "agent_state", "extension": "1002", "state": "available"},
                                             {"type": "reprioritise", "item_id": "x", "priority": 5},
                                             {"type": "move", "item_id": "x", "queue": "billing"}]
        for message in supervising:
            reply = await agent.command(message)
            assert (reply["status"], reply["message"]) == (403, f"agent may not send {message['type']!r}")
        reply = await agent.command({"type": "hello", "extension": "1002"})
        assert (reply["status"], reply["message"]) == (403, "agent 1001 may not watch agent 1002's desk")
        async with aiohttp.ClientSession() as session:
            crm = await CtiClient.connect(session, h.ws_url, headers={"Authorization": f"Bearer {API_TOKEN}"})
            assert crm.welcome["user"]["role"] == "integration" and crm.welcome["stream"] == "feed"
            reply = await crm.command({"type": "hangup", "call_id": "call-1"})
            assert (reply["status"], reply["message"]) == (403, "integration may not send 'hangup'")
            await crm.close()
        assert h.acd.agent_view("1002")["state"] == "logged_out"
        assert h.controls.done == []
        await supervisor.close()
        await agent.close()


async def test_commands_on_someone_elses_call_or_offer_are_refused(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        ada = await available(h, "1001")
        grace = await available(h, "1002")
        item = await h.call()
        offered_to = "1001" if h.acd.agent_view("1001")["offer"] == item.id else "1002"
        owner, other = (ada, grace) if offered_to == "1001" else (grace, ada)
        await owner.expect("offer", item_id=item.id)
        reply = await other.command({"type": "answer", "item_id": item.id})
        assert (reply["status"], reply["message"]) == (403, f"item {item.id} is not offered to you")
        reply = await owner.command({"type": "answer", "item_id": item.id})
        assert reply["type"] == "ack"
        for message in ({"type": "hangup", "call_id": item.id}, {"type": "hold", "call_id": item.id},
                        {"type": "transfer", "call_id": item.id, "kind": "queue", "target": "billing"},
                        {"type": "consult", "call_id": item.id, "kind": "agent", "target": "1003"},
                        {"type": "complete_transfer", "call_id": item.id}):
            reply = await other.command(message)
            assert (reply["status"], reply["message"]) == (403, f"call {item.id} is not yours")
        assert [d[0] for d in h.controls.done] == ["answer"]
        assert h.acd.agent_view(offered_to)["state"] == "busy"
        # The owner's commands go through; a refusal by call control comes back as an error.
        reply = await owner.command({"type": "transfer", "call_id": item.id, "kind": "queue", "target": "nowhere"})
        assert (reply["status"], reply["message"]) == (404, "no queue nowhere")
        reply = await owner.command({"type": "consult", "call_id": item.id, "kind": "agent", "target": "1003"})
        assert reply["type"] == "ack"
        reply = await owner.command({"type": "cancel_transfer", "call_id": item.id})
        assert reply["type"] == "ack"
        assert h.controls.done[-2:] == [("consult", offered_to, item.id, "agent", "1003"),
                                        ("cancel_transfer", offered_to, item.id)]
        await ada.close()
        await grace.close()


async def test_a_flood_is_throttled_then_closed(tmp_path: Path) -> None:
    web = {"rate_limit": {"messages_per_s": 5, "burst": 5, "close_after": 40}}
    async with harness(tmp_path, web=web) as h:
        agent = await h.cti("1001")
        for _ in range(10):
            await agent.send({"type": "pong"})
        error = await agent.expect("error", status=429)
        assert error["message"] == "too many messages; slow down (messages are being dropped)"
        # Dropped: a state change sent during the flood did not happen.
        await agent.send({"type": "state", "state": "available", "id": "lost"})
        await asyncio.sleep(0.3)
        assert h.acd.agent_view("1001")["state"] == "logged_out"
        for _ in range(60):
            await agent.send({"type": "pong"})
        with pytest.raises(ConnectionError):
            while True:
                await agent.receive(timeout=3)
        assert agent.ws.close_code == CLOSE_FLOOD
        await agent.close()


async def test_a_silent_socket_is_closed_and_the_agent_goes_not_ready(tmp_path: Path) -> None:
    web = {"heartbeat_interval_s": 0.1, "heartbeat_timeout_s": 0.35,
           "disconnect": {"after_s": 0.3, "state": "not_ready", "reason": "break"}}
    async with harness(tmp_path, web=web) as h:
        agent = await h.cti("1001")
        await agent.command({"type": "state", "state": "available"})
        # Answering pings keeps it open.
        started = time.monotonic()
        while time.monotonic() - started < 0.8:
            message = await agent.receive()
            if message["type"] == "ping":
                await agent.send({"type": "pong", "ts": message["ts"]})
        assert not agent.ws.closed and h.acd.agent_view("1001")["state"] == "available"
        # Silence: closed with 4000, and after the grace time the agent is not ready.
        with pytest.raises(ConnectionError):
            while True:
                await agent.receive(timeout=3)
        assert agent.ws.close_code == CLOSE_HEARTBEAT
        assert h.acd.agent_view("1001")["state"] == "available"  # not yet: the grace time runs
        await asyncio.sleep(0.5)
        view = h.acd.agent_view("1001")
        assert (view["state"], view["reason"]) == ("not_ready", "break")
        await agent.close()


async def test_a_desktop_that_comes_back_in_time_keeps_the_agent_available(tmp_path: Path) -> None:
    web = {"disconnect": {"after_s": 0.5, "state": "logged_out"}}
    async with harness(tmp_path, web=web) as h:
        agent = await available(h, "1001")
        await agent.close()
        await asyncio.sleep(0.2)
        again = await h.cti("1001")
        await asyncio.sleep(0.6)
        assert h.acd.agent_view("1001")["state"] == "available"
        await again.close()
        await asyncio.sleep(0.8)
        assert h.acd.agent_view("1001")["state"] == "logged_out"


async def test_resume_replays_what_was_missed(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await available(h, "1001")
        item, _ = await answered(h, agent)
        epoch, seq = agent.epoch, agent.seq
        await agent.ws.close()  # dropped mid-call
        h.bus.publish(CallHeld(call_id=item.id, sip_call_id="s1", held=True))  # the phone held meanwhile
        h.bus.publish(CallHeld(call_id=item.id, sip_call_id="s1", held=False))
        again = await h.cti("1001", hello=False)
        again.seq, again.epoch = seq, epoch
        await again.send({"type": "resume", "epoch": epoch, "seq": seq})
        held = await again.expect("call", call_id=item.id)
        resumed = await again.expect("call", call_id=item.id)
        done = await again.expect("resumed")
        assert (held["seq"], held["state"], resumed["seq"], resumed["state"]) == (seq + 1, "held", seq + 2, "connected")
        assert done == {"type": "resumed", "seq": seq + 2, "replayed": 2}
        # Live from there on, numbered on.
        h.bus.publish(CallHeld(call_id=item.id, sip_call_id="s1", held=True))
        live = await again.expect("call", state="held")
        assert live["seq"] == seq + 3
        await again.close()
        await agent.close()


async def test_a_snapshot_when_too_much_was_missed_or_the_server_restarted(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"replay_messages": 3}) as h:
        agent = await available(h, "1001")
        item, _ = await answered(h, agent)
        epoch, seq = agent.epoch, agent.seq
        await agent.ws.close()
        for held in (True, False, True, False, True):
            h.bus.publish(CallHeld(call_id=item.id, sip_call_id="s1", held=held))
        again = await h.cti("1001", hello=False)
        await again.send({"type": "resume", "epoch": epoch, "seq": seq})
        snapshot = await again.expect("snapshot")
        assert (snapshot["reason"], snapshot["seq"]) == ("missed", seq + 5)
        assert snapshot["calls"] == [{"call_id": item.id, "item_id": item.id, "state": "held",
                                      "since": snapshot["calls"][0]["since"]}]
        assert [i["item_id"] for i in snapshot["items"]] == [item.id]
        assert snapshot["items"][0]["customer"]["name"] == "Ada Byron"
        await again.send({"type": "resume", "epoch": "another-life", "seq": 2})
        assert (await again.expect("snapshot"))["reason"] == "epoch"
        await again.close()
        await agent.close()


async def test_the_pop_is_on_the_desktop_before_pop_returns(tmp_path: Path) -> None:
    """The desktop runs in its own thread and event loop; the server's loop is blocked as soon as
    ``pop()`` returns, so whatever the desktop has by then was delivered before."""
    async with harness(tmp_path) as h:
        session = await h.session("1001")
        cookies = {c.key: c.value for c in session.cookie_jar}
        await session.close()
        got_offer = threading.Event()
        ready = threading.Event()
        stop = threading.Event()
        offers: list[dict[str, Any]] = []

        def desktop() -> None:
            async def run() -> None:
                async with aiohttp.ClientSession(cookies=cookies) as s, \
                        s.ws_connect(h.ws_url, headers={"Origin": h.url}) as ws:
                    await ws.send_str(json.dumps({"type": "hello"}))
                    await ws.send_str(json.dumps({"type": "state", "state": "available"}))
                    while not stop.is_set():
                        try:
                            frame = await ws.receive(timeout=0.05)
                        except TimeoutError:
                            continue
                        if frame.type != aiohttp.WSMsgType.TEXT:
                            return
                        message = json.loads(frame.data)
                        if message["type"] == "agent_state" and message["agent"]["state"] == "available":
                            ready.set()
                        if message["type"] == "offer":
                            offers.append(message)
                            got_offer.set()
                            await ws.send_str(json.dumps({"type": "seen", "item_id": message["item_id"]}))

            asyncio.run(run())

        thread = threading.Thread(target=desktop, daemon=True)
        thread.start()
        assert await asyncio.to_thread(ready.wait, 5)
        popped: list[bool] = []

        def invite(ext: str, item_id: str) -> None:
            # pop() has returned and the INVITE would leave now: the desktop must have the offer.
            popped.append(got_offer.is_set())

        h.voice.on_invite = invite
        item = await h.call(data={"ivr": {"account": "123456"}})
        await h.voice.invited.wait()
        assert popped == [True], "the INVITE would have left before the desktop had the pop"
        assert offers[0]["item_id"] == item.id and offers[0]["ivr"] == {"account": "123456"}
        assert h.desk.hub.desks.pops_timed_out == 0
        stop.set()
        await asyncio.to_thread(thread.join, 5)


async def test_pop_returns_in_time_when_nobody_reads(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"pop_timeout_s": 0.2, "pop_lookup_wait_s": 0.05}) as h:
        agent = await available(h, "1001")  # a desktop that never answers "seen"
        h.voice.pop = None
        item = await h.call()
        offer = await agent.expect("offer", item_id=item.id)
        started = time.monotonic()
        await h.desk.hub.pop("1001", {"id": item.id, "channel": "voice", "queue": "support", "data": {}})
        assert 0.15 < time.monotonic() - started < 0.5
        assert h.desk.hub.desks.pops_timed_out == 1
        # No desktop at all: at once.
        await agent.close()
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await h.desk.hub.pop("1001", {"id": "other", "channel": "voice", "queue": "support", "data": {}})
        assert time.monotonic() - started < 0.1
        assert offer["customer"]["name"] == "Ada Byron"


async def test_the_pop_carries_the_customer_history_ivr_and_articles(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        charles = await h.customers.find("account", "234567")
        assert charles is not None
        await h.customers.add_interaction(InteractionRecord(
            channel="email", ref="mail-1", customer_id=charles.id, started_at=_ago(3600), ended_at=_ago(3500),
            queue="billing", agent="1003", outcome="replied", disposition="resolved", notes="sent the invoice"))
        agent = await available(h, "1001")
        # No customer in the item: found by the caller's number.
        item = await h.call(caller="+1 555 010 0124", data={"ivr": {"menu": "refund", "said": "my password"}})
        offer = await agent.expect("offer", item_id=item.id)
        assert offer["customer"]["name"] == "Charles Babbage"
        assert [(e["channel"], e["agent"], e["outcome"], e["notes"]) for e in offer["history"]] == [
            ("email", "1003", "replied", "sent the invoice")]
        assert offer["ivr"] == {"menu": "refund", "said": "my password"}
        assert [a["title"] for a in offer["articles"]] == [
            "Resetting a password or unlocking an account", "Disputing a charge or asking for a refund"]
        assert offer["queue"] == "support" and offer["caller"] == "+1 555 010 0124"
        assert offer["expires_at"] == pytest.approx(offer["ts"] + 30)
        await agent.close()


async def test_a_slow_lookup_sends_the_pop_first_and_the_history_after(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"pop_lookup_wait_s": 0.05}) as h:
        real = h.desk.hub.desks.customers

        class Slow:
            async def find(self, by: str, value: str) -> Any:
                return await real.find(by, value)

            async def history(self, customer_id: int, limit: int = 50) -> Any:
                await asyncio.sleep(0.4)
                return await real.history(customer_id, limit)

        h.desk.hub.desks.customers = Slow()  # type: ignore[assignment]
        agent = await available(h, "1001")
        item = await h.call()
        offer = await agent.expect("offer", item_id=item.id)
        assert offer["history"] is None and offer["customer"] is None
        update = await agent.expect("offer_update", item_id=item.id)
        assert update["customer"]["name"] == "Ada Byron" and update["history"] == []
        await agent.close()


async def test_offer_withdrawn_and_reject(tmp_path: Path) -> None:
    async with harness(tmp_path, ring_timeout_s=0.5) as h:
        agent = await available(h, "1001")
        item = await h.call()
        await agent.expect("offer", item_id=item.id)
        withdrawn = await agent.expect("offer_withdrawn", item_id=item.id, timeout=3)
        assert withdrawn["reason"] == "no-answer"
        state = await agent.expect("agent_state")
        assert (state["agent"]["state"], state["agent"]["reason"]) == ("not_ready", "no-answer")
        await agent.command({"type": "state", "state": "available"})
        await agent.expect("offer", item_id=item.id)
        reply = await agent.command({"type": "reject", "item_id": item.id})
        assert reply["type"] == "ack" and h.controls.done[-1] == ("reject", "1001", item.id)
        await agent.close()


async def test_wallboard_is_pushed_and_supervisors_act_on_it(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"wallboard_interval_s": 0.1}) as h:
        supervisor = await h.cti("sup")
        snapshot = supervisor.received[-1]
        assert snapshot["view"] == "wallboard" and {q["name"] for q in snapshot["queues"]} == {"billing", "support"}
        first = await h.call("billing", caller="+15550100124")
        board = await supervisor.expect("wallboard")
        billing = next(q for q in board["queues"] if q["name"] == "billing")
        assert billing["waiting"] == 1 and [i["id"] for i in board["items"]] == [first.id]
        second = await h.call("billing", caller="+15550100125")
        board = await supervisor.expect("wallboard")
        assert [i["id"] for i in board["items"]] == [first.id, second.id]

        reply = await supervisor.command({"type": "reprioritise", "item_id": second.id, "priority": 5})
        assert reply["type"] == "ack", reply
        board = await supervisor.expect("wallboard")
        assert [(i["id"], i["priority"]) for i in board["items"]] == [(second.id, 5), (first.id, 0)]
        reply = await supervisor.command({"type": "move", "item_id": first.id, "queue": "support"})
        assert reply["type"] == "ack", reply
        board = await supervisor.expect("wallboard")
        assert [(i["id"], i["queue"]) for i in board["items"]] == [(second.id, "billing"), (first.id, "support")]
        reply = await supervisor.command({"type": "move", "item_id": first.id, "queue": "nowhere"})
        assert (reply["status"], reply["message"]) == (404, "unknown queue 'nowhere'")

        reply = await supervisor.command({"type": "agent_state", "extension": "1002", "state": "available"})
        assert reply["type"] == "ack"
        change = await supervisor.expect("agent_state", extension="1002")
        assert change["agent"]["state"] == "available"
        offered = await supervisor.expect("agent_state", extension="1002")  # the moved caller goes to them
        assert (offered["agent"]["state"], offered["agent"]["offer"]) == ("reserved", first.id)
        reply = await supervisor.command({"type": "agent_state", "extension": "1002", "state": "not_ready",
                                          "reason": "meeting"})
        assert reply["type"] == "ack"
        paused = await supervisor.expect("agent_state", extension="1002")
        assert (paused["agent"]["state"], paused["agent"]["reason"]) == ("not_ready", "meeting")
        board = await supervisor.expect("wallboard")
        support = next(q for q in board["queues"] if q["name"] == "support")
        assert (support["waiting"], support["agents_not_ready"]) == (1, 1)  # back in its place
        await supervisor.close()


async def test_an_integration_follows_every_agent(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, aiohttp.ClientSession() as session:
        crm = await CtiClient.connect(session, h.ws_url, headers={"Authorization": f"Bearer {API_TOKEN}"})
        snapshot = await crm.hello()
        assert snapshot["view"] == "feed"
        agent = await available(h, "1001")
        item = await h.call()
        offer = await crm.expect("offer", item_id=item.id)
        assert offer["extension"] == "1001" and offer["customer"]["name"] == "Ada Byron"
        # Or one agent's desk stream.
        watch = await CtiClient.connect(session, h.ws_url, headers={"Authorization": f"Bearer {API_TOKEN}"})
        desk = await watch.hello(extension="1001")
        assert desk["view"] == "agent" and desk["offer"]["item_id"] == item.id
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(h.ws_url, headers={"Authorization": "Bearer wrong"})
        assert refused.value.status == 401
        await watch.close()
        await crm.close()
        await agent.close()


async def test_wrap_up_saves_the_disposition_on_the_interaction(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await available(h, "1001")
        item, offer = await answered(h, agent)
        reply = await agent.command({"type": "wrap_up", "item_id": item.id, "disposition": "resolved"})
        in_progress = f"item {item.id} is still in progress; wrap it up when it ends"
        assert (reply["status"], reply["message"]) == (409, in_progress)
        await agent.command({"type": "hangup", "call_id": item.id})
        completed = await agent.expect("completed", item_id=item.id)
        assert completed["customer_id"] == offer["customer"]["id"]
        assert (await agent.expect("agent_state"))["agent"]["state"] == "wrap_up"
        # The channel stored its interaction meanwhile: the disposition goes onto it.
        stored = await h.customers.add_interaction(InteractionRecord(
            channel="voice", ref=item.id, customer_id=completed["customer_id"], started_at=_ago(60),
            ended_at=_ago(0), queue="support", agent="1001", outcome="answered"))
        reply = await agent.command({"type": "wrap_up", "item_id": item.id, "disposition": "nonsense"})
        assert (reply["status"], reply["message"]) == (422, "unknown disposition 'nonsense'")
        reply = await agent.command({"type": "wrap_up", "item_id": item.id, "disposition": "follow-up",
                                     "notes": "call back Monday", "ready": True})
        assert reply["type"] == "ack" and reply["result"] == {"interaction_id": stored}
        saved = await agent.expect("wrap_up_saved", item_id=item.id)
        assert saved["interaction_id"] == stored
        assert (await agent.expect("agent_state"))["agent"]["state"] == "available"
        history = await h.customers.history(completed["customer_id"])
        assert [(e.id, e.outcome, e.disposition, e.notes) for e in history] == [
            (stored, "answered", "follow-up", "call back Monday")]
        reply = await agent.command({"type": "wrap_up", "item_id": item.id, "disposition": "resolved"})
        assert reply["status"] == 404  # saved once
        await agent.close()


async def test_click_to_dial_follows_the_call(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await h.cti("1001")
        reply = await agent.command({"type": "dial", "number": "+15550199", "customer_id": 2})
        assert reply["type"] == "ack"
        call_id = reply["result"]["call_id"]
        dialing = await agent.expect("call", call_id=call_id)
        assert (dialing["state"], dialing["number"]) == ("dialing", "+15550199")
        assert (await agent.expect("call", call_id=call_id))["state"] == "connected"
        reply = await agent.command({"type": "hold", "call_id": call_id, "on": True})
        assert reply["type"] == "ack"
        assert (await agent.expect("call", call_id=call_id))["state"] == "held"
        reply = await agent.command({"type": "dial", "number": "not a number"})
        assert reply["status"] == 422
        await agent.close()


async def test_signing_out_closes_the_sockets_of_that_session(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await h.cti("1001")
        async with agent.session.post(f"{h.url}/ui/logout") as response:
            assert response.status == 200
        with pytest.raises(ConnectionError):
            while True:
                await agent.receive(timeout=3)
        assert agent.ws.close_code == CLOSE_SESSION
        await agent.close()


def _ago(seconds: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_an_agent_left_available_at_start_follows_the_policy(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"disconnect": {"after_s": 0.2, "state": "not_ready", "reason": "meeting"}}) as h:
        hub = h.desk.hub
        await hub.close()
        h.acd.set_agent_state("1001", "available")  # as restored from the store after a restart
        h.acd.set_agent_state("1002", "not_ready", "lunch")
        await hub.start()
        await asyncio.sleep(0.5)
        assert (h.acd.agent_view("1001")["state"], h.acd.agent_view("1001")["reason"]) == ("not_ready", "meeting")
        assert h.acd.agent_view("1002")["reason"] == "lunch"  # untouched
        assert h.acd.agent_view("1003")["state"] == "logged_out"  # no web user: not the desktop's business
