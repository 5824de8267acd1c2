"""Fixtures for the store tests: a migrated database, SQLite always, PostgreSQL when given.

Set ``COSMO_TEST_POSTGRES_URL`` (``postgresql+asyncpg://user:pw@127.0.0.1/db``)
to run every store test against PostgreSQL too.  That database is emptied
(its ``public`` schema dropped and re-created) before each test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from cosmo.store import Database

POSTGRES_URL = os.environ.get("COSMO_TEST_POSTGRES_URL")


async def _empty_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            await connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/data/cosmo.db"
    if not POSTGRES_URL:
        pytest.skip("COSMO_TEST_POSTGRES_URL not set")
    return POSTGRES_URL


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A started (migrated) database, closed after the test."""
    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
    database = Database(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()
