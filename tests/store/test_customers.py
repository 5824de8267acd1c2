"""Customers and interactions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cosmo.store import Database
from cosmo.store.customers import CustomerRepository, InteractionRecord, phone_key
from cosmo.store.errors import StoreError

REPO = Path(__file__).resolve().parents[2]


def test_phone_key_is_the_digits() -> None:
    assert phone_key("+1 (555) 010-0123") == "15550100123"
    assert phone_key("sip:anonymous") is None
    assert phone_key(None) is None


async def test_found_by_phone_account_email_and_id(db: Database) -> None:
    customers = CustomerRepository(db)
    ada = await customers.add("Ada Byron", phone="+1 555 010 0123", email="Ada@Example.com",
                              account=123456, tier="gold", attributes={"balance": "42.50"})
    await customers.add("Other Person", phone="+44 20 7946 0000")
    assert (await customers.find("phone", "+15550100123")) == ada
    assert (await customers.find("phone", "5550100123")) == ada  # no country code
    assert (await customers.find("account", "123456")) == ada
    assert (await customers.find("email", "ada@example.COM")) == ada
    assert (await customers.find("id", str(ada.id))) == ada
    assert ada.account == "123456" and ada.email == "ada@example.com"
    assert ada.to_dict()["attributes"] == {"balance": "42.50"}
    assert await customers.find("phone", "+15559999999") is None
    assert await customers.find("account", "") is None
    assert await customers.find("id", "x") is None
    with pytest.raises(StoreError, match="customers are found by id, phone, account, email, not 'name'"):
        await customers.find("name", "Ada")


async def test_update_and_history_latest_first(db: Database) -> None:
    customers = CustomerRepository(db)
    ada = await customers.add("Ada Byron", phone="+15550100123")
    changed = await customers.update(ada.id, notes="prefers e-mail", preferred_channel="email", phone="+15550100999")
    assert changed is not None and changed.notes == "prefers e-mail"
    assert (await customers.find("phone", "+15550100999")) == changed
    assert await customers.update(ada.id + 100, notes="x") is None
    with pytest.raises(StoreError, match="unknown customer field"):
        await customers.update(ada.id, shoe_size=42)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    for n, channel in enumerate(("voice", "email", "voice")):
        await customers.add_interaction(InteractionRecord(
            channel=channel, ref=f"ref-{n}", started_at=start + timedelta(days=n), customer_id=ada.id,
            agent="1001", outcome="answered", disposition="resolved", notes=f"contact {n}",
        ))
    history = await customers.history(ada.id)
    assert [h.ref for h in history] == ["ref-2", "ref-1", "ref-0"]
    assert history[0].started_at == start + timedelta(days=2) and history[1].channel == "email"


async def test_demo_seed_loads_once(db: Database) -> None:
    customers = CustomerRepository(db)
    count = await customers.seed(REPO / "config" / "customers.yaml")
    assert count >= 3
    assert await customers.seed(REPO / "config" / "customers.yaml") == 0
    gold = await customers.find("account", "123456")
    assert gold is not None and gold.tier == "gold"


async def test_seed_refuses_a_bad_file(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "customers.yaml"
    bad.write_text("- {phone: '+1555'}\n")
    with pytest.raises(StoreError, match="expected a list of customers, each with a name"):
        await CustomerRepository(db).seed(bad)
