"""The desktop's e-mail endpoints (``cosmo/web/email_desk.py``) on a real aiohttp server.

The e-mail channel runs in the test's process as the server builds it
(:class:`tests.email.conftest.Stack`: SQLite, the real ACD and
:class:`~cosmo.email.service.EmailService`, SMTP intake on a free port, the
relay pointed at an SMTP sink), with the web room mounted on top and the
server's own :class:`~cosmo.server.DeskControls`, so an ``answer`` on the
CTI socket goes through ``EmailService.accept``.  Customers write with
smtplib; agents sign in with cookies and CSRF tokens like the desktop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import aiohttp

from cosmo.calls.control import AgentCallControl
from cosmo.server import DeskControls
from cosmo.store.customers import CustomerRepository
from cosmo.store.web import WebRepository
from cosmo.web.app import HttpServer, create_app
from cosmo.web.desktop import WebServices, add_web
from cosmo.web.settings import WebSettings
from tests.email.conftest import Stack, message, send, settings_for, sink
from tests.email.peers import SmtpSink
from tests.web.test_cti_harness import PASSWORDS, CtiClient, FakeControls, users

__all__ = ["sink"]  # the fixture, used by name


@dataclass
class Room:
    stack: Stack
    server: HttpServer
    sink: SmtpSink

    @property
    def url(self) -> str:
        return self.server.url

    async def session(self, username: str, *, csrf: bool = True) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                        cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.post(f"{self.url}/ui/login",
                                json={"username": username, "password": PASSWORDS[username]}) as response:
            body = await response.json()
            assert response.status == 200, body
        if csrf:
            session.headers["X-CSRF-Token"] = body["csrf"]
        return session

    async def cti(self, username: str) -> CtiClient:
        session = await self.session(username)
        client = await CtiClient.connect(session, self.url.replace("http://", "ws://") + "/cti", own_session=True,
                                         origin=self.url)
        await client.hello()
        return client

    async def mail(self, msg: EmailMessage) -> None:
        routed = self.stack.service.router.routed
        await asyncio.to_thread(send, self.stack.smtp_port, msg)
        await self.stack.routed(routed + 1)


@contextlib.asynccontextmanager
async def email_room(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Room]:
    stack = Stack(tmp_path / "node", settings_for(sink.port))
    await stack.start()
    assert stack.db is not None and stack.acd is not None
    store = WebRepository(stack.db)
    web_settings = WebSettings.model_validate({"users": users(), "heartbeat_interval_s": 5,
                                               "heartbeat_timeout_s": 15})
    # The server's controls: e-mail through the e-mail channel, the rest to call control (not used here).
    controls = DeskControls(cast(AgentCallControl, FakeControls(stack.acd, stack.bus)), stack.acd, stack.service)
    services = WebServices(
        acd=stack.acd, bus=stack.bus, customers=CustomerRepository(stack.db), controls=controls,
        users=store.users, sessions=store.sessions, knowledge=store.knowledge, dispositions=store.dispositions,
        settings=lambda: web_settings, api_tokens=list, reasons=lambda: stack.settings.acd.reasons,
        email=stack.service, email_templates=lambda: stack.settings.email.reply.templates,
    )
    app = create_app(node_name="test")
    desk = add_web(app, services)
    server = HttpServer(app, "127.0.0.1", 0, shutdown_timeout=2)
    await server.start()
    try:
        yield Room(stack, server, sink)
    finally:
        await server.close()
        await desk.close()
        await stack.close()


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None,
               data: bytes | None = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body, data=data,
                               headers={"Content-Type": "application/json"} if data is not None else None) as r:
        return r.status, await r.json()


def with_attachment() -> EmailMessage:
    msg = message(message_id="<desk-1@customer.example>", body="Hello,\nthe printer shows error E42.\n")
    msg.add_attachment(b"E42 at 09:14\n", maintype="text", subtype="plain", filename="log.txt")
    return msg


async def test_agent_reads_accepts_and_replies_and_others_are_refused(tmp_path: Path, sink: SmtpSink) -> None:
    async with email_room(tmp_path, sink) as room:
        ada, grace, sup = await room.session("1001"), await room.session("1002"), await room.session("sup")
        no_csrf = await room.session("1001", csrf=False)
        desk = await room.cti("1001")
        try:
            ui = room.url + "/ui"
            assert await call(ada, "GET", f"{ui}/email/templates") == (200, {"templates": [
                {"name": "thanks", "text": "Hello $name,\n\n$body\n\nThanks, $agent"}]})

            await room.mail(with_attachment())
            assert (await desk.command({"type": "state", "state": "available"}))["type"] == "ack"
            offer = await desk.expect("offer", channel="email")
            item_id = offer["item_id"]
            assert (offer["sender"], offer["subject"]) == ("jane@customer.example", "My printer is broken")

            # Offered: the agent may read it (the whole text, headers, attachments, the thread) ...
            status, mail = await call(ada, "GET", f"{ui}/items/{item_id}/email")
            assert status == 200, mail
            assert mail["text"] == "Hello,\nthe printer shows error E42.\n"
            assert ["Message-ID", "<desk-1@customer.example>"] in mail["headers"]
            [attachment] = mail["attachments"]
            assert attachment["filename"] == "log.txt"
            assert attachment["url"] == f"/ui/emails/{mail['id']}/attachments/{attachment['index']}"
            case = mail["case"]
            case_id = case["id"]
            assert case["item"]["state"] == "offered" and case["item"]["agent"] == "1001"
            assert [(m["direction"], m["kind"]) for m in case["messages"]] == [("in", "mail"), ("out", "ack")]
            assert "raw_url" not in mail
            # ... not act on it before accepting, and nobody else may read it.
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": "Hi"}) == (
                409, {"error": f"case {case_id} is offered to you: accept it first"})
            assert await call(grace, "GET", f"{ui}/items/{item_id}/email") == (
                403, {"error": f"item {item_id} is not offered to you or in your hands"})
            assert await call(grace, "GET", f"{ui}/cases/{case_id}") == (
                403, {"error": f"case {case_id} is not offered to you or in your hands"})
            assert await call(grace, "GET", f"{ui}/emails/{mail['id']}") == (
                403, {"error": f"e-mail {mail['id']} is not offered to you or in your hands"})
            assert (await call(sup, "GET", f"{ui}/cases/{case_id}"))[0] == 200

            # Accepted from the desktop (CTI answer): through EmailService.accept, so the case names its agent.
            assert (await desk.command({"type": "answer", "item_id": item_id}))["type"] == "ack"
            await desk.expect("assigned", item_id=item_id)
            status, case = await call(ada, "GET", f"{ui}/cases/{case_id}")
            assert status == 200 and case["agent"] == "1001" and case["item"]["state"] == "assigned"
            accepted = [e for e in room.stack.events if getattr(e, "change", None) == "accepted"]
            assert [e.agent for e in accepted] == ["1001"]

            async with ada.get(room.url + attachment["url"]) as response:
                assert response.status == 200 and await response.read() == b"E42 at 09:14\n"
                assert response.headers["Content-Disposition"] == 'attachment; filename="log.txt"'
            assert (await call(grace, "GET", room.url + attachment["url"]))[0] == 403

            # Refusals change nothing: someone else's case, a supervisor, bad bodies, unknown ids, no CSRF.
            assert await call(grace, "POST", f"{ui}/cases/{case_id}/reply", {"body": "Mine now"}) == (
                403, {"error": f"case {case_id} is not in your hands"})
            assert await call(grace, "POST", f"{ui}/cases/{case_id}/close") == (
                403, {"error": f"case {case_id} is not in your hands"})
            assert await call(sup, "POST", f"{ui}/cases/{case_id}/close") == (
                403, {"error": "supervisor may not do this"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {}) == (
                400, {"error": "write a reply (or pick a template)"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": 5}) == (
                400, {"error": "body: Input should be a valid string"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": "x", "done": "yes"}) == (
                400, {"error": "done: Input should be a valid boolean"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": "x", "to": "a@b.c"}) == (
                400, {"error": "to: Extra inputs are not permitted"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", data=b"{not json") == (
                400, {"error": "body is not valid JSON"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": "x", "template": "nope"}) == (
                400, {"error": "no reply template 'nope' (known: thanks)"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/transfer", {"queue": ""}) == (
                400, {"error": "queue: String should have at least 1 character"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/transfer", {"queue": "support"}) == (
                409, {"error": f"case {case_id} is in queue support already"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/transfer", {"queue": "nowhere"}) == (
                409, {"error": "no queue 'nowhere'"})
            assert await call(ada, "POST", f"{ui}/cases/{case_id}/close", {"now": True}) == (
                400, {"error": "close takes no body"})
            assert await call(ada, "GET", f"{ui}/cases/999999") == (404, {"error": "no case 999999"})
            assert await call(ada, "GET", f"{ui}/emails/999999") == (404, {"error": "no e-mail 999999"})
            assert await call(ada, "GET", f"{ui}/items/call-1/email") == (404, {"error": "no e-mail item call-1"})
            assert await call(no_csrf, "POST", f"{ui}/cases/{case_id}/reply", {"body": "Hi"}) == (
                403, {"error": "missing or invalid CSRF token (send the X-CSRF-Token header)"})
            _, case = await call(ada, "GET", f"{ui}/cases/{case_id}")
            assert case["status"] == "open" and len(case["messages"]) == 2 and len(sink.messages) == 1

            # The reply: through the template, threaded; the item ends and wrap-up follows on the desktop.
            status, sent = await call(ada, "POST", f"{ui}/cases/{case_id}/reply",
                                      {"body": "A technician comes tomorrow.", "template": "thanks", "done": True})
            assert status == 202, sent
            assert sent["case"]["status"] == "answered" and sent["direction"] == "out"
            await desk.expect("completed", item_id=item_id, channel="email")
            [_, out] = await sink.wait_for(2)
            assert out["In-Reply-To"] == "<desk-1@customer.example>"
            assert out["References"] == "<desk-1@customer.example>"
            assert out.text.replace("\r\n", "\n").startswith(
                "Hello Jane Doe,\n\nA technician comes tomorrow.\n\nThanks, Ada Lovelace\n")
            # Out of the agent's hands now.
            assert (await call(ada, "GET", f"{ui}/cases/{case_id}"))[0] == 403
            assert (await call(ada, "POST", f"{ui}/cases/{case_id}/reply", {"body": "More"}))[0] == 403
        finally:
            await desk.close()
            for session in (ada, grace, sup, no_csrf):
                await session.close()


async def test_two_in_hand_transfer_close_and_reject(tmp_path: Path, sink: SmtpSink) -> None:
    async with email_room(tmp_path, sink) as room:
        ada = await room.session("1001")
        desk = await room.cti("1001")
        try:
            ui = room.url + "/ui"
            await room.mail(message(subject="First question", message_id="<q1@customer.example>"))
            await room.mail(message(sender="Bob <bob@other.example>", subject="Second question"))
            await desk.command({"type": "state", "state": "available"})
            # Two e-mails in hand at once (capacity 3): each offered in turn, each accepted.
            held = []
            for _ in range(2):
                offer = await desk.expect("offer", channel="email")
                assert (await desk.command({"type": "answer", "item_id": offer["item_id"]}))["type"] == "ack"
                await desk.expect("assigned", item_id=offer["item_id"])
                _, mail = await call(ada, "GET", f"{ui}/items/{offer['item_id']}/email")
                held.append((offer["item_id"], mail["case"]["id"], mail["subject"]))
            assert sorted(subject for *_, subject in held) == ["First question", "Second question"]

            # Transfer one to sales (no skill of the agent's): it waits there, out of the agent's hands.
            (first_item, first_case, _), (second_item, second_case, _) = held
            status, moved = await call(ada, "POST", f"{ui}/cases/{first_case}/transfer", {"queue": "sales"})
            assert status == 200, moved
            assert moved["queue"] == "sales" and moved["item"]["state"] == "queued"
            await desk.expect("completed", item_id=first_item)
            assert (await call(ada, "GET", f"{ui}/cases/{first_case}"))[0] == 403

            # Close the other.
            status, closed = await call(ada, "POST", f"{ui}/cases/{second_case}/close")
            assert status == 200 and closed["status"] == "closed" and closed["item"] is None
            await desk.expect("completed", item_id=second_item)
            assert await call(ada, "POST", f"{ui}/cases/{second_case}/close") == (
                403, {"error": f"case {second_case} is not in your hands"})

            # A rejected e-mail offer goes back through the channel's decline: the item waits again.
            await room.mail(message(subject="Third question"))
            offer = await desk.expect("offer", channel="email", subject="Third question")
            reply = await desk.command({"type": "reject", "item_id": offer["item_id"]})
            assert reply["type"] == "ack", reply
            await desk.expect("offer_withdrawn", item_id=offer["item_id"])
            item = room.stack.acd.item(offer["item_id"]) if room.stack.acd is not None else None
            assert item is not None and str(item.state) == "queued"
        finally:
            await desk.close()
            await ada.close()

