"""Tests of :mod:`cosmo.sip.message`: framing, typed views, validation, responses, streams.

The captured messages below have the shapes pjsua 2.15, baresip 1.0, SIPp
(its built-in uac/uas scenarios) and a browser on Chrome (JsSIP and SIP.js over
WebSocket) put on the wire: their header order, spacing and parameters, with
addresses from the documentation ranges.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmo.sip.errors import SipError, SipParseError, SipUsageError
from cosmo.sip.headers import CSeq, NameAddr, Via
from cosmo.sip.message import (
    PING,
    Headers,
    SipRequest,
    SipResponse,
    StreamFramer,
    clone_request,
    make_response,
    parse_message,
    reason_phrase,
    require_sip_uri,
    response_from_headers,
    validate_request,
    validate_response,
)
from cosmo.sip.uri import AbsoluteUri, SipUri

from .conftest import messages, requests, responses, torture_messages, wire

# --- captured traffic ---------------------------------------------------------------------

PJSIP_ALLOW = "PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS"

PJSIP_SDP = """v=0
o=- 3925812391 3925812391 IN IP4 192.0.2.20
s=pjmedia
b=AS:117
t=0 0
a=X-nat:0
m=audio 4000 RTP/AVP 96 9 8 0 101 102
c=IN IP4 192.0.2.20
b=TIAS:96000
a=rtcp:4001 IN IP4 192.0.2.20
a=sendrecv
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-16
a=rtpmap:102 telephone-event/8000
a=fmtp:102 0-16
a=ssrc:1418937218 cname:1cd2ef1b4a1e4d1c
"""

PJSIP_ANSWER_SDP = """v=0
o=- 3925812402 3925812403 IN IP4 192.0.2.20
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4002 RTP/AVP 0 101
c=IN IP4 192.0.2.20
b=TIAS:64000
a=rtcp:4003 IN IP4 192.0.2.20
a=sendrecv
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ssrc:2073218044 cname:5a8e00b6123f4c0e
"""

BARESIP_SDP = """v=0
o=- 1961284113 2069385510 IN IP4 192.0.2.30
s=-
c=IN IP4 192.0.2.30
t=0 0
m=audio 10710 RTP/AVP 0 8 101
b=AS:80
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=ssrc:1289604511 cname:sip:alice@pbx.example.com
a=rtcp-rsize
a=ptime:20
"""

SIPP_SDP = """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

CHROME_SDP = """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS 6b3e8e3a-2f5c-4f0e-9a57-2f6f3d4c1b2a
m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 203.0.113.45
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:3950125817 1 udp 2122260223 192.168.1.33 54321 typ host generation 0 network-id 1 network-cost 10
a=candidate:842163049 1 udp 1686052607 203.0.113.45 54321 typ srflx raddr 192.168.1.33 rport 54321 generation 0 network-id 1 network-cost 10
a=ice-ufrag:yTSZ
a=ice-pwd:Qzco0YfB/GOFF9n3y1GAJyLK
a=ice-options:trickle
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:6b3e8e3a-2f5c-4f0e-9a57-2f6f3d4c1b2a 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:Ykn1vK3bYp9qVx2L
a=ssrc:3735928559 msid:6b3e8e3a-2f5c-4f0e-9a57-2f6f3d4c1b2a 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
"""

# pjsua 2.15 over UDP, first attempt.  pjsip writes "Content-Length:  0" (two
# spaces) without a body and right-aligns the length in five columns with one.
PJSIP_REGISTER = wire(f"""REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj8d5e2b0a6f0c4f0e9d1c2b3a4f5e6d7c
Max-Forwards: 70
From: <sip:1001@pbx.example.com>;tag=6c1a7f4e5d3b4a2f8e9d0c1b2a3f4e5d
To: <sip:1001@pbx.example.com>
Call-ID: 5f2c9e0a3b8d4c7e9f1a2b3c4d5e6f70
CSeq: 36017 REGISTER
User-Agent: PJSUA v2.15 Linux-6.1.0.18/x86_64/glibc-2.36
Contact: <sip:1001@192.0.2.20:5060;ob>
Expires: 300
Allow: {PJSIP_ALLOW}
Content-Length:  0

""")

# The same registration answering a 401 challenge.
PJSIP_REGISTER_AUTH = wire(f"""REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1b2c3d4e5f60718293a4b5c6d7e8f901
Max-Forwards: 70
From: <sip:1001@pbx.example.com>;tag=6c1a7f4e5d3b4a2f8e9d0c1b2a3f4e5d
To: <sip:1001@pbx.example.com>
Call-ID: 5f2c9e0a3b8d4c7e9f1a2b3c4d5e6f70
CSeq: 36018 REGISTER
User-Agent: PJSUA v2.15 Linux-6.1.0.18/x86_64/glibc-2.36
Contact: <sip:1001@192.0.2.20:5060;ob>
Expires: 300
Allow: {PJSIP_ALLOW}
Authorization: Digest username="1001", realm="cosmo", nonce="ZxK3pWcBqP0a9f1e", uri="sip:pbx.example.com", response="0c3e4d8a9b7f6e5d4c3b2a1908f7e6d5", algorithm=MD5, cnonce="3e9a7c1b5d2f4e6a", qop=auth, nc=00000001
Content-Length:  0

""")

# pjsua 2.15 over TCP with SIP outbound (RFC 5626): alias, reg-id, +sip.instance.
PJSIP_REGISTER_TCP = wire(f"""REGISTER sip:pbx.example.com;transport=tcp SIP/2.0
Via: SIP/2.0/TCP 192.0.2.20:50250;rport;branch=z9hG4bKPjda05353a7a96446799361429235bc0e5;alias
Max-Forwards: 70
From: <sip:1001@pbx.example.com>;tag=6c33309d840849cf89aeffac78fe505e
To: <sip:1001@pbx.example.com>
Call-ID: 3548dbde40f943d2bdaf41d727049ffc
CSeq: 54023 REGISTER
Supported: outbound, path
Contact: <sip:1001@192.0.2.20:50250;transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000041d7c640>"
Expires: 300
Allow: {PJSIP_ALLOW}
Content-Length:  0

""")

PJSIP_INVITE = wire(f"""INVITE sip:queue-support@pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj3a1e5c7b9d2f4a6c8e0b1d3f5a7c9e2b
Max-Forwards: 70
From: "Alice Agent" <sip:1001@pbx.example.com>;tag=9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a
To: <sip:queue-support@pbx.example.com>
Contact: "Alice Agent" <sip:1001@192.0.2.20:5060;ob>
Call-ID: a84b4c76e66710f2b3c4d5e6f7081920
CSeq: 31504 INVITE
Allow: {PJSIP_ALLOW}
Supported: replaces, 100rel, timer, norefersub, trickle-ice
Session-Expires: 1800
Min-SE: 90
User-Agent: PJSUA v2.15 Linux-6.1.0.18/x86_64/glibc-2.36
Content-Type: application/sdp
Content-Length:   471

{PJSIP_SDP}""")

