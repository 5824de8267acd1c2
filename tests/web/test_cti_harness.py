"""The harness of the CTI and desktop tests (no tests here).

A real aiohttp server on 127.0.0.1 port 0 with the web room mounted as the
composition root would mount it, a real :class:`AcdService` on SQLite and the
event bus; only what needs a phone is faked:

* :class:`FakeVoice`, the voice channel: on an offer it awaits the hub's
  ``pop()`` and then "sends the INVITE" (records the time, sends a UDP
  datagram where a test asks for one);
* :class:`FakeControls`, call control: answer/hang-up/hold act on the ACD and
  publish the call events the calls room would publish.

:class:`SupervisedAcd` adds what the wallboard needs of the ACD and the ACD
does not offer yet (re-prioritise and move a waiting item), written against
the router's mechanics: a sketch of what ``cosmo/acd`` should add.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from cosmo.acd.errors import RoutingError
from cosmo.acd.events import AcdEvent
from cosmo.acd.model import Channel, ItemState, OverflowTarget, WorkItem
from cosmo.acd.service import AcdService
from cosmo.config import AgentSettings, QueueSettings, Settings
from cosmo.events.bus import EventBus
from cosmo.events.events import CallAnswered, CallEnded, CallHeld, CallStarted
from cosmo.store.customers import CustomerRepository
from cosmo.store.db import Database
from cosmo.store.web import WebRepository
from cosmo.web.acd_api import add_acd_routes
from cosmo.web.api import bearer_auth
from cosmo.web.app import HttpServer, create_app
from cosmo.web.cti_messages import SERVER_MESSAGES
from cosmo.web.desktop import WebDesk, WebServices, add_web
from cosmo.web.services import ControlError, TransferKind
from cosmo.web.settings import WebSettings

__all__ = [
    "API_TOKEN", "PASSWORDS", "CtiClient", "FakeControls", "FakeVoice", "Harness", "SupervisedAcd", "harness",
]

API_TOKEN = "crm-token-1"
PASSWORDS = {"1001": "ada-secret", "1002": "grace-secret", "sup": "sup-secret", "admin": "admin-secret"}
KNOWLEDGE = Path(__file__).resolve().parents[2] / "config" / "knowledge.yaml"


@functools.cache
def password_hash(password: str) -> str:
    """Argon2 hashes made once per test run (each costs ~0.1 s)."""
    return PasswordHasher().hash(password)


def users(hashed: bool = True) -> list[dict[str, Any]]:
    def pw(name: str) -> str:
        return password_hash(PASSWORDS[name]) if hashed else PASSWORDS[name]

    return [
        {"username": "1001", "role": "agent", "extension": "1001", "name": "Ada Lovelace", "password": pw("1001")},
        {"username": "1002", "role": "agent", "extension": "1002", "name": "Grace Hopper", "password": pw("1002")},
        {"username": "sup", "role": "supervisor", "name": "Sam Supervisor", "password": pw("sup")},
        {"username": "admin", "role": "admin", "name": "Alex Admin", "password": pw("admin")},
    ]


class SupervisedAcd(AcdService):
    """:class:`AcdService` with the two supervisor moves the wallboard uses."""

    def _waiting_slot(self, item_id: str) -> Any:
        slot = self.router._slot(item_id)
        if slot.item.state is not ItemState.QUEUED:
            raise RoutingError(f"item {item_id} is not waiting (it is {slot.item.state})")
        return slot

    def reprioritise(self, item_id: str, priority: int) -> None:
        router = self.router

        def change(now: float) -> list[AcdEvent]:
            def action(out: list[AcdEvent]) -> None:
                slot = self._waiting_slot(item_id)
                router._unplace(slot)
                slot.item.priority = priority
                router._place(slot)

            return router._run(now, action)

        self._run(change)

    def move_item(self, item_id: str, queue: str) -> None:
        router = self.router

        def change(now: float) -> list[AcdEvent]:
            def action(out: list[AcdEvent]) -> None:
                slot = self._waiting_slot(item_id)
                router._queue(queue)
                router._unplace(slot)
                router._timers.cancel(slot.timer)
                slot.timer = None
                if router._enter(slot, queue, now, out) and router._advance(slot, now, out):
                    router._place(slot)

            return router._run(now, action)

        self._run(change)


def item_view(item: WorkItem) -> dict[str, Any]:
    return {"id": item.id, "channel": str(item.channel), "queue": item.queue, "priority": item.priority,
            "enqueued_at": item.enqueued_at, "data": dict(item.data)}


class FakeVoice:
    """The voice channel: pop first, then the INVITE (a time stamp, and a datagram if asked)."""

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd
        self.pop: Callable[[str, dict[str, Any]], Any] | None = None
        self.invites: list[tuple[str, str, float]] = []
        self.invite_to: tuple[str, int] | None = None
        self.on_invite: Callable[[str, str], None] | None = None
        self.invited = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        acd.register_channel(Channel.VOICE, self)

    def offer(self, item: WorkItem, extension: str) -> None:
        task = asyncio.get_running_loop().create_task(self._ring(item_view(item), extension))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring(self, view: dict[str, Any], extension: str) -> None:
        if self.pop is not None:
            await self.pop(extension, view)
        if self.on_invite is not None:
            self.on_invite(extension, view["id"])
        if self.invite_to is not None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(f"INVITE {view['id']}".encode(), self.invite_to)
        self.invites.append((extension, view["id"], time.time()))
        self.invited.set()

    def withdraw(self, item: WorkItem, extension: str, reason: str) -> None:
        pass

    def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None:
        pass


class FakeControls:
    """Call control as the calls room does it, without phones: the ACD and the call events."""

    def __init__(self, acd: AcdService, bus: EventBus) -> None:
        self.acd = acd
        self.bus = bus
        self.done: list[tuple[str, ...]] = []
        self._dials = itertools.count(1)

    def _item_of(self, call_id: str) -> WorkItem:
        for item in list(self.acd._items.values()):
            if item.data.get("call_id") == call_id:
                return item
        raise ControlError(404, f"no call {call_id}")

    async def answer(self, ext: str, item_id: str) -> None:
        item = self.acd.item(item_id)
        if item is None or not self.acd.accepted(item_id, ext):
            raise ControlError(409, f"item {item_id} is no longer offered to {ext}")
        self.bus.publish(CallAnswered(call_id=str(item.data.get("call_id"))))
        self.done.append(("answer", ext, item_id))

    async def reject(self, ext: str, item_id: str) -> None:
        self.acd.declined(item_id, ext, None)
        self.done.append(("reject", ext, item_id))

    async def hangup(self, ext: str, call_id: str) -> None:
        item = self._item_of(call_id)
        self.acd.done(item.id)
        self.bus.publish(CallEnded(call_id=call_id, reason="agent hung up", duration_s=3.0))
        self.done.append(("hangup", ext, call_id))

    async def hold(self, ext: str, call_id: str, on: bool) -> None:
        self.bus.publish(CallHeld(call_id=call_id, sip_call_id=f"sip-{call_id}", held=on))
        self.done.append(("hold" if on else "resume", ext, call_id))

    async def transfer(self, ext: str, call_id: str, target_kind: TransferKind, target: str) -> None:
        if target_kind == "queue" and target == "nowhere":
            raise ControlError(404, "no queue nowhere")
        self.done.append(("transfer", ext, call_id, target_kind, target))

    async def consult(self, ext: str, call_id: str, target_kind: TransferKind, target: str) -> None:
        self.done.append(("consult", ext, call_id, target_kind, target))

    async def complete_transfer(self, ext: str, call_id: str) -> None:
        self.done.append(("complete_transfer", ext, call_id))

    async def cancel_transfer(self, ext: str, call_id: str) -> None:
        self.done.append(("cancel_transfer", ext, call_id))

    async def dial(self, ext: str, number: str) -> str:
        call_id = f"dial-{next(self._dials)}"
        self.done.append(("dial", ext, number))

        async def progress() -> None:
            self.bus.publish(CallStarted(call_id=call_id, direction="outbound", caller=ext, callee=number))
            await asyncio.sleep(0.05)
            self.bus.publish(CallAnswered(call_id=call_id))

        asyncio.get_running_loop().create_task(progress())
        return call_id


@dataclass
class Harness:
    """Everything a test touches."""

    tmp_path: Path
    database: Database
    bus: EventBus
    acd: SupervisedAcd
    voice: FakeVoice
    controls: FakeControls
    customers: CustomerRepository
    store: WebRepository
    desk: WebDesk
    server: HttpServer
    web_settings: WebSettings
    calls: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/cti"

    async def call(self, queue: str = "support", *, caller: str = "+15550100123", priority: int = 0,
                   data: dict[str, Any] | None = None) -> WorkItem:
        """A caller enters ``queue`` (as the IVR's queue step would put them there)."""
        call_id = f"call-{next(self.calls)}"
        item = WorkItem(id=call_id, channel=Channel.VOICE, queue=queue, priority=priority,
                        data={"call_id": call_id, "caller": caller, "callee": "+15550100", **(data or {})})
        await self.acd.enqueue(item)
        return item

    async def session(self, username: str) -> aiohttp.ClientSession:
        """A client session signed in as ``username`` (cookie jar), with its CSRF token in ``headers``."""
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                        cookie_jar=aiohttp.CookieJar(unsafe=True))  # an IP host
        async with session.post(f"{self.url}/ui/login", json={"username": username,
                                                              "password": PASSWORDS[username]}) as response:
            body = await response.json()
            assert response.status == 200, body
        session.headers["X-CSRF-Token"] = body["csrf"]
        return session

    async def cti(self, username: str, **kwargs: Any) -> CtiClient:
        """A signed-in CTI socket that said hello (the snapshot is read)."""
        session = await self.session(username)
        client = await CtiClient.connect(session, self.ws_url, own_session=True, origin=self.url)
        if kwargs.get("hello", True):
            await client.hello()
        return client


