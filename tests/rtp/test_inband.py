"""Tests of :mod:`cosmo.rtp.inband`: in-band DTMF heard in G.711 payloads of any length."""

from __future__ import annotations

import numpy as np
import pytest

from cosmo.rtp.dtmf import DtmfDigit
from cosmo.rtp.g711 import alaw_encode, ulaw_encode
from cosmo.rtp.inband import InbandDtmfListener
from tests.audio import dtmf_tone


def keyed_audio(keys: str, *, on_s: float = 0.08, gap_s: float = 0.1) -> np.ndarray:
    parts = [np.zeros(800)]
    for key in keys:
        parts += [dtmf_tone(key, on_s, amplitude=0.4), np.zeros(int(gap_s * 8000))]
    return np.round(np.concatenate(parts) * 32767).astype(np.int16)


@pytest.mark.parametrize(("codec", "encode"), [("PCMU", ulaw_encode), ("PCMA", alaw_encode)])
@pytest.mark.parametrize("packet", [80, 160, 240, 173])  # 10, 20, 30 ms and an odd size
def test_digits_in_order_whatever_the_packet_length(codec: str, encode: object, packet: int) -> None:
    payload = encode(keyed_audio("0123456789*#ABCD"))  # type: ignore[operator]
    listener = InbandDtmfListener()
    digits: list[DtmfDigit] = []
    for start in range(0, len(payload), packet):
        digits += listener.feed(payload[start:start + packet], codec)
    assert "".join(d.digit for d in digits) == "0123456789*#ABCD"
    assert {d.source for d in digits} == {"inband"}


def test_a_held_key_is_one_digit_and_repeats_need_a_gap() -> None:
    held = ulaw_encode(keyed_audio("5", on_s=1.0))
    twice = ulaw_encode(keyed_audio("55"))
    for payload, expected in ((held, "5"), (twice, "55")):
        listener = InbandDtmfListener()
        found = [d.digit for i in range(0, len(payload), 160) for d in listener.feed(payload[i:i + 160], "PCMU")]
        assert "".join(found) == expected


def test_unknown_codec_and_empty_payloads_are_ignored() -> None:
    listener = InbandDtmfListener()
    assert listener.feed(ulaw_encode(keyed_audio("1")), "G722") == []
    assert listener.feed(b"", "PCMU") == []


def test_reset_forgets_a_digit_in_progress() -> None:
    payload = ulaw_encode(keyed_audio("7", on_s=0.1))
    listener = InbandDtmfListener()
    # 800 samples of silence, then 30 ms of the key: not yet a digit (40 ms needed).
    assert listener.feed(payload[:1040], "PCMU") == []
    listener.reset()
    # After the reset, 10 ms more of the key is too little on its own.
    assert listener.feed(payload[1040:1120], "PCMU") == []
