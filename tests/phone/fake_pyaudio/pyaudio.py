"""A stand-in for pyaudio with one pretend sound card, for the softphone's bridge tests.

A test puts this directory first on ``PYTHONPATH`` of a ``cosmo phone``
process, so ``import pyaudio`` finds this module.  The card is clocked by
its own threads, as PortAudio's callback streams are:

* the microphone produces a sine of ``FAKE_PYAUDIO_TONE_HZ`` (default 440);
* what the speaker is given is appended, as raw 16-bit mono PCM, to the
  file ``FAKE_PYAUDIO_SPEAKER``;
* the card only takes ``FAKE_PYAUDIO_RATE`` (default 16000) samples per
  second, so the phone's bridge must resample;
* ``FAKE_PYAUDIO_DEVICES=0`` pretends there is no device at all.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

paInt16 = 8
paContinue = 0
paComplete = 1

RATE = int(os.environ.get("FAKE_PYAUDIO_RATE", "16000"))
TONE_HZ = float(os.environ.get("FAKE_PYAUDIO_TONE_HZ", "440"))
SPEAKER = os.environ.get("FAKE_PYAUDIO_SPEAKER")
HAS_DEVICES = os.environ.get("FAKE_PYAUDIO_DEVICES", "1") != "0"

_OUTPUT = {"index": 0, "name": "fake speaker", "defaultSampleRate": float(RATE), "maxOutputChannels": 1}
_INPUT = {"index": 1, "name": "fake microphone", "defaultSampleRate": float(RATE), "maxInputChannels": 1}


class PyAudio:
    """The pretend PortAudio instance."""

    def get_device_count(self) -> int:
        return 2 if HAS_DEVICES else 0

    def get_default_output_device_info(self) -> dict[str, Any]:
        if not HAS_DEVICES:
            raise OSError(-9996, "No Default Output Device Available")
        return dict(_OUTPUT)

    def get_default_input_device_info(self) -> dict[str, Any]:
        if not HAS_DEVICES:
            raise OSError(-9996, "No Default Input Device Available")
        return dict(_INPUT)

    def is_format_supported(self, rate: float, **kwargs: Any) -> bool:
        if int(rate) != RATE:
            raise ValueError("Invalid sample rate", -9997)
        return True

    def open(self, rate: int, channels: int, format: int, input: bool = False, output: bool = False,
             frames_per_buffer: int = 320, stream_callback: Callable[..., Any] | None = None,
             **kwargs: Any) -> _Stream:
        if int(rate) != RATE or channels != 1 or format != paInt16 or stream_callback is None:
            raise ValueError(f"unsupported stream: {rate} Hz, {channels} channels, format {format}")
        return _Stream(input, frames_per_buffer, stream_callback)

    def terminate(self) -> None:
        pass


class _Stream:
    def __init__(self, is_input: bool, frames: int, callback: Callable[..., Any]) -> None:
        self.is_input = is_input
        self.frames = frames
        self.callback = callback
        self.running = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-pyaudio", daemon=True)
        self.position = 0

    def start_stream(self) -> None:
        self.running.set()
        self.thread.start()

    def stop_stream(self) -> None:
        self.running.clear()
        if self.thread.is_alive():
            self.thread.join(timeout=2)

    def is_active(self) -> bool:
        return self.running.is_set()

    def close(self) -> None:
        self.stop_stream()

    def _run(self) -> None:
        period = self.frames / RATE
        deadline = time.monotonic()
        speaker = open(SPEAKER, "ab") if SPEAKER and not self.is_input else None  # noqa: SIM115
        try:
            while self.running.is_set():
                deadline += period
                if self.is_input:
                    samples = [int(8000 * math.sin(2 * math.pi * TONE_HZ * (self.position + i) / RATE))
                               for i in range(self.frames)]
                    self.position += self.frames
                    self.callback(struct.pack(f"<{self.frames}h", *samples), self.frames, {}, 0)
                else:
                    data, _ = self.callback(None, self.frames, {}, 0)
                    if speaker is not None:
                        speaker.write(data)
                        speaker.flush()
                time.sleep(max(0.0, deadline - time.monotonic()))
        finally:
            if speaker is not None:
                speaker.close()
