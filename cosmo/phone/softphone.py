"""The agent softphone's engine: one pjsua2 endpoint, one account, one call at a time.

Theory of operation
-------------------
pjsua2's ``Endpoint`` is a process singleton.  It runs here with no worker
threads (``uaConfig.threadCnt = 0``, ``medConfig.threadCnt = 0``): the owner
calls :meth:`Softphone.poll` in a loop, which runs ``libHandleEvents`` and
then the actions that callbacks deferred, so every pjsua2 call and every
SIP callback happens on the caller's thread.  Besides it only the audio
clock runs (null device or sound card), and it touches nothing but the
conference bridge and the PCM buffers of :mod:`cosmo.phone.sound`.

Inputs are the verbs (:meth:`answer`, :meth:`hangup`, :meth:`toggle_hold`,
:meth:`send_dtmf`, :meth:`dial`); outputs are pulled with
:meth:`next_event` — frozen values of :mod:`cosmo.phone.events`.

The phone registers ``sip:EXT@DOMAIN`` at the server with digest
credentials and routes every request through the server (a loose route,
RFC 3261 §16.12), so ``c 1002`` reaches the agent's colleague and
``c +15550100`` Cosmo's number plan.  An agent handles one call at a time:
a second INVITE while a call exists is refused with 486 Busy Here.

When a call's audio becomes active, the conference bridge connects: the
microphone and the ``--play`` file into the call, the call into the speaker
and into the call's ``--record`` file.  pjsua may rebuild a call's stream on
every re-INVITE, so the connections are made again on each media change.
Holding (re-INVITE with a=sendonly, RFC 3264 §8.4) mutes what the phone
sends (silence still flows), so the other side hears only what the server plays.

pjsua2 objects must be destroyed before ``libDestroy`` and never inside
their own callbacks; :meth:`close` hangs up, unregisters with bounded
polling, drops every object, then destroys the library.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj  # type: ignore[import-untyped]

import cosmo
from cosmo.phone.errors import PhoneError
from cosmo.phone.events import (
    CallState,
    CallStateChanged,
    CallSummary,
    DtmfReceived,
    DtmfSent,
    Event,
    HoldChanged,
    HoldState,
    Notice,
    Party,
    RecordingClosed,
    RegistrationChanged,
    SoundChosen,
)
from cosmo.phone.options import PhoneOptions
from cosmo.phone.sound import SoundPath, open_sound

__all__ = ["Softphone", "local_address_for"]

log = logging.getLogger(__name__)
pjsip_log = logging.getLogger("cosmo.phone.pjsip")

CLOCK_RATE = 8000  # Cosmo's audio path is G.711 at 8 kHz
DTMF_DURATION_MS = 160  # per digit (RFC 4733 §2.5.1.5 leaves it to the sender)
CLOSE_WAIT_S = 2.0  # bounded waits for BYE and un-REGISTER answers at exit

_STATES = {
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_INCOMING: CallState.INCOMING,
    pj.PJSIP_INV_STATE_EARLY: CallState.EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}

_HOLDS = {
    pj.PJSUA_CALL_MEDIA_ACTIVE: HoldState.NONE,
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: HoldState.LOCAL,
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: HoldState.REMOTE,
}

_TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}


def local_address_for(host: str, port: int) -> str:
    """The local IP address the system would send from to reach ``host:port``.

    A connected UDP socket sends nothing; it only asks the routing table.
    Raises :class:`PhoneError` when ``host`` cannot be resolved or reached.
    """
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise PhoneError(f"cannot reach {host}:{port}: {exc}") from None


class _LogWriter(pj.LogWriter):
    """pjsip's log into Python logging; called on any pjsip thread."""

    def write(self, entry: Any) -> None:
        level = entry.level
        python_level = logging.ERROR if level <= 1 else logging.WARNING if level == 2 else \
            logging.INFO if level == 3 else logging.DEBUG
        if not pjsip_log.isEnabledFor(python_level):
            return
        try:
            message = entry.msg.rstrip()
        except UnicodeDecodeError:  # an exception must not leave a SWIG director
            message = "(a pjsip log line that is not UTF-8)"
        pjsip_log.log(python_level, "%s", message)