# pjsua answering a call that Cosmo offered it.
PJSIP_200_OK = wire(f"""SIP/2.0 200 OK
Via: SIP/2.0/UDP 198.51.100.10:5060;rport=5060;received=198.51.100.10;branch=z9hG4bK.cosmo.0f3a9c
Call-ID: cosmo-7d1e2f3a4b5c6d7e@198.51.100.10
From: "Support Queue" <sip:queue-support@pbx.example.com>;tag=cosmo-51a2b3
To: <sip:1001@192.0.2.20>;tag=2f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c
CSeq: 102 INVITE
Contact: <sip:1001@192.0.2.20:5060;ob>
Allow: {PJSIP_ALLOW}
Supported: replaces, 100rel, timer, norefersub, trickle-ice
Content-Type: application/sdp
Content-Length:   310

{PJSIP_ANSWER_SDP}""")

BARESIP_ALLOW = "INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE"

# baresip 1.0 (libre): rport after branch, Contact user with the instance suffix.
BARESIP_REGISTER = wire(f"""REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK0a6ba6f4a8b9c1d2;rport
Contact: <sip:alice-0x5563a0c4e9d0@192.0.2.30:5060>;expires=3600
Max-Forwards: 70
To: <sip:alice@pbx.example.com>
From: <sip:alice@pbx.example.com>;tag=4c9f0d1e2a3b5c6d
Call-ID: 6f8e4a2c0b1d3e5f
CSeq: 39822 REGISTER
User-Agent: baresip v1.0.0 (x86_64/Linux)
Allow: {BARESIP_ALLOW}
Supported: replaces,norefersub
Content-Length: 0

""")

BARESIP_INVITE = wire(f"""INVITE sip:queue-support@pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK3e9c8a4f1d2b7065;rport
Contact: <sip:alice-0x5563a0c4e9d0@192.0.2.30:5060>
Max-Forwards: 70
To: <sip:queue-support@pbx.example.com>
From: "Alice" <sip:alice@pbx.example.com>;tag=9a8b7c6d5e4f3a2b
Call-ID: 2d3e4f5a6b7c8d9e
CSeq: 28313 INVITE
User-Agent: baresip v1.0.0 (x86_64/Linux)
Allow: {BARESIP_ALLOW}
Supported: replaces,norefersub
Content-Type: application/sdp
Content-Length: 319

{BARESIP_SDP}""")

# SIPp's built-in uac scenario (sipp -sn uac -s queue-support), call 1 of pid 4321.
SIPP_INVITE = wire(f"""INVITE sip:queue-support@198.51.100.10:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4321-1-0
From: sipp <sip:sipp@127.0.0.1:5061>;tag=4321SIPpTag001
To: queue-support <sip:queue-support@198.51.100.10:5060>
Call-ID: 1-4321@127.0.0.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.0.1:5061
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length: 129

{SIPP_SDP}""")

# SIPp's built-in uas scenario answering: [last_To:];tag=[pid]SIPpTag01[call_number]
SIPP_200_OK = wire(f"""SIP/2.0 200 OK
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK.cosmo.1c2d3e;received=198.51.100.10
From: "Support Queue" <sip:queue-support@pbx.example.com>;tag=cosmo-8e9f0a
To: <sip:sipp@127.0.0.1:5062>;tag=4322SIPpTag011
Call-ID: cosmo-1a2b3c4d@198.51.100.10
CSeq: 1 INVITE
Contact: <sip:127.0.0.1:5062;transport=UDP>
Content-Type: application/sdp
Content-Length: 129

{SIPP_SDP}""")

# JsSIP 3.10 in Chrome: one SIP message per WebSocket text frame.
JSSIP_REGISTER = wire("""REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/WSS 2hd7kfa6m8ia.invalid;branch=z9hG4bK5398458
Max-Forwards: 69
To: "Agent 7" <sip:agent7@pbx.example.com>
From: "Agent 7" <sip:agent7@pbx.example.com>;tag=5fdl0o3cjt
Call-ID: 0b4ifbm1ub0hnsne6hg5
CSeq: 1 REGISTER
Contact: <sip:h8o2e4c6@2hd7kfa6m8ia.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a>";expires=600
Expires: 600
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY
Supported: path,gruu,outbound
User-Agent: JsSIP 3.10.1
Content-Length: 0

""")

SIPJS_INVITE = wire(f"""INVITE sip:queue-sales@pbx.example.com SIP/2.0
Via: SIP/2.0/WSS 7p1m8vd0l2ql.invalid;branch=z9hG4bK4798355
To: <sip:queue-sales@pbx.example.com>
From: "Agent 7" <sip:agent7@pbx.example.com>;tag=lug30cg783
CSeq: 2 INVITE
Call-ID: 2e0tofg49n9qvhjlrr63
Max-Forwards: 70
Contact: <sip:h9po1ojc@7p1m8vd0l2ql.invalid;transport=ws;ob>
Allow: ACK,CANCEL,INVITE,MESSAGE,BYE,OPTIONS,INFO,NOTIFY,REFER
Supported: outbound
User-Agent: SIP.js/0.21.2
Content-Type: application/sdp
Content-Length: 1338

{CHROME_SDP}""")

# SIP.js answering, in Chrome, a customer call Cosmo offered to the agent.
SIPJS_200_OK = wire(f"""SIP/2.0 200 OK
Via: SIP/2.0/WSS 198.51.100.10:8443;branch=z9hG4bK.cosmo.7f3a;rport=51234;received=203.0.113.45
To: <sip:agent7@pbx.example.com>;tag=qb1ctu3vs4
From: "+1 555 0100" <sip:+15550100@pbx.example.com>;tag=cosmo-a5f2e1
Call-ID: cosmo-3f2e1d0c@198.51.100.10
CSeq: 102 INVITE
Contact: <sip:h9po1ojc@7p1m8vd0l2ql.invalid;transport=ws>
Supported: outbound
Content-Type: application/sdp
Content-Length: 1338

{CHROME_SDP}""")

# (name, bytes received, bytes we write back after parsing)
CAPTURES = [
    ("pjsip-register", PJSIP_REGISTER, PJSIP_REGISTER.replace(b"Content-Length:  0", b"Content-Length: 0")),
    ("pjsip-register-auth", PJSIP_REGISTER_AUTH,
     PJSIP_REGISTER_AUTH.replace(b"Content-Length:  0", b"Content-Length: 0")),
    ("pjsip-register-tcp", PJSIP_REGISTER_TCP,
     PJSIP_REGISTER_TCP.replace(b"Content-Length:  0", b"Content-Length: 0")),
    # pjsip's Min-SE keeps its spelling (canonical_name knows it).
    ("pjsip-invite", PJSIP_INVITE, PJSIP_INVITE.replace(b"Content-Length:   471", b"Content-Length: 471")),
    ("pjsip-200", PJSIP_200_OK, PJSIP_200_OK.replace(b"Content-Length:   310", b"Content-Length: 310")),
    ("baresip-register", BARESIP_REGISTER, BARESIP_REGISTER),
    ("baresip-invite", BARESIP_INVITE, BARESIP_INVITE),
    ("sipp-invite", SIPP_INVITE, SIPP_INVITE),
    ("sipp-200", SIPP_200_OK, SIPP_200_OK),
    ("jssip-register", JSSIP_REGISTER, JSSIP_REGISTER),
    ("sipjs-invite", SIPJS_INVITE, SIPJS_INVITE),
    ("sipjs-200", SIPJS_200_OK, SIPJS_200_OK),
]


