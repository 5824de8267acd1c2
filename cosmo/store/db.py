"""The database: engine, schema migrations and transactional sessions.

SQLite (the default, through aiosqlite) or PostgreSQL (asyncpg), chosen by
URL.  ``start()`` brings the schema to the newest Alembic revision before
anything else touches it, so a new data directory and an old database are
both ready after it.

SQLite runs in WAL mode (readers do not block the writer) with foreign keys
enforced and a busy timeout, so short write bursts from several tasks wait
instead of failing with "database is locked".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from cosmo.store.errors import MigrationError, StoreError, StoreNotStarted

__all__ = ["MIGRATIONS_DIR", "Database", "alembic_config"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""Alembic's script directory, shipped inside the package."""

SQLITE_BUSY_TIMEOUT_MS = 5000


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for Cosmo's migrations, built without an ini file.

    ``url`` is only needed when Alembic opens its own connection.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal '%' must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.database or "").startswith("file::memory:")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL keeps committed data safe across a crash at NORMAL; only a power
        # loss can drop the last transactions.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """One database, opened by URL (``sqlite+aiosqlite:///var/cosmo.db``, ``postgresql+asyncpg://…``).

    ``start()`` and ``close()`` are idempotent.  Use :meth:`session` for work.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            self._url = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {exc}") from None
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def url(self) -> str:
        """The URL with any password masked, for logs."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        """The engine; raises :class:`StoreNotStarted` before ``start()``."""
        if self._engine is None:
            raise StoreNotStarted("database not started")
        return self._engine

    @property
    def started(self) -> bool:
        """True between ``start()`` and ``close()``."""
        return self._engine is not None

    async def start(self) -> None:
        """Open the engine and migrate the schema to the newest revision.

        For a SQLite file, creates its directory first.  Raises
        :class:`MigrationError` when migrating fails (the engine is closed
        again) and :class:`StoreError` when the database cannot be opened.
        """
        if self._engine is not None:
            return
        engine = self._create_engine()
        try:
            async with engine.begin() as connection:
                await connection.run_sync(self._upgrade)
        except MigrationError:
            await engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(f"cannot open database {self.url}: {exc}") from exc
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        log.info("database %s ready", self.url)

    def _create_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {"echo": self._echo}
        if self.dialect == "sqlite":
            if _is_memory(self._url):
                # One shared connection, else every connection sees its own empty database.
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                path = Path(self._url.database or "")
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create directory for {path}: {exc}") from exc
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_async_engine(self._url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    def _upgrade(self, connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        before = MigrationContext.configure(connection).get_current_revision()
        try:
            command.upgrade(config, "head")
        except Exception as exc:  # Alembic and the DBAPI raise many types; report them as ours.
            raise MigrationError(f"migrating {self.url} failed: {exc}") from exc
        after = MigrationContext.configure(connection).get_current_revision()
        if before != after:
            log.info("database schema migrated %s -> %s", before or "empty", after)

    async def revision(self) -> str | None:
        """The schema revision the database is at (``None`` when empty)."""
        async with self.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on normal exit, rolled back on error."""
        if self._sessions is None:
            raise StoreNotStarted("database not started")
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        """Close every connection.  Safe to call more than once."""
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()
            log.info("database %s closed", self.url)
