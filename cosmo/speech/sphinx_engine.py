"""The pocketsphinx engine: English without a vosk model, from the model the wheel ships.

Theory of operation
-------------------
pocketsphinx 5's bundled US English model is wideband (16 kHz), so call audio
is upsampled 8 → 16 kHz (``soxr``, streaming) as it is accepted.  Two things
make it usable on telephone audio:

* **Cepstral mean.**  The decoder normalises features by a running cepstral
  mean that starts from a wideband default; on band-limited (300–3400 Hz)
  µ-law audio the first utterance of a decoder then fails (two-word phrases
  were not recognised at all).  Every utterance starts from
  :data:`TELEPHONE_CMN`, the mean measured on G.711 speech, and then adapts.
* **Rejection.**  A grammar always finds its best phrase, whatever was said.
  After the grammar pass the same audio is decoded by a phone loop
  (``allphone``); the per-frame log-likelihood ratio of the two is a
  confidence (speech that is one of the phrases scores far above the phone
  loop, other speech near or below it), scaled down when the phrase covers
  little of the voiced audio (a long sentence forced onto "no").

A decoder carries the acoustic model (~28 MB) and cannot be shared by two
utterances, so decoders are pooled per grammar (:class:`SphinxEngine`): a
recogniser takes one when its utterance's audio starts and gives it back when
the result is out.  The decoders in use are therefore the utterances in
progress, not the calls.  pocketsphinx holds the GIL while it decodes (about
2 % of real time per stream), unlike vosk.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soxr  # type: ignore[import-untyped]
import webrtcvad  # type: ignore[import-untyped]

from cosmo.speech.errors import ModelError
from cosmo.speech.recognizer import (
    NO_MATCH,
    Recognition,
    match_phrase,
    normalize,
    phrase_words,
)
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE

__all__ = ["TELEPHONE_CMN", "SphinxEngine", "SphinxRecognizer", "is_english", "jsgf"]

log = logging.getLogger(__name__)

DECODER_RATE = 16000
TELEPHONE_CMN = (
    "43.44,18.99,-39.69,42.71,-26.14,0.47,7.19,-32.64,18.51,-15.15,5.19,6.26,-16.46"
)
"""Cepstral mean of 8 kHz G.711 speech upsampled to 16 kHz, in the bundled model's features."""

_FREE = ""  # pool key of the language-model (free mode) decoders
_GRAMMAR_SEARCH = "grammar"
_PHONE_SEARCH = "phones"
_IDLE_PER_KEY = 4  # decoders kept per grammar when no utterance uses them
_LR_CENTRE = -2.0  # per-frame log-likelihood ratio (grammar vs phone loop) of confidence 0.5
_LR_SCALE = 2.0
_MIN_COVERAGE = 0.4  # phrase frames / voiced frames below which confidence is scaled down
_FILLERS = ("<s>", "</s>", "<sil>", "[NOISE]")


def is_english(language: str) -> bool:
    """Whether ``language`` (``en``, ``en-US``, ``en_gb`` ...) is English."""
    return language.replace("_", "-").split("-")[0].lower() == "en"


def jsgf(phrases: Sequence[str]) -> str:
    """A JSGF grammar whose one public rule is any one of ``phrases`` (normalised)."""
    alternatives = " | ".join(normalize(p) for p in phrases if normalize(p))
    return f"#JSGF V1.0;\ngrammar menu;\npublic <phrase> = {alternatives} ;\n"


def _import_pocketsphinx() -> Any:
    try:
        import pocketsphinx  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - pocketsphinx is a dependency
        raise ModelError(f"the pocketsphinx package is not installed: {exc}") from exc
    return pocketsphinx


class SphinxEngine:
    """pocketsphinx's bundled US English model for ``language``.

    Loading (a dictionary decoder) blocks for a fraction of a second: call it
    off the event loop.  Raises :class:`ModelError` when pocketsphinx or its
    model is missing.
    """

    name = "pocketsphinx"

    def __init__(self, language: str = "en") -> None:
        self._language = language
        self._ps = _import_pocketsphinx()
        root = Path(self._ps.get_model_path()) / "en-us"
        self.hmm = root / "en-us"
        self.dictionary = root / "cmudict-en-us.dict"
        self.phone_lm = root / "en-us-phone.lm.bin"
        self.lm = root / "en-us.lm.bin"
        for path in (self.hmm, self.dictionary, self.phone_lm):
            if not path.exists():
                raise ModelError(f"pocketsphinx model for {language!r}: {path} is missing")
        self._lookup = self._decoder(None)
        self._lookup_lock = threading.Lock()
        self._pool: dict[str, list[Any]] = {}
        self._pool_lock = threading.Lock()

    @property
    def language(self) -> str:
        return self._language

    def describe(self) -> str:
        return f"pocketsphinx bundled model {self.hmm} (grammar and free mode)"

    def _decoder(self, grammar: str | None) -> Any:
        decoder = self._ps.Decoder(
            hmm=str(self.hmm), dict=str(self.dictionary), lm=None, samprate=DECODER_RATE,
            cmninit=TELEPHONE_CMN, loglevel="FATAL",
        )
        if grammar is None:
            return decoder
        if grammar == _FREE:
            decoder.add_lm_file(_GRAMMAR_SEARCH, str(self.lm))
        else:
            decoder.add_jsgf_string(_GRAMMAR_SEARCH, grammar)
        decoder.add_allphone_file(_PHONE_SEARCH, str(self.phone_lm))
        return decoder

    def known(self, word: str) -> bool:
        """Whether the dictionary has ``word`` (normalised, lower case)."""
        with self._lookup_lock:
            return self._lookup.lookup_word(word) is not None

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        return [word for word in phrase_words(phrases) if not self.known(word)]

    def acquire(self, grammar: str) -> Any:
        """A decoder for ``grammar`` (JSGF text, or ``""`` for free mode), from the pool or new."""
        with self._pool_lock:
            idle = self._pool.get(grammar)
            if idle:
                return idle.pop()
        return self._decoder(grammar)

    def release(self, grammar: str, decoder: Any) -> None:
        """Give ``decoder`` back to the pool of ``grammar`` (dropped when the pool is full)."""
        with self._pool_lock:
            idle = self._pool.setdefault(grammar, [])
            if len(idle) < _IDLE_PER_KEY:
                idle.append(decoder)

    def recognizer(self) -> SphinxRecognizer:
        return SphinxRecognizer(self)

    def close(self) -> None:
        with self._pool_lock:
            self._pool.clear()


