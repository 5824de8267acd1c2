"""The steps that talk with the caller: ``menu``, ``collect`` and ``recognize``.

Each asks, listens through the run's :class:`Conversation`, and asks again
after a wrong or missing answer (``retries`` more times), putting the
``invalid`` / ``no_input`` prompt in front of the question so that one
barge-in covers both.  After the last failure that prompt is played once more
and the step goes to ``on_failure``; without one the flow says goodbye.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping, Sequence
from enum import Enum
from typing import Any, Protocol

from cosmo.ivr.port import DigitSpec, Input, Prompt, PromptPart, SayAs, SpeechSpec
from cosmo.ivr.steps import (
    CollectStep,
    MenuOption,
    MenuStep,
    PromptItem,
    RecognizeStep,
    normalise_phrase,
)

__all__ = ["GIVE_UP", "Conversation", "GiveUp", "collect", "luhn_valid", "match_phrase", "menu", "recognize"]

class GiveUp(Enum):
    """Returned by a step whose caller gave no valid answer and that has no ``on_failure``."""

    GIVE_UP = "give-up"


GIVE_UP = GiveUp.GIVE_UP


class Conversation(Protocol):
    """What the dialogue steps need of a run (see :mod:`cosmo.ivr.interpreter`)."""

    @property
    def call_id(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def variables(self) -> MutableMapping[str, Any]: ...

    def parts(self, items: Sequence[PromptItem]) -> list[PromptPart]: ...

    async def play(self, parts: Sequence[PromptPart], *, barge_in: bool = False) -> None: ...

    async def listen(self, parts: Sequence[PromptPart], *, digits: DigitSpec | None = None,
                     speech: SpeechSpec | None = None, barge_in: bool = True) -> Input: ...

    def clear_digits(self) -> None: ...

    def keep_input(self, got: Input) -> None:
        """Hand ``got`` to the next step that listens (a recognize step's fallback menu)."""
        ...


def match_phrase(text: str, phrases: Mapping[str, Any]) -> Any:
    """The value of the phrase (normalised key) that ``text`` says: the same words, else
    the longest phrase found as whole words inside it; ``None`` when none."""
    said = normalise_phrase(text)
    if not said:
        return None
    if said in phrases:
        return phrases[said]
    padded = f" {said} "
    inside = [phrase for phrase in phrases if f" {phrase} " in padded]
    return phrases[max(inside, key=len)] if inside else None


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of card and account numbers (ISO/IEC 7812-1 Annex B)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


async def _fail(talk: Conversation, prefix: list[PromptPart], on_failure: str | None) -> str | GiveUp:
    if prefix:
        await talk.play(prefix)
    return on_failure if on_failure is not None else GIVE_UP


async def menu(talk: Conversation, step: MenuStep) -> str | GiveUp:
    """A key or phrase chooses an option; returns its node, ``on_failure`` or :data:`GIVE_UP`."""
    keys: dict[str, MenuOption] = {option.key: option for option in step.options if option.key is not None}
    phrases: dict[str, MenuOption] = {}
    for option in step.options:
        for phrase in option.say:
            phrases.setdefault(normalise_phrase(phrase), option)
    digits = DigitSpec(min_length=1, max_length=1, terminator=None, first_timeout_s=step.timeout_s,
                       inter_digit_timeout_s=step.timeout_s) if keys else None
    speech = SpeechSpec(language=talk.language, phrases=tuple(phrases), no_input_timeout_s=step.timeout_s
                        ) if phrases else None
    prefix: list[PromptPart] = []
    for _ in range(step.retries + 1):
        got = await talk.listen([*prefix, *talk.parts(step.prompt)], digits=digits, speech=speech,
                                barge_in=step.barge_in)
        chosen: MenuOption | None = None
        if got.kind == "digits":
            chosen = keys.get(got.value)
        elif got.kind == "speech" and got.confidence >= step.confidence:
            chosen = match_phrase(got.value, phrases)
        if chosen is not None:
            if step.variable is not None:
                talk.variables[step.variable] = chosen.label
            return chosen.next
        prefix = talk.parts(step.no_input if got.kind == "timeout" else step.invalid)
    return await _fail(talk, prefix, step.on_failure)


def _collect_problem(step: CollectStep, value: str) -> str | None:
    if not value:
        return "nothing entered"
    if not step.min_length <= len(value) <= step.max_length:
        return f"{len(value)} digits"
    if step.pattern is not None and re.fullmatch(step.pattern, value) is None:
        return "does not match the pattern"
    if step.luhn and not luhn_valid(value):
        return "fails the Luhn check"
    return None


async def collect(talk: Conversation, step: CollectStep) -> str | GiveUp:
    """Digits into ``step.variable``, checked and optionally confirmed; returns ``next``,
    ``on_failure`` or :data:`GIVE_UP`."""
    spec = DigitSpec(min_length=step.min_length, max_length=step.max_length, terminator=step.terminator,
                     first_timeout_s=step.first_timeout_s, inter_digit_timeout_s=step.inter_digit_timeout_s,
                     total_timeout_s=step.total_timeout_s)
    prefix: list[PromptPart] = []
    for _ in range(step.retries + 1):
        got = await talk.listen([*prefix, *talk.parts(step.prompt)], digits=spec, barge_in=step.barge_in)
        if got.kind == "timeout" or (got.kind == "digits" and not got.value):
            prefix = talk.parts(step.no_input)
            continue
        problem = _collect_problem(step, got.value) if got.kind == "digits" else "not digits"
        if problem is not None:
            prefix = talk.parts(step.invalid)
            continue
        if step.confirm:
            # Keys pressed before the question must not answer it.
            talk.clear_digits()
            answer = await talk.listen(
                [Prompt("you-entered"), SayAs("digits", got.value), Prompt("press-1-if-correct")],
                digits=DigitSpec(min_length=1, max_length=1, terminator=None, first_timeout_s=step.first_timeout_s),
            )
            if answer.kind != "digits" or answer.value != "1":
                prefix = []
                continue
        talk.variables[step.variable] = got.value
        return step.next
    return await _fail(talk, prefix, step.on_failure)


async def recognize(talk: Conversation, step: RecognizeStep) -> str | GiveUp:
    """Speech (free, or one of the intents) into ``step.variable``; keys go into the
    variable (``digits``) or to ``fallback``.  Returns the next node or :data:`GIVE_UP`."""
    intents: dict[str, str] = {}
    for intent, phrases in step.intents.items():
        for phrase in phrases:
            intents.setdefault(normalise_phrase(phrase), intent)
    speech = SpeechSpec(language=talk.language, phrases=tuple(intents), no_input_timeout_s=step.timeout_s,
                        max_speech_s=step.max_speech_s)
    digits: DigitSpec | None = None
    if step.digits:
        digits = DigitSpec(min_length=1, max_length=step.max_digits, first_timeout_s=step.timeout_s)
    elif step.fallback is not None:
        digits = DigitSpec(min_length=1, max_length=1, terminator=None, first_timeout_s=step.timeout_s)
    prefix: list[PromptPart] = []
    for _ in range(step.retries + 1):
        got = await talk.listen([*prefix, *talk.parts(step.prompt)], digits=digits, speech=speech,
                                barge_in=step.barge_in)
        if got.kind == "digits" and got.value:
            if step.fallback is not None:
                talk.keep_input(got)
                return step.fallback
            talk.variables[step.variable] = got.value
            return step.next
        if got.kind == "speech" and got.value.strip():
            heard: str | None = None
            if got.confidence >= step.confidence:
                heard = match_phrase(got.value, intents) if intents else got.value.strip()
            if heard is not None:
                talk.variables[step.variable] = heard
                return step.next
            prefix = talk.parts(step.no_match)
            continue
        prefix = talk.parts(step.no_input)
    return await _fail(talk, prefix, step.on_failure)
