"""Tests of :mod:`cosmo.rtp.dtmf`: telephone-event payloads, sender, receiver, in-band detector."""

from __future__ import annotations

import random
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.rtp.dtmf import (
    DTMF_FREQUENCIES,
    EVENT_CHARACTERS,
    DetectorSettings,
    DtmfDigit,
    DtmfEventPayload,
    GoertzelDetector,
    Rfc4733Receiver,
    Rfc4733Sender,
    classify_windows,
    digit_to_event,
    event_to_digit,
)
from cosmo.rtp.errors import ParseReason, RtpParseError, RtpUsageError
from cosmo.rtp.g711 import ulaw_decode, ulaw_encode

# --- telephone-event payload (RFC 4733 §2.3) ------------------------------------------------


def test_payload_parse_by_hand() -> None:
    # event 5, E=1, R=0, volume 10, duration 800: 05 | 1000 1010 | 0320
    assert DtmfEventPayload.parse(bytes.fromhex("058a0320")) == DtmfEventPayload(5, True, 10, 800)
    # the reserved bit is ignored
    assert DtmfEventPayload.parse(bytes.fromhex("0b4a00a0")) == DtmfEventPayload(11, False, 10, 160)


def test_payload_bytes() -> None:
    assert bytes(DtmfEventPayload(5, True, 10, 800)) == bytes.fromhex("058a0320")
    assert bytes(DtmfEventPayload(16, False, 0, 65535)) == bytes.fromhex("1000ffff")


def test_payload_digit() -> None:
    assert [DtmfEventPayload(code, False, 0, 1).digit for code in range(18)] == list("0123456789*#ABCD!") + [None]


def test_event_characters() -> None:
    assert EVENT_CHARACTERS == "0123456789*#ABCD!"
    assert event_to_digit(10) == "*" and event_to_digit(11) == "#" and event_to_digit(16) == "!"
    assert event_to_digit(17) is None and event_to_digit(-1) is None
    assert digit_to_event("D") == 15 == digit_to_event("d")
    with pytest.raises(RtpUsageError) as caught:
        digit_to_event("E")
    assert str(caught.value) == "'E' is not a DTMF digit (0-9, *, #, A-D, ! for flash)"


@pytest.mark.parametrize("size", [0, 1, 3])
def test_short_payload(size: int) -> None:
    with pytest.raises(RtpParseError) as caught:
        DtmfEventPayload.parse(bytes(size))
    assert caught.value.reason == ParseReason.SHORT
    assert str(caught.value) == f"telephone-event payload of {size} bytes is shorter than 4"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (DtmfEventPayload(1, False, 64, 1), "telephone-event volume 64 is not in 0..63"),
        (DtmfEventPayload(256, False, 0, 1), "telephone-event code 256 is not in 0..255"),
        (DtmfEventPayload(1, False, 0, 65536), "telephone-event duration 65536 is not in 0..65535"),
    ],
)
def test_payload_out_of_range(payload: DtmfEventPayload, message: str) -> None:
    with pytest.raises(RtpUsageError) as caught:
        bytes(payload)
    assert str(caught.value) == message


@given(st.builds(DtmfEventPayload, st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535)))
def test_payload_round_trip(payload: DtmfEventPayload) -> None:
    assert DtmfEventPayload.parse(bytes(payload)) == payload


@given(st.binary(max_size=8))
def test_random_payloads_parse_or_raise_our_error(data: bytes) -> None:
    try:
        DtmfEventPayload.parse(data)
    except RtpParseError as error:
        assert error.reason == ParseReason.SHORT


# --- sender (RFC 4733 §2.5) ----------------------------------------------------------------------


def test_sender_follows_rfc4733_section_2_5() -> None:
    # Digit "9", one update every 50 ms, 200 ms long at 8 kHz: the updates say 400, 800,
    # 1200 timestamp units, all stamped with the event's start; the final packet (E bit,
    # duration 1600) goes out three times; only the first packet has the marker.
    packets = Rfc4733Sender().packets("9", 0, duration_ms=200, volume=10, packet_ms=50)
    assert packets == [
        (bytes.fromhex("090a0190"), True, 0),
        (bytes.fromhex("090a0320"), False, 0),
        (bytes.fromhex("090a04b0"), False, 0),
        (bytes.fromhex("098a0640"), False, 0),
        (bytes.fromhex("098a0640"), False, 0),
        (bytes.fromhex("098a0640"), False, 0),
    ]


