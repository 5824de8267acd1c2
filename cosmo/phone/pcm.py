"""A bounded FIFO of 16-bit PCM between two audio clocks.

The pyaudio bridge moves audio between the sound card (PortAudio's callback
thread, on the card's clock) and pjsua2's conference bridge (its own clock
thread).  The two clocks drift apart, and each side delivers in bursts of
its own size, so each direction goes through one of these buffers:

* it holds at most ``capacity`` bytes; a push beyond that drops the oldest
  audio (the consumer is slower: latency stays bounded);
* a pull of more than it holds returns what there is padded with silence,
  and from then on returns silence until ``prefill`` bytes have gathered
  again, so a starving consumer does not stutter on every frame.

Sizes are kept to whole samples.  Every method is thread-safe.
"""

from __future__ import annotations

import threading

__all__ = ["SAMPLE_BYTES", "PcmBuffer"]

SAMPLE_BYTES = 2  # signed 16-bit little-endian, mono


class PcmBuffer:
    """Thread-safe bounded PCM FIFO; see the module's text for the policy."""

    def __init__(self, capacity: int, prefill: int = 0) -> None:
        if capacity <= 0 or capacity % SAMPLE_BYTES or prefill % SAMPLE_BYTES or not 0 <= prefill <= capacity:
            raise ValueError(f"capacity {capacity} and prefill {prefill} must be whole samples, 0 <= prefill <= capacity")
        self.capacity = capacity
        self.prefill = prefill
        self._data = bytearray()
        self._primed = prefill == 0
        self._lock = threading.Lock()
        self.dropped = 0  # bytes discarded because the buffer was full
        self.padded = 0  # bytes of silence handed out because it was short

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def push(self, data: bytes) -> None:
        """Append ``data`` (whole samples), dropping the oldest audio beyond ``capacity``."""
        with self._lock:
            self._data += data[: len(data) - len(data) % SAMPLE_BYTES]
            excess = len(self._data) - self.capacity
            if excess > 0:
                del self._data[:excess]
                self.dropped += excess
            if not self._primed and len(self._data) >= self.prefill:
                self._primed = True

    def pull(self, size: int) -> bytes:
        """Take ``size`` bytes: audio while primed, padded or replaced by silence when short."""
        size -= size % SAMPLE_BYTES
        with self._lock:
            if not self._primed:
                self.padded += size
                return bytes(size)
            chunk = bytes(self._data[:size])
            del self._data[:size]
            if len(chunk) < size:
                self.padded += size - len(chunk)
                self._primed = self.prefill == 0
                chunk += bytes(size - len(chunk))
            return chunk

    def clear(self) -> None:
        """Forget what is buffered (a new call starts)."""
        with self._lock:
            self._data.clear()
            self._primed = self.prefill == 0
