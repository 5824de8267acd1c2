"""Audio analysis for tests: WAV reading and writing, tones, correlation.

Samples are numpy float64 arrays scaled to [-1, 1]: shape (n,) for mono,
(n, channels) otherwise.  Everything here is plain numpy.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]

# RIFF WAVE format tags (RFC 2361 appendix A).
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_ALAW = 0x0006
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

SILENCE_DBFS = -120.0


class AudioError(Exception):
    """A file that is not a WAV this module can read, or unusable input."""


@dataclass(frozen=True, slots=True)
class Wav:
    """Decoded WAV contents."""

    samples: Samples
    rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def mono(self) -> Samples:
        return to_mono(self.samples)


@dataclass(frozen=True, slots=True)
class XcorrPeak:
    """Best match of a reference inside a received signal.

    ``peak`` is the normalized cross-correlation at ``lag_seconds`` (1.0 for
    an exact scaled copy); ``noise_floor`` the median of its magnitude over
    all lags, what unrelated audio scores.
    """

    peak: float
    lag_seconds: float
    noise_floor: float


# -- reading and writing -----------------------------------------------


def read_wav(path: str | os.PathLike[str]) -> Wav:
    """Read a RIFF WAVE file: 8/16/24/32-bit PCM, float, A-law or µ-law.

    A data chunk whose size field is 0 or runs past the end of the file
    (a recorder killed before it wrote the header) is read to the end.
    Raises :class:`AudioError` for anything else.
    """
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{path}: not a RIFF WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        size = struct.unpack_from("<I", data, offset + 4)[0]
        body_start = offset + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", data, body_start)
            bits = struct.unpack_from("<H", data, body_start + 14)[0]
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", data, body_start + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError(f"{path}: data chunk before fmt chunk")
            if size == 0 or body_start + size > len(data):
                size = len(data) - body_start
            return _decode(path, data[body_start : body_start + size], *fmt)
        offset = body_start + size + (size & 1)
    raise AudioError(f"{path}: no data chunk")


def _decode(path: str | os.PathLike[str], raw: bytes, tag: int, channels: int, rate: int, bits: int) -> Wav:
    if channels < 1 or rate < 1:
        raise AudioError(f"{path}: {channels} channels at {rate} Hz")
    width = bits // 8
    if width < 1:
        raise AudioError(f"{path}: {bits} bits per sample")
    raw = raw[: len(raw) - len(raw) % (width * channels)]
    if tag == _WAVE_FORMAT_PCM and bits == 8:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == _WAVE_FORMAT_PCM and bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif tag == _WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        samples = value.astype(np.float64) / 8388608.0
    elif tag == _WAVE_FORMAT_PCM and bits == 32:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        samples = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    elif tag == _WAVE_FORMAT_MULAW and bits == 8:
        samples = ulaw_decode(np.frombuffer(raw, dtype=np.uint8))
    elif tag == _WAVE_FORMAT_ALAW and bits == 8:
        samples = alaw_decode(np.frombuffer(raw, dtype=np.uint8))
    else:
        raise AudioError(f"{path}: unsupported format tag {tag:#06x} with {bits} bits")
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return Wav(samples=samples, rate=rate, channels=channels)


def write_wav(path: str | os.PathLike[str], samples: npt.ArrayLike, rate: int = 8000) -> Path:
    """Write 16-bit PCM; ``samples`` in [-1, 1], shape (n,) or (n, channels)."""
    array = np.asarray(samples, dtype=np.float64)
    channels = 1 if array.ndim == 1 else int(array.shape[1])
    pcm = np.clip(np.round(array * 32767.0), -32768, 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, _WAVE_FORMAT_PCM, channels, rate, rate * channels * 2, channels * 2, 16
    )
    header += b"data" + struct.pack("<I", len(pcm))
    out = Path(path)
    out.write_bytes(header + pcm)
    return out


def tone(
    freq: float, seconds: float, rate: int = 8000, *, amplitude: float = 0.5, freq2: float | None = None
) -> Samples:
    """A sine (or the sum of two, as in DTMF) with 5 ms fades at both ends."""
    t = np.arange(round(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * freq * t)
    if freq2 is not None:
        wave = (wave + np.sin(2 * np.pi * freq2 * t)) / 2
    fade = min(len(t) // 2, int(rate * 0.005))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return amplitude * wave


def write_tone_wav(
    path: str | os.PathLike[str], freq: float, seconds: float, rate: int = 8000, *, amplitude: float = 0.5
) -> Path:
    """Write a mono 16-bit sine tone WAV."""
    return write_wav(path, tone(freq, seconds, rate, amplitude=amplitude), rate)


# -- G.711 (ITU-T G.711) ---------------------------------------------------


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> Samples:
    u = (~codes.astype(np.int32)) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    value = np.where(sign, -magnitude, magnitude)
    return value.astype(np.float64) / 32768.0


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """µ-law bytes of samples in [-1, 1] (G.711 with the usual 0x84 bias, clipped at 32635)."""
    pcm = np.clip(np.round(to_mono(samples) * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(codes: npt.NDArray[np.uint8]) -> Samples:
    a = codes.astype(np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    value = np.where(sign, magnitude, -magnitude)
    return value.astype(np.float64) / 32768.0


# -- analysis --------------------------------------------------------------


def to_mono(samples: npt.ArrayLike) -> Samples:
    array = np.asarray(samples, dtype=np.float64)
    return array if array.ndim == 1 else array.mean(axis=1)


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> Samples:
    """Band-limited resampling of a mono signal (FFT method)."""
    array = to_mono(samples)
    if from_rate == to_rate or len(array) == 0:
        return array.copy()
    count = round(len(array) * to_rate / from_rate)
    spectrum = np.fft.rfft(array)
    keep = count // 2 + 1
    if keep <= len(spectrum):
        spectrum = spectrum[:keep]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(keep - len(spectrum), dtype=complex)])
    return np.fft.irfft(spectrum, count) * (count / len(array))


def rms_dbfs(samples: npt.ArrayLike) -> float:
    """RMS level in dB relative to a full-scale square wave; -120 for silence."""
    array = to_mono(samples)
    if len(array) == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(array * array)))
    return max(SILENCE_DBFS, 20 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


def dominant_frequency(
    samples: npt.ArrayLike, rate: int, *, min_hz: float = 50.0, max_hz: float | None = None
) -> float:
    """Frequency (Hz) of the strongest spectral peak between the limits.

    Hann window and parabolic interpolation between bins.  Raises
    :class:`AudioError` for fewer than 64 samples.
    """
    array = to_mono(samples)
    if len(array) < 64:
        raise AudioError(f"{len(array)} samples are too few for a spectrum")
    spectrum = np.abs(np.fft.rfft((array - array.mean()) * np.hanning(len(array))))
    freqs = np.fft.rfftfreq(len(array), 1.0 / rate)
    top = max_hz if max_hz is not None else rate / 2
    band = (freqs >= min_hz) & (freqs <= top)
    if not band.any():
        raise AudioError(f"no spectrum between {min_hz} and {top} Hz at {rate} Hz")
    index = int(np.flatnonzero(band)[np.argmax(spectrum[band])])
    if 0 < index < len(spectrum) - 1:
        a, b, c = np.log(spectrum[index - 1 : index + 2] + 1e-12)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
        return float((index + shift) * rate / len(array))
    return float(freqs[index])


def band_energy_ratio(samples: npt.ArrayLike, rate: int, freq: float, *, width_hz: float = 30.0) -> float:
    """Share (0..1) of the signal's energy within ``freq`` ± ``width_hz``."""
    array = to_mono(samples)
    if len(array) == 0:
        return 0.0
    power = np.abs(np.fft.rfft((array - array.mean()) * np.hanning(len(array)))) ** 2
    freqs = np.fft.rfftfreq(len(array), 1.0 / rate)
    total = float(power.sum())
    if total <= 0:
        return 0.0
    return float(power[np.abs(freqs - freq) <= width_hz].sum() / total)


