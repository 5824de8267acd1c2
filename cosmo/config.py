"""Cosmo's settings: the schema, ``load_config`` and environment overrides.

Theory of operation
-------------------
``load_config(path)`` reads one YAML file into a :class:`Settings` object or
refuses it whole with a :class:`ConfigError` that lists every problem as
``file:line: message``.  The file is read with :func:`cosmo.yamlfile.read_yaml`,
which keeps the line of every node, so each pydantic error's path maps back to
a line (a missing field points at the mapping that lacks it).

Cross-field rules (names that must be unique, references between sections,
files that must exist) run once the fields of their section are valid, and
report their errors with precise paths too, so they point at the offending
line.  Fixing the first round of problems can therefore reveal a second.

Environment overrides (:data:`ENV_OVERRIDES`) are applied to the data after
the file is read and before validation; a bad value in one of them is reported
against the variable's name (``COSMO_HTTP_PORT: ...``) instead of a line.

Relative paths (``data_dir``, TLS ``cert_file``/``key_file``) are relative to
the *current working directory* of the process, not to the config file: the
demo is run from the repository root and the systemd unit sets
``WorkingDirectory``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from cosmo.email.settings import EmailSettings
from cosmo.ivr.settings import IvrSettings
from cosmo.speech.settings import SpeechSettings
from cosmo.web.settings import WebSettings
from cosmo.yamlfile import Loc, Problem, YamlSyntaxError, read_yaml, validation_problems

__all__ = [
    "DEFAULT_PORTS",
    "ENV_OVERRIDES",
    "AgentSettings",
    "ApiSettings",
    "AuthSettings",
    "ConfigError",
    "DigestAlgorithm",
    "HttpSettings",
    "ListenSettings",
    "LogLevel",
    "NumberSettings",
    "QueueSettings",
    "RegistrationSettings",
    "RouteSettings",
    "RtpSettings",
    "ServiceLevel",
    "Settings",
    "SipSettings",
    "SipTransport",
    "TrunkInbound",
    "TrunkOutbound",
    "TrunkRegister",
    "TrunkSettings",
    "TrunkTransport",
    "default_database_url",
    "load_config",
    "parse_config",
]


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_HELP = "letters, digits, '_', '.', '-', starting with a letter or digit"

Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP/UDP port; 0 asks the operating system for a free one (used by tests)."""

Name = Annotated[str, Field(min_length=1, max_length=64)]
Proficiency = Annotated[int, Field(ge=1, le=5)]
"""Skill level: 1 (novice) to 10 (expert); on a queue, the minimum an agent needs."""


class ConfigError(Exception):
    """A configuration file was refused.

    ``problems`` lists every problem found, each as ``file:line: message``
    (or ``VARIABLE: message`` for an environment override), in file order.
    """

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems: list[str] = list(problems)
        super().__init__(f"{self.path}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


def _problem(loc: Loc, message: str, value: object = None) -> InitErrorDetails:
    """One cross-field error at ``loc``, for :func:`_raise_problems`."""
    return InitErrorDetails(
        type=PydanticCustomError("cosmo_config", "{detail}", {"detail": message}),
        loc=loc,
        input=value,
    )


def _raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
    if problems:
        raise ValidationError.from_exception_data(title, problems)


class _Model(BaseModel):
    """Base of every settings section: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------- sip


class SipTransport(StrEnum):
    """Transports a SIP listener can use (RFC 3261 §18, RFC 7118 for WebSocket)."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"

    @property
    def secure(self) -> bool:
        """True for transports that need a certificate (``tls``, ``wss``)."""
        return self in (SipTransport.TLS, SipTransport.WSS)


DEFAULT_PORTS: dict[str, int] = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 5066, "wss": 7443}
"""Port of a listener that names none: RFC 3261 §19.1.2 for SIP; common WebSocket choices."""


