"""Tests of :mod:`cosmo.sip.sdp` and :mod:`cosmo.sip.sdp_negotiation`.

Real offers captured from pjsip, baresip, SIPp, Asterisk, FreeSWITCH, Chrome
and Firefox are parsed and must serialise back byte for byte; the RFC 4317
offer/answer examples drive both sides of the negotiation.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.sip.errors import SipParseError, SipUsageError
from cosmo.sip.sdp import (
    Bandwidth,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAttribute,
    SdpError,
    SessionDescription,
    Timing,
    parse_sdp,
)
from cosmo.sip.sdp_negotiation import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    create_offer,
    negotiate_answer,
    next_version,
    process_answer,
)

from .conftest import wire

PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
ILBC = Codec("iLBC", 8000, 97)
EVENTS = Codec("telephone-event", 8000, 101, fmtp="0-16")

# --- captured offers -----------------------------------------------------------

# pjmedia (pjsip 2.x) offer as a Kotlin SIP client sends it: every codec
# pjmedia builds by default, ICE candidates for RTP and RTCP, RFC 3605 a=rtcp.
PJSIP_ICE = """\
v=0
o=- 3798480436 3798480436 IN IP4 10.0.3.15
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 55078 RTP/AVP 98 97 99 104 3 0 8 9 96
c=IN IP4 10.0.3.15
b=TIAS:64000
a=rtcp:51509 IN IP4 10.0.3.15
a=sendrecv
a=rtpmap:98 speex/16000
a=rtpmap:97 speex/8000
a=rtpmap:99 speex/32000
a=rtpmap:104 iLBC/8000
a=fmtp:104 mode=30
a=rtpmap:3 GSM/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=ice-ufrag:0b1bd86f
a=ice-pwd:2aa73e8b
a=candidate:Ha00030f 1 UDP 2130706431 10.0.3.15 55078 typ host
a=candidate:Hc0a83867 1 UDP 2130706431 192.168.56.103 55078 typ host
a=candidate:Hc0a8c802 1 UDP 2130706431 192.168.200.2 55078 typ host
a=candidate:Ha00030f 2 UDP 2130706430 10.0.3.15 51509 typ host
a=candidate:Hc0a83867 2 UDP 2130706430 192.168.56.103 51509 typ host
a=candidate:Hc0a8c802 2 UDP 2130706430 192.168.200.2 51509 typ host
"""

# MicroSIP 3.20.7 (pjsip): rtcp, a=sendrecv, ssrc with cname.
PJSIP_MICROSIP = """\
v=0
o=- 3926573523 3926573523 IN IP4 10.254.8.178
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4002 RTP/AVP 8 0 101
c=IN IP4 10.254.8.178
b=TIAS:64000
a=rtcp:4003 IN IP4 10.254.8.178
a=sendrecv
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ssrc:1932486814 cname:1af30a2f01e36ab9
"""

# Telephone 1.6 for macOS (pjsip): opus first, one telephone-event per clock rate.
PJSIP_OPUS = """\
v=0
o=- 3932815554 3932815554 IN IP4 10.10.10.4
s=pjmedia
b=AS:117
t=0 0
a=X-nat:0
m=audio 4004 RTP/AVP 96 9 8 0 101 102
c=IN IP4 10.10.10.4
b=TIAS:96000
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-16
a=rtpmap:102 telephone-event/8000
a=fmtp:102 0-16
a=rtcp:4005 IN IP4 10.10.10.4
a=ssrc:1491843177 cname:242da6923112cdcc
"""

# baresip 1.0.0 over TLS with mandatory SRTP (SDES crypto).
BARESIP_SRTP = """\
v=0
o=- 1975181172 1106161735 IN IP4 192.168.1.1
s=-
c=IN IP4 192.168.1.1
t=0 0
a=tool:baresip 1.0.0
m=audio 16796 RTP/SAVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:2736692082 cname:sip:b@example.com
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:vXMep/SIW4iMD21StWgrmy024dJZfOAM7qFFJfsJ
a=minptime:20
a=ptime:20
"""

# baresip 0.5.0 on IPv6 with audio and video.
BARESIP_IPV6 = """\
v=0
o=- 953559690 1743778263 IN IP6 fde1:c0fe::7
s=-
c=IN IP6 fde1:c0fe::7
t=0 0
a=tool:baresip 0.5.0
m=audio 17882 RTP/AVP 0 8 96 97 98 99 100 101 102
b=AS:128
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:96 speex/32000/2
a=fmtp:96 mode="6";vbr=off;cng=on
a=rtpmap:97 speex/16000/2
a=fmtp:97 mode="6";vbr=off;cng=on
a=rtpmap:98 speex/8000/2
a=fmtp:98 mode="3";vbr=off;cng=on
a=rtpmap:99 speex/32000
a=fmtp:99 mode="6";vbr=off;cng=on
a=rtpmap:100 speex/16000
a=fmtp:100 mode="6";vbr=off;cng=on
a=rtpmap:101 speex/8000
a=fmtp:101 mode="3";vbr=off;cng=on
a=rtpmap:102 telephone-event/8000
a=fmtp:102 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:1979608979 cname:sip:202@[fde1:c0fe::7]
a=rtcp-mux
a=ptime:20
m=video 9010 RTP/AVP 96
b=AS:384
a=rtpmap:96 VP8/90000
a=fmtp:96 max-fs=3600
a=sendrecv
a=label:2
a=rtcp-rsize
a=ssrc:59383982 cname:sip:202@[fde1:c0fe::7]
a=rtcp-mux
a=framerate:5
a=rtcp-fb:* nack pli
a=content:main
"""

# SIPp's built-in uac scenario, as it went on the wire.
SIPP_UAC = """\
v=0
o=user1 53655765 2353687637 IN IP4 127.0.1.1
s=-
c=IN IP4 127.0.1.1
t=0 0
m=audio 6000 RTP/AVP 8 0
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
"""

# Asterisk 13 chan_sip.
ASTERISK_13 = """\
v=0
o=root 1962650862 1962650862 IN IP4 172.17.0.2
s=Asterisk PBX 13.38.3
c=IN IP4 172.17.0.2
t=0 0
m=audio 14028 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=maxptime:150
a=sendrecv
"""

# Asterisk 1.6 (FreePBX 2.9) with a session b=CT and a video stream.
ASTERISK_16_VIDEO = """\
v=0
o=root 1184403247 1184403247 IN IP4 10.5.4.2
s=Asterisk PBX 1.6.2.17.3
c=IN IP4 10.5.4.2
b=CT:384
t=0 0
m=audio 18822 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
m=video 14108 RTP/AVP 31 34 98
a=rtpmap:31 H261/90000
a=rtpmap:34 H263/90000
a=rtpmap:98 h263-1998/90000
a=sendrecv
"""

# Asterisk 16 (FreePBX 15) calling a JsSIP browser: SDES-SRTP with ICE.
ASTERISK_WEBRTC = """\
v=0
o=root 1652891600 1652891600 IN IP4 10.10.3.60
s=Asterisk PBX 16.6.2
c=IN IP4 10.10.3.60
t=0 0
m=audio 16574 RTP/SAVPF 0 8 3 111 9 18 101
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:zdmWp34CwhBMFUrpaopDnkgiRpasmgOCx3oylii0
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:111 G726-32/8000
a=rtpmap:9 G722/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=maxptime:150
a=ice-ufrag:583513ee437a54346b5461ed75dae425
a=ice-pwd:3c142db12530fbea1b34a852386ab03e
a=candidate:Ha0a033c 1 UDP 2130706431 10.10.3.60 16574 typ host
a=candidate:Hac1f0223 1 UDP 2130706431 172.31.2.35 16574 typ host
a=candidate:Ha0a033c 2 UDP 2130706430 10.10.3.60 16575 typ host
a=candidate:Hac1f0223 2 UDP 2130706430 172.31.2.35 16575 typ host
a=rtcp-mux
a=sendrecv
"""

# FreeSWITCH 1.0 (mod_sofia): static payload types without rtpmap lines,
# PCMA first, comfort noise last.
FREESWITCH = """\
v=0
o=FreeSWITCH 1295374608 1295374609 IN IP4 192.168.6.40
s=FreeSWITCH
c=IN IP4 192.168.6.40
t=0 0
m=audio 21156 RTP/AVP 8 98 99 9 0 3 101 13
a=rtpmap:98 G7221/32000
a=fmtp:98 bitrate=48000
a=rtpmap:99 G7221/16000
a=fmtp:99 bitrate=32000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
"""

# FreeSWITCH 1.6 offering opus only, sendonly.
FREESWITCH_HOLD_OPUS = """\
v=0
o=FreeSWITCH 1480231472 1480231473 IN IP4 10.0.2.15
s=FreeSWITCH
c=IN IP4 10.0.2.15
t=0 0
m=audio 24196 RTP/AVP 99 101
a=rtpmap:99 opus/48000/2
a=fmtp:99 useinbandfec=1; minptime=10; maxptime=40
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendonly
a=ptime:20
"""

# FreeSWITCH as a WebRTC endpoint (DTLS-SRTP, ICE).
FREESWITCH_WEBRTC = """\
v=0
o=FreeSWITCH 1538380016 1538380017 IN IP4 1.2.3.4
s=FreeSWITCH
c=IN IP4 1.2.3.4
t=0 0
a=msid-semantic: WMS lyNSTe6w2ijnMrDEiqTHFyhqjdAag3ys
m=audio 16628 UDP/TLS/RTP/SAVPF 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=fingerprint:sha-256 35:5A:BC:8E:CD:F8:CD:EB:36:00:BB:C4:C3:33:54:B5:9B:70:3C:E9:C4:33:8F:39:3C:4B:5B:5C:AD:88:12:2B
a=setup:active
a=rtcp-mux
a=rtcp:16628 IN IP4 1.2.3.4
a=ice-ufrag:75EDuLTEOkEUd3cu
a=ice-pwd:5dvb9SbfooWc49814CupdeTS
a=candidate:0560693492 1 udp 659136 1.2.3.4 16628 typ host generation 0
a=end-of-candidates
a=ssrc:2690029308 cname:rbaag6w9fGmRXQm6
a=ssrc:2690029308 msid:lyNSTe6w2ijnMrDEiqTHFyhqjdAag3ys a0
a=ssrc:2690029308 mslabel:lyNSTe6w2ijnMrDEiqTHFyhqjdAag3ys
a=ssrc:2690029308 label:lyNSTe6w2ijnMrDEiqTHFyhqjdAag3ysa0
"""

# Chrome: audio, video and a data channel BUNDLEd, trickle ICE (0.0.0.0:9).
CHROME = """\
v=0
o=- 3380160933604312648 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=extmap-allow-mixed
a=msid-semantic: WMS 2091e6f5-2660-4dc5-b81d-628a069e9fae
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:0mjG
a=ice-pwd:cm0bGQv548oiJTjesVkg+b3R
a=ice-options:trickle
a=fingerprint:sha-256 58:A8:5D:EF:61:13:FD:17:6C:EB:52:29:01:21:5B:30:0B:F9:93:E0:86:C7:D0:CA:C6:EE:49:7A:65:EE:AF:3F
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:2091e6f5-2660-4dc5-b81d-628a069e9fae c06c63cf-b274-433e-bedc-d4849285d9c0
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
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
a=ssrc:1172093722 cname:Q5p/cwdNJll+fpI0
a=ssrc:1172093722 msid:2091e6f5-2660-4dc5-b81d-628a069e9fae c06c63cf-b274-433e-bedc-d4849285d9c0
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46 98 99 118 119 120
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:0mjG
a=ice-pwd:cm0bGQv548oiJTjesVkg+b3R
a=ice-options:trickle
a=fingerprint:sha-256 58:A8:5D:EF:61:13:FD:17:6C:EB:52:29:01:21:5B:30:0B:F9:93:E0:86:C7:D0:CA:C6:EE:49:7A:65:EE:AF:3F
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:2091e6f5-2660-4dc5-b81d-628a069e9fae 28d6fedb-4cbe-4ad1-8e95-64d09f2a32fb
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:45 AV1/90000
a=fmtp:45 level-idx=5;profile=0;tier=0
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:98 VP9/90000
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:118 red/90000
a=rtpmap:119 rtx/90000
a=fmtp:119 apt=118
a=rtpmap:120 ulpfec/90000
a=ssrc-group:FID 1912089521 1535061193
a=ssrc:1912089521 cname:Q5p/cwdNJll+fpI0
a=ssrc:1535061193 cname:Q5p/cwdNJll+fpI0
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-ufrag:0mjG
a=ice-pwd:cm0bGQv548oiJTjesVkg+b3R
a=ice-options:trickle
a=fingerprint:sha-256 58:A8:5D:EF:61:13:FD:17:6C:EB:52:29:01:21:5B:30:0B:F9:93:E0:86:C7:D0:CA:C6:EE:49:7A:65:EE:AF:3F
a=setup:actpass
a=mid:2
a=sctp-port:5000
a=max-message-size:262144
"""

# Firefox 58: direction and fingerprint at session level, G722/8000/1.
FIREFOX = """\
v=0
o=mozilla...THIS_IS_SDPARTA-58.0.1 4934139885953732403 1 IN IP4 0.0.0.0
s=-
t=0 0
a=sendrecv
a=fingerprint:sha-256 EB:A9:3E:50:D7:E3:B3:86:0F:7B:01:C1:EB:D6:AF:E4:97:DE:15:05:A8:DE:7B:83:56:C7:4B:6E:9D:75:D4:17
a=group:BUNDLE sdparta_0
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 45274 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 192.168.99.58
a=candidate:0 1 UDP 2122187007 192.168.99.58 45274 typ host
a=candidate:0 2 UDP 2122187006 192.168.99.58 38612 typ host
a=sendrecv
a=end-of-candidates
a=extmap:1/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:f9b83487285016f7492197a5790ceee5
a=ice-ufrag:403a81e1
a=mid:sdparta_0
a=msid:{dee771c7-671a-451e-b847-f86f8e87c7d8} {12692dea-686c-47ca-b3e9-48f38fc92b78}
a=rtcp:38612 IN IP4 192.168.99.58
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=setup:actpass
a=ssrc:882128807 cname:{ed463ac5-dabf-44d4-8b9f-e14318427b2b}
"""

CAPTURES = {
    "pjsip-ice": PJSIP_ICE,
    "pjsip-microsip": PJSIP_MICROSIP,
    "pjsip-opus": PJSIP_OPUS,
    "baresip-srtp": BARESIP_SRTP,
    "baresip-ipv6": BARESIP_IPV6,
    "sipp-uac": SIPP_UAC,
    "asterisk-13": ASTERISK_13,
    "asterisk-1.6-video": ASTERISK_16_VIDEO,
    "asterisk-webrtc": ASTERISK_WEBRTC,
    "freeswitch": FREESWITCH,
    "freeswitch-hold-opus": FREESWITCH_HOLD_OPUS,
    "freeswitch-webrtc": FREESWITCH_WEBRTC,
    "chrome": CHROME,
    "firefox": FIREFOX,
}

# --- RFC 4317 (the s= line there holds a single space) -------------------------------

ALICE = """\
v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=\x20
c=IN IP4 host.atlanta.example.com
t=0 0
"""
BOB = """\
v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s=\x20
c=IN IP4 host.biloxi.example.com
t=0 0
"""
# §2.1, §2.2, §2.3 and §2.8 share this offer.
OFFER_2_1 = ALICE + """\
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 32
a=rtpmap:31 H261/90000
a=rtpmap:32 MPV/90000
"""
ANSWER_2_1 = BOB + """\
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 49170 RTP/AVP 32
a=rtpmap:32 MPV/90000
"""
ANSWER_2_2 = BOB + """\
m=audio 49172 RTP/AVP 0 8
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
m=video 0 RTP/AVP 31
a=rtpmap:31 H261/90000
"""
ANSWER_2_3 = BOB + """\
m=audio 49172 RTP/AVP 99
a=rtpmap:99 iLBC/8000
m=video 51374 RTP/AVP 31
a=rtpmap:31 H261/90000
"""
OFFER_2_4 = ALICE + """\
m=audio 49170 RTP/AVP 0 97
a=rtpmap:0 PCMU/8000
a=rtpmap:97 iLBC/8000
m=audio 49172 RTP/AVP 98
a=rtpmap:98 telephone-event/8000
a=sendonly
"""
OFFER_2_6 = ALICE + """\
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=audio 51372 RTP/AVP 97 101
a=rtpmap:97 iLBC/8000
a=rtpmap:101 telephone-event/8000
"""
ANSWER_2_8 = BOB + """\
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 49172 RTP/AVP 32
c=IN IP4 otherhost.biloxi.example.com
a=rtpmap:32 MPV/90000
"""
OFFER_3_1 = ALICE + """\
m=audio 49170 RTP/AVP 0 97
a=rtpmap:0 PCMU/8000
a=rtpmap:97 iLBC/8000
"""
ANSWER_3_1 = BOB.replace("c=IN IP4 host", "c=IN IP4 placeholder") + """\
m=audio 49172 RTP/AVP 97
a=rtpmap:97 iLBC/8000
a=sendonly
"""
SECOND_OFFER_3_1 = BOB.replace("2808844564 IN", "2808844565 IN") + """\
m=audio 49170 RTP/AVP 97
a=rtpmap:97 iLBC/8000
"""
SECOND_OFFER_4_1 = BOB.replace("2808844564 IN", "2808844565 IN") + """\
m=audio 49170 RTP/AVP 97
a=rtpmap:97 iLBC/8000
m=audio 48282 RTP/AVP 98
c=IN IP4 mediaserver.biloxi.example.com
a=rtpmap:98 telephone-event/8000
a=recvonly
"""
RFC_4317 = {
    "2.1-offer": OFFER_2_1, "2.1-answer": ANSWER_2_1, "2.2-answer": ANSWER_2_2,
    "2.3-answer": ANSWER_2_3, "2.4-offer": OFFER_2_4, "2.6-offer": OFFER_2_6,
    "2.8-answer": ANSWER_2_8, "3.1-offer": OFFER_3_1, "3.1-answer": ANSWER_3_1,
    "3.1-second-offer": SECOND_OFFER_3_1, "4.1-second-offer": SECOND_OFFER_4_1,
}  # fmt: skip


def sdp(text: str) -> SessionDescription:
    return parse_sdp(wire(text))


# --- parsing real traffic ------------------------------------------------------------


@pytest.mark.parametrize("text", [*CAPTURES.values(), *RFC_4317.values()],
                         ids=[*CAPTURES, *RFC_4317])
def test_real_descriptions_reproduce_byte_for_byte(text: str) -> None:
    description = sdp(text)
    assert bytes(description) == wire(text)
    assert parse_sdp(str(description)) == description


def test_bare_lf_and_trailing_blank_lines_are_accepted() -> None:
    assert parse_sdp(SIPP_UAC + "\n\n") == sdp(SIPP_UAC)


def test_pjsip_offer_fields() -> None:
    d = sdp(PJSIP_ICE)
    assert d.origin == Origin("-", "3798480436", 3798480436, "IN", "IP4", "10.0.3.15")
    assert d.session_name == "pjmedia"
    assert d.bandwidths == (Bandwidth("AS", 84),)
    assert d.times == (Timing(0, 0),)
    assert d.attribute("X-nat") == "0"
    (audio,) = d.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 55078, "RTP/AVP")
    assert audio.payload_types == (98, 97, 99, 104, 3, 0, 8, 9, 96)
    assert audio.bandwidths == (Bandwidth("TIAS", 64000),)
    assert audio.connection == Connection("IN", "IP4", "10.0.3.15")
    assert audio.rtcp == RtcpAttribute(51509, "IN", "IP4", "10.0.3.15")
    assert audio.rtcp_port == 51509
    assert audio.rtpmap(104) == Codec("iLBC", 8000, 104, fmtp="mode=30")
    assert audio.rtpmap(96) == Codec("telephone-event", 8000, 96, fmtp="0-16")
    assert audio.telephone_event() == 96
    assert audio.attribute("ice-ufrag") == "0b1bd86f"
    assert len(audio.attribute_values("candidate")) == 6
    assert d.direction(audio) is Direction.SENDRECV


def test_pjsip_ssrc_and_static_rtcp() -> None:
    d = sdp(PJSIP_MICROSIP)
    audio = d.media[0]
    assert audio.declared_direction is Direction.SENDRECV
    assert audio.attribute_values("ssrc") == ("1932486814 cname:1af30a2f01e36ab9",)
    assert [c.rtpmap_value for c in audio.codecs] == ["PCMA/8000", "PCMU/8000", "telephone-event/8000"]


def test_static_payload_types_resolve_without_rtpmap() -> None:
    audio = sdp(FREESWITCH).media[0]
    assert audio.rtpmap(8) == Codec("PCMA", 8000, 8)
    assert audio.rtpmap(0) == Codec("PCMU", 8000, 0)
    assert audio.rtpmap(3) == Codec("GSM", 8000, 3)
    assert audio.rtpmap(13) == Codec("CN", 8000, 13)
    assert audio.rtpmap(98) == Codec("G7221", 32000, 98, fmtp="bitrate=48000")
    assert audio.rtpmap(18) == Codec("G729", 8000, 18)  # not in the m= line but static
    assert audio.rtpmap(120) is None
    assert audio.ptime == 20
    assert audio.rtcp is None and audio.rtcp_port == 21157


def test_channels_and_fmtp_quotes_ipv6() -> None:
    d = sdp(BARESIP_IPV6)
    assert d.connection == Connection("IN", "IP6", "fde1:c0fe::7")
    audio, video = d.media
    assert audio.rtpmap(96) == Codec("speex", 32000, 96, 2, 'mode="6";vbr=off;cng=on')
    assert audio.rtcp_mux
    assert d.connection_address(video) == "fde1:c0fe::7"
    assert video.attribute("rtcp-fb") == "* nack pli"


def test_firefox_session_level_direction_and_rtpmap_with_one_channel() -> None:
    d = sdp(FIREFOX)
    assert d.attribute("group") == "BUNDLE sdparta_0"
    audio = d.media[0]
    assert audio.rtpmap(9) == Codec("G722", 8000, 9)
    assert audio.rtcp == RtcpAttribute(38612, "IN", "IP4", "192.168.99.58")
    assert d.direction(audio) is Direction.SENDRECV


def test_chrome_bundle_ice_dtls() -> None:
    d = sdp(CHROME)
    assert d.connection is None
    assert d.attribute("group") == "BUNDLE 0 1 2"
    assert d.attribute("msid-semantic") == " WMS 2091e6f5-2660-4dc5-b81d-628a069e9fae"
    audio, video, data = d.media
    assert [m.mid for m in d.media] == ["0", "1", "2"]
    assert audio.rtcp_mux and audio.attribute("setup") == "actpass"
    assert (audio.attribute("fingerprint") or "").startswith("sha-256 58:A8:5D")
    assert audio.telephone_event() == 110
    assert audio.telephone_event(8000) == 126
    assert audio.rtpmap(63) == Codec("red", 48000, 63, 2, "111/111")
    # 0.0.0.0 is the trickle-ICE placeholder here, not RFC 2543 hold.
    assert d.direction(audio) is Direction.SENDRECV
    assert video.attribute_values("ssrc-group") == ("FID 1912089521 1535061193",)
    assert (data.media, data.proto, data.formats) == ("application", "UDP/DTLS/SCTP", ("webrtc-datachannel",))
    assert data.payload_types == () and not data.is_rtp
    assert data.attribute("sctp-port") == "5000"


def test_srtp_crypto_attribute_survives() -> None:
    audio = sdp(BARESIP_SRTP).media[0]
    assert audio.proto == "RTP/SAVP"
    assert audio.attribute("crypto") == "1 AES_CM_128_HMAC_SHA1_80 inline:vXMep/SIW4iMD21StWgrmy024dJZfOAM7qFFJfsJ"
    assert audio.ptime == 20 and audio.attribute("minptime") == "20"


def test_multicast_connection_forms() -> None:
    assert Connection.parse("IN IP4 224.2.36.42/127") == Connection("IN", "IP4", "224.2.36.42", 127)
    assert Connection.parse("IN IP4 224.2.1.1/127/3") == Connection("IN", "IP4", "224.2.1.1", 127, 3)
    assert Connection.parse("IN IP6 FF15::101/3") == Connection("IN", "IP6", "FF15::101", None, 3)
    for text in ("IN IP4 224.2.1.1/127/3", "IN IP6 FF15::101/3", "IN IP4 host.example.com"):
        assert str(Connection.parse(text)) == text


def test_rfc8866_example_with_every_session_field() -> None:
    text = """\
