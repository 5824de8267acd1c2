"""What the web room keeps: people who sign in, their sessions, knowledge-base
articles, and the dispositions agents save on interactions.

* :class:`WebUserRepository` – users as configured, with Argon2 hashes only.
* :class:`SessionRepository` – browser sessions by the SHA-256 of their cookie,
  so a leaked database does not hand out working cookies.
* :class:`KnowledgeRepository` – articles, seeded from YAML into an empty table.
* :class:`DispositionRepository` – the wrap-up code and notes an agent saves,
  written onto the interaction the channel stored (``interactions`` by its
  ``ref``, the call id), or stored as an interaction of its own when the
  channel stored none (a caller the IVR did not identify).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import delete, func, or_, select

from cosmo.store.customers import CustomerRepository, InteractionRecord
from cosmo.store.db import Database
from cosmo.store.errors import StoreError
from cosmo.store.models import (
    Interaction,
    KnowledgeArticle,
    WebSessionRow,
    WebUserRow,
    utcnow,
)

__all__ = [
    "Article",
    "Disposition",
    "DispositionRepository",
    "KnowledgeRepository",
    "SessionRepository",
    "StoredSession",
    "StoredUser",
    "WebRepository",
    "WebUserRepository",
]


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A user as stored: the hash of the password, never the password."""

    username: str
    role: str
    name: str
    password_hash: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A sign-in: ``token_hash`` is the SHA-256 (hex) of the cookie value."""

    token_hash: str
    username: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Article:
    """A knowledge-base article."""

    id: int
    title: str
    body: str
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None
    updated_by: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "id": self.id, "title": self.title, "body": self.body, "tags": list(self.tags),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None, "updated_by": self.updated_by,
        }


def _user(row: WebUserRow) -> StoredUser:
    return StoredUser(username=row.username, role=row.role, name=row.name, password_hash=row.password_hash,
                      extension=row.extension)


def _session(row: WebSessionRow) -> StoredSession:
    return StoredSession(token_hash=row.token_hash, username=row.username, csrf_token=row.csrf_token,
                         created_at=row.created_at, expires_at=row.expires_at)


def _article(row: KnowledgeArticle) -> Article:
    return Article(id=row.id, title=row.title, body=row.body, tags=tuple(str(t) for t in row.tags or ()),
                   updated_at=row.updated_at, updated_by=row.updated_by)


class WebUserRepository:
    """Users who sign in, as last loaded from the configuration."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, username: str) -> StoredUser | None:
        """The user called ``username``."""
        async with self._db.session() as session:
            row = await session.get(WebUserRow, username)
            return _user(row) if row is not None else None

    async def all(self) -> list[StoredUser]:
        """Every user, by name."""
        async with self._db.session() as session:
            rows = await session.scalars(select(WebUserRow).order_by(WebUserRow.username))
            return [_user(row) for row in rows]

    async def replace_all(self, users: Sequence[StoredUser]) -> list[str]:
        """Make the stored users exactly ``users`` in one transaction; returns the names removed.

        The sessions of a removed user end with it.
        """
        wanted = {user.username: user for user in users}
        async with self._db.session() as session:
            rows = {row.username: row for row in await session.scalars(select(WebUserRow))}
            removed = sorted(rows.keys() - wanted.keys())
            if removed:
                await session.execute(delete(WebUserRow).where(WebUserRow.username.in_(removed)))
                await session.execute(delete(WebSessionRow).where(WebSessionRow.username.in_(removed)))
            for user in users:
                row = rows.get(user.username)
                if row is None:
                    session.add(WebUserRow(username=user.username, name=user.name, role=user.role,
                                           extension=user.extension, password_hash=user.password_hash))
                    continue
                if (row.name, row.role, row.extension, row.password_hash) != (
                        user.name, user.role, user.extension, user.password_hash):
                    row.name, row.role, row.extension = user.name, user.role, user.extension
                    row.password_hash = user.password_hash
                    row.updated_at = utcnow()
        return removed


