"""One call's speech: :class:`SpeechStream` turns 20 ms PCM frames into recognitions.

Theory of operation
-------------------
The call layer pushes every frame of the caller's audio with :meth:`SpeechStream.push`
on the event loop.  There the stream only runs the voice activity detector
(webrtcvad, tens of microseconds a frame) and hands audio on; recognition
runs on the service's thread pool.

A turn is one :meth:`SpeechStream.listen`.  It prepares the recogniser
(grammar or free mode), then waits for speech.  When the detector says speech
started, the stream calls :attr:`SpeechStream.on_speech_start` (barge-in: the
caller stops the prompt) and gives the recogniser the pre-roll and then the
frames as they come, in chunks of ``chunk_ms``, so that decoding keeps pace
with the caller.  Of a pause in speech only the first ``tail_ms`` go on at
once; the rest is held back, given to the recogniser if speech resumes and
dropped when the pause turns out to be the end of speech (the 700 ms end
window would otherwise be a third of what is decoded per turn).  When the detector says speech ended (or ``max_speech_s``
passed) the rest is flushed and the final result asked for; what remains to
do then is a fraction of a chunk and the final search, which is what makes
the decision fast.  No speech within ``no_input_timeout_s`` returns ``None``.

Work for the recogniser goes through a *lane*: one job at a time per stream,
in order (begin, accept, accept, ..., finish), because a recogniser is not
thread-safe; audio that arrives while a job runs is gathered into the next
one.  Accepts go to the service's feeding pool; begin and finish (with the
last audio) to its *urgent* pool, so a decision does not wait behind the
audio other callers are still speaking.  Threads never touch the stream: jobs get bytes and return values, and
their completions come back through the loop.

With ``vad_gating`` off the recogniser is fed every frame of the turn, silence
too (what a recogniser without a detector costs; kept for measurement).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cosmo.speech.errors import SpeechError
from cosmo.speech.recognizer import Recognition, Recognizer
from cosmo.speech.settings import FRAME_BYTES, FRAME_MS, SpeechSettings
from cosmo.speech.vad import VadEvent, VadState, VoiceActivityDetector

__all__ = ["SpeechStream"]

log = logging.getLogger(__name__)


class _JobKind(StrEnum):
    BEGIN = "begin"
    ACCEPT = "accept"
    FINISH = "finish"
    CLOSE = "close"


@dataclass(slots=True)
class _Job:
    kind: _JobKind
    audio: bytearray = field(default_factory=bytearray)
    phrases: tuple[str, ...] = ()
    done: Callable[[Any, BaseException | None], None] | None = None


@dataclass(slots=True)
class _Turn:
    phrases: tuple[str, ...]
    result: asyncio.Future[Recognition | None]
    max_frames: int
    in_speech: bool = False
    ended: bool = False
    speech_frames: int = 0
    unvoiced_run: int = 0
    held: list[bytes] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SpeechStream:
    """The speech side of one call, kept warm across the turns of a flow.

    Made by :meth:`cosmo.speech.service.SpeechService.stream`.  ``label``
    prefixes log lines (the call id, when the caller gives one).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        settings: SpeechSettings,
        executor: Executor,
        *,
        language: str,
        engine: str,
        label: str = "",
        urgent: Executor | None = None,
    ) -> None:
        self.language = language
        self.engine = engine
        self.label = label or f"speech-{id(self):x}"
        self.on_speech_start: Callable[[], None] | None = None
        """Called on the loop when the caller starts speaking during a turn."""
        self.last_decision_s: float | None = None
        """Time from the detected end of speech to the result, of the last turn that had speech."""
        self.on_decision: Callable[[float], None] | None = None
        """Called with each end-of-speech → result time (measurement hook)."""
        self._recognizer = recognizer
        self._settings = settings
        self._executor = executor
        self._urgent = urgent or executor
        self._vad = VoiceActivityDetector.from_settings(settings)
        self._gating = settings.vad_gating
        self._chunk_bytes = settings.chunk_frames * FRAME_BYTES
        self._tail_frames = settings.tail_frames
        self._turn: _Turn | None = None
        self._lane: deque[_Job] = deque()
        self._busy = False
        self._closed = False
        self._rest = b""
        self._speech_end_at = 0.0

    # ---- frames in -------------------------------------------------------------------
    def push(self, frame: bytes) -> None:
        """One frame of the caller's audio (20 ms, 320 bytes; other sizes are re-cut)."""
        if self._closed:
            return
        if len(frame) != FRAME_BYTES or self._rest:
            data = self._rest + frame
            whole = len(data) - len(data) % FRAME_BYTES
            self._rest = data[whole:]
            for offset in range(0, whole, FRAME_BYTES):
                self._frame(data[offset:offset + FRAME_BYTES])
            return
        self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        event = self._vad.feed(frame)
        turn = self._turn
        if turn is None or turn.ended or turn.result.done():
            return
        if not turn.in_speech:
            if event is VadEvent.SPEECH_START:
                self._start_speech(turn)
            elif not self._gating:
                self._feed(frame)
            return
        turn.speech_frames += 1
        if not self._gating or self._vad.last_voiced:
            for held in turn.held:  # speech resumed: the pause belongs to the utterance
                self._feed(held)
            turn.held.clear()
            turn.unvoiced_run = 0
            self._feed(frame)
        else:
            turn.unvoiced_run += 1
            if turn.unvoiced_run <= self._tail_frames:
                self._feed(frame)
            else:
                turn.held.append(frame)
        if event is VadEvent.SPEECH_END:
            self._end_speech(turn, "end of speech")
        elif turn.speech_frames >= turn.max_frames:
            self._end_speech(turn, "longest speech")

    def _start_speech(self, turn: _Turn) -> None:
        turn.in_speech = True
        if turn.timer is not None:
            turn.timer.cancel()
            turn.timer = None
        preroll = self._vad.take_preroll()
        turn.speech_frames = len(preroll)
        if self._gating:
            for frame in preroll:
                self._feed(frame)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: speech starts (frame %d)", self.label, self._vad.frames)
        callback = self.on_speech_start
        if callback is not None:
            try:
                callback()
            except Exception:  # a broken barge-in must not take the recognition down
                log.exception("%s: on_speech_start failed", self.label)

    def _end_speech(self, turn: _Turn, why: str) -> None:
        turn.ended = True
        turn.held.clear()  # the end window past the tail: nothing the recogniser needs
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s after %d ms", self.label, why, turn.speech_frames * FRAME_MS)
        self._speech_end_at = time.perf_counter()
        finish = _Job(_JobKind.FINISH, done=self._finished(turn))
        if self._lane and self._lane[-1].kind is _JobKind.ACCEPT:
            finish.audio = self._lane.pop().audio  # the last audio goes with the decision
        self._enqueue(finish)

    def _finished(self, turn: _Turn) -> Callable[[Any, BaseException | None], None]:
        def done(value: Any, error: BaseException | None) -> None:
            elapsed = time.perf_counter() - self._speech_end_at
            if error is not None:
                log.error("%s: recognition failed: %r", self.label, error, exc_info=error)
                value = None
            else:
                self.last_decision_s = elapsed
                if self.on_decision is not None:
                    self.on_decision(elapsed)
            if not turn.result.done():
                turn.result.set_result(value)

        return done

    # ---- turns -----------------------------------------------------------------------
    async def listen(
        self,
        phrases: Sequence[str],
        *,
        no_input_timeout_s: float,
        max_speech_s: float,
    ) -> Recognition | None:
        """Listen for one utterance.

        ``phrases``: grammar mode (the result's text is one of them, or ``""``
        when the caller said something else); empty: free mode.  Returns
        ``None`` when no speech starts within ``no_input_timeout_s`` (or the
        recogniser failed).  An utterance longer than ``max_speech_s`` is cut
        there and recognised.  Raises :class:`SpeechError` when the stream is
        closed or already listening.
        """
        if self._closed:
            raise SpeechError(f"{self.label}: the speech stream is closed")
        if self._turn is not None:
            raise SpeechError(f"{self.label}: already listening")
        loop = asyncio.get_running_loop()
        max_frames = max(1, round(max_speech_s * 1000 / FRAME_MS))
        turn = _Turn(tuple(phrases), loop.create_future(), max_frames)
        self._turn = turn
        self._enqueue(_Job(_JobKind.BEGIN, phrases=turn.phrases, done=self._began(turn)))
        if self._vad.state is VadState.SPEECH:
            self._start_speech(turn)  # the caller was already speaking
        else:
            turn.timer = loop.call_later(max(0.0, no_input_timeout_s), self._no_input, turn)
        try:
            return await turn.result
        finally:
            if turn.timer is not None:
                turn.timer.cancel()
            if not turn.result.done():
                turn.result.cancel()
            self._turn = None

    def _began(self, turn: _Turn) -> Callable[[Any, BaseException | None], None]:
        def done(_: Any, error: BaseException | None) -> None:
            if error is not None:
                log.error("%s: recogniser not ready: %r", self.label, error, exc_info=error)
                if not turn.result.done():
                    turn.result.set_result(None)

        return done

    def _no_input(self, turn: _Turn) -> None:
        turn.timer = None
        if not turn.in_speech and not turn.result.done():
            turn.result.set_result(None)

    def close(self) -> None:
        """End the stream: a listen in progress returns ``None``; the recogniser is freed."""
        if self._closed:
            return
        self._closed = True
        turn = self._turn
        if turn is not None and not turn.result.done():
            turn.result.set_result(None)
        self._enqueue(_Job(_JobKind.CLOSE))

    # ---- the lane to the recogniser --------------------------------------------------
    def _feed(self, frame: bytes) -> None:
        last = self._lane[-1] if self._lane else None
        if last is not None and last.kind is _JobKind.ACCEPT:
            last.audio += frame  # gather audio into the job that waits
        else:
            self._lane.append(_Job(_JobKind.ACCEPT, bytearray(frame)))
        if not self._busy:
            self._next()

    def _enqueue(self, job: _Job) -> None:
        self._lane.append(job)
        if not self._busy:
            self._next()

    def _next(self) -> None:
        """Start the job at the head of the lane (an accept only once it holds a chunk, or is not last)."""
        if self._busy or not self._lane:
            return
        job = self._lane[0]
        if job.kind is _JobKind.ACCEPT and len(self._lane) == 1 and len(job.audio) < self._chunk_bytes:
            return  # wait for more audio, or for the finish behind it
        self._lane.popleft()
        self._busy = True
        loop = asyncio.get_running_loop()
        try:
            executor = self._executor if job.kind is _JobKind.ACCEPT else self._urgent
            future = loop.run_in_executor(executor, self._run, job.kind, bytes(job.audio), job.phrases)
        except RuntimeError:  # the service closed its executor: nothing more will be recognised
            log.debug("%s: the speech service is closed; %s dropped", self.label, job.kind)
            self._busy = False
            self._lane.clear()
            turn = self._turn
            if turn is not None and not turn.result.done():
                turn.result.set_result(None)
            return
        future.add_done_callback(lambda f: self._job_done(job, f))

    def _run(self, kind: _JobKind, audio: bytes, phrases: tuple[str, ...]) -> Recognition | None:
        """On a worker thread: one step of the recogniser."""
        if kind is _JobKind.BEGIN:
            self._recognizer.begin(phrases)
        elif kind is _JobKind.ACCEPT:
            self._recognizer.accept(audio)
        elif kind is _JobKind.FINISH:
            if audio:
                self._recognizer.accept(audio)
            return self._recognizer.finish()
        else:
            self._recognizer.close()
        return None

    def _job_done(self, job: _Job, future: asyncio.Future[Recognition | None]) -> None:
        self._busy = False
        error = None if future.cancelled() else future.exception()
        if job.done is not None:
            job.done(None if error is not None else future.result(), error)
        elif error is not None:
            log.error("%s: recogniser %s failed: %r", self.label, job.kind, error, exc_info=error)
        if self._closed and job.kind is _JobKind.CLOSE:
            self._lane.clear()
            return
        self._next()
