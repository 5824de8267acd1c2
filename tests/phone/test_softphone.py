"""The agent softphone end to end: ``python -m cosmo.phone`` against a real ``cosmo serve``.

Every phone and the server run as child processes on 127.0.0.1 and are ended
by their own PIDs.  What the phone heard is checked by analysing its
recordings: hold music (cross-correlation with the file Cosmo plays) and
tones (dominant frequency).  The bridge to pyaudio is exercised with a
pretend sound card (``tests/phone/fake_pyaudio``) in the phone's process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pytest

from tests.audio import (
    band_energy_ratio,
    dominant_frequency,
    normalized_xcorr_peak,
    read_wav,
    rms_dbfs,
    write_tone_wav,
)
from tests.cosmo_server import REPO, CosmoProcess, cosmo_server
from tests.peers.common import kill_pid

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(importlib.util.find_spec("pjsua2") is None, reason=f"pjsua2 not installed for {sys.executable}"),
]

MOH = REPO / "media" / "moh" / "default.wav"
FAKE_PYAUDIO = Path(__file__).with_name("fake_pyaudio")
NUMBER = "+15550100"  # the demo number: welcome prompt, then music on hold
WAIT_S = 20.0  # longest wait for one line of the phone (a bound, not an expectation)


class PhoneProcess:
    """``python -m cosmo.phone`` in a child process: keys to its stdin, lines from its stdout."""

    def __init__(self, server: CosmoProcess, workdir: Path, *args: str, ext: str = "1001",
                 env: dict[str, str] | None = None, transport: str = "udp") -> None:
        self.argv = [sys.executable, "-m", "cosmo.phone", "--ext", ext, "--password", f"secret{ext}",
                     "--server", f"127.0.0.1:{server.sip_port}", "--transport", transport, *args]
        self.workdir = workdir
        self.env = env or {}
        self.name = ext
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_path = workdir / f"phone-{ext}.stderr"

    async def __aenter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_PYAUDIO")}
        environment.update(self.env)
        with self.stderr_path.open("wb") as stderr:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=REPO, env=environment, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        kill_pid(proc.pid, signal.SIGKILL)
        await proc.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def expect(self, pattern: str, timeout: float = WAIT_S) -> re.Match[str]:
        """Read lines until one matches ``pattern``; fails with everything seen so far."""
        assert self.proc is not None and self.proc.stdout is not None
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"phone {self.name}: no line matching {pattern!r} in {timeout} s; "
                                     f"saw {self.lines}\nstderr:\n{self.stderr()}")
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not raw:
                raise AssertionError(f"phone {self.name} exited ({await self.proc.wait()}) before {pattern!r}; "
                                     f"saw {self.lines}\nstderr:\n{self.stderr()}")
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            match = regex.search(line)
            if match is not None:
                return match

    async def send(self, keys: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(keys.encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait_exit(self, timeout: float = WAIT_S) -> int:
        """The exit status, after reading the rest of stdout into ``lines``."""
        assert self.proc is not None and self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        self.lines += rest.decode(errors="replace").splitlines()
        return await asyncio.wait_for(self.proc.wait(), timeout)


async def registrations(server: CosmoProcess, extension: str) -> list[dict[str, Any]]:
    status, body = await server.api("GET", f"/api/registrations?extension={extension}")
    assert status == 200, body
    return body["registrations"]


async def wait_no_calls(server: CosmoProcess, timeout: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        _, body = await server.api("GET", "/api/calls")
        if not body["calls"]:
            return
        if loop.time() > deadline:
            raise AssertionError(f"calls still up after {timeout} s: {body}")
        await asyncio.sleep(0.2)


async def wait_for_log(server: CosmoProcess, done: Callable[[str], bool], timeout: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(server.log()):
        if loop.time() > deadline:
            raise AssertionError(f"server log not as expected after {timeout} s:\n{server.log()}")
        await asyncio.sleep(0.1)


def read_cdrs(server: CosmoProcess) -> list[sqlite3.Row]:
    connection = sqlite3.connect(server.data_dir / "cosmo.db")
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM cdrs ORDER BY id").fetchall()
    finally:
        connection.close()


def trunk_elsewhere(settings: dict[str, Any]) -> None:
    """The demo trunk trusts 127.0.0.1 and would take the phones' INVITEs as its own:
    move it, so calls between agents are authenticated as the agents'."""
    for trunk in settings["trunks"]:
        trunk["inbound"]["sources"] = ["192.0.2.1/32"]  # TEST-NET-1 (RFC 5737): nobody calls from there


def tone_of(samples: np.ndarray, rate: int, *, skip_s: float = 0.5) -> tuple[float, float]:
    """(dominant frequency, level in dBFS), the first ``skip_s`` left out."""
    body = samples[int(skip_s * rate):]
    return dominant_frequency(body, rate, min_hz=100, max_hz=rate / 2 - 100), rms_dbfs(body)


# ---- registration, auto-answer, recording, hang-up by Cosmo ------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_auto_answer_records_hold_music_and_ends_when_cosmo_hangs_up(tmp_path: Path, transport: str) -> None:
    tone = write_tone_wav(tmp_path / "tone440.wav", 440, 3.0)
    heard = tmp_path / "heard.wav"
    async with cosmo_server(tmp_path / "cosmo") as server, \
            PhoneProcess(server, tmp_path, "--auto-answer", "--audio", "null", "--play", str(tone),
                         "--record", str(heard), "--no-console", transport=transport) as phone:
        await phone.expect(r"^sound: none, null device$")
        await phone.expect(r"^registered as 1001@cosmo\.local \(200 OK, expires in \d+ s\)$")
        (binding,) = await registrations(server, "1001")
        assert binding["source"].startswith(f"{transport}:127.0.0.1:"), binding
        assert binding["user_agent"].startswith("cosmo-phone/"), binding

        status, call = await server.api("POST", "/api/calls", {"to": "1001"})
        assert status == 201 and call["answered"], call
        await phone.expect(r"^call 1: INCOMING from cosmo ")
        await phone.expect(r"^call 1: answering automatically$")
        await phone.expect(r"^call 1: CONFIRMED from cosmo$")
        # One call at a time: a second one is refused as busy.
        status, second = await server.api("POST", "/api/calls", {"to": "1001"})
        assert status == 200 and not second["answered"], second
        await phone.expect(r"^call from cosmo refused: busy with another call \(486\)$")
        # Cosmo plays music on hold to the answered agent: let some of it arrive.
        await asyncio.sleep(4.0)

        status, _ = await server.api("POST", f"/api/calls/{call['id']}/hangup")
        assert status == 200
        await phone.expect(r"^call 1: DISCONNECTED from cosmo \(200 Normal call clearing\)$")
        await phone.expect(rf"^call 1: recorded to {re.escape(str(heard))}$")
        await wait_no_calls(server)

        # SIGTERM ends the phone in order: it unregisters first.
        assert phone.proc is not None
        phone.proc.send_signal(signal.SIGTERM)
        assert await phone.wait_exit() == 0, phone.stderr()
        assert "unregistered 1001@cosmo.local" in phone.lines
        assert await registrations(server, "1001") == []
    assert "Traceback" not in phone.stderr(), phone.stderr()
    assert [line for line in phone.lines if "INCOMING" in line] == [
        "call 1: INCOMING from cosmo (a to answer, h to reject)"]

    wav = read_wav(heard)
    samples = wav.mono()
    assert wav.seconds > 2.0, wav.seconds
    assert rms_dbfs(samples) > -40, rms_dbfs(samples)
    moh = read_wav(MOH)
    match = normalized_xcorr_peak(moh.mono(), samples[int(0.5 * wav.rate):], reference_rate=moh.rate,
                                  received_rate=wav.rate)
    # A G.711 round trip of music correlates far above unrelated audio (near 0).
    assert match.peak > 0.8, match
    assert match.noise_floor < 0.2, match


# ---- the console through stdin -----------------------------------------------------------------