v=0
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1
s=Call to John Smith
i=SDP Offer #1
u=http://www.jdoe.example.com/home.html
e=Jane Doe <jane@jdoe.example.com>
p=+1 617 555-6011
c=IN IP4 198.51.100.1
t=0 0
r=7d 1h 0 25h
z=2882844526 -1h 2898848070 0
k=prompt
m=audio 49170 RTP/AVP 0
i=voice
k=clear:secret
m=audio 49180/2 RTP/AVP 0
m=video 51372 RTP/AVP 99
c=IN IP6 2001:db8::2
a=rtpmap:99 h263-1998/90000
"""
    d = sdp(text)
    assert bytes(d) == wire(text)
    assert d.emails == ("Jane Doe <jane@jdoe.example.com>",)
    assert d.times == (Timing(0, 0, ("7d 1h 0 25h",)),)
    assert d.media[0].information == "voice" and d.media[0].encryption_key == "clear:secret"
    assert d.media[1].port_count == 2
    assert d.connection_address(d.media[2]) == "2001:db8::2"
    assert d.connection_address(d.media[0]) == "198.51.100.1"


# --- malformed input: exact errors ------------------------------------------------------

HEAD = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"

MALFORMED = [
    ("", "SDP must start with a v= line"),
    ("o=- 1 1 IN IP4 192.0.2.1\n", "SDP must start with a v= line"),
    ("v=1\n", "line 1: unsupported SDP version '1' (only 0 exists)"),
    ("v=0\nhello\n", "line 2: expected '<type>=<value>', got 'hello'"),
    ("v=0\ns=-\nt=0 0\n", "SDP has no o= line"),
    ("v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n", "SDP has no s= line"),
    ("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n", "SDP has no t= line"),
    ("v=0\no=- 1 IN IP4 192.0.2.1\n",
     ("line 2: o= line needs 6 fields (username sess-id sess-version nettype addrtype address),"
      " got 5")),
    ("v=0\no=- 1 x IN IP4 192.0.2.1\n", "line 2: o= sess-version 'x' is not a number"),
    (HEAD + "o=- 1 1 IN IP4 192.0.2.1\n", "line 6: second o= line"),
    (HEAD + "x=foo\n", "line 6: unknown line type 'x='"),
    (HEAD.replace("c=IN IP4 192.0.2.1", "c=IN IP4"),
     "line 4: c= line needs 3 fields (nettype addrtype address), got 2"),
    (HEAD.replace("192.0.2.1\nt", "224.0.0.1/300\nt"), "line 4: c= TTL 300 is out of range (0-255)"),
    (HEAD.replace("t=0 0", "t=0"), "line 5: t= line needs 2 fields (start-time stop-time), got 1"),
    ("v=0\no=- 1 1 IN IP4 a\ns=-\nr=1d 1h 0\nt=0 0\n", "line 4: r= line before any t= line"),
    (HEAD.replace("c=", "b=AS\nc="), "line 4: b= line 'AS' is not <bwtype>:<bandwidth>"),
    (HEAD + "a=\n", "line 6: attribute name '' is not a token"),
    (HEAD + "a=send recv\n", "line 6: attribute name 'send recv' is not a token"),
    (HEAD + "m=audio 4000 RTP/AVP\n", "line 6: m= line needs media, port, proto and at least one format"),
    (HEAD + "m=audio 70000 RTP/AVP 0\n", "line 6: m= port '70000' is not <port>[/<count>] with port 0-65535"),
    (HEAD + "m=audio 4000 RTP/AVP 0 128\n", "line 6: m= format '128' is not an RTP payload type (0-127)"),
    (HEAD + "m=audio 4000 RTP/AVP PCMU\n", "line 6: m= format 'PCMU' is not an RTP payload type (0-127)"),
    (HEAD + "m=audio 4000 RTP/AVP 0\nt=0 0\n", "line 7: t= line is not allowed after the first m= line"),
    (HEAD + "m=audio 4000 RTP/AVP 0\nc=IN IP4 a\nc=IN IP4 b\n",
     "line 8: second c= line in one media description"),
    (HEAD + "a=x\x00y\n", "line 6: expected '<type>=<value>', got 'a=x\\x00y'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_descriptions_are_400_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(SdpError) as caught:
        parse_sdp(text)
    assert caught.value.detail == message
    assert (caught.value.status, caught.value.reason) == (400, "Bad Request")
    assert isinstance(caught.value, SipParseError)


def test_undecodable_bytes_are_an_sdp_error() -> None:
    with pytest.raises(SdpError, match=r"^SDP is not UTF-8 text \(byte 6\)$"):
        parse_sdp(b"v=0\r\ns\xff=x\r\n")


def test_bad_optional_attribute_values_are_ignored() -> None:
    audio = sdp(HEAD + "m=audio 4000 RTP/AVP 0 96\na=ptime:twenty\na=rtcp:x\na=rtpmap:96 broken\n").media[0]
    assert audio.ptime is None and audio.rtcp is None and audio.rtcp_port == 4001
    assert audio.rtpmap(96) is None
    assert audio.codecs == (Codec("PCMU", 8000, 0),)


# --- direction --------------------------------------------------------------------------


def _one_audio(session_lines: str = "", media_lines: str = "", address: str = "192.0.2.1") -> SessionDescription:
    return sdp(HEAD.replace("192.0.2.1\nt", f"{address}\nt") + session_lines
               + "m=audio 4000 RTP/AVP 0\n" + media_lines)


@pytest.mark.parametrize(
    ("session_attr", "media_attr", "expected"),
    [
        ("", "", Direction.SENDRECV),
        ("a=sendonly\n", "", Direction.SENDONLY),
        ("a=sendonly\n", "a=recvonly\n", Direction.RECVONLY),
        ("", "a=inactive\n", Direction.INACTIVE),
    ],
)
def test_direction_defaults_and_inherits(session_attr: str, media_attr: str, expected: Direction) -> None:
    d = _one_audio(session_attr, media_attr)
    assert d.direction(d.media[0]) is expected


@pytest.mark.parametrize(
    ("declared", "held"),
    [
        ("", Direction.SENDONLY),
        ("a=sendrecv\n", Direction.SENDONLY),
        ("a=sendonly\n", Direction.SENDONLY),
        ("a=recvonly\n", Direction.INACTIVE),
        ("a=inactive\n", Direction.INACTIVE),
    ],
)
def test_connection_address_0000_is_rfc2543_hold(declared: str, held: Direction) -> None:
    d = _one_audio(media_lines=declared, address="0.0.0.0")
    assert d.direction(d.media[0]) is held


def test_direction_helpers() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDRECV.restrict(Direction.RECVONLY) is Direction.RECVONLY
    assert Direction.SENDONLY.restrict(Direction.RECVONLY) is Direction.INACTIVE


# --- offers ---------------------------------------------------------------------------


def test_default_offer() -> None:
    offer = create_offer("192.0.2.10", 20000, session_id=42, version=1)
    assert bytes(offer) == wire("""\
