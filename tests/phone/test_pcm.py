"""The PCM buffer between the sound card's clock and pjsua2's."""

from __future__ import annotations

import threading

import pytest

from cosmo.phone.pcm import PcmBuffer


def samples(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, "little", signed=True) for v in values)


def test_first_in_first_out() -> None:
    buffer = PcmBuffer(capacity=16)
    buffer.push(samples(1, 2, 3))
    buffer.push(samples(4))
    assert buffer.pull(4) == samples(1, 2)
    assert buffer.pull(4) == samples(3, 4)
    assert len(buffer) == 0
    assert buffer.dropped == buffer.padded == 0


def test_a_full_buffer_drops_the_oldest_audio() -> None:
    buffer = PcmBuffer(capacity=6)
    buffer.push(samples(1, 2, 3, 4, 5))
    assert buffer.dropped == 4
    assert buffer.pull(6) == samples(3, 4, 5)


def test_a_short_buffer_pads_with_silence_then_waits_for_the_prefill() -> None:
    buffer = PcmBuffer(capacity=20, prefill=6)
    buffer.push(samples(1, 2))
    assert buffer.pull(4) == samples(0, 0)  # not primed yet: silence, the audio stays
    buffer.push(samples(3))
    assert buffer.pull(8) == samples(1, 2, 3, 0)  # primed: all there is, then silence
    assert buffer.padded == 4 + 2
    buffer.push(samples(4, 5))
    assert buffer.pull(2) == samples(0)  # starved: waits for 3 samples again
    buffer.push(samples(6))
    assert buffer.pull(6) == samples(4, 5, 6)


def test_half_samples_are_never_stored_or_returned() -> None:
    buffer = PcmBuffer(capacity=8)
    buffer.push(samples(7) + b"\x01")
    assert len(buffer) == 2
    assert buffer.pull(3) == samples(7)


def test_clear_forgets_and_waits_for_the_prefill() -> None:
    buffer = PcmBuffer(capacity=8, prefill=4)
    buffer.push(samples(1, 2, 3))
    buffer.clear()
    buffer.push(samples(9))
    assert buffer.pull(2) == samples(0)


@pytest.mark.parametrize(("capacity", "prefill"), [(0, 0), (7, 0), (8, 3), (8, 10), (8, -2)])
def test_sizes_are_whole_samples(capacity: int, prefill: int) -> None:
    with pytest.raises(ValueError, match="must be whole samples"):
        PcmBuffer(capacity, prefill)


def test_two_threads_lose_nothing_below_the_capacity() -> None:
    buffer = PcmBuffer(capacity=1 << 20)
    chunk = samples(*range(160))
    pushes = 500

    def producer() -> None:
        for _ in range(pushes):
            buffer.push(chunk)

    thread = threading.Thread(target=producer)
    thread.start()
    taken = bytearray()
    while thread.is_alive() or len(buffer):
        taken += buffer.pull(min(len(buffer), 320))
    thread.join()
    assert bytes(taken) == chunk * pushes
