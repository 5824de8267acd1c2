"""Tests of :mod:`cosmo.sip.dialog`: dialog state, in-dialog requests, routing, CSeq order.

One call is followed from both ends: Alice (192.0.2.10) calls Bob through two
record-routing proxies, p1 next to Alice and p2 next to Bob.  Bob's UAS dialog
is built from the INVITE as it reaches him; Alice's UAC dialog from the INVITE
she sent and Bob's 200 (whose Record-Route the proxies copied unchanged).
"""

from __future__ import annotations

import logging
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosmo.sip.dialog import (
    Dialog,
    DialogState,
    dialog_id_of_request,
    dialog_id_of_response,
)
from cosmo.sip.errors import SipParseError, SipUsageError
from cosmo.sip.message import SipRequest, SipResponse, make_response, parse_message
from cosmo.sip.uri import SipUri, parse_sip_uri

from .conftest import TORTURE_MISSING, torture_messages, wire

CALL_ID = "a84b4c76e66710@pc33.example.com"
ALICE_TAG = "9fxced76sl"
BOB_TAG = "8321234356"
ALICE_CONTACT = "<sip:alice@192.0.2.10:5060;transport=udp>"
BOB_CONTACT = "<sip:bob@192.0.2.20:5060>"

INVITE_SENT = f"""INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport
Route: <sip:p1.example.net;lr>
Max-Forwards: 70
From: "Alice" <sip:alice@example.com>;tag={ALICE_TAG}
To: <sip:bob@example.com>
Call-ID: {CALL_ID}
CSeq: 314159 INVITE
Contact: {ALICE_CONTACT}
Content-Length: 0

"""

INVITE_RECEIVED = f"""INVITE sip:bob@192.0.2.20 SIP/2.0
Via: SIP/2.0/UDP p2.example.net;branch=z9hG4bK-p2
Via: SIP/2.0/UDP p1.example.net;branch=z9hG4bK-p1
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport=5060;received=192.0.2.10
Record-Route: <sip:p2.example.net;lr>
Record-Route: <sip:p1.example.net;lr>
Max-Forwards: 68
From: "Alice" <sip:alice@example.com>;tag={ALICE_TAG}
To: <sip:bob@example.com>
Call-ID: {CALL_ID}
CSeq: 314159 INVITE
Contact: {ALICE_CONTACT}
Content-Length: 0

"""

# The proxies copied the Record-Route into the 2xx; p1 wrote it as one list.
OK_RECEIVED = f"""SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport=5060;received=192.0.2.10
Record-Route: <sip:p2.example.net;lr>, <sip:p1.example.net;lr>
From: "Alice" <sip:alice@example.com>;tag={ALICE_TAG}
To: <sip:bob@example.com>;tag={BOB_TAG}
Call-ID: {CALL_ID}
CSeq: 314159 INVITE
Contact: {BOB_CONTACT}
Content-Length: 0

"""


def request(text: str) -> SipRequest:
    message = parse_message(wire(text))
    assert isinstance(message, SipRequest)
    return message


def response(text: str) -> SipResponse:
    message = parse_message(wire(text))
    assert isinstance(message, SipResponse)
    return message


def uas() -> Dialog:
    return Dialog.from_uas(request(INVITE_RECEIVED), BOB_TAG, BOB_CONTACT)


def uac() -> Dialog:
    return Dialog.from_uac(request(INVITE_SENT), response(OK_RECEIVED))


def over_the_wire(message: SipRequest) -> SipRequest:
    """``message`` as the peer parses it."""
    return request(bytes(message).decode().replace("\r\n", "\n"))


# --- creation (RFC 3261 §12.1) --------------------------------------------------------------


def test_the_uas_dialog_keeps_the_record_route_order() -> None:
    dialog = uas()
    assert dialog == Dialog(
        call_id=CALL_ID,
        local_tag=BOB_TAG,
        remote_tag=ALICE_TAG,
        local_uri="<sip:bob@example.com>",
        remote_uri='"Alice" <sip:alice@example.com>',
        remote_target=SipUri(host="192.0.2.10", user="alice", port=5060, params=(("transport", "udp"),)),
        route_set=["<sip:p2.example.net;lr>", "<sip:p1.example.net;lr>"],
        local_seq=0,
        remote_seq=314159,
        local_contact=BOB_CONTACT,
        secure=False,
        state=DialogState.EARLY,
        is_uac=False,
    )
    assert dialog.id == (CALL_ID, BOB_TAG, ALICE_TAG)


