"""The e-mail channel in-process with real peers: smtplib in, the ACD, the store, an SMTP sink out."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from cosmo.acd.model import ItemState
from cosmo.acd.service import AcdService
from cosmo.email.errors import CaseConflict, EmailError
from cosmo.email.events import EmailDeferred, EmailReceived, EmailSent
from cosmo.store.customers import CustomerRepository
from tests.email.conftest import Stack, message, send, settings_for
from tests.email.peers import SmtpSink


async def sent(port: int, msg: EmailMessage | bytes, **kwargs: Any) -> dict[str, tuple[int, bytes]]:
    return await asyncio.to_thread(send, port, msg, **kwargs)


def refused_code(port: int, msg: EmailMessage | bytes, **kwargs: Any) -> tuple[int, bytes | str]:
    try:
        send(port, msg, **kwargs)
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        return exc.smtp_code, exc.smtp_error
    raise AssertionError("the message was accepted")


async def test_mail_becomes_a_queued_item_a_case_a_customer_and_an_acknowledgement(
        stack: Stack, sink: SmtpSink) -> None:
    await sent(stack.smtp_port, message(message_id="<first@customer.example>"))
    await stack.routed(1)
    [item] = stack.acd.items_view("support")  # type: ignore[union-attr]
    data = item["data"]
    assert (item["channel"], item["state"], data["from"], data["from_name"], data["subject"]) == (
        "email", "queued", "jane@customer.example", "Jane Doe", "My printer is broken")
    assert data["snippet"] == "Hello, it does not print."
    case = await stack.service.case_view(data["case_id"])
    assert (case["status"], case["queue"], case["address"], case["mailbox"], case["item"]["state"]) == (
        "open", "support", "jane@customer.example", "support@example.com", "queued")
    customer = await CustomerRepository(stack.db).find("email", "jane@customer.example")  # type: ignore[arg-type]
    assert customer is not None and customer.name == "Jane Doe" and case["customer_id"] == customer.id
    assert data["customer"]["id"] == customer.id

    [ack] = await sink.wait_for(1)
    assert ack.mail_from == "<>"  # the null sender of an automatic answer
    assert ack.rcpt_to == ("jane@customer.example",)
    assert ack["Subject"] == f"Re: My printer is broken [#{case['id']}]"
    assert ack["In-Reply-To"] == "<first@customer.example>"
    assert ack["References"] == "<first@customer.example>"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["From"] == "Example Support <support@example.com>"
    assert f"case #{case['id']}" in ack.text
    view = await stack.service.email_view(data["email_id"])
    assert view["headers"][0][0] == "Return-Path" and view["headers"][1][0] == "Received"
    assert view["case"]["id"] == case["id"]
    assert any(isinstance(e, EmailReceived) and e.new_case for e in stack.events)


async def test_refusals_at_the_smtp_level(stack: Stack) -> None:
    port = stack.smtp_port
    assert await asyncio.to_thread(refused_code, port, message(), to=("nobody@example.com",)) == (
        550, b"5.1.1 <nobody@example.com>: no such mailbox here")
    big = message(body="x" * (70 * 1024))
    code, _ = await asyncio.to_thread(refused_code, port, big)
    assert code == 552
    assert await asyncio.to_thread(refused_code, port, b"\r\n") == (554, b"5.6.0 empty message")
    loop = b"".join(b"Received: from hop%d\r\n" % i for i in range(60)) + b"Subject: loop\r\n\r\nx\r\n"
    assert await asyncio.to_thread(refused_code, port, loop) == (554, b"5.4.6 more than 50 Received headers: mail loop")
    await asyncio.sleep(0.2)
    assert await stack.repository.unrouted() == [] and await stack.repository.cases() == []
    # One good recipient among bad ones: stored once, for the good one.
    refused = await sent(port, message(), to=("nobody@example.com", "billing@example.com"))
    assert refused == {"nobody@example.com": (550, b"5.1.1 <nobody@example.com>: no such mailbox here")}
    await stack.routed(1)
    [case] = await stack.repository.cases()
    assert case.queue == "billing" and case.mailbox == "billing@example.com"


async def test_malformed_mail_is_stored_and_its_problems_shown(stack: Stack) -> None:
    raw = (b"From: broken-sender\r\nSubject: =?x-bogus?q?=FF?=\r\nContent-Type: multipart/mixed; boundary=zz\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n\xff\xfe not really mime \x00\r\n")
    await sent(stack.smtp_port, raw, sender="someone@elsewhere.example")
    await stack.routed(1)
    [case] = await stack.repository.cases()
    [mail] = [m for m in await stack.repository.thread(case.id) if m.direction == "in"]
    view = await stack.service.email_view(mail.id)
    assert "no Message-ID header" in view["problems"] and "no Date header" in view["problems"]
    assert any(problem.startswith("MIME: ") for problem in view["problems"])
    # No From address: the envelope sender stands in for it.
    assert case.address == "someone@elsewhere.example"


async def test_follow_ups_join_their_case(stack: Stack, sink: SmtpSink) -> None:
    port = stack.smtp_port
    await sent(port, message(message_id="<q1@customer.example>"))
    await stack.routed(1)
    [ack] = await sink.wait_for(1)
    [case] = await stack.repository.cases()
    # An answer to the acknowledgement, by In-Reply-To.
    await sent(port, message(subject="Re: printer", message_id="<q2@customer.example>",
                             In_Reply_To=str(ack["Message-ID"])))
    # A colleague from the same domain with the token only.
    await sent(port, message(sender="boss@customer.example", subject=f"About [#{case.id}]",
                             message_id="<q3@customer.example>"), sender="boss@customer.example")
    # A stranger with the same token: a case of their own.
    await sent(port, message(sender="eve@elsewhere.example", subject=f"Hijack [#{case.id}]",
                             message_id="<e1@elsewhere.example>"), sender="eve@elsewhere.example")
    await stack.routed(4)
    cases = await stack.repository.cases()
    assert len(cases) == 2
    thread = await stack.repository.thread(case.id)
    assert [m.message_id for m in thread if m.direction == "in"] == [
        "<q1@customer.example>", "<q2@customer.example>", "<q3@customer.example>"]
    # Follow-ups to an open case with a waiting item add no item and no second acknowledgement to Jane.
    items = stack.acd.items_view("support")  # type: ignore[union-attr]
    assert sorted(i["data"]["case_id"] for i in items) == sorted(c.id for c in cases)
    await sink.wait_for(2)
    await asyncio.sleep(0.3)
    assert sorted(m.rcpt_to[0] for m in sink.messages) == ["eve@elsewhere.example", "jane@customer.example"]


async def test_agent_reply_threading_and_the_customers_answer(stack: Stack, sink: SmtpSink) -> None:
    acd = stack.acd
    assert acd is not None
    await sent(stack.smtp_port, message(message_id="<r1@customer.example>",
                                        References="<older@customer.example>"))
    await stack.routed(1)
    await sink.wait_for(1)
    [case] = await stack.repository.cases()
    [first] = [m for m in await stack.repository.thread(case.id) if m.direction == "in"]
    acd.set_agent_state("1001", "available")
    await stack.until(lambda: (i := acd.item(case.item_id or "")) is not None and i.state is ItemState.OFFERED,
                      what="offer")
    with pytest.raises(CaseConflict, match="not offered to agent 1002"):
        await stack.service.accept(first.id, "1002")
    with pytest.raises(CaseConflict, match="accept it first"):
        await stack.service.reply(case.id, "1001", "too early")
    accepted = await stack.service.accept(first.id, "1001")
    assert accepted["item"]["state"] == "assigned" and accepted["agent"] == "1001"

    reply = await stack.service.reply(case.id, "1001", "We sent a technician.", template="thanks")
    assert reply["status"] in ("queued", "sent") and reply["kind"] == "reply"
    assert reply["case"]["status"] == "answered" and reply["case"]["item_id"] is None
    [_, out] = await sink.wait_for(2)
    assert out.mail_from == "support@example.com"
    assert out["Subject"] == f"Re: My printer is broken [#{case.id}]"
    assert out["In-Reply-To"] == "<r1@customer.example>"
    assert out["References"] == "<older@customer.example> <r1@customer.example>"
    assert out.text.replace("\r\n", "\n").startswith(
        "Hello Jane Doe,\n\nWe sent a technician.\n\nThanks, Ada Lovelace\n\nOn Mon, 23 Nov 2026 09:00:00 +0000, "
        "jane@customer.example wrote:\n> Hello,\n> it does not print.")
    assert acd.agent_view("1001")["items"] == []
    await stack.until(lambda: stack.repository.message(reply["id"]), what="stored reply")
    await stack.until(lambda: _status(stack, reply["id"], "sent"), what="reply sent")
    assert any(isinstance(e, EmailSent) and e.email_id == reply["id"] for e in stack.events)

    # The customer answers the reply: the same case, open again, a new item preferring Ada.
    await sent(stack.smtp_port, message(subject=f"Re: Re: My printer is broken [#{case.id}]",
                                        message_id="<r2@customer.example>", In_Reply_To=str(out["Message-ID"]),
                                        References=f"<r1@customer.example> {out['Message-ID']}"))
    await stack.routed(2)
    again = await stack.repository.case(case.id)
    assert again is not None and (again.status, again.item_id) == ("open", f"email-{case.id}-2")
    item = acd.item(again.item_id or "")
    assert item is not None and item.data["preferred_agent"] == "1001" and item.data["email_id"] != first.id
    assert len(await stack.repository.cases()) == 1
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 2  # a follow-up is not acknowledged again


async def take(stack: Stack, case_id: int, agent: str) -> None:
    """The agent goes available, is offered the case's e-mail and accepts it."""
    acd = stack.acd
    assert acd is not None
    acd.set_agent_state(agent, "available")
    case = await stack.repository.case(case_id)
    assert case is not None and case.item_id is not None
    await stack.until(lambda: (i := acd.item(case.item_id or "")) is not None and i.state is ItemState.OFFERED,
                      what="offer")
    [first] = [m for m in await stack.repository.thread(case_id) if m.direction == "in"][:1]
    await stack.service.accept(first.id, agent)


