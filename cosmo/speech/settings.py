"""Settings of the speech room: recognition models, voice activity detection, text-to-speech.

:class:`SpeechSettings` is the ``speech:`` section of the main configuration
(which imports this module, never the other way round).  Frame counts are in
20 ms frames, the size the call layer delivers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FRAME_BYTES", "FRAME_MS", "SAMPLE_RATE", "SpeechSettings", "TtsSettings"]

SAMPLE_RATE = 8000
"""Call audio: 8 kHz, 16-bit signed little-endian mono PCM."""
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2

_LANGUAGE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
Language = Annotated[str, Field(pattern=_LANGUAGE)]


def _default_voices() -> dict[str, str]:
    return {"en": "en-us"}


class TtsSettings(BaseModel):
    """Text-to-speech for dynamic prompts (``say: text`` in flows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["espeak-ng"] = "espeak-ng"
    # The engine's program: a name looked up on PATH, or a path.
    command: str = "espeak-ng"
    # eSpeak NG voice per language; a language not listed uses its own code as the voice.
    voices: dict[Language, str] = Field(default_factory=_default_voices)
    # Words per minute and pitch (0-99), as the shipped prompts were made.
    rate_wpm: int = Field(default=150, ge=80, le=450)
    pitch: int = Field(default=50, ge=0, le=99)
    # Synthesised WAVs, named by a hash of engine, voice, rate, pitch and text.
    cache_dir: Path = Path("var/tts-cache")
    # Longest a synthesis may take before it is abandoned.
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    def voice(self, language: str) -> str:
        """The voice that speaks ``language``."""
        return self.voices.get(language) or self.voices.get(language.split("-")[0].split("_")[0]) or language


class SpeechSettings(BaseModel):
    """Speech recognition and synthesis: the ``speech:`` section of the configuration.

    A language is recognised by vosk when ``models`` names a model directory for
    it; English without a vosk model falls back to pocketsphinx's bundled model
    (``english_fallback``).  Models are loaded only from these paths, never
    downloaded at run time (``cosmo speech install-model`` fetches one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # vosk model directory per language, e.g. {en: var/speech-models/vosk-model-small-en-us-0.15}.
    models: dict[Language, Path] = Field(default_factory=dict)
    # Where `cosmo speech install-model` unpacks models.
    models_dir: Path = Path("var/speech-models")
    # Serve English with pocketsphinx when no vosk model is configured for it.
    english_fallback: bool = True
    # webrtcvad's aggressiveness: 0 (keeps most audio as speech) .. 3 (drops most).
    vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    # Speech starts when `start_voiced` of the last `start_window` frames are voiced.
    start_voiced: int = Field(default=8, ge=1, le=50)
    start_window: int = Field(default=10, ge=1, le=50)
    # Speech ends when 90 % of the last `end_silence_ms` are not voiced.
    end_silence_ms: int = Field(default=700, ge=200, le=5000)
    # Unvoiced audio after a pause in speech that goes to the recogniser at once; the rest of
    # the end window is held back and given only if speech resumes (it decides nothing).
    tail_ms: int = Field(default=300, ge=0, le=5000)
    # Audio kept from before the detected start and given to the recogniser with the speech.
    preroll_ms: int = Field(default=300, ge=0, le=2000)
    # Frames quieter than this are never speech, whatever webrtcvad says (line noise).
    min_level_dbfs: float = Field(default=-50.0, ge=-96.0, le=0.0)
    # Feed the recogniser only from the start of speech (True), or all audio of a turn
    # (False: costs CPU on silence; kept for measurement).
    vad_gating: bool = True
    # Audio is handed to the recogniser in chunks of this many ms while speech goes on.
    chunk_ms: int = Field(default=100, ge=20, le=1000)
    # Threads of the recognition executor (default: one per CPU).
    threads: int | None = Field(default=None, ge=1, le=256)
    tts: TtsSettings = Field(default_factory=TtsSettings)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.start_voiced > self.start_window:
            raise ValueError(f"start_voiced ({self.start_voiced}) exceeds start_window ({self.start_window})")
        return self

    @property
    def end_frames(self) -> int:
        """Frames of the end-of-speech window."""
        return max(1, self.end_silence_ms // FRAME_MS)

    @property
    def tail_frames(self) -> int:
        """Unvoiced frames fed after a pause before the rest is held back."""
        return self.tail_ms // FRAME_MS

    @property
    def preroll_frames(self) -> int:
        """Frames of pre-roll before the start window."""
        return self.preroll_ms // FRAME_MS

    @property
    def chunk_frames(self) -> int:
        """Frames per chunk handed to the recogniser."""
        return max(1, self.chunk_ms // FRAME_MS)