class SphinxRecognizer:
    """One call stream's utterances through pooled pocketsphinx decoders."""

    def __init__(self, engine: SphinxEngine) -> None:
        self.engine = engine
        self._phrases: tuple[str, ...] = ()
        self._grammar = _FREE
        self._decoder: Any = None
        self._resampler: Any = None
        self._audio: list[bytes] = []
        self._rest = b""
        self._voiced_frames = 0
        self._vad = webrtcvad.Vad(2)
        self._usable = True
        self._in_utterance = False

    def begin(self, phrases: Sequence[str]) -> None:
        self._drop()
        usable = [p for p in phrases if normalize(p) and not self.engine.unknown_words([p])]
        if len(usable) < len(phrases):
            log.warning("pocketsphinx %s: phrases with words not in the dictionary are left out: %s",
                        self.engine.language, [p for p in phrases if p not in usable])
        self._phrases = tuple(phrases)
        self._grammar = jsgf(usable) if usable else (_FREE if not phrases else "")
        self._usable = bool(usable) or not phrases

    def accept(self, pcm: bytes) -> None:
        if not self._usable or not pcm:
            return
        if self._decoder is None:
            self._decoder = self.engine.acquire(self._grammar)
            self._decoder.activate_search(_GRAMMAR_SEARCH)
            self._decoder.set_cmn(TELEPHONE_CMN)
            self._decoder.start_utt()
            self._in_utterance = True
            self._resampler = soxr.ResampleStream(SAMPLE_RATE, DECODER_RATE, 1, dtype="int16")
        self._count_voiced(pcm)
        self._process(np.frombuffer(pcm, dtype="<i2"), last=False)

    def _process(self, samples: np.ndarray[Any, Any], *, last: bool) -> None:
        wide = self._resampler.resample_chunk(samples, last=last)
        if len(wide):
            data = np.ascontiguousarray(wide, dtype="<i2").tobytes()
            self._audio.append(data)
            self._decoder.process_raw(data)

    def _count_voiced(self, pcm: bytes) -> None:
        data = self._rest + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        for offset in range(0, whole, FRAME_BYTES):
            if self._vad.is_speech(data[offset:offset + FRAME_BYTES], SAMPLE_RATE):
                self._voiced_frames += 1
        self._rest = data[whole:]

    def finish(self) -> Recognition:
        decoder = self._decoder
        if decoder is None:
            self._drop()
            return NO_MATCH
        try:
            self._process(np.zeros(0, dtype=np.int16), last=True)
            decoder.end_utt()
            self._in_utterance = False
            hyp = decoder.hyp()
            if hyp is None:
                return NO_MATCH
            words = [s for s in decoder.seg() if s.word not in _FILLERS and not s.word.startswith("+")]
            word_frames = sum(s.end_frame - s.start_frame + 1 for s in words)
            frames = int(decoder.n_frames())
            text = " ".join(hyp.hypstr.split())
            confidence = self._confidence(decoder, float(hyp.score), frames, word_frames)
        finally:
            self._drop()
        if not self._phrases:
            return Recognition(text, confidence if text else 0.0)
        phrase = match_phrase(text, self._phrases)
        return NO_MATCH if phrase is None else Recognition(phrase, confidence)

    def _confidence(self, decoder: Any, score: float, frames: int, word_frames: int) -> float:
        """Likelihood ratio against a phone loop over the same audio, scaled by phrase coverage."""
        decoder.activate_search(_PHONE_SEARCH)
        decoder.set_cmn(TELEPHONE_CMN)
        decoder.start_utt()
        decoder.process_raw(b"".join(self._audio), full_utt=False)
        decoder.end_utt()
        phones = decoder.hyp()
        decoder.activate_search(_GRAMMAR_SEARCH)
        if phones is None or score <= 0 or phones.score <= 0 or frames <= 0:
            return 0.0
        logmath = decoder.get_logmath()
        ratio = (logmath.log(score) - logmath.log(float(phones.score))) / frames
        confidence = 1.0 / (1.0 + math.exp(-(ratio - _LR_CENTRE) / _LR_SCALE))
        voiced = self._voiced_frames * 2  # 20 ms VAD frames → 10 ms decoder frames
        if voiced > 0:
            confidence *= min(1.0, word_frames / voiced / _MIN_COVERAGE)
        return round(confidence, 3)

    def _drop(self) -> None:
        """Let go of the current utterance and give its decoder back."""
        if self._decoder is not None:
            if self._in_utterance:
                self._decoder.end_utt()
                self._in_utterance = False
            self._decoder.activate_search(_GRAMMAR_SEARCH)
            self.engine.release(self._grammar, self._decoder)
        self._decoder = None
        self._resampler = None
        self._audio = []
        self._rest = b""
        self._voiced_frames = 0

    def close(self) -> None:
        self._drop()
