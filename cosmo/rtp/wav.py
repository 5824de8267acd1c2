"""WAV files: read any common WAV as mono 16-bit samples, resample, write.

The media engine works in 16-bit mono PCM at 8 kHz.  Prompts and hold music
come from anywhere (an editor, a recording, a text-to-speech engine), so
:func:`read_wav` accepts what such tools write and reduces it to mono int16
at the file's own rate; :func:`to_8k_mono` then brings it to the telephone
rate.  The recorder writes with :func:`write_wav`.

The RIFF chunks are parsed here rather than by the stdlib ``wave`` module,
which in Python 3.11 refuses ``WAVE_FORMAT_EXTENSIBLE`` (what SoX, Audacity
and most editors write for 24-bit, 32-bit and multichannel files) and IEEE
float.

Read:
    * PCM, 8-bit unsigned and 16, 24 or 32-bit signed (a narrower valid width
      inside a wider container, e.g. 20 bits in 24, is read as the container);
    * IEEE float, 32 or 64-bit (clipped to full scale);
    * G.711 µ-law and A-law (decoded with this module's own tables);
    * each of these also inside ``WAVE_FORMAT_EXTENSIBLE``;
    * any number of channels, mixed down to mono by averaging;
    * sample rates from 4 to 192 kHz.

Refused with :class:`WavError`, which names the file and the reason: not
RIFF/WAVE, big-endian (RIFX) or RF64 files, compressed encodings (ADPCM, GSM,
MP3 ...), missing ``fmt``/``data`` chunks, and truncated files.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from .errors import RtpError

Samples = npt.NDArray[np.int16]
StrPath = str | os.PathLike[str]

TELEPHONE_RATE = 8000
MIN_RATE = 4000
MAX_RATE = 192000

# RIFF WAVE format tags (RFC 2361, appendix A).
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Names of encodings people meet in the wild, for a helpful refusal.
_COMPRESSED_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG",
    0x0055: "MPEG Layer 3",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
}

_RIFF_HEADER = struct.Struct("<4sI4s")
_CHUNK_HEADER = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")  # tag, channels, rate, byte rate, block align, bits


class WavError(RtpError):
    """A file that is not a WAV this module can read."""


@dataclass(frozen=True, slots=True, eq=False)
class Audio:
    """Decoded audio: mono 16-bit samples at ``rate`` samples per second.

    ``samples`` is a read-only view, so an ``Audio`` can be shared freely.
    """

    samples: Samples
    rate: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(f"samples must be a 1-D int16 array, not {self.samples.ndim}-D {self.samples.dtype}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, not {self.rate}")
        view = self.samples.view()
        view.flags.writeable = False
        object.__setattr__(self, "samples", view)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / self.rate


def read_wav(path: StrPath) -> Audio:
    """Read a WAV file as mono int16 at its own rate.

    Raises :class:`WavError` for a file this module cannot read (see the
    module docstring), and ``OSError`` (``FileNotFoundError`` ...) when the
    file cannot be opened.
    """
    data = Path(path).read_bytes()
    return parse_wav(data, name=os.fspath(path))


def parse_wav(data: bytes, name: str = "<bytes>") -> Audio:
    """Decode the bytes of a WAV file; ``name`` is used in error messages."""
    if len(data) < _RIFF_HEADER.size:
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    riff, _, wave_id = _RIFF_HEADER.unpack_from(data)
    if riff == b"RIFX":
        raise WavError(f"{name}: big-endian (RIFX) WAV files are not supported")
    if riff == b"RF64":
        raise WavError(f"{name}: RF64 WAV files are not supported")
    if riff != b"RIFF" or wave_id != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")

    fmt: _Format | None = None
    pos = _RIFF_HEADER.size
    while pos + _CHUNK_HEADER.size <= len(data):
        chunk_id, size = _CHUNK_HEADER.unpack_from(data, pos)
        body = pos + _CHUNK_HEADER.size
        available = len(data) - body
        if chunk_id == b"fmt ":
            if size > available:
                raise WavError(f"{name}: truncated (fmt chunk declares {size} bytes, {available} present)")
            fmt = _parse_fmt(data[body : body + size], name)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk before fmt chunk")
            if size > available:
                raise WavError(f"{name}: truncated (data chunk declares {size} bytes, {available} present)")
            return Audio(_decode(data[body : body + size], fmt, name), fmt.rate)
        pos = body + size + (size & 1)  # chunks are word-aligned (RIFF pad byte)
    if fmt is None:
        raise WavError(f"{name}: no fmt chunk")
    raise WavError(f"{name}: no data chunk")


@dataclass(frozen=True, slots=True)
class _Format:
    encoding: int  # one of the WAVE_FORMAT_* tags, EXTENSIBLE resolved
    channels: int
    rate: int
    width: int  # bytes per sample (container)


def _parse_fmt(body: bytes, name: str) -> _Format:
    if len(body) < _FMT.size:
        raise WavError(f"{name}: fmt chunk too short ({len(body)} bytes)")
    tag, channels, rate, _, block_align, bits = _FMT.unpack_from(body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        # WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4) SubFormat GUID(16),
        # whose first two bytes are the real format tag.
        if len(body) < 40:
            raise WavError(f"{name}: WAVE_FORMAT_EXTENSIBLE fmt chunk too short ({len(body)} bytes)")
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW):
        known = _COMPRESSED_NAMES.get(tag)
        what = f"{known} (format tag 0x{tag:04x})" if known else f"format tag 0x{tag:04x}"
        raise WavError(f"{name}: unsupported encoding {what}; convert it to PCM")
    if channels == 0:
        raise WavError(f"{name}: fmt chunk declares 0 channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"{name}: sample rate {rate} Hz is not supported ({MIN_RATE}-{MAX_RATE} Hz)")
    if block_align == 0 or block_align % channels:
        raise WavError(f"{name}: block align {block_align} does not fit {channels} channels")
    width = block_align // channels
    allowed = {
        WAVE_FORMAT_PCM: (1, 2, 3, 4),
        WAVE_FORMAT_IEEE_FLOAT: (4, 8),
        WAVE_FORMAT_MULAW: (1,),
        WAVE_FORMAT_ALAW: (1,),
    }[tag]
    if width not in allowed or bits > 8 * width or bits == 0:
        kind = {WAVE_FORMAT_PCM: "PCM", WAVE_FORMAT_IEEE_FLOAT: "float"}.get(tag, "G.711")
        raise WavError(f"{name}: unsupported {kind} sample width: {bits} bits in {width} bytes")
    return _Format(tag, channels, rate, width)


def _decode(raw: bytes, fmt: _Format, name: str) -> Samples:
    frame = fmt.width * fmt.channels
    if len(raw) % frame:
        raise WavError(f"{name}: data chunk of {len(raw)} bytes is not a whole number of {frame}-byte frames")
    if fmt.encoding == WAVE_FORMAT_PCM:
        interleaved = _decode_pcm(raw, fmt.width)
    elif fmt.encoding == WAVE_FORMAT_IEEE_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if fmt.width == 4 else "<f8")
        scaled = np.nan_to_num(floats.astype(np.float64) * 32768.0)
        interleaved = np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)
    else:
        table = _ULAW_TABLE if fmt.encoding == WAVE_FORMAT_MULAW else _ALAW_TABLE
        interleaved = table[np.frombuffer(raw, dtype=np.uint8)]
    if fmt.channels == 1:
        return interleaved
    return _mix_down(interleaved.reshape(-1, fmt.channels))


def _decode_pcm(raw: bytes, width: int) -> Samples:
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if width == 3:
        # Place each 3-byte sample in the top of an int32 (sign comes along).
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        quads = np.zeros((len(triples), 4), dtype=np.uint8)
        quads[:, 1:] = triples
        wide = quads.view("<i4").reshape(-1)
    else:
        wide = np.frombuffer(raw, dtype="<i4")
    # Round to 16 bits rather than truncate (truncation adds a -0.5 LSB offset).
    rounded = (wide.astype(np.int64) + 0x8000) >> 16
    return np.clip(rounded, -32768, 32767).astype(np.int16)


def _mix_down(frames: npt.NDArray[np.int16]) -> Samples:
    """Average the channels of (n, channels) samples, rounding half up."""
    channels = frames.shape[1]
    total = frames.sum(axis=1, dtype=np.int64)
    return np.floor_divide(2 * total + channels, 2 * channels).astype(np.int16)


def _g711_tables() -> tuple[Samples, Samples]:
    """Decode tables for µ-law and A-law (ITU-T G.711), as 16-bit linear."""
    codes = np.arange(256, dtype=np.int32)
    # µ-law: bits are inverted; segment (3 bits) and mantissa (4 bits) with a bias of 0x84.
    u = ~codes & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    ulaw = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    # A-law: even bits are inverted (XOR 0x55); segment 0 is linear.
    a = codes ^ 0x55
    segment = (a >> 4) & 0x07
    mantissa = (a & 0x0F) << 4
    alaw_mag = np.where(segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0))
    alaw = np.where(a & 0x80, alaw_mag, -alaw_mag)
    return ulaw.astype(np.int16), alaw.astype(np.int16)


_ULAW_TABLE, _ALAW_TABLE = _g711_tables()


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample int16 samples with soxr's high-quality (HQ) filter.

    Returns ``samples`` itself when the rates are equal.  Output that would
    overshoot full scale (a full-scale input's filter ringing) is clipped.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"rates must be positive, not {from_rate} -> {to_rate}")
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"samples must be a 1-D int16 array, not {samples.ndim}-D {samples.dtype}")
    if from_rate == to_rate:
        return samples
    out: Samples = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return out


def to_8k_mono(audio: Audio) -> Samples:
    """The audio at the telephone rate, 8 kHz (``audio.samples`` if already there)."""
    return resample(audio.samples, audio.rate, TELEPHONE_RATE)


def write_wav(
    path: StrPath,
    samples: Samples | Sequence[Samples],
    rate: int,
    channels: int = 1,
) -> None:
    """Write 16-bit PCM WAV, replacing ``path`` atomically.

    ``samples`` is one int16 array for ``channels=1``, or one array per
    channel otherwise (the recorder writes caller and agent as left and
    right).  Channels of different lengths are padded with silence at the
    end to the longest.  Raises ``ValueError`` for mismatched arguments and
    ``OSError`` when the file cannot be written.
    """
    if channels < 1:
        raise ValueError(f"channels must be at least 1, not {channels}")
    tracks: Sequence[Samples] = [samples] if isinstance(samples, np.ndarray) else samples
    if len(tracks) != channels:
        raise ValueError(f"{len(tracks)} sample arrays given for {channels} channel(s)")
    for track in tracks:
        if track.dtype != np.int16 or track.ndim != 1:
            raise ValueError(f"samples must be 1-D int16 arrays, not {track.ndim}-D {track.dtype}")
    if not 1 <= rate <= 0xFFFFFFFF // (2 * channels):
        raise ValueError(f"rate {rate} Hz cannot be written")
    length = max(len(track) for track in tracks)
    interleaved = np.zeros((length, channels), dtype="<i2")
    for index, track in enumerate(tracks):
        interleaved[: len(track), index] = track
    pcm = interleaved.tobytes()
    header = _RIFF_HEADER.pack(b"RIFF", 4 + 8 + _FMT.size + 8 + len(pcm), b"WAVE")
    fmt = _CHUNK_HEADER.pack(b"fmt ", _FMT.size) + _FMT.pack(
        WAVE_FORMAT_PCM, channels, rate, rate * 2 * channels, 2 * channels, 16
    )
    data = _CHUNK_HEADER.pack(b"data", len(pcm))
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb") as f:
            f.write(header + fmt + data)
            f.write(pcm)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
