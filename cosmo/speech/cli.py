"""``cosmo speech``: install a vosk model, check that speech recognition works.

* ``cosmo speech install-model LANG [--url URL]`` — download the vosk project's
  small model for LANG into ``models_dir`` and print the configuration lines
  that use it;
* ``cosmo speech check [--wav FILE --phrase P ...]`` — load the configured
  models, say a sample in each served language with eSpeak NG, recognise it
  through a speech stream as a call would, and print engine and result per
  language (exit 1 when a language did not recognise its sample).

:func:`add_parser` adds the command to the ``cosmo`` parser, with
``--config``; :func:`run` runs it with the ``speech:`` settings it is given,
else those of ``--config``'s file, else the defaults.  This module does not
import the main configuration (which imports the speech room); it reads only
the ``speech:`` section of the file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml
from pydantic import ValidationError

from cosmo.speech.errors import SpeechError
from cosmo.speech.models import MODELS_URL, install_model
from cosmo.speech.service import SpeechService
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE, SpeechSettings, TtsSettings
from cosmo.speech.tts import TextToSpeech, read_wav_pcm

__all__ = ["SAMPLES", "Sample", "add_parser", "check", "load_settings", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """What ``check`` says in a language, and the grammar it listens with."""

    said: str
    phrases: tuple[str, ...]


SAMPLES: dict[str, Sample] = {
    "en": Sample("operator", ("technical support", "account balance", "operator")),
    "de": Sample("ja", ("ja", "nein")),
    "es": Sample("sí", ("sí", "no")),
    "fr": Sample("oui", ("oui", "non")),
    "it": Sample("sì", ("sì", "no")),
    "ko": Sample("네", ("네", "아니요")),
    "nl": Sample("ja", ("ja", "nee")),
    "pt": Sample("sim", ("sim", "não")),
    "ru": Sample("да", ("да", "нет")),
}
"""Per primary language: the word ``check`` says and the phrases it listens for."""


def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add ``speech`` (install-model, check) to the ``cosmo`` command's subparsers."""
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "speech", help="speech recognition models: install one, check the configured ones")
    parser.add_argument("--config", "-c", metavar="PATH", type=Path,
                        help="configuration file whose speech: section is used (default: the defaults)")
    commands = parser.add_subparsers(dest="speech_command", metavar="COMMAND")
    install = commands.add_parser("install-model", help=f"download a small vosk model from {MODELS_URL}")
    install.add_argument("language", metavar="LANG", help="language code, e.g. en, de, ko")
    install.add_argument("--url", metavar="URL", help="the model's zip: http(s) or file URL, or a local path "
                                                      "(default: the vosk project's small model for LANG)")
    install.add_argument("--models-dir", type=Path, metavar="DIR",
                         help="where to unpack it (default: the settings' models_dir)")
    install.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                         help="network time limit (default: %(default)s)")
    chk = commands.add_parser("check", help="load the configured models and recognise a spoken sample")
    chk.add_argument("--language", "-l", action="append", metavar="LANG",
                     help="check only this language (repeat; default: every served language)")
    chk.add_argument("--wav", type=Path, metavar="FILE",
                     help="recognise this WAV (16-bit mono, any rate) instead of a spoken sample")
    chk.add_argument("--phrase", action="append", metavar="PHRASE",
                     help="with --wav: a grammar phrase (repeat); none: free mode")
    return parser


def load_settings(path: Path) -> SpeechSettings:
    """The ``speech:`` section of the YAML configuration at ``path`` (defaults when absent).

    Raises :class:`SpeechError` with the reason when the file cannot be read or the section is invalid.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpeechError(f"{path}: {exc}") from exc
    section = document.get("speech") if isinstance(document, dict) else None
    try:
        return SpeechSettings.model_validate(section or {})
    except ValidationError as exc:
        problems = "; ".join(f"speech.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpeechError(f"{path}: {problems}") from exc


def run(args: argparse.Namespace, settings: SpeechSettings | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``cosmo speech`` command ``args``; returns the exit status."""
    out = out or sys.stdout
    try:
        if settings is None:
            config = getattr(args, "config", None)
            settings = load_settings(config) if config is not None else SpeechSettings()
        command = getattr(args, "speech_command", None)
        if command == "install-model":
            return _install(args, settings, out)
        if command == "check":
            if args.phrase and args.wav is None:
                print("error: --phrase goes with --wav", file=sys.stderr)
                return EXIT_USAGE
            return asyncio.run(check(settings, languages=args.language, wav=args.wav,
                                     phrases=tuple(args.phrase or ()), out=out))
    except SpeechError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print("usage: cosmo speech {install-model,check} ... (see cosmo speech --help)", file=sys.stderr)
    return EXIT_USAGE


