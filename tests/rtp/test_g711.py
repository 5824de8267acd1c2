"""Tests of :mod:`cosmo.rtp.g711`: bit-exact against CPython's ``audioop`` (the G.191 algorithm).

``audioop`` is deprecated (removed in 3.13); it serves here only as the
reference, with its warning silenced.  Without it the comparisons are skipped
and the hand-checked code points still run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosmo.rtp.errors import RtpUsageError
from cosmo.rtp.g711 import (
    ALAW_DECODE,
    ALAW_SILENCE,
    ALAW_TO_ULAW,
    CODECS,
    PCMA,
    PCMU,
    ULAW_DECODE,
    ULAW_SILENCE,
    ULAW_TO_ALAW,
    alaw_decode,
    alaw_encode,
    alaw_to_ulaw,
    find_codec,
    ulaw_decode,
    ulaw_encode,
    ulaw_to_alaw,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python 3.13+
        audioop = None  # type: ignore[assignment]

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop (the reference) is not in this Python")

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_SAMPLE_LE = EVERY_SAMPLE.astype("<i2").tobytes()
EVERY_CODE = bytes(range(256))


@needs_audioop
def test_ulaw_encode_matches_reference_for_every_sample() -> None:
    assert ulaw_encode(EVERY_SAMPLE_LE) == audioop.lin2ulaw(EVERY_SAMPLE_LE, 2)
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE_LE, 2)


@needs_audioop
def test_alaw_encode_matches_reference_for_every_sample() -> None:
    assert alaw_encode(EVERY_SAMPLE_LE) == audioop.lin2alaw(EVERY_SAMPLE_LE, 2)
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE_LE, 2)


@needs_audioop
def test_decode_matches_reference_for_every_code() -> None:
    assert ulaw_decode(EVERY_CODE).astype("<i2").tobytes() == audioop.ulaw2lin(EVERY_CODE, 2)
    assert alaw_decode(EVERY_CODE).astype("<i2").tobytes() == audioop.alaw2lin(EVERY_CODE, 2)


def _g191_alaw_compress(samples: np.ndarray) -> bytes:
    """ITU-T G.191 ``alaw_compress``, written out from its C source."""
    x = samples.astype(np.int32)
    magnitude = np.where(x < 0, ~x, x) >> 4  # one's complement, 12 bits
    code = magnitude.copy()
    exponent = np.ones_like(magnitude)
    large = magnitude > 15
    for _ in range(7):
        shift = large & (code > 31)
        code = np.where(shift, code >> 1, code)
        exponent += shift
    code = np.where(large, code - 16 + (exponent << 4), magnitude)
    encoded: bytes = (np.where(x >= 0, code | 0x80, code) ^ 0x55).astype(np.uint8).tobytes()
    return encoded


def _g191_ulaw_compress(samples: np.ndarray) -> bytes:
    """ITU-T G.191 ``ulaw_compress``, written out from its C source."""
    x = samples.astype(np.int32)
    biased = np.minimum(np.where(x < 0, ~x >> 2, x >> 2) + 33, 0x1FFF)
    segment = np.ones_like(biased)
    rest = biased >> 6
    for _ in range(8):
        segment += rest != 0
        rest >>= 1
    code = ((8 - segment) << 4) | (0x0F - ((biased >> segment) & 0x0F))
    encoded: bytes = np.where(x >= 0, code | 0x80, code).astype(np.uint8).tobytes()
    return encoded


def test_alaw_encode_matches_g191_for_every_sample() -> None:
    assert alaw_encode(EVERY_SAMPLE) == _g191_alaw_compress(EVERY_SAMPLE)


def test_ulaw_encode_differs_from_g191_only_on_negative_decision_boundaries() -> None:
    ours = np.frombuffer(ulaw_encode(EVERY_SAMPLE), np.uint8)
    g191 = np.frombuffer(_g191_ulaw_compress(EVERY_SAMPLE), np.uint8)
    differing = np.flatnonzero(ours != g191)
    assert len(differing) == 508
    assert (EVERY_SAMPLE[differing] < 0).all()
    assert (np.abs(ours[differing].astype(int) - g191[differing].astype(int)) == 1).all()  # one step


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        # G.711 table 2a/2b end points and zero, worked by hand from the segment rules.
        (0, 0xFF, 0xD5),
        (-1, 0x7E, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (8, 0xFE, 0xD5),
        (-8, 0x7E, 0x55),
    ],
)
def test_known_code_points(sample: int, ulaw: int, alaw: int) -> None:
    pcm = np.array([sample], dtype=np.int16)
    assert ulaw_encode(pcm) == bytes((ulaw,))
    assert alaw_encode(pcm) == bytes((alaw,))


def test_decode_end_points() -> None:
    assert ULAW_DECODE[0xFF] == 0 and ULAW_DECODE[0x7F] == 0
    assert ULAW_DECODE[0x80] == 32124 and ULAW_DECODE[0x00] == -32124
    assert ALAW_DECODE[0xD5] == 8 and ALAW_DECODE[0x55] == -8
    assert ALAW_DECODE[0xAA] == 32256 and ALAW_DECODE[0x2A] == -32256
    assert ULAW_DECODE.dtype == np.int16 and ALAW_DECODE.dtype == np.int16


def test_silence_bytes_decode_to_near_zero() -> None:
    assert ULAW_SILENCE == 0xFF and ALAW_SILENCE == 0xD5
    assert ulaw_decode(bytes((ULAW_SILENCE,)))[0] == 0
    assert alaw_decode(bytes((ALAW_SILENCE,)))[0] == 8


def test_every_code_survives_decode_then_encode() -> None:
    # µ-law 0x7F (negative zero) encodes back as 0xFF; every other code is its own image.
    ulaw_back = ulaw_encode(ulaw_decode(EVERY_CODE))
    assert [code for code in range(256) if ulaw_back[code] != code] == [0x7F]
    assert alaw_encode(alaw_decode(EVERY_CODE)) == EVERY_CODE


def test_transcoding_tables_are_decode_then_encode() -> None:
    assert len(ULAW_TO_ALAW) == len(ALAW_TO_ULAW) == 256
    assert ulaw_to_alaw(EVERY_CODE) == alaw_encode(ulaw_decode(EVERY_CODE))
    assert alaw_to_ulaw(EVERY_CODE) == ulaw_encode(alaw_decode(EVERY_CODE))
    assert ulaw_to_alaw(bytes((ULAW_SILENCE,))) == bytes((ALAW_SILENCE,))


@needs_audioop
def test_transcoding_tables_match_reference() -> None:
    assert ulaw_to_alaw(EVERY_CODE) == audioop.lin2alaw(audioop.ulaw2lin(EVERY_CODE, 2), 2)
    assert alaw_to_ulaw(EVERY_CODE) == audioop.lin2ulaw(audioop.alaw2lin(EVERY_CODE, 2), 2)


@given(st.binary(max_size=320))
def test_transcoding_bytes(data: bytes) -> None:
    assert alaw_to_ulaw(data) == ulaw_encode(alaw_decode(data))
    assert ulaw_to_alaw(data) == alaw_encode(ulaw_decode(data))


def test_encode_accepts_arrays_bytes_and_views() -> None:
    pcm = np.array([0, 1000, -1000, 32767], dtype=np.int16)
    as_bytes = pcm.astype("<i2").tobytes()
    expected = ulaw_encode(pcm)
    assert ulaw_encode(as_bytes) == expected
    assert ulaw_encode(bytearray(as_bytes)) == expected
    assert ulaw_encode(memoryview(as_bytes)) == expected
    assert ulaw_encode(pcm.astype(">i2")) == expected  # byte-swapped arrays are read by value
    assert ulaw_encode(np.repeat(pcm, 2)[::2]) == expected  # strided views too


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (b"\x00\x00\x00", "16-bit PCM of 3 bytes has a half sample"),
        (bytearray(1), "16-bit PCM of 1 bytes has a half sample"),
        (np.zeros(4, dtype=np.float32), "G.711 encodes int16 samples, not float32"),
        (np.zeros(4, dtype=np.int32), "G.711 encodes int16 samples, not int32"),
    ],
)
def test_encode_refuses_other_input(pcm: object, message: str) -> None:
    for encode in (ulaw_encode, alaw_encode):
        with pytest.raises(RtpUsageError) as caught:
            encode(pcm)  # type: ignore[arg-type]
        assert str(caught.value) == message


def test_decode_returns_int16_arrays() -> None:
    frame = ulaw_decode(b"\xff" * 160)
    assert frame.dtype == np.int16 and frame.shape == (160,)
    assert ulaw_decode(b"").shape == (0,)


def test_sine_round_trip_keeps_g711_signal_to_noise() -> None:
    # G.711 keeps about 38 dB SNR for a sine well inside its range (G.712 limits).
    t = np.arange(8000) / 8000
    sine = (10000 * np.sin(2 * np.pi * 1004 * t)).astype(np.int16)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        error = decode(encode(sine)).astype(np.float64) - sine
        snr = 10 * np.log10(np.mean(sine.astype(np.float64) ** 2) / np.mean(error**2))
        assert snr > 35


def test_codec_registry() -> None:
    assert set(CODECS) == {"PCMU", "PCMA"}
    assert find_codec("pcmu") is PCMU and find_codec("PCMA") is PCMA
    assert find_codec("G729") is None
    assert (PCMU.payload_type, PCMU.clock_rate, PCMU.silence) == (0, 8000, 0xFF)
    assert (PCMA.payload_type, PCMA.clock_rate, PCMA.silence) == (8, 8000, 0xD5)
    assert PCMU.encode is ulaw_encode and PCMA.decode is alaw_decode
    assert PCMU.silence_payload(160) == b"\xff" * 160
    assert PCMA.silence_payload(80) == b"\xd5" * 80
    assert PCMA.silence_frame == b"\xd5" * 160


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        ULAW_DECODE[0] = 1
