"""Which digest challenges a request gets.

Every configured algorithm, most preferred first (RFC 8760 §2.4), except for
phones known to fail on a challenge naming an algorithm they do not know
instead of answering the one they do (libre before 2.x: Debian's baresip
1.0): those, recognised by their User-Agent, are challenged with MD5 alone.
Both kinds of nonce come from the same secret and realm, so one
:class:`DigestAuthenticator` verifies every answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .auth import DigestAuthenticator
from .message import SipRequest


class Challenger:
    """Challenges for a request; see the module docstring."""

    def __init__(
        self,
        authenticator: DigestAuthenticator,
        secret: bytes,
        md5_only_user_agents: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authenticator = authenticator
        self.md5_only = tuple(prefix.lower() for prefix in md5_only_user_agents if prefix)
        self._md5 = DigestAuthenticator(
            authenticator.realm,
            secret,
            nonce_ttl=authenticator.nonce_ttl,
            algorithms=("MD5",),
            clock=clock,
        )

    def wants_md5_only(self, request: SipRequest) -> bool:
        """Whether the request's User-Agent is one of the MD5-only phones."""
        agent = (request.headers.get("User-Agent") or "").lower()
        return bool(agent) and agent.startswith(self.md5_only)

    def challenge(self, request: SipRequest, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` / ``Proxy-Authenticate`` values for ``request``."""
        authenticator = self._md5 if self.md5_only and self.wants_md5_only(request) else self.authenticator
        return authenticator.challenge(now, stale=stale)