v=0
o=- 42 1 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 20000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
""")
    assert parse_sdp(bytes(offer)) == offer


def test_hold_reoffer_keeps_origin_and_bumps_version() -> None:
    first = create_offer("2001:db8::10", 20000, [PCMA], session_id="7", version=3)
    hold = next_version(create_offer("2001:db8::10", 20000, [PCMA], session_id="7", version=3,
                                     direction="sendonly", ptime=30))
    assert hold.origin == Origin("-", "7", 4, "IN", "IP6", "2001:db8::10")
    assert first.connection == Connection("IN", "IP6", "2001:db8::10")
    assert hold.media[0].attributes == (("rtpmap", "8 PCMA/8000"), ("ptime", "30"), ("sendonly", None))
    assert next_version(hold).origin.sess_version == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtp_port": 0}, "RTP port 0 is not 1-65535"),
        ({"codecs": [EVENTS]}, "an offer needs at least one audio codec"),
        ({"codecs": [PCMU, Codec("G722", 8000, 0)]}, "payload types must be distinct and 0-127, got [0, 0]"),
        ({"direction": "both"}, "'both' is not a media direction"),
        ({"local_ip": "a b"}, "local address 'a b' cannot go in a c= line"),
        ({"ptime": 0}, "ptime 0 must be positive"),
    ],
)
def test_offer_misuse_is_a_usage_error(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"local_ip": "192.0.2.10", "rtp_port": 20000, "session_id": 1, "version": 1}
    arguments.update(kwargs)
    with pytest.raises(SipUsageError) as caught:
        create_offer(**arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message


# --- answering ------------------------------------------------------------------------


def answer(offer: str, supported: tuple[Codec, ...] | list[Codec] = DEFAULT_CODECS,
           direction: str = "sendrecv") -> tuple[SessionDescription, NegotiatedMedia]:
    return negotiate_answer(sdp(offer), "192.0.2.10", 20000, supported,
                            session_id=42, version=1, local_direction=direction)


ANSWER_HEAD = "v=0\no=- 42 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\n"


def test_answer_to_pjsip_keeps_offerer_order_and_payload_types() -> None:
    result_answer, media = answer(PJSIP_ICE)
    assert bytes(result_answer) == wire(ANSWER_HEAD + """\
