"""What every recognition engine offers: the :class:`Engine` and :class:`Recognizer` protocols.

An :class:`Engine` holds what is shared (a loaded model, a dictionary) for one
language; it makes one :class:`Recognizer` per call stream.  A recogniser
decodes one utterance at a time: :meth:`Recognizer.begin` with the turn's
phrases (grammar mode) or none (free mode), :meth:`Recognizer.accept` with
8 kHz PCM as it arrives, :meth:`Recognizer.finish` for the result.  Recogniser
methods are called on a worker thread, never two at once for one recogniser;
they may block.  Engines are loaded off the event loop too.

Phrases are compared in normal form (:func:`normalize`): lower case, words
separated by single spaces, punctuation other than apostrophes and hyphens
dropped.  In grammar mode the result's text is the phrase as the flow wrote
it, or ``""`` when the caller said something else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["NO_MATCH", "Engine", "Recognition", "Recognizer", "match_phrase", "normalize", "phrase_words"]

_SEPARATORS = re.compile(r"[^\w'\-]+")


@dataclass(frozen=True, slots=True)
class Recognition:
    """What was recognised in one utterance.

    ``text`` is a phrase of the grammar (grammar mode), the words heard (free
    mode), or ``""`` when nothing in the grammar matched.  ``confidence`` is
    0..1.
    """

    text: str
    confidence: float

    @property
    def matched(self) -> bool:
        return bool(self.text)


NO_MATCH = Recognition("", 0.0)


def normalize(phrase: str) -> str:
    """``phrase`` in the form recognisers compare: NFC, lower case, single spaces."""
    text = unicodedata.normalize("NFC", phrase).lower()
    return " ".join(word.strip("'-") for word in _SEPARATORS.split(text) if word.strip("'-"))


def phrase_words(phrases: Sequence[str]) -> list[str]:
    """The distinct words of ``phrases``, in order of first appearance."""
    seen: dict[str, None] = {}
    for phrase in phrases:
        for word in normalize(phrase).split():
            seen.setdefault(word, None)
    return list(seen)


def match_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The phrase of ``phrases`` that ``text`` is (compared normalised), or ``None``."""
    said = normalize(text)
    if not said:
        return None
    for phrase in phrases:
        if normalize(phrase) == said:
            return phrase
    return None


class Recognizer(Protocol):
    """One call stream's decoder; one utterance at a time, on a worker thread."""

    def begin(self, phrases: Sequence[str]) -> None:
        """Prepare for an utterance: grammar mode over ``phrases``, free mode when empty.

        Drops whatever an unfinished utterance had fed."""
        ...

    def accept(self, pcm: bytes) -> None:
        """More 8 kHz 16-bit mono PCM of the utterance."""
        ...

    def finish(self) -> Recognition:
        """The utterance's result; the recogniser is ready for :meth:`begin` again."""
        ...

    def close(self) -> None:
        """Free the decoder."""
        ...


class Engine(Protocol):
    """A recognition engine loaded for one language."""

    @property
    def name(self) -> str:
        """``vosk`` or ``pocketsphinx``."""
        ...

    @property
    def language(self) -> str: ...

    def describe(self) -> str:
        """One line for logs and ``cosmo speech check``: engine and model."""
        ...

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        """Words of ``phrases`` the model cannot recognise (not in its vocabulary)."""
        ...

    def recognizer(self) -> Recognizer:
        """A new recogniser for one call stream (cheap; heavy state is made on first use)."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
