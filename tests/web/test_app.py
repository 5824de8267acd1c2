"""Tests of cosmo.web.app: the application and the HTTP server."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cosmo.web import NODE_NAME, HttpServer, WebError, create_app


async def test_healthz_with_test_client() -> None:
    app = create_app(node_name="node-a")
    assert app[NODE_NAME] == "node-a"
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"status": "ok"}
        assert (await client.get("/nowhere")).status == 404
        assert (await client.post("/healthz")).status == 405


async def test_http_server_on_a_free_port() -> None:
    server = HttpServer(create_app(), "127.0.0.1", 0)
    with pytest.raises(WebError):
        _ = server.port
    await server.start()
    await server.start()  # idempotent
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{server.url}/healthz") as response,
        ):
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    finally:
        await server.close()
        await server.close()  # idempotent
    with pytest.raises(WebError):
        _ = server.port


async def test_port_in_use_is_reported() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = HttpServer(create_app(), "127.0.0.1", port)
        with pytest.raises(WebError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start()
        await server.close()