def _validate(message: SipRequest | SipResponse) -> None:
    if isinstance(message, SipRequest):
        validate_request(message)
    else:
        validate_response(message)


@pytest.mark.parametrize(("name", "received", "written"), CAPTURES, ids=[c[0] for c in CAPTURES])
def test_capture_parses_validates_and_is_written_back(name: str, received: bytes, written: bytes) -> None:
    message = parse_message(received)
    _validate(message)
    assert message.defects == []
    assert bytes(message) == written
    assert parse_message(written) == message


def test_pjsip_register() -> None:
    request = parse_message(PJSIP_REGISTER)
    assert isinstance(request, SipRequest)
    assert (request.method, request.uri, request.version) == (
        "REGISTER", SipUri("pbx.example.com"), "SIP/2.0")
    assert request.via == Via("UDP", "192.0.2.20", 5060, (
        ("rport", None), ("branch", "z9hG4bKPj8d5e2b0a6f0c4f0e9d1c2b3a4f5e6d7c")))
    assert request.via.param("rport") == ""
    assert request.from_.tag == "6c1a7f4e5d3b4a2f8e9d0c1b2a3f4e5d"
    assert request.to == NameAddr(SipUri("pbx.example.com", "1001"))
    assert request.to.tag is None
    assert request.to.sip_uri.aor == "sip:1001@pbx.example.com"
    assert request.call_id == "5f2c9e0a3b8d4c7e9f1a2b3c4d5e6f70"
    assert request.cseq == CSeq(36017, "REGISTER")
    assert request.contacts == [NameAddr(SipUri("192.0.2.20", "1001", 5060, params=(("ob", None),)))]
    assert request.expires == 300
    assert request.max_forwards == 70
    assert request.tokens("Allow")[:3] == ["prack", "invite", "ack"]
    assert len(request.tokens("Allow")) == 12
    assert request.headers.get("Content-Length") == "0"
    assert request.body == b""
    assert request.content_type is None


def test_pjsip_authorization_is_kept_whole() -> None:
    # Authorization is no list header: its commas separate auth-params.
    request = parse_message(PJSIP_REGISTER_AUTH)
    assert request.headers.count("Authorization") == 1
    value = request.headers.get("authorization")
    assert value is not None
    assert value.startswith('Digest username="1001", realm="cosmo", ')
    assert value.endswith("qop=auth, nc=00000001")


def test_pjsip_register_over_tcp_with_outbound() -> None:
    request = parse_message(PJSIP_REGISTER_TCP)
    assert isinstance(request, SipRequest)
    assert require_sip_uri(request.uri).transport == "tcp"
    assert request.via.transport == "TCP"
    assert request.via.param("alias") == ""
    [contact] = request.contacts
    assert contact.param("reg-id") == "1"
    assert contact.param("+sip.instance") == '"<urn:uuid:00000000-0000-0000-0000-000041d7c640>"'
    assert contact.sip_uri.transport == "tcp"
    assert request.tokens("Supported") == ["outbound", "path"]


def test_pjsip_invite() -> None:
    request = parse_message(PJSIP_INVITE)
    assert isinstance(request, SipRequest)
    assert request.method == "INVITE"
    assert request.from_.display == "Alice Agent"
    assert request.contacts[0].display == "Alice Agent"
    assert request.tokens("Supported") == ["replaces", "100rel", "timer", "norefersub", "trickle-ice"]
    assert request.headers.get("Session-Expires") == "1800"
    assert request.headers.get("min-se") == "90"
    assert request.content_type == "application/sdp"
    assert request.body == wire(PJSIP_SDP)
    assert len(request.body) == 471


def test_pjsip_200_ok() -> None:
    response = parse_message(PJSIP_200_OK)
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (200, "OK")
    assert response.via.param("received") == "198.51.100.10"
    assert response.via.param("rport") == "5060"
    assert response.to.tag == "2f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
    assert response.cseq == CSeq(102, "INVITE")
    assert response.body == wire(PJSIP_ANSWER_SDP)


def test_baresip_register_and_invite() -> None:
    register = parse_message(BARESIP_REGISTER)
    assert register.via.params == (("branch", "z9hG4bK0a6ba6f4a8b9c1d2"), ("rport", None))
    assert register.via.branch == "z9hG4bK0a6ba6f4a8b9c1d2"
    [contact] = register.contacts
    assert contact.sip_uri.user == "alice-0x5563a0c4e9d0"
    assert contact.param("expires") == "3600"
    assert register.expires is None
    assert register.tokens("Supported") == ["replaces", "norefersub"]
    invite = parse_message(BARESIP_INVITE)
    assert invite.from_ == NameAddr(SipUri("pbx.example.com", "alice"), "Alice", (("tag", "9a8b7c6d5e4f3a2b"),))
    assert invite.body == wire(BARESIP_SDP)


def test_sipp_invite_and_200() -> None:
    invite = parse_message(SIPP_INVITE)
    assert invite.from_.display == "sipp"
    assert invite.to == NameAddr(SipUri("198.51.100.10", "queue-support", 5060), "queue-support")
    # Contact as a bare addr-spec
    assert invite.contacts == [NameAddr(SipUri("127.0.0.1", "sipp", 5061))]
    assert invite.via.branch == "z9hG4bK-4321-1-0"
    assert invite.headers.get("Subject") == "Performance Test"
    assert invite.body == wire(SIPP_SDP)
    ok = parse_message(SIPP_200_OK)
    assert ok.to.tag == "4322SIPpTag011"
    assert ok.contacts[0].sip_uri == SipUri("127.0.0.1", port=5062, params=(("transport", "UDP"),))


def test_jssip_register_over_websocket() -> None:
    request = parse_message(JSSIP_REGISTER)
    assert request.via == Via("WSS", "2hd7kfa6m8ia.invalid", None, (("branch", "z9hG4bK5398458"),))
    assert request.max_forwards == 69
    [contact] = request.contacts
    assert contact.sip_uri.transport == "ws"
    assert contact.params == (
        ("+sip.ice", None), ("reg-id", "1"),
        ("+sip.instance", '"<urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a>"'), ("expires", "600"))
    assert request.to.display == "Agent 7"
    assert request.tokens("Supported") == ["path", "gruu", "outbound"]


def test_sipjs_invite_and_200_over_websocket() -> None:
    invite = parse_message(SIPJS_INVITE)
    assert isinstance(invite, SipRequest)
    assert invite.uri == SipUri("pbx.example.com", "queue-sales")
    assert invite.contacts[0].sip_uri.params == (("transport", "ws"), ("ob", None))
    assert invite.body == wire(CHROME_SDP)
    assert len(invite.body) == 1338
    ok = parse_message(SIPJS_200_OK)
    assert ok.via.params == (
        ("branch", "z9hG4bK.cosmo.7f3a"), ("rport", "51234"), ("received", "203.0.113.45"))
    assert ok.from_.display == "+1 555 0100"
    assert ok.to.tag == "qb1ctu3vs4"


