"""Flows without a phone: :class:`SimulatedPort` and :class:`YamlCustomers`.

Theory of operation
-------------------
:class:`SimulatedPort` is a :class:`~cosmo.ivr.port.CallPort` on text.  What
would be played is written out (prompt names, text, say-as values); the
caller's answers come from a script, one :class:`~cosmo.ivr.port.Input` per
answer:

* digits are typed ahead like a real keypad: ``"1234#"`` fills a buffer that
  each listen takes from per its :class:`~cosmo.ivr.port.DigitSpec` (up to
  ``max_length`` or the terminator; what is left waits for the next listen,
  and a burst that ends early ends the input as an inter-digit timeout would);
  keys next in the script interrupt a prompt played with barge-in and wait
  as type-ahead;
* speech answers a listen that asks for speech (a listen for keys only does
  not hear it: a timeout);
* ``timeout`` and ``hangup`` are what they say; a script that has run out
  answers every listen with a timeout.

Queueing, voicemail and transfer are written out and answered as configured
(``queue_answer``).  :class:`YamlCustomers` finds customers in a YAML list
such as ``config/customers.yaml``, as the store does.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cosmo.ivr.errors import IvrError
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

__all__ = ["SimulatedPort", "YamlCustomers", "describe_parts"]

_NOT_DIGITS = re.compile(r"\D+")
_NATIONAL_DIGITS = 10
_CUSTOMER_FIELDS = ("id", "name", "phone", "email", "account", "tier", "language", "preferred_channel",
                    "notes", "attributes")


def describe_parts(parts: Sequence[PromptPart]) -> str:
    """``welcome, text "Hello", digits 1234`` — what would be played."""
    words: list[str] = []
    for part in parts:
        if isinstance(part, Prompt):
            words.append(str(part.name))
        elif isinstance(part, Text):
            words.append(f"text {json.dumps(part.text)}")
        elif isinstance(part, SayAs):
            words.append(f"{part.kind} {part.value}")
    return ", ".join(words) or "(nothing)"


class SimulatedPort:
    """A call on text: plays are written to ``out``, answers come from ``script``."""

    def __init__(
        self,
        script: Iterable[Input] = (),
        *,
        caller: str = "+15550100123",
        callee: str = "+15550100",
        call_id: str = "sim-1",
        language: str = "en",
        out: Callable[[str], None] | None = None,
        queue_answer: str = "answered",
        transfer_ok: bool = True,
        voicemail_ok: bool = True,
    ) -> None:
        self._call_id = call_id
        self._caller = caller
        self._callee = callee
        self._language = language
        self._data: dict[str, Any] = {}
        self.script: deque[Input] = deque(script)
        self.out = out or (lambda line: None)
        self.queue_answer = queue_answer
        self.transfer_ok = transfer_ok
        self.voicemail_ok = voicemail_ok
        self.type_ahead = ""
        self.transcript: list[str] = []
        self.played: list[tuple[PromptPart, ...]] = []
        self.queued: QueueRequest | None = None
        self.voicemails: list[tuple[str, float]] = []
        self.transfers: list[str] = []
        self.hung_up = False
        self.hangup_reason: str | None = None

    def _say(self, line: str) -> None:
        self.transcript.append(line)
        self.out(line)

    # ---- CallPort properties -------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self._call_id

    @property
    def caller(self) -> str:
        return self._caller

    @property
    def callee(self) -> str:
        return self._callee

    @property
    def language(self) -> str:
        return self._language

    @language.setter
    def language(self, value: str) -> None:
        if value != self._language:
            self._say(f"   language: {value}")
        self._language = value

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    # ---- verbs -----------------------------------------------------------------------------
    async def play(self, parts: Sequence[PromptPart], *, barge_in: bool = False) -> bool:
        if self.hung_up:
            return False
        self.played.append(tuple(parts))
        if self.script and self.script[0].kind == "hangup":
            self.script.popleft()
            self._say(f"   play: {describe_parts(parts)}")
            self._say("   caller hangs up")
            self.hung_up = True
            return False
        barged = ""
        if barge_in and self.script and self.script[0].kind == "digits":
            # The caller presses keys during the prompt: they stop it and wait as type-ahead.
            self.type_ahead += self.script.popleft().value
            barged = f" (caller keys {self.type_ahead} during it: barge-in)"
        self._say(f"   play: {describe_parts(parts)}{barged}")
        return True

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
        self.played.append(tuple(parts))
        expecting = self._expecting(digits, speech)
        if digits is not None and barge_in and self.type_ahead:
            self._say(f"   listen for {expecting}: {describe_parts(parts)} (skipped: keys typed ahead)")
        else:
            self._say(f"   listen for {expecting}: {describe_parts(parts)}")
        got = self._answer(digits, speech)
        if got.kind == "hangup":
            self.hung_up = True
            self._say("   caller hangs up")
        elif got.kind == "timeout":
            self._say("   caller: (nothing: timeout)")
        elif got.kind == "speech":
            self._say(f"   caller says: {json.dumps(got.value)} (confidence {got.confidence:.2f})")
        else:
            self._say(f"   caller keys: {got.value}{'#' if got.terminated else ''}")
        return got

    @staticmethod
    def _expecting(digits: DigitSpec | None, speech: SpeechSpec | None) -> str:
        what: list[str] = []
        if digits is not None:
            what.append(f"{digits.max_length} key" if digits.max_length == 1 else f"up to {digits.max_length} keys")
        if speech is not None:
            what.append(f"speech {list(speech.phrases)}" if speech.phrases else "free speech")
        return " or ".join(what) or "nothing"

    def _answer(self, digits: DigitSpec | None, speech: SpeechSpec | None) -> Input:
        if digits is not None and self.type_ahead:
            return self._take_digits(digits)
        if not self.script:
            return Input("timeout")
        got = self.script.popleft()
        if got.kind == "digits":
            if digits is None:
                self._say(f"   (keys {got.value} ignored: not listening for keys)")
                return Input("timeout")
            self.type_ahead += got.value
            return self._take_digits(digits)
        if got.kind == "speech" and speech is None:
            self._say(f"   (speech {json.dumps(got.value)} ignored: not listening for speech)")
            return Input("timeout")
        if got.kind == "speech":
            return Input("speech", got.value.strip().lower(), got.confidence)
        return got

    def _take_digits(self, spec: DigitSpec) -> Input:
        value = ""
        while self.type_ahead:
            key, self.type_ahead = self.type_ahead[0], self.type_ahead[1:]
            if spec.terminator and key == spec.terminator:
                return Input("digits", value, terminated=True)
            value += key
            if len(value) >= spec.max_length:
                break
        return Input("digits", value) if value else Input("timeout")

    def clear_digits(self) -> None:
        if self.type_ahead:
            self._say(f"   (type-ahead {self.type_ahead} cleared)")
        self.type_ahead = ""

    async def queue(self, request: QueueRequest) -> str:
        self.queued = request
        skills = ", ".join(f"{name}: {level}" for name, level in request.skills.items())
        self._say(f"   queue {request.queue}: priority {request.priority}, skills {{{skills}}}, "
                  f"announcements {'on' if request.announcements else 'off'}")
        self._say(f"   data: {json.dumps(request.data, sort_keys=True, default=str)}")
        self._say(f"   queue answers: {self.queue_answer}")
        return self.queue_answer

    async def voicemail(self, queue: str, *, max_s: float, parts: Sequence[PromptPart]) -> bool:
        self.voicemails.append((queue, max_s))
        self._say(f"   voicemail into {queue} (up to {max_s:g} s) after: {describe_parts(parts)}, beep")
        return self.voicemail_ok

    async def transfer(self, number: str) -> bool:
        self.transfers.append(number)
        self._say(f"   transfer to {number}: {'connected' if self.transfer_ok else 'not reached'}")
        return self.transfer_ok

    async def hangup(self, reason: str = "normal") -> None:
        if not self.hung_up:
            self._say(f"   hang up ({reason})")
            self.hung_up = True
            self.hangup_reason = reason


class YamlCustomers:
    """A :class:`~cosmo.ivr.interpreter.CustomerDirectory` over a YAML list of customers.

    Ids are positions in the list (from 1).  Phone numbers match on their digits;
    one of ten digits or more also matches a stored number ending with its last
    ten (as :meth:`cosmo.store.customers.CustomerRepository.find` does).
    """

    def __init__(self, records: Sequence[Mapping[str, Any]], out: Callable[[str], None] | None = None) -> None:
        self.records = [self._record(index, entry) for index, entry in enumerate(records, start=1)]
        self.out = out

    @classmethod
    def from_file(cls, path: Path, out: Callable[[str], None] | None = None) -> YamlCustomers:
        """Read a customers file.  Raises :class:`IvrError`."""
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise IvrError(f"{path}: cannot read customers: {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("name") for e in entries):
            raise IvrError(f"{path}: expected a list of customers, each with a name")
        return cls(entries, out)

    @staticmethod
    def _record(index: int, entry: Mapping[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"id": index, "tier": "standard", "notes": "", "attributes": {}}
        record.update({key: entry[key] for key in _CUSTOMER_FIELDS if key in entry and key != "id"})
        for key in ("phone", "email", "account", "language", "preferred_channel"):
            record.setdefault(key, None)
        if record["account"] is not None:
            record["account"] = str(record["account"])
        return record

    def _find(self, by: str, value: str) -> dict[str, Any] | None:
        value = value.strip()
        if not value:
            return None
        if by == "id":
            return next((r for r in self.records if str(r["id"]) == value), None)
        if by == "account":
            return next((r for r in self.records if r["account"] == value), None)
        if by == "email":
            return next((r for r in self.records if str(r["email"] or "").lower() == value.lower()), None)
        if by != "phone":
            raise IvrError(f"customers are found by id, phone, account or email, not {by!r}")
        key = _NOT_DIGITS.sub("", value)
        if not key:
            return None
        stored = [(r, _NOT_DIGITS.sub("", str(r["phone"] or ""))) for r in self.records]
        exact = next((r for r, digits in stored if digits and digits == key), None)
        if exact is not None or len(key) < _NATIONAL_DIGITS:
            return exact
        return next((r for r, digits in stored if digits.endswith(key[-_NATIONAL_DIGITS:])), None)

    async def find_customer(self, by: str, value: str) -> dict[str, Any] | None:
        record = self._find(by, value)
        if self.out is not None:
            found = f"{record['name']} (id {record['id']}, tier {record['tier']})" if record else "not found"
            self.out(f"   customer by {by} {value!r}: {found}")
        return dict(record) if record is not None else None
