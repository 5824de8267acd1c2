"""E-mail on the agent desktop, in Debian's Chromium (Playwright) against a real ``cosmo serve``.

Customers write to support@example.com with smtplib; the relay is an SMTP
sink in the test.  Agent 1001 (e-mail only, capacity 3: no phone needed to
go available) signs in on the desktop and goes available; the e-mail pops
with its text (shown as text: markup in a mail stays characters), its
attachment and the suggested articles.  While the agent holds it a second
e-mail pops: the desk shows both as tabs.  The agent accepts both, picks a
template, inserts a knowledge-base answer, and sends; the reply reaches the
sink threaded (Message-ID, In-Reply-To, References) and the desk goes to
wrap-up for it while the other e-mail stays in hand, which the agent then
closes.  The customer's answer to the reply joins the same case and pops
again with the thread.  Screenshots: ``tests/artifacts/email-desk-*.png``.

Needs Debian's ``chromium`` and the ``playwright`` package; skipped without them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.cosmo_server import CosmoProcess, cosmo_server
from tests.email.conftest import message, send, sink
from tests.email.peers import SinkMessage, SmtpSink
from tests.email.test_end_to_end import email_setup, until
from tests.peers.common import free_port
from tests.web.test_desktop_browser import CHROMIUM, browser, shot, signed_in

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

__all__ = ["browser", "sink"]  # the fixtures, used by name

SLOW = ("Hello,\n\nsince Monday our internet connection drops every evening around 8 pm and comes back "
        "after ten minutes or so. The router's lights all look normal.\n\n"
        "I attach the speed test log. <script>alert('not run')</script>\n\nThanks,\nJane\n")


async def waiting(server: CosmoProcess, count: int) -> None:
    async def check() -> bool:
        status, body = await server.api("GET", "/api/items?queue=support")
        return status == 200 and len(body["items"]) >= count

    await until(check, what=f"{count} e-mail(s) waiting")


def replies(sink: SmtpSink) -> list[SinkMessage]:
    return [m for m in sink.messages if m["Auto-Submitted"] is None]


async def test_agent_reads_and_answers_email_on_the_desktop(tmp_path: Path, browser: Any, sink: SmtpSink) -> None:
    smtp_port = free_port("tcp")
    async with cosmo_server(tmp_path, email_setup(smtp_port, sink.port)) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        desk = await signed_in(browser, url, "1001", "agent1001", "/desk")
        await desk.wait_for_selector("#link:has-text('Live')")

        first = message(subject="Internet connection drops every evening", body=SLOW,
                        message_id="<slow-1@customer.example>")
        first.add_attachment(b"20:01 12.1 Mbit/s\n20:05 0.0 Mbit/s\n20:14 48.9 Mbit/s\n", maintype="text",
                             subtype="plain", filename="speedtest.txt")
        await asyncio.to_thread(send, smtp_port, first)
        await waiting(server, 1)

        # Available (G): the e-mail pops, readable before it is accepted.
        await desk.keyboard.press("g")
        await desk.wait_for_selector("#interaction.offer:has-text('Incoming e-mail')")
        await desk.wait_for_selector("#mail-subject:has-text('Internet connection drops every evening')")
        assert "<script>alert('not run')</script>" in (await desk.text_content("#mail-text") or "")
        assert await desk.locator("#mail-text script").count() == 0
        await desk.wait_for_selector("#mail-attachments:has-text('speedtest.txt')")
        await desk.wait_for_selector("#articles:has-text('No service or slow connection')")
        case_text = await desk.text_content("#mail-case") or ""
        case_id = int(case_text.removeprefix("case #"))
        await shot(desk, "email-desk-offer")

        # A second customer writes while the agent takes the first (A): both are in hand, as tabs.
        await asyncio.to_thread(send, smtp_port, message(
            sender="Bob Builder <bob@other.example>", subject="Moving house next month",
            body="Hi,\nwe move to 12 Elm Street on 1 June. Can the line move with us?\nBob\n",
            message_id="<move-1@other.example>"), sender="bob@other.example")
        await desk.keyboard.press("a")

        async def accepted() -> dict[str, Any] | None:
            status, body = await server.api("GET", f"/api/cases/{case_id}")
            return body if status == 200 and body["agent"] == "1001" else None

        case = await until(accepted, what="the case accepted by 1001")
        assert case["item"]["state"] == "assigned"
        await desk.wait_for_selector("#work-tabs button.tab.incoming:has-text('Moving house')")
        await shot(desk, "email-desk-second-offer")
        await desk.keyboard.press("a")
        await desk.wait_for_selector("#work-tabs button.tab[aria-selected=true]:has-text('Moving house')")
        await desk.wait_for_selector("#mail-subject:has-text('Moving house')")

        # Back to the first: a template, the agent's words, a knowledge-base answer inserted; send.
        await desk.click("#work-tabs button.tab:has-text('Internet connection')")
        await desk.wait_for_selector("#mail-subject:has-text('Internet connection drops')")
        await desk.select_option("#reply-template", "thanks")
        await desk.wait_for_selector("#template-preview:has-text('Thank you for writing to us')")
        await desk.fill("#reply-body", "I am sorry about the evening drops; here is what helps:")
        await desk.click("#articles details:has-text('No service or slow connection') button.insert")
        typed = await desk.input_value("#reply-body")
        assert typed.startswith("I am sorry about the evening drops; here is what helps:\n\n") and len(typed) > 80
        await shot(desk, "email-desk-reply")
        await desk.click("#reply-send")

        [out] = await until(lambda: replies(sink), what="the reply at the sink")
        _, case = await server.api("GET", f"/api/cases/{case_id}")
        sent = [m for m in case["messages"] if m["kind"] == "reply"]
        assert len(sent) == 1 and out["Message-ID"] == sent[0]["message_id"]
        assert out["In-Reply-To"] == "<slow-1@customer.example>"
        assert out["References"] == "<slow-1@customer.example>"
        assert out["Subject"] == f"Re: Internet connection drops every evening [#{case_id}]"
        text = out.text.replace("\r\n", "\n")
        assert text.startswith("Hello Jane Doe,\n\nI am sorry about the evening drops; here is what helps:\n\n")
        assert "Thank you for writing to us." in text and "Ada Lovelace for Example Support" in text
        assert case["status"] == "answered" and case["item"] is None

        # Wrap-up for the answered e-mail; the other stays in hand and is closed from the desk.
        await desk.wait_for_selector("#wrap-card:not([hidden])")
        await desk.wait_for_selector("#mail-subject:has-text('Moving house')")
        await desk.click("#dispositions button[data-code=resolved]")
        await desk.fill("#wrap-notes", "Evening drops: router checks sent.")
        await shot(desk, "email-desk-wrap-up")
        await desk.click("#wrap-save")
        await desk.wait_for_selector("#wrap-card", state="hidden")
        await desk.click("#mail-close")
        await desk.wait_for_selector("#wrap-card:not([hidden])")
        await desk.wait_for_selector("#mail-card", state="hidden")
        await desk.click("#dispositions button[data-code=resolved]")
        await desk.click("#wrap-ready")
        await desk.wait_for_selector("#state-select.presence-available")

        # The customer answers the reply: the same case, offered again with its thread.
        answer = message(subject=str(out["Subject"]), message_id="<slow-2@customer.example>",
                         In_Reply_To=str(out["Message-ID"]),
                         References=f"<slow-1@customer.example> {out['Message-ID']}",
                         body="Thank you, the router reset fixed it!\n")
        await asyncio.to_thread(send, smtp_port, answer)

        async def joined() -> dict[str, Any] | None:
            _, body = await server.api("GET", f"/api/cases/{case_id}")
            return body if len(body["messages"]) == 4 else None

        case = await until(joined, what="the answer in the case")
        assert [(m["direction"], m["kind"]) for m in case["messages"]] == [
            ("in", "mail"), ("out", "ack"), ("out", "reply"), ("in", "mail")]
        assert case["messages"][-1]["message_id"] == "<slow-2@customer.example>"
        await desk.wait_for_selector("#mail-text:has-text('router reset fixed it')")
        await desk.wait_for_selector(f"#mail-case:text-is('case #{case_id}')")
        await desk.click("#mail-thread summary")
        await desk.wait_for_selector("#mail-thread:has-text('I am sorry about the evening drops')")
        await shot(desk, "email-desk-follow-up")
