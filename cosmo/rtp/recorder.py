"""Recording a call: one WAV, the caller on the left channel, the agent on the right.

Each leg's received audio is decoded into a small per-channel queue; the
media clock takes one 20 ms frame per channel per tick (silence where a leg
sent nothing), so the two channels stay aligned whatever the network did.
A queue that grows past a few frames (a burst) drops its oldest frames rather
than drifting.  Writing happens in a worker thread, one second at a time, in
order; :meth:`close` finishes the file and resolves with its path.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .clock import MediaClock, Subscription
from .g711 import alaw_decode, ulaw_decode
from .session import RtpSession

log = logging.getLogger(__name__)

FRAME = 160  # samples per 20 ms at 8 kHz
MAX_QUEUED_FRAMES = 10
_DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "PCMU": lambda payload: np.asarray(ulaw_decode(payload), dtype=np.int16),
    "PCMA": lambda payload: np.asarray(alaw_decode(payload), dtype=np.int16),
}


class Recorder:
    """A two-channel call recording; see the module docstring."""

    def __init__(self, path: Path, clock: MediaClock, *, flush_every: int = 50) -> None:
        self.path = path
        self.clock = clock
        self.flush_every = flush_every
        self.frames_written = 0
        self._queues: list[deque[np.ndarray]] = [deque(), deque()]
        self._pending: list[np.ndarray] = []
        self._attached: list[tuple[RtpSession, Callable[[bytes, int, int], None]]] = []
        self._subscription: Subscription | None = None
        self._writer: wave.Wave_write | None = None
        self._write_chain: asyncio.Future[None] | None = None
        self.closed = False

    def start(self) -> Recorder:
        """Open the file and start taking frames (idempotent)."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = wave.open(str(self.path), "wb")  # noqa: SIM115 - open for the whole call, closed in close()
            writer.setnchannels(2)
            writer.setsampwidth(2)
            writer.setframerate(8000)
            self._writer = writer
            self._subscription = self.clock.subscribe(self._tick)
        return self

    def attach(self, session: RtpSession, channel: int) -> None:
        """Record what ``session`` receives on ``channel`` (0 left: caller, 1 right: agent)."""
        queue = self._queues[channel]

        def sink(payload: bytes, _pt: int, _ts: int) -> None:
            decode = _DECODERS.get(session.codec)
            if decode is None:
                return
            queue.append(decode(payload))
            while len(queue) > MAX_QUEUED_FRAMES:
                queue.popleft()

        session.audio_sinks.append(sink)
        self._attached.append((session, sink))

    def _tick(self, k: int) -> None:
        left = _take(self._queues[0])
        right = _take(self._queues[1])
        frame = np.empty(FRAME * 2, dtype=np.int16)
        frame[0::2] = left
        frame[1::2] = right
        self._pending.append(frame)
        if len(self._pending) >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        if not self._pending or self._writer is None:
            return
        data = np.concatenate(self._pending).astype("<i2").tobytes()
        self.frames_written += len(self._pending)
        self._pending = []
        writer = self._writer
        previous = self._write_chain

        async def write() -> None:
            if previous is not None:
                await previous
            await asyncio.to_thread(writer.writeframesraw, data)

        self._write_chain = asyncio.ensure_future(write())

    async def close(self) -> Path:
        """Stop, write what is left and finish the WAV header (idempotent)."""
        if not self.closed:
            self.closed = True
            if self._subscription is not None:
                self._subscription.cancel()
                self._subscription = None
            for session, sink in self._attached:
                if sink in session.audio_sinks:
                    session.audio_sinks.remove(sink)
            self._flush()
            if self._write_chain is not None:
                await self._write_chain
            if self._writer is not None:
                await asyncio.to_thread(self._writer.close)
        return self.path


def _take(queue: deque[np.ndarray]) -> np.ndarray:
    if not queue:
        return np.zeros(FRAME, dtype=np.int16)
    frame = queue.popleft()
    if len(frame) == FRAME:
        return frame
    out = np.zeros(FRAME, dtype=np.int16)
    out[: min(FRAME, len(frame))] = frame[:FRAME]
    return out
