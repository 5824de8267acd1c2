"""Tests of cosmo.store.email against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from cosmo.store.db import Database
from cosmo.store.email import (
    Attempt,
    EmailRepository,
    MessageContent,
    NewCase,
    NewIncoming,
    NewOutgoing,
    RoutePlan,
    case_item_id,
)
from cosmo.store.errors import StoreError

NOW = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def incoming(n: int = 1, **changes: object) -> NewIncoming:
    base: dict[str, object] = {"source": "smtp", "eml_path": f"in/2026/11/23/{n}.eml", "size": 100 + n,
            "received_at": NOW + timedelta(seconds=n), "mail_from": "jane@customer.example",
            "rcpt_to": ("support@example.com",)}
    base.update(changes)
    return NewIncoming(**base)  # type: ignore[arg-type]


def content(message_id: str = "<m1@customer.example>", **changes: object) -> MessageContent:
    base: dict[str, object] = {
        "message_id": message_id, "in_reply_to": None, "reference_ids": (), "from_addr": "jane@customer.example",
        "from_name": "Jane Doe", "to_addrs": ("support@example.com",), "cc_addrs": (), "subject": "Printer",
        "date": NOW, "text": "it does not print", "text_source": "plain", "attachments": (),
        "problems": ("no Date header",), "headers": (("Subject", "Printer"),), "language": "en",
        "peer": "jane@customer.example",
    }
    base.update(changes)
    return MessageContent(**base)  # type: ignore[arg-type]


def outgoing(case_id: int | None, kind: str = "reply", to: str = "jane@customer.example") -> NewOutgoing:
    return NewOutgoing(
        kind=kind, source="agent:1001", eml_path="out/x.eml", size=10, message_id=f"<{kind}@example.com>",
        in_reply_to="<m1@customer.example>", reference_ids=("<m1@customer.example>",), mail_from="",
        rcpt_to=(to,), from_addr="support@example.com", from_name="Support", to_addrs=(to,), subject="Re: Printer",
        text="answer", case_id=case_id, agent="1001",
    )


NEW_CASE = NewCase(subject="Printer", customer_id=5, address="jane@customer.example", mailbox="support@example.com",
                   queue="support", priority=2, skills={"support": 3}, rules=("outage",), language="en")


async def test_intake_then_routing(db: Database) -> None:
    repo = EmailRepository(db)
    ids = await repo.add_incoming([incoming(1), incoming(2), incoming(3, problems=("odd",))])
    assert ids == sorted(ids)
    assert [r.id for r in await repo.unrouted()] == ids
    assert [r.id for r in await repo.messages([ids[2], ids[0], 99999])] == [ids[0], ids[2]]

    case = await repo.route(RoutePlan(ids[0], content(), new_case=NEW_CASE, open_item=True))
    assert case.item_id == case_item_id(case.id, 1) == f"email-{case.id}-1"
    assert (case.status, case.queue, case.priority, dict(case.skills), case.rules) == (
        "open", "support", 2, {"support": 3}, ("outage",))
    assert case.waiting_since == NOW + timedelta(seconds=1)
    [ack_id] = await repo.add_outgoing_many([outgoing(case.id, "ack")])
    assert [r.id for r in await repo.unrouted()] == ids[1:]

    routed = await repo.message(ids[0])
    assert routed is not None
    assert (routed.status, routed.case_id, routed.subject, routed.from_addr, routed.text) == (
        "routed", case.id, "Printer", "jane@customer.example", "it does not print")
    assert routed.headers == (("Subject", "Printer"),)
    assert routed.problems == ("no Date header",)
    ack = await repo.message(ack_id)
    assert ack is not None and (ack.direction, ack.kind, ack.status, ack.case_id) == ("out", "ack", "queued", case.id)

    # A follow-up names the first message: its case is found by Message-ID (ours and theirs).
    assert await repo.cases_for_message_ids(["<m1@customer.example>", "<ack@example.com>", "<zz@x>"]) == {
        "<m1@customer.example>": case.id, "<ack@example.com>": case.id}
    assert list(await repo.cases_by_ids([case.id, 999])) == [case.id]
    # Two messages in one transaction: a follow-up and a new case.
    again, other = await repo.route_many([
        RoutePlan(ids[1], content("<m2@customer.example>", in_reply_to="<ack@example.com>"), case_id=case.id,
                  case_values={"priority": 4}),
        RoutePlan(ids[2], content("<m3@other.example>"), new_case=NEW_CASE, open_item=True),
    ])
    assert (again.id, again.priority, again.item_id) == (case.id, 4, case.item_id)
    assert other.id != case.id and other.item_id == f"email-{other.id}-1"
    assert [m.id for m in await repo.thread(case.id)] == [ids[0], ids[1], ack_id]  # by arrival
    last = await repo.last_incoming(case.id)
    assert last is not None and last.id == ids[1]
    assert await repo.unrouted() == []

    [more] = await repo.add_incoming([incoming(4)])
    with pytest.raises(StoreError, match="give either case_id or new_case"):
        await repo.route(RoutePlan(more, content(), case_id=case.id, new_case=NEW_CASE))
    with pytest.raises(StoreError, match="unknown case field"):
        await repo.route(RoutePlan(more, content(), case_id=case.id, case_values={"colour": "red"}))
    with pytest.raises(StoreError, match="no case 999"):
        await repo.route(RoutePlan(more, content(), case_id=999))


async def test_cases_change_and_items_renumber(db: Database) -> None:
    repo = EmailRepository(db)
    [email_id] = await repo.add_incoming([incoming()])
    case = await repo.route(RoutePlan(email_id, content(), new_case=NEW_CASE, open_item=True))
    assert [c.id for c in await repo.cases_with_items()] == [case.id]
    answered = await repo.update_case(case.id, status="answered", item_id=None, agent="1001")
    assert answered is not None and (answered.status, answered.item_id, answered.agent) == ("answered", None, "1001")
    assert await repo.cases_with_items() == []
    reopened = await repo.update_case(case.id, status="open", open_item=True)
    assert reopened is not None and reopened.item_id == f"email-{case.id}-2"
    with pytest.raises(StoreError, match="case status 'lost'"):
        await repo.update_case(case.id, status="lost")
    assert await repo.update_case(999, status="closed") is None
    assert [c.id for c in await repo.cases(status="open", customer_id=5)] == [case.id]
    assert await repo.cases(status="closed") == []


async def test_sending_queue(db: Database) -> None:
    repo = EmailRepository(db)
    [email_id] = await repo.add_incoming([incoming()])
    case = await repo.route(RoutePlan(email_id, content(), new_case=NEW_CASE, open_item=True))
    reply_id = await repo.add_outgoing(outgoing(case.id), case_values={"status": "answered", "item_id": None})
    changed = await repo.case(case.id)
    assert changed is not None and changed.status == "answered"
    later = datetime.now(UTC) + timedelta(seconds=5)
    # Just queued, it is held by the relay in memory: not due in the store until released.
    assert await repo.due_outgoing(later) == []
    assert await repo.release_held(datetime.now(UTC)) == 1
    assert [m.id for m in await repo.due_outgoing(later)] == [reply_id]
    await repo.record_attempt(reply_id, status="queued", error="connection refused", next_attempt_at=later)
    assert await repo.due_outgoing(later - timedelta(seconds=1)) == []
    assert await repo.next_outgoing_at() == later
    await repo.record_attempts([Attempt(reply_id, "sent", sent_at=later)])
    sent = await repo.message(reply_id)
    assert sent is not None and (sent.status, sent.attempts, sent.last_error, sent.sent_at) == ("sent", 2, None, later)
    assert await repo.next_outgoing_at() is None


async def test_ack_count_per_address(db: Database) -> None:
    repo = EmailRepository(db)
    await repo.add_outgoing_many([outgoing(None, "ack", to="Jane@Customer.example")] * 2
                                 + [outgoing(None, "ack", to="bob@customer.example")])
    await repo.add_outgoing(outgoing(None, "reply", to="jane@customer.example"))
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert await repo.acks_to("jane@customer.example", since) == 2
    assert await repo.ack_counts(["Jane@customer.example", "bob@customer.example", "x@y.example"], since) == {
        "jane@customer.example": 2, "bob@customer.example": 1}
    assert await repo.acks_to("jane@customer.example", datetime.now(UTC) + timedelta(minutes=1)) == 0


async def test_mailbox_position_moves_with_the_messages(db: Database) -> None:
    repo = EmailRepository(db)
    assert await repo.mailbox_position("inbox") is None
    ids = await repo.add_from_mailbox("inbox", 77, 2, [incoming(1, imap_uid=1, message_id="<a@x>"),
                                                       incoming(2, imap_uid=2, message_id="<b@x>")])
    assert len(ids) == 2
    assert await repo.mailbox_position("inbox") == (77, 2)
    assert await repo.mailbox_message_ids("inbox", ["<a@x>", "<c@x>"]) == {"<a@x>"}
    # The same UID under the same UIDVALIDITY cannot be stored twice, and the position does not move.
    with pytest.raises(IntegrityError):
        await repo.add_from_mailbox("inbox", 77, 3, [incoming(3, imap_uid=2)])
    assert await repo.mailbox_position("inbox") == (77, 2)
    await repo.set_mailbox_position("inbox", 78, 0)
    assert await repo.mailbox_position("inbox") == (78, 0)
    assert len(await repo.add_from_mailbox("inbox", 78, 2, [incoming(4, imap_uid=2)])) == 1
