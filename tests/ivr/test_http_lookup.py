"""HTTP look-ups against a web service on 127.0.0.1: answers, 404, errors, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cosmo.ivr.interpreter import MAX_HTTP_BODY, Outcome, run
from tests.ivr.helpers import compile_flow, port

FLOW = """\
entry: dip
nodes:
  dip:
    lookup:
      http:
        url: "${base}/PATH"
        method: METHOD
        params: {caller: "${caller}"}
        headers: {X-Account: "${account}"}
        json: {account: "${account}", tags: ["${caller}", 1]}
        timeout_s: 0.3
        into: answer
      found: found
      not_found: not-found
      on_error: failed
  found:
    hangup: {}
  not-found:
    hangup: {}
  failed:
    hangup: {}
"""


@pytest.fixture
async def service() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def balance(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query), "account": request.headers.get("X-Account"),
                     "body": await request.json() if request.can_read_body else None, "method": request.method})
        return web.json_response({"balance": "42.50", "account": request.match_info["account"]})

    async def slow(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(release.wait(), 5.0)
        except TimeoutError:
            pass
        return web.json_response({})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="plain words")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_HTTP_BODY + 10))

    app = web.Application()
    app.router.add_route("*", "/balance/{account}", balance)
    app.router.add_get("/slow", slow)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/text", text)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_number = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port_number}", seen
    finally:
        release.set()
        await runner.cleanup()


async def dip(base: str, path: str, method: str = "GET", http: aiohttp.ClientSession | None = None) -> Any:
    flow = compile_flow(FLOW.replace("PATH", path).replace("METHOD", method))
    sim = port(caller="+15550100123")
    sim.data["ivr"] = {"base": base, "account": "123456"}
    result = await run(flow, sim, http=http)
    return result, sim


@pytest.mark.parametrize("method", ["GET", "post"])
async def test_answer_lands_in_the_call_data(service: tuple[str, list[dict[str, Any]]], method: str) -> None:
    base, seen = service
    async with aiohttp.ClientSession() as http:
        result, sim = await dip(base, "balance/${account}", method, http)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "found")
    assert sim.data["ivr"]["answer"] == {"balance": "42.50", "account": "123456"}
    assert seen == [{"path": "/balance/123456", "query": {"caller": "+15550100123"}, "account": "123456",
                     "body": {"account": "123456", "tags": ["+15550100123", 1]}, "method": method.upper()}]


async def test_a_session_is_made_when_none_is_given(service: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = service
    result, sim = await dip(base, "text")
    assert result.node == "found"
    assert sim.data["ivr"]["answer"] == "plain words"


@pytest.mark.parametrize(("path", "node", "error"), [
    ("status/404", "not-found", None),
    ("status/500", "failed", "status 500"),
    ("slow", "failed", "no answer within 0.3 s"),
    ("big", "failed", f"answer larger than {MAX_HTTP_BODY} bytes"),
])
async def test_failures_follow_their_branches(service: tuple[str, list[dict[str, Any]]], path: str, node: str,
                                              error: str | None, caplog: pytest.LogCaptureFixture) -> None:
    base, _ = service
    loop = asyncio.get_running_loop()
    started = loop.time()
    result, sim = await dip(base, path)
    assert result.node == node
    assert "answer" not in sim.data["ivr"]
    assert loop.time() - started < 3.0
    if error is not None:
        assert f"call sim-1: flow test node dip: HTTP GET {base}/{path}: {error}" in caplog.text


async def test_unreachable_service_without_on_error_says_goodbye() -> None:
    flow = compile_flow("""\
        entry: dip
        nodes:
          dip:
            lookup: {http: {url: "http://127.0.0.1:9/x", into: answer, timeout_s: 1}, next: done}
          done:
            hangup: {}
        """)
    sim = port()
    result = await run(flow, sim)
    assert result.outcome is Outcome.ERROR and result.node == "dip"
    assert result.detail.startswith("HTTP GET http://127.0.0.1:9/x: ")
    assert sim.hangup_reason == "error"
