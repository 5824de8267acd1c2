"""Voice activity detection with smoothing: when a caller starts and stops speaking.

Theory of operation
-------------------
webrtcvad classifies each 20 ms frame as voiced or not.  Single frames are
unreliable (a click, a breath, line noise), so the decision is smoothed the
usual way: speech *starts* when ``start_voiced`` of the last ``start_window``
frames are voiced (8 of 10 by default, so at least 160 ms of voice), and
*ends* when 90 % of the last ``end_silence_ms`` are not.  Frames quieter than
``min_level_dbfs`` are never voiced, whatever webrtcvad says: some of its
modes call steady low-level noise speech.

The detector is a plain state machine fed frames (:meth:`VoiceActivityDetector.feed`)
and returning :class:`VadEvent` s; it owns no clock and no task.  It keeps the
last ``preroll_frames + start_window`` frames, so when speech starts the
recogniser also gets the audio from just before the decision (the first
syllable, which the smoothing window delayed) — :meth:`VoiceActivityDetector.take_preroll`.
"""

from __future__ import annotations

import math
from collections import deque
from enum import StrEnum

import numpy as np
import webrtcvad  # type: ignore[import-untyped]

from cosmo.speech.errors import SpeechError
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE, SpeechSettings

__all__ = ["VadEvent", "VadState", "VoiceActivityDetector"]

_END_VOICED_SHARE = 0.1


class VadEvent(StrEnum):
    """A change the detector reports."""

    SPEECH_START = "speech-start"
    SPEECH_END = "speech-end"


class VadState(StrEnum):
    SILENCE = "silence"
    SPEECH = "speech"


class VoiceActivityDetector:
    """Smoothed speech start/end over 20 ms frames of 8 kHz 16-bit PCM.

    Raises :class:`SpeechError` for a frame that is not 320 bytes.
    """

    def __init__(
        self,
        *,
        aggressiveness: int = 2,
        start_voiced: int = 8,
        start_window: int = 10,
        end_frames: int = 35,
        preroll_frames: int = 15,
        min_level_dbfs: float = -50.0,
    ) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self.start_voiced = start_voiced
        self.start_window = start_window
        self.end_frames = end_frames
        self._end_max_voiced = int(end_frames * _END_VOICED_SHARE)
        # Mean square of a frame at min_level_dbfs, in int16 units squared.
        self._min_power = (32768.0 * 10 ** (min_level_dbfs / 20)) ** 2
        self._start_flags: deque[bool] = deque(maxlen=start_window)
        self._end_flags: deque[bool] = deque(maxlen=end_frames)
        self._history: deque[bytes] = deque(maxlen=preroll_frames + start_window)
        self.state = VadState.SILENCE
        self.frames = 0
        """Frames seen since the detector was made."""
        self.speech_frames = 0
        """Frames since the current utterance started (0 in silence)."""
        self.last_voiced = False
        """The raw decision on the last frame fed."""

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> VoiceActivityDetector:
        return cls(
            aggressiveness=settings.vad_aggressiveness,
            start_voiced=settings.start_voiced,
            start_window=settings.start_window,
            end_frames=settings.end_frames,
            preroll_frames=settings.preroll_frames,
            min_level_dbfs=settings.min_level_dbfs,
        )

    def is_voiced(self, frame: bytes) -> bool:
        """One frame's raw decision: loud enough and voiced by webrtcvad."""
        if len(frame) != FRAME_BYTES:
            raise SpeechError(f"a frame is {FRAME_BYTES} bytes of 16-bit PCM, got {len(frame)}")
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        if float(np.dot(samples, samples)) < self._min_power * len(samples):
            return False
        return bool(self._vad.is_speech(frame, SAMPLE_RATE))

    def feed(self, frame: bytes) -> VadEvent | None:
        """Take the next frame; the event it causes, if any."""
        voiced = self.is_voiced(frame)
        self.last_voiced = voiced
        self.frames += 1
        self._history.append(frame)
        if self.state is VadState.SILENCE:
            self._start_flags.append(voiced)
            if sum(self._start_flags) >= self.start_voiced:
                self.state = VadState.SPEECH
                self.speech_frames = len(self._start_flags)
                self._end_flags.clear()
                return VadEvent.SPEECH_START
            return None
        self.speech_frames += 1
        self._end_flags.append(voiced)
        if len(self._end_flags) == self.end_frames and sum(self._end_flags) <= self._end_max_voiced:
            self._to_silence()
            return VadEvent.SPEECH_END
        return None

    def take_preroll(self) -> list[bytes]:
        """The frames kept before (and including) the one that started speech; empties the store."""
        frames = list(self._history)
        self._history.clear()
        return frames

    def reset(self) -> None:
        """Back to silence, forgetting history (a new turn that must not inherit an utterance)."""
        self._to_silence()
        self._history.clear()

    def _to_silence(self) -> None:
        self.state = VadState.SILENCE
        self.speech_frames = 0
        self._start_flags.clear()
        self._end_flags.clear()


def level_dbfs(frame: bytes) -> float:
    """RMS level of a PCM frame in dBFS (−inf for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    if not len(samples):
        return -math.inf
    rms = math.sqrt(float(np.dot(samples, samples)) / len(samples))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf
