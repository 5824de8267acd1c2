"""baresip as a test peer, driven through its ctrl_tcp module.

Debian's baresip 1.0.0 ships ``ctrl_tcp``: JSON objects framed as netstrings
(``<len>:<json>,``) on a TCP socket.  A command is
``{"command": "dial", "params": "sip:...", "token": "7"}``, its response
``{"response": true, "ok": true, "data": "...", "token": "7"}``; events are
``{"event": true, "type": "CALL_INCOMING", "class": "call", "accountaor":
..., "direction": ..., "peeruri": ..., "id": <SIP Call-ID>, "param": ...}``.

Event types baresip 1.0.0 sends include REGISTER_OK, REGISTER_FAIL,
CALL_INCOMING, CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED (param: the
reason), CALL_RTPESTAB, CALL_RTCP (with rtcp_stats), CALL_LOCAL_SDP and
CALL_REMOTE_SDP (param: offer or answer), CALL_DTMF_START (param: the
digit), CALL_DTMF_END, SHUTDOWN and EXIT.  The events of an outgoing call
carry its Call-ID from the first response on.

Audio: the source is ``ausine`` (a tone; in 1.0.0 it runs only at 48 kHz
stereo, which baresip resamples for the codec) or ``aufile`` (a WAV whose
rate must equal the configured source rate).  The player is ``aubridge``
with no matching source, which discards; what the phone hears is kept by
the ``sndfile`` filter, one ``dump-<time>-dec.wav`` (received) and one
``-enc.wav`` (sent) per call in :attr:`Baresip.record_dir`.  The name has
a one-second resolution (a second call within the same second overwrites
the first), the WAV header is final once the call has ended, and the
files go with a temporary workdir at :meth:`Baresip.close`: pass
``workdir`` to keep them.

RTP sockets of baresip 1.0.0 bind the wildcard address (SIP and ctrl_tcp
bind 127.0.0.1); the SDP names 127.0.0.1, so the traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.audio import read_wav
from tests.peers.common import (
    LOOPBACK,
    EventQueue,
    PeerError,
    PeerEvent,
    _is_free,
    free_port,
    free_port_block,
    stop_process,
)

log = logging.getLogger(__name__)

BARESIP = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
_READY_LINE = b"baresip is ready."


class Baresip:
    """One baresip user agent with one account, bound to 127.0.0.1.

    Parameters:
        name: user part of the account when ``aor`` is not given.
        aor: address of record, e.g. ``"sip:1002@127.0.0.1:5060"``; a
            ``;transport=tcp`` parameter makes baresip register over TCP.
            Default ``sip:<name>@127.0.0.1`` (direct calls only).
        password: digest password (``auth_pass``).
        regint: registration interval in seconds; 0 means no REGISTER.
            Defaults to 60 when a password is given, else 0.
        outbound: outbound proxy URI for all requests of the account.
        codecs: audio codecs offered, e.g. ("PCMU",) or ("PCMA",).
        tone_hz: frequency of the sine sent into calls (``ausine``).
        source_wav: WAV sent into calls instead of the tone (``aufile``).
        answermode: "manual" (answer with :meth:`answer`), "auto" or "early".
        dtmfmode: "rtpevent" (RFC 4733) or "info" (SIP INFO).
        sip_port: UDP and TCP port for SIP; 0 picks a free one.
        rtp_ports: RTP port range.
        max_lifetime: seconds after which baresip quits by itself (``-t``).
        workdir: directory for config, log and recordings; temporary by default.
    """

    def __init__(
        self,
        *,
        name: str = "baresip",
        aor: str | None = None,
        password: str | None = None,
        regint: int | None = None,
        outbound: str | None = None,
        codecs: Sequence[str] = ("PCMU", "PCMA"),
        tone_hz: int = 1000,
        source_wav: str | os.PathLike[str] | None = None,
        answermode: str = "manual",
        dtmfmode: str = "rtpevent",
        sip_port: int = 0,
        rtp_ports: tuple[int, int] = (20000, 32000),
        max_lifetime: int = 120,
        workdir: str | os.PathLike[str] | None = None,
        command_timeout: float = 5.0,
    ) -> None:
        if answermode not in ("manual", "auto", "early"):
            raise ValueError(f"answermode must be manual, auto or early, not {answermode!r}")
        if dtmfmode not in ("rtpevent", "info"):
            raise ValueError(f"dtmfmode must be rtpevent or info, not {dtmfmode!r}")
        self.name = name
        self.aor = aor or f"sip:{name}@{LOOPBACK}"
        self.password = password
        self.regint = regint if regint is not None else (60 if password else 0)
        self.outbound = outbound
        self.codecs = tuple(codecs)
        self.tone_hz = tone_hz
        self.source_wav = Path(source_wav) if source_wav is not None else None
        self.answermode = answermode
        self.dtmfmode = dtmfmode
        self.sip_port = sip_port
        self.ctrl_port = 0
        self.rtp_ports = rtp_ports
        self.max_lifetime = max_lifetime
        self.command_timeout = command_timeout
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        self.events = EventQueue(name)
        self.log_path: Path | None = None
        self.last_log = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout_task: asyncio.Task[None] | None = None
        self._ctrl_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tokens = itertools.count(1)

    # -- configuration -------------------------------------------------
    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise PeerError(f"{self.name}: not started")
        return self._workdir

    @property
    def record_dir(self) -> Path:
        return self.workdir / "recordings"

    def uri(self, transport: str = "udp") -> str:
        """SIP URI that reaches this baresip directly, without a registrar."""
        user = self.aor.split(":", 1)[1].split("@", 1)[0]
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"sip:{user}@{LOOPBACK}:{self.sip_port}{suffix}"

    def account_line(self) -> str:
        params = [f"answermode={self.answermode}", f"dtmfmode={self.dtmfmode}", f"regint={self.regint}"]
        params.append("audio_codecs=" + ",".join(c.lower() for c in self.codecs))
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.outbound is not None:
            params.append(f'outbound="{self.outbound}"')
        return f"<{self.aor}>;" + ";".join(params)

    def config_text(self) -> str:
        if self.source_wav is not None:
            wav = read_wav(self.source_wav)
            source = f"aufile,{self.source_wav}"
            src_rate, src_channels = wav.rate, wav.channels
        else:
            source = f"ausine,{self.tone_hz}"
            # ausine of baresip 1.0.0 refuses anything but 48 kHz stereo.
            src_rate, src_channels = 48000, 2
        lines = [
            ("poll_method", "epoll"),
            ("sip_listen", f"{LOOPBACK}:{self.sip_port}"),
            # Without it baresip advertises the first non-loopback address
            # in SDP; "lo" is refused on some hosts, the address is not.
            ("net_interface", LOOPBACK),
            ("audio_player", "aubridge,discard"),
            ("audio_alert", "aubridge,discard"),
            ("audio_source", source),
            ("ausrc_srate", str(src_rate)),
            ("ausrc_channels", str(src_channels)),
            ("auplay_srate", "8000"),
            ("auplay_channels", "1"),
            ("rtp_ports", f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"),
            # Host names are never looked up in tests; should one be, the
            # query stays on loopback.
            ("dns_server", f"{LOOPBACK}:53"),
            ("module_path", MODULE_PATH),
            ("module", "g711.so"),
            ("module", "ausine.so"),
            ("module", "aufile.so"),
            ("module", "aubridge.so"),
            ("module", "sndfile.so"),
            ("module_app", "account.so"),
            ("module_app", "menu.so"),
            ("module_app", "ctrl_tcp.so"),
            ("ctrl_tcp_listen", f"{LOOPBACK}:{self.ctrl_port}"),
            ("snd_path", str(self.record_dir)),
        ]
        return "".join(f"{key:<20}{value}\n" for key, value in lines)

    # -- life cycle ----------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, timeout: float = 10.0) -> None:
        """Write the config, start baresip and connect to ctrl_tcp."""
        if self._proc is not None:
            return
        if shutil.which(BARESIP) is None:
            raise PeerError("baresip is not installed")
        if self._workdir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix=f"baresip-{self.name}-")
            self._workdir = Path(self._own_tmp.name)
        self._workdir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(exist_ok=True)
        if self.sip_port == 0:
            self.sip_port = _sip_ports()
        self.ctrl_port = free_port("tcp")
        (self._workdir / "config").write_text(self.config_text())
        (self._workdir / "accounts").write_text(self.account_line() + "\n")
        (self._workdir / "contacts").write_text("")
        self.log_path = self._workdir / "baresip.log"
        self._proc = await asyncio.create_subprocess_exec(
            BARESIP,
            "-f",
            str(self._workdir),
            "-t",
            str(self.max_lifetime),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(self._workdir),
        )
        self._stdout_task = asyncio.create_task(self._read_stdout(), name=f"baresip-{self.name}-stdout")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            reader, self._writer = await asyncio.open_connection(LOOPBACK, self.ctrl_port)
        except (TimeoutError, OSError) as exc:
            tail = self.log_tail()
            await self.close()
            raise PeerError(f"{self.name}: baresip did not start ({exc!r}); log tail:\n{tail}") from None
        self._ctrl_task = asyncio.create_task(self._read_ctrl(reader), name=f"baresip-{self.name}-ctrl")
        log.debug("%s: baresip on %s:%d (pid %d)", self.name, LOOPBACK, self.sip_port, self._proc.pid)

    async def close(self) -> None:
        """Quit baresip (ctrl "quit", then SIGTERM/SIGKILL to its PID)."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and self._writer is not None:
            with contextlib.suppress(PeerError, ConnectionError):
                await self.command("quit", timeout=2.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 3.0)
        await stop_process(proc, grace=2.0, sig=signal.SIGTERM)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None
        for task in (self._ctrl_task, self._stdout_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._fail_pending("baresip closed")
        self.events.close("baresip closed")
        self._proc = None
        self.last_log = self.log_tail(200)
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None
            self._workdir = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text[-lines:] if line.strip())

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        assert self.log_path is not None
        with open(self.log_path, "wb") as out:
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    break
                # The call status line repeats every second; keep it out.
                if line.startswith(b"[0:") or line.strip() == b"":
                    continue
                out.write(line)
                out.flush()
                if _READY_LINE in line:
                    self._ready.set()
        code = await self._proc.wait()
        reason = f"baresip exited with {code}"
        self._fail_pending(reason)
        self.events.close(reason)

    async def _read_ctrl(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                length = await reader.readuntil(b":")
                body = await reader.readexactly(int(length[:-1]) + 1)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                break
            message = json.loads(body[:-1])
            if message.get("event"):
                kind = str(message.get("type", "UNKNOWN"))
                log.debug("%s: event %s %s", self.name, kind, message)
                self.events.put(kind, message)
            elif message.get("response"):
                future = self._pending.pop(str(message.get("token")), None)
                if future is not None and not future.done():
                    future.set_result(message)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerError(f"{self.name}: {reason}"))
        self._pending.clear()

    # -- commands ------------------------------------------------------
    async def command(self, command: str, params: str | None = None, *, timeout: float | None = None) -> str:
        """Run a baresip long command (as listed by "help"); returns its text.

        Raises :class:`PeerError` when baresip answers ok=false.
        """
        if self._writer is None:
            raise PeerError(f"{self.name}: not connected")
        token = str(next(self._tokens))
        request: dict[str, Any] = {"command": command, "token": token}
        if params is not None:
            request["params"] = params
        body = json.dumps(request).encode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        wait = timeout if timeout is not None else self.command_timeout
        try:
            reply = await asyncio.wait_for(future, wait)
        except TimeoutError:
            self._pending.pop(token, None)
            raise PeerError(f"{self.name}: no reply to {command} within {wait} s") from None
        data = str(reply.get("data", ""))
        if not reply.get("ok"):
            raise PeerError(f"{self.name}: {command} failed: {data.strip()}")
        return data

    async def dial(self, uri: str) -> None:
        """Call ``uri``; follow with :meth:`wait_established`."""
        await self.command("dial", uri)

    async def answer(self) -> None:
        """Accept the current incoming call."""
        await self.command("accept")

    async def hangup(self) -> None:
        """Hang up (or cancel, or reject) the current call."""
        await self.command("hangup")

    async def send_dtmf(self, digits: str) -> None:
        """Send digits in the current call, per the account's dtmfmode."""
        for digit in digits:
            await self.command("sndcode", digit)

    async def list_calls(self) -> str:
        return await self.command("listcalls")

    # -- events --------------------------------------------------------
    async def wait_event(self, kind: str, timeout: float = 5.0, **match: Any) -> PeerEvent:
        """The next event of type ``kind`` (e.g. "CALL_CLOSED") matching fields."""
        return await self.events.wait(kind, timeout, match)

    async def wait_registered(self, timeout: float = 5.0) -> PeerEvent:
        """REGISTER_OK; a REGISTER_FAIL meanwhile raises :class:`PeerError`."""
        return await self.events.wait("REGISTER_OK", timeout, fail_on=[("REGISTER_FAIL", {})])

    async def wait_incoming_call(self, timeout: float = 5.0) -> PeerEvent:
        return await self.events.wait("CALL_INCOMING", timeout)

    async def wait_established(self, timeout: float = 5.0, *, call_id: str | None = None) -> PeerEvent:
        """CALL_ESTABLISHED, of the SIP ``call_id`` when given.

        A CALL_CLOSED of that call (of any call, when ``call_id`` is None)
        during the wait raises :class:`PeerError`.
        """
        match = {"id": call_id} if call_id is not None else {}
        return await self.events.wait(
            "CALL_ESTABLISHED", timeout, match, fail_on=[("CALL_CLOSED", match)], fail_pending=call_id is not None
        )

    async def wait_closed(self, timeout: float = 5.0, *, call_id: str | None = None) -> PeerEvent:
        """CALL_CLOSED (its ``param`` is the reason), of ``call_id`` when given."""
        match = {"id": call_id} if call_id is not None else {}
        return await self.events.wait("CALL_CLOSED", timeout, match)

    # -- recordings ----------------------------------------------------
    def recordings(self, direction: str = "dec") -> list[Path]:
        """Per-call WAV files, oldest first: "dec" what was received,
        "enc" what was sent."""
        if direction not in ("dec", "enc"):
            raise ValueError("direction must be dec or enc")
        return sorted(self.record_dir.glob(f"dump-*-{direction}.wav"), key=lambda p: p.stat().st_mtime_ns)

    def received_audio(self) -> Path:
        """The recording of what the last call received."""
        found = self.recordings("dec")
        if not found:
            raise PeerError(f"{self.name}: no recording in {self.record_dir}")
        return found[-1]


def _sip_ports() -> int:
    """A port P free for UDP and TCP with P+1 free for TCP: baresip listens for SIP/TLS on P+1."""
    for _ in range(50):
        port = free_port_block(2, even=False)
        if _is_free(port, socket.SOCK_STREAM) and _is_free(port + 1, socket.SOCK_STREAM):
            return port
    raise PeerError("no free SIP port pair for baresip on 127.0.0.1")
