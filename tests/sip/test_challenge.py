"""Challenges per User-Agent: every algorithm for most phones, MD5 alone for
the ones that fail on an algorithm they lack; one authenticator verifies both."""

from __future__ import annotations

from cosmo.sip.auth import DigestAuthenticator, DigestClient, ha1, parse_challenge
from cosmo.sip.challenge import Challenger
from cosmo.sip.message import Headers, SipRequest
from cosmo.sip.uri import parse_uri

SECRET = b"s" * 32


def register(user_agent: str | None) -> SipRequest:
    headers = Headers([("Call-ID", "c"), ("CSeq", "1 REGISTER")])
    if user_agent is not None:
        headers.add("User-Agent", user_agent)
    return SipRequest("REGISTER", parse_uri("sip:cosmo.local"), headers)


def algorithms(values: list[str]) -> list[str | None]:
    return [parse_challenge(v).algorithm for v in values]


def test_most_phones_get_every_algorithm_in_order() -> None:
    main = DigestAuthenticator("cosmo.local", SECRET, algorithms=("SHA-256", "MD5"), clock=lambda: 0.0)
    challenger = Challenger(main, SECRET, ["baresip v1."], clock=lambda: 0.0)
    for agent in (None, "PJSUA v2.15.1 Linux", "Linphone/5.2", "baresip v2.9.0"):
        assert algorithms(challenger.challenge(register(agent), 10.0)) == ["SHA-256", "MD5"]


def test_listed_phones_get_md5_alone_and_their_answer_verifies() -> None:
    main = DigestAuthenticator("cosmo.local", SECRET, algorithms=("SHA-256", "MD5"), clock=lambda: 0.0)
    challenger = Challenger(main, SECRET, ["baresip v1."], clock=lambda: 0.0)
    values = challenger.challenge(register("BARESIP v1.0.0 (x86_64/linux)"), 10.0)
    assert algorithms(values) == ["MD5"]
    answer = DigestClient("1001", "secret1001").authorize(values[0], "REGISTER", "sip:cosmo.local")
    result = main.verify(answer, "REGISTER", lambda u, r, a: ha1(u, r, "secret1001", a), 11.0)
    assert result.ok and result.username == "1001"
