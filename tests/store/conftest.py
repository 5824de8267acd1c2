"""Fixtures for the store tests: a migrated database of each kind, SQLite and PostgreSQL.

The PostgreSQL database is the session's (``postgres_url`` in
``tests/postgres.py``: ``COSMO_TEST_POSTGRES_URL`` when set, else a throwaway
cluster); it is emptied (its ``public`` schema dropped and re-created) before
each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cosmo.store import Database
from tests.postgres import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database of each kind (emptied by ``db``)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/data/cosmo.db"
    # Looked up only here, so a run of SQLite tests alone starts no PostgreSQL.
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A started (migrated) database, empty before the test, closed after it."""
    if database_url.startswith("postgresql"):
        await empty_database(database_url)
    database = Database(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()
