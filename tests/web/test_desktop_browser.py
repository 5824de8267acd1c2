"""The desktop and the wallboard in a real browser: Debian's Chromium, headless, driven by Playwright.

An agent signs in and goes available; a call for the demo customer Ada Byron
(account 123456 entered in the IVR) pops on the desktop before the phone's
INVITE leaves; the agent answers, holds, resumes, hangs up and saves a
disposition, which lands in the customer's history.  Mid-call the socket is
dropped and the hold that happened meanwhile is replayed.  A supervisor
watches the queue counts change on the wallboard.  Screenshots go to
``tests/artifacts/``.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright``
package (never a downloaded browser); skipped without them.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest

from cosmo.events.events import CallHeld
from cosmo.store.customers import InteractionRecord
from tests.web.test_cti_harness import PASSWORDS, harness

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

PAGE_ERRORS: list[str] = []
"""Script errors of every page; a test fails on any."""

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    PAGE_ERRORS.clear()
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            await chromium.close()
    assert not PAGE_ERRORS, PAGE_ERRORS


async def signed_in(browser: Any, url: str, username: str, password: str, landing: str) -> Any:
    """A new browser context signed in as ``username`` (a wrong password first), on ``landing``."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{username}: {error}"))

    def console(message: Any) -> None:
        # A 401 or 403 answered, or the socket reconnecting to a server the test has stopped: expected.
        if message.type == "error" and "Failed to load resource" not in message.text \
                and "ERR_CONNECTION_REFUSED" not in message.text:
            PAGE_ERRORS.append(f"{username}: console: {message.text}")

    page.on("console", console)
    await page.goto(f"{url}{landing}")  # not signed in: sent to the sign-in page
    assert "/login?next=" in page.url
    await page.fill("#username", username)
    await page.fill("#password", "wrong")
    await page.click("#submit")
    await page.wait_for_selector("#error:has-text('wrong user name or password')")
    if username == "sup":
        await shot(page, "login")
    await page.fill("#password", password)
    await page.click("#submit")
    await page.wait_for_url(lambda url: urlsplit(url).path == landing)
    return page


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_agent_takes_a_call_and_the_wallboard_follows(tmp_path: Path, browser: Any) -> None:
    async with harness(tmp_path, wrap_up_s=120) as h:
        ada = await h.customers.find("account", "123456")
        assert ada is not None
        await h.customers.add_interaction(InteractionRecord(
            channel="email", ref="mail-77", customer_id=ada.id, started_at=_days_ago(9), ended_at=_days_ago(9),
            queue="billing", agent="1002", outcome="replied", disposition="resolved",
            notes="Asked for a copy of the March invoice; sent.",
        ))
        await h.customers.add_interaction(InteractionRecord(
            channel="voice", ref="old-call", customer_id=ada.id, started_at=_days_ago(31), ended_at=_days_ago(31),
            queue="support", agent="1001", outcome="answered", disposition="follow-up",
            notes="Router keeps dropping the line; line test booked.",
        ))

        supervisor = await signed_in(browser, h.url, "sup", PASSWORDS["sup"], "/wallboard")
        await supervisor.wait_for_selector("#link:has-text('Live')")
        agent = await signed_in(browser, h.url, "1001", PASSWORDS["1001"], "/desk")
        await agent.wait_for_selector("#link:has-text('Live')")
        await agent.wait_for_selector("#state-select.presence-logged_out")
        await shot(agent, "desk-idle")

        # Callers wait while nobody is in: the wallboard counts them.
        waiting = [await h.call("billing", caller="+15550100124"), await h.call("billing", caller="+15550100999")]
        await supervisor.wait_for_selector("[data-queue=billing] .waiting:text-is('2')")
        call = await h.call("support", data={
            "customer": ada.to_dict(), "ivr": {"account": "123456", "menu": "billing", "said": "refund for a charge"},
        })
        await supervisor.wait_for_selector("[data-queue=support] .waiting:text-is('1')")
        await supervisor.wait_for_selector("#total-waiting:text-is('3')")

        # The agent goes available (G); the pop is on screen before the phone gets its INVITE.
        with Phone() as phone:
            h.voice.invite_to = phone.address
            await agent.keyboard.press("g")
            await agent.wait_for_selector("#pop-name:has-text('Ada Byron')")
            await agent.wait_for_selector("#ivr:has-text('123456')")
            invite_seen = await asyncio.to_thread(phone.received.wait, 5)
        assert invite_seen and h.voice.invites[-1][:2] == ("1001", call.id)
        popped_at = await agent.evaluate("window.cosmoDesk.desk.poppedAt") / 1000
        print(f"pop on screen {1000 * (phone.at - popped_at):.1f} ms before the phone received its INVITE")
        assert popped_at < phone.at
        await agent.wait_for_selector("#history:has-text('line test booked')")
        await agent.wait_for_selector("#articles:has-text('Disputing a charge')")
        await supervisor.wait_for_selector("[data-queue=support] .waiting:text-is('0')")
        await supervisor.wait_for_selector("tr[data-extension='1001'] .pill.reserved")
        await shot(agent, "desk-offer")

        # Answer (A), look at the transfer panel (T, Esc), hold (H), resume (H).
        await agent.keyboard.press("a")
        await agent.wait_for_selector("#hold:has-text('Hold')")
        await agent.keyboard.press("t")
        await agent.wait_for_selector("#transfer-kind")
        await agent.select_option("#transfer-kind", "agent")
        await shot(agent, "desk-transfer")
        await agent.keyboard.press("Escape")
        await agent.wait_for_selector("#transfer-kind", state="detached")
        await agent.keyboard.press("h")
        await agent.wait_for_selector("#hold:has-text('Resume')")
        await shot(agent, "desk-held")
        await agent.keyboard.press("h")
        await agent.wait_for_selector("#hold:has-text('Hold')")

        # The socket drops mid-call; the phone holds meanwhile; the desk catches up by resuming.
        await agent.evaluate("window.cosmoDesk.socket.ws.close()")
        await agent.wait_for_selector("#link:has-text('Offline'), #link:has-text('Connecting')")
        h.bus.publish(CallHeld(call_id=call.id, sip_call_id="x", held=True))
        await agent.wait_for_selector("#hold:has-text('Resume')")
        assert await agent.evaluate("window.cosmoDesk.socket.resumes") >= 1
        await agent.keyboard.press("h")
        await agent.wait_for_selector("#hold:has-text('Hold')")

        # The supervisor sees the agent busy, then hang-up (X), wrap-up, disposition.
        await supervisor.wait_for_selector("tr[data-extension='1001'] .pill.busy")
        await shot(supervisor, "wallboard")
        await agent.keyboard.press("x")
        await agent.wait_for_selector("#wrap-card:not([hidden])")
        await agent.keyboard.press("1")
        await agent.fill("#wrap-notes", "Refund of 12.00 granted for the duplicate charge.")
        await shot(agent, "desk-wrap-up")
        await agent.click("#wrap-ready")
        await agent.wait_for_selector("#wrap-card", state="hidden")
        await agent.wait_for_selector("#state-select.presence-available")
        assert await agent.inner_text("#state-pill") == ""  # no work in hand

        stored = await h.customers.history(ada.id)
        assert [(e.ref, e.agent, e.disposition, e.notes) for e in stored[:1]] == [
            (call.id, "1001", "resolved", "Refund of 12.00 granted for the duplicate charge.")]

        # The customer page shows the whole history; notes are editable.
        customer = await agent.context.new_page()
        await customer.goto(f"{h.url}/customers/{ada.id}")
        await customer.wait_for_selector("#history:has-text('Refund of 12.00')")
        await customer.fill("#notes", "Prefers mornings. Refund granted on the last call.")
        await customer.select_option("#preferred", "email")
        await customer.keyboard.press("Control+s")
        await customer.wait_for_selector("#saved:text-is('saved')")
        changed = await h.customers.find("id", str(ada.id))
        assert changed is not None and changed.preferred_channel == "email"
        await shot(customer, "customer")

        # Supervisor actions from the wallboard: raise a waiting caller's priority.
        row = supervisor.locator(f"tr[data-item='{waiting[1].id}']")
        await row.locator("button[title='Raise priority']").click()
        await supervisor.wait_for_selector(f"tr[data-item='{waiting[1].id}'] .prio b:text-is('1')")
        assert h.acd.items_view("billing")[0]["id"] == waiting[1].id
        # A supervisor puts an agent on lunch from the board; another one takes a billing call.
        row = supervisor.locator("tr[data-extension='1001'] select")
        await row.select_option("not_ready:lunch")
        await supervisor.wait_for_selector("tr[data-extension='1001'] .pill.not_ready:has-text('Lunch')")
        assert h.acd.agent_view("1001")["reason"] == "lunch"
        h.acd.set_agent_state("1003", "available")
        assert h.acd.accepted(waiting[1].id, "1003")
        await supervisor.wait_for_selector("tr[data-extension='1003'] .pill.busy")
        await supervisor.wait_for_selector("[data-queue=billing] .waiting:text-is('1')")
        await shot(supervisor, "wallboard-after")


