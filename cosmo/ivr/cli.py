"""``cosmo flows``: validate flow files, simulate a call through a flow, print the JSON Schema.

* ``cosmo flows validate [PATH...]`` — every problem as ``file:line:column:
  severity: message``; exit 1 when there are errors, 0 with warnings only;
* ``cosmo flows simulate FLOW --caller N --input 2 --say "billing" ...`` — the
  flow on a :class:`~cosmo.ivr.simulator.SimulatedPort`, step by step;
* ``cosmo flows schema`` — the JSON Schema of flow files, for editors.

:func:`add_parser` adds the commands to the ``cosmo`` parser; :func:`run` runs
the one chosen, with the IVR settings of the configuration when the caller
passes them (calendars, flows directory), else the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cosmo.ivr.errors import IvrError
from cosmo.ivr.flow import Flow
from cosmo.ivr.interpreter import Outcome
from cosmo.ivr.interpreter import run as run_flow
from cosmo.ivr.loader import FlowChecks, LoadResult, PromptExists, load_flow
from cosmo.ivr.port import Input
from cosmo.ivr.problems import Severity
from cosmo.ivr.registry import FlowRegistry
from cosmo.ivr.schema import flow_json_schema
from cosmo.ivr.settings import IvrSettings
from cosmo.ivr.simulator import SimulatedPort, YamlCustomers
from cosmo.ivr.steps import STEP_MODELS, Step

__all__ = ["add_parser", "media_prompts", "run", "simulate", "validate"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_MEDIA = Path("media")
DEFAULT_CUSTOMERS = Path("config/customers.yaml")
_DIGITS = set("0123456789*#")
_KINDS: dict[type, str] = {model: kind for kind, model in STEP_MODELS.items()}


def media_prompts(media_dir: Path) -> PromptExists:
    """``prompt_exists`` for prompt files ``<media_dir>/prompts/<language>/<name>.wav``."""

    def exists(name: str, language: str) -> bool:
        return (media_dir / "prompts" / language / f"{name}.wav").is_file()

    return exists


def _digits(value: str) -> Input:
    if not value:
        return Input("timeout")
    if not set(value) <= _DIGITS:
        raise argparse.ArgumentTypeError(f"keys are 0-9, * and #, got {value!r}")
    return Input("digits", value)


def _speech(value: str) -> Input:
    return Input("speech", value)


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an ISO time like 2026-11-23T03:00 or 2026-11-23T03:00-05:00, "
                                         f"got {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add ``flows`` (validate, simulate, schema) to the ``cosmo`` command's subparsers."""
    parser: argparse.ArgumentParser = subcommands.add_parser("flows", help="validate, simulate and describe IVR flows")
    commands = parser.add_subparsers(dest="flows_command", metavar="COMMAND")
    media_help = f"media directory whose prompts/<language>/ the prompts must be in (default: {DEFAULT_MEDIA})"

    check = commands.add_parser("validate", help="check flow files; exit 1 on errors")
    check.add_argument("paths", nargs="*", metavar="PATH", help="flow files or directories (default: the flows dir)")
    check.add_argument("--media", metavar="DIR", type=Path, default=DEFAULT_MEDIA, help=media_help)
    check.add_argument("--no-prompts", action="store_true", help="do not check that prompt files exist")

    sim = commands.add_parser("simulate", help="run a flow in text mode with scripted caller input")
    sim.add_argument("flow", metavar="FLOW", help="flow name (in the flows dir) or a .yaml file")
    sim.add_argument("--caller", default="+15550100123", help="the caller's number (default: %(default)s)")
    sim.add_argument("--callee", default="+15550100", help="the dialled number (default: %(default)s)")
    sim.add_argument("--input", dest="script", action="append", type=_digits, metavar="KEYS",
                     help="keys the caller presses, e.g. 2 or 1234# (repeat, in order)")
    sim.add_argument("--say", dest="script", action="append", type=_speech, metavar="TEXT",
                     help="words the caller says (repeat, in order with --input)")
    sim.add_argument("--timeout", dest="script", action="append_const", const=Input("timeout"),
                     help="the caller says nothing at this point")
    sim.add_argument("--hangup", dest="script", action="append_const", const=Input("hangup"),
                     help="the caller hangs up at this point")
    sim.add_argument("--customers", type=Path, metavar="FILE",
                     help=f"customers for look-ups (default: {DEFAULT_CUSTOMERS} when present)")
    sim.add_argument("--time", type=_time, metavar="ISO",
                     help="the time of the call (default: now; without an offset: UTC)")
    sim.add_argument("--queue-answer", default="answered",
                     choices=("answered", "abandoned", "overflow", "failed"), help="what a queue step gets back")
    sim.add_argument("--media", metavar="DIR", type=Path, default=DEFAULT_MEDIA, help=media_help)

    commands.add_parser("schema", help="print the JSON Schema of flow files")
    for sub in (check, sim):
        sub.add_argument("--flows-dir", type=Path, metavar="DIR", help="flows directory (default: from the settings)")
    return parser


