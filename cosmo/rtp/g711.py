"""G.711 µ-law and A-law (ITU-T G.711), table driven.

Every conversion is one table look-up per sample, the tables built once at
import with numpy:

* decoding: a 256-entry int16 table per law;
* encoding: a 65536-entry uint8 table per law indexed by the 16-bit sample
  itself (its two's-complement bits read as unsigned), so encoding is a
  single ``take`` with no shift or clip;
* transcoding: a 256-byte ``bytes.translate`` table each way.

The segment arithmetic that fills the tables is that of Sun's ``g711.c``,
which CPython's ``audioop`` and SoX use: µ-law quantises the top 14 bits of
a 16-bit sample, A-law the top 13, both shifting toward minus infinity.
The tests hold every one of the 65536 inputs to ``audioop.lin2ulaw`` and
``audioop.lin2alaw``.  A-law is also identical to ITU-T G.191's
``alaw_compress``; G.191's ``ulaw_compress`` takes the magnitude of a
negative sample by one's complement instead, so for 508 negative inputs
lying on a decision boundary it picks the neighbouring code (one
quantisation step).  Decoding agrees with both everywhere.

PCM is signed 16-bit in host byte order when given or returned as a numpy
array, little-endian when given as ``bytes`` (WAV order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import RtpUsageError

__all__ = [
    "ALAW_DECODE",
    "ALAW_SILENCE",
    "ALAW_TO_ULAW",
    "CODECS",
    "PCMA",
    "PCMU",
    "ULAW_DECODE",
    "ULAW_SILENCE",
    "ULAW_TO_ALAW",
    "Codec",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_ulaw",
    "find_codec",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_alaw",
]

Pcm = npt.NDArray[np.int16]
PcmInput = bytes | bytearray | memoryview | Pcm

ULAW_SILENCE = 0xFF
"""µ-law code of zero (positive zero; 0x7F is negative zero)."""
ALAW_SILENCE = 0xD5
"""A-law code of the smallest positive level (+8), the A-law idle pattern."""

_SIGN_MASK = 0x80
_QUANT_MASK = 0x0F
_SEG_SHIFT = 4
_ULAW_BIAS = 0x84  # 132: added before the segment search, in 16-bit scale
_ULAW_CLIP = 8159  # largest 14-bit magnitude µ-law represents
# Upper end of each segment, in the scaled magnitude of each law.
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_decode_table() -> Pcm:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> _SEG_SHIFT) & 0x07
    mantissa = code & _QUANT_MASK
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(code & _SIGN_MASK, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> Pcm:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> _SEG_SHIFT) & 0x07
    magnitude = (code & _QUANT_MASK) << 4
    magnitude = np.where(segment == 0, magnitude + 8, magnitude + 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & _SIGN_MASK, magnitude, -magnitude).astype(np.int16)


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its bits read as uint16 (the encode index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 2  # 14-bit
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    code = (segment << _SEG_SHIFT) | ((magnitude >> (segment + 1)) & _QUANT_MASK)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 3  # 13-bit
    negative = value < 0
    magnitude = np.where(negative, -value - 1, value)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left")
    shift = np.where(segment < 2, 1, segment)
    code = (segment << _SEG_SHIFT) | ((magnitude >> shift) & _QUANT_MASK)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ np.where(negative, 0x55, 0xD5)).astype(np.uint8)


ULAW_DECODE: Pcm = _ulaw_decode_table()
"""µ-law code → int16 sample."""
ALAW_DECODE: Pcm = _alaw_decode_table()
"""A-law code → int16 sample."""
_ULAW_ENCODE = _ulaw_encode_table()
_ALAW_ENCODE = _alaw_encode_table()
for _table in (ULAW_DECODE, ALAW_DECODE, _ULAW_ENCODE, _ALAW_ENCODE):
    _table.flags.writeable = False

ULAW_TO_ALAW = _ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tobytes()
"""``bytes.translate`` table: µ-law code → A-law code of the same decoded sample."""
ALAW_TO_ULAW = _ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tobytes()
"""``bytes.translate`` table: A-law code → µ-law code of the same decoded sample."""

_frombuffer = np.frombuffer
_UINT8 = np.dtype(np.uint8)
_UINT16_LE = np.dtype("<u2")
_UINT16 = np.dtype(np.uint16)
_INT16 = np.dtype(np.int16)
# Bound ``take`` methods: half the call overhead of ``np.take`` or fancy indexing.
_ulaw_encode_take = _ULAW_ENCODE.take
_alaw_encode_take = _ALAW_ENCODE.take
_ulaw_decode_take = ULAW_DECODE.take
_alaw_decode_take = ALAW_DECODE.take


def _encode_index(pcm: PcmInput) -> npt.NDArray[np.uint16]:
    if type(pcm) is bytes:
        if len(pcm) & 1:
            raise RtpUsageError(f"16-bit PCM of {len(pcm)} bytes has a half sample")
        return _frombuffer(pcm, _UINT16_LE)
    if isinstance(pcm, np.ndarray):
        if pcm.dtype is _INT16:
            return pcm.view(_UINT16)
        if pcm.dtype.kind != "i" or pcm.dtype.itemsize != 2:
            raise RtpUsageError(f"G.711 encodes int16 samples, not {pcm.dtype}")
        return pcm.astype(_INT16).view(_UINT16)  # byte-swapped: read by value
    if len(pcm) & 1:
        raise RtpUsageError(f"16-bit PCM of {len(pcm)} bytes has a half sample")
    return _frombuffer(pcm, _UINT16_LE)


def ulaw_encode(pcm: PcmInput) -> bytes:
    """µ-law bytes of int16 samples (a numpy int16 array or little-endian bytes).

    Raises :class:`RtpUsageError` for an array that is not int16 or bytes of odd length.
    """
    return _ulaw_encode_take(_encode_index(pcm)).tobytes()


def alaw_encode(pcm: PcmInput) -> bytes:
    """A-law bytes of int16 samples (a numpy int16 array or little-endian bytes).

    Raises :class:`RtpUsageError` for an array that is not int16 or bytes of odd length.
    """
    return _alaw_encode_take(_encode_index(pcm)).tobytes()


def ulaw_decode(data: bytes) -> Pcm:
    """int16 samples of µ-law bytes (``.tobytes()`` gives host-order PCM)."""
    return _ulaw_decode_take(_frombuffer(data, _UINT8))


def alaw_decode(data: bytes) -> Pcm:
    """int16 samples of A-law bytes (``.tobytes()`` gives host-order PCM)."""
    return _alaw_decode_take(_frombuffer(data, _UINT8))


def ulaw_to_alaw(data: bytes) -> bytes:
    """A-law bytes carrying the same samples as µ-law ``data``."""
    return data.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes) -> bytes:
    """µ-law bytes carrying the same samples as A-law ``data``."""
    return data.translate(ALAW_TO_ULAW)


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec as the media path uses it.

    ``payload_type`` is the RFC 3551 static payload type; ``silence`` the
    code byte of digital silence, ``silence_frame`` 20 ms of it.
    """

    name: str
    payload_type: int
    clock_rate: int
    silence: int
    encode: Callable[[PcmInput], bytes]
    decode: Callable[[bytes], Pcm]
    silence_frame: bytes

    def silence_payload(self, samples: int) -> bytes:
        """``samples`` samples of digital silence."""
        if samples == len(self.silence_frame):
            return self.silence_frame
        return bytes((self.silence,)) * samples


PCMU = Codec("PCMU", 0, 8000, ULAW_SILENCE, ulaw_encode, ulaw_decode, bytes((ULAW_SILENCE,)) * 160)
PCMA = Codec("PCMA", 8, 8000, ALAW_SILENCE, alaw_encode, alaw_decode, bytes((ALAW_SILENCE,)) * 160)

CODECS: dict[str, Codec] = {codec.name: codec for codec in (PCMU, PCMA)}
"""Codecs by their SDP encoding name in upper case."""


def find_codec(name: str) -> Codec | None:
    """The codec an SDP encoding name denotes (case-insensitive, RFC 4855 §3), or ``None``."""
    return CODECS.get(name.upper())
