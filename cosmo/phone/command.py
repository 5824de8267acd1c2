"""``cosmo phone``: the command line of the agent softphone.

This module imports neither pjsua2 nor pyaudio, so ``cosmo`` can offer the
subcommand without the optional ``phone`` extra; :func:`run` says in one
line (exit status 2) what is missing when it is.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import queue
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from cosmo.phone.console import (
    HELP,
    Answer,
    Command,
    Console,
    Dial,
    Hangup,
    Help,
    Quit,
    SendDtmf,
    Status,
    ToggleHold,
    parse_command,
    render_status,
)
from cosmo.phone.errors import PhoneError
from cosmo.phone.options import PhoneOptions, SoundMode, Transport

if TYPE_CHECKING:
    from cosmo.phone.softphone import Softphone

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "add_arguments", "add_parser", "main", "run"]

log = logging.getLogger("cosmo.phone")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

POLL_MS = 10  # longest pjsua2 waits for network events before looking at the keyboard
INSTALL_HINT = "install it with: .venv/bin/pip install '.[phone]' (pyaudio builds against Debian's portaudio19-dev)"

_SERVER = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``cosmo phone`` on ``parser``."""
    parser.add_argument("--ext", required=True, metavar="EXT", help="the agent's extension, e.g. 1001")
    parser.add_argument("--password", required=True, help="the agent's SIP password, e.g. secret1001")
    parser.add_argument("--server", default="127.0.0.1:5060", metavar="HOST[:PORT]",
                        help="Cosmo's SIP address: registrar and outbound proxy (default: %(default)s)")
    parser.add_argument("--transport", choices=[t.value for t in Transport], default=Transport.UDP.value,
                        help="SIP transport (default: udp)")
    parser.add_argument("--domain", default="cosmo.local",
                        help="SIP domain of the agent's address, sip:EXT@DOMAIN (default: %(default)s)")
    parser.add_argument("--auto-answer", action="store_true", help="answer incoming calls at once")
    parser.add_argument("--play", type=Path, metavar="FILE.wav",
                        help="play this WAV (16-bit PCM, looped) into every call, mixed with the microphone")
    parser.add_argument("--record", type=Path, metavar="FILE.wav",
                        help="record what the other side sends; later calls go to FILE-2.wav, FILE-3.wav...")
    parser.add_argument("--audio", choices=[m.value for m in SoundMode], default=SoundMode.AUTO.value,
                        help="sound: auto (a device if there is one, else none), pjsua, pyaudio, "
                             "or null for no sound device (default: auto)")
    parser.add_argument("--bind", metavar="ADDR",
                        help="local address for SIP and RTP (default: the one that routes to the server)")
    parser.add_argument("--expires", type=int, default=300, metavar="SECONDS",
                        help="registration lifetime asked for (default: %(default)s)")
    parser.add_argument("--no-console", action="store_true",
                        help="do not read keys from standard input; stop with Ctrl-C or SIGTERM")
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="log more on stderr: -v pjsip's notes, -vv the SIP messages too")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``phone`` subcommand to the ``cosmo`` command's ``subparsers``."""
    parser = subparsers.add_parser(
        "phone",
        help="agent softphone: register as an agent, answer, hold, send DTMF (needs the 'phone' extra)",
        description="Agent softphone on pjsua2: registers as an agent and takes keys from standard input "
                    "(? lists them).",
    )
    add_arguments(parser)
    return parser


def missing_extra(audio: str) -> str | None:
    """Why the ``phone`` extra cannot serve ``--audio audio``, or ``None`` when it can."""
    try:
        importlib.import_module("pjsua2")
    except ImportError:
        return f"cosmo phone: pjsua2 is missing, the softphone needs the 'phone' extra; {INSTALL_HINT}"
    if audio in ("auto", "pyaudio"):
        try:
            importlib.import_module("pyaudio")
        except ImportError:
            return (f"cosmo phone: pyaudio is missing, sound needs the 'phone' extra; {INSTALL_HINT}; "
                    "or run without sound: --audio null")
    return None


