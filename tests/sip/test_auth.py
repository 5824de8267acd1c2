"""Tests for cosmo.sip.auth: Digest parsing, server verification, throttling, client."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.sip import auth
from cosmo.sip.auth import (
    AuthResult,
    Challenge,
    Credentials,
    DigestAlgorithm,
    DigestAuthenticator,
    DigestClient,
    DigestError,
    FailureThrottle,
    choose_challenge,
    compute_response,
    ha1,
    parse_algorithm,
    parse_challenge,
    parse_credentials,
)
from cosmo.sip.errors import SipError, SipProtocolError, SipUsageError

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "cosmo.example"
T0 = 1000.0
USERS = {"alice": "wonderland", "bob": "builder"}
AVAILABLE = [alg for alg in DigestAlgorithm if alg in auth._AVAILABLE]


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else ha1(username, realm, password, algorithm)


def make_server(**kwargs: Any) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, SECRET, clock=lambda: T0, **kwargs)


def fields(value: str) -> dict[str, str]:
    return dict(parse_credentials(value).params)


def with_param(value: str, name: str, new: str) -> str:
    cred = parse_credentials(value)
    return str(
        Credentials(cred.scheme, tuple((n, new if n == name else v) for n, v in cred.params))
    )


def without_param(value: str, name: str) -> str:
    cred = parse_credentials(value)
    return str(Credentials(cred.scheme, tuple((n, v) for n, v in cred.params if n != name)))


# ---------------------------------------------------------------------------
# RFC test vectors
# ---------------------------------------------------------------------------

# RFC 7616 §3.9.1, header values as printed (folded lines and all).
RFC7616_CHALLENGE = """Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm={alg},
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
RFC7616_AUTHORIZATION = """Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm={alg},
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="{response}",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


@pytest.mark.parametrize("alg", sorted(RFC7616_RESPONSES))
def test_rfc7616_example_compute_response(alg: str) -> None:
    cred = parse_credentials(RFC7616_AUTHORIZATION.format(alg=alg, response=RFC7616_RESPONSES[alg]))
    assert cred.username == "Mufasa"
    assert cred.qop == "auth" and cred.nc == "00000001"
    response = compute_response(
        algorithm=alg,
        ha1=ha1("Mufasa", "http-auth@example.org", "Circle of Life", alg),
        nonce=cred.nonce or "",
        method="GET",
        uri=cred.uri or "",
        qop=cred.qop,
        nc=cred.nc,
        cnonce=cred.cnonce,
    )
    assert response == RFC7616_RESPONSES[alg]


@pytest.mark.parametrize("alg", sorted(RFC7616_RESPONSES))
def test_rfc7616_example_client_produces_the_rfc_authorization(alg: str) -> None:
    client = DigestClient(
        "Mufasa",
        "Circle of Life",
        cnonce_factory=lambda: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    value = client.authorize(RFC7616_CHALLENGE.format(alg=alg), "GET", "/dir/index.html")
    expected = parse_credentials(
        RFC7616_AUTHORIZATION.format(alg=alg, response=RFC7616_RESPONSES[alg])
    )
    assert dict(parse_credentials(value).params) == dict(expected.params)


def test_rfc2617_example() -> None:
    # RFC 2617 §3.5 (password "Circle Of Life", capital O).
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    client = DigestClient("Mufasa", "Circle Of Life", cnonce_factory=lambda: "0a4f113b")
    value = client.authorize(challenge, "GET", "/dir/index.html")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_rfc3261_challenge_example_parses() -> None:
    # RFC 3261 §20.44 / §25: opaque="" and stale=FALSE in capitals.
    ch = parse_challenge(
        'Digest realm="atlanta.com", domain="sip:boxesbybob.com", qop="auth", '
        'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'
    )
    assert ch.is_digest
    assert ch.realm == "atlanta.com"
    assert ch.opaque == ""
    assert ch.stale is False
    assert ch.qop_options == ("auth",)
    assert ch.param("DOMAIN") == "sip:boxesbybob.com"


def test_ha1_is_the_same_for_session_variants() -> None:
    assert ha1("a", "r", "p", "MD5-sess") == ha1("a", "r", "p", "MD5")
    assert ha1("a", "r", "p", DigestAlgorithm.SHA_256_SESS) == ha1("a", "r", "p", "sha-256")
    assert len(ha1("a", "r", "p", "SHA-256")) == 64


def test_parse_algorithm() -> None:
    assert parse_algorithm(None) is DigestAlgorithm.MD5
    assert parse_algorithm("md5-SESS") is DigestAlgorithm.MD5_SESS
    assert parse_algorithm("SHA-512/256") is DigestAlgorithm.SHA_512_256
    with pytest.raises(DigestError, match=r"^unsupported digest algorithm 'SHA-1'$"):
        parse_algorithm("SHA-1")


def test_digest_error_is_a_sip_protocol_error() -> None:
    err = DigestError("x")
    assert isinstance(err, SipProtocolError) and isinstance(err, SipError)
    assert err.status == 400


# ---------------------------------------------------------------------------
# pjsip interop
# ---------------------------------------------------------------------------

# Captured from pjsua2 2.15.1 registering to a DigestAuthenticator("cosmo.test",
# b"k" * 32) whose clock read 1000.0; user alice, password wonderland.
PJSIP_CAPTURES = [
    (
        "sip:127.0.0.1:39000",
        (
            'Digest username="alice", realm="cosmo.test", '
            'nonce="QI9AAAAAAAC9LyZPyK8nLMHuD2Q4qyCSDlEPFt-Eghn67djv", uri="sip:127.0.0.1:39000", '
            'response="8f6b99b89b6f9bbe85a893790ad320b3", algorithm=MD5, '
            'cnonce="kLMEYlzeEBsDbj1MyDf0pgXIjtZUZyB", opaque="cfjSgmQ2oV_OLQ-q", qop=auth, '
            "nc=00000001"
        ),
    ),
    (
        "sip:127.0.0.1:44910",
        (
            'Digest username="alice", realm="cosmo.test", '
            'nonce="QI9AAAAAAAAXgnfR9xVTXTLz-U2YloR-kIq9qZrAaP6jyyNE", uri="sip:127.0.0.1:44910", '
            'response="982157591883ba21a7bc79d66cf8b3ea3788bfd7c68615f96296d6ca24a4122d", '
            'algorithm=SHA-256, cnonce="Z2snljXSe1zLdj56C4cXRtO9yrdcpRvu", '
            'opaque="cfjSgmQ2oV_OLQ-q", qop=auth, nc=00000001'
        ),
    ),
]


@pytest.mark.parametrize(("uri", "value"), PJSIP_CAPTURES)
def test_pjsip_captured_credentials_verify(uri: str, value: str) -> None:
    server = DigestAuthenticator("cosmo.test", b"k" * 32, algorithms=("SHA-256", "MD5"))

    def pj_lookup(username: str, realm: str, algorithm: str) -> str | None:
        return ha1(username, realm, "wonderland", algorithm) if username == "alice" else None

    result = server.verify(value, "REGISTER", pj_lookup, 1001.0, expected_uri=uri)
    assert result == AuthResult(True, "alice", False, "ok")


def pjsip_response(
    password: str, ch: Challenge, method: str, uri: str, nc: int, cnonce: str
) -> str:
    """The response as pjsip's pjsip_auth_create_digest2 builds it.

    pjsip formats nc with "%08u" (decimal digits), hashes the strings as
    written and answers qop=auth whenever "auth" is among the offered values.
    """
    alg = {"MD5": "md5", "SHA-256": "sha256"}[ch.algorithm or "MD5"]

    def h(s: str) -> str:
        return hashlib.new(alg, s.encode()).hexdigest()

    a1 = h(f"alice:{ch.realm}:{password}")
    a2 = h(f"{method}:{uri}")
    return h(f"{a1}:{ch.nonce}:{nc:08d}:{cnonce}:auth:{a2}")


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_pjsip_decimal_nonce_counts_are_accepted_in_order(alg: str) -> None:
    # nc "00000009" then "00000010" (decimal in pjsip, 0x10 to us) still increases.
    server = make_server(algorithms=(alg,))
    ch = parse_challenge(server.challenge(T0)[0])
    for nc in range(1, 13):
        response = pjsip_response("wonderland", ch, "REGISTER", "sip:cosmo.example", nc, "abc")
        value = (
            f'Digest username="alice", realm="{REALM}", nonce="{ch.nonce}", '
            f'uri="sip:cosmo.example", response="{response}", algorithm={alg}, '
            f'cnonce="abc", opaque="{ch.opaque}", qop=auth, nc={nc:08d}'
        )
        assert server.verify(value, "REGISTER", lookup, T0 + nc).ok, nc


# ---------------------------------------------------------------------------
# Server: challenges
# ---------------------------------------------------------------------------


def test_challenge_offers_each_algorithm_in_preference_order() -> None:
    values = make_server().challenge(T0)
    challenges = [parse_challenge(v) for v in values]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert len({c.nonce for c in challenges}) == 1
    for c in challenges:
        assert c.realm == REALM
        assert c.qop_options == ("auth",)
        assert c.opaque
        assert c.stale is False
        assert c.param("stale") is None
    assert re.fullmatch(
        r'Digest realm="cosmo\.example", nonce="[A-Za-z0-9_-]{48}", opaque="[A-Za-z0-9_-]{16}", '
        r'algorithm=SHA-256, qop="auth"',
        values[0],
    )


def test_challenge_stale_flag_and_fresh_nonces() -> None:
    server = make_server()
    first = parse_challenge(server.challenge(T0, stale=True)[0])
    second = parse_challenge(server.challenge()[0])
    assert first.stale is True and first.param("stale") == "true"
    assert first.nonce != second.nonce


def test_authenticator_refuses_bad_settings() -> None:
    with pytest.raises(SipUsageError, match=r"^secret must be at least 16 bytes, got 3$"):
        DigestAuthenticator(REALM, b"abc")
    with pytest.raises(SipUsageError, match=r"^unsupported digest algorithm 'SHA-1'$"):
        DigestAuthenticator(REALM, SECRET, algorithms=("SHA-1",))
    with pytest.raises(SipUsageError, match=r"^algorithm MD5 listed twice$"):
        DigestAuthenticator(REALM, SECRET, algorithms=("MD5", "md5"))
    with pytest.raises(SipUsageError, match=r"^at least one algorithm must be offered$"):
        DigestAuthenticator(REALM, SECRET, algorithms=())
    with pytest.raises(SipUsageError, match=r"^nonce_ttl must be a positive"):
        DigestAuthenticator(REALM, SECRET, nonce_ttl=0)
    with pytest.raises(SipUsageError, match=r"^qop must be distinct values"):
        DigestAuthenticator(REALM, SECRET, qop=("auth-conf",))
    with pytest.raises(SipUsageError, match=r"^realm must not be empty$"):
        DigestAuthenticator("", SECRET)


# ---------------------------------------------------------------------------
# Server: verification
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", AVAILABLE, ids=str)
def test_round_trip_every_algorithm(alg: DigestAlgorithm) -> None:
    server = make_server(algorithms=(alg,))
    client = DigestClient("alice", "wonderland")
    value = client.authorize(server.challenge(T0)[0], "INVITE", "sip:100@cosmo.example")
    assert fields(value)["algorithm"] == alg.value
    result = server.verify(value, "INVITE", lookup, T0 + 1, expected_uri="sip:100@cosmo.example")
    assert result == AuthResult(True, "alice", False, "ok")


def test_round_trip_with_several_requests_on_one_nonce() -> None:
    server = make_server()
    client = DigestClient("alice", "wonderland")
    challenge = server.challenge(T0)[0]
    for n in range(1, 4):
        value = client.authorize(challenge, "REGISTER", "sip:cosmo.example")
        assert fields(value)["nc"] == f"{n:08x}"
        assert server.verify(value, "REGISTER", lookup, T0 + n).ok


def test_round_trip_auth_int_covers_the_body() -> None:
    server = make_server(qop=("auth", "auth-int"))
    challenge = server.challenge(T0)[0]
    assert parse_challenge(challenge).qop_options == ("auth", "auth-int")
    only_int = challenge.replace('qop="auth,auth-int"', 'qop="auth-int"')
    value = DigestClient("alice", "wonderland").authorize(
        only_int, "MESSAGE", "sip:bob@cosmo.example", body=b"hello"
    )
    assert fields(value)["qop"] == "auth-int"
    assert server.verify(value, "MESSAGE", lookup, T0, body=b"hello").ok
    assert server.verify(value, "MESSAGE", lookup, T0, body=b"hellO") == AuthResult(
        False, None, False, "response mismatch"
    )


def test_auth_int_refused_when_not_offered() -> None:
    server = make_server()
    challenge = server.challenge(T0)[0].replace('qop="auth"', 'qop="auth-int"')
    value = DigestClient("alice", "wonderland").authorize(challenge, "MESSAGE", "sip:x")
    assert server.verify(value, "MESSAGE", lookup, T0) == AuthResult(
        False, None, False, "qop 'auth-int' not offered"
    )


def test_stale_nonce_with_right_password() -> None:
    server = make_server(nonce_ttl=300.0)
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    assert server.verify(value, "REGISTER", lookup, T0 + 300.0).ok  # the last fresh instant
    value2 = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    assert server.verify(value2, "REGISTER", lookup, T0 + 300.5) == AuthResult(
        False, "alice", True, "nonce expired"
    )


def test_stale_nonce_with_wrong_password_is_not_stale() -> None:
    # RFC 7616 §3.3: stale=true only when the digest is valid for the nonce.
    server = make_server()
    value = DigestClient("alice", "guess").authorize(server.challenge(T0)[0], "REGISTER", "sip:x")
    assert server.verify(value, "REGISTER", lookup, T0 + 1000) == AuthResult(
        False, None, False, "nonce expired"
    )


def test_nonce_from_the_future_is_stale() -> None:
    # A monotonic clock reset by a restart, with the secret kept.
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    assert server.verify(value, "REGISTER", lookup, T0 - 10) == AuthResult(
        False, "alice", True, "nonce issued in the future"
    )
    assert server.verify(value, "REGISTER", lookup, T0 - auth.NONCE_CLOCK_SKEW).ok


def test_replayed_nonce_count_is_refused() -> None:
    server = make_server()
    client = DigestClient("alice", "wonderland")
    challenge = server.challenge(T0)[0]
    first = client.authorize(challenge, "REGISTER", "sip:x")
    second = client.authorize(challenge, "REGISTER", "sip:x")
    assert server.verify(second, "REGISTER", lookup, T0).ok
    assert server.verify(second, "REGISTER", lookup, T0) == AuthResult(
        False, "alice", True, "nonce count 00000002 not greater than 00000002"
    )
    assert server.verify(first, "REGISTER", lookup, T0) == AuthResult(
        False, "alice", True, "nonce count 00000001 not greater than 00000002"
    )


def test_forged_nonce_count_does_not_poison_the_table() -> None:
    # Only a correct digest records a count, so a forged nc=ffffffff is harmless.
    server = make_server()
    client = DigestClient("alice", "wonderland")
    challenge = server.challenge(T0)[0]
    good = client.authorize(challenge, "REGISTER", "sip:x")
    forged = with_param(good, "nc", "ffffffff")
    assert server.verify(forged, "REGISTER", lookup, T0).reason == "response mismatch"
    assert server.verify(good, "REGISTER", lookup, T0).ok


def test_tampered_nonce_is_refused() -> None:
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    nonce = fields(value)["nonce"]
    flipped = nonce[:20] + ("A" if nonce[20] != "A" else "B") + nonce[21:]
    assert server.verify(with_param(value, "nonce", flipped), "REGISTER", lookup, T0) == AuthResult(
        False, None, False, "nonce signature invalid"
    )
    assert server.verify(with_param(value, "nonce", "abc"), "REGISTER", lookup, T0) == AuthResult(
        False, None, False, "malformed nonce"
    )


def test_nonce_of_another_secret_with_right_password_is_stale() -> None:
    # A nonce from before a restart that changed the secret: retry silently.
    old = DigestAuthenticator(REALM, b"x" * 32)
    value = DigestClient("alice", "wonderland").authorize(old.challenge(T0)[0], "REGISTER", "sip:x")
    assert make_server().verify(value, "REGISTER", lookup, T0) == AuthResult(
        False, "alice", True, "nonce signature invalid"
    )


def test_nonce_of_another_realm_is_refused() -> None:
    other = DigestAuthenticator("other.example", SECRET)
    ch = other.challenge(T0)[0].replace("other.example", REALM)
    value = DigestClient("alice", "wonderland").authorize(ch, "REGISTER", "sip:x")
    assert make_server().verify(value, "REGISTER", lookup, T0).reason == "nonce signature invalid"


def test_unknown_user_and_wrong_password_are_indistinguishable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_server()
    hashes = 0
    real_h = auth._h

    def counting_h(alg: DigestAlgorithm, data: str | bytes) -> str:
        nonlocal hashes
        hashes += 1
        return real_h(alg, data)

    monkeypatch.setattr(auth, "_h", counting_h)

    def attempt(username: str, password: str) -> tuple[AuthResult, int]:
        nonlocal hashes
        value = DigestClient(username, password).authorize(
            server.challenge(T0)[0], "REGISTER", "sip:x"
        )
        hashes = 0
        return server.verify(value, "REGISTER", lookup_store, T0), hashes

    def lookup_store(username: str, realm: str, algorithm: str) -> str | None:
        # A store of precomputed HA1s: no hashing on look-up.
        return STORE.get((username, algorithm))

    STORE = {("alice", "SHA-256"): real_h(DigestAlgorithm.SHA_256, f"alice:{REALM}:wonderland")}
    unknown, unknown_work = attempt("mallory", "wonderland")
    wrong, wrong_work = attempt("alice", "not-it")
    assert unknown == wrong == AuthResult(False, None, False, "response mismatch")
    assert unknown_work == wrong_work


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda v: with_param(v, "realm", "evil.example"),
            "realm mismatch: 'evil.example' is not 'cosmo.example'",
        ),
        (lambda v: with_param(v, "algorithm", "SHA-1"), "unsupported digest algorithm 'SHA-1'"),
        (lambda v: with_param(v, "algorithm", "SHA-512-256"), "algorithm SHA-512-256 not offered"),
        (lambda v: with_param(v, "qop", "auth-conf"), "qop 'auth-conf' not offered"),
        (lambda v: with_param(v, "nc", "1"), "invalid nonce count '1'"),
        (lambda v: with_param(v, "nc", "00000000"), "nonce count must start at 00000001"),
        (lambda v: with_param(v, "response", "0" * 64), "response mismatch"),
        (lambda v: with_param(v, "response", "é"), "response mismatch"),
        (
            lambda v: with_param(v, "uri", "sip:other"),
            "uri mismatch: 'sip:other' is not the request URI 'sip:100@cosmo.example'",
        ),
        (lambda v: without_param(v, "username"), "missing 'username' parameter"),
        (lambda v: without_param(v, "realm"), "missing 'realm' parameter"),
        (lambda v: without_param(v, "nonce"), "missing 'nonce' parameter"),
        (lambda v: without_param(v, "uri"), "missing 'uri' parameter"),
        (lambda v: without_param(v, "response"), "missing 'response' parameter"),
        (lambda v: without_param(v, "nc"), "missing 'nc' parameter"),
        (lambda v: without_param(v, "cnonce"), "missing 'cnonce' parameter"),
        (lambda v: without_param(v, "qop"), "qop missing, required with algorithm SHA-256"),
        (lambda v: v + ", userhash=true", "userhash is not supported"),
        (
            lambda v: v + ', realm="x"',
            "malformed credentials: credentials: duplicate parameter 'realm'",
        ),
        (
            lambda v: "NoOneKnowsThisScheme opaque-data=here",
            "unsupported authorization scheme 'NoOneKnowsThisScheme'",
        ),
        (lambda v: "", "malformed credentials: credentials: missing authentication scheme"),
    ],
)
def test_verify_refusals(mutate: Callable[[str], str], reason: str) -> None:
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "INVITE", "sip:100@cosmo.example"
    )
    bad = mutate(value)
    result = server.verify(bad, "INVITE", lookup, T0, expected_uri="sip:100@cosmo.example")
    assert result == AuthResult(False, None, False, reason)


def test_opaque_mismatch_is_treated_like_a_bad_nonce() -> None:
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    assert server.verify(with_param(value, "opaque", "x"), "REGISTER", lookup, T0) == AuthResult(
        False, "alice", True, "opaque mismatch"
    )
    wrong = DigestClient("alice", "guess").authorize(server.challenge(T0)[0], "REGISTER", "sip:x")
    assert server.verify(with_param(wrong, "opaque", "x"), "REGISTER", lookup, T0) == AuthResult(
        False, None, False, "opaque mismatch"
    )


def test_opaque_may_be_omitted() -> None:
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    assert server.verify(without_param(value, "opaque"), "REGISTER", lookup, T0).ok


def test_response_is_compared_case_insensitively() -> None:
    server = make_server()
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge(T0)[0], "REGISTER", "sip:x"
    )
    upper = with_param(value, "response", fields(value)["response"].upper())
    assert server.verify(upper, "REGISTER", lookup, T0).ok


def rfc2069_value(server: DigestAuthenticator, password: str = "wonderland") -> str:
    ch = parse_challenge(server.challenge(T0)[-1])
    response = compute_response(
        algorithm="MD5",
        ha1=ha1("alice", REALM, password),
        nonce=ch.nonce or "",
        method="REGISTER",
        uri="sip:x",
    )
    return (
        f'Digest username="alice", realm="{REALM}", nonce="{ch.nonce}", uri="sip:x", '
        f'response="{response}"'
    )


def test_rfc2069_client_without_qop_is_accepted_once_per_nonce() -> None:
    server = make_server()
    value = rfc2069_value(server)
    assert server.verify(value, "REGISTER", lookup, T0).ok
    assert server.verify(value, "REGISTER", lookup, T0 + 1) == AuthResult(
        False, "alice", True, "nonce already used without qop"
    )


def test_no_qop_can_be_refused_by_policy() -> None:
    server = make_server(allow_no_qop=False)
    assert server.verify(rfc2069_value(server), "REGISTER", lookup, T0) == AuthResult(
        False, None, False, "qop missing, required with algorithm MD5"
    )


def test_no_qop_with_cnonce_is_refused() -> None:
    server = make_server()
    value = rfc2069_value(server) + ', cnonce="abc"'
    assert server.verify(value, "REGISTER", lookup, T0).reason == "nc or cnonce given without qop"


def test_full_nonce_table_refuses_evicted_nonces_as_stale() -> None:
    server = make_server(max_tracked_nonces=2)
    client = DigestClient("alice", "wonderland")
    challenges = [server.challenge(T0 + i)[0] for i in range(3)]
    early = [client.authorize(challenges[0], "REGISTER", "sip:x") for _ in range(2)]
    assert server.verify(early[0], "REGISTER", lookup, T0 + 3).ok
    for ch in challenges[1:]:
        assert server.verify(
            client.authorize(ch, "REGISTER", "sip:x"), "REGISTER", lookup, T0 + 3
        ).ok
    # challenges[0] was pushed out; even its next count is refused, as stale.
    assert server.verify(early[1], "REGISTER", lookup, T0 + 3) == AuthResult(
        False, "alice", True, "nonce no longer tracked"
    )
    assert server.verify(early[0], "REGISTER", lookup, T0 + 3).reason == "nonce no longer tracked"


def test_expired_nonces_leave_the_table_without_blocking_others() -> None:
    server = make_server(max_tracked_nonces=2, nonce_ttl=10.0)
    client = DigestClient("alice", "wonderland")
    for i in range(5):
        t = T0 + 20 * i
        assert server.verify(
            client.authorize(server.challenge(t)[0], "REGISTER", "sip:x"), "REGISTER", lookup, t
        ).ok
    assert len(server._counts) == 1


def test_verify_uses_the_clock_when_now_is_omitted() -> None:
    now = [T0]
    server = DigestAuthenticator(REALM, SECRET, nonce_ttl=10.0, clock=lambda: now[0])
    value = DigestClient("alice", "wonderland").authorize(
        server.challenge()[0], "REGISTER", "sip:x"
    )
    now[0] += 11
    assert server.verify(value, "REGISTER", lookup).reason == "nonce expired"


# ---------------------------------------------------------------------------
# Throttling
# ---------------------------------------------------------------------------


def test_throttle_blocks_after_max_failures_within_window() -> None:
    throttle = FailureThrottle(max_failures=3, window=60.0, block_time=30.0)
    assert not throttle.record_failure("192.0.2.1", 0.0)
    assert not throttle.record_failure("192.0.2.1", 10.0)
    assert not throttle.is_blocked("192.0.2.1", 10.0)
    assert throttle.record_failure("192.0.2.1", 20.0)
    assert throttle.is_blocked("192.0.2.1", 20.0)
    assert throttle.is_blocked("192.0.2.1", 49.9)
    assert not throttle.is_blocked("192.0.2.2", 20.0)
    assert not throttle.is_blocked("192.0.2.1", 50.0)
    # After the block the count starts again from zero.
    assert not throttle.record_failure("192.0.2.1", 51.0)


def test_throttle_forgets_failures_outside_the_window() -> None:
    throttle = FailureThrottle(max_failures=3, window=60.0, block_time=30.0)
    throttle.record_failure("192.0.2.1", 0.0)
    throttle.record_failure("192.0.2.1", 30.0)
    assert not throttle.record_failure("192.0.2.1", 60.0)  # the one at 0.0 fell out
    assert throttle.record_failure("192.0.2.1", 61.0)


def test_throttle_success_clears_failures_but_not_a_block() -> None:
    throttle = FailureThrottle(max_failures=2, window=60.0, block_time=30.0)
    throttle.record_failure("a", 0.0)
    throttle.record_success("a")
    assert not throttle.record_failure("a", 1.0)
    assert throttle.record_failure("a", 2.0)
    throttle.record_success("a")
    assert throttle.is_blocked("a", 3.0)


def test_throttle_failures_while_blocked_do_not_extend_the_block() -> None:
    throttle = FailureThrottle(max_failures=1, window=60.0, block_time=10.0)
    assert throttle.record_failure("a", 0.0)
    assert throttle.record_failure("a", 9.0)
    assert not throttle.is_blocked("a", 10.0)


def test_throttle_memory_is_bounded_and_blocks_survive_floods() -> None:
    throttle = FailureThrottle(max_failures=2, window=60.0, block_time=600.0, max_sources=3)
    throttle.record_failure("attacker", 0.0)
    throttle.record_failure("attacker", 0.0)
    for i in range(100):
        throttle.record_failure(f"198.51.100.{i}", 1.0 + i)
        assert len(throttle) <= 3
    assert throttle.is_blocked("attacker", 200.0)


def test_throttle_refuses_bad_settings() -> None:
    with pytest.raises(SipUsageError, match=r"^max_failures must be at least 1, got 0$"):
        FailureThrottle(max_failures=0)


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------


def test_client_counts_per_nonce() -> None:
    client = DigestClient("alice", "wonderland", cnonce_factory=lambda: "c")
    a = 'Digest realm="r", nonce="n1", qop="auth"'
    b = 'Digest realm="r", nonce="n2", qop="auth"'
    assert fields(client.authorize(a, "REGISTER", "sip:r"))["nc"] == "00000001"
    assert fields(client.authorize(a, "REGISTER", "sip:r"))["nc"] == "00000002"
    assert fields(client.authorize(b, "REGISTER", "sip:r"))["nc"] == "00000001"
    assert fields(client.authorize(a, "REGISTER", "sip:r"))["nc"] == "00000003"


def test_client_answers_without_qop_in_rfc2069_form() -> None:
    value = DigestClient("alice", "wonderland").authorize(
        'Digest realm="r", nonce="n"', "INVITE", "sip:bob@r"
    )
    f = fields(value)
    assert "qop" not in f and "nc" not in f and "cnonce" not in f
    assert f["algorithm"] == "MD5"
    assert f["response"] == compute_response(
        algorithm="MD5",
        ha1=ha1("alice", "r", "wonderland"),
        nonce="n",
        method="INVITE",
        uri="sip:bob@r",
    )


def test_client_session_algorithms_round_trip_by_hand() -> None:
    value = DigestClient("alice", "pw", cnonce_factory=lambda: "cn").authorize(
        'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess', "REGISTER", "sip:r"
    )
    base = ha1("alice", "r", "pw", "SHA-256")
    sess = auth._h(DigestAlgorithm.SHA_256, f"{base}:n:cn")
    ha2 = auth._h(DigestAlgorithm.SHA_256, "REGISTER:sip:r")
    assert fields(value)["response"] == auth._h(
        DigestAlgorithm.SHA_256, f"{sess}:n:00000001:cn:auth:{ha2}"
    )


def test_client_hashes_the_username_when_asked() -> None:
    value = DigestClient("Jäsøn Doe", "pw").authorize(
        'Digest realm="api@example.org", nonce="n", qop="auth", algorithm=SHA-256, userhash=true',
        "GET",
        "/doe.json",
    )
    f = fields(value)
    assert f["userhash"] == "true"
    assert f["username"] == auth._h(DigestAlgorithm.SHA_256, "Jäsøn Doe:api@example.org")


def test_client_quotes_awkward_usernames() -> None:
    server = make_server()
    value = DigestClient('a"b\\c', "pw").authorize(server.challenge(T0)[0], "REGISTER", "sip:x")
    assert 'username="a\\"b\\\\c"' in value

    def awkward_lookup(username: str, realm: str, algorithm: str) -> str | None:
        return ha1(username, realm, "pw", algorithm) if username == 'a"b\\c' else None

    assert server.verify(value, "REGISTER", awkward_lookup, T0) == AuthResult(
        True, 'a"b\\c', False, "ok"
    )


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Basic realm="r"', "unsupported authentication scheme 'Basic'"),
        ('Digest nonce="n"', "challenge has no 'realm' parameter"),
        ('Digest realm="r"', "challenge has no 'nonce' parameter"),
        (
            'Digest realm="r", nonce="n", algorithm=AKAv1-MD5',
            "unsupported digest algorithm 'AKAv1-MD5'",
        ),
        (
            'Digest realm="r", nonce="n", algorithm=MD5-sess',
            "challenge offers MD5-sess without qop",
        ),
        (
            'Digest realm="r", nonce="n", qop="auth-conf"',
            "challenge offers no supported qop: 'auth-conf'",
        ),
    ],
)
def test_client_refuses_unusable_challenges(challenge: str, message: str) -> None:
    with pytest.raises(DigestError, match=f"^{re.escape(message)}$"):
        DigestClient("alice", "pw").authorize(challenge, "REGISTER", "sip:r")


def test_choose_challenge_prefers_the_strongest() -> None:
    md5 = 'Digest realm="r", nonce="n", qop="auth", algorithm=MD5'
    sha = 'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256'
    assert choose_challenge([md5, sha]).algorithm == "SHA-256"
    assert choose_challenge(make_server().challenge(T0)).algorithm == "SHA-256"
    if DigestAlgorithm.SHA_512_256 in auth._AVAILABLE:
        strongest = 'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512-256'
        assert choose_challenge([sha, strongest, md5]).algorithm == "SHA-512-256"


def test_choose_challenge_keeps_the_topmost_among_equals_and_skips_the_unusable() -> None:
    sess = 'Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess'
    plain = 'Digest realm="r", nonce="n", qop="auth"'
    assert (
        choose_challenge(['Basic realm="r"', "Digest realm=", sess, plain]).algorithm == "MD5-sess"
    )


def test_choose_challenge_without_usable_ones_says_why() -> None:
    with pytest.raises(
        DigestError,
        match=re.escape(
            "no usable digest challenge: unsupported authentication scheme 'Basic'; "
            "unsupported digest algorithm 'SHA-1'"
        ),
    ):
        choose_challenge(['Basic realm="r"', 'Digest realm="r", nonce="n", algorithm=SHA-1'])
    with pytest.raises(DigestError, match=r"^no usable digest challenge: no challenges$"):
        choose_challenge([])


# ---------------------------------------------------------------------------
# Parser edge cases
# ---------------------------------------------------------------------------


def test_parse_quoted_strings_with_escapes_and_commas() -> None:
    cred = parse_credentials(
        r'Digest username="a\"b\\c", realm="x, y", uri="sip:a@b;transport=tcp", nc=00000001'
    )
    assert cred.username == 'a"b\\c'
    assert cred.realm == "x, y"
    assert cred.uri == "sip:a@b;transport=tcp"
    assert cred.nc == "00000001"


def test_parse_odd_whitespace_and_case() -> None:
    cred = parse_credentials(' \tdIgEsT   USERNAME = "bob" ,\tRealm=\r\n "r" ,ALGORITHM = md5 ')
    assert cred.scheme == "Digest"
    assert cred.params == (("username", "bob"), ("realm", "r"), ("algorithm", "md5"))
    assert parse_algorithm(cred.algorithm) is DigestAlgorithm.MD5


def test_parse_tolerates_empty_list_elements() -> None:
    ch = parse_challenge('Digest , realm="r",, nonce="n",')
    assert ch.params == (("realm", "r"), ("nonce", "n"))


def test_parse_quoted_token_values() -> None:
    # curl and others quote algorithm and qop; accept them quoted.
    cred = parse_credentials('Digest algorithm="SHA-256", qop="auth"')
    assert cred.algorithm == "SHA-256" and cred.qop == "auth"


def test_parse_unknown_scheme_keeps_its_text() -> None:
    # RFC 4475 §3.1.2.x regaut01.
    cred = parse_credentials("NoOneKnowsThisScheme opaque-data=here")
    assert cred.scheme == "NoOneKnowsThisScheme"
    assert not cred.is_digest
    assert cred.params == (("opaque-data", "here"),)
    bearer = parse_credentials("Bearer mF_9.B5f-4.1JqM==")
    assert bearer.params == () and bearer.data == "mF_9.B5f-4.1JqM=="
    assert str(bearer) == "Bearer mF_9.B5f-4.1JqM=="
    assert parse_credentials("Negotiate").scheme == "Negotiate"


def test_parse_username_star() -> None:
    # RFC 7616 §3.4.4.
    cred = parse_credentials("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\"")
    assert cred.username == "Jäsøn Doe"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "credentials: missing authentication scheme"),
        ("   ", "credentials: missing authentication scheme"),
        ('"Digest"', "credentials: missing authentication scheme"),
        ("Digest=realm", "credentials: invalid character '=' after scheme 'Digest'"),
        ('Digest realm="r", REALM="s"', "credentials: duplicate parameter 'realm'"),
        ('Digest realm="r', "credentials: unterminated quoted string"),
        ('Digest realm="r\\', "credentials: unterminated quoted string"),
        ('Digest realm="a\x00b"', "credentials: control character '\\x00' in quoted string"),
        ('Digest realm="a\r\nb"', "credentials: control character '\\r' in quoted string"),
        ("Digest realm", "credentials: parameter 'realm' has no value"),
        ("Digest realm=", "credentials: parameter 'realm' has an invalid value"),
        ("Digest realm=a/b", "credentials: expected ',' after parameter 'realm', found '/'"),
        (
            'Digest realm="a" nonce="b"',
            "credentials: expected ',' after parameter 'realm', found 'n'",
        ),
        ('Digest ="a"', "credentials: expected a parameter name, found '='"),
        (
            "Digest username=a, username*=UTF-8''b",
            "credentials: both 'username' and 'username*' present",
        ),
        ("Digest username*=b", "credentials: malformed 'username*' value"),
        ("Digest username*=KOI8-R''b", "credentials: unsupported 'username*' charset 'KOI8-R'"),
        ("Digest username*=UTF-8''%FF", "credentials: 'username*' is not valid in its charset"),
    ],
)
def test_parse_credentials_errors(value: str, message: str) -> None:
    with pytest.raises(DigestError) as info:
        parse_credentials(value)
    assert str(info.value) == message


def test_parse_challenge_errors_name_the_header() -> None:
    with pytest.raises(DigestError) as info:
        parse_challenge('Digest realm="r", Realm="s"')
    assert str(info.value) == "challenge: duplicate parameter 'realm'"


def test_serialisation_quotes_by_parameter() -> None:
    ch = Challenge(
        "Digest", (("realm", "r"), ("qop", "auth"), ("algorithm", "MD5"), ("stale", "true"))
    )
    assert str(ch) == 'Digest realm="r", qop="auth", algorithm=MD5, stale=true'
    cred = Credentials(
        "Digest", (("username", "u"), ("qop", "auth"), ("nc", "00000001"), ("algorithm", "a b"))
    )
    assert str(cred) == 'Digest username="u", qop=auth, nc=00000001, algorithm="a b"'


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

_GRAMMAR_TEXT = st.text(alphabet="Digest realm=\",\\ \t\r\nabcNOQ*\x00é'%", max_size=60)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=200), _GRAMMAR_TEXT))
def test_random_text_parses_or_raises_digest_error(text: str) -> None:
    for parse in (parse_credentials, parse_challenge):
        with contextlib.suppress(DigestError):
            parse(text)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=200), _GRAMMAR_TEXT.map(lambda s: "Digest " + s)))
def test_random_credentials_never_break_verify(text: str) -> None:
    result = make_server().verify(text, "REGISTER", lookup, T0)
    assert result.ok is False


_NAMES = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True)
_VALUES = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@given(st.dictionaries(_NAMES, _VALUES, max_size=8))
def test_format_then_parse_round_trips(params: dict[str, str]) -> None:
    items = tuple(params.items())
    items = tuple((n, v) for n, v in items if n != "username*")
    cred = Credentials("Digest", items)
    assert parse_credentials(str(cred)) == cred
    ch = Challenge("Digest", items)
    assert parse_challenge(str(ch)) == ch


@settings(max_examples=50, deadline=None)
@given(
    username=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
    ),
    password=st.text(max_size=12),
    alg=st.sampled_from(AVAILABLE),
)
def test_round_trip_property(username: str, password: str, alg: DigestAlgorithm) -> None:
    server = make_server(algorithms=(alg,))
    value = DigestClient(username, password).authorize(server.challenge(T0)[0], "OPTIONS", "sip:x")

    def one_user(u: str, realm: str, a: str) -> str | None:
        return ha1(u, realm, password, a) if u == username else None

    assert server.verify(value, "OPTIONS", one_user, T0) == AuthResult(True, username, False, "ok")
