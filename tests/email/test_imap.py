"""IMAP intake against a real Dovecot: each message fetched once, across restarts and a new UIDVALIDITY."""

from __future__ import annotations

import imaplib
from pathlib import Path
from typing import Any

from cosmo.config import Settings
from cosmo.email.imap import parse_fetch, parse_uidvalidity
from tests.email.conftest import Stack, message, settings_for
from tests.email.peers import Dovecot, SmtpSink


def imap_settings(dovecot: Dovecot, relay_port: int, **mailbox: Any) -> Settings:
    entry = {
        "name": "support-inbox", "host": "127.0.0.1", "port": dovecot.port, "security": "none",
        "username": dovecot.user, "password": dovecot.password, "queue": "support",
        "poll_interval_s": 0.2, "after_store": "seen", **mailbox,
    }
    return settings_for(relay_port, {"imap": [entry], "smtp": None})


def mail(n: int, **headers: str) -> bytes:
    return message(subject=f"imap question {n}", message_id=f"<imap{n}@customer.example>", **headers).as_bytes()


async def incoming_subjects(stack: Stack) -> list[str]:
    cases = await stack.repository.cases(limit=1000)
    subjects = []
    for case in sorted(cases, key=lambda c: c.id):
        subjects += [m.subject for m in await stack.repository.thread(case.id) if m.direction == "in"]
    return subjects


async def test_messages_are_fetched_once_across_restarts(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink) -> None:
    uids = dovecot.deliver(mail(1), mail(2), mail(3))
    stack = Stack(tmp_path / "node", imap_settings(dovecot, sink.port))
    await stack.start()
    try:
        await stack.routed(3)
        assert await incoming_subjects(stack) == ["imap question 1", "imap question 2", "imap question 3"]
        items = stack.acd.items_view("support")  # type: ignore[union-attr]
        assert [i["data"]["subject"] for i in items] == ["imap question 1", "imap question 2", "imap question 3"]
        assert [i["data"]["to"] for i in items] == ["support@example.com"] * 3
        await stack.until(lambda: all("\\Seen" in f for f in dovecot.flags().values()), what="\\Seen flags")
        assert await stack.repository.mailbox_position("support-inbox") == (
            (await stack.repository.mailbox_position("support-inbox"))[0], uids[-1])  # type: ignore[index]

        # More mail while Cosmo is away; after the restart only the new mail is fetched.
        await stack.close()
        dovecot.deliver(mail(4), mail(5))
        await stack.start()
        await stack.routed(2)
        polls = stack.service.pollers[0].polls
        await stack.until(lambda: stack.service.pollers[0].polls >= polls + 3, what="more polls")
        assert await incoming_subjects(stack) == [f"imap question {n}" for n in range(1, 6)]
        assert stack.service.router.routed == 2
    finally:
        await stack.close()


async def test_a_new_uidvalidity_skips_what_was_stored(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink) -> None:
    client = imaplib.IMAP4("127.0.0.1", dovecot.port)
    client.login(dovecot.user, dovecot.password)
    client.create("Support")
    client.logout()
    dovecot.deliver(mail(1), mail(2), mailbox="Support")
    stack = Stack(tmp_path / "node", imap_settings(dovecot, sink.port, mailbox="Support", after_store="keep"))
    await stack.start()
    try:
        await stack.routed(2)
        before = await stack.repository.mailbox_position("support-inbox")
        await stack.close()
        # The mailbox is re-created: new UIDVALIDITY, the same two messages and a new one.
        client = imaplib.IMAP4("127.0.0.1", dovecot.port)
        client.login(dovecot.user, dovecot.password)
        client.delete("Support")
        client.create("Support")
        client.logout()
        dovecot.deliver(mail(1), mail(2), mail(3), mailbox="Support")
        await stack.start()
        await stack.routed(1)
        after = await stack.repository.mailbox_position("support-inbox")
        assert before is not None and after is not None and after[0] != before[0]
        polls = stack.service.pollers[0].polls
        await stack.until(lambda: stack.service.pollers[0].polls >= polls + 2, what="more polls")
        assert await incoming_subjects(stack) == ["imap question 1", "imap question 2", "imap question 3"]
    finally:
        await stack.close()


async def test_moved_after_storing(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink) -> None:
    client = imaplib.IMAP4("127.0.0.1", dovecot.port)
    client.login(dovecot.user, dovecot.password)
    client.create("Done")
    client.logout()
    dovecot.deliver(mail(1), mail(2))
    stack = Stack(tmp_path / "node", imap_settings(dovecot, sink.port, after_store="move", move_to="Done"))
    await stack.start()
    try:
        await stack.routed(2)
        await stack.until(lambda: not dovecot.flags("INBOX"), what="INBOX emptied")
        assert len(dovecot.flags("Done")) == 2
    finally:
        await stack.close()


def test_fetch_response_parsing() -> None:
    lines: list[bytes | bytearray] = [
        b"2 FETCH (UID 7 RFC822.SIZE 11 BODY[] {11}", bytearray(b"Subject: a\r\n"), b")",
        b"3 FETCH (BODY[] {3}", bytearray(b"x\r\n"), b" UID 9)",
        b"4 FETCH (UID 10 RFC822.SIZE 99)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    fetched = parse_fetch(lines)
    assert [(f.uid, f.size, f.body) for f in fetched] == [
        (7, 11, b"Subject: a\r\n"), (9, None, b"x\r\n"), (10, 99, None)]
    assert parse_uidvalidity([b"3 EXISTS", b"OK [UIDVALIDITY 1795421092] UIDs valid"]) == 1795421092
    assert parse_uidvalidity([b"3 EXISTS"]) is None
