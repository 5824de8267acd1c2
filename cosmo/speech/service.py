"""The speech service: engines per language, call streams, text-to-speech.

:class:`SpeechService` is what the rest of Cosmo sees of the speech room.
:meth:`SpeechService.start` loads every configured vosk model once (off the
event loop; a model is shared by all calls of its language) and, when no
vosk model serves English, pocketsphinx's bundled English model.  It logs
which engine serves which language.  :meth:`SpeechService.stream` gives a
call its :class:`~cosmo.speech.stream.SpeechStream`; all recognition runs on
the service's thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cosmo.speech.errors import ModelError, SpeechError
from cosmo.speech.recognizer import Engine
from cosmo.speech.settings import SpeechSettings
from cosmo.speech.sphinx_engine import SphinxEngine, is_english
from cosmo.speech.stream import SpeechStream
from cosmo.speech.tts import TextToSpeech
from cosmo.speech.vosk_engine import VoskEngine

__all__ = ["SpeechService", "load_engines"]

log = logging.getLogger(__name__)


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def load_engines(settings: SpeechSettings) -> dict[str, Engine]:
    """Load the engines ``settings`` asks for (blocking: seconds per vosk model).

    Raises :class:`ModelError` naming every model that failed.
    """
    engines: dict[str, Engine] = {}
    problems: list[str] = []
    for language, path in settings.models.items():
        try:
            engines[language] = VoskEngine(language, path)
        except ModelError as exc:
            problems.append(str(exc))
    if problems:
        for engine in engines.values():
            engine.close()
        raise ModelError("; ".join(problems))
    if settings.english_fallback and not any(is_english(lang) for lang in engines):
        engines["en"] = SphinxEngine("en")
    return engines


class SpeechService:
    """Speech recognition and synthesis for every call of the process.

    ``start`` and ``close`` are idempotent.  Until ``start`` has run no
    language is served.
    """

    def __init__(self, settings: SpeechSettings | None = None, *,
                 engines: Mapping[str, Engine] | None = None) -> None:
        """``engines``: already loaded engines per language, used instead of loading
        the configured ones (tests share loaded models this way); the service
        does not close them."""
        self.settings = settings or SpeechSettings()
        self.tts = TextToSpeech(self.settings.tts)
        self._given = dict(engines) if engines is not None else None
        self._engines: dict[str, Engine] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._urgent: ThreadPoolExecutor | None = None
        self._started = False

    async def start(self) -> None:
        """Load the models and start the recognition threads.

        Raises :class:`ModelError` when a configured model cannot be loaded.
        """
        if self._started:
            return
        threads = self.settings.threads or os.cpu_count() or 2
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="speech")
        # Decisions (final search after the end of speech) on threads of their own, so
        # they do not queue behind the audio that other callers are still speaking.
        self._urgent = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="speech-decide")
        try:
            if self._given is not None:
                self._engines = dict(self._given)
            else:
                self._engines = await asyncio.get_running_loop().run_in_executor(
                    executor, load_engines, self.settings)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            self._urgent.shutdown(wait=False, cancel_futures=True)
            self._urgent = None
            raise
        self._executor = executor
        self._started = True
        for language, engine in sorted(self._engines.items()):
            log.info("speech: %s is recognised by %s", language, engine.describe())
        if not self._engines:
            log.info("speech: no recognition model configured; speech input is off")
        log.info("speech: %d recognition threads; text-to-speech by %s (%s)", threads,
                 self.settings.tts.engine, "found" if self.tts.available() else "NOT FOUND")

    async def close(self) -> None:
        """Stop the recognition threads and free the models."""
        if not self._started:
            return
        self._started = False
        loop = asyncio.get_running_loop()
        for executor in (self._executor, self._urgent):
            if executor is not None:
                await loop.run_in_executor(None, executor.shutdown)
        self._executor = self._urgent = None
        if self._given is None:
            for engine in self._engines.values():
                engine.close()
        self._engines = {}

    def engines(self) -> dict[str, str]:
        """Engine name per served language, e.g. ``{"en": "pocketsphinx", "ko": "vosk"}``."""
        return {language: engine.name for language, engine in sorted(self._engines.items())}

    def engine(self, language: str) -> Engine | None:
        """The engine serving ``language``: its own, else its primary language's (``en-GB`` → ``en``)."""
        engine = self._engines.get(language)
        if engine is None:
            primary = _primary(language)
            engine = self._engines.get(primary) or next(
                (e for lang, e in self._engines.items() if _primary(lang) == primary), None)
        return engine

    def serves(self, language: str) -> bool:
        """Whether speech in ``language`` can be recognised."""
        return self.engine(language) is not None

    def _require(self, language: str) -> Engine:
        engine = self.engine(language)
        if engine is None:
            served = ", ".join(self.engines()) or "none"
            raise SpeechError(f"no speech recognition for language {language!r} (served: {served})")
        return engine

    def unknown_words(self, language: str, phrases: Sequence[str]) -> list[str]:
        """Words of ``phrases`` the model of ``language`` does not know (to validate flows).

        Raises :class:`SpeechError` when ``language`` is not served.
        """
        return self._require(language).unknown_words(phrases)

    def stream(self, language: str, *, label: str = "") -> SpeechStream:
        """A new stream for one call speaking ``language``; ``label`` prefixes its log lines.

        Raises :class:`SpeechError` when ``language`` is not served or the
        service is not started.
        """
        engine = self._require(language)
        if self._executor is None:
            raise SpeechError("the speech service is not started")
        return SpeechStream(engine.recognizer(), self.settings, self._executor,
                            language=language, engine=engine.name, label=label, urgent=self._urgent)

    async def synthesize(self, text: str, language: str) -> Path:
        """An 8 kHz WAV of ``text`` in ``language`` (cached); see :class:`TextToSpeech`."""
        return await self.tts.synthesize(text, language)