def test_sender_default_timing() -> None:
    packets = Rfc4733Sender().packets("#", 123456, volume=7)
    reports = [DtmfEventPayload.parse(payload) for payload, _, _ in packets]
    assert [report.duration for report in reports] == [160, 320, 480, 640, 800, 800, 800]
    assert [report.end for report in reports] == [False] * 4 + [True] * 3
    assert {report.event for report in reports} == {11} and {report.volume for report in reports} == {7}
    assert [marker for _, marker, _ in packets] == [True] + [False] * 6
    assert {timestamp for _, _, timestamp in packets} == {123456}


def test_sender_short_digit_is_three_end_packets() -> None:
    packets = Rfc4733Sender().packets("1", 5, duration_ms=20)
    assert packets == [(bytes.fromhex("018a00a0"), True, 5)] + [(bytes.fromhex("018a00a0"), False, 5)] * 2


def test_sender_wideband_clock_and_timestamp_wrap() -> None:
    packets = Rfc4733Sender(clock_rate=48000).packets("A", 2**32 + 7, duration_ms=40)
    assert [DtmfEventPayload.parse(p).duration for p, _, _ in packets] == [960, 1920, 1920, 1920]
    assert {timestamp for _, _, timestamp in packets} == {7}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"digit": "x"}, "'x' is not a DTMF digit (0-9, *, #, A-D, ! for flash)"),
        ({"digit": "1", "duration_ms": 0}, "duration_ms and packet_ms must be positive (got 0, 20)"),
        ({"digit": "1", "packet_ms": -20}, "duration_ms and packet_ms must be positive (got 100, -20)"),
        ({"digit": "1", "volume": 64}, "telephone-event volume 64 is not in 0..63"),
        (
            {"digit": "1", "duration_ms": 9000},
            "a 9000 ms event needs duration 72000, outside 1..65535 at 8000 Hz",
        ),
    ],
)
def test_sender_refuses(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(RtpUsageError) as caught:
        Rfc4733Sender().packets(start_timestamp=0, **arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message


# --- receiver -------------------------------------------------------------------------------------

Packet = tuple[bytes, int, int, float]  # payload, timestamp, sequence, arrival


def _stream(digits: str, start: int = 1000, duration_ms: int = 100, gap_ms: int = 100) -> list[list[Packet]]:
    """Packets of each digit in sending order, one every 20 ms, timestamps on an 8 kHz clock."""
    sender = Rfc4733Sender()
    groups: list[list[Packet]] = []
    sequence = 0
    timestamp = start
    now = 0.0
    for digit in digits:
        group = []
        for payload, _, stamp in sender.packets(digit, timestamp, duration_ms=duration_ms):
            now += 0.02
            sequence = (sequence + 1) & 0xFFFF
            group.append((payload, stamp, sequence, now))
        groups.append(group)
        timestamp = (timestamp + (duration_ms + gap_ms) * 8) & 0xFFFFFFFF
        now += gap_ms / 1000
    return groups


def _receive(receiver: Rfc4733Receiver, packets: list[Packet]) -> list[DtmfDigit]:
    digits: list[DtmfDigit] = []
    last = 0.0
    for payload, timestamp, sequence, now in packets:
        digits += receiver.poll(now)
        digits += receiver.feed(payload, timestamp, sequence, now)
        last = max(last, now)
    digits += receiver.poll(last + 1.0)
    return digits


def test_receiver_reports_at_the_first_end_packet() -> None:
    receiver = Rfc4733Receiver()
    (group,) = _stream("5")
    results = [receiver.feed(payload, timestamp, sequence, now) for payload, timestamp, sequence, now in group]
    assert results == [[], [], [], [], [DtmfDigit("5", 100, "rfc4733")], [], []]
    assert receiver.get_timer() is None
    assert receiver.poll(100.0) == []


def test_receiver_reports_a_digit_whose_start_was_lost() -> None:
    (group,) = _stream("7")
    assert _receive(Rfc4733Receiver(), group[4:]) == [DtmfDigit("7", 100)]
    assert _receive(Rfc4733Receiver(), group[6:]) == [DtmfDigit("7", 100)]


def test_receiver_reports_a_digit_whose_ends_were_lost_when_the_next_arrives() -> None:
    first, second = _stream("12")
    receiver = Rfc4733Receiver()
    assert _feed_all(receiver, first[:4]) == []
    payload, timestamp, sequence, now = second[0]
    assert receiver.feed(payload, timestamp, sequence, now) == [DtmfDigit("1", 80)]


def test_receiver_times_out_a_digit_whose_ends_were_lost() -> None:
    (group,) = _stream("3")
    receiver = Rfc4733Receiver(timeout=0.5)
    assert _feed_all(receiver, group[:4]) == []
    last_growth = group[3][3]
    assert receiver.get_timer() == pytest.approx(last_growth + 0.5)
    assert receiver.poll(last_growth + 0.499) == []
    assert receiver.poll(last_growth + 0.5) == [DtmfDigit("3", 80)]
    assert receiver.get_timer() is None
    assert _feed_all(receiver, group[4:]) == []  # the late end packets do not report it again


def test_receiver_timeout_runs_from_the_last_growth_not_the_last_packet() -> None:
    receiver = Rfc4733Receiver(timeout=0.5)
    update = bytes(DtmfEventPayload(4, False, 10, 160))
    assert receiver.feed(update, 8000, 1, 0.0) == []
    for step in range(1, 10):  # the same update again and again: the duration stops growing
        assert receiver.feed(update, 8000, 1 + step, step * 0.05) == []
    assert receiver.poll(0.5) == [DtmfDigit("4", 20)]


def test_receiver_ignores_duplicates() -> None:
    (group,) = _stream("8")
    doubled = [packet for packet in group for _ in range(3)]
    assert _receive(Rfc4733Receiver(), doubled) == [DtmfDigit("8", 100)]


def test_receiver_tolerates_reordering_inside_an_event() -> None:
    (group,) = _stream("9")
    shuffled = [group[5], group[1], group[0], group[6], group[2], group[4], group[3]]
    assert _receive(Rfc4733Receiver(), shuffled) == [DtmfDigit("9", 100)]


def test_receiver_drops_a_packet_of_an_older_unseen_event() -> None:
    first, second = _stream("12")
    receiver = Rfc4733Receiver()
    assert _receive(receiver, second[:1]) == [DtmfDigit("2", 20)]
    assert _feed_all(receiver, first) == []
    assert receiver.stale == len(first)


def test_receiver_ignores_other_events() -> None:
    receiver = Rfc4733Receiver()
    answer_tone = bytes(DtmfEventPayload(32, True, 10, 800))  # RFC 4734 ANS
    assert receiver.feed(answer_tone, 0, 1, 0.0) == []
    assert receiver.ignored == 1
    assert receiver.get_timer() is None


def test_receiver_reports_flash() -> None:
    receiver = Rfc4733Receiver()
    assert receiver.feed(bytes(DtmfEventPayload(16, True, 0, 4000)), 0, 1, 0.0) == [DtmfDigit("!", 500)]


def test_receiver_counts_and_drops_a_short_payload() -> None:
    receiver = Rfc4733Receiver()
    assert receiver.feed(b"\x01\x02", 0, 1, 0.0) == []
    assert receiver.malformed == 1
    assert receiver.get_timer() is None


def test_receiver_never_reports_a_remembered_timestamp_twice() -> None:
    receiver = Rfc4733Receiver(memory=4)
    end = bytes(DtmfEventPayload(1, True, 10, 800))
    assert receiver.feed(end, 100, 1, 0.0) == [DtmfDigit("1", 100)]
    assert receiver.feed(end, 100, 2, 0.02) == []
    assert receiver.feed(bytes(DtmfEventPayload(1, False, 10, 160)), 100, 3, 0.04) == []


def test_receiver_memory_is_bounded() -> None:
    receiver = Rfc4733Receiver(memory=2)
    for index in range(5):
        receiver.feed(bytes(DtmfEventPayload(index, True, 0, 800)), 1000 * index, index, index * 1.0)
    assert len(receiver._finished_set) == 2
    # An event too old to be remembered is still refused: it is older than the newest.
    assert receiver.feed(bytes(DtmfEventPayload(0, True, 0, 800)), 0, 9, 9.0) == []
    assert receiver.stale == 1


def test_receiver_across_the_timestamp_wrap() -> None:
    groups = _stream("147", start=2**32 - 1200)
    packets = [packet for group in groups for packet in group]
    assert {timestamp for _, timestamp, _, _ in packets} == {2**32 - 1200, 400, 2000}
    assert [d.digit for d in _receive(Rfc4733Receiver(), packets)] == ["1", "4", "7"]


def test_receiver_joins_the_segments_of_a_long_event() -> None:
    # RFC 4733 §2.5.1.3: a 10 s press at 8 kHz is a 65535-unit segment, its final report
    # sent three times without the E bit, then a segment starting 65535 units later.
    receiver = Rfc4733Receiver()
    start = 5000
    sequence = 0
    digits: list[DtmfDigit] = []
    for duration in (*range(400, 65535, 400), 65535, 65535, 65535):
        sequence += 1
        digits += receiver.feed(bytes(DtmfEventPayload(0, False, 10, duration)), start, sequence, sequence * 0.05)
    for duration, end in ((400, False), (14465, True), (14465, True)):
        sequence += 1
        payload = bytes(DtmfEventPayload(0, end, 10, duration))
        digits += receiver.feed(payload, start + 65535, sequence, sequence * 0.05)
    assert digits == [DtmfDigit("0", 10000)]


def test_receiver_does_not_join_two_presses_of_one_key() -> None:
    groups = _stream("55")
    packets = groups[0][:3] + groups[1]  # first press lost its last update and its ends
    assert _receive(Rfc4733Receiver(), packets) == [DtmfDigit("5", 60), DtmfDigit("5", 100)]


def test_receiver_reset() -> None:
    receiver = Rfc4733Receiver()
    end = bytes(DtmfEventPayload(2, True, 0, 800))
    assert receiver.feed(end, 100, 1, 0.0) == [DtmfDigit("2", 100)]
    receiver.reset()
    assert receiver.feed(end, 100, 1, 0.0) == [DtmfDigit("2", 100)]


def test_receiver_refuses_bad_settings() -> None:
    with pytest.raises(RtpUsageError) as caught:
        Rfc4733Receiver(timeout=0)
    assert str(caught.value) == "clock_rate, timeout and memory must be positive (got 8000, 0, 16)"


def _feed_all(receiver: Rfc4733Receiver, packets: list[Packet]) -> list[DtmfDigit]:
    digits: list[DtmfDigit] = []
    for payload, timestamp, sequence, now in packets:
        digits += receiver.feed(payload, timestamp, sequence, now)
    return digits


@st.composite
def _lossy_streams(draw: st.DrawFn) -> tuple[str, list[Packet]]:
    digits = draw(st.text(alphabet="0123456789*#ABCD", min_size=1, max_size=6))
    start = draw(st.integers(0, 2**32 - 1))
    out: list[Packet] = []
    for group in _stream(digits, start=start):
        kept = draw(st.lists(st.sampled_from(group), min_size=1, max_size=10))  # loss, duplicates
        out += draw(st.permutations(kept))  # any order inside the event
    return digits, out


@settings(max_examples=150, deadline=None)
@given(_lossy_streams())
def test_receiver_reports_every_digit_once_in_order(case: tuple[str, list[Packet]]) -> None:
    digits, packets = case
    assert "".join(d.digit for d in _receive(Rfc4733Receiver(), packets)) == digits


@pytest.mark.parametrize(
    "pattern",
    ["all", "drop_start", "drop_ends", "duplicates", "swap_neighbours", "late_end_after_next"],
)
def test_receiver_loss_patterns_in_a_digit_string(pattern: str) -> None:
    groups = _stream("2580#*")
    rng = random.Random(7)
    packets: list[Packet] = []
    for index, group in enumerate(groups):
        if pattern == "drop_start":
            group = group[2:]
        elif pattern == "drop_ends":
            group = group[:4]
        elif pattern == "duplicates":
            group = [p for p in group for _ in range(rng.randint(1, 3))]
        elif pattern == "swap_neighbours":
            group = list(group)
            for position in range(0, len(group) - 1, 2):
                group[position], group[position + 1] = group[position + 1], group[position]
        elif pattern == "late_end_after_next" and index > 0:
            # the previous digit's last end packet arrives after this digit's start
            packets.insert(len(packets), group[0])
            packets[-1], packets[-2] = packets[-2], packets[-1]
            group = group[1:]
        packets += group
    assert "".join(d.digit for d in _receive(Rfc4733Receiver(), packets)) == "2580#*"


def test_sender_to_receiver_round_trip_of_every_digit() -> None:
    groups = _stream("0123456789*#ABCD")
    received = _receive(Rfc4733Receiver(), [packet for group in groups for packet in group])
    assert received == [DtmfDigit(digit, 100) for digit in "0123456789*#ABCD"]


# --- in-band detection ----------------------------------------------------------------------------

RATE = 8000
KEYPAD = "123A456B789C*0#D"
# G.711's overload point is +3.14 dBm0 at full scale: 0 dBm0 is a sine of this peak.
PEAK_0DBM0 = 32768 * 10 ** (-3.14 / 20)
rng = np.random.default_rng(20240601)


def _dual_tone(key: str, ms: float, low_dbm0: float, high_dbm0: float | None = None) -> np.ndarray:
    index = KEYPAD.index(key)
    low, high = DTMF_FREQUENCIES[index // 4], DTMF_FREQUENCIES[4 + index % 4]
    t = np.arange(int(ms * RATE / 1000)) / RATE
    high_dbm0 = low_dbm0 if high_dbm0 is None else high_dbm0
    phase = rng.uniform(0, 2 * np.pi, 2)
    signal: np.ndarray = PEAK_0DBM0 * (
        10 ** (low_dbm0 / 20) * np.sin(2 * np.pi * low * t + phase[0])
        + 10 ** (high_dbm0 / 20) * np.sin(2 * np.pi * high * t + phase[1])
    )
    return signal


def _silence(ms: float) -> np.ndarray:
    return np.zeros(int(ms * RATE / 1000))


def _noise(samples: int, dbm0: float) -> np.ndarray:
    return rng.normal(0.0, PEAK_0DBM0 / np.sqrt(2) * 10 ** (dbm0 / 20), samples)


def _through_ulaw(signal: np.ndarray) -> np.ndarray:
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm))


def _detect(signal: np.ndarray, detector: GoertzelDetector | None = None, frame: int = 160) -> list[DtmfDigit]:
    detector = detector or GoertzelDetector()
    pcm = _through_ulaw(np.concatenate([signal, _silence(100)]))
    pcm = pcm[: len(pcm) // frame * frame]
    digits: list[DtmfDigit] = []
    for start in range(0, len(pcm), frame):
        digits += detector.feed(pcm[start : start + frame])
    return digits


def _keys(digits: list[DtmfDigit]) -> str:
    return "".join(d.digit for d in digits)


@pytest.mark.parametrize("level", [-10, -15, -20, -25])
def test_inband_detects_every_digit_with_noise_through_ulaw(level: int) -> None:
    keys = "0123456789*#ABCD"
    signal = np.concatenate([np.concatenate([_silence(60), _dual_tone(k, 70, level)]) for k in keys])
    signal += _noise(len(signal), level - 20)  # 20 dB below each tone
    digits = _detect(signal)
    assert _keys(digits) == keys
    assert {d.source for d in digits} == {"inband"}
    assert {d.duration_ms for d in digits} == {40}


def test_inband_reports_a_long_press_once() -> None:
    signal = _dual_tone("5", 1500, -15) + _noise(12000, -40)
    assert _keys(_detect(signal)) == "5"


def test_inband_bridges_a_10_ms_dropout() -> None:
    signal = np.concatenate([_dual_tone("6", 200, -15), _silence(10), _dual_tone("6", 200, -15)])
    assert _keys(_detect(signal)) == "6"


@pytest.mark.parametrize("gap_ms", [40, 60])
def test_inband_reports_a_repeated_key_after_a_gap(gap_ms: int) -> None:
    for offset in range(0, 160, 20):
        signal = np.concatenate(
            [_silence(offset / 8), _dual_tone("0", 80, -15), _silence(gap_ms), _dual_tone("0", 80, -15)]
        )
        assert _keys(_detect(signal)) == "00", offset


@pytest.mark.parametrize("offset", range(0, 160, 10))
def test_inband_minimum_duration(offset: int) -> None:
    lead = _silence(offset / 8)
    assert _keys(_detect(np.concatenate([lead, _dual_tone("9", 40, -15)]))) == "9"
    assert _keys(_detect(np.concatenate([lead, _dual_tone("9", 20, -15)]))) == ""


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-15, -12, "8"),  # high group 3 dB above: within the 4 dB reverse twist
        (-15, -9, ""),  # 6 dB above: refused
        (-11, -18, "8"),  # low group 7 dB above: within the 8 dB normal twist
        (-10, -21, ""),  # 11 dB: refused
    ],
)
def test_inband_twist_limits(low: int, high: int, expected: str) -> None:
    assert _keys(_detect(_dual_tone("8", 100, low, high))) == expected


