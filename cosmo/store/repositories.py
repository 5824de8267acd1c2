"""Repositories: the operations the rest of Cosmo performs on the store.

Each method runs in its own transaction on a :class:`~cosmo.store.db.Database`
and takes and returns plain frozen dataclasses, never ORM objects, so callers
never hold a session.  Times are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from cosmo.store.db import Database
from cosmo.store.errors import UnsupportedAlgorithm
from cosmo.store.models import (
    Agent,
    AgentStateRow,
    Cdr,
    EventLogEntry,
    Registration,
    WorkItemRow,
    utcnow,
)

__all__ = [
    "AgentCredentials",
    "AgentRepository",
    "AgentSync",
    "Binding",
    "CdrRecord",
    "CdrRepository",
    "EventLogRepository",
    "Ha1Table",
    "LocationRepository",
    "LoggedEvent",
    "StoredAgent",
    "digest_ha1",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- agents


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class AgentCredentials(Protocol):
    """What the store needs of a configured agent (``cosmo.config.AgentSettings`` fits)."""

    @property
    def extension(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def password(self) -> _Secret: ...

    @property
    def skills(self) -> Mapping[str, int]: ...


_HASHES = {"MD5": "md5", "SHA-256": "sha256"}


def _base_algorithm(algorithm: str) -> str:
    """``MD5``/``SHA-256`` for any spelling, with or without ``-sess`` (RFC 8760 §2)."""
    name = algorithm.strip().upper()
    # -sess variants hash the same HA1 again with the nonces (RFC 7616 §3.4.2).
    name = name.removesuffix("-SESS")
    if name not in _HASHES:
        raise UnsupportedAlgorithm(f"unsupported digest algorithm {algorithm!r}")
    return name


def digest_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)`` in lower-case hex (RFC 7616 §3.4.2).

    Raises :class:`UnsupportedAlgorithm` for anything but MD5 and SHA-256.
    """
    name = _HASHES[_base_algorithm(algorithm)]
    return hashlib.new(name, f"{username}:{realm}:{password}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """An agent as stored (without HA1s)."""

    extension: str
    name: str
    realm: str
    skills: Mapping[str, int]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Ha1Table:
    """Every agent's HA1s in memory, for a digest check that must not wait on the database.

    ``lookup`` has the shape of ``cosmo.sip.auth.LookupHa1``.  Load a new table
    after each :meth:`AgentRepository.sync_from_config`.
    """

    entries: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    """extension -> (realm, HA1 MD5, HA1 SHA-256)."""

    def lookup(self, username: str, realm: str, algorithm: str) -> str | None:
        """The HA1 of ``username`` in ``realm`` for ``algorithm``; ``None`` when unknown."""
        entry = self.entries.get(username)
        if entry is None or entry[0] != realm:
            return None
        try:
            base = _base_algorithm(algorithm)
        except UnsupportedAlgorithm:
            return None
        return entry[1] if base == "MD5" else entry[2]

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class AgentSync:
    """What :meth:`AgentRepository.sync_from_config` changed."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


class AgentRepository:
    """Agents and their digest HA1s.  The configuration file is the source of truth."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def sync_from_config(self, agents: Iterable[AgentCredentials], realm: str) -> AgentSync:
        """Make the table equal to ``agents``: add, update, and remove the ones gone.

        HA1s are computed for ``realm`` (the SIP domain) and the extension as
        the digest user name; the plain password is never stored.
        """
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        wanted = {agent.extension: agent for agent in agents}
        async with self._db.session() as session:
            stored = {row.extension: row for row in (await session.scalars(select(Agent))).all()}
            for extension, agent in wanted.items():
                password = agent.password.get_secret_value()
                values = {
                    "name": agent.name,
                    "realm": realm,
                    "ha1_md5": digest_ha1(extension, realm, password, "MD5"),
                    "ha1_sha256": digest_ha1(extension, realm, password, "SHA-256"),
                    "skills": dict(agent.skills),
                }
                row = stored.get(extension)
                if row is None:
                    session.add(Agent(extension=extension, **values))
                    added.append(extension)
                elif any(getattr(row, key) != value for key, value in values.items()):
                    for key, value in values.items():
                        setattr(row, key, value)
                    updated.append(extension)
                else:
                    unchanged.append(extension)
            removed = sorted(set(stored) - set(wanted))
            if removed:
                await session.execute(delete(Agent).where(Agent.extension.in_(removed)))
        result = AgentSync(tuple(added), tuple(updated), tuple(removed), tuple(unchanged))
        log.info(
            "agents synced: %d added, %d updated, %d removed, %d unchanged",
            len(added), len(updated), len(removed), len(unchanged),
        )
        return result

    async def get_ha1(self, extension: str, algorithm: str) -> str | None:
        """The HA1 of ``extension`` for ``algorithm`` (``MD5``, ``SHA-256``, or their ``-sess``).

        ``None`` for an unknown extension.  Raises :class:`UnsupportedAlgorithm`.
        """
        column = Agent.ha1_md5 if _base_algorithm(algorithm) == "MD5" else Agent.ha1_sha256
        async with self._db.session() as session:
            return await session.scalar(select(column).where(Agent.extension == extension))

    async def ha1_table(self) -> Ha1Table:
        """Every agent's HA1s, loaded at once into memory."""
        async with self._db.session() as session:
            rows = await session.execute(select(Agent.extension, Agent.realm, Agent.ha1_md5, Agent.ha1_sha256))
            return Ha1Table({ext: (realm, md5, sha) for ext, realm, md5, sha in rows})

    async def get(self, extension: str) -> StoredAgent | None:
        """The stored agent with ``extension``."""
        async with self._db.session() as session:
            row = await session.get(Agent, extension)
            return None if row is None else _agent(row)

    async def all(self) -> list[StoredAgent]:
        """Every stored agent, by extension."""
        async with self._db.session() as session:
            rows = await session.scalars(select(Agent).order_by(Agent.extension))
            return [_agent(row) for row in rows]


def _agent(row: Agent) -> StoredAgent:
    return StoredAgent(row.extension, row.name, row.realm, dict(row.skills), row.updated_at)


# --------------------------------------------------------------------------- location


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record (RFC 3261 §10.3)."""

    aor: str
    contact: str
    expires_at: datetime
    call_id: str
    cseq: int
    source_transport: str
    source_host: str
    source_port: int
    instance_id: str | None = None
    reg_id: int | None = None
    user_agent: str | None = None
    path: tuple[str, ...] = ()
    q: float | None = None
    created_at: datetime | None = None
    """Set by the store when the binding was first made; kept across refreshes."""

    def expires_in(self, now: datetime) -> int:
        """Seconds left at ``now`` (for the ``expires`` parameter of a 200 OK), never negative."""
        return max(0, int((self.expires_at - now).total_seconds()))


def _binding(row: Registration) -> Binding:
    return Binding(
        aor=row.aor,
        contact=row.contact,
        expires_at=row.expires_at,
        call_id=row.call_id,
        cseq=row.cseq,
        source_transport=row.source_transport,
        source_host=row.source_host,
        source_port=row.source_port,
        instance_id=row.instance_id,
        reg_id=row.reg_id,
        user_agent=row.user_agent,
        path=tuple(row.path or ()),
        q=row.q,
        created_at=row.created_at,
    )


def _upsert(dialect: str, values: dict[str, Any], update: dict[str, Any]) -> Insert | None:
    """``INSERT … ON CONFLICT (aor, contact) DO UPDATE`` where the dialect has it."""
    if dialect == "sqlite":
        stmt_sqlite = sqlite.insert(Registration).values(**values)
        return stmt_sqlite.on_conflict_do_update(index_elements=["aor", "contact"], set_=update)
    if dialect == "postgresql":
        stmt_pg = postgresql.insert(Registration).values(**values)
        return stmt_pg.on_conflict_do_update(index_elements=["aor", "contact"], set_=update)
    return None


class LocationRepository:
    """The location service's bindings (who is reachable where), kept across restarts."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def upsert_binding(self, binding: Binding) -> Binding:
        """Add the binding, or refresh the one with the same AOR and contact.

        Returns it as stored (``created_at`` filled in, kept from the first time).
        """
        created_at = binding.created_at or utcnow()
        values: dict[str, Any] = {
            "aor": binding.aor,
            "contact": binding.contact,
            "expires_at": binding.expires_at,
            "call_id": binding.call_id,
            "cseq": binding.cseq,
            "source_transport": binding.source_transport,
            "source_host": binding.source_host,
            "source_port": binding.source_port,
            "instance_id": binding.instance_id,
            "reg_id": binding.reg_id,
            "user_agent": binding.user_agent,
            "path": list(binding.path),
            "q": binding.q,
        }
        update = dict(values)
        del update["aor"], update["contact"]
        async with self._db.session() as session:
            stmt = _upsert(self._db.dialect, {**values, "created_at": created_at}, update)
            if stmt is not None:
                await session.execute(stmt)
            else:
                row = await session.scalar(
                    select(Registration).where(
                        Registration.aor == binding.aor, Registration.contact == binding.contact
                    )
                )
                if row is None:
                    session.add(Registration(**values, created_at=created_at))
                else:
                    for key, value in update.items():
                        setattr(row, key, value)
            await session.flush()
            stored = await session.scalar(
                select(Registration)
                .where(Registration.aor == binding.aor, Registration.contact == binding.contact)
                .execution_options(populate_existing=True)
            )
            assert stored is not None
            return _binding(stored)

    async def remove_binding(self, aor: str, contact: str) -> bool:
        """Remove one binding; ``True`` when it existed."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(Registration).where(Registration.aor == aor, Registration.contact == contact)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def remove_all(self, aor: str) -> int:
        """Remove every binding of ``aor`` (``Contact: *``, RFC 3261 §10.3 step 6); returns how many."""
        async with self._db.session() as session:
            result = await session.execute(delete(Registration).where(Registration.aor == aor))
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def bindings(self, aor: str, now: datetime) -> list[Binding]:
        """The bindings of ``aor`` still valid at ``now``, highest ``q`` first, then oldest."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(Registration)
                .where(Registration.aor == aor, Registration.expires_at > now)
                .order_by(func.coalesce(Registration.q, 1.0).desc(), Registration.created_at, Registration.id)
            )
            return [_binding(row) for row in rows]

    async def all_bindings(self, now: datetime) -> list[Binding]:
        """Every binding still valid at ``now``, by AOR."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(Registration)
                .where(Registration.expires_at > now)
                .order_by(Registration.aor, Registration.created_at, Registration.id)
            )
            return [_binding(row) for row in rows]

    async def purge_expired(self, now: datetime) -> list[Binding]:
        """Remove the bindings expired at ``now`` and return them (to announce unregistrations)."""
        async with self._db.session() as session:
            rows = list(
                await session.scalars(
                    select(Registration).where(Registration.expires_at <= now).order_by(Registration.id)
                )
            )
            if rows:
                await session.execute(delete(Registration).where(Registration.id.in_([r.id for r in rows])))
            return [_binding(row) for row in rows]


# --------------------------------------------------------------------------- CDRs


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """A call detail record."""

    call_id: str
    direction: str
    """``inbound`` or ``outbound``."""
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    started_at: datetime
    ended_at: datetime
    end_reason: str
    trunk: str | None = None
    answered_at: datetime | None = None
    hangup_by: str | None = None
    """``caller``, ``callee`` or ``system``, when known."""
    sip_status: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    """Set when read back from the store."""

    @property
    def duration_s(self) -> float:
        """From start to end, in seconds."""
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def talk_s(self) -> float:
        """From answer to end, in seconds (0 when never answered)."""
        if self.answered_at is None:
            return 0.0
        return (self.ended_at - self.answered_at).total_seconds()

    def _values(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "trunk": self.trunk,
            "from_uri": self.from_uri,
            "to_uri": self.to_uri,
            "caller": self.caller,
            "callee": self.callee,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "hangup_by": self.hangup_by,
            "sip_status": self.sip_status,
            "extra": dict(self.extra),
        }


def _cdr(row: Cdr) -> CdrRecord:
    return CdrRecord(
        call_id=row.call_id,
        direction=row.direction,
        from_uri=row.from_uri,
        to_uri=row.to_uri,
        caller=row.caller,
        callee=row.callee,
        started_at=row.started_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        trunk=row.trunk,
        answered_at=row.answered_at,
        hangup_by=row.hangup_by,
        sip_status=row.sip_status,
        extra=dict(row.extra),
        id=row.id,
    )


class CdrRepository:
    """Call detail records.  At high call rates write through a :class:`BatchWriter`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, record: CdrRecord) -> int:
        """Store one record; returns its id."""
        async with self._db.session() as session:
            row = Cdr(**record._values())
            session.add(row)
            await session.flush()
            return row.id

    async def add_many(self, records: Sequence[CdrRecord]) -> None:
        """Store many records in one transaction (one ``executemany``)."""
        if not records:
            return
        async with self._db.session() as session:
            await session.execute(insert(Cdr), [record._values() for record in records])

    async def recent(self, limit: int = 100) -> list[CdrRecord]:
        """The newest records by start time, newest first."""
        async with self._db.session() as session:
            rows = await session.scalars(select(Cdr).order_by(Cdr.started_at.desc(), Cdr.id.desc()).limit(limit))
            return [_cdr(row) for row in rows]

    async def for_call(self, call_id: str) -> list[CdrRecord]:
        """The records of one Call-ID, oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(select(Cdr).where(Cdr.call_id == call_id).order_by(Cdr.id))
            return [_cdr(row) for row in rows]


# --------------------------------------------------------------------------- event log


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One entry of the event log: when, which topic, and the event as JSON data."""

    ts: datetime
    type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    """Set when read back from the store."""

    @classmethod
    def at(cls, timestamp: float, type: str, payload: Mapping[str, Any]) -> LoggedEvent:
        """An entry for a POSIX ``timestamp`` (what events carry as ``ts``)."""
        return cls(datetime.fromtimestamp(timestamp, UTC), type, payload)