async def _status(stack: Stack, email_id: int, status: str) -> bool:
    record = await stack.repository.message(email_id)
    return record is not None and record.status == status


async def test_reply_waits_while_the_relay_is_down(tmp_path: Path) -> None:
    sink = await SmtpSink().start()
    port = sink.port
    await sink.stop()  # the relay is down
    stack = await Stack(tmp_path / "node", settings_for(port)).start()
    try:
        await sent(stack.smtp_port, message(message_id="<d1@customer.example>"))
        await stack.routed(1)
        [case] = await stack.repository.cases()
        await take(stack, case.id, "1001")
        reply = await stack.service.reply(case.id, "1001", "Answer while the relay is away.")
        await stack.until(lambda: _attempted(stack, reply["id"]), what="a failed try")
        view = await stack.service.case_view(case.id)
        shown = next(m for m in view["messages"] if m["id"] == reply["id"])
        assert shown["status"] == "queued" and shown["attempts"] >= 1
        assert "ConnectionRefused" in shown["last_error"] or "connect" in shown["last_error"].lower()
        assert any(isinstance(e, EmailDeferred) and e.email_id == reply["id"] for e in stack.events)
        sink = await SmtpSink(port).start()  # the relay is back
        try:
            messages = await sink.wait_for(2, timeout=10)
            assert {m["In-Reply-To"] for m in messages} == {"<d1@customer.example>"}
            await stack.until(lambda: _status(stack, reply["id"], "sent"), what="reply sent")
        finally:
            await sink.stop()
    finally:
        await stack.close()