class CtiClient:
    """A CTI socket as a desktop holds it: checks every message against its schema, keeps ``seq``."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, own_session: bool):
        self.session = session
        self.ws = ws
        self.own_session = own_session
        self.welcome: dict[str, Any] = {}
        self.seq = 0
        self.epoch = ""
        self.received: list[dict[str, Any]] = []
        self.unread: list[dict[str, Any]] = []
        self.ids = itertools.count(1)

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, *, own_session: bool = False,
                      origin: str | None = None, headers: dict[str, str] | None = None) -> CtiClient:
        all_headers = dict(headers or {})
        if origin is not None:
            all_headers["Origin"] = origin
        ws = await session.ws_connect(url, headers=all_headers, autoping=True)
        client = cls(session, ws, own_session)
        client.welcome = await client.receive()
        assert client.welcome["type"] == "welcome", client.welcome
        client.epoch = client.welcome["epoch"]
        return client

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = await self.ws.receive(timeout=timeout)
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {frame.type} {frame.data!r} {frame.extra!r}")
        message: dict[str, Any] = json.loads(frame.data)
        model = SERVER_MESSAGES[message["type"]]
        model.model_validate(message)  # every message the server sends follows docs/CTI.md
        if "seq" in message and message["type"] not in ("welcome", "resumed"):
            if message["type"] == "snapshot":
                self.seq = message["seq"]
                self.epoch = message["epoch"]
            else:
                assert message["seq"] == self.seq + 1, (message, self.seq)
                self.seq = message["seq"]
        self.received.append(message)
        return message

    async def expect(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """The first message of ``kind`` (with ``fields``) not expected yet, waiting for it
        if need be; messages before it are passed over (pings are answered)."""
        def wanted(message: dict[str, Any]) -> bool:
            return message["type"] == kind and all(message.get(k) == v for k, v in fields.items())

        for index, message in enumerate(self.unread):
            if wanted(message):
                del self.unread[: index + 1]
                return message
        self.unread.clear()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {kind} {fields} within {timeout} s; got {self.received[-5:]}")
            message = await self.receive(left)
            if message["type"] == "ping":
                await self.send({"type": "pong", "ts": message["ts"]})
            if wanted(message):
                return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def command(self, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send a command with an id; return its ``ack`` or ``error``."""
        ident = next(self.ids)
        await self.send({**message, "id": ident})
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            reply = await self.receive(max(0.01, deadline - asyncio.get_running_loop().time()))
            if reply["type"] in ("ack", "error") and reply.get("re") == ident:
                return reply
            self.unread.append(reply)  # for expect()

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "hello", **fields})
        return await self.expect("snapshot")

    async def close(self) -> None:
        await self.ws.close()
        if self.own_session:
            await self.session.close()


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, *, web: dict[str, Any] | None = None, wrap_up_s: int = 30,
                  ring_timeout_s: float = 30, hashed: bool = True) -> AsyncIterator[Harness]:
    """The server of the tests; ``web`` overrides :class:`WebSettings` fields."""
    settings = Settings(
        data_dir=tmp_path,
        agents=[
            AgentSettings(extension="1001", name="Ada Lovelace", password="x1", skills={"support": 5, "billing": 2}),
            AgentSettings(extension="1002", name="Grace Hopper", password="x2", skills={"support": 3}),
            AgentSettings(extension="1003", name="Alan Turing", password="x3", skills={"billing": 5}),
        ],
        queues=[
            QueueSettings(name="support", skills={"support": 3}, wrap_up_s=wrap_up_s, ring_timeout_s=ring_timeout_s),
            QueueSettings(name="billing", skills={"billing": 3}, wrap_up_s=wrap_up_s, ring_timeout_s=ring_timeout_s),
        ],
    )
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/cosmo.db")
    await database.start()
    bus = EventBus()
    acd = SupervisedAcd(settings, database, bus)
    await acd.start()
    voice = FakeVoice(acd)
    controls = FakeControls(acd, bus)
    customers = CustomerRepository(database)
    await customers.seed(Path(__file__).resolve().parents[2] / "config" / "customers.yaml")
    store = WebRepository(database)
    web_settings = WebSettings.model_validate({
        "users": users(hashed), "knowledge_file": str(KNOWLEDGE), "heartbeat_interval_s": 5,
        "heartbeat_timeout_s": 15,
        # The pops of these tests carry their history even on a busy test machine.
        "pop_lookup_wait_s": 0.25, **(web or {}),
    })
    box: dict[str, WebSettings] = {"web": web_settings}
    services = WebServices(
        acd=acd, bus=bus, customers=customers, controls=controls, users=store.users, sessions=store.sessions,
        knowledge=store.knowledge, dispositions=store.dispositions, settings=lambda: box["web"],
        api_tokens=lambda: [API_TOKEN], reasons=lambda: settings.acd.reasons,
    )
    app = create_app(node_name="test")
    app.middlewares.append(bearer_auth(lambda: [API_TOKEN]))
    add_acd_routes(app, acd)  # the integrations' API beside the people's pages, as in the server
    desk = add_web(app, services)
    voice.pop = desk.hub.pop
    server = HttpServer(app, "127.0.0.1", 0, shutdown_timeout=2)
    await server.start()
    h = Harness(tmp_path, database, bus, acd, voice, controls, customers, store, desk, server, web_settings)
    try:
        yield h
    finally:
        await server.close()
        await desk.close()
        await acd.close()
        await bus.close()
        await database.close()
