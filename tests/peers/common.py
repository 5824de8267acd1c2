"""What the peer drivers share: errors, events, an event queue, free ports.

Every peer (pjsua2 phone, baresip, SIPp) runs in a child process that the
test starts, binds to 127.0.0.1 only and ends by its own PID.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"

# Ports picked at random for SIPp RTP sockets stay below the Linux ephemeral
# range (32768-60999), where the kernel places port-0 binds.
_PICK_LOW = 20000
_PICK_HIGH = 32000


class PeerError(Exception):
    """A test peer failed to start, refused a command or died."""


class PeerTimeout(PeerError):
    """An awaited event did not arrive in time."""


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """Something a peer reported: ``kind`` plus the peer's own fields."""

    source: str
    kind: str
    data: Mapping[str, Any]
    at: float = field(default_factory=time.monotonic)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def matches(self, kind: str, match: Mapping[str, Any]) -> bool:
        """True when of ``kind`` and every ``match`` item equals the field.

        A set or frozenset value matches any of its members.
        """
        if self.kind != kind:
            return False
        for key, want in match.items():
            have = self.data.get(key)
            if isinstance(want, (set, frozenset)):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True


class EventQueue:
    """Events of one peer, each consumed by at most one successful wait.

    ``history`` keeps every event for later assertions; ``wait`` takes the
    oldest pending event that matches, so an event that arrived before the
    test started waiting is not lost.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.history: list[PeerEvent] = []
        self._pending: list[PeerEvent] = []
        self._changed = asyncio.Event()
        self._closed: str | None = None

    def put(self, kind: str, data: Mapping[str, Any]) -> PeerEvent:
        event = PeerEvent(self.source, kind, dict(data))
        self.history.append(event)
        self._pending.append(event)
        self._changed.set()
        return event

    def close(self, reason: str) -> None:
        """No more events will come; waiters fail with ``reason``."""
        if self._closed is None:
            self._closed = reason
        self._changed.set()

    def take(
        self, kind: str, match: Mapping[str, Any] | None = None, *, since: float = float("-inf")
    ) -> PeerEvent | None:
        """The oldest pending event of ``kind`` matching ``match`` that
        arrived at or after ``since`` (a time.monotonic() value), removed;
        None when there is none."""
        for index, event in enumerate(self._pending):
            if event.at >= since and event.matches(kind, match or {}):
                del self._pending[index]
                return event
        return None

    async def wait(
        self,
        kind: str,
        timeout: float,
        match: Mapping[str, Any] | None = None,
        *,
        fail_on: Sequence[tuple[str, Mapping[str, Any]]] = (),
        fail_pending: bool = False,
    ) -> PeerEvent:
        """Wait for an event of ``kind`` whose fields equal ``match``.

        ``fail_on`` lists ``(kind, fields)`` of events that end the wait
        early with :class:`PeerError`, consuming them: for example
        ``[("call_state", {"state": "DISCONNECTED"})]`` while waiting for
        CONFIRMED.  Only failure events that arrive during the wait count,
        since an older one may belong to an earlier call; ``fail_pending``
        also counts those already pending (when ``fields`` name one call).

        Raises :class:`PeerTimeout` after ``timeout`` seconds and
        :class:`PeerError` when the peer has gone away.
        """
        start = time.monotonic()
        deadline = start + timeout
        since = float("-inf") if fail_pending else start
        match = dict(match or {})
        while True:
            found = self.take(kind, match)
            if found is not None:
                return found
            for fail_kind, fail_match in fail_on:
                failed = self.take(fail_kind, fail_match, since=since)
                if failed is not None:
                    raise PeerError(f"{self.source}: waiting for {kind} {match}, got {failed.kind} {dict(failed.data)}")
            if self._closed is not None:
                raise PeerError(f"{self.source}: waiting for {kind} {match}: {self._closed}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [f"{e.kind} {dict(e.data)}" for e in self._pending[-5:]]
                raise PeerTimeout(
                    f"{self.source}: no {kind} {match} within {timeout:.1f} s; last pending events: {seen}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


def free_port(kind: str = "udp") -> int:
    """A port on 127.0.0.1 free right now for ``kind`` "udp", "tcp" or "both".

    The kernel picks it (bind to port 0); another process may still take it
    before the caller binds, which on a test host is rare.
    """
    if kind not in ("udp", "tcp", "both"):
        raise ValueError(f"kind must be udp, tcp or both, not {kind!r}")
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind != "tcp" else socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if kind != "both" or _is_free(port, socket.SOCK_STREAM):
            return port
    raise PeerError(f"no free {kind} port on {LOOPBACK}")


def free_port_block(count: int, *, step: int = 1, even: bool = True) -> int:
    """The first of ``count`` UDP ports ``step`` apart, all free right now.

    For peers that bind a base port and base+2 (SIPp's -mp) or an RTP/RTCP
    pair; the base is even when ``even`` (RFC 3550 section 11).
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(_PICK_LOW, _PICK_HIGH - count * step)
        if even:
            base &= ~1
        if all(_is_free(base + i * step, socket.SOCK_DGRAM) for i in range(count)):
            return base
    raise PeerError(f"no block of {count} free UDP ports on {LOOPBACK}")


def _is_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def kill_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the one process ``pid``, ignoring one already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


async def stop_process(proc: asyncio.subprocess.Process, *, grace: float, sig: int = signal.SIGTERM) -> int | None:
    """Ask ``proc`` (by its PID) to end with ``sig``; SIGKILL after ``grace`` s.

    Returns the exit code.
    """
    if proc.returncode is not None:
        return proc.returncode
    kill_pid(proc.pid, sig)
    try:
        return await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        kill_pid(proc.pid, signal.SIGKILL)
        return await proc.wait()