class EventLogRepository:
    """The append-only event log that reports are computed from."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def append_many(self, events: Sequence[LoggedEvent]) -> None:
        """Append ``events`` in one transaction, in order."""
        if not events:
            return
        async with self._db.session() as session:
            await session.execute(
                insert(EventLogEntry),
                [{"ts": e.ts, "type": e.type, "payload": dict(e.payload)} for e in events],
            )

    async def read(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[LoggedEvent]:
        """Entries in append order, filtered by time (``since`` ≤ ts < ``until``), type and id."""
        query = select(EventLogEntry).order_by(EventLogEntry.id)
        if since is not None:
            query = query.where(EventLogEntry.ts >= since)
        if until is not None:
            query = query.where(EventLogEntry.ts < until)
        if types:
            query = query.where(EventLogEntry.type.in_(list(types)))
        if after_id is not None:
            query = query.where(EventLogEntry.id > after_id)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.session() as session:
            rows = await session.scalars(query)
            return [LoggedEvent(row.ts, row.type, dict(row.payload), row.id) for row in rows]


# --------------------------------------------------------------------------- ACD


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A durable work item as stored (see ``cosmo.acd.WorkItem``)."""

    id: str
    channel: str
    queue: str
    priority: int
    skills: Mapping[str, int]
    enqueued_at: float
    data: Mapping[str, Any]
    agent: str | None = None


