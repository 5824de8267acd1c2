"""SIP Digest authentication (RFC 3261 §22, RFC 7616, RFC 2617, RFC 8760).

Everything here works on header *values* (the text after ``WWW-Authenticate:``,
``Proxy-Authenticate:``, ``Authorization:`` or ``Proxy-Authorization:``) and
on times passed in by the caller; nothing reads a socket or the wall clock
behind the caller's back.

Theory of operation
-------------------
*Server.*  :class:`DigestAuthenticator` answers an unauthenticated request
with :meth:`~DigestAuthenticator.challenge`: one header value per configured
algorithm, most preferred first (RFC 8760 §2.4).  Nonces are stateless: each
carries its issue time, random bytes and an HMAC-SHA256 over both keyed by the
server secret, so any node holding the secret checks one without a table.
:meth:`~DigestAuthenticator.verify` recomputes the response with the HA1 that
the caller's look-up returns and answers an :class:`AuthResult`:

* ``ok`` — the response is right, the nonce fresh and its count new;
* ``stale`` — the response is right for the nonce presented but the nonce is
  expired, forged, from before a restart, or its count was already seen; the
  caller re-challenges with ``stale=true`` and the client retries without
  asking its user (RFC 7616 §3.3: stale only when the digest itself is valid);
* neither — wrong credentials or a request that cannot be checked.

An unknown user and a wrong password yield the same result and the same work
(a dummy HA1 is always computed and compared with ``hmac.compare_digest``), so
extensions cannot be enumerated.  Replays are caught by remembering, per
nonce, the highest nonce count accepted (RFC 7616 §3.4, RFC 2617 §3.2.2) in a
bounded table; nonces pushed out of a full table are refused as stale rather
than trusted.

:class:`FailureThrottle` counts failures per source address and blocks a
source that fails too often, with bounded memory.

*Client.*  :class:`DigestClient` turns a challenge into an ``Authorization``
value, keeping a nonce count per nonce; :func:`choose_challenge` picks the
strongest usable challenge among several.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final
from urllib.parse import unquote

from .errors import SipProtocolError, SipUsageError

__all__ = [
    "AuthResult",
    "Challenge",
    "Credentials",
    "DigestAlgorithm",
    "DigestAuthenticator",
    "DigestClient",
    "DigestError",
    "FailureThrottle",
    "choose_challenge",
    "compute_response",
    "ha1",
    "parse_algorithm",
    "parse_challenge",
    "parse_credentials",
]


class DigestError(SipProtocolError):
    """A Digest challenge or credentials value that cannot be parsed or used.

    Carries status 400 like every peer error of :mod:`cosmo.sip`.
    """


# ---------------------------------------------------------------------------
# Algorithms and the hash computations (RFC 7616 §3.4.1-§3.4.3)
# ---------------------------------------------------------------------------


class DigestAlgorithm(StrEnum):
    """The ``algorithm`` values of the IANA "HTTP Digest Hash Algorithms" registry."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"
    SHA_512_256 = "SHA-512-256"
    SHA_512_256_SESS = "SHA-512-256-sess"

    @property
    def is_session(self) -> bool:
        """Whether HA1 is re-keyed with the nonce and cnonce (the ``-sess`` variants)."""
        return self.value.endswith("-sess")

    @property
    def base(self) -> DigestAlgorithm:
        """The algorithm without ``-sess``: the one a stored HA1 is computed with."""
        return DigestAlgorithm(self.value.removesuffix("-sess"))

    @property
    def strength(self) -> int:
        """A rank for choosing among challenges: larger is stronger."""
        return _STRENGTH[self.base]


_HASHLIB_NAME: Final = {
    DigestAlgorithm.MD5: "md5",
    DigestAlgorithm.SHA_256: "sha256",
    DigestAlgorithm.SHA_512_256: "sha512_256",
}
_STRENGTH: Final = {
    DigestAlgorithm.MD5: 1,
    DigestAlgorithm.SHA_256: 2,
    DigestAlgorithm.SHA_512_256: 3,
}
_ALGORITHM_BY_NAME: Final = {alg.value.lower(): alg for alg in DigestAlgorithm}
# RFC 8760 writes "SHA-512/256" in prose; the registry token is "SHA-512-256".
_ALGORITHM_BY_NAME["sha-512/256"] = DigestAlgorithm.SHA_512_256
_ALGORITHM_BY_NAME["sha-512/256-sess"] = DigestAlgorithm.SHA_512_256_SESS


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:  # an OpenSSL build without SHA-512/256
        return False
    return True


_AVAILABLE: Final = frozenset(
    alg for alg in DigestAlgorithm if _hash_available(_HASHLIB_NAME[alg.base])
)


