"""Voice activity detection with smoothing (cosmo.speech.vad)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosmo.speech.errors import SpeechError
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE, SpeechSettings
from cosmo.speech.vad import VadEvent, VadState, VoiceActivityDetector, level_dbfs
from tests.speech.conftest import frames, noise, speech


def vowel(seconds: float, level: float = 0.3) -> bytes:
    """A voiced sound: 140 Hz glottal-like harmonics, as webrtcvad's speech model likes."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 20))
    wave = wave / np.max(np.abs(wave)) * level * 32767
    return wave.astype("<i2").tobytes()


def events(vad: VoiceActivityDetector, pcm: bytes) -> list[tuple[int, VadEvent]]:
    got = []
    for frame in frames(pcm):
        event = vad.feed(frame)
        if event is not None:
            got.append((vad.frames, event))
    return got


def test_silence_and_line_noise_never_start() -> None:
    vad = VoiceActivityDetector()
    assert events(vad, bytes(FRAME_BYTES * 100) + noise(3.0) + noise(2.0, rms=100, seed=3)) == []
    assert vad.state is VadState.SILENCE


def test_start_needs_8_of_10_voiced_frames_then_end_after_silence() -> None:
    vad = VoiceActivityDetector(end_frames=35)
    got = events(vad, noise(1.0) + vowel(1.0) + noise(1.5))
    assert [event for _, event in got] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    start, end = got[0][0], got[1][0]
    assert 50 + 8 <= start <= 50 + 10  # 8 voiced frames at the least, within the 10-frame window
    assert 100 + 30 <= end <= 100 + 36  # 90 % of the 700 ms window unvoiced


def test_first_frames_of_a_stream_do_not_start_speech() -> None:
    vad = VoiceActivityDetector()
    # a short click and a burst of voice shorter than the smoothing window
    assert events(vad, vowel(0.06) + noise(0.5) + vowel(0.14) + noise(0.5)) == []


def test_preroll_holds_the_audio_before_the_decision() -> None:
    settings = SpeechSettings(preroll_ms=300)
    vad = VoiceActivityDetector.from_settings(settings)
    events(vad, noise(1.0) + vowel(0.5))
    assert len(vad.take_preroll()) == settings.preroll_frames + settings.start_window
    assert vad.take_preroll() == []


def test_speech_sample_starts_and_ends() -> None:
    vad = VoiceActivityDetector()
    got = events(vad, noise(0.5) + speech("technical support", "en-us") + noise(1.0))
    assert [event for _, event in got] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    assert got[0][0] > 25


def test_frame_size_checked() -> None:
    with pytest.raises(SpeechError) as info:
        VoiceActivityDetector().feed(b"\0" * 100)
    assert str(info.value) == "a frame is 320 bytes of 16-bit PCM, got 100"


def test_level_dbfs() -> None:
    assert level_dbfs(bytes(FRAME_BYTES)) == -math.inf
    sine = np.sin(2 * math.pi * 1000 * np.arange(160) / SAMPLE_RATE) * 32767
    assert level_dbfs(sine.astype("<i2").tobytes()) == pytest.approx(-3.01, abs=0.05)