m=audio 20000 RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=ptime:20
a=sendrecv
""")
    assert media == NegotiatedMedia(
        remote_address="10.0.3.15", remote_rtp_port=55078, remote_rtcp_port=51509,
        codec=PCMU, telephone_event_payload_type=96, direction=Direction.SENDRECV, ptime=20,
    )


def test_offerer_preference_wins_over_ours() -> None:
    # FreeSWITCH lists PCMA first; we list PCMU first: RFC 3264 §6.1 keeps theirs.
    _, media = answer(FREESWITCH)
    assert media.codec == PCMA
    assert media.telephone_event_payload_type == 101
    assert media.remote_rtcp_port == 21157


def test_telephone_event_at_the_codec_clock_rate_is_chosen() -> None:
    result_answer, media = answer(PJSIP_OPUS)
    assert media.codec == PCMA and media.telephone_event_payload_type == 102
    assert result_answer.media[0].formats == ("8", "102")


def test_no_telephone_event_unless_both_sides_have_it() -> None:
    result_answer, media = answer(SIPP_UAC)
    assert media.codec == PCMA and media.telephone_event_payload_type is None
    assert result_answer.media[0].formats == ("8",)
    _, media = answer(ASTERISK_13, [PCMU])
    assert media.telephone_event_payload_type is None


def test_other_streams_are_rejected_with_port_zero_and_their_formats() -> None:
    result_answer, negotiated = answer(ASTERISK_16_VIDEO)
    assert bytes(result_answer) == wire(ANSWER_HEAD + """\
