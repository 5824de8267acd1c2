"""SIP trunks: who may send calls in, how calls go out, and registration to providers.

Inbound calls are matched to a trunk by source address (IP authentication)
or, failing that, by digest credentials the trunk was given.  Outbound calls
leave through a trunk's configured peer with its credentials, and a trunk may
keep Cosmo registered at the provider (RFC 3261 §10.2), refreshing before the
binding expires and backing off when the provider fails.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from cosmo.aiotasks import cancel_and_wait
from cosmo.config import TrunkSettings
from cosmo.sip.auth import DigestClient, choose_challenge, ha1
from cosmo.sip.errors import SipParseError
from cosmo.sip.headers import parse_name_addr
from cosmo.sip.message import Headers, SipRequest
from cosmo.sip.stack import SipStack
from cosmo.sip.transport import Address
from cosmo.sip.uri import SipUri

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Trunk:
    """A configured trunk, as the call layer uses it."""

    settings: TrunkSettings

    @property
    def name(self) -> str:
        """The trunk's name."""
        return self.settings.name

    @property
    def peer(self) -> Address | None:
        """Where outbound requests go, or ``None`` for an inbound-only trunk."""
        out = self.settings.outbound
        if out.host is None:
            return None
        return Address(str(out.transport), out.host, out.port)

    def outbound_credentials(self) -> DigestClient | None:
        """Digest credentials for outbound INVITEs, if configured."""
        out = self.settings.outbound
        if out.username is None or out.password is None:
            return None
        return DigestClient(out.username, out.password.get_secret_value())

    def request_uri(self, number: str) -> SipUri:
        """The Request-URI for dialling ``number`` on this trunk."""
        out = self.settings.outbound
        host = out.from_domain or out.host or "invalid"
        transport = str(out.transport)
        params: tuple[tuple[str, str | None], ...] = () if transport == "udp" else (("transport", transport),)
        return SipUri(host=out.host or host, user=number, port=out.port, params=params)


class TrunkDirectory:
    """The trunks of the configuration, with inbound matching."""

    def __init__(self, trunks: list[TrunkSettings], realm: str) -> None:
        self.trunks = {t.name: Trunk(t) for t in trunks}
        self.realm = realm

    def get(self, name: str) -> Trunk | None:
        """The trunk called ``name``."""
        return self.trunks.get(name)

    def by_source(self, host: str) -> Trunk | None:
        """The first trunk whose inbound sources contain ``host`` (IP authentication)."""
        for trunk in self.trunks.values():
            if trunk.settings.inbound.allows(host):
                return trunk
        return None

    def by_username(self, username: str) -> Trunk | None:
        """The trunk whose inbound digest user name is ``username``."""
        for trunk in self.trunks.values():
            if trunk.settings.inbound.username == username:
                return trunk
        return None

    def ha1(self, username: str, algorithm: str) -> str | None:
        """HA1 of a trunk's inbound credentials, for digest verification."""
        trunk = self.by_username(username)
        if trunk is None or trunk.settings.inbound.password is None:
            return None
        return ha1(username, self.realm, trunk.settings.inbound.password.get_secret_value(), algorithm)


class ProviderRegistration:
    """Keeps Cosmo registered at a provider through one trunk (RFC 3261 §10.2).

    Refreshes at 80 % of the granted expiry, retries failures with
    exponential back-off up to 5 minutes, and un-registers on :meth:`close`.
    """

    def __init__(self, stack: SipStack, trunk: Trunk, contact: str) -> None:
        self.stack = stack
        self.trunk = trunk
        self.contact = contact
        self.registered = False
        self.last_status: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._call_id = stack.new_call_id()
        self._tag = stack.new_tag()
        self._cseq = 0
        creds = trunk.settings.register_credentials
        self._credentials = DigestClient(creds[0], creds[1].get_secret_value()) if creds else None
        self._user = creds[0] if creds else "cosmo"

    async def start(self) -> None:
        """Start registering in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"register-{self.trunk.name}"
            )

    async def close(self) -> None:
        """Stop refreshing and un-register (best effort, bounded)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.registered:
            try:
                await asyncio.wait_for(self._register(0), timeout=5)
            except (TimeoutError, OSError):
                pass
            self.registered = False

    async def _run(self) -> None:
        backoff = 5.0
        while True:
            try:
                granted = await self._register(self.trunk.settings.registration.expires)
            except Exception:
                log.exception("trunk %s: registration failed", self.trunk.name)
                granted = None
            if granted:
                self.registered = True
                backoff = 5.0
                # The 1 s floor keeps a registrar that grants next to nothing from
                # driving a busy loop; any grant of 1.25 s or more is renewed at 80 %.
                await asyncio.sleep(max(1.0, granted * 0.8))
            else:
                self.registered = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 300.0)

    async def _register(self, expires: int) -> int | None:
        peer = self.trunk.peer
        if peer is None:
            return None
        out = self.trunk.settings.outbound
        domain = out.from_domain or out.host or ""
        uri = SipUri(host=domain, port=out.port if out.from_domain is None else None)
        aor = f"<sip:{self._user}@{domain}>"
        authorization: tuple[str, str] | None = None
        for _ in range(2):
            self._cseq += 1
            headers = Headers(
                [
                    ("From", f"{aor};tag={self._tag}"),
                    ("To", aor),
                    ("Call-ID", self._call_id),
                    ("CSeq", f"{self._cseq} REGISTER"),
                    ("Contact", self.contact),
                    ("Expires", str(expires)),
                ]
            )
            if authorization is not None:
                headers.add(*authorization)
            response = await self.stack.send_request(SipRequest("REGISTER", uri, headers), peer).final()
            self.last_status = response.status
            if response.status in (401, 407) and self._credentials is not None and authorization is None:
                name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenges = response.headers.get_all(name)
                if not challenges:
                    return None
                auth_header = "Authorization" if response.status == 401 else "Proxy-Authorization"
                authorization = (auth_header, self._credentials.authorize(choose_challenge(challenges), "REGISTER", str(uri)))
                continue
            if 200 <= response.status < 300:
                log.info("trunk %s: registered (%s)", self.trunk.name, response.status)
                return _granted_expiry(response.headers, self.contact, expires)
            log.warning("trunk %s: REGISTER answered %s %s", self.trunk.name, response.status, response.reason)
            return None
        return None


def _granted_expiry(headers: Headers, contact: str, asked: int) -> int:
    ours = parse_name_addr(contact).uri
    for value in headers.get_all("Contact"):
        try:
            addr = parse_name_addr(value)
        except SipParseError:
            continue
        if str(addr.uri) == str(ours):
            expires = addr.param("expires")
            if expires and expires.isdigit():
                return int(expires)
    header = headers.get("Expires")
    return int(header) if header and header.isdigit() else asked