def _callback(method: Callable[..., None]) -> Callable[..., None]:
    """Wrap a pjsua2 callback: an exception must not leave a SWIG director (it aborts
    the process), so it is logged with its traceback and the phone goes on."""

    def guarded(self: Any, prm: Any) -> None:
        try:
            method(self, prm)
        except Exception:  # the root of a callback from pjsua2
            log.exception("%s failed", method.__name__)

    guarded.__name__ = method.__name__
    return guarded


class _Account(pj.Account):
    def __init__(self, phone: Softphone) -> None:
        super().__init__()
        self.phone = phone

    @_callback
    def onRegState(self, prm: Any) -> None:
        self.phone._registration_state(self, prm)

    @_callback
    def onIncomingCall(self, prm: Any) -> None:
        self.phone._incoming_call(self, prm)


class _Call(pj.Call):
    """A call, known by a handle that is never reused (pjsua reuses its call ids)."""

    def __init__(self, phone: Softphone, account: _Account, handle: int, *, outgoing: bool,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.handle = handle
        self.outgoing = outgoing
        self.state: CallState | None = None
        self.code = 0
        self.party = Party("", None, "")
        self.hold = HoldState.NONE
        self.audio: Any = None
        self.recorder: Any = None
        self.record_path: Path | None = None
        self.busy_refusal = False

    def _set_state(self, state: CallState, code: int, reason: str) -> None:
        # pjsip repeats a state when a response changes only the status (100 → 180);
        # only EARLY's status (180 Ringing, 183 Session Progress) is news.
        if state == self.state and (state != CallState.EARLY or code == self.code):
            return
        log.info("call %d: %s -> %s (%d %s)", self.handle, self.state, state, code, reason)
        self.state = state
        self.code = code
        # An incoming call's EARLY is this phone's own 180 Ringing: nothing new to show.
        if not self.busy_refusal and not (state == CallState.EARLY and not self.outgoing):
            self.phone._emit(CallStateChanged(self.handle, state, self.party, code, reason, self.outgoing))

    @_callback
    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        if info.remoteUri:
            self.party = Party.parse(info.remoteUri)
        state = _STATES.get(info.state)
        if state is None:
            return
        self._set_state(state, info.lastStatusCode, info.lastReason)
        if state == CallState.DISCONNECTED:
            self.audio = None
            # pjsua2 objects are not destroyed inside their own callback.
            self.phone._defer(lambda: self.phone._finish_call(self))

    @_callback
    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            hold = _HOLDS.get(media.status)
            if hold is None:
                return
            self.audio = self.getAudioMedia(index)
            self.phone._connect_media(self, hold)
            if hold != self.hold:
                self.hold = hold
                self.phone._emit(HoldChanged(self.handle, hold))
            return

    @_callback
    def onDtmfDigit(self, prm: Any) -> None:
        self.phone._emit(DtmfReceived(self.handle, prm.digit))


class Softphone:
    """The agent's phone.  Drive it from one thread: :meth:`start`, then :meth:`poll` in a loop.

    The verbs raise :class:`PhoneError` when they do not apply (no call to
    answer, nothing to hang up) or when pjsua2 refuses them.
    """

    def __init__(self, options: PhoneOptions) -> None:
        self.options = options
        self.ep: Any = None
        self.account: _Account | None = None
        self.sound: SoundPath | None = None
        self.player: Any = None
        self.calls: dict[int, _Call] = {}
        self.registered = False
        self.failure: str | None = None  # set when the phone cannot go on (first REGISTER refused)
        self._first_registration = True
        self._unregistering = False
        self._handles = itertools.count(1)
        self._recordings = 0
        self._events: deque[Event] = deque()
        self._deferred: deque[Callable[[], None]] = deque()
        self._log_writer: _LogWriter | None = None

    # ---- life cycle ------------------------------------------------------------
    def start(self) -> None:
        """Start pjsua2, the transport, the audio path and the registration.

        Raises :class:`PhoneError` when any of them fails; :meth:`close` then
        releases what was started.
        """
        opts = self.options
        bind = opts.bind or local_address_for(opts.server_host, opts.server_port)
        self.ep = pj.Endpoint()
        try:
            with _stdout_to_stderr(keep=opts.pjsip_log_level >= 4):
                self.ep.libCreate()
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 0
            cfg.uaConfig.mainThreadOnly = False
            cfg.uaConfig.maxCalls = 4
            cfg.uaConfig.userAgent = f"cosmo-phone/{cosmo.__version__} ({opts.extension})"
            self._log_writer = _LogWriter()
            cfg.logConfig.writer = self._log_writer
            cfg.logConfig.level = opts.pjsip_log_level
            cfg.logConfig.consoleLevel = opts.pjsip_log_level
            cfg.logConfig.msgLogging = 1 if opts.pjsip_log_level >= 4 else 0
            cfg.logConfig.decor = pj.PJ_LOG_HAS_SENDER | pj.PJ_LOG_HAS_SPACE
            cfg.medConfig.threadCnt = 0
            cfg.medConfig.clockRate = CLOCK_RATE
            cfg.medConfig.channelCount = 1
            # Silence is sent, not suppressed: Cosmo hangs up calls whose RTP stops.
            cfg.medConfig.noVad = True
            self.ep.libInit(cfg)
            tcfg = pj.TransportConfig()
            tcfg.port = 0
            tcfg.boundAddress = bind
            tcfg.publicAddress = bind
            transport_id = self.ep.transportCreate(_TRANSPORTS[opts.transport], tcfg)
            self.ep.libStart()
            self.sound = open_sound(self.ep, opts.audio, CLOCK_RATE)
            self._emit(SoundChosen(self.sound.kind, self.sound.description))
            if opts.play is not None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(str(opts.play), 0)  # loops
            account = _Account(self)
            account.create(self._account_config(bind, transport_id), True)
            self.account = account
        except pj.Error as exc:
            raise PhoneError(f"pjsua2: {_pj_text(exc)}") from None

    def _account_config(self, bind: str, transport_id: int) -> Any:
        opts = self.options
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{opts.aor}"
        acfg.regConfig.registrarUri = opts.server_uri()
        acfg.regConfig.timeoutSec = opts.expires
        # Every request goes through Cosmo, which knows the other agents and the numbers.
        acfg.sipConfig.proxies.append(opts.server_uri() + ";lr")
        acfg.sipConfig.transportId = transport_id
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", opts.extension, 0, opts.password))
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        acfg.mediaConfig.transportConfig.port = 0
        acfg.mediaConfig.transportConfig.boundAddress = bind
        acfg.mediaConfig.transportConfig.publicAddress = bind
        return acfg

    def poll(self, timeout_ms: int) -> None:
        """Handle SIP and timer events for up to ``timeout_ms``, then the deferred actions."""
        if self.ep is None:
            return
        self.ep.libHandleEvents(timeout_ms)
        while self._deferred:
            self._deferred.popleft()()

    def next_event(self) -> Event | None:
        """The oldest event not taken yet, or ``None``."""
        return self._events.popleft() if self._events else None

    def close(self) -> None:
        """Hang up, unregister, release every pjsua2 object and destroy the library (idempotent)."""
        if self.ep is None:
            return
        try:
            if self.calls:
                self.ep.hangupAllCalls()
                self._poll_until(lambda: not any(c.isActive() for c in self.calls.values()), CLOSE_WAIT_S)
            if self.account is not None and self.registered:
                self._unregistering = True
                self.account.setRegistration(False)
                self._poll_until(lambda: not self._unregistering, CLOSE_WAIT_S)
        except pj.Error as exc:
            log.warning("closing: %s", _pj_text(exc))
        for call in list(self.calls.values()):
            self._finish_call(call)
        if self.sound is not None:
            self.sound.close()
            self.sound = None
        self.player = None
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        # Waits above were bounded; do not let libDestroy wait for the network again.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self.ep = None
        self._log_writer = None

    def _poll_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.poll(10)

    # ---- verbs -----------------------------------------------------------------
    def answer(self) -> int:
        """Answer the ringing call with 200 OK; returns its handle."""
        call = self._current()
        if call is None or call.outgoing or call.state not in (CallState.INCOMING, CallState.EARLY):
            raise PhoneError("no ringing call to answer")
        self._answer(call, 200)
        return call.handle

    def hangup(self) -> int:
        """End the current call (BYE, CANCEL, or 603 Decline when ringing); returns its handle."""
        call = self._current()
        if call is None:
            raise PhoneError("no call to hang up")
        prm = pj.CallOpParam(True)
        if not call.outgoing and call.state in (CallState.INCOMING, CallState.EARLY):
            prm.statusCode = 603
        try:
            call.hangup(prm)
        except pj.Error as exc:
            raise PhoneError(f"hang-up failed: {_pj_text(exc)}") from None
        return call.handle

    def toggle_hold(self) -> HoldState:
        """Put the call on hold, or resume it when this phone holds it; returns what was asked."""
        call = self._current()
        if call is None or call.state != CallState.CONFIRMED:
            raise PhoneError("no connected call to hold")
        prm = pj.CallOpParam(True)
        try:
            if call.hold == HoldState.LOCAL:
                prm.opt.flag |= pj.PJSUA_CALL_UNHOLD
                call.reinvite(prm)
                return HoldState.NONE
            call.setHold(prm)
        except pj.Error as exc:
            raise PhoneError(f"hold failed: {_pj_text(exc)}") from None
        return HoldState.LOCAL

    def send_dtmf(self, digits: str) -> None:
        """Send ``digits`` as RFC 4733 telephone-events on the connected call."""
        call = self._current()
        if call is None or call.state != CallState.CONFIRMED:
            raise PhoneError("no connected call to send DTMF on")
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.duration = DTMF_DURATION_MS
        try:
            call.sendDtmf(prm)
        except pj.Error as exc:
            raise PhoneError(f"DTMF failed: {_pj_text(exc)}") from None
        self._emit(DtmfSent(call.handle, digits))

    def dial(self, target: str) -> int:
        """Call an extension or number (``sip:TARGET@DOMAIN`` through the server) or a SIP URI."""
        if self.account is None:
            raise PhoneError("the phone is not started")
        if self._current() is not None:
            raise PhoneError("already in a call: hang up first")
        uri = target if target.lower().startswith(("sip:", "sips:")) else f"sip:{target}@{self.options.domain}"
        call = _Call(self, self.account, next(self._handles), outgoing=True)
        call.party = Party.parse(uri)
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except pj.Error as exc:
            raise PhoneError(f"cannot call {uri}: {_pj_text(exc)}") from None
        self.calls[call.handle] = call
        return call.handle

    def summary(self) -> list[CallSummary]:
        """The calls in progress, for the status line."""
        return [CallSummary(c.handle, c.state, c.party, c.hold, c.outgoing) for c in self.calls.values()
                if not c.busy_refusal]

    # ---- callbacks and helpers -----------------------------------------------------
    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _defer(self, action: Callable[[], None]) -> None:
        self._deferred.append(action)

    def _current(self) -> _Call | None:
        for call in self.calls.values():
            if not call.busy_refusal and call.state != CallState.DISCONNECTED:
                return call
        return None

    def _answer(self, call: _Call, code: int) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        try:
            call.answer(prm)
        except pj.Error as exc:
            raise PhoneError(f"answer failed: {_pj_text(exc)}") from None

    def _registration_state(self, account: _Account, prm: Any) -> None:
        info = account.getInfo()
        self.registered = bool(info.regIsActive)
        expires = int(prm.expiration) if self.registered else 0
        self._emit(RegistrationChanged(int(prm.code), str(prm.reason), self.registered, expires, self.options.aor))
        if self._unregistering:
            self._unregistering = False
        elif self._first_registration and not self.registered:
            self.failure = f"registration of {self.options.aor} at {self.options.server_uri()} failed: " \
                           f"{prm.code} {prm.reason}"
        self._first_registration = False

    def _incoming_call(self, account: _Account, prm: Any) -> None:
        call = _Call(self, account, next(self._handles), outgoing=False, call_id=prm.callId)
        call.party = Party.parse(call.getInfo().remoteUri)
        busy = self._current() is not None
        self.calls[call.handle] = call
        if busy:
            call.busy_refusal = True
            self._emit(Notice(f"call from {call.party} refused: busy with another call (486)"))
            self._answer(call, 486)
            return
        call._set_state(CallState.INCOMING, 0, "")
        self._answer(call, 180)
        if self.options.auto_answer:
            self._defer(lambda: self._auto_answer(call))

    def _auto_answer(self, call: _Call) -> None:
        if call.state in (CallState.INCOMING, CallState.EARLY):
            self._emit(Notice(f"call {call.handle}: answering automatically"))
            try:
                self._answer(call, 200)
            except PhoneError as exc:
                self._emit(Notice(f"call {call.handle}: {exc}"))

    def _connect_media(self, call: _Call, hold: HoldState) -> None:
        audio = call.audio
        sources = [self.player] if self.player is not None else []
        if self.sound is not None and self.sound.mic is not None:
            sources.append(self.sound.mic)
        for source in sources:
            source.startTransmit(audio)
        # On hold the microphone and the file are muted, not disconnected:
        # silence keeps RTP flowing, so the server does not take the call for dead.
        audio.adjustTxLevel(0.0 if hold == HoldState.LOCAL else 1.0)
        if self.sound is not None and self.sound.speaker is not None:
            audio.startTransmit(self.sound.speaker)
        if self.options.record is not None and call.recorder is None:
            call.record_path = self._next_record_path()
            call.recorder = pj.AudioMediaRecorder()
            call.recorder.createRecorder(str(call.record_path))
        if call.recorder is not None:
            audio.startTransmit(call.recorder)

    def _next_record_path(self) -> Path:
        """``--record`` for the first call, ``NAME-2.wav``, ``NAME-3.wav``... for the next ones."""
        assert self.options.record is not None
        self._recordings += 1
        path = self.options.record
        return path if self._recordings == 1 else path.with_name(f"{path.stem}-{self._recordings}{path.suffix}")

    def _finish_call(self, call: _Call) -> None:
        if self.calls.pop(call.handle, None) is None:
            return
        if call.recorder is not None:
            # Dropping the recorder writes the WAV header's final sizes.
            call.recorder = None
            self._emit(RecordingClosed(call.handle, str(call.record_path)))


@contextlib.contextmanager
def _stdout_to_stderr(*, keep: bool) -> Iterator[None]:
    """Keep the console's descriptor 1 clean while pjlib starts.

    ``libCreate`` logs pjlib's start on descriptor 1 before ``libInit`` can
    install the :class:`_LogWriter`; those lines go to stderr when ``keep``
    (verbose), else nowhere.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.dup(2) if keep else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def _pj_text(error: Any) -> str:
    """pjsua2's error as one line: what failed and pjlib's reason."""
    try:
        return f"{error.title.split('(', 1)[0]}: {error.reason}" if error.title else str(error.reason)
    except AttributeError:
        return str(error)