async def test_console_calls_sends_dtmf_holds_resumes_and_hangs_up(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path / "cosmo") as server, \
            PhoneProcess(server, tmp_path, "--audio", "null") as phone:
        await phone.expect(r"^registered as 1001@cosmo\.local ")
        await phone.send("?")
        await phone.expect(r"^  q            quit$")
        await phone.send("a")
        await phone.expect(r"^! no ringing call to answer$")
        await phone.send("x")
        await phone.expect(r"^! unknown key 'x' \(\? for help\)$")

        await phone.send(f"c {NUMBER}")
        await phone.expect(rf"^call 1: CALLING {re.escape(NUMBER)}$")
        await phone.expect(rf"^call 1: CONFIRMED to {re.escape(NUMBER)}$")
        await phone.send("s")
        await phone.expect(r"^status: 1001@cosmo\.local registered$")
        await phone.expect(rf"^status: call 1 CONFIRMED to {re.escape(NUMBER)}$")
        await phone.send("H")
        await phone.expect(r"^call 1: on hold \(H to resume\)$")
        await phone.send("H")
        await phone.expect(r"^call 1: resumed$")
        await phone.send("123#")
        await phone.expect(r"^call 1: sent DTMF 123#$")
        # pjsua sends queued digits one after the other: hang up once Cosmo heard them all.
        await wait_for_log(server, lambda log: len(re.findall(r": DTMF [0-9#*]$", log, re.MULTILINE)) >= 4)
        await phone.send("h")
        await phone.expect(rf"^call 1: DISCONNECTED to {re.escape(NUMBER)} \(200 [^)]+\)$")
        await wait_no_calls(server)
        await phone.send("q")
        assert await phone.wait_exit() == 0, phone.stderr()
        assert "unregistered 1001@cosmo.local" in phone.lines
    assert "Traceback" not in phone.stderr(), phone.stderr()
    assert all(not re.match(r"^\d\d:\d\d:\d\d", line) for line in phone.lines), phone.lines  # no pjsip log
    (row,) = read_cdrs(server)  # the server has stopped: the record is written
    assert row["callee"] == NUMBER
    assert json.loads(row["extra"])["dtmf"] == "123#", row["extra"]


async def test_end_of_input_quits_and_a_wrong_password_is_refused(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path / "cosmo") as server:
        async with PhoneProcess(server, tmp_path / "ok", "--audio", "null") as phone:
            await phone.expect(r"^registered as 1001@cosmo\.local ")
            assert phone.proc is not None and phone.proc.stdin is not None
            phone.proc.stdin.close()  # Ctrl-D
            assert await phone.wait_exit() == 0, phone.stderr()
            assert await registrations(server, "1001") == []

        wrong = PhoneProcess(server, tmp_path / "wrong", "--audio", "null", ext="1002")
        wrong.argv[wrong.argv.index("secret1002")] = "not-the-password"
        async with wrong:
            assert await wrong.wait_exit() == 1
            assert re.search(r"^registration of 1002@cosmo\.local failed: 40[13] ", "\n".join(wrong.lines), re.MULTILINE), \
                wrong.lines
            assert re.search(r"^cosmo phone: registration of 1002@cosmo\.local at sip:127\.0\.0\.1:\d+ failed: "
                             r"40[13] ", wrong.stderr(), re.MULTILINE), wrong.stderr()


# ---- sound through the pyaudio bridge -----------------------------------------------------------


