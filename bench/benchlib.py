"""What the benchmark scripts share: free ports, pinned and stopped child processes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class BenchError(Exception):
    """The benchmark cannot run (a tool is missing, a process did not start)."""


_recent_ports: deque[int] = deque(maxlen=64)


def free_port(count: int = 1) -> int:
    """A port (or ``count`` consecutive ports) free on 127.0.0.1 for both UDP and TCP.

    Picked below the Linux ephemeral range, where the kernel puts port-0 binds,
    and below the RTP ranges the benchmarks give Cosmo.
    """
    for _ in range(500):
        base = random.randrange(20000, 32000 - count)
        if any(port in _recent_ports for port in range(base, base + count)):
            continue  # handed out moments ago, maybe not bound yet
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    sockets.append(sock)
                    sock.bind((LOOPBACK, port))
            _recent_ports.extend(range(base, base + count))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise BenchError("no free port found on 127.0.0.1")


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    """``argv`` under ``taskset -c cpu`` (the same PID: taskset execs the command)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def stop(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """End ``proc`` by its PID: ``sig``, then SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def read(path: Path) -> str:
    """A log file's text ("" when it is not there)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