def _install(args: argparse.Namespace, settings: SpeechSettings, out: TextIO) -> int:
    models_dir: Path = args.models_dir or settings.models_dir
    path = install_model(args.language, models_dir, url=args.url, timeout_s=args.timeout)
    print(f"installed: {path}", file=out)
    print("add to the configuration:", file=out)
    print("speech:\n  models:", file=out)
    print(f"    {args.language}: {path}", file=out)
    return EXIT_OK


async def check(
    settings: SpeechSettings,
    *,
    languages: list[str] | None = None,
    wav: Path | None = None,
    phrases: tuple[str, ...] = (),
    out: TextIO,
) -> int:
    """Load the engines of ``settings`` and recognise a sample per language; the exit status."""
    service = SpeechService(settings)
    started = time.perf_counter()
    await service.start()
    try:
        served = service.engines()
        print(f"loaded in {time.perf_counter() - started:.1f} s", file=out)
        if not served:
            print("no language is served: configure speech.models (cosmo speech install-model LANG)", file=out)
            return EXIT_FAILURE
        failures = 0
        with tempfile.TemporaryDirectory(prefix="cosmo-speech-check-") as scratch:
            tts = TextToSpeech(TtsSettings(voices=dict(settings.tts.voices), command=settings.tts.command,
                                           cache_dir=Path(scratch)))
            for language in languages or list(served):
                engine = service.engine(language)
                if engine is None:
                    print(f"{language}: not served", file=out)
                    failures += 1
                    continue
                if wav is not None:
                    pcm = _wav_8k(wav)
                    expected: str | None = None
                    listen_for = phrases
                else:
                    sample = SAMPLES.get(language.split("-")[0].lower())
                    if sample is None:
                        print(f"{language}: {engine.describe()}; no spoken sample for this language "
                              "(use --wav)", file=out)
                        continue
                    pcm = _wav_8k(await tts.synthesize(sample.said, language))
                    expected, listen_for = sample.phrases[sample.phrases.index(sample.said)], sample.phrases
                heard, seconds = await _recognise(service, language, pcm, listen_for)
                ok = expected is None or (heard is not None and heard == expected)
                failures += not ok
                what = "no speech" if heard is None else repr(heard)
                mode = f"grammar {list(listen_for)}" if listen_for else "free mode"
                said = f" said {expected!r}," if expected is not None else ""
                print(f"{language}: {engine.describe()}:{said} {mode} → {what} "
                      f"in {seconds * 1000:.0f} ms{'' if ok else '  FAILED'}", file=out)
        return EXIT_OK if failures == 0 else EXIT_FAILURE
    finally:
        await service.close()


def _wav_8k(path: Path) -> bytes:
    import soxr  # type: ignore[import-untyped]

    try:
        pcm, rate = read_wav_pcm(path.read_bytes())
    except OSError as exc:
        raise SpeechError(f"{path}: {exc.strerror or exc}") from exc
    if rate != SAMPLE_RATE:
        pcm = np.clip(soxr.resample(pcm.astype(np.float32) / 32768, rate, SAMPLE_RATE) * 32767,
                      -32768, 32767).astype(np.int16)
    return pcm.astype("<i2").tobytes()


async def _recognise(service: SpeechService, language: str, pcm: bytes,
                     phrases: tuple[str, ...]) -> tuple[str | None, float]:
    """Feed ``pcm`` between silences through a stream, as a call would; the text and the decision time."""
    stream = service.stream(language, label=f"check-{language}")
    silence = bytes(FRAME_BYTES)
    audio = silence * 25 + pcm + silence * 60
    try:
        listening = asyncio.ensure_future(stream.listen(phrases, no_input_timeout_s=30.0, max_speech_s=20.0))
        for offset in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
            stream.push(audio[offset:offset + FRAME_BYTES])
            if offset % (FRAME_BYTES * 10) == 0:
                await asyncio.sleep(0)
            if listening.done():
                break
        stream.push(silence * 50)  # the end-of-speech window, if the sample ran to the end
        result = await asyncio.wait_for(listening, 30.0)
        return (None if result is None else result.text), stream.last_decision_s or 0.0
    finally:
        stream.close()