async def _attempted(stack: Stack, email_id: int) -> bool:
    record = await stack.repository.message(email_id)
    return record is not None and record.attempts >= 1 and record.status == "queued"


async def test_transfer_and_close(stack: Stack) -> None:
    acd = stack.acd
    assert acd is not None
    await sent(stack.smtp_port, message(message_id="<t1@customer.example>"))
    await stack.routed(1)
    [case] = await stack.repository.cases()
    with pytest.raises(CaseConflict, match="no queue 'nowhere'"):
        await stack.service.transfer(case.id, "nowhere")
    moved = await stack.service.transfer(case.id, "billing")
    assert (moved["queue"], moved["item_id"], moved["item"]["queue"]) == ("billing", f"email-{case.id}-2", "billing")
    assert acd.items_view("support") == [] and [i["id"] for i in acd.items_view("billing")] == [moved["item_id"]]
    assert acd.items_view("billing")[0]["enqueued_at"] == pytest.approx(case.waiting_since.timestamp())  # type: ignore[union-attr]
    closed = await stack.service.close_case(case.id)
    assert (closed["status"], closed["item_id"], closed["item"]) == ("closed", None, None)
    assert acd.items_view("billing") == []
    with pytest.raises(CaseConflict, match="is closed"):
        await stack.service.transfer(case.id, "support")
    with pytest.raises(EmailError, match="no reply template 'nope'"):
        await stack.service.reply(case.id, "1001", "x", template="nope")