def normalized_xcorr_peak(
    reference: npt.ArrayLike,
    received: npt.ArrayLike,
    *,
    reference_rate: int,
    received_rate: int,
) -> XcorrPeak:
    """Where and how well ``reference`` appears inside ``received``.

    The reference is resampled to the received rate.  At each lag the
    correlation is divided by the energy of both the reference and the
    received window under it, so the value is 1.0 for a copy at any gain and
    independent of how loud the rest of the recording is.  When the
    reference is longer than the recording, the recording slides over it
    instead (a negative lag: the recording starts inside the reference).
    """
    ref = resample(reference, reference_rate, received_rate)
    rec = to_mono(received)
    if len(ref) == 0 or len(rec) == 0:
        raise AudioError("empty signal")
    sign = 1.0
    if len(ref) > len(rec):
        ref, rec = rec, ref
        sign = -1.0
    ref = ref - ref.mean()
    n = len(rec) + len(ref) - 1
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[: len(rec) - len(ref) + 1]
    energy = np.concatenate([[0.0], np.cumsum(rec * rec)])
    sums = np.concatenate([[0.0], np.cumsum(rec)])
    window_energy = energy[len(ref) :] - energy[: len(rec) - len(ref) + 1]
    window_sum = sums[len(ref) :] - sums[: len(rec) - len(ref) + 1]
    window_var = np.maximum(window_energy - window_sum * window_sum / len(ref), 0.0)
    ref_norm = float(np.sqrt(np.sum(ref * ref)))
    denom = np.sqrt(window_var) * ref_norm
    quiet = denom < 1e-9 * max(1.0, ref_norm)
    normalized = np.where(quiet, 0.0, corr / np.where(quiet, 1.0, denom))
    magnitude = np.abs(normalized)
    best = int(np.argmax(magnitude))
    return XcorrPeak(
        peak=float(normalized[best]),
        lag_seconds=sign * best / received_rate,
        noise_floor=float(np.median(magnitude)),
    )


