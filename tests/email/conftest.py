"""Fixtures of the e-mail tests: a store of each kind, an SMTP sink, Dovecot, an in-process stack.

:class:`Stack` is the e-mail channel as the server builds it, in the test's
process: a SQLite database in the test's directory, the real ACD service and
the real :class:`~cosmo.email.service.EmailService` with its SMTP intake on a
free port and its relay pointed at the sink.  ``restart()`` closes everything
and builds it again on the same files, as a restart of Cosmo would.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from cosmo.acd.service import AcdService
from cosmo.config import Settings, parse_config
from cosmo.email.service import EmailService
from cosmo.events.bus import EventBus
from cosmo.store.customers import CustomerRepository
from cosmo.store.db import Database
from cosmo.store.email import EmailRepository
from tests.email.peers import Dovecot, SmtpSink
from tests.postgres import empty_database

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "email-rules.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A started (migrated) empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/data/cosmo.db"
    else:
        url = request.getfixturevalue("postgres_url")
        await empty_database(url)
    database = Database(url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    """An SMTP sink on a free loopback port (the relay's peer)."""
    server = await SmtpSink().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A throwaway Dovecot IMAP server (skips when dovecot-imapd is not installed)."""
    if not Dovecot.available():
        pytest.skip("dovecot not installed (Debian package dovecot-imapd)")
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.stop()


def settings_for(relay_port: int, email: dict[str, Any] | None = None, **top: Any) -> Settings:
    """Settings with the demo's queues and agents, an SMTP intake on port 0 and the relay at ``relay_port``."""
    section: dict[str, Any] = {
        "smtp": {"host": "127.0.0.1", "port": 0, "max_message_size": 64 * 1024},
        "addresses": {
            "support@example.com": {"queue": "support", "name": "Example Support"},
            "billing@example.com": "billing",
        },
        "relay": {"host": "127.0.0.1", "port": relay_port, "retry_initial_s": 0.3, "retry_max_s": 1.0},
        "rules_file": str(RULES),
        "fsync": False,
        "reply": {"templates": {"thanks": "Hello $name,\n\n$body\n\nThanks, $agent"}},
    }
    section.update(email or {})
    data = {
        "queues": [
            {"name": "support", "skills": {"support": 1}, "wrap_up_s": 0},
            {"name": "billing", "skills": {"billing": 1}, "wrap_up_s": 0},
            {"name": "sales", "skills": {"sales": 1}},
        ],
        "agents": [
            {"extension": "1001", "name": "Ada Lovelace", "password": "x", "skills": {"support": 5, "billing": 2}},
            {"extension": "1002", "name": "Grace Hopper", "password": "x", "skills": {"support": 3}},
        ],
        "email": section,
        **top,
    }
    return parse_config(yaml.safe_dump(data), environ={})


class Stack:
    """The e-mail channel in-process; see the module documentation."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.bus = EventBus()
        self.events: list[Any] = []
        self.db: Database | None = None
        self.acd: AcdService | None = None
        self.email: EmailService | None = None

    async def start(self) -> Stack:
        self.db = Database(f"sqlite+aiosqlite:///{self.root}/cosmo.db")
        await self.db.start()
        self.bus = EventBus()
        self.bus.subscribe("**", self.events.append)
        self.acd = AcdService(self.settings, self.db, self.bus)
        self.email = EmailService(
            self.settings.email, data_dir=self.root, repository=EmailRepository(self.db), acd=self.acd,
            customers=CustomerRepository(self.db), events=self.bus,
            queues=lambda: [q.name for q in self.settings.queues],
            agent_name=lambda ext: agent.name if (agent := self.settings.agent(ext)) else None,
        )
        await self.acd.start()
        await self.email.start()
        return self

    async def close(self) -> None:
        if self.email is not None:
            await self.email.close()
        if self.acd is not None:
            await self.acd.close()
        if self.db is not None:
            await self.db.close()
        self.email = self.acd = self.db = None

    async def restart(self, settings: Settings | None = None) -> Stack:
        await self.close()
        if settings is not None:
            self.settings = settings
        return await self.start()

    @property
    def service(self) -> EmailService:
        assert self.email is not None
        return self.email

    @property
    def repository(self) -> EmailRepository:
        return self.service.repository

    @property
    def smtp_port(self) -> int:
        port = self.service.smtp_port
        assert port is not None
        return port

    async def routed(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` messages have been routed since start."""
        deadline = time.monotonic() + timeout
        while self.service.router.routed < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.service.router.routed} of {count} messages routed after {timeout} s")
            await asyncio.sleep(0.02)

    async def until(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached in {timeout} s")
            await asyncio.sleep(0.05)


@pytest.fixture
async def stack(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Stack]:
    """The e-mail channel in-process, its relay pointed at ``sink``."""
    running = Stack(tmp_path / "node", settings_for(sink.port))
    await running.start()
    try:
        yield running
    finally:
        await running.close()


def message(sender: str = "Jane Doe <jane@customer.example>", to: str = "support@example.com",
            subject: str = "My printer is broken", body: str = "Hello,\nit does not print.\n",
            message_id: str | None = None, **headers: str) -> EmailMessage:
    """A plain customer message."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 09:00:00 +0000"
    if message_id is not None:
        msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def send(port: int, msg: EmailMessage | bytes, *, sender: str = "jane@customer.example",
         to: tuple[str, ...] = ("support@example.com",)) -> dict[str, tuple[int, bytes]]:
    """Send by SMTP (blocking; call it in a thread).  Returns refused recipients."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if isinstance(msg, bytes):
            return client.sendmail(sender, list(to), msg)
        return client.send_message(msg, from_addr=sender, to_addrs=list(to))