# --- framing ----------------------------------------------------------------------------------

OPTIONS_HEAD = """OPTIONS sip:queue-support@pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1
Max-Forwards: 70
From: <sip:1001@pbx.example.com>;tag=f1
To: <sip:queue-support@pbx.example.com>
Call-ID: options-1
CSeq: 1 OPTIONS
"""


def test_folded_lines_are_unfolded_with_one_space() -> None:
    message = parse_message(wire(OPTIONS_HEAD + """Subject: I know you're there,
         pick up the phone
\tand talk to me!
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK2
   ;received=192.0.2.3
Content-Length: 0

"""))
    assert message.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert message.vias[1] == Via("UDP", "p1.example.com", None, (("branch", "z9hG4bK2"), ("received", "192.0.2.3")))
    assert b"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK2 ;received=192.0.2.3\r\n" in bytes(message)


def test_fold_after_an_empty_value() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "Route:\n <sip:p1.example.com;lr>\nContent-Length: 0\n\n"))
    assert message.headers.get("Route") == "<sip:p1.example.com;lr>"


def test_list_headers_are_split_into_one_entry_per_element() -> None:
    message = parse_message(wire(OPTIONS_HEAD.replace(
        "Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1\n",
        "Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK3, SIP/2.0/UDP p1.example.com;branch=z9hG4bK2 ,"
        "SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1\n",
    ) + """Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>
Record-Route: <sip:p3.example.com;lr>, <sip:p4.example.com;lr>
Contact: "Watson, Thomas" <sip:watson@192.0.2.20>;q=0.7, <sip:watson@192.0.2.21>
Allow: INVITE, ACK, OPTIONS
Content-Length: 0

"""))
    assert [via.host for via in message.vias] == ["p2.example.com", "p1.example.com", "192.0.2.20"]
    assert message.via.branch == "z9hG4bK3"
    assert [str(route.uri) for route in message.name_addrs("Route")] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert message.headers.count("Record-Route") == 2
    assert [contact.display for contact in message.contacts] == ["Watson, Thomas", None]
    assert message.headers.get_all("Allow") == ["INVITE, ACK, OPTIONS"]  # kept: not a list we act on
    written = bytes(message)
    assert written.count(b"\r\nVia: ") == 3
    assert b"\r\nRoute: <sip:p2.example.com;lr>\r\n" in written
    assert b'\r\nContact: "Watson, Thomas" <sip:watson@192.0.2.20>;q=0.7\r\n' in written


def test_compact_and_odd_case_names_are_canonical_on_the_way_out() -> None:
    message = parse_message(wire("""INVITE sip:bob@biloxi.example.com SIP/2.0
v: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1
f: <sip:alice@atlanta.example.com>;tag=1
t: <sip:bob@biloxi.example.com>
i: compact-1
cSeQ: 1 INVITE
m: <sip:alice@192.0.2.20>
c: application/sdp
x-cosmo-queue: support
l: 4

body"""))
    assert [name for name, _ in message.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "X-Cosmo-Queue", "Content-Length"]
    assert bytes(message).endswith(b"\r\nX-Cosmo-Queue: support\r\nContent-Length: 4\r\n\r\nbody")


def test_leading_crlfs_are_skipped() -> None:
    message = parse_message(b"\r\n\r\n\r\n" + PJSIP_REGISTER)
    assert message == parse_message(PJSIP_REGISTER)


def test_header_section_may_end_with_the_datagram() -> None:
    message = parse_message(wire(OPTIONS_HEAD))
    assert message.body == b""
    assert message.cseq == CSeq(1, "OPTIONS")


def test_without_content_length_the_body_is_the_rest_of_the_datagram() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "\n") + b"rest\r\n\r\nof it")
    assert message.body == b"rest\r\n\r\nof it"
    assert message.defects == []


def test_bytes_after_the_content_length_are_ignored() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "Content-Length: 3\n\n") + b"abcINVITE sip:x SIP/2.0\r\n")
    assert message.body == b"abc"
    assert message.defects == []


def test_content_length_larger_than_the_body_is_a_defect() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "Content-Length: 10\n\nabc"))
    assert message.body == b"abc"
    assert message.defects == ["Content-Length 10 is larger than the 3 bytes of body received"]


def test_content_length_that_is_no_number_is_a_defect() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "Content-Length: -3\n\nabc"))
    assert message.body == b"abc"
    assert message.defects == ["Content-Length is not a non-negative number: '-3'"]


def test_bytes_that_are_no_utf8_are_kept() -> None:
    raw = wire(OPTIONS_HEAD) + b"X-Raw: \xff\xfe caf\xc3\xa9\nlone-lf\r\nContent-Length: 0\r\n\r\n"
    message = parse_message(raw)
    assert message.headers.get("X-Raw") == "\udcff\udcfe caf\u00e9\nlone-lf"
    assert bytes(message) == raw


