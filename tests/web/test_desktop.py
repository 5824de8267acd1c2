"""The desktop's HTTP side (pages, customers, knowledge base), its store and the protocol's documentation."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cosmo.store.customers import CustomerRepository, InteractionRecord
from cosmo.store.db import Database
from cosmo.store.errors import StoreError
from cosmo.store.models import Base
from cosmo.store.web import (
    Article,
    Disposition,
    StoredSession,
    StoredUser,
    WebRepository,
)
from cosmo.web.cti_messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    markdown,
    parse_client_message,
    schemas,
)
from cosmo.web.desktop import SECURITY_HEADERS, STATIC_DIR
from cosmo.web.knowledge import KnowledgeIndex, words_of
from tests.postgres import empty_database
from tests.web.test_cti_harness import harness

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CTI.md"


async def request(session: Any, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json()


async def test_pages_carry_security_headers_and_need_their_assets(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        session = await h.session("1001")
        try:
            async with session.get(f"{h.url}/desk") as response:
                assert response.status == 200
                page = await response.text()
                for name, value in SECURITY_HEADERS.items():
                    assert response.headers[name] == value
            # Every asset a page names is served.
            for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
                async with session.get(f"{h.url}{asset}") as response:
                    assert response.status == 200, asset
        finally:
            await session.close()
    for html in STATIC_DIR.glob("*.html"):
        text = html.read_text()
        assert "<script>" not in text and " style=" not in text, f"{html.name}: inline code breaks the CSP"
        for module in re.findall(r'src="/static/(js/[^"]+)"', text):
            assert (STATIC_DIR / module).exists()
    for module in (STATIC_DIR / "js").glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (STATIC_DIR / "js" / imported).exists(), f"{module.name} imports {imported}"


async def test_customers_are_found_shown_and_changed(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        session = await h.session("1002")
        try:
            for query, names in (("123456", ["Ada Byron"]), ("+1 (555) 010-0124", ["Charles Babbage"]),
                                 ("MARY.SOMERVILLE@example.org", ["Mary Somerville"]), ("3", ["Mary Somerville"]),
                                 ("nobody", []), ("", [])):
                status, body = await request(session, "GET", f"{h.url}/ui/customers", params={"q": query})
                assert (status, [c["name"] for c in body["customers"]]) == (200, names), query
            await h.customers.add_interaction(InteractionRecord(
                channel="callback", ref="cb-1", customer_id=1, started_at=_at("2026-01-02T10:00:00"),
                agent="1002", outcome="answered", notes="called back"))
            await h.customers.add_interaction(InteractionRecord(
                channel="email", ref="mail-1", customer_id=1, started_at=_at("2026-02-03T10:00:00"),
                outcome="replied"))
            status, body = await request(session, "GET", f"{h.url}/ui/customers/1")
            assert status == 200 and body["customer"]["account"] == "123456"
            assert [(e["channel"], e["agent"], e["notes"]) for e in body["history"]] == [
                ("email", None, ""), ("callback", "1002", "called back")]
            status, body = await request(session, "GET", f"{h.url}/ui/customers/99")
            assert (status, body) == (404, {"error": "no customer 99"})

            for change, error in (({"preferred_channel": "pigeon"},
                                   "preferred_channel must be one of voice, email, callback, webcall or null"),
                                  ({"name": "x"}, "name: Extra inputs are not permitted"),
                                  ({"notes": "x" * 10_001}, "notes: String should have at most 10000 characters")):
                status, body = await request(session, "PATCH", f"{h.url}/ui/customers/1", json=change)
                assert (status, body) == (422, {"error": error})
            status, body = await request(session, "PATCH", f"{h.url}/ui/customers/1", json={})
            assert (status, body) == (400, {"error": "nothing to change (notes, preferred_channel)"})
            status, body = await request(session, "PATCH", f"{h.url}/ui/customers/1",
                                         json={"notes": "VIP", "preferred_channel": None})
            assert status == 200 and (body["customer"]["notes"], body["customer"]["preferred_channel"]) == ("VIP", None)
            status, body = await request(session, "PATCH", f"{h.url}/ui/customers/77", json={"notes": "x"})
            assert (status, body) == (404, {"error": "no customer 77"})
        finally:
            await session.close()


async def test_admins_edit_the_knowledge_base_and_pops_follow(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        admin = await h.session("admin")
        agent = await h.session("1001")
        try:
            status, body = await request(agent, "GET", f"{h.url}/ui/kb")
            assert status == 200 and len(body["articles"]) == 9
            status, body = await request(agent, "GET", f"{h.url}/ui/kb", params={"q": "forgot my password"})
            assert [a["title"] for a in body["articles"]][:1] == ["Resetting a password or unlocking an account"]

            status, body = await request(admin, "POST", f"{h.url}/ui/kb",
                                         json={"title": "Roaming", "body": "In the EU: free.", "tags": ["Roaming"]})
            assert status == 201
            article = body["article"]
            assert (article["tags"], article["updated_by"]) == (["roaming"], "admin")
            assert [a.title for a in h.desk.knowledge.suggest(ivr={"said": "roaming charges"})] == ["Roaming"]
            status, body = await request(admin, "PUT", f"{h.url}/ui/kb/{article['id']}",
                                         json={"title": "Roaming abroad", "body": "EU free.", "tags": ["travel"]})
            assert status == 200 and body["article"]["title"] == "Roaming abroad"
            assert [a.title for a in h.desk.knowledge.suggest(subject="Travel plans")] == ["Roaming abroad"]
            status, body = await request(admin, "PUT", f"{h.url}/ui/kb/999", json={"title": "x"})
            assert (status, body) == (404, {"error": "no article 999"})
            status, body = await request(admin, "POST", f"{h.url}/ui/kb", json={"title": ""})
            assert (status, body) == (422, {"error": "title: String should have at least 1 character"})
            status, body = await request(admin, "DELETE", f"{h.url}/ui/kb/{article['id']}")
            assert (status, body) == (200, {"deleted": article["id"]})
            assert h.desk.knowledge.suggest(subject="travel") == []
            status, body = await request(admin, "DELETE", f"{h.url}/ui/kb/{article['id']}")
            assert status == 404
        finally:
            await admin.close()
            await agent.close()


def test_suggestions_match_tags_then_titles_then_the_queue() -> None:
    articles = [
        Article(1, "Reset a password", "", ("password", "login")),
        Article(2, "Refunds", "", ("refund", "billing")),
        Article(3, "Billing dates", "", ("billing",)),
        Article(4, "Password policy", "", ("security",)),
    ]
    index = KnowledgeIndex(articles)
    assert words_of("I can't log in, my PASSWORD!") == {"log", "password"}
    assert [a.id for a in index.suggest(ivr={"said": "forgot password"})] == [1, 4]
    assert [a.id for a in index.suggest(ivr={"menu": "refund"}, queue="billing")] == [2]
    assert [a.id for a in index.suggest(queue="billing")] == [3, 2]  # nothing asked: the queue's articles
    assert [a.id for a in index.suggest(subject="Re: Fwd: billing question", limit=1)] == [3]
    assert index.suggest(ivr={"account": "123456"}) == []
    assert index.suggest() == []
    nested = {"steps": [{"choice": "refund"}, "password"], "n": 3}
    assert {a.id for a in index.suggest(ivr=nested)} == {1, 2, 4}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of each kind (PostgreSQL: the session's, emptied first)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("postgres_url")
        await empty_database(url)
    database = Database(url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


async def test_the_store_keeps_users_articles_and_dispositions(database: Database, tmp_path: Path) -> None:
    async with database.engine.connect() as connection:
        diffs = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert [d for d in diffs if any(t in repr(d) for t in ("web_users", "web_sessions", "kb_articles"))] == []
    store = WebRepository(database)
    user = StoredUser("ann", "agent", "Ann", "$argon2id$x", "1007")
    assert await store.users.replace_all([user, StoredUser("bob", "admin", "Bob", "$argon2id$y")]) == []
    assert await store.users.replace_all([user]) == ["bob"]
    assert [u.username for u in await store.users.all()] == ["ann"]
    assert await store.users.get("ann") == user

    path = tmp_path / "kb.yaml"
    for text, error in (("{}", "expected a list of articles"), ("- {body: x}", "article 1: needs a title"),
                        ("- {title: a, tags: a}", "article 1: tags must be a list of words"),
                        ("- {title: a, colour: red}", "article 1: unknown field(s) colour"),
                        ("- [", "cannot load articles")):
        path.write_text(text)
        with pytest.raises(StoreError, match=re.escape(error)):
            await store.knowledge.seed(path)
    path.write_text("- {title: B, body: two, tags: [x]}\n- {title: A}\n")
    assert await store.knowledge.seed(path) == 2
    assert await store.knowledge.seed(path) == 0  # only into an empty table
    assert [(a.title, a.tags) for a in await store.knowledge.all()] == [("A", ()), ("B", ("x",))]

    ended = _at("2026-03-01T10:05:00")
    disposition = Disposition(ref="call-9", agent="1007", channel="voice", disposition="sale", notes="upgrade",
                              customer_id=None, queue="sales", started_at=_at("2026-03-01T10:00:00"),
                              ended_at=ended)
    assert await store.dispositions.update(disposition) is None
    own = await store.dispositions.add(disposition)
    customers = CustomerRepository(database)
    ada = await customers.add("Ada", phone="+15550001")
    record = await customers.add_interaction(InteractionRecord(
        channel="voice", ref="call-10", customer_id=None, started_at=ended, agent=None, outcome="answered"))
    updated = await store.dispositions.update(Disposition(ref="call-10", agent="1007", channel="voice",
                                                          disposition="resolved", notes="ok",
                                                          customer_id=ada.id))
    assert updated == record and updated != own
    history = await customers.history(ada.id)
    assert [(e.ref, e.agent, e.outcome, e.disposition, e.notes) for e in history] == [
        ("call-10", "1007", "answered", "resolved", "ok")]
    now = datetime.now(UTC)
    await store.sessions.add(StoredSession("a" * 64, "ann", "c" * 40, now, now + timedelta(hours=1)))
    await store.sessions.add(StoredSession("b" * 64, "ann", "d" * 40, now, now - timedelta(seconds=1)))
    assert await store.sessions.remove_expired(now) == 1
    found = await store.sessions.get("a" * 64)
    assert found is not None and found.expires_at == now + timedelta(hours=1)
    await store.users.replace_all([])  # the user goes, and their sessions with them
    assert await store.sessions.get("a" * 64) is None


def test_client_messages_parse_or_refuse() -> None:
    message = parse_client_message('{"type": "hold", "call_id": " c1 ", "on": false, "id": "x"}')
    assert message.model_dump() == {"type": "hold", "call_id": "c1", "on": False, "id": "x"}
    assert set(CLIENT_MESSAGES) == {
        "hello", "resume", "pong", "seen", "state", "answer", "reject", "hangup", "hold", "transfer", "consult",
        "complete_transfer", "cancel_transfer", "dial", "wrap_up", "agent_state", "reprioritise", "move"}


def test_the_protocol_documentation_has_every_schema() -> None:
    text = DOCS.read_text()
    assert markdown() in text, "docs/CTI.md is out of date: paste `python -m cosmo.web.cti_messages`"
    found = schemas()
    for side, models in (("client", CLIENT_MESSAGES), ("server", SERVER_MESSAGES)):
        for kind in models:
            assert json.dumps(found[side][kind], indent=2) in text, kind


def _at(text: str) -> Any:
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)