class ListenSettings(_Model):
    """One SIP listening socket.  ``tls`` and ``wss`` need ``cert_file`` and ``key_file``.

    Without ``port`` a listener takes its transport's usual one (:data:`DEFAULT_PORTS`).
    """

    transport: SipTransport
    host: str = "127.0.0.1"
    port: Port
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("port") is None:
            # An unknown transport is reported on its own; 5060 keeps a second error away.
            port = DEFAULT_PORTS.get(str(data.get("transport", "")).lower(), 5060)
            data = {**data, "port": port}
        return data

    @model_validator(mode="after")
    def _check_certificate(self) -> Self:
        problems: list[InitErrorDetails] = []
        for field in ("cert_file", "key_file"):
            value: Path | None = getattr(self, field)
            if self.transport.secure:
                if value is None:
                    problems.append(_problem((field,), f"a {self.transport} listener needs {field}"))
                elif not value.is_file():
                    problems.append(_problem((field,), f"file not found: {value}", str(value)))
            elif value is not None:
                problems.append(
                    _problem((field,), f"{field} is only used by tls and wss listeners", str(value))
                )
        _raise_problems("ListenSettings", problems)
        return self


def _default_listen() -> list[ListenSettings]:
    return [
        ListenSettings(transport=SipTransport.UDP, host="127.0.0.1", port=5060),
        ListenSettings(transport=SipTransport.TCP, host="127.0.0.1", port=5060),
    ]


class RegistrationSettings(_Model):
    """Limits the registrar applies to the ``Expires`` agents ask for (RFC 3261 §10.3)."""

    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=600, ge=1)

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise PydanticCustomError(
                "cosmo_config",
                "need min_expires <= default_expires <= max_expires, got {a} / {b} / {c}",
                {"a": self.min_expires, "b": self.default_expires, "c": self.max_expires},
            )
        return self


class DigestAlgorithm(StrEnum):
    """Digest algorithms offered in challenges, strongest first (RFC 8760)."""

    SHA_256 = "SHA-256"
    MD5 = "MD5"


class AuthSettings(_Model):
    """Digest authentication and brute-force protection for REGISTER and INVITE."""

    nonce_ttl: int = Field(default=300, ge=1)
    algorithms: list[DigestAlgorithm] = Field(
        default_factory=lambda: [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5], min_length=1
    )
    max_failures: int = Field(default=10, ge=1)
    failure_window: int = Field(default=60, ge=1)
    block_time: int = Field(default=60, ge=0)
    # Phones whose User-Agent starts with one of these get an MD5-only
    # challenge: they fail on any challenge naming an algorithm they lack
    # instead of answering the one they know (libre before 2.x, so baresip 0.x
    # and 1.x).  Matched case-insensitively.
    md5_only_user_agents: list[str] = Field(default_factory=lambda: ["baresip v0.", "baresip v1."])

    @field_validator("algorithms")
    @classmethod
    def _unique(cls, value: list[DigestAlgorithm]) -> list[DigestAlgorithm]:
        if len(set(value)) != len(value):
            raise ValueError("algorithms must not repeat")
        return value


