"""Numbered, replayable streams of CTI messages and the sockets that read them.

Theory of operation
-------------------
A :class:`Stream` is one sequence of messages: an agent's desk
(``agent:1001``), the supervisors' wallboard, or the integrations' feed.  Each
message appended gets the next ``seq`` and is serialised once; the text is
kept in a bounded buffer (by count and by bytes) and written to every
connection attached to the stream.  A client that reconnects sends the
stream's ``epoch`` and the last ``seq`` it saw: :meth:`Stream.missed` gives
the texts it missed, or ``None`` when the buffer no longer reaches back that
far (or the epoch is another one: the server restarted) and a snapshot must
be sent instead.

A :class:`Connection` owns one WebSocket.  Everything sent goes through its
outbox and one writer task, so frames never interleave and a slow browser
never blocks the hub: a connection whose outbox passes :data:`OUTBOX_LIMIT`
is closed (it resumes when it comes back).  ``send`` may carry a callback run
once the frame has been handed to the transport (or dropped with the
connection): :meth:`cosmo.web.cti.CtiHub.pop` waits on it.

Inbound messages pass a token bucket (:meth:`Connection.admit`): beyond the
burst they are dropped with an ``error`` (at most one a second), and a
connection that keeps flooding is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web

from cosmo.web.auth import Principal

__all__ = [
    "CLOSE_FLOOD",
    "CLOSE_HEARTBEAT",
    "CLOSE_SESSION",
    "CLOSE_SHUTDOWN",
    "CLOSE_SLOW",
    "OUTBOX_LIMIT",
    "Connection",
    "Stream",
    "dumps",
]

log = logging.getLogger(__name__)

CLOSE_HEARTBEAT = 4000
"""Close code: no sign of life within the heart-beat timeout."""
CLOSE_SESSION = 4001
"""Close code: the session ended (signed out, expired, user removed): sign in again."""
CLOSE_SLOW = 4002
"""Close code: the client read too slowly and fell too far behind; reconnect and resume."""
CLOSE_FLOOD = int(WSCloseCode.POLICY_VIOLATION)
"""Close code 1008: the client kept sending faster than allowed."""
CLOSE_SHUTDOWN = int(WSCloseCode.GOING_AWAY)
"""Close code 1001: the server is stopping."""

OUTBOX_LIMIT = 5000
"""Frames waiting for one slow connection before it is closed."""

THROTTLE_ERROR_INTERVAL_S = 1.0

Written = Callable[[], None]


def dumps(message: dict[str, Any]) -> str:
    """A message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Stream:
    """A numbered sequence of messages with a bounded replay buffer; see the module documentation."""

    __slots__ = ("_buffer", "_bytes", "connections", "epoch", "max_bytes", "max_messages", "name", "seq")

    def __init__(self, name: str, max_messages: int, max_bytes: int) -> None:
        self.name = name
        self.epoch = secrets.token_hex(8)
        self.seq = 0
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._buffer: deque[tuple[int, str]] = deque()
        self._bytes = 0
        self.connections: set[Connection] = set()

    def publish(self, message: dict[str, Any], written: Written | None = None) -> int:
        """Number ``message`` (sets its ``seq``), keep it and send it to every attached connection.

        ``written`` runs once per connection when the frame is handed to the
        transport.  Returns the number of connections it was sent to.
        """
        self.seq += 1
        message["seq"] = self.seq
        text = dumps(message)
        self._buffer.append((self.seq, text))
        self._bytes += len(text)
        while self._buffer and (len(self._buffer) > self.max_messages or self._bytes > self.max_bytes):
            _, dropped = self._buffer.popleft()
            self._bytes -= len(dropped)
        for connection in self.connections:
            connection.send(text, written)
        return len(self.connections)

    def missed(self, epoch: str, seq: int) -> list[str] | None:
        """The texts after ``seq``, or ``None`` when they cannot all be given (another epoch,
        a ``seq`` from the future, or older than the buffer)."""
        if epoch != self.epoch or seq > self.seq:
            return None
        if seq == self.seq:
            return []
        oldest = self._buffer[0][0] if self._buffer else self.seq + 1
        if seq + 1 < oldest:
            return None
        return [text for number, text in self._buffer if number > seq]

    def resize(self, max_messages: int, max_bytes: int) -> None:
        """Follow new buffer limits (a configuration reload)."""
        self.max_messages, self.max_bytes = max_messages, max_bytes


