"""The e-mail channel in a real ``cosmo serve``: smtplib in, the REST API, a sink out, Dovecot, kill -9.

Each test runs the server as a child process (``tests/cosmo_server.py``) with
the demo configuration, its SMTP intake on a free port and the relay pointed
at an SMTP sink in the test.  Agent 1001 takes e-mail only (no phone needed
to go available).
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cosmo_server import CosmoProcess, cosmo_server, stop_server
from tests.email.conftest import message, send
from tests.email.peers import Dovecot, SmtpSink
from tests.peers.common import free_port

pytestmark = pytest.mark.peers


def email_setup(smtp_port: int, relay_port: int, *, imap: list[dict[str, Any]] | None = None,
                log_level: str = "INFO") -> Callable[[dict[str, Any]], None]:
    def change(settings: dict[str, Any]) -> None:
        email = settings["email"]
        email["smtp"]["port"] = smtp_port
        email["relay"].update(port=relay_port, retry_initial_s=0.3, retry_max_s=1.0)
        email["imap"] = imap or []
        settings["log_level"] = log_level
        for agent in settings["agents"]:
            if agent["extension"] == "1001":
                agent["capacity"] = {"email": 3}
    return change


async def until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.1)


async def items(server: CosmoProcess, queue: str = "support") -> list[dict[str, Any]]:
    status, body = await server.api("GET", f"/api/items?queue={queue}")
    assert status == 200, body
    return body["items"]


async def test_mail_in_reply_out_and_the_answer_back(tmp_path: Path, sink: SmtpSink) -> None:
    smtp_port = free_port("tcp")
    async with cosmo_server(tmp_path, email_setup(smtp_port, sink.port)) as server:
        # Refused at the door: unknown address, too large.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asyncio.to_thread(send, smtp_port, message(), to=("nobody@example.com",))
        assert refused.value.recipients == {
            "nobody@example.com": (550, b"5.1.1 <nobody@example.com>: no such mailbox here")}
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as too_big:
            await asyncio.to_thread(send, smtp_port, message(body="x" * (26 * 1024 * 1024)))
        assert too_big.value.smtp_code == 552

        await asyncio.to_thread(send, smtp_port, message(message_id="<e2e-1@customer.example>"))
        [item] = await until(lambda: items(server), what="queued item")
        assert (item["channel"], item["data"]["from"], item["data"]["subject"]) == (
            "email", "jane@customer.example", "My printer is broken")
        case_id, email_id = item["data"]["case_id"], item["data"]["email_id"]
        status, case = await server.api("GET", f"/api/cases/{case_id}")
        assert status == 200 and case["customer_id"] is not None and case["status"] == "open"
        assert item["data"]["customer"]["email"] == "jane@customer.example"
        [ack] = await sink.wait_for(1)
        assert ack["Subject"] == f"Re: My printer is broken [#{case_id}]" and ack["Auto-Submitted"] == "auto-replied"

        status, view = await server.api("GET", f"/api/emails/{email_id}")
        assert status == 200 and view["text"] == "Hello,\nit does not print.\n"
        assert await server.api("GET", "/api/emails/999999") == (404, {"error": "no e-mail 999999"})
        assert (await server.api("GET", f"/api/cases/{case_id}", token=None))[0] == 401

        # Agent 1001 goes available, is offered the e-mail, takes it and answers.
        status, _ = await server.api("POST", "/api/agents/1001/state", {"state": "available"})
        assert status == 200
        await until(lambda: _offer_of(server, "1001"), what="offer to 1001")
        status, body = await server.api("POST", f"/api/cases/{case_id}/reply", {"agent": "1001", "body": "Hi"})
        assert status == 409 and "accept it first" in body["error"]
        status, accepted = await server.api("POST", f"/api/emails/{email_id}/accept", {"agent": "1001"})
        assert status == 200 and accepted["item"]["state"] == "assigned"
        status, reply = await server.api("POST", f"/api/cases/{case_id}/reply", {
            "agent": "1001", "body": "A technician comes tomorrow.", "template": "thanks"})
        assert status == 202 and reply["status"] in ("queued", "sent")
        [_, out] = await sink.wait_for(2)
        assert out.mail_from == "support@example.com"
        assert out["In-Reply-To"] == "<e2e-1@customer.example>"
        assert out["References"] == "<e2e-1@customer.example>"
        assert out["Subject"] == f"Re: My printer is broken [#{case_id}]"
        assert "A technician comes tomorrow." in out.text and "-- \r\nAda Lovelace for Example Support" in out.text

        # The customer's answer to the reply joins the same case, which waits for an agent again.
        answer = message(subject=f"Re: {out['Subject']}", message_id="<e2e-2@customer.example>",
                         In_Reply_To=str(out["Message-ID"]),
                         References=f"<e2e-1@customer.example> {out['Message-ID']}", body="Thank you!")
        await asyncio.to_thread(send, smtp_port, answer)

        async def thread_complete() -> dict[str, Any] | None:
            _, body = await server.api("GET", f"/api/cases/{case_id}")
            return body if len(body["messages"]) == 4 else None

        case = await until(thread_complete, what="the answer in the case")
        assert [(m["direction"], m["kind"]) for m in case["messages"]] == [
            ("in", "mail"), ("out", "ack"), ("out", "reply"), ("in", "mail")]
        assert case["status"] == "open" and case["item_id"] == f"email-{case_id}-2"
        assert case["messages"][2]["status"] in ("queued", "sent")
        status, cases = await server.api("GET", "/api/cases?status=open")
        assert status == 200 and [c["id"] for c in cases["cases"]] == [case_id]

        status, closed = await server.api("POST", f"/api/cases/{case_id}/close", {})
        assert status == 200 and closed["status"] == "closed"


async def _offer_of(server: CosmoProcess, extension: str) -> str | None:
    _, agent = await server.api("GET", f"/api/agents/{extension}")
    offer: str | None = agent.get("offer")
    return offer


async def test_imap_mail_is_fetched_once_across_a_restart(tmp_path: Path, sink: SmtpSink, dovecot: Dovecot) -> None:
    def mail(n: int) -> bytes:
        return message(subject=f"imap e2e {n}", message_id=f"<imap-e2e-{n}@customer.example>").as_bytes()

    imap = [{"name": "support-inbox", "host": "127.0.0.1", "port": dovecot.port, "security": "none",
             "username": dovecot.user, "password": dovecot.password, "queue": "support",
             "address": "support@example.com", "poll_interval_s": 0.3}]
    data_dir = tmp_path / "var"
    dovecot.deliver(mail(1), mail(2), mail(3))
    async with cosmo_server(tmp_path / "first", email_setup(free_port("tcp"), sink.port, imap=imap),
                            data_dir=data_dir) as server:
        await until(lambda: _count(server, 3), what="three items")
    dovecot.deliver(mail(4), mail(5))
    async with cosmo_server(tmp_path / "second", email_setup(free_port("tcp"), sink.port, imap=imap),
                            data_dir=data_dir) as server:
        await until(lambda: _count(server, 5), what="five items")
        await asyncio.sleep(1.0)  # a few more polls: nothing more may come
        subjects = [i["data"]["subject"] for i in await items(server)]
        assert subjects == [f"imap e2e {n}" for n in range(1, 6)]


async def _count(server: CosmoProcess, count: int) -> bool:
    return len(await items(server)) >= count


SENDERS = 4


async def test_every_accepted_message_survives_kill_9(tmp_path: Path, sink: SmtpSink) -> None:
    """Mail at full speed from several connections; kill -9; every 250 is queued after the restart."""
    data_dir = tmp_path / "var"
    accepted: list[list[str]] = [[] for _ in range(SENDERS)]
    stop = threading.Event()

    def sender(index: int, port: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                for n in range(100_000):
                    if stop.is_set():
                        return
                    subject = f"durable {index}-{n:05d}"
                    msg = message(sender=f"sender{index}@load.example", subject=subject,
                                  message_id=f"<d{index}-{n}@load.example>", body=f"message {n} of {index}\n")
                    client.send_message(msg, from_addr=f"sender{index}@load.example", to_addrs=["support@example.com"])
                    accepted[index].append(subject)  # only after the 250
        except (smtplib.SMTPException, OSError):
            return

    smtp_port = free_port("tcp")
    async with cosmo_server(tmp_path / "first", email_setup(smtp_port, sink.port, log_level="WARNING"),
                            data_dir=data_dir) as server:
        loop = asyncio.get_running_loop()
        threads = [loop.run_in_executor(None, sender, i, smtp_port) for i in range(SENDERS)]
        await until(lambda: sum(map(len, accepted)) >= 300, timeout=30, what="300 messages accepted")
        await stop_server(server, hard=True)  # kill -9 by PID, mid-stream
        stop.set()
        await asyncio.gather(*threads)
    total = sum(map(len, accepted))
    async with cosmo_server(tmp_path / "second", email_setup(free_port("tcp"), sink.port, log_level="WARNING"),
                            data_dir=data_dir) as server:
        await until(lambda: _count(server, total), timeout=30, what=f"{total} items")
        await asyncio.sleep(0.5)
        queued = await items(server)
    subjects = [i["data"]["subject"] for i in queued]
    assert len(subjects) == len(set(subjects)), "a message was queued twice"
    wanted = {s for per_sender in accepted for s in per_sender}
    assert wanted <= set(subjects), f"lost after kill -9: {sorted(wanted - set(subjects))[:10]}"
    # At most the one message each connection had in flight when the server died may be extra.
    assert len(set(subjects) - wanted) <= SENDERS
    # In order: each sender's messages in the order it sent them, and the queue by arrival time.
    for index in range(SENDERS):
        mine = [s for s in subjects if s.startswith(f"durable {index}-")]
        assert mine == sorted(mine)
    times = [i["enqueued_at"] for i in queued]
    assert times == sorted(times)