def test_inband_ignores_tones_below_the_floor() -> None:
    assert _keys(_detect(_dual_tone("1", 200, -45))) == ""


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(0.3 * PEAK_0DBM0 * np.sin(2 * np.pi * 440 * np.arange(24000) / RATE), id="440 Hz"),
        pytest.param(0.3 * PEAK_0DBM0 * np.sin(2 * np.pi * 1000 * np.arange(24000) / RATE), id="1 kHz"),
        pytest.param(0.3 * PEAK_0DBM0 * np.sin(2 * np.pi * 697 * np.arange(24000) / RATE), id="697 Hz alone"),
        pytest.param(0.3 * PEAK_0DBM0 * np.sin(2 * np.pi * 1336 * np.arange(24000) / RATE), id="1336 Hz alone"),
        pytest.param(
            0.1
            * PEAK_0DBM0
            * (np.sin(2 * np.pi * 350 * np.arange(24000) / RATE) + np.sin(2 * np.pi * 440 * np.arange(24000) / RATE)),
            id="dial tone",
        ),
        pytest.param(_noise(24000, -10), id="white noise"),
    ],
)
def test_inband_ignores_single_tones_and_noise(signal: np.ndarray) -> None:
    assert _detect(signal) == []


def test_inband_ignores_speech(tmp_path: Path) -> None:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.skip("espeak-ng and sox are needed to make speech")
    text = (
        "Thank you for calling. Please enter your account number, followed by the pound key. "
        "One two three four five six seven eight nine zero star hash. "
        "Your call is important to us. Please hold the line."
    )
    total: list[DtmfDigit] = []
    for voice in ("en", "en-us", "de", "fr"):
        raw, narrow = tmp_path / f"{voice}.wav", tmp_path / f"{voice}-8k.wav"
        subprocess.run([espeak, "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", str(narrow)], check=True)
        with wave.open(str(narrow)) as reader:
            speech = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
        for gain in (0.5, 1.0, 2.0):
            total += _detect(np.clip(speech * gain, -32768, 32767))
    assert total == []


