"""IVR flows on real calls: :class:`CallIvrPort` implements the flow interpreter's
:class:`~cosmo.ivr.port.CallPort` on an answered caller's leg.

Theory of operation
-------------------
The interpreter (``ivr/``) asks for verbs; this module does them with what
``calls/`` already has:

* **play** — prompt parts become one playlist: prompt names and paths as they
  are, text through the text-to-speech cache (a WAV per text, made once), say-as
  values as the fragments of :mod:`cosmo.rtp.sayas`.  A prompt that is missing
  is logged and skipped; the caller hears the rest.
* **listen** — the prompt plays while the leg's :class:`LegInput` collects
  digits (type-ahead kept across prompts) and, when speech is asked for, feeds
  20 ms PCM frames to the call's speech stream.  A digit or the start of speech
  stops the prompt (barge-in); a caller who already pressed a key skips the
  menu's prompt at once.  Timeouts run from the end of the prompt.  Digits and
  speech race: the first real answer wins; a digit timeout waits for an
  utterance that has begun.
* **queue**, **voicemail**, **transfer** — the voice channel of the ACD
  (:class:`~cosmo.calls.queueing.VoiceQueue`), with the flow's data on the call.

Nothing here touches the interpreter's state; one port serves one run of a
flow on one leg, and :meth:`CallIvrPort.close` unhooks it from the leg.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cosmo.calls.leginput import LegInput
from cosmo.ivr.port import (
    DigitSpec,
    Input,
    Prompt,
    PromptPart,
    QueueRequest,
    SayAs,
    SpeechSpec,
    Text,
)
from cosmo.rtp.player import Player
from cosmo.rtp.prompts import PromptNotFound
from cosmo.rtp.sayas import (
    say_currency,
    say_digits,
    say_duration,
    say_number,
    say_position,
)
from cosmo.sip.session import InviteSession, SessionState
from cosmo.speech.errors import SpeechError

if TYPE_CHECKING:
    from cosmo.calls.call import Call
    from cosmo.calls.queueing import VoiceQueue

__all__ = ["CallIvrPort", "FlowRunner", "IvrCalls", "SpeechStreams", "TextToSpeech"]

log = logging.getLogger(__name__)

TextToSpeech = Callable[[str, str], Awaitable[Path]]
"""``(text, language) -> path of an 8 kHz WAV`` speaking it."""


class Recognized(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def confidence(self) -> float: ...


class SpeechStream(Protocol):
    """One call's recogniser, kept warm across the turns of a flow."""

    on_speech_start: Callable[[], None] | None

    def push(self, frame: bytes) -> None: ...

    async def listen(self, phrases: Sequence[str], *, no_input_timeout_s: float,
                     max_speech_s: float) -> Recognized | None: ...

    def close(self) -> None: ...


class SpeechStreams(Protocol):
    """What a port needs of the speech service (``SpeechError`` for a language it does not serve)."""

    def stream(self, language: str, *, label: str = "") -> SpeechStream: ...


class FlowRunner(Protocol):
    """What runs a flow by name (the IVR's flow registry)."""

    def __contains__(self, name: object) -> bool: ...

    async def run(self, name: str, port: Any) -> object: ...


def _said(part: SayAs) -> list[str]:
    value = part.value.strip()
    if part.kind == "digits":
        return say_digits("".join(ch for ch in value if ch.isdigit() or ch in "*#"))
    if part.kind == "currency":
        return say_currency(Decimal(value))
    if part.kind == "duration":
        return say_duration(float(value), about=False)
    if part.kind == "position":
        return say_position(int(value))
    return say_number(int(Decimal(value)))