class AcdRepository:
    """Agent states and durable work items: what the ACD restores after a restart."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def agent_states(self) -> dict[str, dict[str, Any]]:
        """Every stored agent snapshot by extension."""
        async with self._db.session() as session:
            rows = await session.scalars(select(AgentStateRow))
            return {row.extension: dict(row.snapshot) for row in rows}

    async def save_agent_states(self, snapshots: Sequence[Mapping[str, Any]]) -> None:
        """Store the snapshots (each with its ``extension``), replacing older ones."""
        if not snapshots:
            return
        async with self._db.session() as session:
            for snapshot in snapshots:
                await session.merge(
                    AgentStateRow(extension=str(snapshot["extension"]), snapshot=dict(snapshot), updated_at=utcnow())
                )

    async def items(self) -> list[StoredItem]:
        """Stored items in queue order (enqueue time, then id)."""
        async with self._db.session() as session:
            rows = await session.scalars(select(WorkItemRow).order_by(WorkItemRow.enqueued_at, WorkItemRow.id))
            return [
                StoredItem(row.id, row.channel, row.queue, row.priority, dict(row.skills), row.enqueued_at,
                           dict(row.data), row.agent)
                for row in rows
            ]

    async def add_item(self, item: StoredItem) -> None:
        """Store a new item (before it is queued: a crash after this loses nothing)."""
        async with self._db.session() as session:
            session.add(WorkItemRow(
                id=item.id, channel=item.channel, queue=item.queue, priority=item.priority,
                skills=dict(item.skills), enqueued_at=item.enqueued_at, data=dict(item.data), agent=item.agent,
            ))

    async def update_item(self, item_id: str, **values: Any) -> None:
        """Change an item's ``queue`` or ``agent``."""
        async with self._db.session() as session:
            await session.execute(update(WorkItemRow).where(WorkItemRow.id == item_id).values(**values))

    async def remove_item(self, item_id: str) -> None:
        """Forget a finished, removed or delivered item."""
        async with self._db.session() as session:
            await session.execute(delete(WorkItemRow).where(WorkItemRow.id == item_id))