class SessionRepository:
    """Browser sessions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, stored: StoredSession) -> None:
        """Store a new session."""
        async with self._db.session() as session:
            session.add(WebSessionRow(token_hash=stored.token_hash, username=stored.username,
                                      csrf_token=stored.csrf_token, created_at=stored.created_at,
                                      expires_at=stored.expires_at))

    async def get(self, token_hash: str) -> StoredSession | None:
        """The session whose cookie hashes to ``token_hash`` (expired or not: the caller checks)."""
        async with self._db.session() as session:
            row = await session.get(WebSessionRow, token_hash)
            return _session(row) if row is not None else None

    async def remove(self, token_hash: str) -> None:
        """End one session (signing out)."""
        async with self._db.session() as session:
            await session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == token_hash))

    async def remove_expired(self, now: datetime) -> int:
        """Forget sessions that expired before ``now``; returns how many."""
        async with self._db.session() as session:
            result = await session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))
            return int(getattr(result, "rowcount", 0) or 0)


class KnowledgeRepository:
    """Knowledge-base articles."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def all(self) -> list[Article]:
        """Every article, by title."""
        async with self._db.session() as session:
            rows = await session.scalars(select(KnowledgeArticle).order_by(KnowledgeArticle.title,
                                                                            KnowledgeArticle.id))
            return [_article(row) for row in rows]

    async def get(self, article_id: int) -> Article | None:
        """One article."""
        async with self._db.session() as session:
            row = await session.get(KnowledgeArticle, article_id)
            return _article(row) if row is not None else None

    async def add(self, title: str, body: str = "", tags: Sequence[str] = (), *, by: str | None = None) -> Article:
        """Store a new article."""
        async with self._db.session() as session:
            row = KnowledgeArticle(title=title, body=body, tags=list(tags), updated_by=by)
            session.add(row)
            await session.flush()
            return _article(row)

    async def update(self, article_id: int, *, title: str, body: str, tags: Sequence[str],
                     by: str | None = None) -> Article | None:
        """Replace an article's text and tags; ``None`` when there is no such article."""
        async with self._db.session() as session:
            row = await session.get(KnowledgeArticle, article_id)
            if row is None:
                return None
            row.title, row.body, row.tags, row.updated_by = title, body, list(tags), by
            row.updated_at = utcnow()
            await session.flush()
            return _article(row)

    async def remove(self, article_id: int) -> bool:
        """Delete an article; False when there was none."""
        async with self._db.session() as session:
            result = await session.execute(delete(KnowledgeArticle).where(KnowledgeArticle.id == article_id))
            return bool(getattr(result, "rowcount", 0))

    async def count(self) -> int:
        """How many articles are stored."""
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(KnowledgeArticle)) or 0)

    async def seed(self, path: Path) -> int:
        """Load articles from a YAML list into an empty table (the demo's); returns how many.

        Each entry has a ``title``, a ``body`` and ``tags``.  Does nothing when
        articles exist already.  Raises :class:`StoreError` for a malformed file.
        """
        if await self.count():
            return 0
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StoreError(f"{path}: cannot load articles: {exc}") from None
        if not isinstance(entries, list):
            raise StoreError(f"{path}: expected a list of articles")
        for index, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not isinstance(entry.get("title"), str) or not entry["title"]:
                raise StoreError(f"{path}: article {index}: needs a title")
            tags = entry.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise StoreError(f"{path}: article {index}: tags must be a list of words")
            unknown = set(entry) - {"title", "body", "tags"}
            if unknown:
                raise StoreError(f"{path}: article {index}: unknown field(s) {', '.join(sorted(unknown))}")
        for entry in entries:
            await self.add(entry["title"], str(entry.get("body") or ""), entry.get("tags", []), by="seed")
        return len(entries)


@dataclass(frozen=True, slots=True)
class Disposition:
    """What an agent saves at wrap-up for one interaction."""

    ref: str
    """The interaction in its channel: the call id, the e-mail's id."""
    agent: str
    channel: str
    disposition: str
    notes: str = ""
    customer_id: int | None = None
    queue: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    data: dict[str, object] = field(default_factory=dict)


class DispositionRepository:
    """Dispositions on interactions; new interactions through :class:`CustomerRepository`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._customers = CustomerRepository(database)

    async def update(self, disposition: Disposition) -> int | None:
        """Write the disposition onto the interaction stored for ``ref`` by this agent (or by no
        agent); returns its id, or ``None`` when the channel has stored none (yet)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(Interaction)
                .where(Interaction.ref == disposition.ref,
                       or_(Interaction.agent == disposition.agent, Interaction.agent.is_(None)))
                .order_by(Interaction.id.desc()).limit(1)
            )
            if row is None:
                return None
            row.disposition = disposition.disposition
            row.notes = disposition.notes
            row.agent = disposition.agent
            if row.customer_id is None and disposition.customer_id is not None:
                row.customer_id = disposition.customer_id
            await session.flush()
            return row.id

    async def add(self, disposition: Disposition) -> int:
        """Store the disposition as an interaction of its own (the channel stored none)."""
        started = disposition.started_at or utcnow()
        return await self._customers.add_interaction(InteractionRecord(
            channel=disposition.channel, ref=disposition.ref, started_at=started,
            ended_at=disposition.ended_at or utcnow(), customer_id=disposition.customer_id,
            queue=disposition.queue, agent=disposition.agent, outcome="handled",
            disposition=disposition.disposition, notes=disposition.notes, data=dict(disposition.data),
        ))


class WebRepository:
    """The web room's repositories on one database."""

    def __init__(self, database: Database) -> None:
        self.users = WebUserRepository(database)
        self.sessions = SessionRepository(database)
        self.knowledge = KnowledgeRepository(database)
        self.dispositions = DispositionRepository(database)
