"""The English fallback (pocketsphinx's bundled model) through the stream.

eSpeak NG ``-v en-us`` (and four variants of it) after a µ-law round trip, in
grammar mode over the speech menu's phrases.  Measured on this setup: every
phrase recognised with every voice; out-of-grammar words come out as a phrase
with low confidence, or as no match.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cosmo.speech.recognizer import Engine
from cosmo.speech.service import SpeechService
from cosmo.speech.settings import SpeechSettings
from tests.speech.conftest import feed, noise, speech

MENU = ["technical support", "account balance", "operator", "yes", "no"]
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-us+m7", "en-us+f4"]


@pytest.fixture
async def service(english: Engine) -> AsyncIterator[SpeechService]:
    svc = SpeechService(SpeechSettings(), engines={"en": english})
    await svc.start()
    yield svc
    await svc.close()


async def hear(svc: SpeechService, text: str, voice: str, phrases: list[str]):  # type: ignore[no-untyped-def]
    stream = svc.stream("en-US")
    try:
        listening = asyncio.ensure_future(stream.listen(phrases, no_input_timeout_s=5, max_speech_s=10))
        await feed(stream, noise(0.8) + speech(text, voice) + noise(1.2), pace_s=0.001)
        return await asyncio.wait_for(listening, 10)
    finally:
        stream.close()


@pytest.mark.parametrize("phrase", MENU)
async def test_menu_phrase_recognised(service: SpeechService, phrase: str) -> None:
    got = await hear(service, phrase, "en-us", MENU)
    assert got is not None and got.text == phrase


async def test_menu_phrases_across_voices(service: SpeechService) -> None:
    right = {phrase: 0 for phrase in MENU}
    confident = {phrase: 0 for phrase in MENU}
    for phrase in MENU:
        for voice in VOICES:
            got = await hear(service, phrase, voice, MENU)
            if got is not None and got.text == phrase:
                right[phrase] += 1
                confident[phrase] += got.confidence >= 0.5
    print(f"right of {len(VOICES)} voices: {right}; confident: {confident}")
    # Usually all 25; a loaded machine changes how frames reach the decoder, and one
    # voice of a phrase has been missed (seen once: "account balance" 4 of 5).
    assert all(count >= len(VOICES) - 1 for count in right.values()), right
    assert sum(right.values()) >= len(MENU) * len(VOICES) - 2, right
    # the multi-syllable phrases are sure; "yes" and "no" are short and weaker
    for phrase in ("technical support", "account balance", "operator"):
        assert confident[phrase] >= right[phrase] - 1, (phrase, right, confident)


async def test_sentence_outside_the_grammar_is_not_confident(service: SpeechService) -> None:
    for text in ("I want to pay my bill", "goodbye"):
        got = await hear(service, text, "en-us", MENU)
        assert got is None or got.text == "" or got.confidence < 0.5, (text, got)


async def test_free_mode_returns_words(service: SpeechService) -> None:
    got = await hear(service, "operator", "en-us", [])
    assert got is not None and got.text != ""


def test_unknown_words(service: SpeechService) -> None:
    assert service.unknown_words("en", ["Technical support", "frobnicatory operator"]) == ["frobnicatory"]
    assert service.engines() == {"en": "pocketsphinx"}
    assert service.serves("en-GB") and not service.serves("ko")
