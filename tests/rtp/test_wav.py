"""Tests of :mod:`cosmo.rtp.wav`.

Files are written by the stdlib ``wave`` module where it can (PCM of every
width) and byte by byte where it cannot (float, G.711, EXTENSIBLE, broken
files), then read back and compared sample for sample.
"""

from __future__ import annotations

import struct
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.rtp.wav import (
    Audio,
    WavError,
    parse_wav,
    read_wav,
    resample,
    to_8k_mono,
    write_wav,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

# A reference signal that reaches both ends of the int16 range.
REF = np.concatenate(
    [
        np.array([0, 1, -1, 255, -256, 32767, -32768, 12345, -12345], dtype=np.int16),
        (np.sin(np.arange(400) * 2 * np.pi / 40) * 30000).astype(np.int16),
    ]
)
OTHER = (np.cos(np.arange(len(REF)) * 2 * np.pi / 25) * 20000).astype(np.int16)


def _pcm_bytes(samples: np.ndarray, width: int) -> bytes:
    """int16 samples as little-endian PCM of ``width`` bytes (8-bit unsigned)."""
    wide = samples.astype(np.int64)
    if width == 1:
        return ((wide >> 8) + 128).astype(np.uint8).tobytes()
    if width == 2:
        return wide.astype("<i2").tobytes()
    if width == 3:
        as32 = (wide << 8).astype("<i4").tobytes()
        return b"".join(as32[i : i + 3] for i in range(0, len(as32), 4))
    return (wide << 16).astype("<i4").tobytes()


def _expected(samples: np.ndarray, width: int) -> np.ndarray:
    """What 16-bit reading gives back of samples stored at ``width``."""
    if width == 1:
        return ((samples.astype(np.int32) >> 8) << 8).astype(np.int16)
    return samples


def _write_stdlib(path: Path, channels: list[np.ndarray], width: int, rate: int) -> None:
    interleaved = np.stack(channels, axis=1).reshape(-1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(_pcm_bytes(interleaved, width))


def _riff(fmt: bytes, data: bytes, extra_chunks: bytes = b"") -> bytes:
    """A RIFF/WAVE file of the given fmt body and data."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag: int, channels: int, rate: int, width: int, bits: int | None = None) -> bytes:
    return struct.pack("<HHIIHH", tag, channels, rate, rate * width * channels, width * channels,
                       8 * width if bits is None else bits)  # fmt: skip


def _extensible(subformat: int, channels: int, rate: int, width: int, valid_bits: int) -> bytes:
    guid_tail = bytes.fromhex("000000001000800000aa00389b71")
    return (
        _fmt(0xFFFE, channels, rate, width)
        + struct.pack("<HHI", 22, valid_bits, 0)
        + struct.pack("<H", subformat)
        + guid_tail
    )


# --------------------------------------------------------------------- reading


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_pcm_mono_every_width_and_rate(tmp_path: Path, width: int, rate: int) -> None:
    path = tmp_path / "mono.wav"
    _write_stdlib(path, [REF], width, rate)
    audio = read_wav(path)
    assert audio.rate == rate
    assert audio.samples.dtype == np.int16
    np.testing.assert_array_equal(audio.samples, _expected(REF, width))


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_stereo_is_mixed_to_mono(tmp_path: Path, width: int) -> None:
    path = tmp_path / "stereo.wav"
    _write_stdlib(path, [REF, OTHER], width, 8000)
    left, right = _expected(REF, width).astype(np.int64), _expected(OTHER, width).astype(np.int64)
    mean = np.floor_divide(left + right + 1, 2)  # average, rounding half up
    np.testing.assert_array_equal(read_wav(path).samples, mean)


def test_many_channels_are_averaged(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    six = [np.full(10, v, dtype=np.int16) for v in (600, 0, 0, 0, 0, 0)]
    _write_stdlib(path, six, 2, 48000)
    np.testing.assert_array_equal(read_wav(path).samples, np.full(10, 100))


def test_identical_channels_mix_to_themselves(tmp_path: Path) -> None:
    path = tmp_path / "dual.wav"
    _write_stdlib(path, [REF, REF], 2, 8000)
    np.testing.assert_array_equal(read_wav(path).samples, REF)


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_ieee_float(dtype: str) -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -2.0, np.nan], dtype=dtype)
    width = np.dtype(dtype).itemsize
    audio = parse_wav(_riff(_fmt(3, 1, 44100, width), floats.tobytes()))
    np.testing.assert_array_equal(audio.samples, [0, 16384, -16384, 32767, -32768, 32767, -32768, 0])


def test_extensible_24_bit_stereo(tmp_path: Path) -> None:
    data = _pcm_bytes(np.stack([REF, OTHER], axis=1).reshape(-1), 3)
    audio = parse_wav(_riff(_extensible(1, 2, 48000, 3, 24), data))
    expected = np.floor_divide(REF.astype(np.int64) + OTHER + 1, 2)
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.rate == 48000


def test_extensible_20_valid_bits_in_24_and_float() -> None:
    data = _pcm_bytes(REF, 3)
    np.testing.assert_array_equal(parse_wav(_riff(_extensible(1, 1, 8000, 3, 20), data)).samples, REF)
    floats = np.array([0.25, -0.25], dtype="<f4").tobytes()
    np.testing.assert_array_equal(parse_wav(_riff(_extensible(3, 1, 8000, 4, 32), floats)).samples, [8192, -8192])


def test_24_bit_rounds_to_nearest() -> None:
    # 0x000080 is half an LSB of 16 bits: rounds up; 0x00007f rounds down; negative likewise.
    data = bytes.fromhex("8000007f000080ffff7fffff")
    np.testing.assert_array_equal(parse_wav(_riff(_fmt(1, 1, 8000, 3), data)).samples, [1, 0, 0, -1])


@pytest.mark.parametrize(("tag", "decode"), [(7, audioop.ulaw2lin), (6, audioop.alaw2lin)])
def test_g711_wav_decodes_like_the_reference(tag: int, decode: object) -> None:
    codes = bytes(range(256))
    audio = parse_wav(_riff(_fmt(tag, 1, 8000, 1), codes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = np.frombuffer(decode(codes, 2), dtype="<i2")  # type: ignore[operator]
    np.testing.assert_array_equal(audio.samples, reference)


def test_chunks_before_data_are_skipped_with_their_pad_byte() -> None:
    odd = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    audio = parse_wav(_riff(_fmt(1, 1, 8000, 2), REF.astype("<i2").tobytes(), extra_chunks=odd))
    np.testing.assert_array_equal(audio.samples, REF)


def test_audio_is_read_only_and_knows_its_length() -> None:
    audio = parse_wav(_riff(_fmt(1, 1, 16000, 2), np.zeros(8000, "<i2").tobytes()))
    assert audio.seconds == 0.5
    with pytest.raises(ValueError):
        audio.samples[0] = 1
    with pytest.raises(ValueError, match="1-D int16"):
        Audio(np.zeros(3, dtype=np.float32), 8000)


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "x.wav: not a WAV file (no RIFF/WAVE header)"),
        (b"ID3\x03\x00" + bytes(40), "x.wav: not a WAV file (no RIFF/WAVE header)"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "x.wav: not a WAV file (no RIFF/WAVE header)"),
        (b"RIFX\x00\x00\x00\x24WAVE", "x.wav: big-endian (RIFX) WAV files are not supported"),
        (b"RF64\xff\xff\xff\xffWAVE", "x.wav: RF64 WAV files are not supported"),
        (b"RIFF\x04\x00\x00\x00WAVE", "x.wav: no fmt chunk"),
        (_riff(_fmt(1, 1, 8000, 2), b"")[:-8], "x.wav: no data chunk"),
        (b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00", "x.wav: data chunk before fmt chunk"),
        (_riff(_fmt(1, 1, 8000, 2), bytes(100))[:-10], "x.wav: truncated (data chunk declares 100 bytes, 90 present)"),
        (_riff(_fmt(1, 1, 8000, 2), b"")[:30], "x.wav: truncated (fmt chunk declares 16 bytes, 10 present)"),
        (_riff(_fmt(1, 1, 8000, 2)[:14], b""), "x.wav: fmt chunk too short (14 bytes)"),
        (_riff(_fmt(0x11, 1, 8000, 1, 4), b""), "x.wav: unsupported encoding IMA ADPCM (format tag 0x0011); convert it to PCM"),
        (_riff(_fmt(0x55, 2, 44100, 1), b""), "x.wav: unsupported encoding MPEG Layer 3 (format tag 0x0055); convert it to PCM"),
        (_riff(_fmt(0x1234, 1, 8000, 2), b""), "x.wav: unsupported encoding format tag 0x1234; convert it to PCM"),
        (_riff(_fmt(1, 0, 8000, 2), b""), "x.wav: fmt chunk declares 0 channels"),
        (_riff(_fmt(1, 1, 2000, 2), b""), "x.wav: sample rate 2000 Hz is not supported (4000-192000 Hz)"),
        (_riff(_fmt(1, 1, 384000, 2), b""), "x.wav: sample rate 384000 Hz is not supported (4000-192000 Hz)"),
        (_riff(_fmt(1, 1, 8000, 5), b""), "x.wav: unsupported PCM sample width: 40 bits in 5 bytes"),
        (_riff(_fmt(3, 1, 8000, 2), b""), "x.wav: unsupported float sample width: 16 bits in 2 bytes"),
        (_riff(_fmt(7, 1, 8000, 2), b""), "x.wav: unsupported G.711 sample width: 16 bits in 2 bytes"),
        (_riff(_fmt(1, 1, 8000, 2, bits=24), b""), "x.wav: unsupported PCM sample width: 24 bits in 2 bytes"),
        (_riff(struct.pack("<HHIIHH", 1, 2, 8000, 0, 3, 8), b""), "x.wav: block align 3 does not fit 2 channels"),
        (_riff(_fmt(1, 1, 8000, 2), bytes(5)), "x.wav: data chunk of 5 bytes is not a whole number of 2-byte frames"),
        (_riff(_fmt(0xFFFE, 1, 8000, 2) + b"\x00\x00", b""), "x.wav: WAVE_FORMAT_EXTENSIBLE fmt chunk too short (18 bytes)"),
        (_riff(_extensible(0x11, 1, 8000, 2, 16), b""), "x.wav: unsupported encoding IMA ADPCM (format tag 0x0011); convert it to PCM"),
    ],
)  # fmt: skip
def test_refusals_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(WavError) as caught:
        parse_wav(data, name="x.wav")
    assert str(caught.value) == message


def test_read_wav_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(WavError, match=f"^{path}: not a WAV file"):
        read_wav(path)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "absent.wav")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([b"", b"RIFF\x00\x00\x00\x00WAVE", b"RIFF\x00\x00\x00\x00WAVEfmt "]))
def test_any_bytes_parse_or_raise_wav_error(tail: bytes, head: bytes) -> None:
    try:
        audio = parse_wav(head + tail)
    except WavError:
        return
    assert audio.samples.dtype == np.int16


def test_corrupted_headers_parse_or_raise_wav_error() -> None:
    rng = np.random.default_rng(7)
    header = _riff(_fmt(1, 2, 8000, 2), bytes(64))
    for _ in range(2000):
        data = bytearray(header)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        data = data[: int(rng.integers(0, len(data) + 1))]
        try:
            audio = parse_wav(bytes(data))
        except WavError:
            continue
        assert audio.samples.dtype == np.int16


# --------------------------------------------------------------------- resampling


def _tone(rate: int, seconds: float = 1.0, hz: float = 1000.0, amplitude: float = 16000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(np.sin(2 * np.pi * hz * t) * amplitude).astype(np.int16)


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))))


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_resampled_tone_keeps_frequency_and_level(rate: int) -> None:
    source = _tone(rate)
    out = resample(source, rate, 8000)
    assert out.dtype == np.int16
    assert abs(len(out) - 8000) <= 1
    middle = out[400:-400]  # away from the filter's start and end
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    peak_hz = np.argmax(spectrum) * 8000 / len(middle)
    assert abs(peak_hz - 1000) <= 8000 / len(middle)
    assert abs(_rms_db(middle) - _rms_db(source)) < 0.5


def test_resample_up_and_same_rate() -> None:
    source = _tone(8000, seconds=0.5)
    assert resample(source, 8000, 8000) is source
    up = resample(source, 8000, 16000)
    assert len(up) == 8000
    assert abs(_rms_db(up[200:-200]) - _rms_db(source)) < 0.5
    with pytest.raises(ValueError, match="rates must be positive"):
        resample(source, 0, 8000)
    with pytest.raises(ValueError, match="1-D int16"):
        resample(source.astype(np.float32), 16000, 8000)


def test_to_8k_mono(tmp_path: Path) -> None:
    path = tmp_path / "wide.wav"
    _write_stdlib(path, [_tone(44100), _tone(44100)], 2, 44100)
    pcm = to_8k_mono(read_wav(path))
    assert abs(len(pcm) - 8000) <= 1
    eight = Audio(_tone(8000), 8000)
    assert to_8k_mono(eight) is eight.samples


# --------------------------------------------------------------------- writing


def test_write_mono_reads_back_with_stdlib(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    write_wav(path, REF, 8000)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, len(REF))
        np.testing.assert_array_equal(np.frombuffer(w.readframes(len(REF)), "<i2"), REF)
    np.testing.assert_array_equal(read_wav(path).samples, REF)
    assert not list(tmp_path.glob("*.partial"))


def test_write_stereo_interleaves_and_pads_the_shorter(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    caller = np.array([1, 2, 3, 4], dtype=np.int16)
    agent = np.array([-1, -2], dtype=np.int16)
    write_wav(path, (caller, agent), 8000, channels=2)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 8000, 4)
        frames = np.frombuffer(w.readframes(4), "<i2")
    np.testing.assert_array_equal(frames, [1, -1, 2, -2, 3, 0, 4, 0])


def test_write_refuses_mismatched_arguments(tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    with pytest.raises(ValueError, match=r"^1 sample arrays given for 2 channel\(s\)$"):
        write_wav(path, REF, 8000, channels=2)
    with pytest.raises(ValueError, match="^samples must be 1-D int16 arrays, not 1-D float64$"):
        write_wav(path, REF.astype(np.float64), 8000)
    with pytest.raises(ValueError, match="^channels must be at least 1, not 0$"):
        write_wav(path, [], 8000, channels=0)
    assert not path.exists()
