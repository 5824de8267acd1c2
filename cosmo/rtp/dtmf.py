"""DTMF: RFC 4733 telephone-events in and out, and in-band tone detection.

Theory of operation
-------------------
**Receiving telephone-events** (:class:`Rfc4733Receiver`, sans-I/O).  All
packets of one event carry the event's start as their RTP timestamp
(RFC 4733 §2.5.1.1), so the timestamp is the event's identity.  The sender
repeats updates with a growing duration and ends with three copies of a
packet with the E bit (§2.5.1.4).  The receiver reports a digit once:

* at the first end packet of its timestamp (later copies are ignored), even
  when every start and update packet was lost;
* when the end packets were lost: as soon as a packet with a newer
  timestamp arrives, or from :meth:`Rfc4733Receiver.poll` once the
  duration has stopped growing for ``timeout`` seconds;
* packets of an event already reported are ignored, found in a bounded
  memory of recent timestamps; a packet older than the newest event seen
  and not remembered belongs to an event that was otherwise entirely lost
  and is dropped rather than reported out of order.

An event longer than the 16-bit duration field continues as further
segments with a new timestamp and no E bit until the last one (§2.5.1.3);
a segment that starts exactly where the open event's duration ends, for the
same event, extends that event instead of starting a digit.

**Sending** (:class:`Rfc4733Sender`) builds the packets of one digit per
RFC 4733 §2.5: marker on the first, one update per packet interval with the
duration so far, all sharing the start timestamp, then the final packet
three times with the E bit.

**In-band** (:class:`GoertzelDetector`).  Audio is analysed in windows of
160 samples (20 ms) every 80 samples (10 ms): one matrix product projects
each window onto a cosine and a sine of the eight DTMF frequencies, which
gives the Goertzel value at exactly those frequencies.  A window holds a
digit when the strongest row and column tone are each above a level floor,
together carry most of the window's energy, stand clear of the other tones
of their group, respect the twist limits and have weak second harmonics
(ITU-T Q.24 style checks; speech fails them).  The harmonics are computed
only for the rare window that passes everything else, and a frame quieter
than two tones at the floor is not projected at all.  A digit is reported
once it holds for 40 ms (three consecutive windows) and not again until a
gap of 40 ms (four windows without it).  :func:`classify_windows` does the
per-window part for many streams at once.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import ParseReason, RtpParseError, RtpUsageError
from .packet import ts_diff

__all__ = [
    "DTMF_FREQUENCIES",
    "EVENT_CHARACTERS",
    "DtmfDigit",
    "DtmfEventPayload",
    "GoertzelDetector",
    "Rfc4733Receiver",
    "Rfc4733Sender",
    "classify_windows",
    "digit_to_event",
    "event_to_digit",
]

EVENT_CHARACTERS = "0123456789*#ABCD!"
"""RFC 4733 §3.2 event codes 0-16 as characters: 10 ``*``, 11 ``#``, 12-15 ``A``-``D``, 16 flash ``!``."""
_EVENT_OF_CHARACTER = {character: code for code, character in enumerate(EVENT_CHARACTERS)}
_EVENT_OF_CHARACTER.update({character.lower(): code for code, character in enumerate("ABCD", 12)})

_EVENT_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_VOLUME_MASK = 0x3F
_MAX_DURATION = 0xFFFF
_FINAL_PACKET_COPIES = 3  # RFC 4733 §2.5.1.4


def event_to_digit(event: int) -> str | None:
    """The character of an RFC 4733 event code 0-16, ``None`` for any other code."""
    return EVENT_CHARACTERS[event] if 0 <= event < len(EVENT_CHARACTERS) else None


