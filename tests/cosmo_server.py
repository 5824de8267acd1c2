"""Run the real ``cosmo serve`` for end-to-end tests.

The server runs as a child process on free loopback ports with a config made
from the shipped demo (``config/cosmo.yaml``) plus per-test changes, and is
stopped by its own PID.  ``api()`` talks to its REST API with the demo token.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.peers.common import free_port, kill_pid

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "cosmo.yaml"
TOKEN = "demo-admin-token"


@dataclass
class CosmoProcess:
    """A running ``cosmo serve``."""

    proc: asyncio.subprocess.Process
    sip_port: int
    http_port: int
    data_dir: Path
    config_path: Path
    log_path: Path

    @property
    def sip_target(self) -> str:
        """``127.0.0.1:PORT`` for SIPp."""
        return f"127.0.0.1:{self.sip_port}"

    def log(self) -> str:
        """What the server logged so far."""
        return self.log_path.read_text(errors="replace")

    async def api(self, method: str, path: str, body: object = None, *, token: str | None = TOKEN,
                  timeout: float = 40.0) -> tuple[int, Any]:
        """Call the REST API; returns (status, decoded JSON)."""
        return await asyncio.to_thread(self._api, method, path, body, token, timeout)

    def _api(self, method: str, path: str, body: object, token: str | None, timeout: float) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    async def stats(self) -> dict[str, Any]:
        """``GET /api/sip/stats``."""
        status, body = await self.api("GET", "/api/sip/stats")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def registrations(self, extension: str) -> list[dict[str, Any]]:
        """The agent's current bindings, from ``GET /api/registrations``."""
        status, body = await self.api("GET", f"/api/registrations?extension={extension}")
        assert status == 200, body
        return body["registrations"]  # type: ignore[no-any-return]

    async def wait_registered(self, extension: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Until ``extension`` has ``count`` bindings (asked of Cosmo, not of the phone:
        a phone may report its REGISTER's 200 before a test is listening)."""
        deadline = time.monotonic() + timeout
        while len(bindings := await self.registrations(extension)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{extension}: {len(bindings)} of {count} bindings after {timeout} s")
            await asyncio.sleep(0.1)
        return bindings

    async def wait_idle(self, timeout: float) -> dict[str, Any]:
        """Wait until no call, session or transaction is left; returns the last stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            idle = not stats["calls"] and not stats["sessions"] and not stats["client_transactions"] \
                and not stats["server_transactions"]
            if idle or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.5)


def demo_settings() -> dict[str, Any]:
    """The shipped demo configuration as a dict."""
    return yaml.safe_load(DEMO_CONFIG.read_text())  # type: ignore[no-any-return]


@asynccontextmanager
async def cosmo_server(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None] | None = None,
    *,
    t1: float = 0.1,
    t4: float = 5.0,
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> AsyncIterator[CosmoProcess]:
    """Start ``cosmo serve`` on free ports; ``change`` edits the demo config first.

    ``t1`` defaults to 100 ms so transaction timers (64*T1) end within seconds.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = demo_settings()
    sip_port = free_port("both")
    http_port = free_port("tcp")
    settings["sip"]["t1"] = t1
    settings["sip"]["t2"] = max(4.0, t1)
    settings["sip"]["t4"] = t4
    settings["sip"]["listen"] = [
        {"transport": "udp", "host": "127.0.0.1", "port": sip_port},
        {"transport": "tcp", "host": "127.0.0.1", "port": sip_port},
    ]
    settings["http"] = {"host": "127.0.0.1", "port": http_port}
    if isinstance(settings.get("email", {}).get("smtp"), dict):
        settings["email"]["smtp"]["port"] = free_port("tcp")  # the demo's 2525 may be taken
    data_dir = data_dir or tmp_path / "var"
    settings["data_dir"] = str(data_dir)
    if change is not None:
        change(settings)
    config_path = tmp_path / "cosmo.yaml"
    config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    log_path = tmp_path / "cosmo.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    environment.update(env or {})
    with log_path.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cosmo.cli", "serve", "--config", str(config_path),
            cwd=REPO, env=environment, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
        )
    server = CosmoProcess(proc, sip_port, http_port, data_dir, config_path, log_path)
    try:
        await _wait_ready(server, timeout=30)
        yield server
    finally:
        await stop_server(server)


async def stop_server(server: CosmoProcess, *, hard: bool = False) -> None:
    """Stop the server by PID: SIGTERM (or SIGKILL when ``hard``), then SIGKILL after 10 s."""
    proc = server.proc
    if proc.returncode is not None:
        return
    if hard:
        kill_pid(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=10)
    except TimeoutError:
        kill_pid(proc.pid, signal.SIGKILL)
        await proc.wait()


async def _wait_ready(server: CosmoProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.returncode is not None:
            raise RuntimeError(f"cosmo serve exited with {server.proc.returncode}:\n{server.log()}")
        try:
            status, _ = await server.api("GET", "/healthz", token=None, timeout=1)
            if status == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"cosmo serve not ready in {timeout} s:\n{server.log()}")
