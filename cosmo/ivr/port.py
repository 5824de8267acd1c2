"""What a flow can do to a call: the :class:`CallPort` protocol.

Theory of operation
-------------------
The interpreter (``ivr/``) never touches SIP, RTP or the ACD.  It drives one
caller through a port: play prompts, listen for digits or speech, queue the
call, take a voicemail, transfer, hang up.  ``calls/ivr_port.py`` implements
the port on a real call; the simulator (``cosmo flows simulate``) implements it
on text, so admins and tests run the same interpreter without a phone.

What is played is a sequence of :data:`PromptPart`: a prompt file by name
(``welcome`` → ``media/prompts/<language>/welcome.wav``) or path, a text for
text-to-speech, or a value said as a number, digits, currency, duration or
position (``SayAs``).

Digits typed during a prompt with barge-in are kept (type-ahead) and are the
first digits the next :meth:`CallPort.listen` sees; a menu's caller who knows
the options presses ``2`` during the welcome and is not made to wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "CallPort",
    "DigitSpec",
    "Input",
    "Prompt",
    "PromptPart",
    "QueueRequest",
    "SayAs",
    "SayKind",
    "SpeechSpec",
    "Text",
]

SayKind = Literal["number", "digits", "currency", "duration", "position"]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt file: a name in the language's prompt directory, or a path."""

    name: str | Path


@dataclass(frozen=True, slots=True)
class Text:
    """Words spoken by text-to-speech in the call's language."""

    text: str


@dataclass(frozen=True, slots=True)
class SayAs:
    """A value said from prompt fragments: ``SayAs("digits", "1234")``."""

    kind: SayKind
    value: str


PromptPart = Prompt | Text | SayAs


@dataclass(frozen=True, slots=True)
class DigitSpec:
    """How to collect DTMF digits.

    ``max_length`` digits end the input at once; so does the ``terminator``
    (not part of the value).  ``first_timeout_s`` runs from the end of the
    prompt to the first digit, ``inter_digit_timeout_s`` between digits, and
    ``total_timeout_s`` (if set) from the end of the prompt to the end of the
    input.  When a timeout ends the input after at least one digit, the digits
    so far are returned (the interpreter checks ``min_length``).
    """

    min_length: int = 1
    max_length: int = 1
    terminator: str | None = "#"
    first_timeout_s: float = 5.0
    inter_digit_timeout_s: float = 3.0
    total_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class SpeechSpec:
    """How to listen for speech.

    ``phrases`` given: grammar mode, the recogniser answers one of them (or
    nothing).  Empty: free mode, whatever was said.  ``no_input_timeout_s`` runs
    from the end of the prompt to the start of speech; ``max_speech_s`` bounds
    one utterance.
    """

    language: str = "en"
    phrases: tuple[str, ...] = ()
    no_input_timeout_s: float = 5.0
    max_speech_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Input:
    """What one :meth:`CallPort.listen` got.

    ``digits``: ``value`` is the digits (without terminator).  ``speech``:
    ``value`` is the recognised text (lower case; a grammar phrase in grammar
    mode) with ``confidence`` 0..1.  ``timeout``: nothing came.  ``hangup``: the
    caller has gone; the interpreter stops.
    """

    kind: Literal["digits", "speech", "timeout", "hangup"]
    value: str = ""
    confidence: float = 1.0
    terminated: bool = False
    """For ``digits``: the input ended with the terminator key."""


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """Hand the call to an ACD queue with what the flow collected."""

    queue: str
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    announcements: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)


class CallPort(Protocol):
    """One caller, as the interpreter sees it."""

    @property
    def call_id(self) -> str: ...

    @property
    def caller(self) -> str:
        """The caller's number (user part of From / P-Asserted-Identity)."""
        ...

    @property
    def callee(self) -> str:
        """The dialled number."""
        ...

    @property
    def language(self) -> str:
        """Language of prompts and speech, e.g. ``en``; a flow may change it."""
        ...

    @language.setter
    def language(self, value: str) -> None: ...

    @property
    def data(self) -> dict[str, Any]:
        """The call's data: what the flow stores here travels with the call
        (work item, screen-pop, CDR)."""
        ...

    async def play(self, parts: Sequence[PromptPart], *, barge_in: bool = False) -> bool:
        """Play to the end, or until a digit (or speech start) with ``barge_in``.

        Returns False when the caller has hung up.
        """
        ...

    async def listen(
        self,
        parts: Sequence[PromptPart],
        *,
        digits: DigitSpec | None = None,
        speech: SpeechSpec | None = None,
        barge_in: bool = True,
    ) -> Input:
        """Play ``parts`` (possibly nothing) and get one input: digits per
        ``digits``, speech per ``speech``, whichever comes first when both are
        given.  With ``barge_in`` a digit or the start of speech stops the prompt."""
        ...

    def clear_digits(self) -> None:
        """Forget type-ahead digits (before a confirmation, say)."""
        ...

    async def queue(self, request: QueueRequest) -> str:
        """Queue the call and stay with it until it leaves the queue and its
        agent (or overflow target); returns ``answered``, ``abandoned``,
        ``overflow`` or ``failed``."""
        ...

    async def voicemail(self, queue: str, *, max_s: float, parts: Sequence[PromptPart]) -> bool:
        """Play ``parts`` and a beep, record until ``#``, silence or ``max_s``,
        and put the message in ``queue`` as a voicemail work item.  Returns
        False when nothing was recorded."""
        ...

    async def transfer(self, number: str) -> bool:
        """Connect the caller to ``number`` through the outbound routes and stay
        until the call ends.  False when the number could not be reached."""
        ...

    async def hangup(self, reason: str = "normal") -> None:
        """End the call (idempotent)."""
        ...
