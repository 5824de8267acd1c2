"""The vosk engine: Kaldi models fed 8 kHz call audio directly.

A :class:`VoskEngine` loads one model directory (``vosk.Model(path)``; never
``Model(lang=...)``, which downloads) and shares it between every call of its
language.  Each call stream gets one :class:`VoskRecognizer`, a
``KaldiRecognizer(model, 8000)`` made on first use and kept warm across the
turns of the flow: a turn with the same phrases only ``Reset()`` s it, a turn
with other phrases ``SetGrammar`` s it (after a ``Reset()``: vosk refuses a new
grammar on a running recogniser and aborts the process).

A recogniser builds its decoding graph lazily, arc by arc, as audio visits
it; in free mode that costs the first utterances of a fresh recogniser about
as much time again as the audio lasts (3 s for 4 s of speech with the small
Korean model, 0.3 s once warm), and ``SetGrammar`` throws the graph away.  So
recognisers outlive calls: a stream takes one from the engine's idle pool of
its mode (free, or the grammar it needs) and gives it back at the end of the
call, and the next call gets a warm one.

Grammar mode needs a model with a runtime graph (``graph/HCLr.fst`` and
``graph/Gr.fst``: the "small" models).  A grammar is the phrase list as JSON,
plus ``[unk]`` when the model knows it, so that other speech can come out as
no match.  vosk's grammar lets phrases repeat and follow each other; only a
result that is exactly one phrase is a match.  Models with a static graph
(the large server models) are run in free mode and their text is matched
against the phrases.  Confidence is the mean of the word confidences
(``SetWords(True)``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cosmo.speech.errors import ModelError
from cosmo.speech.recognizer import (
    NO_MATCH,
    Recognition,
    match_phrase,
    normalize,
    phrase_words,
)
from cosmo.speech.settings import SAMPLE_RATE

__all__ = ["VoskEngine", "VoskRecognizer", "is_vosk_model"]

log = logging.getLogger(__name__)

UNKNOWN = "[unk]"
_FREE = "[]"
_IDLE_FREE = 8  # warm free-mode recognisers kept (tens of MB each once warm)
_IDLE_GRAMMAR = 64  # grammar-mode recognisers kept, all grammars together (small)


def is_vosk_model(path: Path) -> bool:
    """Whether ``path`` looks like a vosk model directory (``am/final.mdl`` and a graph)."""
    return (path / "am" / "final.mdl").is_file() and (path / "graph").is_dir()


def _import_vosk() -> Any:
    try:
        import vosk  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - vosk is a dependency
        raise ModelError(f"the vosk package is not installed: {exc}") from exc
    return vosk


class VoskEngine:
    """One vosk model, loaded from ``path`` for ``language``.

    Loading blocks for seconds: call it off the event loop.  Raises
    :class:`ModelError` when the directory is not a vosk model or vosk cannot
    load it.
    """

    name = "vosk"

    def __init__(self, language: str, path: Path) -> None:
        self._language = language
        self.path = Path(path)
        if not self.path.is_dir():
            raise ModelError(f"vosk model for {language!r}: no directory {self.path}")
        if not is_vosk_model(self.path):
            raise ModelError(f"vosk model for {language!r}: {self.path} has no am/final.mdl and graph/")
        vosk = _import_vosk()
        vosk.SetLogLevel(-1)  # Kaldi's LOG lines per model and recogniser; warnings stay
        try:
            self.model = vosk.Model(str(self.path))
        except Exception as exc:  # vosk raises a bare Exception
            raise ModelError(f"vosk model for {language!r}: {self.path} did not load: {exc}") from exc
        graph = self.path / "graph"
        self.grammar_mode = (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()
        self.has_unknown = self._find(UNKNOWN)
        self._recognizer_class = vosk.KaldiRecognizer
        self._idle: dict[str, list[Any]] = {}
        self._idle_lock = threading.Lock()

    @property
    def language(self) -> str:
        return self._language

    def describe(self) -> str:
        mode = "grammar and free mode" if self.grammar_mode else "free mode only (static graph)"
        return f"vosk model {self.path} ({mode})"

    def _find(self, word: str) -> bool:
        return int(self.model.vosk_model_find_word(word)) >= 0

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        return [word for word in phrase_words(phrases) if not self._find(word)]

    def grammar(self, phrases: Sequence[str]) -> str:
        """The vosk grammar (JSON list) for ``phrases``."""
        words = [normalize(phrase) for phrase in phrases if normalize(phrase)]
        if self.has_unknown:
            words.append(UNKNOWN)
        return json.dumps(words, ensure_ascii=False)

    def recognizer(self) -> VoskRecognizer:
        return VoskRecognizer(self)

    def acquire(self, grammar: str) -> Any:
        """A ready ``KaldiRecognizer`` for ``grammar`` (``"[]"``: free mode): idle or new.

        An idle one of the same grammar first; for a grammar, else an idle one of
        another grammar, re-grammared; else a new one.  Blocks: call it on a worker thread.
        """
        with self._idle_lock:
            idle = self._idle.get(grammar)
            kaldi = idle.pop() if idle else None
            if kaldi is None and grammar != _FREE:
                other = next((key for key, recs in self._idle.items() if key != _FREE and recs), None)
                kaldi = self._idle[other].pop() if other is not None else None
                if kaldi is not None:
                    kaldi.SetGrammar(grammar)  # idle ones are reset
        if kaldi is None:
            if grammar == _FREE:
                kaldi = self._recognizer_class(self.model, SAMPLE_RATE)
            else:
                kaldi = self._recognizer_class(self.model, SAMPLE_RATE, grammar)
            kaldi.SetWords(True)
        return kaldi

    def release(self, grammar: str, kaldi: Any) -> None:
        """Take back a recogniser (reset here) for later streams; dropped when enough are idle."""
        kaldi.Reset()
        with self._idle_lock:
            if grammar == _FREE:
                keep = len(self._idle.get(_FREE, ())) < _IDLE_FREE
            else:
                keep = sum(len(v) for k, v in self._idle.items() if k != _FREE) < _IDLE_GRAMMAR
            if keep:
                self._idle.setdefault(grammar, []).append(kaldi)

    def close(self) -> None:
        with self._idle_lock:
            self._idle.clear()
        self.model = None


class VoskRecognizer:
    """One call stream's ``KaldiRecognizer``, reused across turns while the mode allows."""

    def __init__(self, engine: VoskEngine) -> None:
        self.engine = engine
        self._kaldi: Any = None
        self._grammar = _FREE  # what self._kaldi decodes
        self._phrases: tuple[str, ...] = ()

    def begin(self, phrases: Sequence[str]) -> None:
        self._phrases = tuple(phrases)
        grammar = self.engine.grammar(phrases) if phrases and self.engine.grammar_mode else _FREE
        if self._kaldi is not None:
            if grammar == self._grammar:
                self._kaldi.Reset()
                return
            if grammar != _FREE and self._grammar != _FREE:
                self._kaldi.Reset()
                self._kaldi.SetGrammar(grammar)  # cheap: a grammar graph is small
                self._grammar = grammar
                return
            self.engine.release(self._grammar, self._kaldi)  # keep a warm free-mode graph for others
        self._kaldi = self.engine.acquire(grammar)
        self._grammar = grammar

    def accept(self, pcm: bytes) -> None:
        if self._kaldi is None:
            raise ModelError("vosk recogniser: accept() before begin()")
        self._kaldi.AcceptWaveform(pcm)

    def finish(self) -> Recognition:
        if self._kaldi is None:
            raise ModelError("vosk recogniser: finish() before begin()")
        result = json.loads(self._kaldi.FinalResult())
        words = [w for w in result.get("result", ()) if w.get("word") != UNKNOWN]
        text = " ".join(str(w["word"]) for w in words) if words else str(result.get("text", ""))
        text = " ".join(t for t in text.split() if t != UNKNOWN)
        confidence = sum(float(w.get("conf", 0.0)) for w in words) / len(words) if words else 0.0
        if not self._phrases:
            return Recognition(text, round(confidence, 3) if text else 0.0)
        phrase = match_phrase(text, self._phrases)
        if phrase is None:
            if text and log.isEnabledFor(logging.DEBUG):
                log.debug("vosk %s: %r is none of %s", self.engine.language, text, self._phrases)
            return NO_MATCH
        return Recognition(phrase, round(confidence, 3))

    def close(self) -> None:
        if self._kaldi is not None:
            self.engine.release(self._grammar, self._kaldi)
        self._kaldi = None