def digit_to_event(digit: str) -> int:
    """The RFC 4733 event code of ``0-9 * # A-D !`` (``a-d`` too).

    Raises :class:`RtpUsageError` for any other string.
    """
    try:
        return _EVENT_OF_CHARACTER[digit]
    except KeyError:
        raise RtpUsageError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D, ! for flash)") from None


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit the caller sent.

    ``duration_ms`` is how long it lasted (for in-band detection: how long it
    had lasted when recognised); ``source`` is ``"rfc4733"`` or ``"inband"``.
    """

    digit: str
    duration_ms: int
    source: str = "rfc4733"


@dataclass(frozen=True, slots=True)
class DtmfEventPayload:
    """One RFC 4733 §2.3 event report: the 4-byte telephone-event payload.

    ``volume`` is the tone's power in -dBm0 (0..63); ``duration`` is in RTP
    timestamp units since the event's start.
    """

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> DtmfEventPayload:
        """Parse the first event report of a telephone-event payload.

        Further 4-byte reports (RFC 4733 §2.5.1.5 multi-event packets) are not
        read.  Raises :class:`RtpParseError` (reason ``short``) under 4 bytes.
        """
        if len(payload) < 4:
            raise RtpParseError(f"telephone-event payload of {len(payload)} bytes is shorter than 4", ParseReason.SHORT)
        event, flags, duration = _EVENT_PAYLOAD.unpack_from(payload)
        return cls(event, flags >= _END_BIT, flags & _VOLUME_MASK, duration)

    def __bytes__(self) -> bytes:
        """The 4-byte payload (reserved bit zero).  Raises :class:`RtpUsageError` out of range."""
        if not 0 <= self.event <= 255:
            raise RtpUsageError(f"telephone-event code {self.event} is not in 0..255")
        if not 0 <= self.volume <= _VOLUME_MASK:
            raise RtpUsageError(f"telephone-event volume {self.volume} is not in 0..63")
        if not 0 <= self.duration <= _MAX_DURATION:
            raise RtpUsageError(f"telephone-event duration {self.duration} is not in 0..65535")
        return _EVENT_PAYLOAD.pack(self.event, _END_BIT | self.volume if self.end else self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """The event as a character (``0-9 * # A-D !``), ``None`` for other events."""
        return event_to_digit(self.event)


# --------------------------------------------------------------------------- receiving


class Rfc4733Receiver:
    """Turns telephone-event packets of one RTP stream into digits (sans-I/O).

    ``clock_rate`` is the telephone-event clock (8000 unless the SDP says
    otherwise); ``timeout`` how long an event whose end packets were lost
    stays open after its duration last grew.  Call :meth:`reset` when the
    stream's SSRC changes.  ``stale``, ``ignored`` and ``malformed`` count
    the packets dropped: of a lost older event, of events other than DTMF
    and flash, and payloads too short to parse.
    """

    def __init__(self, clock_rate: int = 8000, timeout: float = 0.5, memory: int = 16) -> None:
        if clock_rate <= 0 or timeout <= 0 or memory <= 0:
            raise RtpUsageError(
                f"clock_rate, timeout and memory must be positive (got {clock_rate}, {timeout}, {memory})"
            )
        self.clock_rate = clock_rate
        self.timeout = timeout
        self._finished: deque[int] = deque(maxlen=memory)
        self._finished_set: set[int] = set()
        self.stale = 0
        self.ignored = 0
        self.malformed = 0
        self.reset()

    def reset(self) -> None:
        """Forget the open event and every timestamp seen (a new stream)."""
        self._open: int | None = None  # timestamp of the event not yet reported
        self._event = 0
        self._duration = 0  # largest duration seen in the open segment
        self._earlier_segments = 0  # duration of the open event's finished segments
        self._grew_at = 0.0
        self._newest: int | None = None
        self._finished.clear()
        self._finished_set.clear()

    def feed(self, payload: bytes, timestamp: int, sequence: int, now: float) -> list[DtmfDigit]:
        """Take one telephone-event packet's payload; return the digits it completes.

        ``timestamp`` is the packet's RTP timestamp, ``sequence`` its RTP
        sequence number (events are told apart by timestamp alone; the
        sequence number is accepted for symmetry with the audio path).  A
        payload under 4 bytes is counted in ``malformed`` and dropped.
        """
        try:
            report = DtmfEventPayload.parse(payload)
        except RtpParseError:
            self.malformed += 1
            return []
        if timestamp in self._finished_set:
            return []
        done: list[DtmfDigit] = []
        if self._open is not None and timestamp != self._open:
            if ts_diff(timestamp, self._open) < 0:
                self.stale += 1
                return done
            if self._continues_open_event(report.event, timestamp):
                self._remember(self._open)
                self._earlier_segments += ts_diff(timestamp, self._open)
                self._open = self._newest = timestamp
                self._duration = 0
            else:
                done.append(self._finish())
        elif self._open is None and self._newest is not None and ts_diff(timestamp, self._newest) < 0:
            self.stale += 1
            return done
        if self._open is None:
            if report.event >= len(EVENT_CHARACTERS):
                self.ignored += 1
                return done
            # Duration 0 announces a state event (RFC 4733 §2.3.5); some senders put it on a
            # DTMF start packet anyway, which is taken as a start like any other.
            self._open = self._newest = timestamp
            self._event = report.event
            self._duration = report.duration
            self._earlier_segments = 0
            self._grew_at = now
        elif report.duration > self._duration:
            self._duration = report.duration
            self._grew_at = now
        if report.end:
            done.append(self._finish())
        return done

    def poll(self, now: float) -> list[DtmfDigit]:
        """The open event as a digit when its duration has not grown for ``timeout``."""
        if self._open is not None and now >= self._grew_at + self.timeout:
            return [self._finish()]
        return []

    def get_timer(self) -> float | None:
        """When :meth:`poll` should next be called, or ``None`` with no event open."""
        return None if self._open is None else self._grew_at + self.timeout

    def _continues_open_event(self, event: int, timestamp: int) -> bool:
        # RFC 4733 §2.5.1.3: the next segment starts where the previous one ends.  A segment
        # runs to the duration field's limit, so it is long; the open event's last updates may
        # have been lost, so its start may lie a little past the duration seen.
        offset = ts_diff(timestamp, self._open or 0)
        return (
            event == self._event
            and offset > _MAX_DURATION // 2
            and 0 <= offset - self._duration <= self.clock_rate // 5
        )

    def _finish(self) -> DtmfDigit:
        assert self._open is not None
        self._remember(self._open)
        self._open = None
        samples = self._earlier_segments + self._duration
        return DtmfDigit(EVENT_CHARACTERS[self._event], samples * 1000 // self.clock_rate, "rfc4733")

    def _remember(self, timestamp: int) -> None:
        if len(self._finished) == self._finished.maxlen:
            self._finished_set.discard(self._finished[0])
        self._finished.append(timestamp)
        self._finished_set.add(timestamp)


# --------------------------------------------------------------------------- sending


class Rfc4733Sender:
    """Builds the telephone-event packets of a digit (RFC 4733 §2.5)."""

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise RtpUsageError(f"clock_rate must be positive, not {clock_rate}")
        self.clock_rate = clock_rate

    def packets(
        self,
        digit: str,
        start_timestamp: int,
        duration_ms: int = 100,
        volume: int = 10,
        packet_ms: int = 20,
    ) -> list[tuple[bytes, bool, int]]:
        """``(payload, marker, timestamp)`` of every packet of ``digit``, one per ``packet_ms``.

        The first packet has the marker bit; each carries the duration so far
        (``packet_ms`` more than the one before); the last, with the E bit
        and the whole duration, appears three times.  Each needs its own
        RTP sequence number.  ``volume`` is in -dBm0.  Raises
        :class:`RtpUsageError` for an unknown digit, a non-positive time, a
        volume outside 0..63 or a duration beyond the 16-bit field (about
        8 s at 8 kHz).
        """
        event = digit_to_event(digit)
        if duration_ms <= 0 or packet_ms <= 0:
            raise RtpUsageError(f"duration_ms and packet_ms must be positive (got {duration_ms}, {packet_ms})")
        if not 0 <= volume <= _VOLUME_MASK:
            raise RtpUsageError(f"telephone-event volume {volume} is not in 0..63")
        total = duration_ms * self.clock_rate // 1000
        step = packet_ms * self.clock_rate // 1000
        if not 0 < total <= _MAX_DURATION:
            raise RtpUsageError(
                f"a {duration_ms} ms event needs duration {total}, outside 1..65535 at {self.clock_rate} Hz"
            )
        if step <= 0:
            raise RtpUsageError(f"{packet_ms} ms is under one sample at {self.clock_rate} Hz")
        timestamp = start_timestamp & 0xFFFFFFFF
        update = _EVENT_PAYLOAD.pack
        packets = [(update(event, volume, duration), False, timestamp) for duration in range(step, total, step)]
        final = update(event, _END_BIT | volume, total)
        packets.extend((final, False, timestamp) for _ in range(_FINAL_PACKET_COPIES))
        packets[0] = (packets[0][0], True, timestamp)
        return packets


# --------------------------------------------------------------------------- in-band detection

DTMF_FREQUENCIES = (697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0)
"""Row (low group) then column (high group) frequencies, Hz (ITU-T Q.23)."""
_KEYPAD = "123A456B789C*0#D"  # row-major: row index * 4 + column index
_EVENT_OF_KEY = [_EVENT_OF_CHARACTER[key] for key in _KEYPAD]

SAMPLE_RATE = 8000
WINDOW = 160  # 20 ms: resolves the 73 Hz spacing of the two lowest rows
HOP = 80  # 10 ms
_WINDOW_MS = WINDOW * 1000 // SAMPLE_RATE
_HOP_MS = HOP * 1000 // SAMPLE_RATE

# 0 dBm0 as a sine's peak in 16-bit samples: G.711's overload point is
# +3.14 dBm0 (A-law; +3.17 µ-law) at full scale.
DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)


def _basis(frequencies: tuple[float, ...]) -> npt.NDArray[np.float32]:
    """``(160, 2n)``: cosines then sines of ``frequencies`` over one window."""
    phase = 2 * np.pi * np.outer(np.arange(WINDOW), frequencies) / SAMPLE_RATE
    return np.ascontiguousarray(np.hstack([np.cos(phase), np.sin(phase)]), dtype=np.float32)


# Projecting a window on a cosine and a sine of f gives the Goertzel value at exactly f.
_TONE_BASIS = _basis(DTMF_FREQUENCIES)
# Second harmonics of each key's row and column tone (cos row, cos col, sin row, sin col),
# looked at only for windows that pass every other check.
_HARMONIC_BASIS = tuple(
    _basis((2 * DTMF_FREQUENCIES[key // 4], 2 * DTMF_FREQUENCIES[4 + key % 4])) for key in range(16)
)


def _tone_energy(level_dbm0: float) -> float:
    """Window energy (sum of squares) of one sine at ``level_dbm0``."""
    amplitude = DBM0_PEAK * 10 ** (level_dbm0 / 20)
    return amplitude * amplitude * WINDOW / 2


def _ratio(db: float) -> float:
    return float(10 ** (db / 10))


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Acceptance limits of one in-band detector (defaults after ITU-T Q.24 and common practice).

    ``min_level_dbm0``: each tone's floor.  ``min_fraction``: share of the
    window's energy the two tones must carry.  ``normal_twist_db``: how far
    the low-group tone may exceed the high-group one; ``reverse_twist_db``
    the other way round.  ``relative_peak_db``: how far each tone must stand
    above the others of its group.  ``row_harmonic_db`` / ``col_harmonic_db``:
    how far each tone must stand above its own second harmonic (``None``
    skips the check).
    """

    min_level_dbm0: float = -36.0
    min_fraction: float = 0.6
    normal_twist_db: float = 8.0
    reverse_twist_db: float = 4.0
    relative_peak_db: float = 8.0
    row_harmonic_db: float | None = 4.0
    col_harmonic_db: float | None = 12.0


_DEFAULTS = DetectorSettings()


class _Limits:
    """:class:`DetectorSettings` turned into thresholds on raw Goertzel powers."""

    __slots__ = ("col_harmonic", "floor", "fraction", "normal_twist", "peak", "reverse_twist", "row_harmonic")

    def __init__(self, settings: DetectorSettings) -> None:
        # A sine's Goertzel power is WINDOW / 2 times its energy in the window.
        scale = WINDOW / 2
        self.floor = _tone_energy(settings.min_level_dbm0) * scale
        self.fraction = settings.min_fraction * scale
        self.normal_twist = _ratio(settings.normal_twist_db)
        self.reverse_twist = _ratio(settings.reverse_twist_db)
        self.peak = _ratio(-settings.relative_peak_db)
        self.row_harmonic = math.inf if settings.row_harmonic_db is None else _ratio(-settings.row_harmonic_db)
        self.col_harmonic = math.inf if settings.col_harmonic_db is None else _ratio(-settings.col_harmonic_db)

    def candidate(self, squares: list[float], energy: float) -> int:
        """Keypad index (row * 4 + column) one window's tones point to, or -1.

        ``squares`` holds the squared projections on the 8 tones' cosines
        then sines; ``energy`` is the window's sum of squares.  Every check
        but the harmonic one (see :meth:`accept`) is made here.
        """
        rows = [squares[0] + squares[8], squares[1] + squares[9], squares[2] + squares[10], squares[3] + squares[11]]
        cols = [squares[4] + squares[12], squares[5] + squares[13], squares[6] + squares[14], squares[7] + squares[15]]
        row_power = max(rows)
        col_power = max(cols)
        if (
            row_power + col_power < self.fraction * energy  # most windows stop here
            or row_power < self.floor
            or col_power < self.floor
            or row_power > col_power * self.normal_twist
            or col_power > row_power * self.reverse_twist
        ):
            return -1
        row = rows.index(row_power)
        col = cols.index(col_power)
        rows.sort()
        cols.sort()
        if rows[2] > row_power * self.peak or cols[2] > col_power * self.peak:
            return -1
        return row * 4 + col

    def accept(self, key: int, squares: list[float], window: npt.NDArray[np.float32]) -> int:
        """The event code of candidate ``key`` if its second harmonics are weak enough, else -1."""
        row, col = divmod(key, 4)
        harmonics = np.dot(window, _HARMONIC_BASIS[key]).tolist()
        row_harmonic = harmonics[0] ** 2 + harmonics[2] ** 2
        col_harmonic = harmonics[1] ** 2 + harmonics[3] ** 2
        row_power = squares[row] + squares[8 + row]
        col_power = squares[4 + col] + squares[12 + col]
        if row_harmonic > row_power * self.row_harmonic or col_harmonic > col_power * self.col_harmonic:
            return -1
        return _EVENT_OF_KEY[key]

    def classify(self, windows: npt.NDArray[np.float32], energies: list[float]) -> list[int]:
        """Event code (or -1) of each window, given each window's energy."""
        codes = [-1] * len(windows)
        for index, squares in enumerate(_project(windows).tolist()):
            key = self.candidate(squares, energies[index])
            if key >= 0:
                codes[index] = self.accept(key, squares, windows[index])
        return codes


def _project(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per window, the squared projections on the 8 tones' cosines then sines."""
    projection: npt.NDArray[np.float32] = np.dot(windows, _TONE_BASIS)
    projection *= projection
    return projection


def classify_windows(windows: npt.ArrayLike, settings: DetectorSettings = _DEFAULTS) -> list[int]:
    """The RFC 4733 event code (0-15) each 160-sample window holds, -1 for none.

    ``windows`` is an ``(n, 160)`` array of samples in 16-bit scale; rows
    may come from different calls, so one matrix product and a vectorised
    first check serve a whole media tick.  Raises :class:`RtpUsageError`
    for another shape.
    """
    array = np.asarray(windows, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != WINDOW:
        raise RtpUsageError(f"DTMF windows must have shape (n, {WINDOW}), not {array.shape}")
    limits = _Limits(settings)
    squares = _project(array)
    energies = np.einsum("ij,ij->i", array, array)
    tones = squares[:, :8] + squares[:, 8:]
    # The energy-share test, vectorised with a little slack for float32 rounding: windows
    # that fail it by a clear margin need no further look.
    passing = tones[:, :4].max(axis=1) + tones[:, 4:].max(axis=1) >= 0.99 * limits.fraction * energies
    codes = [-1] * len(array)
    for index in np.flatnonzero(passing).tolist():
        window_squares = squares[index].tolist()
        key = limits.candidate(window_squares, float(energies[index]))
        if key >= 0:
            codes[index] = limits.accept(key, window_squares, array[index])
    return codes


class GoertzelDetector:
    """In-band DTMF detector for one 8 kHz audio stream.

    Feed int16 frames whose length is a multiple of 80 samples (10 ms);
    digits come back once each, ``source="inband"``.
    """

    def __init__(self, settings: DetectorSettings = _DEFAULTS, min_on_ms: int = 40, min_gap_ms: int = 40) -> None:
        if min_on_ms < _WINDOW_MS or min_gap_ms < _HOP_MS:
            raise RtpUsageError(
                f"min_on_ms must be at least {_WINDOW_MS} and min_gap_ms at least {_HOP_MS} "
                f"(got {min_on_ms}, {min_gap_ms})"
            )
        self.settings = settings
        self._limits = _Limits(settings)
        # A run of k windows spans (k - 1) hops plus one window.
        self._on_windows = math.ceil((min_on_ms - _WINDOW_MS) / _HOP_MS) + 1
        self._gap_windows = math.ceil(min_gap_ms / _HOP_MS)
        self._silence = 2 * _tone_energy(settings.min_level_dbm0)
        self._buffer = np.zeros(HOP + WINDOW, dtype=np.float32)
        self._frame_windows = np.lib.stride_tricks.sliding_window_view(self._buffer, WINDOW)[::HOP]
        self.reset()

    def reset(self) -> None:
        """Forget the audio and any digit in progress."""
        self._buffer[:] = 0.0
        self._run_code = -1
        self._run = 0
        self._active = -1  # event code reported and still sounding
        self._misses = 0

    def feed(self, frame: npt.NDArray[np.int16]) -> list[DtmfDigit]:
        """Analyse ``frame`` (int16 samples, a multiple of 80); return digits recognised in it.

        Raises :class:`RtpUsageError` for a frame whose length is not a multiple of 80.
        """
        size = len(frame)
        if size == WINDOW:
            samples = self._buffer
            samples[:HOP] = samples[WINDOW:]
            samples[HOP:] = frame
            windows = self._frame_windows
        elif size and size % HOP == 0:
            samples = np.concatenate((self._buffer[WINDOW:], np.asarray(frame, dtype=np.float32)))
            self._buffer[WINDOW:] = samples[-HOP:]
            windows = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::HOP]
        else:
            raise RtpUsageError(f"in-band DTMF frames must be a multiple of {HOP} samples, not {size}")
        if float(np.dot(samples, samples)) < self._silence:
            # Every window is quieter than two tones at the floor: nothing to project.
            codes = [-1] * len(windows)
        else:
            # Energy per 10 ms half; a window is two neighbouring halves.
            halves = samples.reshape(-1, HOP)
            half_energy: list[float] = np.einsum("ij,ij->i", halves, halves).tolist()
            energies = [half_energy[index] + half_energy[index + 1] for index in range(len(windows))]
            codes = self._limits.classify(windows, energies)
        return self._advance(codes)

    def _advance(self, codes: list[int]) -> list[DtmfDigit]:
        digits: list[DtmfDigit] = []
        for code in codes:
            if code == self._run_code:
                self._run += 1
            else:
                self._run_code = code
                self._run = 1
            if code >= 0 and code == self._active:
                self._misses = 0
                continue
            if self._active >= 0:
                self._misses += 1
                if self._misses >= self._gap_windows:
                    self._active = -1
            if self._active < 0 and code >= 0 and self._run >= self._on_windows:
                self._active = code
                self._misses = 0
                duration = (self._run - 1) * _HOP_MS + _WINDOW_MS
                digits.append(DtmfDigit(EVENT_CHARACTERS[code], duration, "inband"))
        return digits