class CallIvrPort:
    """A :class:`~cosmo.ivr.port.CallPort` on the caller's leg of a call."""

    def __init__(
        self,
        voice: VoiceQueue,
        call: Call,
        session: InviteSession,
        *,
        language: str = "en",
        speech: SpeechStreams | None = None,
        tts: TextToSpeech | None = None,
    ) -> None:
        self.voice = voice
        self.media = voice.media
        self.call = call
        self.session = session
        self._language = language
        self._speech = speech
        self._tts = tts
        self._input: LegInput | None = None
        self._stream: SpeechStream | None = None
        self._stream_language = ""

    # ---- CallPort properties ---------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.call.id

    @property
    def caller(self) -> str:
        return self.call.caller

    @property
    def callee(self) -> str:
        return self.call.callee

    @property
    def language(self) -> str:
        return self._language

    @language.setter
    def language(self, value: str) -> None:
        self._language = value

    @property
    def data(self) -> dict[str, Any]:
        return self.call.data

    @property
    def hung_up(self) -> bool:
        return self.session.state == SessionState.TERMINATED

    # ---- playing -----------------------------------------------------------------------
    async def _prompts(self, parts: Sequence[PromptPart]) -> list[str | Path]:
        prompts: list[str | Path] = []
        for part in parts:
            if isinstance(part, Prompt):
                prompts.append(part.name)
            elif isinstance(part, Text):
                if not part.text.strip():
                    continue
                if self._tts is None:
                    log.warning("call %s: no text-to-speech; not saying %r", self.call.id, part.text)
                    continue
                try:
                    # Absolute: a relative path would be taken as relative to media/.
                    prompts.append((await self._tts(part.text, self._language)).resolve())
                except Exception:  # an engine failure costs the caller one sentence, not the call
                    log.exception("call %s: text-to-speech failed for %r", self.call.id, part.text)
            elif isinstance(part, SayAs):
                try:
                    prompts.extend(_said(part))
                except (ValueError, InvalidOperation) as exc:
                    log.warning("call %s: cannot say %r as %s: %s", self.call.id, part.value, part.kind, exc)
        return prompts

    def _start(self, prompts: list[str | Path]) -> Player | None:
        if not prompts or self.hung_up:
            return None
        try:
            return self.media.play(self.session, prompts, language=self._language)
        except PromptNotFound as exc:
            log.warning("call %s: %s", self.call.id, exc)
        present = [p for p in prompts if self._exists(p)]
        if not present:
            return None
        return self.media.play(self.session, present, language=self._language)

    def _exists(self, prompt: str | Path) -> bool:
        try:
            return self.media.prompts.resolve(prompt, self._language).is_file()
        except PromptNotFound:
            return False

    async def play(self, parts: Sequence[PromptPart], *, barge_in: bool = False) -> bool:
        player = self._start(await self._prompts(parts))
        if player is not None:
            leg_input = self._leg_input()
            if barge_in and leg_input is not None:
                leg_input.on_digit = lambda _digit: player.stop("dtmf")
            hangup = asyncio.ensure_future(self.session.terminated.wait())
            waits: list[asyncio.Future[Any]] = [player.done, hangup]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                hangup.cancel()
                player.stop("hangup" if self.hung_up else "stopped")
                if leg_input is not None:
                    leg_input.on_digit = None
        return not self.hung_up

    # ---- listening ---------------------------------------------------------------------
    def _leg_input(self) -> LegInput | None:
        if self._input is None:
            rtp = self.media.rtp(self.session)
            if rtp is not None:
                self._input = LegInput(rtp)
        return self._input

    def _speech_stream(self, language: str) -> SpeechStream | None:
        if self._speech is None:
            return None
        if self._stream is None or self._stream_language != language:
            if self._stream is not None:
                self._stream.close()
            try:
                self._stream = self._speech.stream(language, label=f"call {self.call.id}")
            except SpeechError as exc:  # no engine for the language: keys still work
                log.info("call %s: no speech recognition: %s", self.call.id, exc)
                self._stream = None
            self._stream_language = language
        return self._stream

    def clear_digits(self) -> None:
        if self._input is not None:
            self._input.clear_digits()

    async def listen(
        self,
        parts: Sequence[PromptPart],
        *,
        digits: DigitSpec | None = None,
        speech: SpeechSpec | None = None,
        barge_in: bool = True,
    ) -> Input:
        if self.hung_up:
            return Input("hangup")
        leg_input = self._leg_input()
        if leg_input is None:
            log.warning("call %s: no media to listen to", self.call.id)
            return Input("timeout")
        prompts = await self._prompts(parts)
        if digits is not None and barge_in and leg_input.pending:
            prompts = []  # the caller already answered: skip the question
        player = self._start(prompts)
        loop = asyncio.get_running_loop()
        prompt_done: asyncio.Future[str] = player.done if player is not None else loop.create_future()
        if player is None:
            prompt_done.set_result("none")

        def barge(_: object = None) -> None:
            if player is not None:
                player.stop("barge-in")

        if barge_in:
            leg_input.on_digit = barge
        stream = self._speech_stream(speech.language) if speech is not None else None
        tasks: dict[str, asyncio.Future[Any]] = {"hangup": asyncio.ensure_future(self.session.terminated.wait())}
        if digits is not None:
            tasks["digits"] = asyncio.ensure_future(self._collect(leg_input, digits, prompt_done))
        if stream is not None and speech is not None:
            stream.on_speech_start = barge if barge_in else None
            leg_input.on_audio = stream.push
            # The no-input time runs from the end of the prompt, which the stream does not see.
            prompt_s = float(getattr(player.source, "duration_s", 0.0)) if player is not None else 0.0
            tasks["speech"] = asyncio.ensure_future(stream.listen(
                speech.phrases, no_input_timeout_s=prompt_s + speech.no_input_timeout_s,
                max_speech_s=speech.max_speech_s))
        try:
            return await self._first_answer(tasks)
        finally:
            for task in tasks.values():
                task.cancel()
            if player is not None:
                player.stop("hangup" if self.hung_up else "answered")
            leg_input.on_digit = None
            leg_input.on_audio = None
            if stream is not None:
                stream.on_speech_start = None

    async def _first_answer(self, tasks: dict[str, asyncio.Future[Any]]) -> Input:
        """Digits or speech, whichever answers first; a timeout only when both have."""
        pending = set(tasks.values())
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if tasks["hangup"] in done:
                return Input("hangup")
            if "digits" in tasks and tasks["digits"] in done:
                got: Input = tasks["digits"].result()
                if got.kind == "digits":
                    return got
            if "speech" in tasks and tasks["speech"] in done:
                heard = tasks["speech"].result()
                if heard is not None:
                    return Input("speech", heard.text.strip().lower(), float(heard.confidence))
            if pending == {tasks["hangup"]}:
                return Input("timeout")

    async def _collect(self, leg_input: LegInput, spec: DigitSpec, prompt_done: asyncio.Future[str]) -> Input:
        """Digits per ``spec``; timeouts counted from the end of the prompt."""
        loop = asyncio.get_running_loop()
        got = ""
        deadline: float | None = None
        while True:
            if not prompt_done.done():
                digit = await _digit_or(leg_input, prompt_done)
                if digit is None:
                    continue
            else:
                if deadline is None and spec.total_timeout_s is not None:
                    deadline = loop.time() + spec.total_timeout_s
                timeout = spec.inter_digit_timeout_s if got else spec.first_timeout_s
                if deadline is not None:
                    timeout = min(timeout, deadline - loop.time())
                if timeout <= 0:
                    break
                digit = await leg_input.next_digit(timeout)
                if digit is None:
                    break
            if spec.terminator and digit == spec.terminator:
                return Input("digits", got, terminated=True)
            got += digit
            if len(got) >= spec.max_length:
                return Input("digits", got)
        return Input("digits", got) if got else Input("timeout")

    # ---- handing the call on -------------------------------------------------------------
    def _release_input(self) -> None:
        """Stop listening while the call is elsewhere (a queue, an agent)."""
        if self._input is not None:
            self._input.close()
            self._input = None

    def _item_data(self) -> dict[str, Any]:
        return {k: v for k, v in self.call.data.items() if k != "media"}

    async def queue(self, request: QueueRequest) -> str:
        if self.hung_up:
            return "abandoned"
        self.call.data.update(request.data)
        self._release_input()
        return await self.voice.queue_call(self.call, self.session, request.queue, priority=request.priority,
                                           skills=request.skills, announce=request.announcements)

    async def voicemail(self, queue: str, *, max_s: float, parts: Sequence[PromptPart]) -> bool:
        if self.hung_up:
            return False
        prompts = [p for p in await self._prompts(parts) if self._exists(p)]
        self._release_input()
        return await self.voice.record_voicemail(self.call, self.session, queue, prompts=prompts, max_s=max_s,
                                                 data=self._item_data(), language=self._language)

    async def transfer(self, number: str) -> bool:
        if self.hung_up:
            return False
        self._release_input()
        return await self.voice.transfer_to_number(self.call, self.session, number)

    async def hangup(self, reason: str = "normal") -> None:
        if not self.hung_up:
            await self.session.bye(reason)

    def close(self) -> None:
        """Unhook from the leg and let the speech stream go."""
        self._release_input()
        if self._stream is not None:
            self._stream.close()
            self._stream = None


