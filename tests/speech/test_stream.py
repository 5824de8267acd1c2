"""The stream's turn logic and its lane to the recogniser (cosmo.speech.stream), with a scripted recogniser."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from cosmo.speech.errors import SpeechError
from cosmo.speech.recognizer import Recognition
from cosmo.speech.settings import FRAME_BYTES, SpeechSettings
from cosmo.speech.stream import SpeechStream
from tests.speech.conftest import feed, noise
from tests.speech.test_vad import vowel


class ScriptedRecognizer:
    """Records what it is asked, from which thread; answers with the bytes it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.threads: set[str] = set()
        self.active = 0
        self.overlapped = False
        self.fed = 0

    def _enter(self, name: str, arg: object) -> None:
        self.active += 1
        self.overlapped |= self.active > 1
        self.threads.add(threading.current_thread().name)
        self.calls.append((name, arg))

    def begin(self, phrases: Sequence[str]) -> None:
        self._enter("begin", tuple(phrases))
        self.fed = 0
        self.active -= 1

    def accept(self, pcm: bytes) -> None:
        self._enter("accept", len(pcm))
        self.fed += len(pcm)
        self.active -= 1

    def finish(self) -> Recognition:
        self._enter("finish", None)
        self.active -= 1
        return Recognition("operator", self.fed / 100000)

    def close(self) -> None:
        self._enter("close", None)
        self.active -= 1


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="speech-test")
    yield pool
    pool.shutdown()


def make(executor: ThreadPoolExecutor, **settings: object) -> tuple[SpeechStream, ScriptedRecognizer]:
    recognizer = ScriptedRecognizer()
    stream = SpeechStream(recognizer, SpeechSettings.model_validate(settings), executor,
                          language="en", engine="scripted", label="call-1")
    return stream, recognizer


async def test_utterance_fed_in_chunks_from_the_preroll(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor)
    starts: list[int] = []
    stream.on_speech_start = lambda: starts.append(len(rec.calls))
    listening = asyncio.ensure_future(stream.listen(["operator"], no_input_timeout_s=5, max_speech_s=10))
    await feed(stream, noise(1.0) + vowel(1.0) + noise(1.5))
    got = await listening
    assert got is not None and got.text == "operator"
    assert len(starts) == 1
    kinds = [name for name, _ in rec.calls]
    assert kinds[0] == "begin" and rec.calls[0][1] == ("operator",)
    assert kinds[-1] == "finish" and set(kinds[1:-1]) == {"accept"}
    # from 300 ms before the 10-frame start window (about frame 35) to 300 ms past the last voiced frame
    fed_frames = sum(int(arg) for name, arg in rec.calls if name == "accept") // FRAME_BYTES  # type: ignore[call-overload]
    assert 75 <= fed_frames <= 90
    assert all(t.startswith("speech-test") for t in rec.threads)
    assert not rec.overlapped
    assert stream.last_decision_s is not None and stream.last_decision_s < 0.3


async def test_no_input_returns_none_after_the_timeout(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor)
    loop = asyncio.get_running_loop()
    started = loop.time()
    listening = asyncio.ensure_future(stream.listen([], no_input_timeout_s=0.3, max_speech_s=10))
    await feed(stream, noise(0.6), pace_s=0.02)
    assert listening.done() and await listening is None
    assert 0.3 <= loop.time() - started
    assert [name for name, _ in rec.calls] == ["begin"]


async def test_longest_speech_cuts_the_utterance(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor)
    listening = asyncio.ensure_future(stream.listen([], no_input_timeout_s=5, max_speech_s=1.0))
    await feed(stream, noise(0.5) + vowel(3.0))
    assert (await listening) is not None
    fed_frames = sum(int(arg) for name, arg in rec.calls if name == "accept") // FRAME_BYTES  # type: ignore[call-overload]
    assert fed_frames == 50


async def test_without_gating_the_whole_turn_is_fed(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor, vad_gating=False)
    listening = asyncio.ensure_future(stream.listen([], no_input_timeout_s=5, max_speech_s=10))
    await feed(stream, noise(1.0) + vowel(1.0) + noise(1.5))
    await listening
    fed_frames = sum(int(arg) for name, arg in rec.calls if name == "accept") // FRAME_BYTES  # type: ignore[call-overload]
    assert fed_frames >= 50 + 50 + 30


async def test_a_cancelled_turn_leaves_the_stream_usable(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor)
    listening = asyncio.ensure_future(stream.listen(["a"], no_input_timeout_s=5, max_speech_s=10))
    await feed(stream, noise(0.3) + vowel(0.5))
    listening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listening
    again = asyncio.ensure_future(stream.listen(["b"], no_input_timeout_s=5, max_speech_s=10))
    await feed(stream, noise(1.0) + vowel(0.8) + noise(1.2))
    assert (await again) is not None
    assert [arg for name, arg in rec.calls if name == "begin"] == [("a",), ("b",)]


async def test_one_listen_at_a_time_and_close(executor: ThreadPoolExecutor) -> None:
    stream, rec = make(executor)
    listening = asyncio.ensure_future(stream.listen([], no_input_timeout_s=5, max_speech_s=10))
    await asyncio.sleep(0)
    with pytest.raises(SpeechError) as info:
        await stream.listen([], no_input_timeout_s=5, max_speech_s=10)
    assert str(info.value) == "call-1: already listening"
    stream.close()
    assert await listening is None
    await asyncio.sleep(0.05)
    assert rec.calls[-1] == ("close", None)
    with pytest.raises(SpeechError) as info:
        await stream.listen([], no_input_timeout_s=5, max_speech_s=10)
    assert str(info.value) == "call-1: the speech stream is closed"


async def test_odd_sized_pushes_are_recut(executor: ThreadPoolExecutor) -> None:
    stream, _ = make(executor)
    listening = asyncio.ensure_future(stream.listen([], no_input_timeout_s=5, max_speech_s=10))
    audio = noise(1.0) + vowel(1.0) + noise(1.5)
    for offset in range(0, len(audio), 480):  # 30 ms pushes
        stream.push(audio[offset:offset + 480])
        await asyncio.sleep(0.001)
    assert (await listening) is not None
