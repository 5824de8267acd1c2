"""The ``cosmo`` command: ``cosmo serve`` runs a node, ``cosmo check`` validates its configuration,
``cosmo phone`` runs an agent softphone (the optional ``phone`` extra).

The configuration file is ``--config PATH``, else ``$COSMO_CONFIG``, else
``config/cosmo.yaml`` relative to the working directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

import cosmo
from cosmo import phone
from cosmo.config import ConfigError, Settings, load_config
from cosmo.ivr import cli as ivr_cli
from cosmo.speech import cli as speech_cli

__all__ = ["DEFAULT_CONFIG", "build_parser", "main", "serve", "setup_logging"]

log = logging.getLogger("cosmo")

DEFAULT_CONFIG = Path("config/cosmo.yaml")
SHUTDOWN_GRACE_S = 30.0
"""How long ``serve`` waits for an orderly stop after SIGINT/SIGTERM before giving up."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

RunFunction = Callable[[Settings], Coroutine[Any, Any, None]]


def _config_path(value: str | None) -> Path:
    return Path(value or os.environ.get("COSMO_CONFIG") or DEFAULT_CONFIG)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cosmo`` command."""
    parser = argparse.ArgumentParser(prog="cosmo", description="Cosmo contact-center server.")
    parser.add_argument("--version", action="version", version=f"cosmo {cosmo.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config_help = f"configuration file (default: $COSMO_CONFIG or {DEFAULT_CONFIG})"

    serve_parser = commands.add_parser("serve", help="run the server until SIGINT or SIGTERM")
    serve_parser.add_argument("--config", "-c", metavar="PATH", help=config_help)

    check_parser = commands.add_parser("check", help="validate the configuration and exit")
    check_parser.add_argument("--config", "-c", metavar="PATH", help=config_help)

    phone.add_parser(commands)
    flows_parser = ivr_cli.add_parser(commands)
    flows_parser.add_argument("--config", "-c", metavar="PATH",
                              help=f"{config_help}; its ivr: section gives the flows dir and calendars")
    speech_cli.add_parser(commands)
    commands.add_parser("hash-password", help="read a password (prompted, or one line of stdin) and print "
                                              "its Argon2id hash for web.users in the configuration")
    return parser


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    """Log to stderr at ``level``: through rich on a terminal when installed, plain text otherwise.

    Plain text (one line per record, no colours) is what journald and log files want.
    """
    stream = stream or sys.stderr
    handler: logging.Handler
    if stream.isatty():
        try:
            from rich.console import Console
            from rich.logging import RichHandler
        except ImportError:
            handler = logging.StreamHandler(stream)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        else:
            handler = RichHandler(console=Console(file=stream), rich_tracebacks=True, show_path=False)
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if logging.getLevelName(level) != logging.DEBUG:
        # Alembic reports every migration context at INFO; Cosmo logs what matters itself.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _new_event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (house rule 4), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve(settings: Settings, run: RunFunction | None = None, config_path: Path | None = None) -> int:
    """Run ``run(settings)`` (default: ``cosmo.server.run``) until it returns or a signal arrives.

    SIGINT or SIGTERM cancels the server task, which then stops its services in
    order; a second signal, or ``SHUTDOWN_GRACE_S`` seconds, ends the wait.
    Returns the process exit status.
    """
    if run is None:
        from cosmo.server import run as server_run

        run = functools.partial(server_run, config_path=config_path)
    loop = asyncio.get_running_loop()
    server = asyncio.create_task(run(settings), name="cosmo.server")
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: not waiting for an orderly stop", signal.Signals(signum).name)
            server.cancel()
            return
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    stopper = asyncio.create_task(stop.wait(), name="cosmo.signal")
    try:
        await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not server.done():
            server.cancel()
            done, _ = await asyncio.wait({server}, timeout=SHUTDOWN_GRACE_S)
            if not done:
                log.error("server did not stop within %.0f s", SHUTDOWN_GRACE_S)
                return EXIT_FAILURE
        if server.cancelled():
            log.info("stopped")
            return EXIT_OK
        exc = server.exception()
        if exc is not None:
            log.critical("server failed: %s", exc, exc_info=exc)
            return EXIT_FAILURE
        log.info("server finished")
        return EXIT_OK
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        for signum in signals:
            loop.remove_signal_handler(signum)


def _load(path: Path, out: TextIO) -> Settings | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        return None


def _cmd_check(args: argparse.Namespace) -> int:
    path = _config_path(args.config)
    settings = _load(path, sys.stdout)
    if settings is None:
        return EXIT_FAILURE
    print(f"ok: {path}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    path = _config_path(args.config)
    settings = _load(path, sys.stderr)
    if settings is None:
        print(f"cosmo: refusing to start with {path}", file=sys.stderr)
        return EXIT_FAILURE
    setup_logging(settings.log_level.value)
    log.info("cosmo %s starting node %s with %s", cosmo.__version__, settings.node_name, path)
    try:
        with asyncio.Runner(loop_factory=_new_event_loop_factory()) as runner:
            return runner.run(serve(settings, config_path=path))
    except ImportError as exc:
        log.critical("cannot start the server: %s", exc)
        return EXIT_FAILURE


def _cmd_flows(args: argparse.Namespace) -> int:
    """``cosmo flows``: with the ``ivr:`` settings of the configuration when there is one."""
    path = _config_path(args.config)
    settings = None
    if path.is_file():
        try:
            settings = load_config(path).ivr
        except ConfigError as exc:
            print(f"{path}: not used, it is invalid ({len(exc.problems)} problems; see cosmo check)", file=sys.stderr)
    elif args.config:
        print(f"error: no configuration file {path}", file=sys.stderr)
        return EXIT_USAGE
    return ivr_cli.run(args, settings)


def _cmd_hash_password() -> int:
    """``cosmo hash-password``: the Argon2id hash of a password, for ``web.users[].password``."""
    from cosmo.web.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return EXIT_FAILURE
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: an empty password", file=sys.stderr)
        return EXIT_FAILURE
    print(hash_password(password))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cosmo`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return _cmd_check(args)
    if args.command == "serve":
        return _cmd_serve(args)
    if args.command == "phone":
        return phone.run(args)
    if args.command == "flows":
        return _cmd_flows(args)
    if args.command == "speech":
        return speech_cli.run(args)
    if args.command == "hash-password":
        return _cmd_hash_password()
    parser.print_help(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
