"""Registrar and location service (RFC 3261 §10.3, RFC 5626 instance ids).

The :class:`LocationService` holds the bindings in memory for fast routing
and writes every change through a :class:`BindingStore` (the database), from
which it is loaded again at start, so a restart keeps registrations.

:class:`Registrar` processes REGISTER in the order of RFC 3261 §10.3:
domain, authentication (digest, with throttling of failing sources),
authorisation (a user registers only their own AOR), contacts and expiry,
Call-ID/CSeq ordering, then answers 200 with every current binding.  An
unknown user and a wrong password get the same answer (a new challenge), so
extensions cannot be enumerated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

from .auth import DigestAuthenticator, FailureThrottle
from .challenge import Challenger
from .errors import SipParseError
from .headers import NameAddr, parse_name_addr
from .message import SipRequest
from .stack import SipStack
from .transaction import ServerTransaction
from .transport import Address
from .uri import SipUri

log = logging.getLogger(__name__)

MAX_BINDINGS_PER_AOR = 10


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record."""

    aor: str
    contact: str  # the Contact URI as registered
    expires_at: float  # wall-clock seconds (time.time())
    call_id: str
    cseq: int
    source: Address  # where the REGISTER came from: requests to this contact go there
    instance_id: str | None = None
    reg_id: int | None = None
    user_agent: str | None = None
    q: float = 1.0

    def expires_in(self, now: float) -> int:
        """Seconds left, rounded down, never negative."""
        return max(0, int(self.expires_at - now))


class BindingStore(Protocol):
    """Where bindings are persisted (the store's location repository fits)."""

    async def save(self, binding: Binding) -> None: ...

    async def delete(self, aor: str, contact: str) -> None: ...

    async def load(self, now: float) -> list[Binding]: ...


BindingListener = Callable[[Binding, bool], None]  # (binding, registered?)


class LocationService:
    """AOR → bindings, in memory, with write-through persistence and expiry."""

    def __init__(self, store: BindingStore | None = None) -> None:
        self._bindings: dict[str, dict[str, Binding]] = {}
        self.store = store
        self.listeners: list[BindingListener] = []
        self._writes: list[tuple[str, Binding]] = []  # pending store operations, in order

    async def load(self, now: float | None = None) -> int:
        """Load unexpired bindings from the store; returns how many."""
        if self.store is None:
            return 0
        now = time.time() if now is None else now
        count = 0
        for binding in await self.store.load(now):
            if binding.expires_at > now:
                self._bindings.setdefault(binding.aor, {})[binding.contact] = binding
                count += 1
        return count

    def bindings(self, aor: str, now: float | None = None) -> list[Binding]:
        """Live bindings of ``aor``, highest q first, most recent first."""
        now = time.time() if now is None else now
        table = self._bindings.get(aor)
        if not table:
            return []
        live = [b for b in table.values() if b.expires_at > now]
        return sorted(live, key=lambda b: (-b.q, -b.expires_at))

    def all_aors(self) -> list[str]:
        """Every AOR with at least one binding (live or not yet purged)."""
        return list(self._bindings)

    def put(self, binding: Binding) -> None:
        """Add or refresh a binding."""
        table = self._bindings.setdefault(binding.aor, {})
        new = binding.contact not in table
        table[binding.contact] = binding
        self._writes.append(("save", binding))
        if new:
            self._notify(binding, True)

    def remove(self, aor: str, contact: str) -> None:
        """Remove one binding."""
        table = self._bindings.get(aor)
        if not table or contact not in table:
            return
        binding = table.pop(contact)
        if not table:
            del self._bindings[aor]
        self._writes.append(("delete", binding))
        self._notify(binding, False)

    def purge(self, now: float | None = None) -> int:
        """Drop expired bindings; returns how many."""
        now = time.time() if now is None else now
        expired = [b for table in self._bindings.values() for b in table.values() if b.expires_at <= now]
        for binding in expired:
            self.remove(binding.aor, binding.contact)
        return len(expired)

    async def flush(self) -> None:
        """Write pending changes to the store, in order."""
        writes, self._writes = self._writes, []
        if self.store is None:
            return
        for op, binding in writes:
            try:
                if op == "save":
                    await self.store.save(binding)
                else:
                    await self.store.delete(binding.aor, binding.contact)
            except Exception:
                log.exception("could not persist binding %s %s", binding.aor, binding.contact)

    @property
    def pending_writes(self) -> int:
        """Changes not yet written to the store."""
        return len(self._writes)

    def _notify(self, binding: Binding, registered: bool) -> None:
        for listener in self.listeners:
            try:
                listener(binding, registered)
            except Exception:
                log.exception("binding listener failed")