def piecewise_xcorr(
    pieces_of: npt.ArrayLike,
    within: npt.ArrayLike,
    *,
    pieces_rate: int,
    within_rate: int,
    piece_seconds: float = 0.5,
) -> list[XcorrPeak]:
    """Where each consecutive piece of ``pieces_of`` appears in ``within`` (see :func:`normalized_xcorr_peak`).

    A receiver's jitter buffer may drop or repeat a frame now and then, which
    lowers one whole-signal correlation; piece by piece, such a slip spoils
    at most the piece that holds it, and the lags show whether the pieces
    arrived in order.  A last piece shorter than ``piece_seconds`` is left out.
    """
    array = to_mono(pieces_of)
    size = round(piece_seconds * pieces_rate)
    return [
        normalized_xcorr_peak(array[start : start + size], within, reference_rate=pieces_rate, received_rate=within_rate)
        for start in range(0, len(array) - size + 1, size)
    ]


# -- DTMF (ITU-T Q.23/Q.24) ------------------------------------------------

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


def dtmf_tone(digit: str, seconds: float = 0.1, rate: int = 8000, *, amplitude: float = 0.5) -> Samples:
    """The dual tone of one DTMF key."""
    for row, keys in enumerate(DTMF_KEYS):
        col = keys.find(digit.upper())
        if col >= 0:
            return tone(DTMF_LOW[row], seconds, rate, amplitude=amplitude, freq2=DTMF_HIGH[col])
    raise AudioError(f"{digit!r} is not a DTMF key")


def _goertzel(block: Samples, rate: int, freq: float) -> float:
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in block:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dtmf_digits(samples: npt.ArrayLike, rate: int, *, block_ms: float = 20.0, min_blocks: int = 2) -> str:
    """In-band DTMF keys found in the signal, in order.

    Per block the strongest low and high group tones must each hold most
    of their group's energy and together most of the block's; a key counts
    once it lasts ``min_blocks`` blocks and again only after a gap.
    """
    array = to_mono(samples)
    size = max(1, int(rate * block_ms / 1000))
    found: list[str] = []
    current: str | None = None
    run = 0
    reported = False
    for start in range(0, len(array) - size + 1, size):
        block = array[start : start + size]
        energy = float(np.sum(block * block)) * size / 2
        low = [_goertzel(block, rate, f) for f in DTMF_LOW]
        high = [_goertzel(block, rate, f) for f in DTMF_HIGH]
        li, hi = int(np.argmax(low)), int(np.argmax(high))
        key: str | None = None
        if (
            energy > 1e-6
            and low[li] + high[hi] > 0.5 * energy
            and low[li] > 4 * (sum(low) - low[li])
            and high[hi] > 4 * (sum(high) - high[hi])
        ):
            key = DTMF_KEYS[li][hi]
        if key is not None and key == current:
            run += 1
        else:
            current, run, reported = key, 1, False
        if current is not None and run >= min_blocks and not reported:
            found.append(current)
            reported = True
    return "".join(found)