async def test_admin_edits_the_knowledge_base(tmp_path: Path, browser: Any) -> None:
    async with harness(tmp_path) as h:
        admin = await signed_in(browser, h.url, "admin", PASSWORDS["admin"], "/wallboard")
        await admin.goto(f"{h.url}/admin")
        await admin.wait_for_selector("#list button.item")
        await admin.click("#new")
        await admin.fill("#title", "Roaming charges abroad")
        await admin.fill("#tags", "roaming, abroad, billing")
        await admin.fill("#body", "Roaming is included in the EU; elsewhere 2.00 a day.")
        await admin.click("#save")
        await admin.wait_for_selector("#list:has-text('Roaming charges abroad')")
        found = h.desk.knowledge.suggest(ivr={"said": "roaming"})
        assert [a.title for a in found] == ["Roaming charges abroad"]
        await shot(admin, "admin")
        # An agent cannot open the admin page.
        agent = await signed_in(browser, h.url, "1002", PASSWORDS["1002"], "/desk")
        response = await agent.goto(f"{h.url}/admin")
        assert response.status == 403


class Phone:
    """A UDP socket standing for the agent's phone: when did the INVITE arrive?"""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.sock.getsockname()
        self.received = threading.Event()
        self.at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.sock.settimeout(10)
        try:
            self.sock.recvfrom(2048)
        except OSError:
            return
        self.at = time.time()
        self.received.set()

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.thread.join(timeout=11)


def _days_ago(days: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(days=days, hours=3)
