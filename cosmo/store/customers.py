"""Customers and their history on every channel: ``CustomerRepository``.

A customer is found the way each channel knows them: a call by the caller's
number (or the account number the caller keyed in), an e-mail by its sender's
address.  Phone numbers are compared by their digits (``phone_key``), so
``+1 (555) 010-0123`` and ``15550100123`` are the same number; a number given
without its country code matches on its last ten digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, or_, select

from cosmo.store.db import Database
from cosmo.store.errors import StoreError
from cosmo.store.models import Customer, Interaction, utcnow

__all__ = ["CUSTOMER_KEYS", "CustomerRecord", "CustomerRepository", "InteractionRecord", "phone_key"]

CUSTOMER_KEYS = ("id", "phone", "account", "email")
"""What a customer can be looked up by."""

_NOT_DIGITS = re.compile(r"\D+")
_NATIONAL_DIGITS = 10


def phone_key(number: str | None) -> str | None:
    """The digits of a phone number (``None`` when it has none)."""
    if not number:
        return None
    digits = _NOT_DIGITS.sub("", number)
    return digits or None


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer as the channels and the agent desktop see them."""

    id: int
    name: str
    phone: str | None = None
    email: str | None = None
    account: str | None = None
    tier: str = "standard"
    language: str | None = None
    preferred_channel: str | None = None
    notes: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what travels with a work item and reaches the screen-pop."""
        return {
            "id": self.id, "name": self.name, "phone": self.phone, "email": self.email,
            "account": self.account, "tier": self.tier, "language": self.language,
            "preferred_channel": self.preferred_channel, "notes": self.notes,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """One contact with a customer (a call, an e-mail...)."""

    channel: str
    ref: str
    started_at: datetime
    customer_id: int | None = None
    ended_at: datetime | None = None
    queue: str | None = None
    agent: str | None = None
    outcome: str | None = None
    disposition: str | None = None
    notes: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


def _record(row: Customer) -> CustomerRecord:
    return CustomerRecord(
        id=row.id, name=row.name, phone=row.phone, email=row.email, account=row.account, tier=row.tier,
        language=row.language, preferred_channel=row.preferred_channel, notes=row.notes,
        attributes=dict(row.attributes),
    )


class CustomerRepository:
    """Customers and interactions in the store."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def find(self, by: str, value: str) -> CustomerRecord | None:
        """The customer whose ``by`` (one of :data:`CUSTOMER_KEYS`) is ``value``.

        Raises :class:`StoreError` for an unknown key.
        """
        value = value.strip()
        if not value:
            return None
        if by == "id":
            if not value.isdigit():
                return None
            condition = Customer.id == int(value)
        elif by == "account":
            condition = Customer.account == value
        elif by == "email":
            condition = Customer.email == value.lower()
        elif by == "phone":
            key = phone_key(value)
            if key is None:
                return None
            condition = Customer.phone_key == key
            if len(key) >= _NATIONAL_DIGITS:
                condition = or_(condition, Customer.phone_key.endswith(key[-_NATIONAL_DIGITS:]))
        else:
            raise StoreError(f"customers are found by {', '.join(CUSTOMER_KEYS)}, not {by!r}")
        async with self._db.session() as session:
            rows = (await session.scalars(select(Customer).where(condition).order_by(Customer.id).limit(2))).all()
        if by == "phone" and len(rows) > 1:
            exact = [row for row in rows if row.phone_key == phone_key(value)]
            rows = exact or rows
        return _record(rows[0]) if rows else None

    async def find_customer(self, by: str, value: str) -> dict[str, Any] | None:
        """:meth:`find` as plain data (the IVR's look-up step; the screen-pop shows it)."""
        record = await self.find(by, value)
        return record.to_dict() if record is not None else None

    async def add(self, name: str, **fields: Any) -> CustomerRecord:
        """Store a new customer (``phone``, ``email``, ``account``, ``tier``, ``attributes``...)."""
        row = Customer(name=name, **_columns(fields))
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            return _record(row)

    async def update(self, customer_id: int, **fields: Any) -> CustomerRecord | None:
        """Change some fields of a customer; ``None`` when there is no such customer."""
        async with self._db.session() as session:
            row = await session.get(Customer, customer_id)
            if row is None:
                return None
            for name, value in _columns(fields).items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            await session.flush()
            return _record(row)

    async def count(self) -> int:
        """How many customers are stored."""
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)

    async def seed(self, path: Path) -> int:
        """Load customers from a YAML list into an empty table (the demo's); returns how many.

        Does nothing when customers exist already.  Raises :class:`StoreError`
        for a file that is not a list of mappings with a ``name``.
        """
        if await self.count():
            return 0
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StoreError(f"{path}: cannot load customers: {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("name") for e in entries):
            raise StoreError(f"{path}: expected a list of customers, each with a name")
        for entry in entries:
            await self.add(**{str(k): v for k, v in entry.items()})
        return len(entries)

    async def add_interaction(self, interaction: InteractionRecord) -> int:
        """Store one interaction; returns its id."""
        row = _interaction_row(interaction)
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            return row.id

    async def add_interactions(self, interactions: Sequence[InteractionRecord]) -> None:
        """Store several interactions in one transaction (the call-record writer's batches)."""
        async with self._db.session() as session:
            session.add_all([_interaction_row(interaction) for interaction in interactions])

    async def history(self, customer_id: int, limit: int = 50) -> list[InteractionRecord]:
        """A customer's interactions on every channel, the latest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(Interaction).where(Interaction.customer_id == customer_id)
                .order_by(Interaction.started_at.desc(), Interaction.id.desc()).limit(limit)
            )
            return [
                InteractionRecord(
                    id=row.id, customer_id=row.customer_id, channel=row.channel, ref=row.ref,
                    started_at=row.started_at, ended_at=row.ended_at, queue=row.queue, agent=row.agent,
                    outcome=row.outcome, disposition=row.disposition, notes=row.notes, data=dict(row.data),
                )
                for row in rows
            ]


def _interaction_row(interaction: InteractionRecord) -> Interaction:
    return Interaction(
        customer_id=interaction.customer_id, channel=interaction.channel, ref=interaction.ref,
        started_at=interaction.started_at, ended_at=interaction.ended_at, queue=interaction.queue,
        agent=interaction.agent, outcome=interaction.outcome, disposition=interaction.disposition,
        notes=interaction.notes, data=dict(interaction.data),
    )


_FIELDS = frozenset({"name", "phone", "email", "account", "tier", "language", "preferred_channel", "notes",
                     "attributes"})


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - _FIELDS
    if unknown:
        raise StoreError(f"unknown customer field(s): {', '.join(sorted(unknown))}")
    columns = {name: value for name, value in fields.items()}
    if "phone" in columns:
        columns["phone_key"] = phone_key(columns["phone"])
    if columns.get("email"):
        columns["email"] = str(columns["email"]).lower()
    if columns.get("account") is not None:
        columns["account"] = str(columns["account"])
    return columns