m=audio 20000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
m=video 0 RTP/AVP 31 34 98
""")
    assert negotiated.remote_address == "10.5.4.2"


def test_rfc4317_2_1_answered_by_us() -> None:
    result_answer, media = answer(OFFER_2_1)
    assert [(m.media, m.port, m.formats) for m in result_answer.media] == [
        ("audio", 20000, ("0",)), ("video", 0, ("31", "32"))]
    assert media.remote_address == "host.atlanta.example.com" and media.remote_rtp_port == 49170
    assert result_answer.times == (Timing(0, 0),)  # RFC 3264 §6: t= equals the offer's


def test_rfc4317_2_4_second_audio_stream_is_rejected() -> None:
    result_answer, media = answer(OFFER_2_4)
    assert [(m.port, m.formats) for m in result_answer.media] == [(20000, ("0",)), (0, ("98",))]
    assert media.telephone_event_payload_type is None


def test_rfc4317_2_6_the_first_stream_we_can_take_is_taken() -> None:
    result_answer, media = answer(OFFER_2_6, [ILBC, EVENTS])
    assert [(m.port, m.formats) for m in result_answer.media] == [(0, ("0",)), (20000, ("97", "101"))]
    assert media.codec == ILBC and media.remote_rtp_port == 51372
    assert media.telephone_event_payload_type == 101


def test_rfc4317_3_1_resume_after_hold() -> None:
    _, media = answer(SECOND_OFFER_3_1, [ILBC])
    assert media.direction is Direction.SENDRECV and media.remote_address == "host.biloxi.example.com"


def test_rfc4317_4_1_media_level_connection_overrides_session() -> None:
    offer = sdp(SECOND_OFFER_4_1)
    assert offer.connection_address(offer.media[1]) == "mediaserver.biloxi.example.com"
    assert offer.connection_address(offer.media[0]) == "host.biloxi.example.com"
    result_answer, negotiated = answer(SECOND_OFFER_4_1, [ILBC])
    assert [m.port for m in result_answer.media] == [20000, 0]
    assert negotiated.remote_rtp_port == 49170


OFFER_DIRECTIONS = ["sendrecv", "sendonly", "recvonly", "inactive"]
# RFC 3264 §6.1: offer -> the answer when we are willing to do everything,
# and when we are sending only (our own hold).
DIRECTION_TABLE = {
    ("sendrecv", "sendrecv"): "sendrecv", ("sendonly", "sendrecv"): "recvonly",
    ("recvonly", "sendrecv"): "sendonly", ("inactive", "sendrecv"): "inactive",
    ("sendrecv", "sendonly"): "sendonly", ("sendonly", "sendonly"): "inactive",
    ("recvonly", "sendonly"): "sendonly", ("inactive", "sendonly"): "inactive",
    ("sendrecv", "recvonly"): "recvonly", ("sendonly", "recvonly"): "recvonly",
    ("recvonly", "recvonly"): "inactive", ("inactive", "recvonly"): "inactive",
    ("sendrecv", "inactive"): "inactive", ("sendonly", "inactive"): "inactive",
    ("recvonly", "inactive"): "inactive", ("inactive", "inactive"): "inactive",
}  # fmt: skip


@pytest.mark.parametrize(("offered", "local"), list(DIRECTION_TABLE))
def test_answer_direction_table(offered: str, local: str) -> None:
    result_answer, media = answer(ASTERISK_13.replace("a=sendrecv", f"a={offered}"), direction=local)
    expected = Direction(DIRECTION_TABLE[offered, local])
    assert result_answer.direction(result_answer.media[0]) is expected
    assert result_answer.media[0].attributes[-1] == (expected.value, None)
    assert media.direction is expected


def test_legacy_hold_offer_is_answered_recvonly_and_we_send_nothing() -> None:
    result_answer, media = answer(ASTERISK_13.replace("172.17.0.2\nt", "0.0.0.0\nt"))
    assert media.remote_address == "0.0.0.0"
    assert media.direction is Direction.RECVONLY and not media.direction.sends
    assert result_answer.media[0].declared_direction is Direction.RECVONLY


def test_remote_ptime_is_what_we_send() -> None:
    _, media = answer(ASTERISK_13 + "a=ptime:30\n")
    assert media.ptime == 30


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (FREESWITCH_HOLD_OPUS, ("no common audio codec: offered opus/48000/2, telephone-event/8000;"
                                " supported PCMU/8000, PCMA/8000")),
        (CHROME, "no audio stream over a supported transport: offered UDP/TLS/RTP/SAVPF; supported RTP/AVP"),
        (BARESIP_SRTP, "no audio stream over a supported transport: offered RTP/SAVP; supported RTP/AVP"),
        (ASTERISK_WEBRTC, "no audio stream over a supported transport: offered RTP/SAVPF; supported RTP/AVP"),
        (FREESWITCH_WEBRTC, ("no audio stream over a supported transport: offered UDP/TLS/RTP/SAVPF;"
                             " supported RTP/AVP")),
        (HEAD, "the offer has no audio stream"),
        (HEAD + "m=audio 0 RTP/AVP 0\nm=video 5000 RTP/AVP 31\n", "the offer has no audio stream"),
    ],
    ids=["opus-only", "chrome", "baresip-srtp", "asterisk-webrtc", "freeswitch-webrtc", "no-media",
         "audio-disabled"],
)
def test_nothing_acceptable_is_488(offer: str, message: str) -> None:
    with pytest.raises(SdpError) as caught:
        answer(offer)
    assert caught.value.detail == message
    assert (caught.value.status, caught.value.reason) == (488, "Not Acceptable Here")


def test_missing_connection_is_400() -> None:
    with pytest.raises(SdpError) as caught:
        answer(SIPP_UAC.replace("c=IN IP4 127.0.1.1\n", ""))
    assert caught.value.detail == "the offer's audio stream has no c= line at media or session level"
    assert caught.value.status == 400


def test_answer_misuse_is_a_usage_error() -> None:
    with pytest.raises(SipUsageError, match=r"^'hold' is not a media direction$"):
        answer(SIPP_UAC, direction="hold")


# --- processing answers -------------------------------------------------------------------


def test_rfc4317_2_1_answer_processed_by_us() -> None:
    media = process_answer(sdp(OFFER_2_1), sdp(ANSWER_2_1))
    assert media == NegotiatedMedia(
        remote_address="host.biloxi.example.com", remote_rtp_port=49174, remote_rtcp_port=49175,
        codec=PCMU, telephone_event_payload_type=None, direction=Direction.SENDRECV, ptime=20,
    )


def test_rfc4317_2_2_first_answered_codec_is_sent() -> None:
    assert process_answer(sdp(OFFER_2_1), sdp(ANSWER_2_2)).codec == PCMU


def test_rfc4317_2_3_answer_may_renumber_a_dynamic_payload_type() -> None:
    media = process_answer(sdp(OFFER_2_1), sdp(ANSWER_2_3))
    assert media.codec == Codec("iLBC", 8000, 99)


def test_rfc4317_2_8_per_media_connection() -> None:
    media = process_answer(sdp(OFFER_2_1), sdp(ANSWER_2_8))
    assert media.remote_address == "host.biloxi.example.com"


def test_rfc4317_3_1_held_by_the_answerer() -> None:
    media = process_answer(sdp(OFFER_3_1), sdp(ANSWER_3_1))
    assert media.direction is Direction.RECVONLY
    assert media.remote_address == "placeholder.biloxi.example.com"
    assert media.codec == Codec("iLBC", 8000, 97)


def test_our_hold_answered_sendrecv_is_narrowed() -> None:
    offer = create_offer("192.0.2.10", 20000, session_id=1, version=2, direction="sendonly")
    media = process_answer(offer, sdp(ASTERISK_13))
    assert media.direction is Direction.SENDONLY
    assert media.telephone_event_payload_type == 101


@pytest.mark.parametrize(
    ("answer_text", "message", "status"),
    [
        (ANSWER_2_1.split("m=video")[0], "answer has 1 m= lines, the offer had 2 (RFC 3264 §6)", 400),
        (ANSWER_2_1.replace("m=video", "m=text"), "answer m= line 2 is text, the offer's is video", 400),
        (ANSWER_2_1.replace("m=audio 49174", "m=audio 0"), "the answer rejects the audio stream (port 0)", 488),
        (ANSWER_2_1.replace("49174 RTP/AVP", "49174 RTP/SAVP"),
         "the answer changes the audio transport from RTP/AVP to RTP/SAVP", 488),
        (ANSWER_2_1.replace("RTP/AVP 0\na=rtpmap:0 PCMU", "RTP/AVP 9\na=rtpmap:9 G722"),
         "answer format 9 (G722/8000) was not offered", 488),
        (ANSWER_2_1.replace("RTP/AVP 0\na=rtpmap:0 PCMU/8000", "RTP/AVP 96"),
         "answer format 96 has no rtpmap and is not a static payload type", 488),
        (ANSWER_2_1.replace("c=IN IP4 host.biloxi.example.com\n", ""),
         "the answer's audio stream has no c= line at media or session level", 400),
    ],
    ids=["count", "media-type", "rejected", "transport", "not-offered", "unknown-pt", "no-connection"],
)
def test_bad_answers(answer_text: str, message: str, status: int) -> None:
    with pytest.raises(SdpError) as caught:
        process_answer(sdp(OFFER_2_1), sdp(answer_text))
    assert (caught.value.detail, caught.value.status) == (message, status)


def test_answer_of_only_events_is_488() -> None:
    offer = create_offer("192.0.2.10", 20000, session_id=1, version=1)
    only_events = ASTERISK_13.replace("RTP/AVP 0 8 101", "RTP/AVP 101")
    with pytest.raises(SdpError, match="^the answer names no audio codec, only events or comfort noise$"):
        process_answer(offer, sdp(only_events))


# --- properties ---------------------------------------------------------------------------

TOKEN_ALPHABET = string.ascii_letters + string.digits + "!#$%&'*+-.^_`{|}~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=8)
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=16)
words = st.text(TOKEN_ALPHABET + ":/", min_size=1, max_size=12)
numbers = st.integers(0, 2**63)
addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
                      st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True))


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    addrtype = draw(st.sampled_from(["IP4", "IP6", "X25"]))
    address = draw(addresses)
    ttl = count = None
    if addrtype == "IP4" and draw(st.booleans()):
        ttl = draw(st.integers(0, 255))
        count = draw(st.one_of(st.none(), st.integers(1, 255)))
    elif addrtype == "IP6":
        count = draw(st.one_of(st.none(), st.integers(1, 255)))
    elif addrtype == "X25":
        address = draw(words)  # opaque: kept whole, slashes and all
    return Connection("IN", addrtype, address, ttl, count)


attributes = st.lists(st.tuples(tokens, st.one_of(st.none(), line_text)), max_size=5).map(tuple)
bandwidths = st.lists(st.builds(Bandwidth, tokens, st.integers(0, 10**9)), max_size=2).map(tuple)
optional_text = st.one_of(st.none(), line_text)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    if draw(st.booleans()):
        proto = draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "RTP/AVPF"]))
        formats = draw(st.lists(st.integers(0, 127).map(str), min_size=1, max_size=6))
    else:
        proto = draw(st.sampled_from(["UDP/DTLS/SCTP", "TCP/MSRP", "udp", "TCP/TLS/BFCP"]))
        formats = draw(st.lists(tokens, min_size=1, max_size=3))
    return MediaDescription(
        draw(st.sampled_from(["audio", "video", "application", "text", "message"])),
        draw(st.integers(0, 65535)),
        proto,
        tuple(formats),
        port_count=draw(st.one_of(st.none(), st.integers(1, 99999))),
        information=draw(optional_text),
        connection=draw(st.one_of(st.none(), connections())),
        bandwidths=draw(bandwidths),
        encryption_key=draw(optional_text),
        attributes=draw(attributes),
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    timings = st.builds(Timing, numbers, numbers, st.lists(line_text, max_size=2).map(tuple))
    return SessionDescription(
        origin=Origin(draw(words), str(draw(numbers)), draw(numbers), "IN",
                      draw(st.sampled_from(["IP4", "IP6"])), draw(addresses)),
        session_name=draw(line_text),
        information=draw(optional_text),
        uri=draw(optional_text),
        emails=tuple(draw(st.lists(line_text, max_size=2))),
        phones=tuple(draw(st.lists(line_text, max_size=2))),
        connection=draw(st.one_of(st.none(), connections())),
        bandwidths=draw(bandwidths),
        times=tuple(draw(st.lists(timings, min_size=1, max_size=2))),
        time_zones=draw(optional_text),
        encryption_key=draw(optional_text),
        attributes=draw(attributes),
        media=tuple(draw(st.lists(media_descriptions(), max_size=4))),
    )


@settings(max_examples=300)
@given(session_descriptions())
def test_generated_descriptions_round_trip(description: SessionDescription) -> None:
    assert parse_sdp(bytes(description)) == description
    assert parse_sdp(str(description)) == description
    for media in description.media:  # the accessors never raise on what parses
        _ = (description.direction(media), media.codecs, media.ptime, media.rtcp_port,
             media.telephone_event(8000))


def _parses_or_sdp_error(data: bytes | str) -> None:
    try:
        description = parse_sdp(data)
    except SdpError:
        return
    for media in description.media:
        _ = (description.direction(media), media.codecs, media.rtcp, media.ptime, media.maxptime)
    try:
        negotiate_answer(description, "192.0.2.10", 20000, session_id=1, version=1)
    except SdpError:
        pass


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_random_input_parses_or_raises_sdp_error(data: bytes | str) -> None:
    _parses_or_sdp_error(data)


line_types = st.sampled_from(list("vosiuepcbtrzkamx"))


@settings(max_examples=500)
@given(st.lists(st.tuples(line_types, st.text(max_size=30)), max_size=12))
def test_random_lines_parse_or_raise_sdp_error(lines: list[tuple[str, str]]) -> None:
    _parses_or_sdp_error("v=0\r\n" + "".join(f"{kind}={value}\r\n" for kind, value in lines))


@settings(max_examples=500)
@given(st.sampled_from(list(CAPTURES.values())), st.data())
def test_mutated_captures_parse_or_raise_sdp_error(text: str, data: st.DataObject) -> None:
    lines = text.split("\n")
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = data.draw(st.one_of(st.text(max_size=40), st.just(lines[index][:-1]),
                                       st.just(lines[index].replace(" ", "  "))))
    _parses_or_sdp_error("\r\n".join(lines))


@settings(max_examples=200)
@given(
    st.lists(st.sampled_from([PCMU, PCMA, Codec("G722", 8000, 9), Codec("opus", 48000, 111, 2)]),
             min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from([PCMU, PCMA, Codec("G722", 8000, 9), Codec("opus", 48000, 96, 2)]),
             min_size=1, max_size=4, unique=True),
    st.booleans(), st.booleans(),
    st.sampled_from(OFFER_DIRECTIONS), st.sampled_from(OFFER_DIRECTIONS),
)
def test_offerer_and_answerer_agree(
    offered: list[Codec], supported: list[Codec], offer_events: bool, accept_events: bool,
    offer_direction: str, answer_direction: str,
) -> None:
    offer = create_offer("192.0.2.1", 4000, offered + [EVENTS] * offer_events,
                         session_id=1, version=1, direction=offer_direction)
    try:
        result_answer, theirs = negotiate_answer(
            parse_sdp(bytes(offer)), "192.0.2.2", 5000, supported + [EVENTS] * accept_events,
            session_id=2, version=1, local_direction=answer_direction)
    except SdpError as error:
        assert error.status == 488
        assert not any(o.matches(s) for o in offered for s in supported)
        return
    ours = process_answer(offer, parse_sdp(bytes(result_answer)))
    assert ours.codec.matches(theirs.codec)
    assert ours.codec.payload_type == theirs.codec.payload_type
    assert ours.codec.matches(next(o for o in offered if any(o.matches(s) for s in supported)))
    assert ours.telephone_event_payload_type == theirs.telephone_event_payload_type
    # RFC 4733 events ride at the codec's clock rate: 8 kHz events never pair with opus.
    paired = offer_events and accept_events and ours.codec.clock_rate == EVENTS.clock_rate
    assert (ours.telephone_event_payload_type is not None) == paired
    assert ours.direction is theirs.direction.reversed()
    assert (ours.remote_address, ours.remote_rtp_port) == ("192.0.2.2", 5000)
    assert (theirs.remote_address, theirs.remote_rtp_port) == ("192.0.2.1", 4000)
