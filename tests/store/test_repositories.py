"""Tests of cosmo.store against a real database (SQLite; PostgreSQL when configured)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from cosmo.config import parse_config
from cosmo.store import (
    AgentRepository,
    Binding,
    CdrRecord,
    CdrRepository,
    Database,
    EventLogRepository,
    LocationRepository,
    LoggedEvent,
    StoreError,
    StoreNotStarted,
    UnsupportedAlgorithm,
    digest_ha1,
)
from cosmo.store.db import alembic_config
from cosmo.store.models import Agent, Base

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
REALM = "cosmo.local"


@dataclass(frozen=True)
class FakeAgent:
    extension: str
    name: str
    password: SecretStr
    skills: dict[str, int] = field(default_factory=dict)


def agent(extension: str, password: str = "pw", **skills: int) -> FakeAgent:
    return FakeAgent(extension, f"Agent {extension}", SecretStr(password), dict(skills))


def binding(contact: str = "sip:1001@127.0.0.1:5070", aor: str = "sip:1001@cosmo.local", **changes: object) -> Binding:
    base = Binding(
        aor=aor,
        contact=contact,
        expires_at=NOW + timedelta(seconds=600),
        call_id="reg-1@127.0.0.1",
        cseq=1,
        source_transport="udp",
        source_host="127.0.0.1",
        source_port=5070,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def cdr(call_id: str = "c1", minute: int = 0, **changes: object) -> CdrRecord:
    start = NOW + timedelta(minutes=minute)
    base = CdrRecord(
        call_id=call_id,
        direction="inbound",
        from_uri="sip:+15551234@127.0.0.1",
        to_uri="sip:+15550100@cosmo.local",
        caller="+15551234",
        callee="+15550100",
        started_at=start,
        answered_at=start + timedelta(seconds=5),
        ended_at=start + timedelta(seconds=65),
        end_reason="normal",
        trunk="demo",
        hangup_by="caller",
        sip_status=200,
        extra={"queue": "support", "agent": "1001"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- database


async def test_start_creates_data_dir_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cosmo.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert not db.started
    await db.start()
    await db.start()  # idempotent
    try:
        assert path.exists()
        assert await db.revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
        async with db.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await db.close()
        await db.close()  # idempotent
    assert not db.started


async def test_schema_matches_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        diffs = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diffs == []


async def test_session_before_start_is_refused() -> None:
    db = Database("sqlite+aiosqlite://")
    with pytest.raises(StoreNotStarted):
        async with db.session():
            pass
    with pytest.raises(StoreNotStarted):
        _ = db.engine


async def test_in_memory_database_is_shared_between_sessions() -> None:
    db = Database("sqlite+aiosqlite://")
    await db.start()
    try:
        await CdrRepository(db).add(cdr())
        assert len(await CdrRepository(db).recent()) == 1
    finally:
        await db.close()


def test_bad_url() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Database("not a url")


async def test_url_hides_password() -> None:
    db = Database("postgresql+asyncpg://cosmo:s3cret@127.0.0.1/cosmo")
    assert "s3cret" not in db.url
    assert db.dialect == "postgresql"


async def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            session.add(Agent(extension="9", name="x", realm=REALM, ha1_md5="a", ha1_sha256="b", skills={}))
            await session.flush()
            raise RuntimeError("boom")
    assert await AgentRepository(db).get("9") is None


async def test_data_survives_restart(database_url: str, db: Database) -> None:
    await LocationRepository(db).upsert_binding(binding())
    await db.close()
    again = Database(database_url)
    await again.start()
    try:
        assert [b.contact for b in await LocationRepository(again).bindings("sip:1001@cosmo.local", NOW)] == [
            "sip:1001@127.0.0.1:5070"
        ]
    finally:
        await again.close()


# --------------------------------------------------------------------------- agents


def test_digest_ha1_values() -> None:
    assert digest_ha1("1001", REALM, "secret1001") == hashlib.md5(b"1001:cosmo.local:secret1001").hexdigest()
    assert (
        digest_ha1("1001", REALM, "secret1001", "SHA-256")
        == hashlib.sha256(b"1001:cosmo.local:secret1001").hexdigest()
    )
    # RFC 7616 §3.9.1 example: Mufasa / http-auth@example.org / Circle of Life.
    assert digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256-sess") == (
        hashlib.sha256(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    )
    with pytest.raises(UnsupportedAlgorithm, match="unsupported digest algorithm 'SHA-512'"):
        digest_ha1("a", "b", "c", "SHA-512")


async def test_agent_sync_adds_updates_removes(db: Database) -> None:
    repo = AgentRepository(db)
    result = await repo.sync_from_config([agent("1001", support=5), agent("1002"), agent("1003")], REALM)
    assert (result.added, result.updated, result.removed) == (("1001", "1002", "1003"), (), ())

    result = await repo.sync_from_config(
        [agent("1001", support=5), agent("1002", "new-password"), agent("1004", sales=1)], REALM
    )
    assert result.added == ("1004",)
    assert result.updated == ("1002",)
    assert result.removed == ("1003",)
    assert result.unchanged == ("1001",)

    stored = await repo.all()
    assert [(a.extension, dict(a.skills)) for a in stored] == [
        ("1001", {"support": 5}),
        ("1002", {}),
        ("1004", {"sales": 1}),
    ]
    assert await repo.get_ha1("1002", "MD5") == hashlib.md5(b"1002:cosmo.local:new-password").hexdigest()
    assert await repo.get("1003") is None


async def test_agent_ha1_lookup(db: Database) -> None:
    repo = AgentRepository(db)
    await repo.sync_from_config([agent("1001", "secret1001")], REALM)
    md5 = hashlib.md5(b"1001:cosmo.local:secret1001").hexdigest()
    sha = hashlib.sha256(b"1001:cosmo.local:secret1001").hexdigest()
    assert await repo.get_ha1("1001", "MD5") == md5
    assert await repo.get_ha1("1001", "md5-sess") == md5
    assert await repo.get_ha1("1001", "SHA-256") == sha
    assert await repo.get_ha1("1001", "SHA-256-sess") == sha
    assert await repo.get_ha1("9999", "MD5") is None
    with pytest.raises(UnsupportedAlgorithm):
        await repo.get_ha1("1001", "SHA-512-256")

    table = await repo.ha1_table()
    assert len(table) == 1
    assert table.lookup("1001", REALM, "MD5") == md5
    assert table.lookup("1001", REALM, "SHA-256") == sha
    assert table.lookup("1001", "other.realm", "MD5") is None
    assert table.lookup("1001", REALM, "SHA-512-256") is None
    assert table.lookup("1002", REALM, "MD5") is None


async def test_realm_change_recomputes_ha1(db: Database) -> None:
    repo = AgentRepository(db)
    await repo.sync_from_config([agent("1001", "pw")], REALM)
    result = await repo.sync_from_config([agent("1001", "pw")], "example.com")
    assert result.updated == ("1001",)
    assert await repo.get_ha1("1001", "MD5") == hashlib.md5(b"1001:example.com:pw").hexdigest()


async def test_passwords_never_stored(db: Database) -> None:
    settings = parse_config(
        "agents:\n  - {extension: '1001', name: Ada, password: very-secret-pw, skills: {support: 5}}\n",
        environ={},
    )
    await AgentRepository(db).sync_from_config(settings.agents, REALM)
    async with db.session() as session:
        rows = (await session.execute(select(Agent.__table__))).all()
    assert rows and "very-secret-pw" not in json.dumps([list(map(str, row)) for row in rows])


# --------------------------------------------------------------------------- location


async def test_upsert_then_refresh_keeps_created_at(db: Database) -> None:
    repo = LocationRepository(db)
    first = await repo.upsert_binding(binding(path=("<sip:edge.example;lr>",), q=0.5, instance_id="<urn:uuid:1>"))
    assert first.created_at is not None
    assert first.path == ("<sip:edge.example;lr>",)
    assert first.expires_at == NOW + timedelta(seconds=600)
    assert first.expires_at.tzinfo is UTC

    refreshed = await repo.upsert_binding(
        binding(cseq=2, expires_at=NOW + timedelta(seconds=3600), source_port=5071, created_at=NOW)
    )
    assert refreshed.created_at == first.created_at
    assert (refreshed.cseq, refreshed.source_port, refreshed.path, refreshed.q) == (2, 5071, (), None)
    assert refreshed.expires_in(NOW) == 3600
    assert len(await repo.all_bindings(NOW)) == 1


async def test_bindings_filter_and_order(db: Database) -> None:
    repo = LocationRepository(db)
    aor = "sip:1001@cosmo.local"
    await repo.upsert_binding(binding("sip:a@127.0.0.1", q=0.5))
    await repo.upsert_binding(binding("sip:b@127.0.0.1", q=1.0))
    await repo.upsert_binding(binding("sip:c@127.0.0.1"))  # no q: counts as 1.0
    await repo.upsert_binding(binding("sip:old@127.0.0.1", expires_at=NOW - timedelta(seconds=1)))
    await repo.upsert_binding(binding("sip:1002@127.0.0.1", aor="sip:1002@cosmo.local"))

    assert [b.contact for b in await repo.bindings(aor, NOW)] == [
        "sip:b@127.0.0.1",
        "sip:c@127.0.0.1",
        "sip:a@127.0.0.1",
    ]
    assert await repo.bindings("sip:nobody@cosmo.local", NOW) == []
    assert [b.aor for b in await repo.all_bindings(NOW)] == [aor] * 3 + ["sip:1002@cosmo.local"]
    # Exactly at expiry a binding is gone (RFC 3261 §10.3: expired when its time has come).
    assert await repo.bindings(aor, NOW + timedelta(seconds=600)) == []


async def test_remove_binding_and_remove_all(db: Database) -> None:
    repo = LocationRepository(db)
    aor = "sip:1001@cosmo.local"
    for contact in ("sip:a@127.0.0.1", "sip:b@127.0.0.1", "sip:c@127.0.0.1"):
        await repo.upsert_binding(binding(contact))
    assert await repo.remove_binding(aor, "sip:a@127.0.0.1") is True
    assert await repo.remove_binding(aor, "sip:a@127.0.0.1") is False
    assert await repo.remove_all(aor) == 2
    assert await repo.remove_all(aor) == 0
    assert await repo.all_bindings(NOW) == []


async def test_purge_expired_returns_removed(db: Database) -> None:
    repo = LocationRepository(db)
    await repo.upsert_binding(binding("sip:short@127.0.0.1", expires_at=NOW + timedelta(seconds=60)))
    await repo.upsert_binding(binding("sip:long@127.0.0.1", expires_at=NOW + timedelta(seconds=600)))
    assert await repo.purge_expired(NOW) == []
    purged = await repo.purge_expired(NOW + timedelta(seconds=60))
    assert [b.contact for b in purged] == ["sip:short@127.0.0.1"]
    assert [b.contact for b in await repo.all_bindings(NOW)] == ["sip:long@127.0.0.1"]


async def test_times_in_other_zones_are_stored_as_utc(db: Database) -> None:
    repo = LocationRepository(db)
    plus_two = NOW.astimezone(__import__("datetime").timezone(timedelta(hours=2)))
    stored = await repo.upsert_binding(binding(expires_at=plus_two + timedelta(seconds=30)))
    assert stored.expires_at == NOW + timedelta(seconds=30)
    assert stored.expires_at.utcoffset() == timedelta(0)


async def test_naive_datetime_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await LocationRepository(db).upsert_binding(binding(expires_at=datetime(2025, 1, 1)))


# --------------------------------------------------------------------------- CDRs


async def test_cdr_add_and_read(db: Database) -> None:
    repo = CdrRepository(db)
    record_id = await repo.add(cdr("c1", hangup_by=None, answered_at=None))
    assert record_id > 0
    await repo.add_many([cdr("c2", 1), cdr("c3", 2, direction="outbound", trunk=None)])
    await repo.add_many([])

    recent = await repo.recent()
    assert [r.call_id for r in recent] == ["c3", "c2", "c1"]
    assert recent[0].direction == "outbound" and recent[0].trunk is None
    assert recent[1].extra == {"queue": "support", "agent": "1001"}
    assert recent[1].duration_s == 65.0 and recent[1].talk_s == 60.0
    assert recent[2].talk_s == 0.0
    assert [r.call_id for r in await repo.recent(limit=1)] == ["c3"]
    (one,) = await repo.for_call("c2")
    assert replace(one, id=None) == cdr("c2", 1)


async def test_cdr_direction_is_checked(db: Database) -> None:
    with pytest.raises(IntegrityError):
        await CdrRepository(db).add(cdr(direction="sideways"))


# --------------------------------------------------------------------------- event log


async def test_event_log_append_and_read(db: Database) -> None:
    repo = EventLogRepository(db)
    events = [
        LoggedEvent(NOW, "call.started", {"call_id": "c1", "caller": "+15551234"}),
        LoggedEvent(NOW + timedelta(seconds=1), "call.answered", {"call_id": "c1"}),
        LoggedEvent.at((NOW + timedelta(seconds=9)).timestamp(), "call.ended", {"call_id": "c1", "duration_s": 9.0}),
    ]
    await repo.append_many(events)
    await repo.append_many([])

    everything = await repo.read()
    assert [(e.ts, e.type, dict(e.payload)) for e in everything] == [
        (e.ts, e.type, dict(e.payload)) for e in events
    ]
    assert [e.type for e in await repo.read(types=["call.ended", "call.started"])] == ["call.started", "call.ended"]
    assert [e.type for e in await repo.read(since=NOW + timedelta(seconds=1))] == ["call.answered", "call.ended"]
    assert [e.type for e in await repo.read(until=NOW + timedelta(seconds=1))] == ["call.started"]
    first_id = everything[0].id
    assert first_id is not None
    assert [e.type for e in await repo.read(after_id=first_id, limit=1)] == ["call.answered"]


async def test_raw_sql_sees_utc_text_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await db.start()
    try:
        await EventLogRepository(db).append_many([LoggedEvent(NOW, "x.y", {})])
        async with db.session() as session:
            stored = (await session.execute(text("SELECT ts FROM event_log"))).scalar()
        assert stored == "2025-03-01 12:00:00.000000"
    finally:
        await db.close()