async def test_acknowledgements_are_rate_limited_and_skip_lists(stack: Stack, sink: SmtpSink) -> None:
    for n in range(5):
        await sent(stack.smtp_port, message(subject=f"question {n}", message_id=f"<rl{n}@customer.example>"))
    await sent(stack.smtp_port, message(sender="news@lists.example", subject="digest", List_Id="<d.lists.example>"),
               sender="news@lists.example")
    await stack.routed(6)
    await sink.wait_for(3)
    await asyncio.sleep(0.5)
    assert [m.rcpt_to for m in sink.messages] == [("jane@customer.example",)] * 3
    assert len(await stack.repository.cases()) == 6


async def test_attachments_are_stored_and_listed(stack: Stack) -> None:
    msg = message(message_id="<att@customer.example>")
    msg.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="../../invoice 7.pdf")
    await sent(stack.smtp_port, msg)
    await stack.routed(1)
    [case] = await stack.repository.cases()
    [mail] = [m for m in await stack.repository.thread(case.id) if m.direction == "in"]
    view = await stack.service.email_view(mail.id)
    assert view["attachments"] == [{
        "index": 1, "filename": "../../invoice 7.pdf", "content_type": "application/pdf", "size": 13,
        "inline": False, "content_id": None, "url": f"/api/emails/{mail.id}/attachments/1",
    }]
    data, content_type, name = await stack.service.attachment(mail.id, 1)
    assert (data, content_type, name) == (b"%PDF-1.4 test", "application/pdf", "../../invoice 7.pdf")
    stored = mail.attachments[0]["path"]
    assert stored == f"attachments/{mail.id}/1-invoice 7.pdf"
    assert acd_item_data(stack, case.item_id)["attachments"] == 1


def acd_item_data(stack: Stack, item_id: str | None) -> dict[str, Any]:
    assert stack.acd is not None and item_id is not None
    item = stack.acd.item(item_id)
    assert item is not None
    return item.data


async def test_stored_but_unrouted_mail_is_routed_at_start(stack: Stack) -> None:
    """What a crash between the 250 and routing leaves: a stored row and its file."""
    await stack.service.router.close()  # routing stops; the intake still stores and answers 250
    for n in range(3):
        await sent(stack.smtp_port, message(subject=f"before the crash {n}", message_id=f"<c{n}@customer.example>"))
    assert len(await stack.repository.unrouted()) == 3
    await stack.restart()
    await stack.routed(3)
    items = stack.acd.items_view("support")  # type: ignore[union-attr]
    assert [i["data"]["subject"] for i in items] == [f"before the crash {n}" for n in range(3)]


async def test_lost_work_item_is_queued_again_at_start(stack: Stack) -> None:
    """What a crash between the case's commit and the ACD's store leaves: an open case without its item."""
    await sent(stack.smtp_port, message(message_id="<lost@customer.example>"))
    await stack.routed(1)
    [case] = await stack.repository.cases()
    assert case.item_id is not None
    await stack.acd.repository.remove_item(case.item_id)  # type: ignore[union-attr]
    await stack.restart()
    [item] = stack.acd.items_view("support")  # type: ignore[union-attr]
    assert item["id"] == case.item_id and item["data"]["subject"] == "My printer is broken"


class ReprioritisingAcd(AcdService):
    """The ACD with the hook the response-time targets use (recorded, not applied)."""

    calls: list[tuple[str, int]]

    def reprioritise(self, item_id: str, priority: int) -> None:
        self.calls.append((item_id, priority))


