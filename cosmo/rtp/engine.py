"""The media engine: RTP sessions, the media clock, players, relays, recorders
and dead-call detection for the whole process.

One clock drives everything.  Once a second the engine walks its sessions:
a session whose peer stopped sending for ``rtp_timeout`` seconds (and is not
on hold) is reported to its ``on_timeout`` callback, so the call layer can
end the call with BYE on both legs; DTMF events whose end packets were lost
are flushed, and the RTCP reports that are due go out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .clock import MediaClock, Subscription
from .player import FrameSource, Player
from .ports import PortPool
from .recorder import Recorder
from .relay import Relay
from .session import RtpSession

log = logging.getLogger(__name__)

TimeoutHandler = Callable[[RtpSession], None]


class MediaEngine:
    """Owns every RTP session of the process; see the module docstring."""

    def __init__(self, host: str, port_min: int, port_max: int, *, rtp_timeout: float = 30.0,
                 clock: MediaClock | None = None) -> None:
        self.host = host
        self.pool = PortPool(port_min, port_max)
        self.clock = clock or MediaClock()
        self.rtp_timeout = rtp_timeout
        self.sessions: set[RtpSession] = set()
        self._timeout_handlers: dict[RtpSession, TimeoutHandler] = {}
        self._housekeeping: Subscription | None = None

    async def open_session(self, on_timeout: TimeoutHandler | None = None) -> RtpSession:
        """A new session on a free even/odd port pair, receiving at once."""
        port, rtp, rtcp = self.pool.bind_pair(self.host)
        session = RtpSession(self.host, port, rtp, rtcp, on_close=self._closed)
        try:
            await session.open()
        except BaseException:
            session.close()
            raise
        self.sessions.add(session)
        if on_timeout is not None:
            self._timeout_handlers[session] = on_timeout
        if self._housekeeping is None:
            self._housekeeping = self.clock.subscribe(self._every_tick)
        return session

    def _closed(self, session: RtpSession) -> None:
        self.sessions.discard(session)
        self._timeout_handlers.pop(session, None)
        self.pool.release(session.port)
        if not self.sessions and self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None

    def play(self, session: RtpSession, source: FrameSource) -> Player:
        """Start playing ``source`` into ``session``."""
        return Player(session, source, self.clock).start()

    def relay(self, a: RtpSession, b: RtpSession) -> Relay:
        """Start relaying audio between two sessions."""
        return Relay(a, b).start()

    def record(self, path: Path, caller: RtpSession, agent: RtpSession | None = None) -> Recorder:
        """Record ``caller`` (left) and ``agent`` (right) into ``path``."""
        recorder = Recorder(path, self.clock).start()
        recorder.attach(caller, 0)
        if agent is not None:
            recorder.attach(agent, 1)
        return recorder

    def close(self) -> None:
        """Close every session and stop the clock."""
        for session in list(self.sessions):
            session.close()
        self.clock.close()
        self._housekeeping = None

    def _every_tick(self, k: int) -> None:
        if k % 50:
            return
        now = time.monotonic()
        for session in list(self.sessions):
            session.poll_dtmf(now)
            session.poll_rtcp(now)
            if session.on_hold or session.closed:
                continue
            if now - session.last_received > self.rtp_timeout:
                handler = self._timeout_handlers.pop(session, None)
                if handler is not None:
                    log.info("RTP on port %d silent for %.0f s", session.port, now - session.last_received)
                    try:
                        handler(session)
                    except Exception:
                        log.exception("RTP timeout handler failed")