async def test_pyaudio_bridge_carries_both_directions_between_two_agents(tmp_path: Path) -> None:
    """1001 talks into a pretend sound card (a 440 Hz microphone, 16 kHz only); 1002
    answers by itself and plays a 1000 Hz tone.  Each hears the other through Cosmo."""
    speaker = tmp_path / "speaker-1001.pcm"
    tone = write_tone_wav(tmp_path / "tone1000.wav", 1000, 3.0)
    heard_by_1002 = tmp_path / "heard-1002.wav"
    card = {"PYTHONPATH": f"{FAKE_PYAUDIO}{os.pathsep}{REPO}", "FAKE_PYAUDIO_SPEAKER": str(speaker),
            "FAKE_PYAUDIO_TONE_HZ": "440", "FAKE_PYAUDIO_RATE": "16000"}
    async with cosmo_server(tmp_path / "cosmo", trunk_elsewhere) as server, \
            PhoneProcess(server, tmp_path, "--auto-answer", "--audio", "null", "--play", str(tone),
                         "--record", str(heard_by_1002), "--no-console", ext="1002") as callee, \
            PhoneProcess(server, tmp_path, "--audio", "pyaudio", env=card) as caller:
        await caller.expect(r"^sound: pyaudio, speaker fake speaker, microphone fake microphone, 16000 Hz$")
        await callee.expect(r"^registered as 1002@cosmo\.local ")
        await caller.expect(r"^registered as 1001@cosmo\.local ")
        await caller.send("c 1002")
        await callee.expect(r"^call 1: INCOMING from 1001 ")
        await caller.expect(r"^call 1: CONFIRMED to 1002$")
        await callee.expect(r"^call 1: CONFIRMED from 1001$")
        await asyncio.sleep(3.0)
        await caller.send("h")
        await caller.expect(r"^call 1: DISCONNECTED to 1002 ")
        await callee.expect(rf"^call 1: recorded to {re.escape(str(heard_by_1002))}$")
        await caller.send("q")
        assert await caller.wait_exit() == 0, caller.stderr()
    assert "Traceback" not in caller.stderr() + callee.stderr(), caller.stderr() + callee.stderr()

    wav = read_wav(heard_by_1002)
    frequency, level = tone_of(wav.mono(), wav.rate)
    assert abs(frequency - 440) < 10 and level > -40, (frequency, level)
    # Gaps or clicks from the microphone buffer would spread energy away from the tone.
    assert band_energy_ratio(wav.mono()[wav.rate // 2:], wav.rate, 440) > 0.9

    pcm = np.frombuffer(speaker.read_bytes(), dtype="<i2").astype(np.float64) / 32768.0
    # The tone lies between the silence before the answer and after the hang-up.
    blocks = pcm[: len(pcm) // 320 * 320].reshape(-1, 320)
    loud = np.flatnonzero(np.sqrt((blocks * blocks).mean(axis=1)) > 0.01)
    assert len(loud) > 50, len(loud)  # a second of it at least
    played = blocks[loud[0]: loud[-1] + 1].ravel()
    frequency, level = tone_of(played, 16000, skip_s=0.2)
    assert abs(frequency - 1000) < 10 and level > -40, (frequency, level)
    assert band_energy_ratio(played, 16000, 1000) > 0.9


async def test_auto_sound_without_a_device_uses_the_null_device(tmp_path: Path) -> None:
    card = {"PYTHONPATH": f"{FAKE_PYAUDIO}{os.pathsep}{REPO}", "FAKE_PYAUDIO_DEVICES": "0"}
    async with cosmo_server(tmp_path / "cosmo") as server, PhoneProcess(server, tmp_path, env=card) as phone:
        await phone.expect(r"^sound: none, null device \(no sound output device\)$")
        await phone.expect(r"^registered as 1001@cosmo\.local ")
        await phone.send("q")
        assert await phone.wait_exit() == 0, phone.stderr()


# ---- without the extra ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hidden", "audio", "message"),
    [
        ("pjsua2", "null", (
            "cosmo phone: pjsua2 is missing, the softphone needs the 'phone' extra; install it with: "
            ".venv/bin/pip install '.[phone]' (pyaudio builds against Debian's portaudio19-dev)")),
        ("pyaudio", "auto", (
            "cosmo phone: pyaudio is missing, sound needs the 'phone' extra; install it with: "
            ".venv/bin/pip install '.[phone]' (pyaudio builds against Debian's portaudio19-dev); "
            "or run without sound: --audio null")),
    ],
)
async def test_a_missing_extra_is_one_line_and_exit_2(tmp_path: Path, hidden: str, audio: str, message: str) -> None:
    # A package of the hidden name that fails to import stands in for a missing one.
    shadow = tmp_path / "shadow" / hidden
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError('no {hidden} here')\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cosmo.phone", "--ext", "1001", "--password", "secret1001", "--audio", audio,
        cwd=REPO, env={**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO}"},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), WAIT_S)
    finally:
        if proc.returncode is None:
            kill_pid(proc.pid)
            await proc.wait()
    assert proc.returncode == 2, err
    assert out == b""
    assert err.decode().splitlines() == [message]
