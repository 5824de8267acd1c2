"""Tests of the ``cosmo`` command (cosmo.cli)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cosmo import cli
from cosmo.config import Settings, parse_config

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "cosmo.yaml"


def cosmo(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cosmo ARGS`` with the checkout importable; bounded in time."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    environ["PYTHONPATH"] = str(REPO) + os.pathsep + environ.get("PYTHONPATH", "")
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cosmo", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_ok() -> None:
    result = cosmo("check", "--config", str(DEMO))
    assert (result.returncode, result.stdout) == (0, f"ok: {DEMO}\n")


def test_hash_password_gives_a_hash_the_configuration_takes() -> None:
    from argon2 import PasswordHasher

    from cosmo.web.settings import is_password_hash

    result = subprocess.run([sys.executable, "-m", "cosmo", "hash-password"], input="s3cret\n", cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    digest = result.stdout.strip()
    assert result.returncode == 0 and is_password_hash(digest), result
    assert PasswordHasher().verify(digest, "s3cret")
    empty = subprocess.run([sys.executable, "-m", "cosmo", "hash-password"], input="\n", cwd=REPO,
                           capture_output=True, text=True, timeout=60, check=False)
    assert (empty.returncode, empty.stderr) == (1, "error: an empty password\n")


def test_check_default_path_is_relative_to_working_directory() -> None:
    result = cosmo("check")
    assert (result.returncode, result.stdout) == (0, "ok: config/cosmo.yaml\n")


def test_check_uses_cosmo_config(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("node_name: from-env\n")
    result = cosmo("check", cwd=tmp_path, env={"COSMO_CONFIG": str(path)})
    assert (result.returncode, result.stdout) == (0, f"ok: {path}\n")


def test_check_reports_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "node_name: demo\n"
        "http:\n"
        "  port: 99999\n"
        "agents:\n"
        "  - {extension: 'x1', name: A, password: pw}\n"
    )
    result = cosmo("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:3: http.port: Input should be less than or equal to 65535",
        f"{path}:5: agents[0].extension: extension must be digits, got 'x1'",
    ]


def test_check_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    result = cosmo("check", "--config", str(path))
    assert (result.returncode, result.stdout) == (1, f"{path}: cannot read: No such file or directory\n")


def test_check_env_problem() -> None:
    result = cosmo("check", "--config", str(DEMO), env={"COSMO_HTTP_PORT": "http"})
    assert (result.returncode, result.stdout) == (1, "COSMO_HTTP_PORT: not a port number: 'http'\n")


def test_serve_refuses_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("log_level: loud\n")
    result = cosmo("serve", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}:1: log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'",
        f"cosmo: refusing to start with {path}",
    ]


def test_no_command_prints_usage() -> None:
    result = cosmo()
    assert result.returncode == 2
    assert "usage: cosmo" in result.stderr


def test_version() -> None:
    result = cosmo("--version")
    assert (result.returncode, result.stdout.strip()) == (0, "cosmo 0.1.0")


# --------------------------------------------------------------------------- serve, in process


def _settings() -> Settings:
    return parse_config("", environ={})


async def test_serve_stops_on_sigterm() -> None:
    started = asyncio.Event()
    cleaned_up = []

    async def run(settings: Settings) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned_up.append(settings.node_name)

    loop = asyncio.get_running_loop()
    serving = asyncio.create_task(cli.serve(_settings(), run))
    await asyncio.wait_for(started.wait(), 5)
    loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == 0
    assert cleaned_up == ["cosmo-demo"]


async def test_serve_returns_failure_when_server_fails() -> None:
    async def run(settings: Settings) -> None:
        raise RuntimeError("cannot bind")

    assert await asyncio.wait_for(cli.serve(_settings(), run), 5) == 1


async def test_serve_returns_ok_when_server_finishes() -> None:
    async def run(settings: Settings) -> None:
        return None

    assert await asyncio.wait_for(cli.serve(_settings(), run), 5) == 0
    # Signal handlers are removed again: SIGTERM would otherwise be swallowed.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)


def test_setup_logging_plain_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        cli.setup_logging("WARNING", sys.stderr)
        logging.getLogger("cosmo.test").warning("hello %s", "there")
        assert "WARNING cosmo.test: hello there" in capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
