"""Media for the call legs Cosmo terminates: SDP offer/answer on real RTP sessions.

Every leg that Cosmo answers or places gets its own
:class:`~cosmo.rtp.session.RtpSession` (media is anchored: Cosmo plays,
records, detects DTMF and relays between legs).  :class:`CallMedia` keeps,
per SIP leg, the RTP session, the SDP origin and the negotiated parameters,
and offers the media verbs the call layer, the IVR and the ACD use:

* :meth:`answer` / :meth:`offer` / :meth:`apply_answer` — the initial
  exchange, including INVITEs without SDP (offer in 200, answer in ACK);
* :meth:`reoffer` — a peer's re-INVITE: same port, new parameters, hold
  detected from the direction (RFC 3264 §8.4, ``0.0.0.0`` legacy hold);
* :meth:`play`, :meth:`bridge`, :meth:`hold_music`, :meth:`record`.

``on_timeout(leg)`` is called when a leg's RTP stopped for the configured
time while not on hold (dead-call detection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cosmo.rtp.engine import MediaEngine
from cosmo.rtp.player import Player
from cosmo.rtp.prompts import DEFAULT_LANGUAGE, Playlist, PlaylistCursor, PromptCache
from cosmo.rtp.recorder import Recorder
from cosmo.rtp.relay import Relay
from cosmo.rtp.session import RtpSession
from cosmo.sip.sdp import Direction, SessionDescription, parse_sdp
from cosmo.sip.sdp_negotiation import (
    NegotiatedMedia,
    create_offer,
    negotiate_answer,
    next_version,
    process_answer,
)

from .call import Call

log = logging.getLogger(__name__)

LegKey = object  # the SIP leg (an InviteSession), by identity


@dataclass(eq=False)
class LegMedia:
    """The media state of one leg."""

    rtp: RtpSession
    call_id: str
    local: SessionDescription | None = None  # our last SDP (offer or answer)
    pending_offer: SessionDescription | None = None  # our offer awaiting an answer
    negotiated: NegotiatedMedia | None = None
    player: Player | None = None
    relay: Relay | None = None
    holding: bool = False  # the peer put us on hold
    stats_extra: dict[str, object] = field(default_factory=dict)
    recorders: list[Recorder] = field(default_factory=list)


class CallMedia:
    """See the module docstring."""

    def __init__(
        self,
        engine: MediaEngine,
        prompts: PromptCache,
        *,
        moh: str = "moh/default.wav",
        on_timeout: Callable[[LegKey], None] | None = None,
        on_hold_change: Callable[[LegKey, bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.prompts = prompts
        self.moh = moh
        self.on_timeout = on_timeout
        self.on_hold_change = on_hold_change
        self.legs: dict[LegKey, LegMedia] = {}
        self._by_call: dict[str, list[LegKey]] = {}
        self._version = 1
        self._closing: set[asyncio.Future[Path]] = set()

    # ---- offer/answer --------------------------------------------------------
    async def _leg(self, call: Call, key: LegKey) -> LegMedia:
        media = self.legs.get(key)
        if media is None:
            rtp = await self.engine.open_session(on_timeout=lambda _s: self._timed_out(key))
            media = LegMedia(rtp, call.id)
            self.legs[key] = media
            self._by_call.setdefault(call.id, []).append(key)
        return media

    async def answer(self, call: Call, key: LegKey, offer: bytes) -> bytes:
        """Our SDP answer to a leg's offer; SdpError (488/400) when it cannot be accepted."""
        description = parse_sdp(offer)
        media = await self._leg(call, key)
        try:
            answer, negotiated = negotiate_answer(
                description, self.engine.host, media.rtp.port, session_id=media.rtp.ssrc, version=1
            )
        except Exception:
            self.release_leg(key)
            raise
        media.local = answer
        self._apply(key, media, negotiated)
        return bytes(answer)

    async def offer(self, call: Call, key: LegKey) -> bytes:
        """Our SDP offer for a leg (a call Cosmo places, or an INVITE without SDP)."""
        media = await self._leg(call, key)
        offer = create_offer(self.engine.host, media.rtp.port, session_id=media.rtp.ssrc, version=1)
        media.local = media.pending_offer = offer
        return bytes(offer)

    def apply_answer(self, key: LegKey, answer: bytes) -> None:
        """The peer's answer to our offer (in its 2xx, or in the ACK)."""
        media = self.legs.get(key)
        if media is None or media.pending_offer is None:
            return
        negotiated = process_answer(media.pending_offer, parse_sdp(answer))
        media.pending_offer = None
        self._apply(key, media, negotiated)

    def reoffer(self, key: LegKey, offer: bytes) -> bytes | None:
        """Answer a re-INVITE's offer on the same port (hold, resume, new address)."""
        media = self.legs.get(key)
        if media is None or media.local is None:
            return None
        description = parse_sdp(offer)
        answer, negotiated = negotiate_answer(
            description,
            self.engine.host,
            media.rtp.port,
            session_id=media.local.origin.sess_id,
            version=media.local.origin.sess_version + 1,
        )
        media.local = answer
        self._apply(key, media, negotiated)
        return bytes(answer)

    def hold_offer(self, key: LegKey, hold: bool) -> bytes:
        """A re-offer from Cosmo that puts the leg on hold (sendonly) or resumes it."""
        media = self.legs[key]
        assert media.local is not None
        direction = Direction.SENDONLY if hold else Direction.SENDRECV
        offer = next_version(
            create_offer(self.engine.host, media.rtp.port, session_id=media.local.origin.sess_id,
                         version=media.local.origin.sess_version, direction=direction)
        )
        media.local = media.pending_offer = offer
        return bytes(offer)

    def _apply(self, key: LegKey, media: LegMedia, negotiated: NegotiatedMedia) -> None:
        media.negotiated = negotiated
        direction = negotiated.direction
        media.rtp.configure(
            negotiated.remote_address,
            negotiated.remote_rtp_port,
            payload_type=negotiated.codec.payload_type,
            codec=negotiated.codec.name.upper(),
            event_payload_type=negotiated.telephone_event_payload_type,
            sends=direction.sends,
            receives=direction.receives,
            rtcp_port=negotiated.remote_rtcp_port,
        )
        # A peer that will not receive from us (sendonly/inactive offer, or a
        # 0.0.0.0 address) has put the call on hold (RFC 3264 §8.4).
        holding = not direction.sends
        media.rtp.on_hold = not (direction.sends and direction.receives)
        if holding != media.holding:
            media.holding = holding
            if self.on_hold_change is not None:
                self.on_hold_change(key, holding)

    # ---- verbs -------------------------------------------------------------
    def rtp(self, key: LegKey) -> RtpSession | None:
        """The RTP session of a leg."""
        media = self.legs.get(key)
        return media.rtp if media is not None else None

    def play(self, key: LegKey, prompts: Sequence[str | Path], *, loop: bool = False,
             language: str = DEFAULT_LANGUAGE) -> Player | None:
        """Play prompts (names under media/prompts/<language>/, or paths) to a leg,
        replacing what it heard.  Raises ``PromptNotFound`` for a prompt that is not there."""
        media = self.legs.get(key)
        if media is None:
            return None
        self.stop_playing(key)
        cursor = PlaylistCursor(self.prompts, Playlist(tuple(prompts), loop=loop), media.rtp.codec, language)
        media.player = self.engine.play(media.rtp, cursor)
        return media.player

    def stop_playing(self, key: LegKey, reason: str = "stopped") -> None:
        """Stop a leg's prompt or music."""
        media = self.legs.get(key)
        if media is not None and media.player is not None:
            media.player.stop(reason)
            media.player = None

    def hold_music(self, key: LegKey) -> Player | None:
        """Loop the music on hold to a leg."""
        return self.play(key, [self.moh], loop=True)

    def bridge(self, a: LegKey, b: LegKey) -> Relay | None:
        """Connect two legs' audio (stops anything playing to them, and their earlier bridges)."""
        media_a, media_b = self.legs.get(a), self.legs.get(b)
        if media_a is None or media_b is None:
            return None
        self.stop_playing(a)
        self.stop_playing(b)
        for media in (media_a, media_b):  # a leg is in one bridge at a time
            if media.relay is not None:
                media.relay.stop()
        relay = self.engine.relay(media_a.rtp, media_b.rtp)
        media_a.relay = media_b.relay = relay
        return relay

    def unbridge(self, key: LegKey) -> None:
        """Stop the bridge a leg is in (both legs stay up, hearing nothing of each other)."""
        media = self.legs.get(key)
        if media is not None and media.relay is not None:
            media.relay.stop()

    def record(self, path: Path, caller: LegKey, agent: LegKey | None = None) -> Recorder | None:
        """Record a call: ``caller`` on the left channel, ``agent`` on the right."""
        media_a = self.legs.get(caller)
        if media_a is None:
            return None
        media_b = self.legs.get(agent) if agent is not None else None
        recorder = self.engine.record(path, media_a.rtp, media_b.rtp if media_b else None)
        media_a.recorders.append(recorder)
        return recorder

    async def stop_recording(self, recorder: Recorder) -> Path:
        """Finish a recording before its leg ends (the WAV is complete on return)."""
        for media in self.legs.values():
            if recorder in media.recorders:
                media.recorders.remove(recorder)
        return await recorder.close()

    def statistics(self, key: LegKey) -> dict[str, object]:
        """What the leg's RTP session counted (for the call record)."""
        media = self.legs.get(key)
        if media is None:
            return {}
        snapshot = media.rtp.reception.snapshot()
        return {
            **media.rtp.stats.to_dict(),
            "codec": media.rtp.codec,
            "loss_percent": round(snapshot.loss_percent, 2),
            "jitter_ms": round(snapshot.jitter_ms, 2),
            "max_jitter_ms": round(snapshot.max_jitter_ms, 2),
            "lost": snapshot.lost,
        }

    # ---- teardown ------------------------------------------------------------
    def release_leg(self, key: LegKey) -> None:
        """Close one leg's media."""
        media = self.legs.pop(key, None)
        if media is None:
            return
        if media.player is not None:
            media.player.stop("released")
        if media.relay is not None:
            media.relay.stop()
        for recorder in media.recorders:  # finish the WAV (header sizes) in the background
            task = asyncio.ensure_future(recorder.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        media.rtp.close()

    def release(self, call: Call) -> None:
        """Close every leg's media of a call."""
        for key in self._by_call.pop(call.id, []):
            self.release_leg(key)

    def _timed_out(self, key: LegKey) -> None:
        if self.on_timeout is not None and key in self.legs:
            self.on_timeout(key)
