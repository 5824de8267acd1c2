"""Persistent storage: SQLAlchemy models, repositories and Alembic migrations.

SQLite by default (``sqlite+aiosqlite:///var/cosmo.db``), PostgreSQL by URL
(``postgresql+asyncpg://user:password@host/cosmo``).  Open a
:class:`Database`, ``await start()`` it (which migrates the schema), then hand
it to the repositories.
"""

from cosmo.store.batch import BatchWriter
from cosmo.store.db import Database
from cosmo.store.errors import (
    MigrationError,
    StoreError,
    StoreNotStarted,
    UnsupportedAlgorithm,
    WriterClosed,
)
from cosmo.store.repositories import (
    AgentCredentials,
    AgentRepository,
    AgentSync,
    Binding,
    CdrRecord,
    CdrRepository,
    EventLogRepository,
    Ha1Table,
    LocationRepository,
    LoggedEvent,
    StoredAgent,
    digest_ha1,
)

__all__ = [
    "AgentCredentials",
    "AgentRepository",
    "AgentSync",
    "BatchWriter",
    "Binding",
    "CdrRecord",
    "CdrRepository",
    "Database",
    "EventLogRepository",
    "Ha1Table",
    "LocationRepository",
    "LoggedEvent",
    "MigrationError",
    "StoreError",
    "StoreNotStarted",
    "StoredAgent",
    "UnsupportedAlgorithm",
    "WriterClosed",
    "digest_ha1",
]