@pytest.mark.parametrize("frame", [80, 160, 240, 320])
def test_inband_frame_sizes(frame: int) -> None:
    signal = np.concatenate([_dual_tone("*", 80, -15), _silence(80), _dual_tone("#", 80, -15)])
    assert _keys(_detect(signal, frame=frame)) == "*#"


def test_inband_refuses_odd_frames() -> None:
    with pytest.raises(RtpUsageError) as caught:
        GoertzelDetector().feed(np.zeros(100, dtype=np.int16))
    assert str(caught.value) == "in-band DTMF frames must be a multiple of 80 samples, not 100"


def test_inband_settings() -> None:
    strict = GoertzelDetector(DetectorSettings(min_level_dbm0=-20))
    assert _keys(_detect(_dual_tone("2", 100, -25), strict)) == ""
    slow = GoertzelDetector(min_on_ms=80)
    assert _keys(_detect(_dual_tone("2", 60, -15), slow)) == ""
    assert _keys(_detect(_dual_tone("2", 100, -15), slow)) == "2"
    with pytest.raises(RtpUsageError) as caught:
        GoertzelDetector(min_on_ms=10)
    assert str(caught.value) == "min_on_ms must be at least 20 and min_gap_ms at least 10 (got 10, 40)"


def test_inband_reset() -> None:
    detector = GoertzelDetector()
    pcm = _through_ulaw(_dual_tone("3", 200, -15))
    assert _keys(detector.feed(pcm[:160]) + detector.feed(pcm[160:320]) + detector.feed(pcm[320:480])) == "3"
    detector.reset()
    assert _keys(detector.feed(pcm[480:640]) + detector.feed(pcm[640:800]) + detector.feed(pcm[800:960])) == "3"


def test_classify_windows_in_a_batch() -> None:
    windows = np.stack(
        [_through_ulaw(_dual_tone(key, 20, -15)).astype(np.float32) for key in KEYPAD]
        + [np.zeros(160, dtype=np.float32), _noise(160, -10).astype(np.float32)]
    )
    expected = [digit_to_event(key) for key in KEYPAD] + [-1, -1]
    assert classify_windows(windows) == expected
    with pytest.raises(RtpUsageError) as caught:
        classify_windows(np.zeros((2, 80)))
    assert str(caught.value) == "DTMF windows must have shape (n, 160), not (2, 80)"