def options_from(args: argparse.Namespace) -> PhoneOptions:
    """Checked :class:`PhoneOptions` from parsed arguments; :class:`PhoneError` says what is wrong."""
    match = _SERVER.match(args.server.strip())
    if match is None:
        raise PhoneError(f"--server {args.server!r}: expected HOST or HOST:PORT")
    port = int(match.group("port") or 5060)
    if not 0 < port < 65536:
        raise PhoneError(f"--server {args.server!r}: port out of range")
    if not re.fullmatch(r"[A-Za-z0-9+._~-]+", args.ext):
        raise PhoneError(f"--ext {args.ext!r}: not an extension")
    if args.play is not None and not args.play.is_file():
        raise PhoneError(f"--play {args.play}: no such file")
    if args.record is not None and not args.record.resolve().parent.is_dir():
        raise PhoneError(f"--record {args.record}: no such directory {args.record.resolve().parent}")
    if args.expires < 60:
        raise PhoneError("--expires must be at least 60 seconds")
    return PhoneOptions(
        extension=args.ext,
        password=args.password,
        server_host=match.group("v6") or match.group("host"),
        server_port=port,
        transport=Transport(args.transport),
        domain=args.domain,
        auto_answer=args.auto_answer,
        play=args.play.resolve() if args.play is not None else None,
        record=args.record.resolve() if args.record is not None else None,
        audio=SoundMode(args.audio),
        bind=args.bind,
        expires=args.expires,
        pjsip_log_level={0: 2, 1: 3}.get(args.verbose, 5),
    )


def run(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the softphone until ``q``, end of input, SIGINT or SIGTERM; returns the exit status.

    0 after an orderly quit, 1 when the phone could not start or its first
    registration was refused, 2 for bad options or a missing ``phone`` extra.
    """
    out = stdout or sys.stdout
    problem = missing_extra(args.audio)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    try:
        options = options_from(args)
    except PhoneError as exc:
        print(f"cosmo phone: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.verbose)
    from cosmo.phone.softphone import Softphone

    console = Console(out)
    phone = Softphone(options)
    lines: queue.Queue[str | None] = queue.Queue()
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            phone.start()
        except PhoneError as exc:
            _drain(phone, console)
            print(f"cosmo phone: {exc}", file=sys.stderr)
            phone.close()
            return EXIT_FAILURE
        if not args.no_console:
            threading.Thread(target=_read_lines, args=(stdin or sys.stdin, lines), name="phone-keys",
                             daemon=True).start()
            console.write(f"phone {options.aor} via {options.server_uri()}: ? for keys")
        try:
            status = _loop(phone, console, lines, stop)
        finally:
            phone.close()
            _drain(phone, console)
    if status != EXIT_OK and phone.failure is not None:
        print(f"cosmo phone: {phone.failure}", file=sys.stderr)
    return status


def _loop(phone: Softphone, console: Console, lines: queue.Queue[str | None], stop: threading.Event) -> int:
    while not stop.is_set():
        phone.poll(POLL_MS)
        _drain(phone, console)
        if phone.failure is not None:
            return EXIT_FAILURE
        while True:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                return EXIT_OK
            try:
                command = parse_command(line)
                if command is not None and not _execute(phone, console, command):
                    return EXIT_OK
            except PhoneError as exc:
                console.write(f"! {exc}")
    return EXIT_OK


def _execute(phone: Softphone, console: Console, command: Command) -> bool:
    """Carry out one command; False when it asks to quit."""
    match command:
        case Answer():
            phone.answer()
        case Hangup():
            phone.hangup()
        case ToggleHold():
            phone.toggle_hold()
        case SendDtmf(digits=digits):
            phone.send_dtmf(digits)
        case Dial(target=target):
            phone.dial(target)
        case Status():
            console.write(render_status(phone.options.aor, phone.registered, phone.summary()))
        case Help():
            console.write(HELP)
        case Quit():
            return False
    return True


def _drain(phone: Softphone, console: Console) -> None:
    while (event := phone.next_event()) is not None:
        console.show(event)


def _read_lines(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    """Queue each line of ``stream``, then ``None`` at its end (Ctrl-D quits like a shell)."""
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # the stream was closed under the reader
        pass
    lines.put(None)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end the phone in order (hang up, unregister) instead of killing it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _setup_logging(verbose: int) -> None:
    """Warnings (or more with -v) on stderr, apart from the console lines on stdout."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cosmo.phone``: the same as ``cosmo phone``."""
    parser = argparse.ArgumentParser(prog="cosmo phone", description="Cosmo's agent softphone.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
