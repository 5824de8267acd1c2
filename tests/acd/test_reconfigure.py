"""Agents and queues changed at run time, against a running ``cosmo serve``.

* through the API: an agent and a queue are added and changed, invalid
  definitions get 422 with every problem, conflicts with the work in progress
  (a queue that holds a caller, a logged-in agent) get 409, and nothing changes;
* a reload while a caller waits (``POST /api/reload`` and SIGHUP): the caller
  keeps its item and place, a broken file is refused with ``file:line`` and the
  running configuration stays, and after the reloads an agent answers the
  caller who waited through them.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.acd.test_end_to_end import (
    NUMBER,
    agent,
    login,
    set_state,
    short_times,
    wait_agent,
    wait_items,
)
from tests.cosmo_server import CosmoProcess, cosmo_server
from tests.peers.pjphone import PjPhone

pytestmark = [pytest.mark.peers]


async def put(server: CosmoProcess, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    got, answer = await server.api("PUT", path, body)
    assert got == status, answer
    return answer  # type: ignore[no-any-return]


async def queue_view(server: CosmoProcess, name: str) -> dict[str, Any] | None:
    status, body = await server.api("GET", "/api/queues")
    assert status == 200, body
    return next((q for q in body["queues"] if q["name"] == name), None)


def edit_config(server: CosmoProcess, change: Any) -> None:
    settings = yaml.safe_load(server.config_path.read_text())
    change(settings)
    server.config_path.write_text(yaml.safe_dump(settings, sort_keys=False))


async def test_agents_and_queues_change_through_the_api(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_times()) as server:
        added = await put(server, "/api/agents/1006",
                          {"name": "Barbara Liskov", "password": "secret1006", "skills": {"support": 4}}, 201)
        assert added["state"] == "logged_out" and added["queues"] == ["support"]

        # Changed without a password: the old one stays; the state stays too.
        changed = await put(server, "/api/agents/1006",
                            {"name": "Barbara Liskov", "skills": {"support": 4, "billing": 3}}, 200)
        assert sorted(changed["queues"]) == ["billing", "support"] and changed["skills"]["billing"] == 3

        refused = await put(server, "/api/agents/1007", {"name": "No Password", "skills": {"support": 2}}, 422)
        assert refused["problems"] == ["password: Field required"]
        refused = await put(server, "/api/agents/1006", {"name": "B", "skills": {"support": 9}}, 422)
        assert refused["problems"] == ["skills.support: Input should be less than or equal to 5"]
        assert (await agent(server, "1006"))["skills"] == {"support": 4, "billing": 3}

        vip = await put(server, "/api/queues/vip",
                        {"skills": {"support": 4}, "service_level": {"percent": 90, "seconds": 10}}, 201)
        assert vip["name"] == "vip" and vip["waiting"] == 0
        assert "vip" in (await agent(server, "1006"))["queues"]
        refused = await put(server, "/api/queues/vip",
                            {"skills": {"support": 4}, "relaxation": [{"after_s": 10, "overflow_to": "nowhere"}]}, 422)
        assert any("nowhere" in problem for problem in refused["problems"]), refused
        assert await queue_view(server, "vip") is not None

        status, body = await server.api("DELETE", "/api/queues/vip")
        assert status == 200 and body["changes"] == ["queue vip removed"], body
        status, body = await server.api("DELETE", "/api/queues/vip")
        assert status == 404 and body["error"] == "no queue vip"
        status, body = await server.api("DELETE", "/api/agents/1006")
        assert status == 200 and body["changes"] == ["agent 1006 removed"], body
        status, body = await server.api("GET", "/api/agents/1006")
        assert status == 404


async def test_reload_while_a_caller_waits_keeps_the_call(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="agent-1001", workdir=tmp_path / "pja") as ada, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await caller.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        [waiting] = await wait_items(server, 1, "support")

        # A queue others send work to cannot go; nor can one that holds a caller.
        status, body = await server.api("DELETE", "/api/queues/support")
        assert status == 422, body
        assert body["problems"] == ["queues.0.relaxation.0.overflow_to: unknown queue 'support'",
                                    "email.addresses.support@example.com.queue: unknown queue 'support'",
                                    "numbers.+15550100.queue: unknown queue 'support'",
                                    "numbers.+15550101.queue: unknown queue 'support'"]
        original = server.config_path.read_text()

        def without_support(settings: dict[str, Any]) -> None:
            settings["queues"] = [q for q in settings["queues"] if q["name"] != "support"]
            next(q for q in settings["queues"] if q["name"] == "billing")["relaxation"] = []
            for number in settings["numbers"].values():
                number["queue"] = "sales"
            for address in settings["email"]["addresses"].values():
                address["queue"] = "sales"

        edit_config(server, without_support)
        status, body = await server.api("POST", "/api/reload")
        assert status == 409 and body["error"] == "queue 'support' still holds items: it cannot be removed", body
        server.config_path.write_text(original)

        def add_agent_and_raise_skills(settings: dict[str, Any]) -> None:
            settings["agents"].append({"extension": "1006", "name": "Barbara Liskov",
                                       "password": "secret1006", "skills": {"support": 4}})
            next(q for q in settings["queues"] if q["name"] == "support")["skills"] = {"support": 4}

        edit_config(server, add_agent_and_raise_skills)
        status, body = await server.api("POST", "/api/reload")
        assert status == 200, body
        assert body["changes"] == ["queue support changed", "agent 1006 added"] and body["restart_needed"] == []
        [still] = await wait_items(server, 1, "support")
        assert still["id"] == waiting["id"] and still["wait_s"] >= waiting["wait_s"]

        # A broken file is refused with its line; the running configuration stays.
        text = server.config_path.read_text()
        server.config_path.write_text(text.replace("wrap_up_s: 2", "wrap_up_s: soon", 1))
        line = next(n for n, row in enumerate(server.config_path.read_text().splitlines(), 1) if "soon" in row)
        status, body = await server.api("POST", "/api/reload")
        assert status == 422, body
        assert any(p.startswith(f"{server.config_path}:{line}:") for p in body["problems"]), body
        assert (await agent(server, "1006"))["name"] == "Barbara Liskov"
        server.config_path.write_text(text)

        # SIGHUP reloads too: a listener change waits for a restart, the agent applies now.
        def another_agent(settings: dict[str, Any]) -> None:
            settings["agents"].append({"extension": "1007", "name": "Edsger Dijkstra",
                                       "password": "secret1007", "skills": {"support": 5}})
            settings["http"]["port"] = server.http_port + 1

        edit_config(server, another_agent)
        server.proc.send_signal(signal.SIGHUP)
        await _wait_known(server, "1007")
        assert "http changed; it applies at the next start" in server.log()

        # The caller who waited through the reloads is answered by a skilled agent.
        await login(server, ada, "1001")
        await set_state(server, "1001", "available")
        incoming = (await ada.wait_incoming_call(timeout=20))["call"]
        await ada.answer(200, call=incoming)
        await ada.wait_call_state("CONFIRMED", timeout=10, call=incoming)
        await wait_agent(server, "1001", state="busy")
        status, body = await server.api("DELETE", "/api/agents/1001")
        assert status == 409 and body["error"] == "agent 1001 is busy: log it out before removing it", body
        await caller.hangup(call=call)
        await wait_agent(server, "1001", state="wrap_up")


async def _wait_known(server: CosmoProcess, extension: str) -> None:
    for _ in range(100):
        status, _ = await server.api("GET", f"/api/agents/{extension}")
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"agent {extension} not added by SIGHUP:\n{server.log()}")