def run(args: argparse.Namespace, settings: IvrSettings | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``cosmo flows`` command ``args``; returns the exit status."""
    out = out or sys.stdout
    settings = settings or IvrSettings()
    if getattr(args, "flows_dir", None) is not None:
        settings = settings.model_copy(update={"flows_dir": args.flows_dir})
    command = getattr(args, "flows_command", None)
    if command == "schema":
        print(json.dumps(flow_json_schema(), indent=2), file=out)
        return EXIT_OK
    if command == "validate":
        prompts = None if args.no_prompts else _prompt_check(args.media)
        return validate([Path(p) for p in args.paths], settings, prompt_exists=prompts, out=out)
    if command == "simulate":
        customers_file = args.customers
        if customers_file is None and DEFAULT_CUSTOMERS.is_file():
            customers_file = DEFAULT_CUSTOMERS
        return asyncio.run(simulate(
            args.flow, settings, script=args.script or [], caller=args.caller, callee=args.callee,
            customers_file=customers_file, now=args.time, queue_answer=args.queue_answer,
            prompt_exists=_prompt_check(args.media), out=out,
        ))
    print("usage: cosmo flows {validate,simulate,schema} ...", file=sys.stderr)
    return EXIT_USAGE


def _prompt_check(media: Path) -> PromptExists | None:
    if not (media / "prompts").is_dir():
        print(f"cosmo flows: prompts not checked: no directory {media / 'prompts'}", file=sys.stderr)
        return None
    return media_prompts(media)


def _flow_files(paths: Sequence[Path], default: Path) -> list[Path]:
    files: list[Path] = []
    if not paths and not default.is_dir():
        return files
    for path in paths or [default]:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.yaml") if p.is_file()))
        else:
            files.append(path)
    return files


def validate(
    paths: Sequence[Path],
    settings: IvrSettings,
    *,
    prompt_exists: PromptExists | None = None,
    unknown_words: Callable[[str, Sequence[str]], Sequence[str]] | None = None,
    out: TextIO,
) -> int:
    """Validate flow files (directories: their ``*.yaml``; none: the flows dir) and print
    every problem.  Flows named by ``call``/``transfer`` must be files beside them."""
    files = _flow_files(paths, settings.flows_dir)
    if not files:
        print(f"no flow files in {', '.join(str(p) for p in paths or [settings.flows_dir])}", file=out)
        return EXIT_FAILURE
    known = {p.stem for f in files for p in f.parent.glob("*.yaml")} | {f.stem for f in files}
    checks = FlowChecks(prompt_exists=prompt_exists, unknown_words=unknown_words,
                        calendars=frozenset(settings.calendars), flows=frozenset(known),
                        default_language=settings.default_language)
    errors = warnings = 0
    for path in files:
        result = load_flow(path, checks)
        for problem in result.problems:
            print(problem, file=out)
        errors += len(result.errors)
        warnings += len(result.warnings)
    print(f"{len(files)} flow file{'s' if len(files) != 1 else ''} checked: {errors} error{'s' if errors != 1 else ''}, "
          f"{warnings} warning{'s' if warnings != 1 else ''}", file=out)
    return EXIT_FAILURE if errors else EXIT_OK


def _load_for_simulation(name: str, registry: FlowRegistry, out: TextIO) -> Flow | None:
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        checks = registry.checks({p.stem for p in path.parent.glob("*.yaml")} | {path.stem})
        result: LoadResult = load_flow(path, checks)
        problems = result.problems
        flow = result.flow
    else:
        flow = registry.get(name)
        problems = tuple(p for p in registry.problems if Path(p.path).stem == name)
        if flow is None and not problems:
            print(f"no flow {name!r} in {registry.directory}", file=out)
    for problem in problems:
        if flow is None or problem.severity is Severity.ERROR:
            print(problem, file=out)
    return flow


async def simulate(
    name: str,
    settings: IvrSettings,
    *,
    script: Sequence[Input] = (),
    caller: str = "+15550100123",
    callee: str = "+15550100",
    customers_file: Path | None = None,
    now: datetime | None = None,
    queue_answer: str = "answered",
    prompt_exists: PromptExists | None = None,
    out: TextIO,
) -> int:
    """Run the flow ``name`` (or a ``.yaml`` file) on a simulated call and print what happens.

    Returns 0 when the run ends, 1 when the flow cannot be loaded or the run ends in error.
    """

    def say(line: str) -> None:
        print(line, file=out)

    try:
        customers = YamlCustomers.from_file(customers_file, say) if customers_file is not None else None
    except IvrError as exc:
        say(str(exc))
        return EXIT_FAILURE
    if name.endswith((".yaml", ".yml")):
        settings = settings.model_copy(update={"flows_dir": Path(name).parent})
    registry = FlowRegistry(settings, customers=customers, prompt_exists=prompt_exists)
    # The flows beside the simulated one are there for call/transfer; their own
    # problems are not this command's report (the simulated flow's are printed).
    registry_log = logging.getLogger("cosmo.ivr.registry")
    level = registry_log.level
    registry_log.setLevel(logging.CRITICAL)
    try:
        registry.reload()
    finally:
        registry_log.setLevel(level)
    flow = _load_for_simulation(name, registry, out)
    if flow is None:
        return EXIT_FAILURE
    moment = now or datetime.now(UTC)
    port = SimulatedPort(script, caller=caller, callee=callee, language=flow.language, out=say,
                         queue_answer=queue_answer)
    say(f"call {port.call_id} from {caller} to {callee} at {moment.isoformat()}: flow {flow.name}")

    def on_step(current: Flow, node: str, step: Step) -> None:
        say(f"-> {current.name}.{node} ({_KINDS.get(type(step), type(step).__name__)})")

    try:
        result = await run_flow(flow, port, customers=customers, calendars=registry.calendars, flows=registry.get,
                                clock=lambda: moment, max_steps=settings.max_steps,
                                http_timeout_s=settings.http_timeout_s, on_step=on_step)
    finally:
        await registry.close()
    detail = f" ({result.detail})" if result.detail else ""
    say(f"end: {result.outcome.value}{detail} at {result.flow}.{result.node} after {result.steps} steps")
    say(f"call data: {json.dumps(port.data, sort_keys=True, default=str)}")
    if port.script:
        say(f"unused input: {len(port.script)} answer{'s' if len(port.script) != 1 else ''}")
    return EXIT_FAILURE if result.outcome is Outcome.ERROR else EXIT_OK
