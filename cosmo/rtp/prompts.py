"""Prompts as ready-to-send RTP payloads, and playlists over them.

Theory of operation
-------------------
A prompt is played many times, to many calls, in few codecs.  So the work is
done once: :class:`PromptCache` reads a WAV once, converts it to 8 kHz mono
once, encodes it once per codec and cuts it into 20 ms frames, each frame a
``bytes`` object that becomes one RTP payload as it is.  Playing is then only
index arithmetic over a tuple (:class:`PlaylistCursor`), cheap enough for the
media clock's tick.

Entries (8 kHz samples and encoded frames) live in one LRU bounded by their
payload bytes (64 MB by default, a few hours of G.711).  A file changed on
disk is noticed by its size and modification time when next asked for, so a
replaced prompt plays without a restart.  Loading reads and resamples on the
calling thread: a few milliseconds for a prompt, so :meth:`PromptCache.preload`
exists to warm the cache at start rather than on a caller's first play.

Codecs are given as encoder functions (int16 samples at 8 kHz -> payload
bytes), keyed by codec name, so this module knows no codec itself.  The
codec's silence is whatever it makes of zeros; the last frame of a prompt is
padded with it.

Names: ``"welcome"`` means ``<media_dir>/prompts/<language>/welcome.wav``.
Anything with a slash or ending in ``.wav`` is a path; relative paths are
relative to ``media_dir`` (``"moh/default.wav"``).
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .wav import Samples, WavError, read_wav, to_8k_mono

log = logging.getLogger(__name__)

Encoder = Callable[[np.ndarray], bytes]
PromptRef = str | os.PathLike[str]

DEFAULT_LANGUAGE = "en"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the usual G.711 packetisation (RFC 3551 §4.5)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


class PromptNotFound(WavError):
    """A prompt name or path that names no readable file."""


@dataclass(frozen=True, slots=True)
class Playlist:
    """Prompts played one after another; with ``loop`` from the start again.

    Items are prompt names (``"welcome"``) or paths, as :class:`PromptCache`
    resolves them.
    """

    items: tuple[PromptRef, ...]
    loop: bool = False

    def __post_init__(self) -> None:
        # Accept any iterable (a list from YAML) but store a tuple.
        object.__setattr__(self, "items", tuple(self.items))


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Samples | tuple[bytes, ...]
    stamp: tuple[int, int]  # (size, mtime_ns) of the file it was made from
    nbytes: int


class PromptCache:
    """Prompts decoded, resampled and encoded once, kept in a bounded LRU.

    ``encode_by_codec`` maps codec names (as the caller will ask for them,
    e.g. ``"PCMU"``) to functions from int16 samples at 8 kHz to payload
    bytes.  ``frame_samples`` is the packetisation (160 = 20 ms).  Not
    thread-safe: it belongs to the event loop that plays the frames.
    """

    def __init__(
        self,
        media_dir: PromptRef,
        encode_by_codec: Mapping[str, Encoder],
        frame_samples: int = FRAME_SAMPLES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame_samples must be positive, not {frame_samples}")
        self.media_dir = Path(media_dir)
        self.frame_samples = frame_samples
        self.max_bytes = max_bytes
        self._encoders = dict(encode_by_codec)
        self._silence: dict[str, bytes] = {}
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()
        self._bytes = 0

    @property
    def cached_bytes(self) -> int:
        """Payload bytes held now (samples and frames)."""
        return self._bytes

    def resolve(self, prompt: PromptRef, language: str = DEFAULT_LANGUAGE) -> Path:
        """The file a prompt name or path stands for (not checked to exist).

        Raises :class:`PromptNotFound` for a name or language that is not a
        plain word (letters, digits, ``-`` and ``_``).
        """
        text = os.fspath(prompt)
        if isinstance(prompt, os.PathLike) or "/" in text or os.sep in text or text.lower().endswith(".wav"):
            return self.media_dir / text  # an absolute path stays as it is
        if not _NAME.fullmatch(text):
            raise PromptNotFound(f"invalid prompt name {text!r} (letters, digits, '-' and '_' only)")
        if not _LANGUAGE.fullmatch(language):
            raise PromptNotFound(f"invalid prompt language {language!r}")
        return self.media_dir / "prompts" / language / f"{text}.wav"

    def silence_frame(self, codec: str) -> bytes:
        """One frame of silence in ``codec`` (the encoding of zeros)."""
        frame = self._silence.get(codec)
        if frame is None:
            frame = self._encoder(codec)(np.zeros(self.frame_samples, dtype=np.int16))
            if not frame:
                raise ValueError(f"codec {codec!r} encoded {self.frame_samples} samples as no bytes")
            self._silence[codec] = frame
        return frame

    def samples(self, prompt: PromptRef, language: str = DEFAULT_LANGUAGE) -> Samples:
        """The prompt as 8 kHz mono int16 samples (read-only).

        Raises :class:`PromptNotFound` when no file is there and
        :class:`WavError` when the file is not a readable WAV.
        """
        return self._samples_at(self.resolve(prompt, language))

    def _samples_at(self, path: Path) -> Samples:
        stamp = self._stamp(path)
        key = (str(path), None)
        entry = self._lookup(key, stamp)
        if entry is not None:
            return cast(Samples, entry.value)
        try:
            audio = read_wav(path)
        except FileNotFoundError as exc:  # removed since the stat
            raise PromptNotFound(f"prompt not found: {path}") from exc
        except OSError as exc:
            raise WavError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        pcm = to_8k_mono(audio)
        if pcm.flags.writeable:
            pcm.flags.writeable = False
        self._store(key, _Entry(pcm, stamp, pcm.nbytes))
        log.debug("prompt loaded: %s (%d Hz -> %d samples at 8 kHz)", path, audio.rate, len(pcm))
        return pcm

    def frames(self, prompt: PromptRef, codec: str, language: str = DEFAULT_LANGUAGE) -> tuple[bytes, ...]:
        """The prompt as payloads of ``frame_samples`` each, encoded in ``codec``.

        The same tuple is returned while it stays cached.  The last frame is
        padded with the codec's silence; an empty file gives no frames.
        Raises :class:`PromptNotFound`, :class:`WavError`, and ``ValueError``
        for a codec with no encoder or an encoder whose output does not
        divide into equal frames.
        """
        encode = self._encoder(codec)
        silence = self.silence_frame(codec)
        path = self.resolve(prompt, language)
        stamp = self._stamp(path)
        key = (str(path), codec)
        entry = self._lookup(key, stamp)
        if entry is not None:
            return cast(tuple[bytes, ...], entry.value)
        pcm = self._samples_at(path)
        n = self.frame_samples
        count = -(-len(pcm) // n)
        padded = np.zeros(count * n, dtype=np.int16)
        padded[: len(pcm)] = pcm
        payload = encode(padded) if count else b""
        size = len(silence)
        if len(payload) != count * size:
            raise ValueError(
                f"codec {codec!r} encoded {count * n} samples as {len(payload)} bytes, "
                f"not {count} frames of {size} bytes"
            )
        frames = tuple(payload[i : i + size] for i in range(0, len(payload), size))
        self._store(key, _Entry(frames, stamp, len(payload)))
        return frames

    def preload(
        self,
        prompts: Iterable[PromptRef],
        codecs: Iterable[str],
        language: str = DEFAULT_LANGUAGE,
    ) -> None:
        """Load and encode prompts ahead of their first play."""
        codec_list = list(codecs)
        for prompt in prompts:
            for codec in codec_list:
                self.frames(prompt, codec, language)

    def clear(self) -> None:
        """Forget everything cached."""
        self._entries.clear()
        self._bytes = 0

    def _encoder(self, codec: str) -> Encoder:
        try:
            return self._encoders[codec]
        except KeyError:
            raise ValueError(f"no encoder for codec {codec!r}") from None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise PromptNotFound(f"prompt not found: {path}") from None
        except OSError as exc:
            raise WavError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        return (st.st_size, st.st_mtime_ns)

    def _lookup(self, key: tuple[str, str | None], stamp: tuple[int, int]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stamp != stamp:  # the file changed on disk
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _store(self, key: tuple[str, str | None], entry: _Entry) -> None:
        if key in self._entries:
            self._drop(key)
        if entry.nbytes > self.max_bytes:
            # Larger than the whole cache: hand it out, keep nothing else out for it.
            log.warning("prompt %s (%s) is %d bytes, over the cache's %d: not cached",
                        key[0], key[1] or "samples", entry.nbytes, self.max_bytes)  # fmt: skip
            return
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: tuple[str, str | None]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.nbytes


class PlaylistCursor:
    """Where a playlist is: hands out its frames one at a time.

    All prompts are resolved and encoded when the cursor is made, so a
    missing prompt fails the ``play`` at once (:class:`PromptNotFound`)
    rather than halfway.  :meth:`next_frame` is index arithmetic over the
    cached tuples: no copy, no I/O.
    """

    def __init__(
        self,
        cache: PromptCache,
        playlist: Playlist,
        codec: str,
        language: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.playlist = playlist
        self.codec = codec
        self._prompts = tuple(cache.frames(item, codec, language) for item in playlist.items)
        self._playable = any(self._prompts)  # looping over nothing must not spin
        self._item = 0
        self._frame = 0
        self._sent = 0
        self._loops = 0
        self._settle()

    @property
    def position(self) -> tuple[int, int]:
        """``(item, frame)``: the playlist item and the frame within it sent next."""
        return (self._item, self._frame)

    @property
    def duration_s(self) -> float:
        """How long one pass over the playlist plays, in seconds."""
        return sum(len(frames) for frames in self._prompts) * FRAME_SAMPLES / 8000

    @property
    def frames_sent(self) -> int:
        """Frames handed out so far, over all loops."""
        return self._sent

    @property
    def loops(self) -> int:
        """How many times a looping playlist has started again."""
        return self._loops

    @property
    def finished(self) -> bool:
        """True when :meth:`next_frame` has nothing more to give."""
        return self._item >= len(self._prompts)

    def next_frame(self) -> bytes | None:
        """The next payload, or ``None`` at the end (never, when looping)."""
        if self._item >= len(self._prompts):
            return None
        frames = self._prompts[self._item]
        frame = frames[self._frame]
        self._frame += 1
        self._sent += 1
        if self._frame >= len(frames):
            self._settle()
        return frame

    def _settle(self) -> None:
        """Step past finished and empty items; start a looping playlist again."""
        prompts = self._prompts
        while True:
            while self._item < len(prompts) and self._frame >= len(prompts[self._item]):
                self._item += 1
                self._frame = 0
            if self._item < len(prompts) or not (self.playlist.loop and self._playable):
                return
            self._item = 0
            self._loops += 1
