"""The composition root: builds every service from the settings, starts them in
order and stops them in reverse.

Nothing imports this module back (ARCHITECTURE: ``config.py``, ``cli.py``,
``server.py`` know everything and are known by nobody).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cosmo.acd.errors import AcdError
from cosmo.acd.model import Channel, WorkItem
from cosmo.acd.service import AcdService
from cosmo.calls.call import CallRecord
from cosmo.calls.control import AgentCallControl, CallControlError
from cosmo.calls.ivr_port import IvrCalls
from cosmo.calls.manager import CallManager
from cosmo.calls.media import CallMedia
from cosmo.calls.queueing import VoiceQueue
from cosmo.calls.service import TelephonyService
from cosmo.calls.trunks import ProviderRegistration, TrunkDirectory
from cosmo.config import (
    AgentSettings,
    ConfigError,
    QueueSettings,
    Settings,
    default_database_url,
    load_config,
)
from cosmo.email.errors import EmailError
from cosmo.email.service import EmailService
from cosmo.events.bus import EventBus
from cosmo.events.events import AgentRegistered, AgentUnregistered
from cosmo.ivr.registry import FlowRegistry
from cosmo.rtp.engine import MediaEngine
from cosmo.rtp.g711 import alaw_encode, ulaw_encode
from cosmo.rtp.prompts import PromptCache, PromptNotFound
from cosmo.sip.auth import DigestAuthenticator, FailureThrottle, ha1
from cosmo.sip.challenge import Challenger
from cosmo.sip.registrar import (
    Binding,
    LocationService,
    Registrar,
    RegistrarPolicy,
    RegistrarService,
    aor_for,
)
from cosmo.sip.stack import SipStack
from cosmo.sip.transaction import Timers
from cosmo.sip.transport import Address
from cosmo.sip.useragent import UserAgent
from cosmo.speech.service import SpeechService
from cosmo.store import repositories as repo
from cosmo.store.batch import BatchWriter
from cosmo.store.customers import CustomerRepository, InteractionRecord
from cosmo.store.db import Database
from cosmo.store.email import EmailRepository
from cosmo.store.web import WebRepository
from cosmo.web.acd_api import add_acd_routes
from cosmo.web.api import add_telephony_routes, bearer_auth
from cosmo.web.app import HttpServer, create_app
from cosmo.web.config_api import ConfigChange, ConfigChangeRefused, add_config_routes
from cosmo.web.control_api import add_control_routes
from cosmo.web.desktop import WebDesk, add_web
from cosmo.web.email_api import add_email_routes
from cosmo.web.services import WebServices

log = logging.getLogger(__name__)


class StoredBindings:
    """The registrar's :class:`~cosmo.sip.registrar.BindingStore` on the database."""

    def __init__(self, database: Database) -> None:
        self.repository = repo.LocationRepository(database)

    async def save(self, binding: Binding) -> None:
        await self.repository.upsert_binding(
            repo.Binding(
                aor=binding.aor,
                contact=binding.contact,
                expires_at=datetime.fromtimestamp(binding.expires_at, UTC),
                call_id=binding.call_id,
                cseq=binding.cseq,
                source_transport=binding.source.transport,
                source_host=binding.source.host,
                source_port=binding.source.port,
                instance_id=binding.instance_id,
                reg_id=binding.reg_id,
                user_agent=binding.user_agent,
                q=binding.q,
            )
        )

    async def delete(self, aor: str, contact: str) -> None:
        await self.repository.remove_binding(aor, contact)

    async def load(self, now: float) -> list[Binding]:
        rows = await self.repository.all_bindings(datetime.fromtimestamp(now, UTC))
        return [
            Binding(
                aor=row.aor,
                contact=row.contact,
                expires_at=_as_utc(row.expires_at).timestamp(),
                call_id=row.call_id,
                cseq=row.cseq,
                source=Address(row.source_transport, row.source_host, row.source_port),
                instance_id=row.instance_id,
                reg_id=row.reg_id,
                user_agent=row.user_agent,
                q=row.q if row.q is not None else 1.0,
            )
            for row in rows
        ]


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _cdr_row(record: CallRecord) -> repo.CdrRecord:
    def at(ts: float | None) -> datetime | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    return repo.CdrRecord(
        call_id=record.call_id,
        direction=record.direction,
        from_uri=record.from_uri,
        to_uri=record.to_uri,
        caller=record.caller,
        callee=record.callee,
        started_at=datetime.fromtimestamp(record.started_at, UTC),
        ended_at=datetime.fromtimestamp(record.ended_at, UTC),
        end_reason=record.end_reason,
        trunk=record.trunk,
        answered_at=at(record.answered_at),
        hangup_by=record.hangup_by,
        sip_status=record.sip_status,
        extra={"sip_call_id": record.sip_call_id, **record.extra},
    )


