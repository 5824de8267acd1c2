"""The flows a node serves, and their hot reload: :class:`FlowRegistry`.

Theory of operation
-------------------
Every ``*.yaml`` of the flows directory is a flow named by its file
(``main.yaml`` is ``main``).  :meth:`FlowRegistry.reload` compares each file's
size and modification time with what was loaded; a changed file is validated
whole:

* valid: its new :class:`~cosmo.ivr.flow.Flow` replaces the old in one
  assignment; calls already in the flow keep the object they started with;
* invalid: it is refused, its problems are logged and kept in
  :attr:`FlowRegistry.problems`, and the previous version (if any) keeps
  serving;
* deleted: the flow is no longer served (a number that names it falls back to
  its queue).

Files refused for naming an unknown flow are checked again when flows come or
go.  :meth:`FlowRegistry.start` runs the check every ``reload_interval_s``;
validating a small file takes milliseconds, so it runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from cosmo.ivr.errors import FlowNotFound
from cosmo.ivr.flow import Flow
from cosmo.ivr.hours import BusinessCalendar, Clock, calendars_of, system_clock
from cosmo.ivr.interpreter import CustomerDirectory, FlowResult, run
from cosmo.ivr.loader import FlowChecks, PromptExists, UnknownWords, load_flow
from cosmo.ivr.port import CallPort
from cosmo.ivr.problems import Problem
from cosmo.ivr.settings import IvrSettings

__all__ = ["FlowRegistry", "ReloadReport"]

log = logging.getLogger(__name__)

HttpSessionFactory = Callable[[], aiohttp.ClientSession]
_Stamp = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What one :meth:`FlowRegistry.reload` changed."""

    loaded: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.refused or self.removed)


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class FlowRegistry:
    """The current flow of each name, reloaded when its file changes."""

    def __init__(
        self,
        settings: IvrSettings,
        *,
        customers: CustomerDirectory | None = None,
        prompt_exists: PromptExists | None = None,
        unknown_words: UnknownWords | None = None,
        http_session_factory: HttpSessionFactory | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.customers = customers
        self.prompt_exists = prompt_exists
        self.unknown_words = unknown_words
        self.clock = clock
        self.calendars: dict[str, BusinessCalendar] = calendars_of(settings.calendars.items())
        self._http_factory = http_session_factory or aiohttp.ClientSession
        self._http: aiohttp.ClientSession | None = None
        self._flows: dict[str, Flow] = {}
        self._stamps: dict[Path, _Stamp] = {}
        self._problems: dict[Path, tuple[Problem, ...]] = {}
        self._refused: set[Path] = set()
        self._watcher: asyncio.Task[None] | None = None

    # ---- reading -------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return self.settings.flows_dir

    def get(self, name: str) -> Flow | None:
        """The current flow ``name``, or ``None``."""
        return self._flows.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._flows

    def names(self) -> list[str]:
        """The names of the flows served, sorted."""
        return sorted(self._flows)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The problems of every file as last read: errors of refused files, warnings of loaded ones."""
        return tuple(problem for path in sorted(self._problems) for problem in self._problems[path])

    def checks(self, flows: set[str]) -> FlowChecks:
        """What a file of this registry is validated against (``flows``: the names known)."""
        return FlowChecks(
            prompt_exists=self.prompt_exists, unknown_words=self.unknown_words,
            calendars=frozenset(self.settings.calendars), flows=frozenset(flows),
            default_language=self.settings.default_language,
        )

    def load(self) -> ReloadReport:
        """Read every flow file (the first time; later the changed ones)."""
        report = self.reload()
        log.info("IVR flows from %s: %s%s", self.directory, ", ".join(self.names()) or "none",
                 f"; refused: {', '.join(report.refused)}" if report.refused else "")
        return report

    def reconfigure(self, settings: IvrSettings) -> ReloadReport:
        """New ``ivr`` settings (a configuration reload): every flow file is checked again
        against them (calendars, default language); one that no longer passes is refused
        and its last good version keeps serving, as with an edited file."""
        self.settings = settings
        self._stamps = {path: (-1, -1) for path in self._stamps}  # no file has this stamp
        return self.reload()

    def reload(self) -> ReloadReport:
        """Read the files that changed since the last look; see the module notes."""
        try:
            files = sorted(path for path in self.directory.glob("*.yaml") if path.is_file())
        except OSError as exc:
            log.error("IVR flows: cannot read %s: %s", self.directory, exc)
            return ReloadReport()
        if not files and not self._stamps and not self.directory.is_dir():
            log.warning("IVR flows: no directory %s", self.directory)
        stamps = {path: stamp for path in files if (stamp := _stamp(path)) is not None}
        names = {path.stem for path in stamps}
        removed: list[str] = []
        for path in [path for path in self._stamps if path not in stamps]:
            del self._stamps[path]
            self._problems.pop(path, None)
            self._refused.discard(path)
            if self._flows.pop(path.stem, None) is not None:
                removed.append(path.stem)
                log.warning("IVR flow %s removed: %s is gone", path.stem, path)
        known_before = {path.stem for path in self._stamps}
        todo = [path for path, stamp in stamps.items() if self._stamps.get(path) != stamp]
        if names - known_before or removed:
            # New or removed names can make refused files valid or not: check those again.
            todo.extend(path for path in sorted(self._refused) if path in stamps and path not in todo)
        loaded: list[str] = []
        refused: list[str] = []
        checks = self.checks(names)
        for path in todo:
            self._stamps[path] = stamps[path]
            if self._load(path, checks):
                loaded.append(path.stem)
            else:
                refused.append(path.stem)
        return ReloadReport(tuple(loaded), tuple(refused), tuple(removed))

    def _load(self, path: Path, checks: FlowChecks) -> bool:
        result = load_flow(path, checks)
        self._problems[path] = result.problems
        name = path.stem
        if result.flow is None:
            self._refused.add(path)
            keeps = "the previous version keeps serving" if name in self._flows else "not served"
            count = len(result.errors)
            log.error("IVR flow %s refused (%d error%s), %s:", name, count, "" if count == 1 else "s", keeps)
            for problem in result.errors:
                log.error("  %s", problem)
            return False
        self._refused.discard(path)
        for problem in result.warnings:
            log.warning("%s", problem)
        old = self._flows.get(name)
        self._flows[name] = result.flow
        if old is None:
            log.info("IVR flow %s loaded (%d nodes)", name, len(result.flow.nodes))
        elif old.digest != result.flow.digest:
            log.info("IVR flow %s reloaded (%d nodes); calls in progress keep the version they started with",
                     name, len(result.flow.nodes))
        return True

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the flows (when not loaded yet) and watch the directory; idempotent."""
        if self._watcher is not None:
            return
        if not self._stamps:
            self.load()
        self._watcher = asyncio.create_task(self._watch(), name="ivr-flows-watch")

    async def close(self) -> None:
        """Stop watching and close the HTTP session; idempotent."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                self.reload()
            except Exception:  # the root of the watch task: keep watching
                log.exception("IVR flows: reload of %s failed", self.directory)

    # ---- running -------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = self._http_factory()
        return self._http

    async def run(self, name: str, port: CallPort) -> FlowResult:
        """Run the current flow ``name`` on ``port`` (the flow object is held for the
        whole run).  Raises :class:`FlowNotFound` when no such flow is served."""
        flow = self.get(name)
        if flow is None:
            raise FlowNotFound(name)
        return await run(
            flow, port, customers=self.customers, http=self._session(), calendars=self.calendars,
            flows=self.get, clock=self.clock, max_steps=self.settings.max_steps,
            http_timeout_s=self.settings.http_timeout_s,
        )

