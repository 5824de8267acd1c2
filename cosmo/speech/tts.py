"""Text-to-speech for dynamic prompts: eSpeak NG, resampled to 8 kHz, cached on disk.

:meth:`TextToSpeech.synthesize` returns the path of an 8 kHz mono 16-bit WAV
speaking the text.  The file is named by a hash of (engine, voice, rate,
pitch, text), so a sentence is synthesised once and every later call plays
the file.  eSpeak NG runs as an asyncio subprocess (text on standard input,
so no text is ever taken for an option); its 22.05 kHz output is processed
off the loop the way the shipped prompts were made (media/README.md):
silence trimmed at both ends, resampled to 8 kHz with soxr, normalised to
−3 dBFS peak, 50 ms of lead-in.  SoX is not needed at run time.

Files appear atomically (written aside, then renamed), and concurrent asks
for the same text share one synthesis.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from cosmo.speech.errors import SynthesisError
from cosmo.speech.settings import SAMPLE_RATE, TtsSettings

__all__ = ["TextToSpeech", "read_wav_pcm", "write_wav"]

log = logging.getLogger(__name__)

_PEAK_DBFS = -3.0
_LEAD_IN_S = 0.05
_TRIM_DBFS = -50.0
_MAX_TEXT = 2000


def write_wav(path: Path, pcm: npt.NDArray[np.int16], rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit ``pcm`` as a WAV file at ``rate``."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())


def read_wav_pcm(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Mono 16-bit samples and rate of a PCM WAV in ``data``.

    Tolerates the data size eSpeak NG leaves unset when it writes to a pipe
    (the data runs to the end).  Raises :class:`SynthesisError` for anything
    that is not 16-bit mono PCM WAV.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesisError("not a RIFF WAVE file")
    offset, rate, fmt_ok = 12, 0, False
    while offset + 8 <= len(data):
        chunk, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk == b"fmt " and size >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt_ok = tag == 1 and channels == 1 and bits == 16
        elif chunk == b"data":
            if not fmt_ok:
                raise SynthesisError("WAV is not 16-bit mono PCM")
            end = len(data) if size == 0 or body + size > len(data) else body + size
            payload = data[body:end]
            payload = payload[: len(payload) - len(payload) % 2]
            return np.frombuffer(payload, dtype="<i2").astype(np.int16), rate
        offset = body + size + (size & 1)
    raise SynthesisError("WAV has no data chunk")


def _telephone(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    """Trim, resample to 8 kHz, normalise and add a lead-in (as media/README.md's sox line)."""
    samples = pcm.astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 10 ** (_TRIM_DBFS / 20))
    samples = samples[loud[0]:loud[-1] + 1] if len(loud) else samples[:0]
    if rate != SAMPLE_RATE and len(samples):
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="VHQ")
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > 0:
        samples = samples * (10 ** (_PEAK_DBFS / 20) / peak)
    lead = np.zeros(int(SAMPLE_RATE * _LEAD_IN_S), dtype=np.float32)
    out = np.concatenate([lead, samples.astype(np.float32)])
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


class TextToSpeech:
    """eSpeak NG behind a disk cache.  One per process; safe to share between calls."""

    def __init__(self, settings: TtsSettings | None = None) -> None:
        self.settings = settings or TtsSettings()
        self._pending: dict[Path, asyncio.Future[Path]] = {}

    def available(self) -> bool:
        """Whether the engine's program can be found."""
        return shutil.which(self.settings.command) is not None

    def cache_path(self, text: str, language: str) -> Path:
        """Where the WAV for ``text`` in ``language`` is (or will be) cached."""
        s = self.settings
        key = "\0".join((s.engine, s.voice(language), str(s.rate_wpm), str(s.pitch), text))
        return s.cache_dir / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}.wav"

    async def synthesize(self, text: str, language: str) -> Path:
        """The path of an 8 kHz mono 16-bit WAV of ``text`` spoken in ``language``.

        Raises :class:`SynthesisError` for empty or over-long text, a missing
        engine, an unknown voice, or an engine failure.
        """
        text = " ".join(text.split())
        if not text:
            raise SynthesisError("nothing to say: the text is empty")
        if len(text) > _MAX_TEXT:
            raise SynthesisError(f"text of {len(text)} characters; at most {_MAX_TEXT} are spoken")
        path = self.cache_path(text, language)
        if path.is_file():
            return path
        pending = self._pending.get(path)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._pending[path] = future
        try:
            await self._make(text, language, path)
            future.set_result(path)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it, nobody else must
            raise
        finally:
            del self._pending[path]
        return path

    async def _make(self, text: str, language: str, path: Path) -> None:
        s = self.settings
        voice = s.voice(language)
        argv = [s.command, "-v", voice, "-s", str(s.rate_wpm), "-p", str(s.pitch), "--stdout", "--stdin"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise SynthesisError(f"{s.engine}: cannot run {s.command!r}: {exc.strerror or exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(text.encode("utf-8")), s.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SynthesisError(f"{s.engine}: no result within {s.timeout_s:g} s") from None
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        message = err.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out:
            raise SynthesisError(f"{s.engine} voice {voice!r} failed (exit {proc.returncode}): "
                                 f"{message or 'no audio'}")
        pcm, rate = read_wav_pcm(out)
        samples = await asyncio.to_thread(_telephone, pcm, rate)
        await asyncio.to_thread(self._store, path, samples)
        log.debug("tts: %r in %s → %s (%.2f s)", text[:60], voice, path.name, len(samples) / SAMPLE_RATE)

    @staticmethod
    def _store(path: Path, samples: npt.NDArray[np.int16]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        write_wav(partial, samples)
        os.replace(partial, path)
