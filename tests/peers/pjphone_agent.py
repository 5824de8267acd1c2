"""pjsua2 phone process driven by line-delimited JSON on stdin/stdout.

Theory of operation
-------------------
pjsua2's ``Endpoint`` is a process singleton that owns its own threads and
global state, so a test never imports it: :class:`tests.peers.pjphone.PjPhone`
starts this module as a child process with the same interpreter and talks to
it over pipes.

The endpoint runs with no worker threads (``uaConfig.threadCnt = 0`` and
``medConfig.threadCnt = 0``).  The main thread polls ``libHandleEvents`` and
in between runs the commands that a reader thread queues from stdin, so every
pjsua2 call and every callback happens on the main thread.  Only the null
sound device's clock thread runs besides, inside C, and never enters Python.

pjsip prints its log on file descriptor 1; the protocol therefore keeps a
private duplicate of the original stdout and points descriptor 1 at stderr.

Protocol (one JSON object per line):

* request  ``{"id": 7, "cmd": "call", "args": {"uri": "sip:..."}}``
* reply    ``{"id": 7, "ok": true, "result": ...}`` or
           ``{"id": 7, "ok": false, "error": "text"}``
* event    ``{"event": "call_state", "call": 0, "state": "CONFIRMED", ...}``

The first line is the ``ready`` event with the bound SIP ports.  End of stdin
is taken as ``quit``, so the process ends with the test process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pjsua2 as pj  # type: ignore[import-untyped]

_INV_STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}

_MEDIA_STATUS_NAMES = {
    pj.PJSUA_CALL_MEDIA_NONE: "NONE",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "ACTIVE",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "LOCAL_HOLD",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "REMOTE_HOLD",
    pj.PJSUA_CALL_MEDIA_ERROR: "ERROR",
}

_DTMF_METHODS = {
    "rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}
_DTMF_METHOD_NAMES = {value: name for name, value in _DTMF_METHODS.items()}

_TRANSPORT_TYPES = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}


class CommandError(Exception):
    """A command that cannot be carried out; its text goes back in the reply."""


class _Account(pj.Account):
    def __init__(self, agent: Agent, name: str) -> None:
        super().__init__()
        self.agent = agent
        self.name = name
        self.unregistering = False

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.unregistering = False
        self.agent.emit(
            "reg_state",
            account=self.name,
            code=prm.code,
            reason=prm.reason,
            expiration=prm.expiration,
            active=self.getInfo().regIsActive,
        )

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = _Call(self.agent, self, prm.callId)
        self.agent.calls[call.handle] = call
        info = call.getInfo()
        self.agent.emit(
            "incoming_call",
            ts=time.time(),  # wall clock: compared with other processes' (the desktop's screen-pop)
            call=call.handle,
            account=self.name,
            call_id=info.callIdString,
            remote_uri=info.remoteUri,
            remote_contact=info.remoteContact,
            local_uri=info.localUri,
            msg=prm.rdata.wholeMsg,
        )


class _CallMedia:
    """What a call plays and records; connected whenever its audio is active."""

    def __init__(self) -> None:
        self.sources: list[Any] = []
        self.recorders: list[tuple[str, Any]] = []
        # [player, size in samples, last position seen]
        self.players_to_watch: list[list[Any]] = []


class _Call(pj.Call):
    """A call, known to the client by a handle that is never reused.

    pjsua reuses its call ids as soon as a call ends, which would make the
    events of consecutive calls ambiguous.
    """

    def __init__(self, agent: Agent, account: _Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.agent = agent
        self.handle = next(agent.handles)
        self.media = _CallMedia()
        self.audio: Any = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        state = _INV_STATE_NAMES.get(info.state, str(info.state))
        self.agent.emit(
            "call_state",
            call=self.handle,
            state=state,
            code=info.lastStatusCode,
            reason=info.lastReason,
            call_id=info.callIdString,
            remote_uri=info.remoteUri,
            remote_contact=info.remoteContact,
        )
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.audio = None
            # pjsua2 advises against destroying objects inside their own
            # callback; the main loop finishes the call after it returns.
            self.agent.defer(lambda: self.agent.finish_call(self))

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = _MEDIA_STATUS_NAMES.get(media.status, str(media.status))
            self.agent.emit("media_state", call=self.handle, index=index, status=status, dir=media.dir)
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.audio = self.getAudioMedia(index)
                self.agent.connect_media(self)
            break

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.agent.emit(
            "dtmf",
            call=self.handle,
            digit=prm.digit,
            method=_DTMF_METHOD_NAMES.get(prm.method, str(prm.method)),
            # SIP INFO without a Duration line reports 0xFFFFFFFF.
            duration=None if prm.duration == 0xFFFFFFFF else prm.duration,
        )


class Agent:
    """Owns the pjsua2 endpoint and runs the commands of one test."""

    def __init__(self, options: argparse.Namespace, out: Any) -> None:
        self.options = options
        self.out = out
        self.ep = pj.Endpoint()
        self.accounts: dict[str, _Account] = {}
        self.calls: dict[int, _Call] = {}
        self.transports: dict[str, int] = {}
        self.ports: dict[str, int] = {}
        self.deferred: list[Callable[[], None]] = []
        self.handles = itertools.count(1)
        self.retired: list[_Account] = []
        self.running = True
        self.handlers: dict[str, Callable[..., Any]] = {
            "register": self.cmd_register,
            "unregister": self.cmd_unregister,
            "call": self.cmd_call,
            "answer": self.cmd_answer,
            "hangup": self.cmd_hangup,
            "hold": self.cmd_hold,
            "reinvite": self.cmd_reinvite,
            "dial_dtmf": self.cmd_dial_dtmf,
            "play_wav": self.cmd_play_wav,
            "play_tone": self.cmd_play_tone,
            "stop_playing": self.cmd_stop_playing,
            "record": self.cmd_record,
            "stop_record": self.cmd_stop_record,
            "set_codecs": self.cmd_set_codecs,
            "codecs": self.cmd_codecs,
            "calls": self.cmd_calls,
            "quit": self.cmd_quit,
        }

    # -- output --------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def emit(self, kind: str, **data: Any) -> None:
        self.send({"event": kind, **data})

    def defer(self, action: Callable[[], None]) -> None:
        self.deferred.append(action)

    # -- life cycle ----------------------------------------------------
    def start(self) -> None:
        opts = self.options
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = 8
        cfg.uaConfig.userAgent = f"cosmo-test-pjphone/{opts.name}"
        cfg.logConfig.level = opts.log_level
        cfg.logConfig.consoleLevel = opts.log_level
        cfg.logConfig.msgLogging = 1
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.clockRate = opts.clock_rate
        cfg.medConfig.sndClockRate = opts.clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libCreate()
        self.ep.libInit(cfg)
        for name in ("udp", "tcp"):
            tcfg = pj.TransportConfig()
            tcfg.port = opts.sip_port if name == "udp" else opts.tcp_port
            tcfg.boundAddress = opts.bind
            tcfg.publicAddress = opts.bind
            tid = self.ep.transportCreate(_TRANSPORT_TYPES[name], tcfg)
            self.transports[name] = tid
            local = self.ep.transportGetInfo(tid).localName
            self.ports[name] = int(local.rsplit(":", 1)[1])
        self.ep.libStart()
        # No sound card: the null device still clocks the conference bridge,
        # which is what moves audio between players, calls and recorders.
        self.ep.audDevManager().setNullDev()
        self.set_codecs(opts.codecs.split(","))
        # The local account places and takes calls addressed straight to
        # this phone's IP:port, without a registrar.
        acfg = self.account_config(f"sip:{opts.name}@{opts.bind}:{self.ports['udp']}")
        account = _Account(self, "local")
        account.create(acfg, True)
        self.accounts["local"] = account
        self.emit(
            "ready",
            udp_port=self.ports["udp"],
            tcp_port=self.ports["tcp"],
            version=self.ep.libVersion().full,
            pid=os.getpid(),
        )

    def account_config(self, id_uri: str) -> pj.AccountConfig:
        opts = self.options
        acfg = pj.AccountConfig()
        acfg.idUri = id_uri
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        acfg.mediaConfig.transportConfig.port = opts.rtp_port
        acfg.mediaConfig.transportConfig.portRange = opts.rtp_port_range
        acfg.mediaConfig.transportConfig.boundAddress = opts.bind
        acfg.mediaConfig.transportConfig.publicAddress = opts.bind
        return acfg

    def run(self, commands: queue.Queue[dict[str, Any] | None]) -> None:
        deadline = time.monotonic() + self.options.max_lifetime
        while self.running:
            self.ep.libHandleEvents(10)
            while True:
                try:
                    request = commands.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    self.running = False
                    break
                self.dispatch(request)
            while self.deferred:
                self.deferred.pop(0)()
            self.watch_players()
            if time.monotonic() > deadline:
                self.emit("expired", max_lifetime=self.options.max_lifetime)
                self.running = False

    def shutdown(self) -> None:
        """Hang up, unregister, then destroy the endpoint.

        Done here with bounded polling rather than left to libDestroy, which
        sleeps a fixed second for network replies; libDestroy then runs
        with PJSUA_DESTROY_NO_NETWORK.
        """
        try:
            self.ep.hangupAllCalls()
            self.poll_until(lambda: not any(c.isActive() for c in self.calls.values()), 2.0)
            registered = [a for name, a in self.accounts.items() if name != "local" and a.getInfo().regIsActive]
            for account in registered:
                # Cleared by the final answer (after any 401 round trip).
                account.unregistering = True
                account.setRegistration(False)
            self.poll_until(lambda: not any(a.unregistering for a in registered), 2.0)
        except pj.Error:
            pass
        for call in list(self.calls.values()):
            self.finish_call(call)
        # The pjsua2 objects are left to os._exit afterwards: their
        # destructors act on ids that pjsua may have handed out again.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)

    def poll_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            while self.deferred:
                self.deferred.pop(0)()

    def dispatch(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        handler = self.handlers.get(str(request.get("cmd")))
        try:
            if handler is None:
                raise CommandError(f"unknown command {request.get('cmd')!r}")
            result = handler(**request.get("args", {}))
        except CommandError as exc:
            self.send({"id": rid, "ok": False, "error": str(exc)})
        except pj.Error as exc:
            self.send({"id": rid, "ok": False, "error": f"pjsua2: {exc.info()}"})
        except TypeError as exc:
            self.send({"id": rid, "ok": False, "error": f"bad arguments: {exc}"})
        else:
            self.send({"id": rid, "ok": True, "result": result})

    # -- helpers -------------------------------------------------------
    def call_for(self, call: int | None) -> _Call:
        if call is None:
            live = [c for c in self.calls.values() if c.isActive()]
            if not live:
                raise CommandError("no active call")
            return live[-1]
        found = self.calls.get(call)
        if found is None:
            raise CommandError(f"no call {call}")
        return found

    def set_codecs(self, names: list[str]) -> list[str]:
        wanted = [n.strip().upper() for n in names if n.strip()]
        enabled = []
        for codec in self.ep.codecEnum2():
            encoding = codec.codecId.split("/")[0].upper()
            if encoding in wanted:
                # pjmedia keeps priorities below 255; order follows the list.
                priority = 200 - 10 * wanted.index(encoding)
                enabled.append(codec.codecId)
            else:
                priority = 0
            self.ep.codecSetPriority(codec.codecId, priority)
        if not enabled:
            raise CommandError(f"none of the codecs {names} is available")
        return enabled

    def connect_media(self, call: _Call) -> None:
        if call.audio is None:
            return
        for source in call.media.sources:
            source.startTransmit(call.audio)
        for _, recorder in call.media.recorders:
            call.audio.startTransmit(recorder)

    def close_media(self, call: _Call, *, sources: bool, recorders: bool) -> list[str]:
        closed = []
        if sources:
            for source in call.media.sources:
                if call.audio is not None:
                    try:
                        source.stopTransmit(call.audio)
                    except pj.Error:
                        pass
            call.media.sources.clear()
            call.media.players_to_watch.clear()
        if recorders:
            for path, recorder in call.media.recorders:
                if call.audio is not None:
                    try:
                        call.audio.stopTransmit(recorder)
                    except pj.Error:
                        pass
                closed.append(path)
            # Dropping the last reference destroys the recorder, which
            # writes the final WAV header.
            call.media.recorders.clear()
        return closed

    def finish_call(self, call: _Call) -> None:
        self.calls.pop(call.handle, None)
        for path in self.close_media(call, sources=True, recorders=True):
            self.emit("record_closed", call=call.handle, path=path)

    def watch_players(self) -> None:
        for call in list(self.calls.values()):
            for entry in list(call.media.players_to_watch):
                player, size, last = entry
                position = player.getPos()
                # pjmedia rewinds a NO_LOOP player to 0 at the end of file.
                if position >= size or position < last:
                    call.media.players_to_watch.remove(entry)
                    self.emit("play_done", call=call.handle)
                else:
                    entry[2] = position

    # -- commands ------------------------------------------------------
    def cmd_register(
        self,
        user: str,
        password: str,
        registrar: str,
        transport: str = "udp",
        expires: int = 300,
        domain: str | None = None,
    ) -> str:
        if transport not in self.transports:
            raise CommandError(f"transport must be one of {sorted(self.transports)}")
        host = domain or registrar.split(":", 1)[1].split(";")[0].rsplit(":", 1)[0]
        acfg = self.account_config(f"sip:{user}@{host}")
        registrar_uri = registrar if transport == "udp" else f"{registrar};transport={transport}"
        acfg.regConfig.registrarUri = registrar_uri
        acfg.regConfig.timeoutSec = expires
        acfg.regConfig.retryIntervalSec = 0
        acfg.regConfig.firstRetryIntervalSec = 0
        acfg.sipConfig.transportId = self.transports[transport]
        if transport != "udp":
            # Requests of this account go through the registrar over the
            # chosen transport, as a phone behind an outbound proxy would.
            acfg.sipConfig.proxies.append(registrar_uri + ";lr")
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        name = user
        old = self.accounts.pop(name, None)
        if old is not None:
            # pjsua hands the freed account id to the next account; the
            # destructor of the old object would delete that one (pjsua2
            # Account::~Account checks only that the id is valid), so the
            # object is kept until the process ends.
            old.shutdown()
            self.retired.append(old)
        account = _Account(self, name)
        account.create(acfg, True)
        self.accounts[name] = account
        return name

    def cmd_unregister(self, account: str | None = None) -> str:
        name = account or self.default_account_name()
        acc = self.accounts.get(name)
        if acc is None or name == "local":
            raise CommandError(f"no registered account {name!r}")
        acc.setRegistration(False)
        return name

    def default_account_name(self) -> str:
        registered = [n for n in self.accounts if n != "local"]
        return registered[-1] if registered else "local"

    def cmd_call(self, uri: str, account: str | None = None, headers: dict[str, str] | None = None) -> int:
        name = account or self.default_account_name()
        acc = self.accounts.get(name)
        if acc is None:
            raise CommandError(f"no account {name!r}")
        call = _Call(self, acc)
        prm = pj.CallOpParam(True)
        for hname, hvalue in (headers or {}).items():
            header = pj.SipHeader()
            header.hName = hname
            header.hValue = hvalue
            prm.txOption.headers.append(header)
        call.makeCall(uri, prm)
        self.calls[call.handle] = call
        return call.handle

    def cmd_answer(self, code: int = 200, call: int | None = None) -> int:
        target = self.call_for(call)
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        target.answer(prm)
        return target.handle

    def cmd_hangup(self, code: int = 0, call: int | None = None) -> int:
        target = self.call_for(call)
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        target.hangup(prm)
        return target.handle

    def cmd_hold(self, call: int | None = None) -> int:
        target = self.call_for(call)
        target.setHold(pj.CallOpParam(True))
        return target.handle

    def cmd_reinvite(self, unhold: bool = True, call: int | None = None) -> int:
        target = self.call_for(call)
        prm = pj.CallOpParam(True)
        if unhold:
            prm.opt.flag |= pj.PJSUA_CALL_UNHOLD
        target.reinvite(prm)
        return target.handle

    def cmd_dial_dtmf(
        self, digits: str, method: str = "rfc2833", duration_ms: int = 160, call: int | None = None
    ) -> int:
        if method not in _DTMF_METHODS:
            raise CommandError(f"method must be one of {sorted(_DTMF_METHODS)}")
        target = self.call_for(call)
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = _DTMF_METHODS[method]
        prm.duration = duration_ms
        target.sendDtmf(prm)
        return target.handle

    def cmd_play_wav(self, path: str, loop: bool = True, call: int | None = None) -> int:
        target = self.call_for(call)
        player = pj.AudioMediaPlayer()
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        target.media.sources.append(player)
        if not loop:
            target.media.players_to_watch.append([player, player.getInfo().sizeSamples, 0])
        self.connect_media(target)
        return target.handle

    def cmd_play_tone(self, freq_hz: int, freq2_hz: int = 0, volume: int = 0, call: int | None = None) -> int:
        target = self.call_for(call)
        tone = pj.ToneGenerator()
        tone.createToneGenerator(self.options.clock_rate, 1)
        desc = pj.ToneDesc()
        desc.freq1 = freq_hz
        desc.freq2 = freq2_hz
        # One long "on" period repeated without a gap makes a steady tone.
        desc.on_msec = 10000
        desc.off_msec = 0
        desc.volume = volume
        tones = pj.ToneDescVector()
        tones.append(desc)
        tone.play(tones, True)
        target.media.sources.append(tone)
        self.connect_media(target)
        return target.handle

    def cmd_stop_playing(self, call: int | None = None) -> int:
        target = self.call_for(call)
        self.close_media(target, sources=True, recorders=False)
        return target.handle

    def cmd_record(self, path: str, call: int | None = None) -> int:
        target = self.call_for(call)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(path)
        target.media.recorders.append((path, recorder))
        self.connect_media(target)
        return target.handle

    def cmd_stop_record(self, call: int | None = None) -> list[str]:
        if call is None:
            targets = list(self.calls.values())
        else:
            targets = [self.call_for(call)]
        closed: list[str] = []
        for target in targets:
            closed += self.close_media(target, sources=False, recorders=True)
        return closed

    def cmd_set_codecs(self, names: list[str]) -> list[str]:
        return self.set_codecs(names)

    def cmd_codecs(self) -> list[list[Any]]:
        return [[c.codecId, c.priority] for c in self.ep.codecEnum2()]

    def cmd_calls(self) -> list[dict[str, Any]]:
        result = []
        for handle, call in self.calls.items():
            info = call.getInfo()
            result.append(
                {
                    "call": handle,
                    "state": _INV_STATE_NAMES.get(info.state, str(info.state)),
                    "call_id": info.callIdString,
                    "remote_uri": info.remoteUri,
                }
            )
        return result

    def cmd_quit(self) -> None:
        self.running = False


def _read_commands(stream: Any, commands: queue.Queue[dict[str, Any] | None]) -> None:
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            commands.put(json.loads(line))
        except json.JSONDecodeError:
            sys.stderr.write(f"pjphone: bad command line {line!r}\n")
    commands.put(None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="pjphone")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, default=0)
    parser.add_argument("--tcp-port", type=int, default=0)
    parser.add_argument("--rtp-port", type=int, default=0)
    parser.add_argument("--rtp-port-range", type=int, default=0)
    parser.add_argument("--codecs", default="PCMU,PCMA")
    parser.add_argument("--clock-rate", type=int, default=8000)
    parser.add_argument("--log-level", type=int, default=4)
    parser.add_argument("--max-lifetime", type=float, default=120.0)
    options = parser.parse_args(argv)

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
    agent = Agent(options, out)
    try:
        agent.start()
    except pj.Error as exc:
        agent.emit("failed", error=f"pjsua2: {exc.info()}")
        out.flush()
        os._exit(1)
    reader = threading.Thread(target=_read_commands, args=(sys.stdin, commands), daemon=True)
    reader.start()
    code = 0
    try:
        agent.run(commands)
    except Exception:  # the root of the process: report, then tear down
        agent.emit("failed", error=traceback.format_exc())
        code = 1
    finally:
        agent.shutdown()
        agent.emit("exited", code=code)
        out.flush()
        sys.stderr.flush()
        # Skip interpreter teardown: pjsua2 objects must not be destroyed
        # after libDestroy (see Agent.shutdown).
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