def parse_algorithm(text: str | None) -> DigestAlgorithm:
    """The :class:`DigestAlgorithm` named by ``text`` (case-insensitive).

    ``None`` (no ``algorithm`` parameter) means MD5 (RFC 7616 §3.3).

    Raises:
        DigestError: unknown algorithm, or one this Python's hashlib lacks.
    """
    if text is None:
        return DigestAlgorithm.MD5
    alg = _ALGORITHM_BY_NAME.get(text.lower())
    if alg is None:
        raise DigestError(f"unsupported digest algorithm {text!r}")
    if alg not in _AVAILABLE:
        raise DigestError(f"digest algorithm {alg.value!r} is not available in this Python build")
    return alg


def _h(alg: DigestAlgorithm, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(_HASHLIB_NAME[alg.base], raw).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str | DigestAlgorithm = "MD5") -> str:
    """``H(username ":" realm ":" password)`` in lower-case hex (RFC 7616 §3.4.2).

    This is what a user store keeps instead of the password.  For a ``-sess``
    algorithm it is the same value as for its base algorithm: the session
    re-keying needs the nonce and cnonce and happens at verification.

    Raises:
        DigestError: ``algorithm`` is unknown.
    """
    alg = parse_algorithm(str(algorithm))
    return _h(alg, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str | DigestAlgorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 in lower-case hex.

    ``ha1`` is the stored ``H(username:realm:password)``; for ``-sess``
    algorithms it is re-keyed here as ``H(ha1:nonce:cnonce)`` (§3.4.2).  With
    ``qop`` absent the RFC 2069 form ``H(HA1:nonce:HA2)`` is used.  ``qop``,
    ``nc`` and ``cnonce`` enter the hash exactly as written on the wire.

    Raises:
        DigestError: unknown algorithm or qop, or a missing ``nc``/``cnonce``.
    """
    alg = parse_algorithm(str(algorithm))
    key = ha1.lower()
    if alg.is_session:
        if cnonce is None:
            raise DigestError(f"algorithm {alg.value} needs a cnonce")
        key = _h(alg, f"{key}:{nonce}:{cnonce}")
    qop_kind = None if qop is None else qop.lower()
    if qop_kind == "auth-int":
        # RFC 3261 §22.4: an empty body hashes as the empty string.
        ha2 = _h(alg, f"{method}:{uri}:{_h(alg, body)}")
    elif qop_kind in (None, "auth"):
        ha2 = _h(alg, f"{method}:{uri}")
    else:
        raise DigestError(f"unsupported qop {qop!r}")
    if qop is None:
        return _h(alg, f"{key}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise DigestError("qop requires both nc and cnonce")
    return _h(alg, f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ---------------------------------------------------------------------------
# Parsing and formatting header values (RFC 3261 §25.1, RFC 7235 §2.1)
# ---------------------------------------------------------------------------

Params = tuple[tuple[str, str], ...]

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_WS = " \t\r\n"
_NC = re.compile(r"[0-9A-Fa-f]{8}")
# RFC 5987 ext-value, used by RFC 7616 §3.4.4 for ``username*``.
_EXT_VALUE = re.compile(r"(?P<charset>[A-Za-z0-9!#$%&+\-^_`{}~]+)'[A-Za-z0-9\-]*'(?P<value>.*)")
# Parameters written as tokens, everything else as quoted strings (RFC 7616 §3.3, §3.4).
_UNQUOTED_IN_CHALLENGE: Final = frozenset({"algorithm", "stale", "charset", "userhash"})
_UNQUOTED_IN_CREDENTIALS: Final = frozenset({"algorithm", "qop", "nc", "userhash"})


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _parse_quoted(text: str, i: int, what: str) -> tuple[str, int]:
    # quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE  (RFC 3261 §25.1)
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            ch = text[i + 1]
            i += 1
        if (ch < " " and ch != "\t") or ch == "\x7f":
            raise DigestError(f"{what}: control character {ch!r} in quoted string")
        out.append(ch)
        i += 1
    raise DigestError(f"{what}: unterminated quoted string")


def _parse_params(text: str, what: str) -> Params:
    """``#auth-param`` with empty list elements tolerated (RFC 7230 §7)."""
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    n = len(text)
    i = 0
    while True:
        i = _skip_ws(text, i)
        if i >= n:
            return tuple(params)
        if text[i] == ",":
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if m is None:
            raise DigestError(f"{what}: expected a parameter name, found {text[i]!r}")
        name = m.group().lower()
        i = _skip_ws(text, m.end())
        if i >= n or text[i] != "=":
            raise DigestError(f"{what}: parameter {name!r} has no value")
        i = _skip_ws(text, i + 1)
        if i < n and text[i] == '"':
            value, i = _parse_quoted(text, i, what)
        else:
            m = _TOKEN.match(text, i)
            if m is None:
                raise DigestError(f"{what}: parameter {name!r} has an invalid value")
            value, i = m.group(), m.end()
        if name in seen:
            raise DigestError(f"{what}: duplicate parameter {name!r}")
        seen.add(name)
        params.append((name, value))
        i = _skip_ws(text, i)
        if i < n and text[i] != ",":
            raise DigestError(f"{what}: expected ',' after parameter {name!r}, found {text[i]!r}")
        i += 1


def _split_scheme(value: str, what: str) -> tuple[str, str]:
    i = _skip_ws(value, 0)
    m = _TOKEN.match(value, i)
    if m is None:
        raise DigestError(f"{what}: missing authentication scheme")
    end = m.end()
    if end < len(value) and value[end] not in _WS:
        raise DigestError(f"{what}: invalid character {value[end]!r} after scheme {m.group()!r}")
    return m.group(), value[end:].strip(_WS)


def _parse(value: str, what: str) -> tuple[str, Params, str]:
    scheme, rest = _split_scheme(value, what)
    if scheme.lower() == "digest":
        return "Digest", _parse_params(rest, what), rest
    # A scheme we do not implement (RFC 4475 regaut01): keep its text so the
    # caller can ignore it or re-challenge; its token68 or odd syntax is not
    # ours to judge (RFC 7235 §2.1).
    try:
        params = _parse_params(rest, what)
    except DigestError:
        params = ()
    return scheme, params, rest


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format(scheme: str, params: Params, data: str, unquoted: frozenset[str]) -> str:
    if not params:
        return f"{scheme} {data}" if data else scheme
    rendered = ", ".join(
        f"{name}={value}"
        if name in unquoted and _TOKEN.fullmatch(value)
        else f"{name}={_quote(value)}"
        for name, value in params
    )
    return f"{scheme} {rendered}"


def _get(params: Params, name: str) -> str | None:
    for pname, value in params:
        if pname == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` / ``Proxy-Authenticate`` value.

    ``params`` holds lower-cased names and unquoted values in wire order.
    For a scheme other than Digest whose text is not an auth-param list,
    ``params`` is empty and ``data`` keeps the text after the scheme.
    ``str()`` gives the header value back.
    """

    scheme: str
    params: Params
    data: str = field(default="", compare=False)

    def __str__(self) -> str:
        return _format(self.scheme, self.params, self.data, _UNQUOTED_IN_CHALLENGE)

    @property
    def is_digest(self) -> bool:
        """Whether the scheme is Digest."""
        return self.scheme == "Digest"

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or ``None``."""
        return _get(self.params, name.lower())

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter."""
        return _get(self.params, "realm")

    @property
    def nonce(self) -> str | None:
        """The ``nonce`` parameter."""
        return _get(self.params, "nonce")

    @property
    def opaque(self) -> str | None:
        """The ``opaque`` parameter, to be echoed unchanged."""
        return _get(self.params, "opaque")

    @property
    def algorithm(self) -> str | None:
        """The ``algorithm`` parameter as written (``None`` means MD5)."""
        return _get(self.params, "algorithm")

    @property
    def qop_options(self) -> tuple[str, ...]:
        """The offered qop values, lower-cased (``qop="auth,auth-int"``)."""
        value = _get(self.params, "qop")
        if value is None:
            return ()
        return tuple(item.strip(_WS).lower() for item in value.split(",") if item.strip(_WS))

    @property
    def stale(self) -> bool:
        """Whether ``stale=true`` (case-insensitive; RFC 3261 writes ``FALSE``)."""
        return (_get(self.params, "stale") or "").lower() == "true"

    @property
    def userhash(self) -> bool:
        """Whether the server accepts a hashed username (RFC 7616 §3.4.4)."""
        return (_get(self.params, "userhash") or "").lower() == "true"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed ``Authorization`` / ``Proxy-Authorization`` value.

    ``params`` holds lower-cased names and unquoted values in wire order; a
    ``username*`` (RFC 7616 §3.4.4) is decoded into ``username``.  For a
    scheme other than Digest whose text is not an auth-param list, ``params``
    is empty and ``data`` keeps the text after the scheme.
    """

    scheme: str
    params: Params
    data: str = field(default="", compare=False)

    def __str__(self) -> str:
        return _format(self.scheme, self.params, self.data, _UNQUOTED_IN_CREDENTIALS)

    @property
    def is_digest(self) -> bool:
        """Whether the scheme is Digest."""
        return self.scheme == "Digest"

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or ``None``."""
        return _get(self.params, name.lower())

    @property
    def username(self) -> str | None:
        """The ``username`` parameter."""
        return _get(self.params, "username")

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter."""
        return _get(self.params, "realm")

    @property
    def nonce(self) -> str | None:
        """The ``nonce`` parameter."""
        return _get(self.params, "nonce")

    @property
    def uri(self) -> str | None:
        """The ``uri`` parameter (digest-uri)."""
        return _get(self.params, "uri")

    @property
    def response(self) -> str | None:
        """The ``response`` parameter."""
        return _get(self.params, "response")

    @property
    def algorithm(self) -> str | None:
        """The ``algorithm`` parameter as written (``None`` means MD5)."""
        return _get(self.params, "algorithm")

    @property
    def cnonce(self) -> str | None:
        """The ``cnonce`` parameter."""
        return _get(self.params, "cnonce")

    @property
    def opaque(self) -> str | None:
        """The ``opaque`` parameter."""
        return _get(self.params, "opaque")

    @property
    def qop(self) -> str | None:
        """The chosen ``qop`` as written."""
        return _get(self.params, "qop")

    @property
    def nc(self) -> str | None:
        """The ``nc`` (nonce count) as written: 8 hex digits."""
        return _get(self.params, "nc")

    @property
    def userhash(self) -> bool:
        """Whether ``username`` is ``H(username:realm)`` (RFC 7616 §3.4.4)."""
        return (_get(self.params, "userhash") or "").lower() == "true"


def parse_challenge(value: str) -> Challenge:
    """Parse a ``WWW-Authenticate`` or ``Proxy-Authenticate`` header value.

    Syntax only: whether the challenge is usable (realm, nonce, a known
    algorithm) is decided by :func:`choose_challenge` and
    :meth:`DigestClient.authorize`.

    Raises:
        DigestError: no scheme, a malformed Digest parameter list, or a
            duplicated parameter.
    """
    scheme, params, data = _parse(value, "challenge")
    return Challenge(scheme, params, "" if params else data)


def parse_credentials(value: str) -> Credentials:
    """Parse an ``Authorization`` or ``Proxy-Authorization`` header value.

    A scheme other than Digest parses to a :class:`Credentials` with that
    scheme, so the server can ignore it or re-challenge (RFC 4475 regaut01).

    Raises:
        DigestError: no scheme, a malformed Digest parameter list, a
            duplicated parameter, or a bad ``username*``.
    """
    scheme, params, data = _parse(value, "credentials")
    if scheme == "Digest" and _get(params, "username*") is not None:
        params = _decode_username_star(params)
    return Credentials(scheme, params, "" if params else data)


def _decode_username_star(params: Params) -> Params:
    # RFC 7616 §3.4.4: username* carries an RFC 5987 ext-value and MUST NOT
    # appear together with username.
    if _get(params, "username") is not None:
        raise DigestError("credentials: both 'username' and 'username*' present")
    raw = _get(params, "username*") or ""
    m = _EXT_VALUE.fullmatch(raw)
    if m is None:
        raise DigestError("credentials: malformed 'username*' value")
    charset = m.group("charset").lower()
    if charset not in ("utf-8", "iso-8859-1"):
        raise DigestError(f"credentials: unsupported 'username*' charset {m.group('charset')!r}")
    try:
        name = unquote(m.group("value"), encoding=charset, errors="strict")
    except UnicodeDecodeError as exc:
        raise DigestError("credentials: 'username*' is not valid in its charset") from exc
    return tuple(("username", name) if key == "username*" else (key, val) for key, val in params)


# ---------------------------------------------------------------------------
# Server side
# ---------------------------------------------------------------------------

LookupHa1 = Callable[[str, str, str], str | None]
"""``lookup_ha1(username, realm, algorithm)`` → stored HA1 hex, or ``None``.

``algorithm`` is the base algorithm name (``"MD5"``, ``"SHA-256"``,
``"SHA-512-256"``): a ``-sess`` variant uses the same stored HA1.
"""

DEFAULT_NONCE_TTL: Final = 300.0
DEFAULT_ALGORITHMS: Final = ("SHA-256", "MD5")
# Nonces may come from another node sharing the secret (clock=time.time);
# allow this much clock difference before calling a nonce "from the future".
NONCE_CLOCK_SKEW: Final = 2.0

_NONCE_TIME = struct.Struct(">d")
_NONCE_RANDOM_LEN: Final = 12
_NONCE_MAC_LEN: Final = 16
_NONCE_LEN: Final = _NONCE_TIME.size + _NONCE_RANDOM_LEN + _NONCE_MAC_LEN
# 36 bytes are 48 base64url characters with no padding.
_NONCE_TEXT = re.compile(rf"[A-Za-z0-9\-_]{{{_NONCE_LEN * 4 // 3}}}")
# The count recorded for a nonce used without qop: no later use may follow.
_USED_WITHOUT_QOP: Final = 1 << 32


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of :meth:`DigestAuthenticator.verify`.

    ``username`` is set only when the response proved knowledge of the
    password (``ok``, or ``stale`` with a valid digest).  ``stale`` asks the
    caller to re-challenge with ``stale=true``.  ``reason`` is for logs only
    and never tells an unknown user from a wrong password.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: str


def _fail(reason: str) -> AuthResult:
    return AuthResult(ok=False, username=None, stale=False, reason=reason)


@dataclass(frozen=True, slots=True)
class _NonceCheck:
    issued: float | None  # None when the nonce is not one of ours
    problem: str | None  # why the nonce cannot be accepted, if it cannot


class DigestAuthenticator:
    """Challenges requests and verifies Digest credentials for one realm.

    Args:
        realm: the protection realm put in every challenge (RFC 3261 §22.1).
        secret: HMAC key for nonces, at least 16 bytes.  Nodes sharing it
            (and a wall clock) verify each other's nonces.
        nonce_ttl: seconds a nonce stays fresh.
        algorithms: offered algorithms in preference order (RFC 8760 §2.4).
        clock: the time source used when a method gets no ``now``.
        qop: offered qop values, from ``"auth"`` and ``"auth-int"``.
        allow_no_qop: accept RFC 2069/2543 responses without qop; only ever
            for MD5, which is the only algorithm such clients know (RFC 8760
            makes qop mandatory for the others).
        max_tracked_nonces: bound of the nonce-count table.

    Raises:
        SipUsageError: a setting is out of range.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        nonce_ttl: float = DEFAULT_NONCE_TTL,
        algorithms: Sequence[str | DigestAlgorithm] = DEFAULT_ALGORITHMS,
        clock: Callable[[], float] = time.monotonic,
        *,
        qop: Sequence[str] = ("auth",),
        allow_no_qop: bool = True,
        max_tracked_nonces: int = 65536,
    ) -> None:
        if not realm:
            raise SipUsageError("realm must not be empty")
        if len(secret) < 16:
            raise SipUsageError(f"secret must be at least 16 bytes, got {len(secret)}")
        if not (nonce_ttl > 0 and math.isfinite(nonce_ttl)):
            raise SipUsageError(
                f"nonce_ttl must be a positive number of seconds, got {nonce_ttl!r}"
            )
        if max_tracked_nonces < 1:
            raise SipUsageError(f"max_tracked_nonces must be at least 1, got {max_tracked_nonces}")
        if not algorithms:
            raise SipUsageError("at least one algorithm must be offered")
        algs: list[DigestAlgorithm] = []
        for name in algorithms:
            try:
                alg = parse_algorithm(str(name))
            except DigestError as exc:
                raise SipUsageError(str(exc)) from None
            if alg in algs:
                raise SipUsageError(f"algorithm {alg.value} listed twice")
            algs.append(alg)
        qops = tuple(q.lower() for q in qop)
        if (
            not qops
            or any(q not in ("auth", "auth-int") for q in qops)
            or len(set(qops)) != len(qops)
        ):
            raise SipUsageError(
                f"qop must be distinct values from 'auth', 'auth-int', got {tuple(qop)!r}"
            )
        self.realm: Final = realm
        self.nonce_ttl: Final = float(nonce_ttl)
        self.algorithms: Final = tuple(algs)
        self.qop: Final = qops
        self.allow_no_qop: Final = allow_no_qop
        self._secret = bytes(secret)
        self._clock = clock
        self._opaque = base64.urlsafe_b64encode(self._mac(b"opaque", b"")[:12]).decode("ascii")
        self._dummy_password = secrets.token_hex(16)
        # nonce -> (issue time, highest nc accepted), oldest first.
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._max_tracked = max_tracked_nonces
        # Highest issue time of any nonce pushed out of the full table: an
        # untracked nonce issued at or before it may have been used already.
        self._evicted_upto = -math.inf

    # -- nonces ------------------------------------------------------------

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        message = b"cosmo-digest\0" + purpose + b"\0" + self.realm.encode("utf-8") + b"\0" + data
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def _new_nonce(self, now: float) -> str:
        body = _NONCE_TIME.pack(now) + secrets.token_bytes(_NONCE_RANDOM_LEN)
        mac = self._mac(b"nonce", body)[:_NONCE_MAC_LEN]
        return base64.urlsafe_b64encode(body + mac).decode("ascii")

    def _check_nonce(self, nonce: str, now: float) -> _NonceCheck:
        if _NONCE_TEXT.fullmatch(nonce) is None:
            return _NonceCheck(None, "malformed nonce")
        raw = base64.urlsafe_b64decode(nonce)
        body, mac = raw[:-_NONCE_MAC_LEN], raw[-_NONCE_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(b"nonce", body)[:_NONCE_MAC_LEN]):
            return _NonceCheck(None, "nonce signature invalid")
        (issued,) = _NONCE_TIME.unpack_from(body)
        if not math.isfinite(issued):
            return _NonceCheck(None, "malformed nonce")
        if issued > now + NONCE_CLOCK_SKEW:
            # A restart that reset a monotonic clock, or a node whose clock is ahead.
            return _NonceCheck(issued, "nonce issued in the future")
        if now - issued > self.nonce_ttl:
            return _NonceCheck(issued, "nonce expired")
        return _NonceCheck(issued, None)

    # -- public API --------------------------------------------------------

    def challenge(self, now: float | None = None, stale: bool = False) -> list[str]:
        """Header values for ``WWW-Authenticate`` (401) or ``Proxy-Authenticate`` (407).

        One value per configured algorithm, most preferred first, all with
        the same fresh nonce (RFC 8760 §2.4, RFC 7616 §3.7).  ``stale=True``
        tells the client its password was right and only the nonce was not
        (RFC 7616 §3.3).
        """
        t = self._clock() if now is None else now
        nonce = self._new_nonce(t)
        values = []
        for alg in self.algorithms:
            params: list[tuple[str, str]] = [
                ("realm", self.realm),
                ("nonce", nonce),
                ("opaque", self._opaque),
                ("algorithm", alg.value),
                ("qop", ",".join(self.qop)),
            ]
            if stale:
                params.append(("stale", "true"))
            values.append(str(Challenge("Digest", tuple(params))))
        return values

    def verify(
        self,
        credentials_value: str,
        method: str,
        lookup_ha1: LookupHa1,
        now: float | None = None,
        *,
        expected_uri: str | None = None,
        body: bytes = b"",
    ) -> AuthResult:
        """Check the credentials of a request.

        Args:
            credentials_value: the ``Authorization`` / ``Proxy-Authorization`` value.
            method: the request method (A2 of RFC 7616 §3.4.3).
            lookup_ha1: returns the stored HA1, or ``None`` for an unknown user.
            now: the current time on the authenticator's clock.
            expected_uri: when given, the digest-uri must equal it exactly (the
                Request-URI as received).  RFC 3261 §22.4 lets a UAS skip this
                check, since a proxy may have retargeted the request; the
                response is always computed over the digest-uri as sent.
            body: the message body, needed for ``qop=auth-int``.

        Never raises for anything the peer sent; the verdict is in the result.
        """
        t = self._clock() if now is None else now
        try:
            cred = parse_credentials(credentials_value)
        except DigestError as exc:
            return _fail(f"malformed credentials: {exc}")
        if not cred.is_digest:
            return _fail(f"unsupported authorization scheme {cred.scheme!r}")
        for name in ("username", "realm", "nonce", "uri", "response"):
            if cred.param(name) is None:
                return _fail(f"missing {name!r} parameter")
        username = cred.username or ""
        nonce = cred.nonce or ""
        uri = cred.uri or ""
        response = cred.response or ""
        if cred.realm != self.realm:
            return _fail(f"realm mismatch: {cred.realm!r} is not {self.realm!r}")
        try:
            alg = parse_algorithm(cred.algorithm)
        except DigestError as exc:
            return _fail(str(exc))
        if alg not in self.algorithms:
            return _fail(f"algorithm {alg.value} not offered")
        if cred.userhash:
            return _fail("userhash is not supported")
        qop, nc, cnonce = cred.qop, cred.nc, cred.cnonce
        count = 0
        if qop is None:
            if not (self.allow_no_qop and alg is DigestAlgorithm.MD5):
                return _fail(f"qop missing, required with algorithm {alg.value}")
            if nc is not None or cnonce is not None:
                return _fail("nc or cnonce given without qop")
        else:
            if qop.lower() not in self.qop:
                return _fail(f"qop {qop!r} not offered")
            if nc is None:
                return _fail("missing 'nc' parameter")
            if cnonce is None:
                return _fail("missing 'cnonce' parameter")
            if _NC.fullmatch(nc) is None:
                return _fail(f"invalid nonce count {nc!r}")
            count = int(nc, 16)
            if count == 0:
                return _fail("nonce count must start at 00000001")
        if expected_uri is not None and uri != expected_uri:
            return _fail(f"uri mismatch: {uri!r} is not the request URI {expected_uri!r}")
        nonce_check = self._check_nonce(nonce, t)
        if (
            nonce_check.problem is None
            and cred.opaque is not None
            and not hmac.compare_digest(cred.opaque.encode("utf-8"), self._opaque.encode("ascii"))
        ):
            # The opaque is server state like the nonce (RFC 7616 §3.3); both
            # change when the secret does, so a mismatch is treated alike.
            nonce_check = _NonceCheck(nonce_check.issued, "opaque mismatch")

        # From here on the work is the same for every user, known or not.
        dummy = ha1(username, self.realm, self._dummy_password, alg.base)
        stored = lookup_ha1(username, self.realm, alg.base.value)
        expected = compute_response(
            algorithm=alg,
            ha1=dummy if stored is None else stored,
            nonce=nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        match = hmac.compare_digest(expected.encode("ascii"), response.lower().encode("utf-8"))
        if not (match and stored is not None):
            return _fail(nonce_check.problem or "response mismatch")
        if nonce_check.problem is not None or nonce_check.issued is None:
            return AuthResult(False, username, True, nonce_check.problem or "malformed nonce")
        replay = self._record_count(
            nonce, nonce_check.issued, count if qop else _USED_WITHOUT_QOP, t
        )
        if replay is not None:
            return AuthResult(False, username, True, replay)
        return AuthResult(True, username, False, "ok")

    def _record_count(self, nonce: str, issued: float, count: int, now: float) -> str | None:
        """Remember ``count`` for ``nonce``; the reason it is a replay, or ``None``."""
        entry = self._counts.get(nonce)
        if entry is None:
            if issued <= self._evicted_upto:
                return "nonce no longer tracked"
            self._purge(now)
        else:
            last = entry[1]
            if last == _USED_WITHOUT_QOP:
                return "nonce already used without qop"
            if count == _USED_WITHOUT_QOP:
                return "nonce already used with qop, now without"
            if count <= last:
                return f"nonce count {count:08x} not greater than {last:08x}"
        self._counts[nonce] = (issued, count)
        return None

    def _purge(self, now: float) -> None:
        # Expired nonces are refused by their time stamp, so their counts can go.
        while self._counts:
            oldest = next(iter(self._counts.values()))
            if now - oldest[0] <= self.nonce_ttl and len(self._counts) < self._max_tracked:
                break
            _, (issued, _count) = self._counts.popitem(last=False)
            if now - issued <= self.nonce_ttl:
                self._evicted_upto = max(self._evicted_upto, issued)

    def __repr__(self) -> str:
        algs = ",".join(a.value for a in self.algorithms)
        tracked = len(self._counts)
        return f"<DigestAuthenticator realm={self.realm!r} algorithms={algs} tracked={tracked}>"


# ---------------------------------------------------------------------------
# Failure throttling
# ---------------------------------------------------------------------------


class FailureThrottle:
    """Blocks a source (an IP address string) after repeated authentication failures.

    A source that fails ``max_failures`` times within ``window`` seconds is
    blocked for ``block_time`` seconds.  At most ``max_sources`` sources are
    remembered: when full, the least recently seen unblocked source is
    forgotten first, so a flood of new addresses cannot free a blocked one
    while any unblocked entry remains.

    Raises:
        SipUsageError: a setting is out of range.
    """

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 60.0,
        block_time: float = 60.0,
        *,
        max_sources: int = 10000,
    ) -> None:
        if max_failures < 1:
            raise SipUsageError(f"max_failures must be at least 1, got {max_failures}")
        if not (window > 0 and block_time > 0):
            raise SipUsageError(
                f"window and block_time must be positive, got {window!r}, {block_time!r}"
            )
        if max_sources < 1:
            raise SipUsageError(f"max_sources must be at least 1, got {max_sources}")
        self.max_failures: Final = max_failures
        self.window: Final = float(window)
        self.block_time: Final = float(block_time)
        self.max_sources: Final = max_sources
        # Sources counting failures (least recently failed first) and blocked
        # sources with the end of their block (earliest end first).
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures) + len(self._blocked)

    def is_blocked(self, source: str, now: float) -> bool:
        """Whether requests from ``source`` should be refused without checking."""
        until = self._blocked.get(source)
        if until is None:
            return False
        if now < until:
            return True
        del self._blocked[source]
        return False

    def record_failure(self, source: str, now: float) -> bool:
        """Count a failed attempt by ``source``; whether it is now blocked."""
        if self.is_blocked(source, now):
            return True
        times = self._failures.get(source)
        if times is None:
            self._make_room(now)
            times = deque(maxlen=self.max_failures)
            self._failures[source] = times
        else:
            self._failures.move_to_end(source)
        while times and now - times[0] >= self.window:
            times.popleft()
        times.append(now)
        if len(times) < self.max_failures:
            return False
        del self._failures[source]
        self._blocked[source] = now + self.block_time
        return True

    def record_success(self, source: str) -> None:
        """Forget the failures of ``source``; a block in force stays until it ends."""
        self._failures.pop(source, None)

    def _make_room(self, now: float) -> None:
        while self._blocked:
            source, until = next(iter(self._blocked.items()))
            if now < until:
                break
            del self._blocked[source]
        while len(self) >= self.max_sources:
            if self._failures:
                self._failures.popitem(last=False)
            else:
                self._blocked.popitem(last=False)


# ---------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------


def _usable(challenge: Challenge) -> tuple[DigestAlgorithm, str | None]:
    """The algorithm and qop to answer ``challenge`` with; raises DigestError if none."""
    if not challenge.is_digest:
        raise DigestError(f"unsupported authentication scheme {challenge.scheme!r}")
    for name in ("realm", "nonce"):
        if challenge.param(name) is None:
            raise DigestError(f"challenge has no {name!r} parameter")
    alg = parse_algorithm(challenge.algorithm)
    options = challenge.qop_options
    if not options:
        if alg.is_session:
            # RFC 7616 §3.4.2: the -sess A1 needs a cnonce, sent only with qop.
            raise DigestError(f"challenge offers {alg.value} without qop")
        return alg, None
    for qop in ("auth", "auth-int"):
        if qop in options:
            return alg, qop
    raise DigestError(f"challenge offers no supported qop: {','.join(options)!r}")


def choose_challenge(values: Iterable[str]) -> Challenge:
    """The strongest usable Digest challenge among ``values``.

    RFC 8760 §2.4 has a UAC use the topmost challenge it supports unless
    local policy says otherwise; ours is the strongest algorithm, and among
    equals the topmost.  Unparseable, non-Digest and unsupported challenges
    are skipped.

    Raises:
        DigestError: no usable challenge; the message lists why each failed.
    """
    best: Challenge | None = None
    best_strength = 0
    problems: list[str] = []
    for value in values:
        try:
            challenge = parse_challenge(value)
            alg, _qop = _usable(challenge)
        except DigestError as exc:
            problems.append(str(exc))
            continue
        if alg.strength > best_strength:
            best, best_strength = challenge, alg.strength
    if best is None:
        detail = "; ".join(problems) if problems else "no challenges"
        raise DigestError(f"no usable digest challenge: {detail}")
    return best


class DigestClient:
    """Answers Digest challenges for one account (registration, trunk calls).

    Args:
        username: the account name.
        password: the account password.
        cnonce_factory: makes client nonces; 128 random bits in hex by default.
        max_nonces: how many nonces' counts to remember.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        cnonce_factory: Callable[[], str] | None = None,
        max_nonces: int = 16,
    ) -> None:
        if max_nonces < 1:
            raise SipUsageError(f"max_nonces must be at least 1, got {max_nonces}")
        self.username: Final = username
        self._password = password
        self._cnonce_factory = cnonce_factory or (lambda: secrets.token_hex(16))
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._max_nonces = max_nonces

    def __repr__(self) -> str:
        return f"<DigestClient username={self.username!r}>"

    def authorize(
        self, challenge: str | Challenge, method: str, uri: str, body: bytes = b""
    ) -> str:
        """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``.

        Picks ``qop=auth`` when offered (``auth-int`` otherwise, hashing
        ``body``), a fresh cnonce, and the next nonce count for this nonce
        (RFC 7616 §3.4).  Without qop, answers in the RFC 2069 form.

        Raises:
            DigestError: the challenge is not a usable Digest challenge.
        """
        ch = parse_challenge(challenge) if isinstance(challenge, str) else challenge
        alg, qop = _usable(ch)
        realm = ch.realm or ""
        nonce = ch.nonce or ""
        nc: str | None = None
        cnonce: str | None = None
        if qop is not None:
            nc = f"{self._next_count(realm, nonce):08x}"
            cnonce = self._cnonce_factory()
        response = compute_response(
            algorithm=alg,
            ha1=ha1(self.username, realm, self._password, alg),
            nonce=nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        username = self.username
        if ch.userhash:
            username = _h(alg, f"{self.username}:{realm}")
        params: list[tuple[str, str]] = [
            ("username", username),
            ("realm", realm),
            ("nonce", nonce),
            ("uri", uri),
            ("response", response),
            ("algorithm", ch.algorithm or alg.value),
        ]
        if cnonce is not None:
            params.append(("cnonce", cnonce))
        if ch.opaque is not None:
            params.append(("opaque", ch.opaque))
        if qop is not None and nc is not None:
            params += [("qop", qop), ("nc", nc)]
        if ch.userhash:
            params.append(("userhash", "true"))
        return str(Credentials("Digest", tuple(params)))

    def _next_count(self, realm: str, nonce: str) -> int:
        key = (realm, nonce)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self._max_nonces:
            self._counts.popitem(last=False)
        return count
