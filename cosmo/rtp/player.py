"""Playing prompts and music into a session, driven by the media clock.

A :class:`Player` sends one 20 ms frame per clock tick from a frame source
(a prompt playlist cursor) into an :class:`~cosmo.rtp.session.RtpSession`.
Frames are encoded once per prompt and codec (the prompt cache), so a tick
costs a header pack and a ``sendto`` per call.  ``done`` resolves with why
playing ended: ``"finished"``, or the reason given to :meth:`stop` (for
example ``"dtmf"`` when the caller barged in).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .clock import MediaClock, Subscription
from .session import RtpSession


class FrameSource(Protocol):
    """Where a player takes its frames (``PlaylistCursor`` fits)."""

    def next_frame(self) -> bytes | None: ...

    @property
    def finished(self) -> bool: ...


class Player:
    """See the module docstring."""

    def __init__(self, session: RtpSession, source: FrameSource, clock: MediaClock) -> None:
        self.session = session
        self.source = source
        self.clock = clock
        self.frames_sent = 0
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._subscription: Subscription | None = None

    @property
    def playing(self) -> bool:
        """Whether frames are still going out."""
        return self._subscription is not None

    def start(self) -> Player:
        """Begin on the next tick (idempotent)."""
        if self._subscription is None and not self.done.done():
            self._subscription = self.clock.subscribe(self._tick)
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Stop at once; ``done`` resolves with ``reason`` (idempotent)."""
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        if not self.done.done():
            self.done.set_result(reason)

    def _tick(self, _k: int) -> None:
        session = self.session
        if session.closed:
            self.stop("closed")
            return
        frame = self.source.next_frame()
        if frame is None:
            self.stop("finished")
            return
        session.send_audio(frame, len(frame))
        self.frames_sent += 1
        if self.source.finished:
            # End on the tick of the last frame, so that what plays next starts on the
            # following tick: no 20 ms hole between a prompt and the music after it.
            self.stop("finished")
