"""Text-to-speech (cosmo.speech.tts): eSpeak NG to cached 8 kHz WAVs."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from cosmo.speech.errors import SynthesisError
from cosmo.speech.settings import TtsSettings
from cosmo.speech.tts import TextToSpeech, read_wav_pcm
from tests.speech.conftest import need_espeak


@pytest.fixture
def tts(tmp_path: Path) -> TextToSpeech:
    need_espeak()
    return TextToSpeech(TtsSettings(cache_dir=tmp_path / "cache"))


async def test_synthesis_is_8khz_mono_16bit(tts: TextToSpeech) -> None:
    path = await tts.synthesize("Your balance is twelve dollars.", "en")
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert 1.0 < wav.getnframes() / 8000 < 4.0
    pcm, rate = read_wav_pcm(path.read_bytes())
    assert rate == 8000
    assert not pcm[:400].any()  # 50 ms lead-in
    assert 0.65 < abs(int(pcm.astype(int).max())) / 32767 < 0.72  # -3 dBFS peak


async def test_cached_by_engine_voice_and_text(tts: TextToSpeech) -> None:
    first = await tts.synthesize("Hello  there", "en")
    stamp = first.stat().st_mtime_ns
    again = await tts.synthesize("Hello there", "en")
    assert again == first and again.stat().st_mtime_ns == stamp
    assert first.parent == tts.settings.cache_dir
    other_voice = await tts.synthesize("Hello there", "de")
    assert other_voice != first
    both = await asyncio.gather(tts.synthesize("same time", "en"), tts.synthesize("same time", "en"))
    assert both[0] == both[1]
    assert sorted(p.suffix for p in tts.settings.cache_dir.iterdir()) == [".wav"] * 3


async def test_errors(tts: TextToSpeech, tmp_path: Path) -> None:
    with pytest.raises(SynthesisError) as info:
        await tts.synthesize("   ", "en")
    assert str(info.value) == "nothing to say: the text is empty"
    bad_voice = TextToSpeech(TtsSettings(cache_dir=tmp_path, voices={"xx": "qqq-nonexistent"}))
    with pytest.raises(SynthesisError) as info:
        await bad_voice.synthesize("hello", "xx")
    assert str(info.value).startswith("espeak-ng voice 'qqq-nonexistent' failed (exit 1): ")
    missing = TextToSpeech(TtsSettings(cache_dir=tmp_path, command="/nonexistent/espeak-ng"))
    with pytest.raises(SynthesisError) as info:
        await missing.synthesize("hello", "en")
    assert str(info.value).startswith("espeak-ng: cannot run '/nonexistent/espeak-ng': ")


def test_voice_per_language() -> None:
    settings = TtsSettings(voices={"en": "en-us", "pt": "pt-br"})
    assert [settings.voice(lang) for lang in ("en", "en-GB", "pt", "ko")] == ["en-us", "en-us", "pt-br", "ko"]
