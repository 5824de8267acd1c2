"""A real PostgreSQL server for tests: the one named by ``COSMO_TEST_POSTGRES_URL``, or a throwaway cluster.

Without ``COSMO_TEST_POSTGRES_URL``, the session fixture :func:`postgres_url`
creates a cluster in a new temporary directory with the installed PostgreSQL
binaries (``initdb``, ``pg_ctl``, ``psql`` on ``PATH`` or in Debian's
``/usr/lib/postgresql/<version>/bin``), starts it on 127.0.0.1 at a free port
with its Unix socket inside that directory and ``fsync`` off, creates the role
and database ``cosmo`` (password login over TCP) and yields its
``postgresql+asyncpg://`` URL.  PostgreSQL refuses to run as root, so under
root the cluster belongs to the ``postgres`` system user.

The cluster is stopped (``pg_ctl stop -m fast``) and its directory deleted at
the end of the session, after failures and interrupts too; ``atexit`` does
the same if the session never reaches its teardown, and a watchdog child
process does it if the test process dies without running Python's exit
handlers (SIGKILL, ``os._exit``).  When no PostgreSQL binaries are found the
tests that need the server are skipped.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.peers.common import free_port, kill_pid

__all__ = [
    "POSTGRES_URL_VARIABLE",
    "PostgresCluster",
    "PostgresClusterError",
    "PostgresUnavailable",
    "empty_database",
    "find_bin_dir",
    "postgres_url",
]

POSTGRES_URL_VARIABLE = "COSMO_TEST_POSTGRES_URL"
"""Names an existing PostgreSQL database to use instead of a throwaway cluster."""

START_TIMEOUT = 30.0
"""Seconds ``pg_ctl start`` may take until the server accepts connections."""

STOP_TIMEOUT = 30.0
"""Seconds ``pg_ctl stop -m fast`` may take before the postmaster is killed."""

START_ATTEMPTS = 3
"""Starts tried, each on a new free port: another process may take the port first."""

ROLE = DATABASE = "cosmo"

# Runs in a child process: blocks on a pipe from the test process and, once
# that pipe ends (the test process has exited, however it died), stops the
# postmaster still running in the cluster, by the PID in postmaster.pid, and
# deletes the directory.  After a normal stop there is nothing left to do.
# A PID is signalled only while its command line names the data directory:
# a postmaster.pid left by a crash may name a PID reused by another process.
_WATCHDOG = """
import os, shutil, signal, sys, time
sys.stdin.buffer.read()
root, data_dir = sys.argv[1], sys.argv[2]

def postmaster():
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if data_dir.encode() in f.read() else None
    except (OSError, ValueError):
        return None

for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
    pid = postmaster()
    if pid is None:
        break
    os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while postmaster() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
shutil.rmtree(root, ignore_errors=True)
"""


class PostgresUnavailable(Exception):
    """No PostgreSQL binaries, or no user to run them as."""


class PostgresClusterError(Exception):
    """The throwaway cluster could not be created or started."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``psql``: from ``PATH``, else Debian's newest version."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "psql")):
            return directory
    return None


class PostgresCluster:
    """A PostgreSQL cluster in its own temporary directory, for one test session.

    :meth:`start` creates and starts it and returns the URL; :meth:`stop`
    (idempotent) stops it and deletes the directory.  Raises
    :class:`PostgresUnavailable` when it cannot run here and
    :class:`PostgresClusterError` when creating or starting it fails.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.run_as = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and no 'postgres' user to run PostgreSQL as") from None
        self.root = Path(tempfile.mkdtemp(prefix="cosmo-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_path = self.root / "postgres.log"
        self.port = 0
        self.url = ""
        self._stopped = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    def start(self) -> str:
        """Create the cluster, start it and create the role and database; returns the URL."""
        self._start_watchdog()
        if self.run_as is not None:
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        self.socket_dir.mkdir()
        self._chown(self.socket_dir)
        password = secrets.token_hex(16)
        superuser = "postgres"
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", superuser, "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
        )
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port("tcp")
            self._write_settings()
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", str(int(START_TIMEOUT)),
                    "start", timeout=START_TIMEOUT + 10,
                )
                break
            except PostgresClusterError:
                if attempt == START_ATTEMPTS or "could not bind" not in self._log_tail():
                    raise
        self._run(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
            "-U", superuser, "-d", "postgres",
            "-c", f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'",
            "-c", f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
        )
        self.url = f"postgresql+asyncpg://{ROLE}:{password}@127.0.0.1:{self.port}/{DATABASE}"
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown; killed by PID if that does not end it) and delete the directory."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            if self._postmaster_pid() is not None:
                try:
                    self._run(
                        "pg_ctl", "-D", str(self.data_dir), "-w", "-t", str(int(STOP_TIMEOUT)), "stop", "-m", "fast",
                        timeout=STOP_TIMEOUT + 10,
                    )
                except PostgresClusterError:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self._stop_watchdog()

    # ------------------------------------------------------------------ helpers

    def _run(self, program: str, *args: str, timeout: float = 60.0) -> None:
        command = [str(self.bin_dir / program), *args]
        user: dict[str, Any] = {}
        if self.run_as is not None:
            user = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        try:
            # cwd: the tools look up their own path, which needs a readable working directory.
            result = subprocess.run(
                command, cwd=self.root, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=timeout, check=False, **user,
            )
        except subprocess.TimeoutExpired:
            raise PostgresClusterError(f"{program} did not finish in {timeout:g} s\n{self._log_tail()}") from None
        if result.returncode != 0:
            raise PostgresClusterError(
                f"{program} failed with exit code {result.returncode}:\n{result.stdout}{result.stderr}\n{self._log_tail()}"
            )

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            # A throwaway cluster: durability only costs time.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        # The last setting of a name wins, so a retry on another port just appends.
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{name} = {value}\n" for name, value in settings.items()))

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "postgres.log:\n" + "\n".join(text.splitlines()[-lines:])

    def _postmaster_pid(self) -> int | None:
        """The running postmaster's PID; ``None`` when none runs in this cluster.

        A postmaster.pid left by a crash may name a PID now reused by another
        process, so the PID counts only while its command line names the data directory.
        """
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if os.fsencode(self.data_dir) in cmdline else None

    def _kill_postmaster(self) -> None:
        # SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if even that hangs.
        for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            pid = self._postmaster_pid()
            if pid is None:
                return
            kill_pid(pid, sig)
            deadline = time.monotonic() + grace
            while self._postmaster_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.root), str(self.data_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal must not end it before the cleanup it guards.
            start_new_session=True,
        )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        try:
            watchdog.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_pid(watchdog.pid)
            watchdog.wait()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database for this session (see the module docstring).

    Tests share the database: empty it first with :func:`empty_database`.
    """
    explicit = os.environ.get(POSTGRES_URL_VARIABLE)
    if explicit:
        yield explicit
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL not installed: no initdb, pg_ctl and psql on PATH or in /usr/lib/postgresql/*/bin "
            f"(install the 'postgresql' package, or set {POSTGRES_URL_VARIABLE})"
        )
    try:
        cluster = PostgresCluster(bin_dir)
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


async def empty_database(url: str) -> None:
    """Drop and re-create the ``public`` schema of the PostgreSQL database at ``url``."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            await connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        await engine.dispose()