class SipSettings(_Model):
    """The SIP side: listeners, domain, registrar, authentication and RFC 3261 timers."""

    domain: str = Field(default="cosmo.local", min_length=1)
    user_agent: str = Field(default="Cosmo/0.1", min_length=1)
    listen: list[ListenSettings] = Field(default_factory=_default_listen, min_length=1)
    advertised_host: str | None = None
    max_message_size: int = Field(default=65535, ge=1500, le=1 << 20)
    tcp_idle_timeout: float = Field(default=600, gt=0)
    registration: RegistrationSettings = Field(default_factory=RegistrationSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    t1: float = Field(default=0.5, gt=0)
    t2: float = Field(default=4.0, gt=0)
    t4: float = Field(default=5.0, gt=0)

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", value):
            raise ValueError(f"not a domain name: {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[InitErrorDetails] = []
        if self.t1 > self.t2:
            problems.append(_problem(("t1",), f"t1 ({self.t1}) must not exceed t2 ({self.t2})", self.t1))
        seen: dict[tuple[SipTransport, str, int], int] = {}
        for index, listener in enumerate(self.listen):
            key = (listener.transport, listener.host, listener.port)
            if listener.port != 0 and key in seen:
                problems.append(
                    _problem(
                        ("listen", index),
                        f"duplicate listener {listener.transport} {listener.host}:{listener.port}"
                        f" (same as listen[{seen[key]}])",
                    )
                )
            seen.setdefault(key, index)
        _raise_problems("SipSettings", problems)
        return self


# --------------------------------------------------------------------------- rtp, http, api


class RtpSettings(_Model):
    """Where RTP media is sent and received; ports are taken in even/odd pairs (RTP/RTCP)."""

    host: str = "127.0.0.1"
    port_min: int = Field(default=20000, ge=1024, le=65534)
    port_max: int = Field(default=30000, ge=1025, le=65535)
    # A call whose RTP stops for this long (not while on hold) is ended with BYE.
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        problems: list[InitErrorDetails] = []
        if self.port_min % 2:
            # RFC 3550 §11: RTP on an even port, RTCP on the next odd one.
            problems.append(_problem(("port_min",), f"port_min must be even, got {self.port_min}", self.port_min))
        if self.port_min >= self.port_max:
            problems.append(
                _problem(
                    ("port_max",),
                    f"port_max ({self.port_max}) must be greater than port_min ({self.port_min})",
                    self.port_max,
                )
            )
        _raise_problems("RtpSettings", problems)
        return self

    @property
    def pair_count(self) -> int:
        """How many RTP/RTCP port pairs the range holds (the most concurrent media sessions)."""
        return (self.port_max - self.port_min + 1) // 2


class HttpSettings(_Model):
    """The HTTP server: REST API, CTI WebSocket, agent desktop and admin pages."""

    host: str = "127.0.0.1"
    port: Port = 8080


class ApiSettings(_Model):
    """Bearer tokens accepted by the REST API.  No token means the API refuses every call."""

    tokens: list[SecretStr] = Field(default_factory=list)

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            text = token.get_secret_value()
            if not text or any(ch.isspace() for ch in text):
                raise ValueError("API tokens must be non-empty and contain no spaces")
        return value

    def accepts(self, token: str) -> bool:
        """True when ``token`` is one of ``tokens`` (compared in constant time)."""
        return any(hmac.compare_digest(token.encode(), t.get_secret_value().encode()) for t in self.tokens)


# --------------------------------------------------------------------------- trunks


class TrunkTransport(StrEnum):
    """Transports used to reach a provider."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


def _pair_problems(username: str | None, password: SecretStr | None) -> list[InitErrorDetails]:
    """Credentials come in pairs: a user name without a password (or the reverse) is an error."""
    if username is not None and password is None:
        return [_problem(("password",), "password is needed when username is set")]
    if username is None and password is not None:
        return [_problem(("username",), "username is needed when password is set")]
    return []


class TrunkInbound(_Model):
    """Who may send calls in on a trunk: source networks, and optionally digest credentials."""

    sources: list[IPvAnyNetwork] = Field(default_factory=list)
    username: str | None = None
    password: SecretStr | None = None
    # Calls from this trunk to numbers that are not in ``numbers`` may leave again
    # through an outbound route (a transit B2BUA).  Off by default: no free calls.
    transit: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_problems("TrunkInbound", _pair_problems(self.username, self.password))
        return self

    def allows(self, host: str) -> bool:
        """True when ``host`` (an IP address) lies in one of ``sources``."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.sources)


class TrunkOutbound(_Model):
    """How to send calls out to the provider (and where to register)."""

    host: str | None = None
    port: int = Field(default=5060, ge=1, le=65535)
    transport: TrunkTransport = TrunkTransport.UDP
    username: str | None = None
    password: SecretStr | None = None
    from_user: str | None = None
    from_domain: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_problems("TrunkOutbound", _pair_problems(self.username, self.password))
        return self


class TrunkRegister(_Model):
    """Registration of Cosmo to the provider (RFC 3261 §10), when the provider wants it."""

    enabled: bool = False
    expires: int = Field(default=600, ge=60)
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_problems("TrunkRegister", _pair_problems(self.username, self.password))
        return self


class TrunkSettings(_Model):
    """A SIP trunk to a carrier or PBX."""

    name: Name = Field(pattern=_NAME_PATTERN)
    inbound: TrunkInbound = Field(default_factory=TrunkInbound)
    outbound: TrunkOutbound = Field(default_factory=TrunkOutbound)
    # Calls bridged out through this trunk: ``anchor`` relays their RTP through
    # Cosmo (recording, hold music, transcoding); ``bypass`` passes the SDP
    # through so RTP flows between the two ends (signalling-only B2BUA).
    media: Literal["anchor", "bypass"] = "anchor"
    # ``register`` in the file; renamed here because BaseModel has a method of that name.
    registration: TrunkRegister = Field(default_factory=TrunkRegister, alias="register")

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[InitErrorDetails] = []
        if self.registration.enabled:
            if self.outbound.host is None:
                problems.append(_problem(("register", "enabled"), "registration needs outbound.host", True))
            if self.registration.username is None and self.outbound.username is None:
                problems.append(
                    _problem(
                        ("register", "enabled"),
                        "registration needs register.username/password or outbound.username/password",
                        True,
                    )
                )
        _raise_problems("TrunkSettings", problems)
        return self

    @property
    def register_credentials(self) -> tuple[str, SecretStr] | None:
        """Credentials for REGISTER: ``register``'s own, else ``outbound``'s."""
        if self.registration.username is not None and self.registration.password is not None:
            return self.registration.username, self.registration.password
        if self.outbound.username is not None and self.outbound.password is not None:
            return self.outbound.username, self.outbound.password
        return None


# --------------------------------------------------------------------------- numbers, routes


class NumberSettings(_Model):
    """What happens to a call for one dialled number: an IVR flow, else straight to a queue."""

    trunk: str | None = None
    queue: str | None = None
    flow: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.queue is None and self.flow is None:
            raise PydanticCustomError("cosmo_config", "a number needs a queue or a flow", {})
        return self


class RouteSettings(_Model):
    """One outbound dial-plan rule: numbers matching ``pattern`` leave through ``trunk``.

    The number sent is the dialled one with ``strip`` leading characters removed
    and ``prefix`` put in front.
    """

    pattern: str = Field(min_length=1)
    trunk: str
    strip: int = Field(default=0, ge=0)
    prefix: str = Field(default="", pattern=r"^[+0-9*#]*$")

    @field_validator("pattern")
    @classmethod
    def _compile(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    def rewrite(self, number: str) -> str | None:
        """The number to dial on the trunk, or ``None`` when ``number`` does not match."""
        if re.search(self.pattern, number) is None:
            return None
        return self.prefix + number[self.strip :]


# --------------------------------------------------------------------------- agents, queues


ChannelName = Literal["voice", "callback", "webcall", "email", "voicemail"]


def _default_capacity() -> dict[ChannelName, int]:
    return {"voice": 1, "callback": 1, "webcall": 1, "email": 3, "voicemail": 1}


class AgentSettings(_Model):
    """An agent: the extension is the SIP user name of the agent's phone."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    extension: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    password: SecretStr
    skills: dict[Annotated[str, Field(pattern=_NAME_PATTERN)], Proficiency] = Field(default_factory=dict)
    # Items held at once per channel (voice, callback, webcall, email, voicemail);
    # a channel left out is never offered to the agent.
    capacity: dict[ChannelName, Annotated[int, Field(ge=0, le=50)]] = Field(default_factory=_default_capacity)
    # Channels combined (an e-mail while on a call); off: one channel at a time.
    mixed: bool = False

    @field_validator("extension")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isascii() or not value.isdigit():
            raise ValueError(f"extension must be digits, got {value!r}")
        return value

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("password must not be empty")
        return value


class ServiceLevel(_Model):
    """Service-level target: ``percent`` of calls answered within ``seconds``."""

    percent: float = Field(default=80, gt=0, le=100)
    seconds: int = Field(default=20, ge=1)


_OVERFLOW_TARGET = r"^(queue|voicemail|number):[^\s]+$"


class RelaxationSettings(_Model):
    """After ``after_s`` of waiting: accept lower skill levels, drop skills, or overflow."""

    after_s: float = Field(gt=0)
    min_level: int | None = Field(default=None, ge=1, le=5)
    drop_skills: list[str] = Field(default_factory=list)
    overflow_to: str | None = None


class QueueSettings(_Model):
    """A queue: the skills (with minimum level) an agent needs to take its work, and its rules."""

    name: Name = Field(pattern=_NAME_PATTERN)
    skills: dict[Annotated[str, Field(pattern=_NAME_PATTERN)], Proficiency] = Field(default_factory=dict)
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    wrap_up_s: int = Field(default=10, ge=0)
    # How long an agent's phones ring before the call goes back to its place
    # in the queue and the agent is set not ready (``no-answer``).
    ring_timeout_s: float = Field(default=20, gt=0, le=600)
    strategy: Literal["longest-idle", "most-skilled", "least-occupied", "round-robin"] = "longest-idle"
    relaxation: list[RelaxationSettings] = Field(default_factory=list)
    # Waiting longer than max_wait_s, or arriving while no agent of the queue is
    # logged in, sends the item to "queue:<name>", "voicemail:<box>" or "number:<number>".
    max_wait_s: float | None = Field(default=None, gt=0)
    max_wait_target: Annotated[str, Field(pattern=_OVERFLOW_TARGET)] | None = None
    no_agents_target: Annotated[str, Field(pattern=_OVERFLOW_TARGET)] | None = None
    # Priority points gained per minute of waiting (0: none).
    aging_per_minute: float = Field(default=0, ge=0)
    # Callers hear their position and estimated wait this often (null: never).
    announce_interval_s: float | None = Field(default=60, ge=10)
    # Record calls of this queue (stereo WAV: caller left, agent right),
    # after the named prompt when one is given.
    record: bool = False
    record_announcement: str | None = None
    # An IVR flow (ivr_flows/<name>.yaml) the caller enters when the agent hangs
    # up first: a post-call survey; what it collects is stored with the call.
    survey_flow: Annotated[str, Field(pattern=_NAME_PATTERN)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.max_wait_s is None) != (self.max_wait_target is None):
            raise PydanticCustomError("cosmo_config", "max_wait_s and max_wait_target go together", {})
        return self


class AcdSettings(_Model):
    """Agent reason codes for not ready, and the one RONA uses."""

    reasons: list[Annotated[str, Field(pattern=_NAME_PATTERN)]] = Field(
        default_factory=lambda: ["break", "lunch", "training", "meeting", "after-call", "no-answer"]
    )
    no_answer_reason: str = "no-answer"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.no_answer_reason not in self.reasons:
            raise PydanticCustomError("cosmo_config", "no_answer_reason must be one of reasons", {})
        return self


# --------------------------------------------------------------------------- root


class LogLevel(StrEnum):
    """Levels accepted for ``log_level`` (case-insensitive in the file)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class Settings(_Model):
    """The whole configuration of one Cosmo node.

    Every field has a default, so an empty file is a valid (if useless) node:
    no trunks, numbers, agents or queues, and no API token.
    """

    node_name: Name = Field(default="cosmo-demo", pattern=_NAME_PATTERN)
    data_dir: Path = Path("var")
    # Prompts (media/prompts/<language>/*.wav) and music on hold (media/moh/).
    media_dir: Path = Path("media")
    # Customers loaded at start into an empty customers table (the demo's).
    customers_file: Path | None = None
    database_url: str = ""
    log_level: LogLevel = LogLevel.INFO
    sip: SipSettings = Field(default_factory=SipSettings)
    rtp: RtpSettings = Field(default_factory=RtpSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    trunks: list[TrunkSettings] = Field(default_factory=list)
    numbers: dict[Annotated[str, Field(pattern=r"^\+?[0-9A-Za-z*#_.-]+$")], NumberSettings] = Field(
        default_factory=dict
    )
    routes: list[RouteSettings] = Field(default_factory=list)
    agents: list[AgentSettings] = Field(default_factory=list)
    queues: list[QueueSettings] = Field(default_factory=list)
    acd: AcdSettings = Field(default_factory=AcdSettings)
    # IVR flows (ivr_flows/*.yaml), their reloading, business-hours calendars.
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    # Speech recognition (vosk models by language, the English fallback), VAD, text-to-speech.
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    # E-mail: SMTP/IMAP intake, our addresses and their queues, the relay for replies (cosmo/email/settings.py).
    email: EmailSettings = Field(default_factory=EmailSettings)
    # Sign-in (users and roles), the agent desktop, the wallboard and the CTI socket (cosmo/web/settings.py).
    web: WebSettings = Field(default_factory=WebSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", mode="before")
    @classmethod
    def _none_is_default(cls, value: object) -> object:
        return "" if value is None else value

    @model_validator(mode="after")
    def _cross_check(self) -> Self:
        problems: list[InitErrorDetails] = []

        def unique(section: str, key: str, values: list[str]) -> None:
            first: dict[str, int] = {}
            for index, value in enumerate(values):
                if value in first:
                    problems.append(
                        _problem(
                            (section, index, key),
                            f"duplicate {key} {value!r} (first at {section}[{first[value]}])",
                            value,
                        )
                    )
                first.setdefault(value, index)

        unique("trunks", "name", [t.name for t in self.trunks])
        unique("agents", "extension", [a.extension for a in self.agents])
        unique("queues", "name", [q.name for q in self.queues])

        trunks = {t.name: t for t in self.trunks}
        queues = {q.name for q in self.queues}
        for index, queue in enumerate(self.queues):
            for field_name in ("max_wait_target", "no_agents_target"):
                target = getattr(queue, field_name)
                if target and target.startswith("queue:") and target[6:] not in queues:
                    problems.append(_problem(("queues", index, field_name), f"unknown queue {target[6:]!r}", target))
            for step_index, step in enumerate(queue.relaxation):
                if step.overflow_to is not None and step.overflow_to not in queues:
                    problems.append(_problem(("queues", index, "relaxation", step_index, "overflow_to"),
                                             f"unknown queue {step.overflow_to!r}", step.overflow_to))
        # E-mail addresses and IMAP mailboxes deliver into queues.
        for path, queue_name in self.email.queue_references():
            if queue_name not in queues:
                problems.append(_problem(("email", *path), f"unknown queue {queue_name!r}", queue_name))
        for number, target in self.numbers.items():
            if target.trunk is not None and target.trunk not in trunks:
                problems.append(_problem(("numbers", number, "trunk"), f"unknown trunk {target.trunk!r}", target.trunk))
            if target.queue is not None and target.queue not in queues:
                problems.append(_problem(("numbers", number, "queue"), f"unknown queue {target.queue!r}", target.queue))
        for index, route in enumerate(self.routes):
            trunk = trunks.get(route.trunk)
            if trunk is None:
                problems.append(_problem(("routes", index, "trunk"), f"unknown trunk {route.trunk!r}", route.trunk))
            elif trunk.outbound.host is None:
                problems.append(
                    _problem(
                        ("routes", index, "trunk"),
                        f"trunk {route.trunk!r} has no outbound.host to send calls to",
                        route.trunk,
                    )
                )
        _raise_problems("Settings", problems)

        if not self.database_url:
            # Frozen model: the computed default is set once, here.
            object.__setattr__(self, "database_url", default_database_url(self.data_dir))
        return self

    def agent(self, extension: str) -> AgentSettings | None:
        """The agent with ``extension``, if configured."""
        return next((a for a in self.agents if a.extension == extension), None)

    def trunk(self, name: str) -> TrunkSettings | None:
        """The trunk called ``name``, if configured."""
        return next((t for t in self.trunks if t.name == name), None)

    def queue(self, name: str) -> QueueSettings | None:
        """The queue called ``name``, if configured."""
        return next((q for q in self.queues if q.name == name), None)

    def route(self, number: str) -> tuple[RouteSettings, str] | None:
        """The first route matching ``number`` and the number to dial on its trunk."""
        for route in self.routes:
            dialled = route.rewrite(number)
            if dialled is not None:
                return route, dialled
        return None


def default_database_url(data_dir: Path) -> str:
    """The SQLite database used when ``database_url`` is not set: ``<data_dir>/cosmo.db``."""
    return f"sqlite+aiosqlite:///{(data_dir / 'cosmo.db').as_posix()}"


# --------------------------------------------------------------------------- env overrides

ENV_OVERRIDES: tuple[str, ...] = (
    "COSMO_SIP_PORT",
    "COSMO_HTTP_PORT",
    "COSMO_SMTP_PORT",
    "COSMO_DATA_DIR",
    "COSMO_DATABASE_URL",
    "COSMO_LOG_LEVEL",
)
"""Environment variables that override the file, applied in this order."""


def _port_from_env(name: str, text: str) -> int:
    """The port in variable ``name``; raises ``ValueError`` with a message naming it."""
    try:
        port = int(text.strip())
    except ValueError:
        raise ValueError(f"{name}: not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{name}: port out of range 0-65535: {port}")
    return port


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> tuple[dict[Loc, str], list[str]]:
    """Apply ``COSMO_*`` overrides to ``data`` in place.

    Returns which paths each variable set (to blame it for errors there) and
    the problems found in the variables themselves.
    """
    origins: dict[Loc, str] = {}
    problems: list[str] = []

    def section(name: str) -> dict[str, Any] | None:
        value = data.setdefault(name, {})
        if value is None:
            value = data[name] = {}
        return value if isinstance(value, dict) else None

    text = environ.get("COSMO_SIP_PORT")
    if text:
        try:
            port = _port_from_env("COSMO_SIP_PORT", text)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            sip = section("sip")
            if sip is not None:
                listen = sip.get("listen")
                if listen is None:
                    listen = sip["listen"] = [
                        listener.model_dump(mode="json", exclude_none=True) for listener in _default_listen()
                    ]
                if isinstance(listen, list):
                    for index, listener in enumerate(listen):
                        if not isinstance(listener, dict):
                            continue
                        transport = str(listener.get("transport", "")).lower()
                        if transport in ("udp", "tcp"):
                            listener["port"] = port
                        elif transport == "tls":
                            listener["port"] = port + 1 if port else 0
                        else:
                            continue
                        origins[("sip", "listen", index, "port")] = "COSMO_SIP_PORT"

    text = environ.get("COSMO_HTTP_PORT")
    if text:
        try:
            port = _port_from_env("COSMO_HTTP_PORT", text)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            http = section("http")
            if http is not None:
                http["port"] = port
                origins[("http", "port")] = "COSMO_HTTP_PORT"

    text = environ.get("COSMO_SMTP_PORT")
    if text:
        try:
            port = _port_from_env("COSMO_SMTP_PORT", text)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            email = section("email")
            smtp = email.setdefault("smtp", {}) if email is not None else None
            if isinstance(smtp, dict):  # ``smtp: null`` (no listener) stays off
                smtp["port"] = port
                origins[("email", "smtp", "port")] = "COSMO_SMTP_PORT"

    for name, key in (
        ("COSMO_DATA_DIR", "data_dir"),
        ("COSMO_DATABASE_URL", "database_url"),
        ("COSMO_LOG_LEVEL", "log_level"),
    ):
        text = environ.get(name)
        if text:
            data[key] = text.strip()
            origins[(key,)] = name
    return origins, problems


# --------------------------------------------------------------------------- loading


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate configuration ``text`` (YAML) named ``source`` in messages.

    ``environ`` defaults to :data:`os.environ`; pass ``{}`` to ignore overrides.
    Raises :class:`ConfigError` listing every problem.
    """
    if environ is None:
        environ = os.environ
    try:
        raw, lines = read_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError(source, [f"{source}:{exc.line}: {exc.message}"]) from None

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"{source}:1: the file must be a mapping of settings"])

    origins, env_problems = _apply_env(raw, environ)
    problems = [Problem(0, problem) for problem in env_problems]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, raw, lines, source, origins))
    if problems or settings is None:
        problems.sort(key=lambda problem: problem.line)
        raise ConfigError(source, [problem.text for problem in problems])
    return settings


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the configuration file at ``path``, then apply env overrides.

    Raises :class:`ConfigError` when the file cannot be read or is invalid;
    its ``problems`` are ``file:line: message`` strings.
    """
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(name, [f"{name}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(name, [f"{name}:1: not UTF-8 text: {exc.reason}"]) from None
    return parse_config(text, source=name, environ=environ)
