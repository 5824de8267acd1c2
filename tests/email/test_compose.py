"""Tests of threading helpers, composing replies, the auto-acknowledge policy, HTML text and language."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import pytest

from cosmo.email.compose import ack_refusal, compose, fill, quote
from cosmo.email.htmltext import html_to_text
from cosmo.email.language import detect_language
from cosmo.email.mime import parse_message
from cosmo.email.settings import AutoAckSettings
from cosmo.email.threads import (
    MAX_REFERENCES,
    case_token,
    choose_by_message_ids,
    reply_references,
    reply_subject,
    same_correspondent,
    with_case_token,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NEVER = AutoAckSettings().never_to
OURS = {"support@example.com", "billing@example.com"}


def test_case_tokens_and_subjects() -> None:
    assert case_token("Re: printer [#1234]") == 1234
    assert case_token("[#1] and later [#22]") == 22
    assert case_token("#1234 without brackets") is None
    assert with_case_token("Printer", 7) == "Printer [#7]"
    assert with_case_token("Printer [#7]", 7) == "Printer [#7]"
    assert reply_subject("RE: AW: Re[2]: Printer [#7]", 7) == "Re: Printer [#7]"
    assert reply_subject("", 7) == "Re: (no subject) [#7]"


def test_reply_references() -> None:
    assert reply_references("<p@x>", ("<a@x>", "<b@x>")) == ("<a@x>", "<b@x>", "<p@x>")
    assert reply_references("<p@x>", (), ("<a@x>",)) == ("<a@x>", "<p@x>")
    assert reply_references(None, ()) == ()
    chain = tuple(f"<{i}@x>" for i in range(40))
    trimmed = reply_references("<p@x>", chain)
    assert len(trimmed) == MAX_REFERENCES
    assert trimmed[0] == "<0@x>" and trimmed[-1] == "<p@x>"


def test_choose_case_by_the_most_specific_id() -> None:
    assert choose_by_message_ids(("<irt@x>", "<ref2@x>", "<ref1@x>"), {"<ref1@x>": 1, "<irt@x>": 2}) == 2
    assert choose_by_message_ids(("<z@x>",), {"<ref1@x>": 1}) is None


def test_same_correspondent() -> None:
    assert same_correspondent("Jane@Customer.example", "jane@customer.example")
    assert same_correspondent("boss@customer.example", "jane@customer.example")
    assert not same_correspondent("eve@elsewhere.example", "jane@customer.example")
    assert not same_correspondent(None, "jane@customer.example")


def test_compose_a_threaded_reply() -> None:
    out = compose(case_id=7, from_addr="support@example.com", from_name="Example Support",
                  to=["jane@customer.example"], subject="Re: Printer", body="Fixed it.\nBye", now=NOW,
                  parent_id="<p@customer.example>", parent_references=("<root@customer.example>",))
    msg = email.message_from_bytes(out.raw, policy=policy.default)
    assert msg["From"] == "Example Support <support@example.com>"
    assert msg["To"] == "jane@customer.example"
    assert msg["Subject"] == "Re: Printer [#7]"
    assert msg["In-Reply-To"] == "<p@customer.example>"
    assert msg["References"] == "<root@customer.example> <p@customer.example>"
    assert msg["Message-ID"] == out.message_id and out.message_id.endswith("@example.com>")
    assert ".case7@" in out.message_id
    assert msg["Auto-Submitted"] is None
    assert msg.get_content().replace("\r\n", "\n") == "Fixed it.\nBye\n"
    assert b"\r\n" in out.raw and b"\n\n" not in out.raw.replace(b"\r\n", b"")


def test_compose_an_acknowledgement() -> None:
    out = compose(case_id=8, from_addr="support@example.com", from_name="", to=["a@b.example"],
                  subject="We got it [#8]", body="ok", now=NOW, automatic=True, subject_as_is=True)
    msg = email.message_from_bytes(out.raw, policy=policy.default)
    assert msg["Subject"] == "We got it [#8]"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["In-Reply-To"] is None


def test_templates_and_quotes() -> None:
    assert fill("Hello $name, case #$case $unknown ${x}", {"name": "Jane", "case": 7}) == \
        "Hello Jane, case #7 $unknown ${x}"
    assert fill("$name.__class__", {"name": "Jane"}) == "Jane.__class__"
    assert quote("one\n\ntwo\n", "jane@customer.example", NOW) == (
        "On Mon, 23 Nov 2026 10:00:00 +0000, jane@customer.example wrote:\n> one\n>\n> two"
    )


def _parsed(**headers: str) -> object:
    head = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return parse_message(f"From: jane@customer.example\r\nSubject: x\r\n{head}\r\nbody\r\n".encode())


@pytest.mark.parametrize(("headers", "mail_from", "sender", "why"), [
    ({}, "jane@customer.example", "jane@customer.example", None),
    ({"Auto_Submitted": "no"}, "jane@customer.example", "jane@customer.example", None),
    ({"Auto_Submitted": "auto-replied"}, "j@c.example", "j@c.example", "Auto-Submitted: auto-replied"),
    ({"List_Id": "<users.lists.example>"}, "j@c.example", "j@c.example", "mailing list"),
    ({"List_Unsubscribe": "<mailto:u@lists.example>"}, "j@c.example", "j@c.example", "mailing list"),
    ({"Precedence": "bulk"}, "j@c.example", "j@c.example", "Precedence: bulk"),
    ({"X_Auto_Response_Suppress": "All"}, "j@c.example", "j@c.example", "X-Auto-Response-Suppress: all"),
    ({}, "", "j@c.example", "null envelope sender (a bounce)"),
    ({}, "<>", "j@c.example", "null envelope sender (a bounce)"),
    ({}, "x@c.example", "noreply@c.example", "sender noreply@c.example looks automatic"),
    ({}, "x@c.example", "No-Reply@c.example", "sender No-Reply@c.example looks automatic"),
    ({}, "x@c.example", "MAILER-DAEMON@c.example", "sender MAILER-DAEMON@c.example looks automatic"),
    ({}, "x@c.example", "support@example.com", "sent from one of our own addresses"),
    ({}, "x@c.example", None, "no sender address"),
])
def test_when_not_to_acknowledge(headers: dict[str, str], mail_from: str, sender: str | None, why: str | None) -> None:
    parsed = _parsed(**headers)
    assert ack_refusal(parsed, mail_from, sender, own_addresses=OURS, never_to=NEVER) == why  # type: ignore[arg-type]


def test_html_to_text() -> None:
    assert html_to_text("<p>a<br>b</p><script>evil()</script><!-- c --><p>d &amp; e</p>") == "a\nb\n\nd & e"
    assert html_to_text('<a href="mailto:x@y">x@y</a> <a href="javascript:alert(1)">click</a>') == "x@y click"
    assert html_to_text("<p>x</p><pre>  keep\n   spaces</pre>") == "x\n\n  keep\n   spaces"
    assert html_to_text("<table><tr><td>1</td><td>2</td></tr></table>") == "1 2"
    assert html_to_text("<div>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("") == ""


def test_language_guess() -> None:
    assert detect_language("Hello, my printer is not working and I would like a refund please.") == "en"
    assert detect_language("Guten Tag, die Rechnung ist nicht richtig und ich bitte um Korrektur.") == "de"
    assert detect_language("Bonjour, je ne suis pas content de la facture, merci de vérifier.") == "fr"
    assert detect_language("Hola, tengo un problema con la factura, gracias por su ayuda.") == "es"
    assert detect_language("ok") is None
    assert detect_language("whatever words", "de-CH, en") == "de"