class Connection:
    """One CTI WebSocket: its principal, outbox, writer task, throttle and heart-beat clock."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, now: float, *, label: str) -> None:
        self.ws = ws
        self.principal = principal
        self.label = label
        self.stream: Stream | None = None
        self.last_heard = now
        self.next_ping = now
        """When the heart-beat loop pings this socket next."""
        self.closed = False
        self._outbox: asyncio.Queue[tuple[str, Written | None] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._tokens: float | None = None
        self._refilled_at = now
        self.dropped = 0
        self._last_throttle_error = float("-inf")

    def __repr__(self) -> str:
        return f"<Connection {self.label} {self.principal.role}>"

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name=f"cti-writer-{self.label}")

    def attach(self, stream: Stream) -> None:
        """Receive ``stream`` from now on (detached from any other)."""
        self.detach()
        self.stream = stream
        stream.connections.add(self)

    def detach(self) -> None:
        if self.stream is not None:
            self.stream.connections.discard(self)
            self.stream = None

    def send(self, text: str, written: Written | None = None) -> None:
        """Queue ``text`` for the socket; ``written`` runs when it has been written (or dropped)."""
        if self.closed:
            if written is not None:
                written()
            return
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            log.warning("CTI %s: %d frames unread; closing the socket", self.label, OUTBOX_LIMIT)
            self.close_soon(CLOSE_SLOW, "too far behind; reconnect and resume")
            if written is not None:
                written()
            return
        self._outbox.put_nowait((text, written))

    def reply(self, message: dict[str, Any]) -> None:
        """Send a message that is not part of the stream (welcome, ping, ack, error)."""
        self.send(dumps(message))

    def error(self, re: object, status: int, message: str) -> None:
        """Send an ``error`` message answering the client's message ``re``."""
        self.reply({"type": "error", "re": re, "status": status, "message": message})

    def admit(self, now: float, rate: float, burst: int) -> bool:
        """Token bucket: True when one more message may be handled now."""
        tokens = float(burst) if self._tokens is None else self._tokens
        tokens = min(float(burst), tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        if tokens >= burst:
            self.dropped = 0  # quiet long enough: a later burst starts afresh
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        self.dropped += 1
        if now - self._last_throttle_error >= THROTTLE_ERROR_INTERVAL_S:
            self._last_throttle_error = now
            self.error(None, 429, "too many messages; slow down (messages are being dropped)")
        return False

    async def _write_loop(self) -> None:
        outbox = self._outbox
        ws = self.ws
        while (entry := await outbox.get()) is not None:
            text, written = entry
            try:
                if not ws.closed:
                    await ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("CTI %s: write failed: %s", self.label, exc)
                self.close_soon(CLOSE_SHUTDOWN, "write failed")
            finally:
                if written is not None:
                    written()

    def close_soon(self, code: int, message: str) -> None:
        """Close the socket from synchronous code (a task does the closing handshake)."""
        if self.closed:
            return
        asyncio.get_running_loop().create_task(self.close(code, message), name=f"cti-close-{self.label}")

    async def close(self, code: int, message: str) -> None:
        """Close the socket with ``code``; frames not yet written are dropped.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.detach()
        self._drain()
        if not self.ws.closed:
            log.info("CTI %s: closing (%d %s)", self.label, code, message)
            with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
                await self.ws.close(code=code, message=message.encode()[:120])

    def _drain(self) -> None:
        """Drop every frame not yet written, running their callbacks; stop the writer."""
        while not self._outbox.empty():
            entry = self._outbox.get_nowait()
            if entry is not None and entry[1] is not None:
                entry[1]()
        self._outbox.put_nowait(None)

    async def finish(self) -> None:
        """After the socket ended: stop the writer and release everything."""
        if not self.closed:
            self.closed = True
            self.detach()
            self._drain()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        # Callbacks of a frame the cancelled writer held are run by its finally.