def test_the_uac_dialog_reverses_the_record_route_order() -> None:
    dialog = uac()
    assert dialog == Dialog(
        call_id=CALL_ID,
        local_tag=ALICE_TAG,
        remote_tag=BOB_TAG,
        local_uri='"Alice" <sip:alice@example.com>',
        remote_uri="<sip:bob@example.com>",
        remote_target=SipUri(host="192.0.2.20", user="bob", port=5060),
        route_set=["<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>"],
        local_seq=314159,
        remote_seq=None,
        local_contact=ALICE_CONTACT,
        secure=False,
        state=DialogState.EARLY,
        is_uac=True,
    )
    assert dialog.id == (CALL_ID, ALICE_TAG, BOB_TAG)


def test_a_sips_request_uri_makes_a_secure_dialog() -> None:
    invite = request(INVITE_RECEIVED.replace("INVITE sip:bob@192.0.2.20", "INVITE sips:bob@192.0.2.20"))
    assert Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT).secure
    sent = request(INVITE_SENT.replace("INVITE sip:bob@example.com", "INVITE sips:bob@example.com"))
    assert Dialog.from_uac(sent, response(OK_RECEIVED)).secure


def test_a_response_without_a_to_tag_creates_no_dialog() -> None:
    untagged = response(OK_RECEIVED.replace(f";tag={BOB_TAG}", ""))
    with pytest.raises(SipParseError) as info:
        Dialog.from_uac(request(INVITE_SENT), untagged)
    assert (str(info.value), info.value.status) == ("response creating a dialog has no To tag", 400)


def test_a_dialog_needs_a_contact_for_its_remote_target() -> None:
    no_contact = response(OK_RECEIVED.replace(f"Contact: {BOB_CONTACT}\n", ""))
    with pytest.raises(SipParseError) as info:
        Dialog.from_uac(request(INVITE_SENT), no_contact)
    assert str(info.value) == "missing Contact"
    with pytest.raises(SipParseError) as info:
        Dialog.from_uas(request(INVITE_RECEIVED.replace(f"Contact: {ALICE_CONTACT}\n", "")), BOB_TAG, BOB_CONTACT)
    assert (str(info.value), info.value.status) == ("missing Contact", 400)


@pytest.mark.skipif(not torture_messages(), reason=TORTURE_MISSING)
def test_rfc_4475_inv2543_has_no_contact_to_make_a_dialog_from() -> None:
    # RFC 2543 let an INVITE leave Contact out; RFC 3261 §8.1.1.8 requires it.
    invite = parse_message(torture_messages()["inv2543"])
    assert isinstance(invite, SipRequest)
    with pytest.raises(SipParseError) as info:
        Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT)
    assert str(info.value) == "missing Contact"


# --- requests within the dialog (RFC 3261 §12.2.1.1) -------------------------------------------


def test_create_request_takes_the_next_local_cseq_and_loose_routes() -> None:
    dialog = uac()
    bye = dialog.create_request("BYE")
    assert (bye.method, bye.uri) == ("BYE", SipUri(host="192.0.2.20", user="bob", port=5060))
    assert list(bye.headers) == [
        ("Route", "<sip:p1.example.net;lr>"),
        ("Route", "<sip:p2.example.net;lr>"),
        ("From", f'"Alice" <sip:alice@example.com>;tag={ALICE_TAG}'),
        ("To", f"<sip:bob@example.com>;tag={BOB_TAG}"),
        ("Call-ID", CALL_ID),
        ("CSeq", "314160 BYE"),
    ]
    assert dialog.local_seq == 314160
    assert dialog.next_hop() == parse_sip_uri("sip:p1.example.net;lr")


