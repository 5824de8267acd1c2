"""Where the softphone's audio goes: a sound device, pyaudio, or nowhere.

Theory of operation
-------------------
pjsua2 mixes all audio in its conference bridge, which needs a clock.  With
a sound device pjsua2 can open itself (``mode`` ``pjsua``), the device is the
clock and is also the microphone and speaker.  The pjsua2-python wheel is
built without any sound driver, though, so the usual path is ``pyaudio``:

* pjsua2 runs on its null device (``audDevManager().setNullDev()``), whose
  clock thread drives the bridge every 20 ms;
* one :class:`_PyAudioPort` (a pjsua2 ``AudioMediaPort``) joins the bridge:
  frames the bridge hands it (what the other side says) go into the speaker
  buffer, and frames the bridge asks of it come out of the microphone buffer;
* PortAudio's callback threads fill the microphone buffer and drain the
  speaker buffer at the card's own clock.  :class:`~cosmo.phone.pcm.PcmBuffer`
  absorbs the drift between the two clocks with bounded latency.

Without a device (a server, CI, an SSH session) the null device alone clocks
the bridge: calls still play files and record, nobody hears anything.

The bridge's port callbacks run on pjsua2's clock thread (the wheel's SWIG
wrappers take the GIL there and release it around every C call), and the
PortAudio callbacks on PortAudio's threads; both only touch the buffers.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj  # type: ignore[import-untyped]

from cosmo.phone.errors import PhoneError
from cosmo.phone.options import SoundMode
from cosmo.phone.pcm import SAMPLE_BYTES, PcmBuffer

__all__ = ["SoundPath", "open_sound"]

log = logging.getLogger(__name__)

FRAME_MS = 20  # the bridge's frame (pjsua's default ptime)
BUFFER_MS = 200  # most audio a direction holds before dropping the oldest
PREFILL_MS = 40  # audio gathered before a starved direction plays again


@dataclass(slots=True)
class SoundPath:
    """The chosen audio path.

    ``mic`` is a conference member that carries the microphone (it transmits
    into a call: silence for the null device), ``speaker`` one that plays
    what a call transmits to it (``None`` for the null device).  ``close`` stops the device and
    drops the pjsua2 objects; call it before ``libDestroy``.
    """

    kind: str
    description: str
    mic: Any = None
    speaker: Any = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop the streams and release the conference members (idempotent)."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # teardown goes on whatever one step does
                log.exception("sound: closing %s", self.kind)
        self.mic = None
        self.speaker = None


def open_sound(endpoint: Any, mode: SoundMode, clock_rate: int) -> SoundPath:
    """Pick and open the audio path for ``mode`` on a started pjsua2 ``endpoint``.

    ``auto`` never fails: it falls back to the null device.  An explicit
    ``pjsua`` or ``pyaudio`` that is not available raises :class:`PhoneError`.
    """
    devices = endpoint.audDevManager()
    if mode in (SoundMode.AUTO, SoundMode.PJSUA):
        if devices.getDevCount() > 0:
            return _pjsua_sound(devices)
        if mode == SoundMode.PJSUA:
            raise PhoneError("pjsua2 has no sound device here (the pjsua2-python wheel has no sound driver)")
    if mode in (SoundMode.AUTO, SoundMode.PYAUDIO):
        devices.setNullDev()
        try:
            return _pyaudio_sound(clock_rate)
        except PhoneError as exc:
            if mode == SoundMode.PYAUDIO:
                raise
            return _null_sound(devices, f"none, null device ({exc})")
    devices.setNullDev()
    return _null_sound(devices, "none, null device")


def _null_sound(devices: Any, description: str) -> SoundPath:
    # The null device's capture side is a source of silence: connected into a
    # call it keeps RTP flowing (a port nobody transmits to sends nothing, and
    # a peer that hears nothing may end the call as dead).
    return SoundPath("null", description, mic=devices.getCaptureDevMedia())


def _pjsua_sound(devices: Any) -> SoundPath:
    try:
        name = devices.getDevInfo(devices.getPlaybackDev()).name
    except pj.Error:
        name = "default device"
    return SoundPath("pjsua", f"pjsua2 sound device {name}",
                     mic=devices.getCaptureDevMedia(), speaker=devices.getPlaybackDevMedia())


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hide what ALSA and JACK print on descriptor 2 while PortAudio probes devices."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pyaudio_sound(clock_rate: int) -> SoundPath:
    try:
        pyaudio = importlib.import_module("pyaudio")
    except ImportError as exc:
        raise PhoneError(f"pyaudio is not installed: {exc}") from None
    with _quiet_stderr():
        audio = pyaudio.PyAudio()
    try:
        try:
            output = audio.get_default_output_device_info()
        except OSError:
            raise PhoneError("no sound output device") from None
        try:
            source: dict[str, Any] | None = audio.get_default_input_device_info()
        except OSError:
            source = None
        rate = _pick_rate(audio, pyaudio.paInt16, int(output["index"]), clock_rate, int(output["defaultSampleRate"]))
        frame_bytes = rate * FRAME_MS // 1000 * SAMPLE_BYTES
        per_ms = rate * SAMPLE_BYTES // 1000
        speaker_buffer = PcmBuffer(BUFFER_MS * per_ms, PREFILL_MS * per_ms)
        mic_buffer = PcmBuffer(BUFFER_MS * per_ms, PREFILL_MS * per_ms)
        port = _PyAudioPort(speaker_buffer, mic_buffer, frame_bytes)
        port.create(rate)
        path = SoundPath("pyaudio", "", mic=port, speaker=port)
        path._closers.append(audio.terminate)
        path._closers.append(port.detach)

        def play(in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[bytes, int]:
            return speaker_buffer.pull(frame_count * SAMPLE_BYTES), pyaudio.paContinue

        streams = [audio.open(rate=rate, channels=1, format=pyaudio.paInt16, output=True,
                              output_device_index=int(output["index"]),
                              frames_per_buffer=frame_bytes // SAMPLE_BYTES, stream_callback=play)]
        if source is not None:

            def capture(in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
                if in_data:
                    mic_buffer.push(in_data)
                return None, pyaudio.paContinue

            streams.append(audio.open(rate=rate, channels=1, format=pyaudio.paInt16, input=True,
                                      input_device_index=int(source["index"]),
                                      frames_per_buffer=frame_bytes // SAMPLE_BYTES, stream_callback=capture))
        for stream in streams:
            path._closers.append(_stopper(stream))
            stream.start_stream()
    except PhoneError:
        audio.terminate()
        raise
    except (OSError, ValueError, pj.Error) as exc:
        audio.terminate()
        raise PhoneError(f"pyaudio: {exc}") from None
    microphone = source["name"] if source is not None else "no microphone"
    path.description = f"pyaudio, speaker {output['name']}, microphone {microphone}, {rate} Hz"
    return path


def _pick_rate(audio: Any, sample_format: int, device: int, wanted: int, default: int) -> int:
    """``wanted`` (the bridge's rate) if the card takes it, else the card's own rate.

    The conference bridge resamples a member whose rate differs from its own.
    """
    try:
        audio.is_format_supported(wanted, output_device=device, output_channels=1, output_format=sample_format)
    except ValueError:
        return default
    return wanted


def _stopper(stream: Any) -> Callable[[], None]:
    def stop() -> None:
        stream.stop_stream()
        stream.close()

    return stop


class _PyAudioPort(pj.AudioMediaPort):
    """A conference-bridge member that moves frames to and from the PCM buffers.

    Called on pjsua2's clock thread.  An exception must not leave a SWIG
    director callback (it would abort the process), so each is caught and logged.
    """

    def __init__(self, speaker: PcmBuffer, mic: PcmBuffer, frame_bytes: int) -> None:
        super().__init__()
        self.speaker = speaker
        self.mic = mic
        self.frame_bytes = frame_bytes
        self.silence = bytes(frame_bytes)
        self.failed = False

    def create(self, rate: int) -> None:
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = rate
        fmt.channelCount = 1
        fmt.bitsPerSample = SAMPLE_BYTES * 8
        fmt.frameTimeUsec = FRAME_MS * 1000
        self.createPort("pyaudio", fmt)

    def detach(self) -> None:
        """Stop feeding the buffers; the port leaves the bridge when its object is dropped."""
        self.failed = True

    def onFrameReceived(self, frame: Any) -> None:  # the bridge → the speaker
        if self.failed:
            return
        try:
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                self.speaker.push(bytes(frame.buf))
            else:
                self.speaker.push(self.silence)
        except Exception:  # the root of a clock-thread callback
            self.failed = True
            log.exception("sound: speaker frame")

    def onFrameRequested(self, frame: Any) -> None:  # the microphone → the bridge
        data = self.silence
        if not self.failed:
            try:
                data = self.mic.pull(self.frame_bytes)
            except Exception:  # the root of a clock-thread callback
                self.failed = True
                log.exception("sound: microphone frame")
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(data)
        frame.size = len(data)