PARSE_ERRORS = [
    (b"", "no empty line after the header section", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", "no empty line after the header section", 400, "Bad Request"),
    (b"\r\n\r\n", "no empty line after the header section", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n folded\r\n\r\n",
     "continuation line before the first header", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\ngarbage\r\n\r\n",
     "header line without a name and colon: 'garbage'", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n: value\r\n\r\n",
     "header line without a name and colon: ': value'", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nBad Name: x\r\n\r\n",
     "invalid header name: 'Bad Name'", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia\xc3\xa9: x\r\n\r\n",
     "invalid header name: 'Via\u00e9'", 400, "Bad Request"),
    (b"SIP/2.0 20 OK\r\n\r\n", "malformed status line: 'SIP/2.0 20 OK'", 400, "Bad Request"),
    (b"SIP/2.0 200\r\n\r\n", "malformed status line: 'SIP/2.0 200'", 400, "Bad Request"),
    (b"SIP/2.0 700 Nope\r\n\r\n", "malformed status line: 'SIP/2.0 700 Nope'", 400, "Bad Request"),
    (b"SIP/2.0 099 Early\r\n\r\n", "malformed status line: 'SIP/2.0 099 Early'", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com\r\n\r\n",
     "malformed request line: 'INVITE sip:bob@biloxi.example.com'", 400, "Bad Request"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0 \r\n\r\n",
     "malformed request line: 'INVITE sip:bob@biloxi.example.com SIP/2.0 '", 400, "Bad Request"),
    (b"INV<ITE sip:bob@biloxi.example.com SIP/2.0\r\n\r\n",
     "malformed request line: 'INV<ITE sip:bob@biloxi.example.com SIP/2.0'", 400, "Bad Request"),
    (b"HELLO\r\n\r\n", "malformed request line: 'HELLO'", 400, "Bad Request"),
    (b"INVITE bob SIP/2.0\r\n\r\n", "bad Request-URI: URI has no valid scheme: 'bob'", 400, "Bad Request"),
    (b"INVITE sip:bob@ SIP/2.0\r\n\r\n", "bad Request-URI: malformed SIP URI: 'sip:bob@'", 400, "Bad Request"),
    (b"OPTIONS sip:bob@biloxi.example.com SIP/3.0\r\n\r\n",
     "unsupported version SIP/3.0", 505, "Version Not Supported"),
    (b"OPTIONS sip:bob@biloxi.example.com SIP/2.1\r\n\r\n",
     "unsupported version SIP/2.1", 505, "Version Not Supported"),
]


@pytest.mark.parametrize(
    ("data", "message", "status", "reason"), PARSE_ERRORS, ids=[repr(d[:40]) for d, *_ in PARSE_ERRORS]
)
def test_parse_error(data: bytes, message: str, status: int, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert str(info.value) == message
    assert (info.value.status, info.value.reason) == (status, reason)


def test_response_with_unknown_version_is_505_version_not_supported() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(b"SIP/3.0 200 OK\r\n\r\n")
    assert str(info.value) == "unsupported version SIP/3.0"
    assert (info.value.status, info.value.reason) == (505, "Version Not Supported")


def test_sip_version_is_case_insensitive() -> None:
    message = parse_message(wire(OPTIONS_HEAD.replace(" SIP/2.0\n", " sip/2.0\n", 1) + "Content-Length: 0\n\n"))
    assert isinstance(message, SipRequest)
    validate_request(message)


def test_a_parse_error_carries_the_headers_read_so_far() -> None:
    data = wire(OPTIONS_HEAD) + b"this line has no colon\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    headers = info.value.headers
    assert isinstance(headers, Headers)
    assert headers.get("Call-ID") == "options-1"
    response = response_from_headers(headers, 400, to_tag="cosmo-1")
    assert bytes(response) == wire("""SIP/2.0 400 Bad Request
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1
From: <sip:1001@pbx.example.com>;tag=f1
To: <sip:queue-support@pbx.example.com>;tag=cosmo-1
Call-ID: options-1
CSeq: 1 OPTIONS
Content-Length: 0

""")


def test_a_bad_request_line_carries_every_header() -> None:
    data = b"INVITE  sip:bob@biloxi.example.com  SIP/2.0\r\n" + wire(OPTIONS_HEAD).split(b"\r\n", 1)[1] + b"\r\n"
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert str(info.value) == "malformed request line: 'INVITE  sip:bob@biloxi.example.com  SIP/2.0'"
    assert isinstance(info.value.headers, Headers)
    assert len(info.value.headers) == 6


# --- serialisation ------------------------------------------------------------------------------


def test_content_length_is_computed_when_writing() -> None:
    message = parse_message(PJSIP_INVITE)
    message.body = b"v=0\r\n"
    written = bytes(message)
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in written
    assert written.count(b"Content-Length") == 1
    assert message.headers.get("Content-Length") == "471"  # the header itself is untouched


def test_content_length_is_added_at_the_end_when_missing() -> None:
    request = SipRequest("OPTIONS", SipUri("pbx.example.com"), Headers([("Call-ID", "x")]), b"hello")
    assert bytes(request) == b"OPTIONS sip:pbx.example.com SIP/2.0\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\nhello"


def test_duplicate_content_lengths_are_written_once() -> None:
    message = parse_message(wire(OPTIONS_HEAD + "Content-Length: 13\nX-A: 1\nl: 5\n\n") + b"There's no way")
    assert bytes(message).count(b"Content-Length") == 1
    assert bytes(message).endswith(b"\r\nContent-Length: 13\r\nX-A: 1\r\n\r\nThere's no wa")


def test_start_lines() -> None:
    assert SipRequest("BYE", AbsoluteUri("tel", "+15550100")).start_line() == "BYE tel:+15550100 SIP/2.0"
    assert SipResponse(486).start_line() == "SIP/2.0 486 Busy Here"
    assert SipResponse(299).start_line() == "SIP/2.0 299 OK"
    assert SipResponse(100, "").start_line() == "SIP/2.0 100 "
    assert repr(SipRequest("BYE", SipUri("h", "u"))) == "<SipRequest BYE sip:u@h>"
    assert repr(SipResponse(180)) == "<SipResponse 180 Ringing>"


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(100, "Trying"), (180, "Ringing"), (182, "Queued"), (199, "Trying"), (200, "OK"), (299, "OK"),
     (302, "Moved Temporarily"), (401, "Unauthorized"), (450, "Bad Request"), (481, "Call/Transaction Does Not Exist"),
     (487, "Request Terminated"), (503, "Service Unavailable"), (513, "Message Too Large"), (603, "Decline"),
     (699, "Busy Everywhere"), (700, "Unknown")],
)
def test_reason_phrase(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase


def test_messages_compare_by_content_and_are_unhashable() -> None:
    assert parse_message(PJSIP_INVITE) == parse_message(PJSIP_INVITE)
    assert parse_message(PJSIP_INVITE) != parse_message(PJSIP_REGISTER)
    assert parse_message(SIPP_200_OK) != parse_message(SIPP_INVITE)
    with pytest.raises(TypeError):
        hash(parse_message(PJSIP_INVITE))


# --- Headers ----------------------------------------------------------------------------------


def test_headers_list_operations() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("i", "c1"), ("Via", "SIP/2.0/UDP b")])
    assert list(headers) == [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Call-ID", "c1"), ("Via", "SIP/2.0/UDP b")]
    assert len(headers) == 3
    assert headers.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert headers.get_all("v") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"]
    assert headers.count("via") == 2
    assert "call-id" in headers and "i" in headers and "To" not in headers and 3 not in headers
    assert headers.get("To") is None
    headers.prepend("Via", "SIP/2.0/UDP top;branch=z9hG4bK0")
    assert headers.remove_first("v") == "SIP/2.0/UDP top;branch=z9hG4bK0"
    assert headers.remove_first("Route") is None
    copy = headers.copy()
    headers.add("m", "<sip:a@b>")
    headers.set("Via", "SIP/2.0/TCP c")
    assert list(headers) == [("Via", "SIP/2.0/TCP c"), ("Call-ID", "c1"), ("Contact", "<sip:a@b>")]
    headers.set("Max-Forwards", "69")
    assert list(headers)[-1] == ("Max-Forwards", "69")
    headers.remove("contact")
    assert "Contact" not in headers
    assert copy == Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Call-ID", "c1"), ("Via", "SIP/2.0/UDP b")])
    assert copy != headers and copy != list(copy)
    assert repr(Headers([("i", "x")])) == "Headers([('Call-ID', 'x')])"


def test_typed_views_of_missing_headers() -> None:
    request = SipRequest("OPTIONS", SipUri("h"))
    for view, message in [("call_id", "missing Call-ID"), ("cseq", "missing CSeq"), ("from_", "missing From"),
                          ("to", "missing To"), ("via", "missing Via")]:
        with pytest.raises(SipParseError) as info:
            getattr(request, view)
        assert str(info.value) == message
    assert request.vias == [] and request.contacts == [] and request.name_addrs("Route") == []
    assert request.max_forwards is None and request.expires is None and request.content_type is None
    assert request.tokens("Require") == []


def test_typed_views() -> None:
    message = parse_message(wire(OPTIONS_HEAD + """Contact: *
Expires: 0
Require: 100rel, Timer
Require: replaces
Content-Type: Application/SDP ; charset=utf-8
Content-Length: 0

"""))
    assert message.contacts == []  # '*' is no address
    assert message.expires == 0
    assert message.tokens("require") == ["100rel", "timer", "replaces"]
    assert message.content_type == "application/sdp"


def test_clone_request_has_its_own_headers() -> None:
    request = parse_message(PJSIP_INVITE)
    assert isinstance(request, SipRequest)
    copy = clone_request(request)
    assert copy == request
    copy.headers.prepend("Via", "SIP/2.0/UDP 198.51.100.10;branch=z9hG4bK.cosmo.1")
    assert copy.headers.count("Via") == 2 and request.headers.count("Via") == 1


def test_clone_request_refuses_a_response() -> None:
    with pytest.raises(SipUsageError) as info:
        clone_request(parse_message(SIPP_200_OK))  # type: ignore[arg-type]
    assert str(info.value) == "clone_request needs a SipRequest"


def test_require_sip_uri() -> None:
    assert require_sip_uri(SipUri("h")) == SipUri("h")
    with pytest.raises(SipParseError) as info:
        require_sip_uri(AbsoluteUri("tel", "+15550100"))
    assert str(info.value) == "unsupported URI scheme 'tel'"
    assert (info.value.status, info.value.reason) == (416, "Unsupported URI Scheme")


# --- validation ----------------------------------------------------------------------------------

BASE_HEADERS = [
    ("Via", "SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1"),
    ("Max-Forwards", "70"),
    ("From", "<sip:1001@pbx.example.com>;tag=f1"),
    ("To", "<sip:queue-support@pbx.example.com>"),
    ("Call-ID", "v-1"),
    ("CSeq", "1 OPTIONS"),
]


def _message(
    start: str = "OPTIONS sip:queue-support@pbx.example.com SIP/2.0",
    *,
    drop: tuple[str, ...] = (),
    set_: dict[str, str] | None = None,
    add: tuple[tuple[str, str], ...] = (),
    tail: str = "Content-Length: 0\n\n",
) -> SipRequest | SipResponse:
    set_ = set_ or {}
    lines = [start]
    for name, value in BASE_HEADERS:
        if name not in drop:
            lines.append(f"{name}: {set_.pop(name, value)}")
    lines.extend(f"{name}: {value}" for name, value in [*set_.items(), *add])
    return parse_message(wire("\n".join(lines) + "\n" + tail))


INVALID_REQUESTS = [
    ("no-via", {"drop": ("Via",)}, "missing Via header"),
    ("no-from", {"drop": ("From",)}, "missing From header"),
    ("no-to", {"drop": ("To",)}, "missing To header"),
    ("no-call-id", {"drop": ("Call-ID",)}, "missing Call-ID header"),
    ("no-cseq", {"drop": ("CSeq",)}, "missing CSeq header"),
    ("two-to", {"add": (("t", "<sip:other@example.net>"),)}, "more than one To header"),
    ("two-from", {"add": (("From", "<sip:1002@pbx.example.com>;tag=f2"),)}, "more than one From header"),
    ("two-call-id", {"add": (("i", "v-2"),)}, "more than one Call-ID header"),
    ("two-cseq", {"add": (("CSeq", "2 OPTIONS"),)}, "more than one CSeq header"),
    ("two-max-forwards", {"add": (("Max-Forwards", "5"),)}, "more than one Max-Forwards header"),
    ("two-content-type", {"add": (("c", "text/plain"), ("Content-Type", "text/html"))},
     "more than one Content-Type header"),
    ("two-expires", {"add": (("Expires", "1"), ("Expires", "2"))}, "more than one Expires header"),
    ("two-content-length", {"tail": "Content-Length: 0\nl: 0\n\n"}, "more than one Content-Length header"),
    ("cseq-method", {"set_": {"CSeq": "1 INVITE"}}, "CSeq method INVITE does not match request method OPTIONS"),
    ("cseq-malformed", {"set_": {"CSeq": "1OPTIONS"}}, "malformed CSeq: '1OPTIONS'"),
    ("cseq-large", {"set_": {"CSeq": "4294967296 OPTIONS"}}, "CSeq number too large: 4294967296"),
    ("via-malformed", {"set_": {"Via": "SIP/2.0/UDP"}}, "malformed Via: 'SIP/2.0/UDP'"),
    ("second-via-malformed", {"add": (("Via", "SIP/2.0/UDP p1.example.com;;"),)},
     "empty or invalid Via parameter name in 'SIP/2.0/UDP p1.example.com;;'"),
    ("from-uri-with-headers", {"set_": {"From": "sip:1001@pbx.example.com?x=1;tag=f1"}},
     "a URI with '?' or ',' must be enclosed in <>: 'sip:1001@pbx.example.com?x=1;tag=f1'"),
    ("to-display", {"set_": {"To": "Support, Queue <sip:queue-support@pbx.example.com>"}},
     "invalid display name 'Support, Queue': 'Support, Queue <sip:queue-support@pbx.example.com>'"),
    ("route", {"add": (("Route", "<sip:proxy.example.com;lr"),)}, "missing '>' in '<sip:proxy.example.com;lr'"),
    ("record-route", {"add": (("Record-Route", "< sip:proxy.example.com;lr>"),)},
     "whitespace inside <> in '< sip:proxy.example.com;lr>'"),
    ("contact", {"add": (("Contact", '"Agent <sip:1001@192.0.2.20>'),)},
     "unterminated quoted string: '\"Agent <sip:1001@192.0.2.20>'"),
    ("max-forwards-large", {"set_": {"Max-Forwards": "256"}}, "Max-Forwards too large: 256"),
    ("max-forwards-negative", {"set_": {"Max-Forwards": "-1"}}, "Max-Forwards is not a non-negative number: '-1'"),
    ("expires-word", {"add": (("Expires", "never"),)}, "Expires is not a non-negative number: 'never'"),
    ("expires-large", {"add": (("Expires", "4294967296"),)}, "Expires too large: 4294967296"),
    ("date-zone", {"add": (("Date", "Fri, 01 Jan 2010 16:00:00 EST"),)},
     "malformed Date (RFC 1123 in GMT required): 'Fri, 01 Jan 2010 16:00:00 EST'"),
    ("date-format", {"add": (("Date", "2010-01-01T16:00:00Z"),)},
     "malformed Date (RFC 1123 in GMT required): '2010-01-01T16:00:00Z'"),
    ("request-uri-headers", {"start": "OPTIONS sip:queue-support@pbx.example.com?Subject=hi SIP/2.0"},
     "Request-URI must not contain headers (RFC 3261 §19.1.5)"),
    ("content-length-short", {"tail": "Content-Length: 10\n\nabc"},
     "Content-Length 10 is larger than the 3 bytes of body received"),
    ("content-length-word", {"tail": "Content-Length: ten\n\n"}, "Content-Length is not a non-negative number: 'ten'"),
    # a framing defect is reported before anything else
    ("defect-first", {"drop": ("From",), "tail": "Content-Length: 10\n\n"},
     "Content-Length 10 is larger than the 0 bytes of body received"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [c[1:] for c in INVALID_REQUESTS], ids=[c[0] for c in INVALID_REQUESTS]
)
def test_invalid_request(changes: dict[str, object], message: str) -> None:
    request = _message(**changes)  # type: ignore[arg-type]
    assert isinstance(request, SipRequest)
    with pytest.raises(SipParseError) as info:
        validate_request(request)
    assert str(info.value) == message
    assert (info.value.status, info.value.reason) == (400, "Bad Request")


VALID_REQUESTS = [
    ("base", {}),
    ("no-max-forwards", {"drop": ("Max-Forwards",)}),  # RFC 2543 peers (RFC 4475 inv2543)
    ("max-forwards-0", {"set_": {"Max-Forwards": "0"}}),
    ("max-forwards-255", {"set_": {"Max-Forwards": "255"}}),
    ("date", {"add": (("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),)}),
    ("contact-star", {"start": "REGISTER sip:pbx.example.com SIP/2.0", "set_": {"CSeq": "2 REGISTER"},
                      "add": (("Contact", "*"), ("Expires", "0"))}),
    ("several-contacts", {"add": (("Contact", "<sip:a@192.0.2.1>, <sip:b@192.0.2.2>;q=0.5"),)}),
    ("tel-request-uri", {"start": "OPTIONS tel:+15550100 SIP/2.0"}),  # 416 is the application's call
    ("tel-to", {"set_": {"To": "<tel:+15550100>"}}),
    ("unknown-headers", {"add": (("X-Anything", ";;,,;;,;"), ("Subject", ""))}),
]


@pytest.mark.parametrize("changes", [c[1] for c in VALID_REQUESTS], ids=[c[0] for c in VALID_REQUESTS])
def test_valid_request(changes: dict[str, object]) -> None:
    request = _message(**changes)  # type: ignore[arg-type]
    assert isinstance(request, SipRequest)
    validate_request(request)


def test_empty_call_id_is_missing() -> None:
    request = _message(set_={"Call-ID": ""})
    assert isinstance(request, SipRequest)
    with pytest.raises(SipParseError) as info:
        validate_request(request)
    assert str(info.value) == "missing Call-ID header"


RESPONSE_START = "SIP/2.0 503 Service Unavailable"

INVALID_RESPONSES = [
    ("no-via", {"drop": ("Via",)}, "missing Via header"),
    ("two-call-id", {"add": (("Call-ID", "other"),)}, "more than one Call-ID header"),
    ("retry-after", {"add": (("Retry-After", "soon"),)}, "Retry-After is not a non-negative number: 'soon'"),
    ("retry-after-large", {"add": (("Retry-After", "949302838503028349304023988"),)},
     "Retry-After too large: 949302838503028349304023988"),
    ("warning", {"add": (("Warning", '1812 overture "In Progress"'),)},
     "malformed Warning code: '1812 overture \"In Progress\"'"),
    ("second-warning", {"add": (("Warning", '399 a.example.com "x", 30 b "y"'),)},
     "malformed Warning code: '30 b \"y\"'"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [c[1:] for c in INVALID_RESPONSES], ids=[c[0] for c in INVALID_RESPONSES]
)
def test_invalid_response(changes: dict[str, object], message: str) -> None:
    response = _message(RESPONSE_START, **changes)  # type: ignore[arg-type]
    assert isinstance(response, SipResponse)
    with pytest.raises(SipParseError) as info:
        validate_response(response)
    assert str(info.value) == message


def test_valid_response() -> None:
    response = _message(RESPONSE_START, set_={"CSeq": "7 INVITE"}, add=(
        ("Retry-After", "120 (I'm in a meeting);duration=3600"),
        ("Warning", '399 cosmo.example.com "queue full", 370 cosmo.example.com "no agents"'),
    ))
    assert isinstance(response, SipResponse)
    validate_response(response)  # a response's CSeq method is the request's, not compared


# --- building responses ------------------------------------------------------------------------


def test_make_response_copies_the_transaction_headers() -> None:
    request = parse_message(PJSIP_INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(
        request, 180, to_tag="cosmo-ab12", extra=[("Contact", "<sip:queue-support@198.51.100.10>")]
    )
    assert bytes(response) == wire("""SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj3a1e5c7b9d2f4a6c8e0b1d3f5a7c9e2b
From: "Alice Agent" <sip:1001@pbx.example.com>;tag=9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a
To: <sip:queue-support@pbx.example.com>;tag=cosmo-ab12
Call-ID: a84b4c76e66710f2b3c4d5e6f7081920
CSeq: 31504 INVITE
Contact: <sip:queue-support@198.51.100.10>
Content-Length: 0

""")
    validate_response(response)


def test_make_response_keeps_an_existing_to_tag() -> None:
    request = parse_message(SIPP_INVITE.replace(
        b"To: queue-support <sip:queue-support@198.51.100.10:5060>",
        b"To: queue-support <sip:queue-support@198.51.100.10:5060> ; TAG = known"))
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag="cosmo-new", body=b"v=0\r\n",
                             extra=[("Content-Type", "application/sdp")])
    assert response.headers.get("To") == "queue-support <sip:queue-support@198.51.100.10:5060> ; TAG = known"
    assert response.to.tag == "known"
    assert bytes(response).endswith(b"\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")


def test_make_response_100_has_no_to_tag_and_copies_timestamp() -> None:
    request = parse_message(wire(OPTIONS_HEAD.replace("OPTIONS", "INVITE")
                                 + "Timestamp: 54.7 0.3\nContact: <sip:1001@192.0.2.20>\nContent-Length: 0\n\n"))
    assert isinstance(request, SipRequest)
    trying = make_response(request, 100, to_tag="cosmo-1")
    assert trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54.7 0.3"
    assert "Contact" not in trying.headers and "Max-Forwards" not in trying.headers
    ok = make_response(request, 200, "Fine", to_tag="cosmo-1")
    assert ok.reason == "Fine"
    assert ok.to.tag == "cosmo-1"
    assert "Timestamp" not in ok.headers


def test_make_response_without_to_tag_copies_to_as_is() -> None:
    request = parse_message(PJSIP_REGISTER)
    assert isinstance(request, SipRequest)
    assert make_response(request, 401).headers.get("To") == "<sip:1001@pbx.example.com>"


def test_make_response_copies_every_via_in_order() -> None:
    request = parse_message(wire(OPTIONS_HEAD + "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK2\n"
                                 "Record-Route: <sip:p1.example.com;lr>\nContent-Length: 0\n\n"))
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag="t")
    assert [via.host for via in response.vias] == ["192.0.2.20", "p1.example.com"]
    assert "Record-Route" not in response.headers


@pytest.mark.parametrize(
    ("to", "expected"),
    [("<sip:queue-support@pbx.example.com>;\ttag=known", "known"),
     ("<sip:queue-support@pbx.example.com;tag=uri-param>", "cosmo-new")],
    ids=["tab-before-tag", "uri-param-named-tag"],
)
def test_to_tag_is_judged_on_the_parsed_to(to: str, expected: str) -> None:
    request = _message(set_={"To": to})
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag="cosmo-new")
    assert response.to.tag == expected
    assert [name for name, _ in response.to.params].count("tag") == 1


def test_response_from_headers_of_a_torn_request() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1"), ("CSeq", "1 INVITE")])
    response = response_from_headers(headers, 400, "Bad Request - no colon", extra=[("Warning", '399 cosmo "x"')])
    assert bytes(response) == wire("""SIP/2.0 400 Bad Request - no colon
Via: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1
CSeq: 1 INVITE
Warning: 399 cosmo "x"
Content-Length: 0

""")


# --- stream framing ------------------------------------------------------------------------------


def test_framer_one_message() -> None:
    assert StreamFramer().feed(PJSIP_REGISTER_TCP) == [PJSIP_REGISTER_TCP]


def test_framer_message_split_at_every_byte() -> None:
    for cut in range(1, len(PJSIP_INVITE)):
        framer = StreamFramer()
        assert framer.feed(PJSIP_INVITE[:cut]) == []
        assert framer.feed(PJSIP_INVITE[cut:]) == [PJSIP_INVITE]


def test_framer_byte_by_byte() -> None:
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(len(SIPJS_INVITE)):
        out.extend(framer.feed(SIPJS_INVITE[i : i + 1]))
    assert out == [SIPJS_INVITE]


def test_framer_several_messages_and_pings_in_one_feed() -> None:
    stream = PJSIP_REGISTER_TCP + b"\r\n\r\n" + PJSIP_INVITE + SIPP_200_OK + b"\r\n\r\n"
    assert StreamFramer().feed(stream) == [PJSIP_REGISTER_TCP, PING, PJSIP_INVITE, SIPP_200_OK, PING]


def test_framer_ping_and_pong() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []  # may become a ping
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [PING]
    assert framer.feed(b"\r\n") == []
    # a lone CRLF (the pong of RFC 5626 §4.4.1) before a message is dropped
    assert framer.feed(BARESIP_REGISTER) == [BARESIP_REGISTER]
    assert PING == b""


def test_framer_body_framed_by_compact_content_length() -> None:
    head = wire(OPTIONS_HEAD.replace("OPTIONS", "MESSAGE") + "c: text/plain\nl: 12\n\n")
    body = b"a\r\n\r\nb\r\n\r\ncd"
    assert len(body) == 12
    framer = StreamFramer()
    assert framer.feed(head + body[:4]) == []
    [message] = framer.feed(body[4:] + PJSIP_REGISTER_TCP[:10])
    assert parse_message(message).body == body
    assert framer.feed(PJSIP_REGISTER_TCP[10:]) == [PJSIP_REGISTER_TCP]


def test_framer_content_length_name_in_any_case_and_spacing() -> None:
    head = wire(OPTIONS_HEAD + "content-LENGTH \t:\t 3\n\n")
    assert StreamFramer().feed(head + b"abc" + head + b"xyz") == [head + b"abc", head + b"xyz"]


def test_framer_without_content_length_assumes_no_body() -> None:
    head = wire(OPTIONS_HEAD + "\n")
    assert StreamFramer().feed(head + head) == [head, head]


def test_framer_header_section_too_large() -> None:
    framer = StreamFramer(max_size=100)
    assert framer.feed(b"A" * 100) == []
    with pytest.raises(SipParseError) as info:
        framer.feed(b"A")
    assert str(info.value) == "header section too large"
    assert (info.value.status, info.value.reason) == (513, "Message Too Large")


def test_framer_message_too_large() -> None:
    framer = StreamFramer(max_size=len(PJSIP_INVITE) - 1)
    with pytest.raises(SipParseError) as info:
        framer.feed(PJSIP_INVITE[: PJSIP_INVITE.index(b"\r\n\r\n") + 4])
    assert str(info.value) == "message too large"
    assert (info.value.status, info.value.reason) == (513, "Message Too Large")
    assert StreamFramer(max_size=len(PJSIP_INVITE)).feed(PJSIP_INVITE) == [PJSIP_INVITE]


def test_framer_content_length_with_too_many_digits() -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(wire(OPTIONS_HEAD + "Content-Length: 99999999999\n\n"))
    assert str(info.value) == "Content-Length too large"
    assert (info.value.status, info.value.reason) == (513, "Message Too Large")


# --- properties ------------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_generated_message_round_trip(message: SipRequest | SipResponse) -> None:
    written = bytes(message)
    parsed = parse_message(written)
    assert parsed == message
    assert bytes(parsed) == written
    _validate(parsed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(requests(), responses(), st.just(None)), min_size=1, max_size=5), st.data())
def test_framer_output_does_not_depend_on_chunking(
    items: list[SipRequest | SipResponse | None], data: st.DataObject
) -> None:
    # None stands for a keep-alive ping between messages.
    expected = [PING if item is None else bytes(item) for item in items]
    stream = b"".join(b"\r\n\r\n" if item is None else bytes(item) for item in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = StreamFramer()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(framer.feed(stream[start:end]))
    assert out == expected
    assert StreamFramer().feed(stream) == expected


def test_our_parse_error_is_a_sip_error() -> None:
    assert issubclass(SipParseError, SipError)


def _parse_and_validate(data: bytes) -> None:
    try:
        message = parse_message(data)
        _validate(message)
    except SipParseError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_message_or_our_parse_error(data: bytes) -> None:
    _parse_and_validate(data)


_SEEDS = torture_messages()
_SEEDS.update({"pjsip-invite": PJSIP_INVITE, "sipjs-invite": SIPJS_INVITE, "sipp-200": SIPP_200_OK})
_INSERTS = [b"\r\n", b"\r\n\r\n", b"\r\n ", b";", b";;", b",", b"<", b">", b'"', b"\\", b" ", b"\t", b":",
            b"=", b"%", b"@", b"[", b"]", b"9" * 25, b"\x00", b"\xff", b"SIP/2.0", b"sip:", b"l: 99\r\n"]


@st.composite
def _mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(_SEEDS.values()))))
    for _ in range(draw(st.integers(1, 5))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if operation == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[at:]
        elif operation == "insert":
            data[at:at] = draw(st.sampled_from(_INSERTS))
        else:
            del data[at : at + draw(st.integers(1, 12))]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_messages_give_a_message_or_our_parse_error(data: bytes) -> None:
    _parse_and_validate(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), _mutations()), st.lists(st.integers(1, 64), max_size=10),
       st.integers(16, 70000))
def test_framer_gives_messages_or_our_parse_error(data: bytes, chunks: list[int], max_size: int) -> None:
    framer = StreamFramer(max_size=max_size)
    position = 0
    try:
        for size in [*chunks, len(data)]:
            for message in framer.feed(data[position : position + size]):
                if message != PING:
                    _parse_and_validate(message)
            position += size
    except SipParseError as exc:
        assert exc.status == 513


def test_cseq_of_thousands_of_digits_is_a_400() -> None:
    request = _message(set_={"CSeq": "9" * 5000 + " OPTIONS"})
    assert isinstance(request, SipRequest)
    with pytest.raises(SipParseError) as info:
        validate_request(request)
    assert info.value.status == 400