def test_create_request_adds_contact_body_and_extra_headers() -> None:
    dialog = uac()
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", extra=(("Supported", "timer"),))
    assert reinvite.headers.get_all("CSeq") == ["314160 INVITE"]
    assert reinvite.headers.get("Contact") == ALICE_CONTACT
    assert list(reinvite.headers)[-2:] == [("Supported", "timer"), ("Content-Type", "application/sdp")]
    assert reinvite.body == b"v=0\r\n"
    info = dialog.create_request("INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    assert info.headers.get("CSeq") == "314161 INFO"
    assert info.headers.get("Content-Type") == "application/dtmf-relay"


def test_ack_and_cancel_reuse_the_cseq_they_are_given() -> None:
    dialog = uac()
    reinvite = dialog.create_request("INVITE")
    ack = dialog.create_request("ACK", cseq=reinvite.cseq.seq)
    cancel = dialog.create_request("CANCEL", cseq=reinvite.cseq.seq)
    assert (ack.headers.get("CSeq"), cancel.headers.get("CSeq")) == ("314160 ACK", "314160 CANCEL")
    assert "Contact" not in ack.headers and "Contact" not in cancel.headers
    assert dialog.local_seq == 314160
    assert dialog.create_request("BYE").headers.get("CSeq") == "314161 BYE"


def test_the_uas_numbers_its_own_requests_from_one() -> None:
    dialog = uas()
    assert [dialog.create_request(m).headers.get("CSeq") for m in ("INFO", "BYE")] == ["1 INFO", "2 BYE"]
    bye = dialog.create_request("BYE")
    assert bye.uri == SipUri(host="192.0.2.10", user="alice", port=5060, params=(("transport", "udp"),))
    assert bye.headers.get_all("Route") == ["<sip:p2.example.net;lr>", "<sip:p1.example.net;lr>"]
    assert bye.headers.get("From") == f"<sip:bob@example.com>;tag={BOB_TAG}"
    assert bye.headers.get("To") == f'"Alice" <sip:alice@example.com>;tag={ALICE_TAG}'


def strict_dialog(route_set: list[str]) -> Dialog:
    return Dialog(
        call_id=CALL_ID, local_tag=ALICE_TAG, remote_tag=BOB_TAG,
        local_uri="<sip:alice@example.com>", remote_uri="<sip:bob@example.com>",
        remote_target=parse_sip_uri("sip:user@remoteua"), route_set=route_set, local_seq=7,
    )


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    # The example of RFC 3261 §12.2.1.1: proxy1 is an RFC 2543 (strict) router.
    dialog = strict_dialog(["<sip:proxy1>", "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>"])
    bye = dialog.create_request("BYE")
    assert bye.start_line() == "BYE sip:proxy1 SIP/2.0"
    assert bye.headers.get_all("Route") == [
        "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"]
    assert dialog.next_hop() == parse_sip_uri("sip:proxy1")
    # The dialog itself is unchanged: the next request is built the same way.
    assert dialog.create_request("BYE").headers.get_all("Route") == bye.headers.get_all("Route")


def test_loose_routing_keeps_the_remote_target_as_request_uri() -> None:
    dialog = strict_dialog(["<sip:proxy1;lr>", "<sip:proxy2>"])
    bye = dialog.create_request("BYE")
    assert bye.start_line() == "BYE sip:user@remoteua SIP/2.0"
    assert bye.headers.get_all("Route") == ["<sip:proxy1;lr>", "<sip:proxy2>"]


def test_without_a_route_set_the_request_goes_to_the_remote_target() -> None:
    dialog = strict_dialog([])
    bye = dialog.create_request("BYE")
    assert (bye.start_line(), bye.headers.get_all("Route")) == ("BYE sip:user@remoteua SIP/2.0", [])
    assert dialog.next_hop() == parse_sip_uri("sip:user@remoteua")


def test_requests_from_one_end_belong_to_the_dialog_of_the_other() -> None:
    alice, bob = uac(), uas()
    for sender, receiver in ((alice, bob), (bob, alice)):
        sent = over_the_wire(sender.create_request("INFO"))
        assert dialog_id_of_request(sent) == receiver.id
        assert receiver.receive_request(sent)


# --- requests received (RFC 3261 §12.2.2) ----------------------------------------------------


def in_dialog(method: str, seq: int) -> SipRequest:
    return request(f"""{method} sip:bob@192.0.2.20:5060 SIP/2.0
Via: SIP/2.0/UDP p2.example.net;branch=z9hG4bK-{method}{seq}
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-a{method}{seq}
Max-Forwards: 69
From: "Alice" <sip:alice@example.com>;tag={ALICE_TAG}
To: <sip:bob@example.com>;tag={BOB_TAG}
Call-ID: {CALL_ID}
CSeq: {seq} {method}
Content-Length: 0

""")


def test_requests_out_of_cseq_order_are_refused() -> None:
    dialog = uas()  # remote CSeq 314159 from the INVITE
    assert dialog.receive_request(in_dialog("INFO", 314159)) is False
    assert dialog.receive_request(in_dialog("INFO", 314165)) is True  # gaps are allowed
    assert dialog.remote_seq == 314165
    assert dialog.receive_request(in_dialog("INFO", 314165)) is False
    assert dialog.receive_request(in_dialog("BYE", 314160)) is False
    assert dialog.remote_seq == 314165


def test_ack_and_cancel_are_exempt_from_the_cseq_order() -> None:
    dialog = uas()
    assert dialog.receive_request(in_dialog("INFO", 314160))
    assert dialog.receive_request(in_dialog("ACK", 314159))
    assert dialog.receive_request(in_dialog("CANCEL", 314159))
    assert dialog.remote_seq == 314160


def test_the_first_request_received_sets_an_empty_remote_cseq() -> None:
    dialog = uac()
    assert dialog.remote_seq is None
    assert dialog.receive_request(in_dialog("BYE", 1))
    assert dialog.remote_seq == 1
    assert not dialog.receive_request(in_dialog("BYE", 1))


@given(st.lists(st.sampled_from(["INFO", "UPDATE", "INVITE", "ACK", "MESSAGE", "OPTIONS"]), max_size=12))
def test_every_request_created_is_in_order_at_the_peer_and_a_replay_never_is(methods: list[str]) -> None:
    alice, bob = uac(), uas()
    sent = []
    for method in methods:
        message = alice.create_request(method, cseq=alice.local_seq if method == "ACK" else None)
        sent.append(over_the_wire(message))
        assert bob.receive_request(sent[-1])
    for message in sent:
        assert bob.receive_request(message) is (message.method == "ACK")


# --- target refresh (RFC 3261 §12.2.1.2, §12.2.2) --------------------------------------------


def test_refresh_target_takes_the_new_contact() -> None:
    dialog = uas()
    reinvite = in_dialog("INVITE", 314160)
    reinvite.headers.add("Contact", "<sip:alice@198.51.100.4:5062;ob>")
    dialog.refresh_target(reinvite)
    assert dialog.remote_target == parse_sip_uri("sip:alice@198.51.100.4:5062;ob")
    alice = uac()
    answer = make_response(over_the_wire(alice.create_request("UPDATE")), 200)
    answer.headers.add("Contact", "<sip:bob@198.51.100.9>")
    alice.refresh_target(answer)
    assert alice.remote_target == parse_sip_uri("sip:bob@198.51.100.9")


def test_refresh_target_keeps_the_target_without_a_usable_contact(caplog: pytest.LogCaptureFixture) -> None:
    dialog = uas()
    before = dialog.remote_target
    dialog.refresh_target(in_dialog("INFO", 314160))
    assert dialog.remote_target == before
    reinvite = in_dialog("INVITE", 314161)
    reinvite.headers.add("Contact", "<tel:+15555550100>")
    with caplog.at_level(logging.INFO, logger="cosmo.sip.dialog"):
        dialog.refresh_target(reinvite)
    assert dialog.remote_target == before
    assert caplog.messages == [
        f"dialog {CALL_ID}: ignoring bad Contact: unsupported URI scheme 'tel'"]


# --- state -----------------------------------------------------------------------------------

LEGAL = {
    (DialogState.EARLY, DialogState.CONFIRMED),
    (DialogState.EARLY, DialogState.TERMINATED),
    (DialogState.CONFIRMED, DialogState.TERMINATED),
}


@pytest.mark.parametrize(("old", "new"), list(product(DialogState, DialogState)))
def test_state_moves(old: DialogState, new: DialogState) -> None:
    dialog = uas()
    dialog.state = old
    if old == new or (old, new) in LEGAL:
        dialog.set_state(new)
        assert dialog.state == new
    else:
        with pytest.raises(SipUsageError) as info:
            dialog.set_state(new)
        assert str(info.value) == f"dialog {CALL_ID}: illegal transition {old.value} -> {new.value}"
        assert dialog.state == old


def test_a_dialog_lives_from_early_to_confirmed_to_terminated() -> None:
    dialog = uac()
    dialog.set_state(DialogState.CONFIRMED)
    dialog.set_state(DialogState.TERMINATED)
    with pytest.raises(SipUsageError) as info:
        dialog.set_state(DialogState.CONFIRMED)
    assert str(info.value) == f"dialog {CALL_ID}: illegal transition terminated -> confirmed"


# --- dialog ids ------------------------------------------------------------------------------


def test_dialog_ids_of_messages() -> None:
    assert dialog_id_of_request(in_dialog("BYE", 314160)) == uas().id
    assert dialog_id_of_response(response(OK_RECEIVED)) == uac().id
    assert dialog_id_of_request(request(INVITE_RECEIVED)) is None  # no To tag: not in a dialog
    trying = make_response(request(INVITE_RECEIVED), 100)
    assert dialog_id_of_response(trying) is None


def test_a_dialog_with_an_rfc_2543_peer_has_an_empty_remote_tag() -> None:
    # RFC 3261 §12.1.1: a From without a tag counts as a null tag.
    invite = request(INVITE_RECEIVED.replace(f";tag={ALICE_TAG}", ""))
    dialog = Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT)
    assert dialog.id == (CALL_ID, BOB_TAG, "")
    bye = in_dialog("BYE", 314160)
    bye.headers.set("From", '"Alice" <sip:alice@example.com>')
    assert dialog_id_of_request(bye) == dialog.id


def test_requests_to_an_rfc_2543_peer_carry_no_empty_tag() -> None:
    invite = request(INVITE_RECEIVED.replace(f";tag={ALICE_TAG}", ""))
    dialog = Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT)
    bye = dialog.create_request("BYE")
    assert bye.headers.get("To") == '"Alice" <sip:alice@example.com>'
    assert bye.to.tag is None