def _interaction(record: CallRecord) -> InteractionRecord | None:
    """A voice interaction for the customer the IVR found (their history on every channel)."""
    customer = record.extra.get("customer")
    if not isinstance(customer, dict) or not isinstance(customer.get("id"), int):
        return None
    extra = record.extra
    return InteractionRecord(
        channel="voice",
        ref=record.call_id,
        customer_id=customer["id"],
        started_at=datetime.fromtimestamp(record.started_at, UTC),
        ended_at=datetime.fromtimestamp(record.ended_at, UTC),
        queue=_text(extra.get("queue")),
        agent=_text(extra.get("agent")),
        outcome=_text(extra.get("queue_outcome")) or record.end_reason,
        data={key: extra[key] for key in ("caller", "ivr", "survey", "queue_wait_s", "voicemail") if key in extra},
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _node_secret(data_dir: Path) -> bytes:
    """The node's HMAC secret for digest nonces, created once and kept in the data dir."""
    path = data_dir / "node.secret"
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


class CosmoServer:
    """Every service of one Cosmo node; :meth:`start` and :meth:`close` in order."""

    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings = settings
        self.bus = EventBus()
        self.database = Database(settings.database_url or default_database_url(settings.data_dir))
        sip = settings.sip
        self.stack = SipStack(
            timers=Timers(t1=sip.t1, t2=sip.t2, t4=sip.t4),
            user_agent=sip.user_agent,
            max_message_size=sip.max_message_size,
            tcp_idle_timeout=sip.tcp_idle_timeout,
            advertised_host=sip.advertised_host,
        )
        self.ua = UserAgent(self.stack)
        # Nonces carry wall-clock time so that they stay valid across a restart.
        secret = _node_secret(settings.data_dir)
        self.authenticator = DigestAuthenticator(
            sip.domain,
            secret,
            nonce_ttl=sip.auth.nonce_ttl,
            algorithms=[str(a) for a in sip.auth.algorithms],
            clock=time.time,
        )
        self.challenger = Challenger(self.authenticator, secret, sip.auth.md5_only_user_agents, clock=time.time)
        self.throttle = FailureThrottle(sip.auth.max_failures, sip.auth.failure_window, sip.auth.block_time)
        self._ha1 = _agent_ha1s(settings)
        self.config_path = config_path
        self._config_lock = asyncio.Lock()
        self.customers = CustomerRepository(self.database)
        self.location = LocationService(StoredBindings(self.database))
        self.location.listeners.append(self._on_binding)
        self.registrar: RegistrarService | None = None
        self.trunks = TrunkDirectory(settings.trunks, sip.domain)
        self.cdr_writer = BatchWriter(repo.CdrRepository(self.database).add_many, name="cdr-writer")
        self.interaction_writer = BatchWriter(self.customers.add_interactions, name="interaction-writer")
        rtp = settings.rtp
        self.media_engine = MediaEngine(rtp.host, rtp.port_min, rtp.port_max, rtp_timeout=rtp.timeout_s)
        self.prompts = PromptCache(settings.media_dir, {"PCMU": ulaw_encode, "PCMA": alaw_encode})
        self.media = CallMedia(self.media_engine, self.prompts)
        self.calls = CallManager(
            self.ua,
            settings,
            location=self.location,
            trunks=self.trunks,
            authenticator=self.authenticator,
            agent_ha1=self.agent_ha1,
            media=self.media,
            events=self.bus,
            on_record=self._on_record,
            throttle=self.throttle,
            challenger=self.challenger,
        )
        self.acd = AcdService(
            settings, self.database, self.bus,
            is_registered=lambda extension: bool(self.location.bindings(aor_for(extension))),
        )
        self.voice_queue = VoiceQueue(self.calls, self.acd, settings)
        self.call_control = AgentCallControl(self.calls, self.voice_queue)
        self.speech = SpeechService(settings.speech)
        self.flows = FlowRegistry(settings.ivr, customers=self.customers, prompt_exists=self._prompt_exists,
                                  unknown_words=self._unknown_words)
        self.ivr = IvrCalls(self.voice_queue, self.flows, language=settings.ivr.default_language,
                            speech=self.speech, tts=self.speech.synthesize)
        self.voice_queue.run_flow = self.ivr.run
        self.calls.on_local_call = self.voice_queue.number_call
        # E-mail (cosmo/email): its cases' work items wait in the same ACD queues as calls.
        self.email = EmailService(
            settings.email, data_dir=settings.data_dir, repository=EmailRepository(self.database), acd=self.acd,
            customers=self.customers, events=self.bus, queues=lambda: [q.name for q in self.settings.queues],
            record_interaction=self.interaction_writer.add,
            agent_name=lambda ext: agent.name if (agent := self.settings.agent(ext)) is not None else None,
        )
        self.web_store = WebRepository(self.database)
        self.desk: WebDesk | None = None
        self.provider_registrations: list[ProviderRegistration] = []
        self.http: HttpServer | None = None
        self.sip_addresses: list[Address] = []

    def _on_record(self, record: CallRecord) -> None:
        self.cdr_writer.add(_cdr_row(record))
        interaction = _interaction(record)
        if interaction is not None:
            self.interaction_writer.add(interaction)

    async def _screen_pop(self, item: WorkItem, extension: str) -> None:
        """The offer reaches the agent's desktop before the agent's phone rings."""
        if self.desk is not None:
            await self.desk.hub.pop(extension, self.acd.item_view(item))

    def _prompt_exists(self, name: str, language: str) -> bool:
        try:
            return self.prompts.resolve(name, language).is_file()
        except PromptNotFound:
            return False

    def _unknown_words(self, language: str, phrases: Sequence[str]) -> list[str]:
        # A language no engine serves is heard by keys alone; start() says so in the log.
        return self.speech.unknown_words(language, phrases) if self.speech.serves(language) else []

    def agent_ha1(self, username: str, algorithm: str) -> str | None:
        """The HA1 of an agent's SIP password for ``algorithm`` (MD5 or SHA-256)."""
        return self._ha1.get((username, algorithm))

    def _on_binding(self, binding: Binding, registered: bool) -> None:
        extension = binding.aor.split(":", 1)[1]
        if registered:
            self.bus.publish(
                AgentRegistered(extension=extension, contact=binding.contact,
                                expires=int(binding.expires_at - time.time()))
            )
        else:
            self.bus.publish(AgentUnregistered(extension=extension, contact=binding.contact))

    async def start(self) -> None:
        """Open the store, the SIP listeners, the registrar, trunks and HTTP."""
        settings = self.settings
        await self.database.start()
        await repo.AgentRepository(self.database).sync_from_config(settings.agents, settings.sip.domain)
        if settings.customers_file is not None:
            seeded = await self.customers.seed(settings.customers_file)
            if seeded:
                log.info("%d customers loaded from %s", seeded, settings.customers_file)
        loaded = await self.location.load()
        await self.cdr_writer.start()
        await self.interaction_writer.start()
        await self.acd.start()
        await self.email.start()
        await self.speech.start()
        await self.flows.start()
        for number, target in settings.numbers.items():
            if target.flow is not None and target.flow not in self.flows:
                log.error("number %s names IVR flow %r, which is not served (%s)", number, target.flow,
                          f"its calls go to queue {target.queue}" if target.queue else "its calls hear music only")
        for listener in settings.sip.listen:
            ssl_context = None
            if listener.transport in ("tls", "wss"):
                import ssl

                ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ssl_context.load_cert_chain(str(listener.cert_file), str(listener.key_file))
            if listener.transport in ("ws", "wss"):
                log.warning("SIP over WebSocket is not served yet; skipping %s listener", listener.transport)
                continue
            address = await self.stack.listen(str(listener.transport), listener.host, listener.port, ssl_context)
            self.sip_addresses.append(address)
            log.info("SIP listening on %s", address)
        domains = {settings.sip.domain, "localhost"} | {a.host for a in self.sip_addresses}
        if settings.sip.advertised_host:
            domains.add(settings.sip.advertised_host)
        reg = settings.sip.registration
        registrar = Registrar(
            self.location,
            self.authenticator,
            self.agent_ha1,
            domains=domains,
            policy=RegistrarPolicy(reg.min_expires, reg.max_expires, reg.default_expires),
            throttle=self.throttle,
            challenger=self.challenger,
        )
        self.registrar = RegistrarService(self.stack, registrar)
        self.ua.handlers["REGISTER"] = self.registrar.handle
        await self.registrar.start()
        log.info("registrar serving %s; %d registrations restored", ", ".join(sorted(domains)), loaded)
        for trunk in self.trunks.trunks.values():
            if trunk.settings.registration.enabled:
                transport = str(trunk.settings.outbound.transport)
                registration = ProviderRegistration(self.stack, trunk, self.ua.contact_for(transport))
                self.provider_registrations.append(registration)
                await registration.start()
        app = create_app(node_name=settings.node_name)
        app.middlewares.append(bearer_auth(lambda: [t.get_secret_value() for t in self.settings.api.tokens]))
        add_telephony_routes(app, TelephonyService(self.calls, self.location, self.stack, self.ua))
        add_acd_routes(app, self.acd)
        add_control_routes(app, self.call_control)
        add_email_routes(app, self.email)
        add_config_routes(app, self)
        # Sign-in, the desktop, the wallboard and /cti (after bearer_auth: /api/ stays the integrations').
        # The desktop takes e-mail offers through the e-mail channel (the case records its agent).
        email = self.email if settings.email.enabled else None
        self.desk = add_web(app, WebServices(
            acd=self.acd, bus=self.bus, customers=self.customers,
            controls=DeskControls(self.call_control, self.acd, email),
            users=self.web_store.users, sessions=self.web_store.sessions, knowledge=self.web_store.knowledge,
            dispositions=self.web_store.dispositions, settings=lambda: self.settings.web,
            api_tokens=lambda: [t.get_secret_value() for t in self.settings.api.tokens],
            reasons=lambda: self.settings.acd.reasons,
            email=email, email_templates=lambda: self.settings.email.reply.templates,
        ))
        self.voice_queue.before_ring = self._screen_pop
        self.http = HttpServer(app, settings.http.host, settings.http.port)
        await self.http.start()
        log.info("Cosmo %s ready", settings.node_name)

    # ---- configuration at run time (web.config_api.Configuration) ---------------------------
    async def reload(self) -> ConfigChange:
        """Re-read the configuration file and apply it (SIGHUP, ``POST /api/reload``).

        Raises :class:`ConfigChangeRefused` with the file's problems (``file:line:
        message``), or a conflict with the work in progress; the running
        configuration then stays whole.
        """
        if self.config_path is None:
            raise ConfigChangeRefused(409, "Cosmo was started without a configuration file")
        try:
            settings = load_config(self.config_path)
        except ConfigError as exc:
            raise ConfigChangeRefused(422, f"{exc.path}: configuration refused", exc.problems) from None
        return await self.apply(settings)

    async def apply(self, settings: Settings) -> ConfigChange:
        """Make ``settings`` the running configuration, without dropping calls or items.

        Sections that only apply at start (:data:`RESTART_SECTIONS`) keep their
        running values and are reported in ``restart_needed``.
        """
        async with self._config_lock:
            current = self.settings
            restart = [name for name in RESTART_SECTIONS if getattr(settings, name) != getattr(current, name)]
            settings = settings.model_copy(update={name: getattr(current, name) for name in restart})
            for name in restart:
                log.warning("configuration: %s changed; it applies at the next start", name)
            try:
                changes = self.acd.reconfigure(settings)
            except AcdError as exc:
                raise ConfigChangeRefused(exc.status, str(exc)) from None
            self.settings = settings
            self.calls.settings = settings
            self.calls.agent_extensions = {a.extension for a in settings.agents}
            self.voice_queue.settings = settings
            self._ha1 = _agent_ha1s(settings)
            logging.getLogger().setLevel(settings.log_level.value)
            changes += _section_changes(current, settings)
            await repo.AgentRepository(self.database).sync_from_config(settings.agents, settings.sip.domain)
            await self.acd.flush()
            if settings.ivr != current.ivr:
                self.ivr.language = settings.ivr.default_language
                report = self.flows.reconfigure(settings.ivr)
                if report.refused:
                    changes.append(f"IVR flows refused with the new ivr settings: {', '.join(report.refused)}")
            if self.desk is not None and settings.web != current.web:
                removed = await self.desk.reload()
                if removed:
                    changes.append(f"web users removed: {', '.join(removed)}")
        log.info("configuration applied: %s", "; ".join(changes) or "no change")
        return ConfigChange(changes, restart)

    async def put_agent(self, extension: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Add or change agent ``extension`` (a password is needed for a new one)."""
        old = self.settings.agent(extension)
        if old is not None and "password" not in body:
            body = {**body, "password": old.password}
        agent = _validated(AgentSettings, {**body, "extension": extension}, f"agent {extension}")
        agents = [a for a in self.settings.agents if a.extension != extension] + [agent]
        await self._apply_section("agents", agents)
        return old is None, self.acd.agent_view(extension)

    async def delete_agent(self, extension: str) -> ConfigChange:
        """Remove a logged-out agent."""
        if self.settings.agent(extension) is None:
            raise ConfigChangeRefused(404, f"no agent {extension}")
        return await self._apply_section("agents", [a for a in self.settings.agents if a.extension != extension])

    async def put_queue(self, name: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Add or replace queue ``name``; its waiting items keep their place."""
        old = self.settings.queue(name)
        queue = _validated(QueueSettings, {**body, "name": name}, f"queue {name}")
        queues = [q for q in self.settings.queues if q.name != name] + [queue]
        await self._apply_section("queues", queues)
        return old is None, next(view for view in self.acd.queues_view() if view["name"] == name)

    async def delete_queue(self, name: str) -> ConfigChange:
        """Remove a queue that holds no items and that no other queue or number sends work to."""
        if self.settings.queue(name) is None:
            raise ConfigChangeRefused(404, f"no queue {name}")
        return await self._apply_section("queues", [q for q in self.settings.queues if q.name != name])

    async def _apply_section(self, section: str, value: object) -> ConfigChange:
        data = {name: getattr(self.settings, name) for name in type(self.settings).model_fields}
        data[section] = value
        return await self.apply(_validated(Settings, data, "configuration"))

    async def close(self) -> None:
        """Stop everything in reverse order (idempotent)."""
        if self.http is not None:
            await self.http.close()
            self.http = None
        await self.calls.close()
        for registration in self.provider_registrations:
            await registration.close()
        self.provider_registrations.clear()
        if self.registrar is not None:
            await self.registrar.close()
            self.registrar = None
        await self.stack.close()
        self.media_engine.close()
        await self.call_control.close()
        await self.flows.close()
        await self.speech.close()
        await self.email.close()
        await self.acd.close()
        await self.cdr_writer.close()
        await self.interaction_writer.close()
        await self.database.close()


class DeskControls:
    """What the desktop asks of an agent's work: an offered e-mail is taken and refused through
    the e-mail channel (so its case records the agent), everything else through call control."""

    def __init__(self, calls: AgentCallControl, acd: AcdService, email: EmailService | None) -> None:
        self.calls = calls
        self.acd = acd
        self.email = email
        # The call controls proper go straight to the voice channel.
        self.hangup = calls.hangup
        self.hold = calls.hold
        self.transfer = calls.transfer
        self.consult = calls.consult
        self.complete_transfer = calls.complete_transfer
        self.cancel_transfer = calls.cancel_transfer
        self.dial = calls.dial

    def _email_id(self, item_id: str) -> int | None:
        """The e-mail of an offered e-mail item; ``None`` for other channels (or without the channel)."""
        item = self.acd.item(item_id)
        if self.email is None or item is None or item.channel is not Channel.EMAIL:
            return None
        email_id = item.data.get("email_id")
        if not isinstance(email_id, int):
            raise CallControlError(409, f"item {item_id} names no e-mail")
        return email_id

    async def answer(self, ext: str, item_id: str) -> None:
        await self._take(ext, item_id, accept=True)

    async def reject(self, ext: str, item_id: str) -> None:
        await self._take(ext, item_id, accept=False)

    async def _take(self, ext: str, item_id: str, *, accept: bool) -> None:
        email_id = self._email_id(item_id)
        if email_id is None or self.email is None:
            await (self.calls.answer if accept else self.calls.reject)(ext, item_id)
            return
        try:
            if accept:
                await self.email.accept(email_id, ext)
            else:
                await self.email.decline(email_id, ext)
        except EmailError as exc:
            raise CallControlError(exc.status, str(exc)) from None


RESTART_SECTIONS = (
    "node_name", "data_dir", "media_dir", "database_url", "customers_file", "sip", "rtp", "http", "trunks",
    "email", "speech",
)
"""Settings read only at start: a reload that changes them says a restart is needed."""


def _agent_ha1s(settings: Settings) -> dict[tuple[str, str], str]:
    """Digest HA1 of every agent's password, by (extension, algorithm)."""
    return {
        (agent.extension, algorithm): ha1(
            agent.extension, settings.sip.domain, agent.password.get_secret_value(), algorithm
        )
        for agent in settings.agents
        for algorithm in ("MD5", "SHA-256")
    }


ModelT = TypeVar("ModelT", bound=BaseModel)


def _validated(model: type[ModelT], data: dict[str, Any], what: str) -> ModelT:
    """``model`` from ``data``, or :class:`ConfigChangeRefused` (422) listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()]
        raise ConfigChangeRefused(422, f"{what}: invalid", problems) from None


def _section_changes(before: Settings, after: Settings) -> list[str]:
    """The reloadable sections outside the ACD that changed."""
    return [f"{name} changed" for name in ("numbers", "routes", "api", "log_level", "ivr", "web")
            if getattr(before, name) != getattr(after, name)]


#: Garbage-collector thresholds while serving.  Calls make short-lived cycles
#: (sessions, transactions and their callbacks refer to one another); with the
#: start-up heap frozen and a larger first generation, collections are rare and
#: short instead of stalling the loop for milliseconds every few hundred calls.
GC_THRESHOLDS = (20_000, 20, 100)


def settle_heap() -> None:
    """Move everything built at start-up out of the collector's way (``gc.freeze``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run(settings: Settings, config_path: Path | None = None) -> None:
    """Serve until cancelled (the CLI cancels on SIGINT/SIGTERM); SIGHUP reloads ``config_path``."""
    server = CosmoServer(settings, config_path)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        try:
            await server.reload()
        except ConfigChangeRefused as exc:
            log.error("reload refused: %s; the running configuration stays", exc)
            for problem in exc.problems:
                log.error("  %s", problem)

    def on_hangup() -> None:
        task = loop.create_task(reload(), name="cosmo.reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    try:
        await server.start()
        settle_heap()
        if config_path is not None:
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        await asyncio.Event().wait()
    finally:
        if config_path is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        await asyncio.shield(server.close())
