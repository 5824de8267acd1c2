"""A SIP phone for tests: pjsua2 in a child process, driven from asyncio.

``PjPhone`` starts :mod:`tests.peers.pjphone_agent` with the current
interpreter, sends it JSON commands and collects its events.  pjsua2 is
never imported into the test process (its Endpoint is a process singleton
with threads of its own).

Example::

    async with PjPhone(name="alice") as phone:
        await phone.register("1001", "secret1001")
        call = await phone.call("sip:+15550100@127.0.0.1:5060")
        await phone.wait_call_state("CONFIRMED", call=call)
        await phone.hangup(call=call)

Events (``wait_event`` kinds and their fields):

* ``reg_state``: account, code, reason, expiration, active
* ``incoming_call``: call, account, call_id, remote_uri, remote_contact,
  local_uri, msg (the whole INVITE as text)
* ``call_state``: call, state (NULL, CALLING, INCOMING, EARLY, CONNECTING,
  CONFIRMED, DISCONNECTED), code, reason, call_id, remote_uri,
  remote_contact
* ``media_state``: call, index, status (NONE, ACTIVE, LOCAL_HOLD,
  REMOTE_HOLD, ERROR), dir
* ``dtmf``: call, digit, method (rfc2833 or info), duration
* ``play_done``: call (a WAV played without loop reached its end)
* ``record_closed``: call, path (written when the call ended)
* ``ready`` (udp_port, tcp_port, version, pid), ``failed`` (error),
  ``expired`` (max_lifetime reached), ``exited`` (code): the process itself
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.peers.common import (
    LOOPBACK,
    EventQueue,
    PeerError,
    PeerEvent,
    kill_pid,
    stop_process,
)

log = logging.getLogger(__name__)

AGENT_PATH = Path(__file__).with_name("pjphone_agent.py")

CALL_STATES = ("NULL", "CALLING", "INCOMING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED")


class PjPhone:
    """A pjsua2 user agent in its own process, bound to 127.0.0.1.

    Parameters:
        name: user part of the phone's own URI and prefix of its log file.
        sip_port: UDP port for SIP; 0 lets the kernel choose.
        tcp_port: TCP port for SIP; 0 lets the kernel choose.
        rtp_port: first RTP port tried; 0 lets the kernel choose.
        codecs: encodings offered, most preferred first ("PCMU", "PCMA").
        log_level: pjsip log level written to ``log_path`` (4 shows SIP).
        max_lifetime: seconds after which the phone process ends by itself.
        workdir: directory for the log; a fresh temporary one by default.
    """

    def __init__(
        self,
        *,
        name: str = "pjphone",
        sip_port: int = 0,
        tcp_port: int = 0,
        rtp_port: int = 0,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        log_level: int = 4,
        max_lifetime: float = 120.0,
        workdir: str | os.PathLike[str] | None = None,
        command_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self._args = [
            "--name",
            name,
            "--bind",
            LOOPBACK,
            "--sip-port",
            str(sip_port),
            "--tcp-port",
            str(tcp_port),
            "--rtp-port",
            str(rtp_port),
            "--codecs",
            ",".join(codecs),
            "--log-level",
            str(log_level),
            "--max-lifetime",
            str(max_lifetime),
        ]
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        self.command_timeout = command_timeout
        self.events = EventQueue(name)
        self.udp_port = 0
        self.tcp_port = 0
        self.version = ""
        self.log_path: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._log_file: Any = None
        self.last_log = ""

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
        """Start the phone process and wait until its transports are bound."""
        if self._proc is not None:
            return
        if self._workdir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix=f"pjphone-{self.name}-")
            self._workdir = Path(self._own_tmp.name)
        self._workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self._workdir / f"{self.name}.log"
        self._log_file = open(self.log_path, "wb")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(AGENT_PATH),
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log_file,
            cwd=str(self._workdir),
        )
        self._reader = asyncio.create_task(self._read_loop(), name=f"pjphone-{self.name}-reader")
        try:
            ready = await self.events.wait("ready", timeout, fail_on=[("failed", {})], fail_pending=True)
        except PeerError as exc:
            tail = self.log_tail()
            await self.close()
            raise PeerError(f"{self.name}: phone did not start ({exc}); log tail:\n{tail}") from None
        self.udp_port = int(ready["udp_port"])
        self.tcp_port = int(ready["tcp_port"])
        self.version = str(ready["version"])
        log.debug(
            "%s: pjsua2 %s on udp %d tcp %d (pid %d)",
            self.name,
            self.version,
            self.udp_port,
            self.tcp_port,
            self._proc.pid,
        )

    async def close(self) -> None:
        """Hang up, unregister and end the phone process (by its PID)."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(b'{"id": 0, "cmd": "quit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                await stop_process(proc, grace=1.0, sig=signal.SIGKILL)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_pending("phone closed")
        self.events.close("phone closed")
        if self._log_file is not None:
            self._log_file.close()
        self._proc = None
        if self._own_tmp is not None:
            self._keep_log_copy()
            self._own_tmp.cleanup()
            self._own_tmp = None

    def kill(self) -> None:
        """End the phone process at once (SIGKILL to its PID), as a crash would."""
        if self._proc is not None:
            kill_pid(self._proc.pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def uri(self, transport: str = "udp", user: str | None = None) -> str:
        """SIP URI that reaches this phone directly, without a registrar."""
        who = user or self.name
        if transport == "tcp":
            return f"sip:{who}@{LOOPBACK}:{self.tcp_port};transport=tcp"
        return f"sip:{who}@{LOOPBACK}:{self.udp_port}"

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _keep_log_copy(self) -> None:
        # The temporary directory goes away; the last log lines stay
        # reachable in self.last_log for a failing test's report.
        self.last_log = self.log_tail(200)

    # -- protocol ------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: stray output %r", self.name, line[:200])
                    continue
                if "event" in message:
                    kind = message.pop("event")
                    log.debug("%s: event %s %s", self.name, kind, message)
                    self.events.put(kind, message)
                else:
                    future = self._pending.pop(message.get("id", -1), None)
                    if future is not None and not future.done():
                        future.set_result(message)
        finally:
            code = await self._proc.wait()
            reason = f"phone process exited with {code}"
            self._fail_pending(reason)
            self.events.close(reason)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerError(f"{self.name}: {reason}"))
        self._pending.clear()

    async def command(self, cmd: str, **args: Any) -> Any:
        """Run one agent command and return its result.

        Raises :class:`PeerError` with the agent's message when it refuses.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise PeerError(f"{self.name}: phone is not running")
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        proc.stdin.write((json.dumps({"id": rid, "cmd": cmd, "args": args}) + "\n").encode())
        await proc.stdin.drain()
        try:
            reply = await asyncio.wait_for(future, self.command_timeout)
        except TimeoutError:
            self._pending.pop(rid, None)
            raise PeerError(f"{self.name}: no reply to {cmd} within {self.command_timeout} s") from None
        if not reply.get("ok"):
            raise PeerError(f"{self.name}: {cmd} failed: {reply.get('error')}")
        return reply.get("result")

    # -- events --------------------------------------------------------
    async def wait_event(self, kind: str, timeout: float = 5.0, **match: Any) -> PeerEvent:
        """The next event of ``kind`` whose fields equal ``match``.

        Example: ``await phone.wait_event("call_state", state="DISCONNECTED")``.
        Raises :class:`PeerTimeout` when none comes within ``timeout`` s.
        """
        return await self.events.wait(kind, timeout, match)

    async def wait_call_state(self, state: str, timeout: float = 5.0, *, call: int | None = None) -> PeerEvent:
        """Wait for ``state`` of ``call`` (any call when None).

        A DISCONNECTED of that call meanwhile raises :class:`PeerError`;
        call handles are never reused, so with ``call`` given one that is
        already pending counts too.
        """
        if state not in CALL_STATES:
            raise ValueError(f"state must be one of {CALL_STATES}")
        match: dict[str, Any] = {"state": state}
        if call is not None:
            match["call"] = call
        if state == "DISCONNECTED":
            return await self.events.wait("call_state", timeout, match)
        fail_on = [("call_state", {**match, "state": "DISCONNECTED"})]
        return await self.events.wait("call_state", timeout, match, fail_on=fail_on, fail_pending=call is not None)

    async def wait_incoming_call(self, timeout: float = 5.0) -> PeerEvent:
        return await self.events.wait("incoming_call", timeout)

    async def wait_dtmf(self, count: int, timeout: float = 5.0, *, call: int | None = None) -> str:
        """The next ``count`` received digits, as a string."""
        digits = []
        match = {"call": call} if call is not None else {}
        for _ in range(count):
            event = await self.events.wait("dtmf", timeout, match)
            digits.append(str(event["digit"]))
        return "".join(digits)

    # -- registration --------------------------------------------------
    async def register(
        self,
        ext: str,
        password: str,
        registrar: str = "sip:127.0.0.1:5060",
        *,
        transport: str = "udp",
        expires: int = 300,
        wait: bool = True,
        timeout: float = 5.0,
    ) -> PeerEvent | None:
        """Register ``ext`` with digest ``password`` at ``registrar``.

        With ``wait`` returns the ``reg_state`` event of a 2xx and raises
        :class:`PeerError` on any other final code (401, 403, 408...).
        """
        await self.command(
            "register", user=ext, password=password, registrar=registrar, transport=transport, expires=expires
        )
        if not wait:
            return None
        event = await self.events.wait("reg_state", timeout, {"account": ext})
        if not 200 <= int(event["code"]) < 300:
            raise PeerError(f"{self.name}: registration of {ext} failed: {event['code']} {event['reason']}")
        return event

    async def unregister(
        self, *, account: str | None = None, wait: bool = True, timeout: float = 5.0
    ) -> PeerEvent | None:
        """Remove the binding (REGISTER with Expires: 0)."""
        name = await self.command("unregister", account=account)
        if not wait:
            return None
        return await self.events.wait("reg_state", timeout, {"account": name})

    # -- calls ---------------------------------------------------------
    async def call(self, uri: str, *, account: str | None = None, headers: dict[str, str] | None = None) -> int:
        """Send an INVITE to ``uri``; returns the call's handle.

        Handles number the calls of this phone from 1 and are never reused;
        every call event carries one as ``call``.

        ``account`` defaults to the last registered one, else the phone's
        own local account (direct IP calls).
        """
        return int(await self.command("call", uri=uri, account=account, headers=headers or {}))

    async def answer(self, code: int = 200, *, call: int | None = None) -> int:
        """Respond to an incoming INVITE with ``code`` (180, 183, 200, 486...)."""
        return int(await self.command("answer", code=code, call=call))

    async def hangup(self, code: int = 0, *, call: int | None = None) -> int:
        """BYE, CANCEL or reject (``code``, e.g. 486 or 603) as the state needs."""
        return int(await self.command("hangup", code=code, call=call))

    async def hold(self, *, call: int | None = None) -> int:
        """Put the call on hold (re-INVITE with a=sendonly)."""
        return int(await self.command("hold", call=call))

    async def reinvite(self, *, unhold: bool = True, call: int | None = None) -> int:
        """Send a re-INVITE; with ``unhold`` it resumes a held call."""
        return int(await self.command("reinvite", unhold=unhold, call=call))

    async def dial_dtmf(
        self, digits: str, method: str = "rfc2833", *, duration_ms: int = 160, call: int | None = None
    ) -> int:
        """Send ``digits`` as RFC 4733 events ("rfc2833") or SIP INFO ("info")."""
        return int(await self.command("dial_dtmf", digits=digits, method=method, duration_ms=duration_ms, call=call))

    async def calls(self) -> list[dict[str, Any]]:
        return list(await self.command("calls"))

    # -- media ---------------------------------------------------------
    async def play_wav(self, path: str | os.PathLike[str], *, loop: bool = True, call: int | None = None) -> int:
        """Send a WAV file into the call (from when its audio is active)."""
        return int(await self.command("play_wav", path=str(path), loop=loop, call=call))

    async def play_tone(self, freq_hz: int, *, freq2_hz: int = 0, volume: int = 0, call: int | None = None) -> int:
        """Send a steady tone (one or two frequencies) into the call."""
        return int(await self.command("play_tone", freq_hz=freq_hz, freq2_hz=freq2_hz, volume=volume, call=call))

    async def stop_playing(self, *, call: int | None = None) -> int:
        return int(await self.command("stop_playing", call=call))

    async def record(self, path: str | os.PathLike[str], *, call: int | None = None) -> int:
        """Record what the phone receives in the call to a WAV file.

        The file is complete after :meth:`stop_record` or once the call
        ended (``record_closed`` event).
        """
        return int(await self.command("record", path=str(path), call=call))

    async def stop_record(self, *, call: int | None = None) -> list[str]:
        """Close the recordings (of ``call``, or of all calls)."""
        return list(await self.command("stop_record", call=call))

    async def set_codecs(self, *names: str) -> list[str]:
        """Offer only these encodings, in this order (e.g. "PCMA")."""
        return list(await self.command("set_codecs", names=list(names)))