async def _digit_or(leg_input: LegInput, until: asyncio.Future[str]) -> str | None:
    """The next digit, or ``None`` when ``until`` resolves first."""
    if leg_input.pending:
        return await leg_input.next_digit(0)
    digit = asyncio.ensure_future(leg_input.next_digit(None))
    waits: list[asyncio.Future[Any]] = [digit, until]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not digit.done():
            digit.cancel()
    return digit.result() if digit.done() and not digit.cancelled() else None


class IvrCalls:
    """Runs IVR flows on answered calls: a number's flow, a queue's survey."""

    def __init__(
        self,
        voice: VoiceQueue,
        flows: FlowRunner,
        *,
        language: str = "en",
        speech: SpeechStreams | None = None,
        tts: TextToSpeech | None = None,
    ) -> None:
        self.voice = voice
        self.flows = flows
        self.language = language
        self.speech = speech
        self.tts = tts

    async def run(self, call: Call, session: InviteSession, flow: str) -> bool:
        """Run ``flow`` on the caller's leg until it ends (queue, voicemail, hang-up).

        False, at once, when no such flow is served."""
        if flow not in self.flows:
            return False
        port = CallIvrPort(self.voice, call, session, language=self.language, speech=self.speech, tts=self.tts)
        call.data.setdefault("flow", flow)
        try:
            await self.flows.run(flow, port)
        finally:
            port.close()
        return True