@dataclass(frozen=True, slots=True)
class RegistrarPolicy:
    """Expiry limits (RFC 3261 §10.2.1.1, §10.3 step 7)."""

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 600


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """What to answer: status, reason, extra headers."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class Registrar:
    """Processes REGISTER requests; see the module docstring.

    ``credentials`` maps a username to its HA1 per algorithm
    (``{"1001": {"MD5": "...", "SHA-256": "..."}}``); ``domains`` are the host
    parts accepted in the Request-URI and AORs (the SIP domain and Cosmo's own
    addresses).
    """

    def __init__(
        self,
        location: LocationService,
        authenticator: DigestAuthenticator,
        credentials: Callable[[str, str], str | None],
        *,
        domains: Iterable[str],
        policy: RegistrarPolicy | None = None,
        throttle: FailureThrottle | None = None,
        challenger: Challenger | None = None,
    ) -> None:
        self.location = location
        self.authenticator = authenticator
        self.challenger = challenger
        self.lookup_ha1 = credentials
        self.domains = {d.lower() for d in domains}
        self.policy = policy or RegistrarPolicy()
        self.throttle = throttle if throttle is not None else FailureThrottle()

    def process(self, request: SipRequest, source: Address, now: float, wallclock: float) -> RegisterResult:
        """Process one REGISTER (``now`` on the authenticator's clock, ``wallclock`` for expiry)."""
        uri = request.uri
        if not isinstance(uri, SipUri) or uri.host.lower() not in self.domains:
            return RegisterResult(404, "Domain Not Served")
        if self.throttle.is_blocked(source.host, now):
            return RegisterResult(403, "Too Many Failed Attempts")
        # Step 3: authentication.
        authorization = request.headers.get("Authorization")
        stale = False
        username: str | None = None
        if authorization is not None and authorization.lstrip()[:6].lower() == "digest":
            result = self.authenticator.verify(
                authorization, "REGISTER", self._lookup, now, expected_uri=None
            )
            if result.ok:
                username = result.username
                self.throttle.record_success(source.host)
            elif result.stale:
                stale = True
            else:
                self.throttle.record_failure(source.host, now)
                log.info("REGISTER from %s: authentication failed (%s)", source, result.reason)
        if username is None:
            if self.challenger is not None:
                challenges = self.challenger.challenge(request, now, stale=stale)
            else:
                challenges = self.authenticator.challenge(now, stale=stale)
            return RegisterResult(401, None, tuple(("WWW-Authenticate", c) for c in challenges))
        # Step 4-5: the AOR is the To URI; a user registers their own AOR only.
        to = request.to
        if not isinstance(to.uri, SipUri) or to.uri.host.lower() not in self.domains:
            return RegisterResult(404, "Not Found")
        if to.uri.user_unescaped != username:
            return RegisterResult(403, "Not Your Address-Of-Record")
        aor = aor_for(username)
        # Step 6-8: contacts.
        try:
            status = self._update(request, aor, source, wallclock)
        except SipParseError as exc:
            return RegisterResult(exc.status, exc.reason)
        if status is not None:
            return status
        headers: list[tuple[str, str]] = []
        for binding in self.location.bindings(aor, wallclock):
            headers.append(("Contact", f"<{binding.contact}>;expires={binding.expires_in(wallclock)}"))
        headers.append(("Date", formatdate(wallclock, usegmt=True)))
        return RegisterResult(200, None, tuple(headers))

    def _lookup(self, username: str, realm: str, algorithm: str) -> str | None:
        return self.lookup_ha1(username, algorithm)

    def _update(self, request: SipRequest, aor: str, source: Address, now: float) -> RegisterResult | None:
        values = request.headers.get_all("Contact")
        header_expires = request.expires
        if any(v.strip() == "*" for v in values):
            # §10.3 step 6: "*" only alone and with Expires: 0.
            if len(values) != 1 or header_expires != 0:
                return RegisterResult(400, "Wildcard Contact Needs Expires 0 Alone")
            for binding in self.location.bindings(aor, now):
                if binding.call_id != request.call_id or binding.cseq < request.cseq.seq:
                    self.location.remove(aor, binding.contact)
            return None
        contacts = [parse_name_addr(v) for v in values]
        policy = self.policy
        planned: list[tuple[NameAddr, int]] = []
        for contact in contacts:
            if not isinstance(contact.uri, SipUri):
                return RegisterResult(416, None)
            expires_param = contact.param("expires")
            if expires_param:
                if not expires_param.isdigit():
                    return RegisterResult(400, "Bad Contact Expires")
                expires = int(expires_param) if len(expires_param) < 12 else 2**32
            elif header_expires is not None:
                expires = header_expires
            else:
                expires = policy.default_expires
            if 0 < expires < policy.min_expires:
                return RegisterResult(423, None, (("Min-Expires", str(policy.min_expires)),))
            planned.append((contact, min(expires, policy.max_expires)))
        existing = {b.contact: b for b in self.location.bindings(aor, now)}
        seq = request.cseq.seq
        for contact, expires in planned:
            key = str(contact.uri)
            old = existing.get(key)
            if old is not None and old.call_id == request.call_id and old.cseq >= seq:
                return RegisterResult(400, "Out-Of-Order CSeq")  # §10.3 step 7: request fails
            if expires == 0:
                self.location.remove(aor, key)
                continue
            if old is None and len(existing) >= MAX_BINDINGS_PER_AOR:
                return RegisterResult(403, "Too Many Contacts")
            instance = contact.param("+sip.instance")
            reg_id = contact.param("reg-id")
            q_text = contact.param("q")
            try:
                q = float(q_text) if q_text else 1.0
            except ValueError:
                return RegisterResult(400, "Bad q Value")
            binding = Binding(
                aor=aor,
                contact=key,
                expires_at=now + expires,
                call_id=request.call_id,
                cseq=seq,
                source=source,
                instance_id=instance.strip('"') if instance else None,
                reg_id=int(reg_id) if reg_id and reg_id.isdigit() else None,
                user_agent=request.headers.get("User-Agent"),
                q=max(0.0, min(1.0, q)),
            )
            if instance:
                # RFC 5626 §6: one binding per instance (and reg-id): a phone that
                # restarted with a new contact replaces its old binding.
                for other in list(existing.values()):
                    if other.instance_id == binding.instance_id and other.reg_id == binding.reg_id and other.contact != key:
                        self.location.remove(aor, other.contact)
            self.location.put(binding)
            existing[key] = binding
        return None


def aor_for(extension: str) -> str:
    """The location-service key of an agent's extension."""
    return f"user:{extension}"


class RegistrarService:
    """Glue between the user agent and :class:`Registrar`: answers REGISTER and
    persists the location service's changes in the background, in order."""

    def __init__(self, stack: SipStack, registrar: Registrar) -> None:
        self.stack = stack
        self.registrar = registrar
        self._flushing: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None

    async def start(self, purge_interval: float = 30.0) -> None:
        """Start the periodic purge of expired bindings (idempotent)."""
        if self._purger is None:
            self._purger = asyncio.get_running_loop().create_task(
                self._purge_loop(purge_interval), name="registrar-purge"
            )

    async def close(self) -> None:
        """Stop purging and write what is pending."""
        if self._purger is not None:
            self._purger.cancel()
            await asyncio.gather(self._purger, return_exceptions=True)
            self._purger = None
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.registrar.location.flush()

    def handle(self, txn: ServerTransaction, request: SipRequest, source: Address) -> None:
        """The REGISTER handler of the user agent."""
        loop = asyncio.get_running_loop()
        now = time.time()  # wall clock: digest nonces and expiry both outlive a restart
        result = self.registrar.process(request, source, now, now)
        self.stack.reply(txn, result.status, result.reason, extra=result.headers)
        if self.registrar.location.pending_writes and self._flushing is None:
            self._flushing = loop.create_task(self._flush(), name="registrar-flush")

    async def _flush(self) -> None:
        try:
            while self.registrar.location.pending_writes:
                await self.registrar.location.flush()
        finally:
            self._flushing = None

    async def _purge_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.registrar.location.purge():
                await self.registrar.location.flush()