async def test_priority_rises_as_the_response_target_nears(tmp_path: Path, sink: SmtpSink) -> None:
    stack = Stack(tmp_path / "node", settings_for(sink.port))
    await stack.start()
    try:
        await sent(stack.smtp_port, message(message_id="<p@customer.example>"))
        await stack.routed(1)
        assert stack.service.escalate() == 0  # AcdService cannot reprioritise: nothing to do
        acd = ReprioritisingAcd.__new__(ReprioritisingAcd)
        acd.__dict__.update(stack.acd.__dict__)
        acd.calls = []
        stack.service.acd = acd
        real = stack.service.clock
        stack.service.clock = lambda: real() + 3 * 3600  # three hours into a four-hour target
        [case] = await stack.repository.cases()
        assert stack.service.escalate() == 1
        assert acd.calls == [(case.item_id, 2)]
    finally:
        await stack.close()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (the intake's STARTTLS)."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cosmo.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_starttls_when_a_certificate_is_configured(tmp_path: Path, sink: SmtpSink) -> None:
    import ssl

    cert_file, key_file = self_signed(tmp_path)
    settings = settings_for(sink.port, {"smtp": {"host": "127.0.0.1", "port": 0, "cert_file": str(cert_file),
                                                 "key_file": str(key_file), "require_starttls": True}})
    stack = await Stack(tmp_path / "node", settings).start()
    try:
        def plain() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as client:
                client.ehlo()
                assert client.has_extn("starttls")
                return client.mail("jane@customer.example")

        assert (await asyncio.to_thread(plain))[0] == 530  # RFC 3207 §4: must issue STARTTLS first

        def secure() -> None:
            context = ssl.create_default_context(cafile=str(cert_file))
            with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as client:
                client.starttls(context=context)
                client.send_message(message(message_id="<tls@customer.example>"))

        await asyncio.to_thread(secure)
        await stack.routed(1)
        [case] = await stack.repository.cases()
        [mail] = [m for m in await stack.repository.thread(case.id) if m.direction == "in"]
        assert "with ESMTPS id" in dict(mail.headers)["Received"]
    finally:
        await stack.close()


async def test_auto_accept_gives_the_mail_to_the_agent(tmp_path: Path, sink: SmtpSink) -> None:
    stack = await Stack(tmp_path / "node", settings_for(sink.port, {"auto_accept": True})).start()
    try:
        acd = stack.acd
        assert acd is not None
        acd.set_agent_state("1001", "available")
        await sent(stack.smtp_port, message(message_id="<auto@customer.example>"))
        await stack.routed(1)
        [case] = await stack.repository.cases()
        await stack.until(lambda: (i := acd.item(case.item_id or "")) is not None and i.state is ItemState.ASSIGNED,
                          what="assigned")
        await stack.until(lambda: _case_agent(stack, case.id, "1001"), what="case agent")
    finally:
        await stack.close()


async def _case_agent(stack: Stack, case_id: int, agent: str) -> bool:
    case = await stack.repository.case(case_id)
    return case is not None and case.agent == agent


class BatchingAcd(AcdService):
    """The ACD with the batch hook the router uses when present (here: one by one, recorded)."""

    batches: list[list[str]]

    async def enqueue_many(self, items: list[Any]) -> list[Any]:
        self.batches.append([item.id for item in items])
        out: list[Any] = []
        for item in items:
            try:
                await self.enqueue(item)
                out.append(None)
            except Exception as exc:  # noqa: BLE001 (handed back, as the hook does)
                out.append(exc)
        return out


async def test_batches_of_items_go_to_an_acd_that_takes_them(stack: Stack) -> None:
    acd = stack.acd
    assert acd is not None
    batching = BatchingAcd.__new__(BatchingAcd)
    batching.__dict__.update(acd.__dict__)
    batching.batches = []
    stack.service.router.acd = batching
    await stack.service.router.close()
    for n in range(5):
        await sent(stack.smtp_port, message(subject=f"batch {n}", message_id=f"<b{n}@customer.example>"))
    await stack.service.router.start()
    stack.service.router.submit([r.id for r in await stack.repository.unrouted()])
    await stack.routed(5)
    assert [len(b) for b in batching.batches] == [5]
    assert [i["data"]["subject"] for i in acd.items_view("support")] == [f"batch {n}" for n in range(5)]


async def test_a_queued_reply_is_sent_after_a_restart(stack: Stack, sink: SmtpSink) -> None:
    """A reply queued while the relay holds it in memory (as at a crash) goes out after the restart."""
    await stack.service.relay.close()
    await sent(stack.smtp_port, message(message_id="<held@customer.example>"))
    await stack.routed(1)
    [case] = await stack.repository.cases()
    await take(stack, case.id, "1001")
    reply = await stack.service.reply(case.id, "1001", "Sent after all.")
    record = await stack.repository.message(reply["id"])
    assert record is not None and (record.status, record.next_attempt_at) == ("queued", None)
    await stack.restart()
    messages = await sink.wait_for(2)
    assert sorted(m["Auto-Submitted"] or "reply" for m in messages) == ["auto-replied", "reply"]
    await stack.until(lambda: _status(stack, reply["id"], "sent"), what="reply sent")
