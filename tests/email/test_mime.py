"""Tests of cosmo.email.mime: what an agent reads of real-world (and broken) mail."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.email.mime import decode_text, message_ids, parse_message

THUNDERBIRD = (
    b"Message-ID: <9f1c2a4e-1b2c-4d5e-8f90-123456789abc@customer.example>\r\n"
    b"Date: Mon, 23 Nov 2026 09:15:02 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"User-Agent: Mozilla Thunderbird\r\n"
    b"Content-Language: de-DE\r\n"
    b"To: support@example.com\r\n"
    b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Customer.Example>\r\n"
    b"Subject: =?UTF-8?Q?Rechnung_f=C3=BCr_November?=\r\n"
    b"In-Reply-To: <179542160190.9435.1.case7@example.com>\r\n"
    b"References: <root@customer.example>\r\n <179542160190.9435.1.case7@example.com>\r\n"
    b"Content-Type: multipart/mixed; boundary=\"------------mixed\"\r\n"
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--------------mixed\r\n"
    b"Content-Type: multipart/alternative; boundary=\"------------alt\"\r\n"
    b"\r\n"
    b"--------------alt\r\n"
    b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Guten Tag,\r\n\r\ndie Rechnung ist zu hoch. Bitte pr\xc3\xbcfen Sie das.\r\n"
    b"--------------alt\r\n"
    b"Content-Type: text/html; charset=UTF-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"<html><body><p>Guten Tag,</p><p>die Rechnung ist zu hoch.</p></body></html>\r\n"
    b"--------------alt--\r\n"
    b"--------------mixed\r\n"
    b"Content-Type: application/pdf; name=\"Rechnung 11.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"Rechnung 11.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcfsj6IK\r\n"
    b"--------------mixed--\r\n"
)


def test_multipart_mail_from_a_mail_program() -> None:
    parsed = parse_message(THUNDERBIRD)
    assert parsed.message_id == "<9f1c2a4e-1b2c-4d5e-8f90-123456789abc@customer.example>"
    assert parsed.from_addr == "juergen@customer.example"
    assert parsed.from_name == "Jürgen Müller"
    assert parsed.subject == "Rechnung für November"
    assert parsed.to == ("support@example.com",)
    assert parsed.date == datetime(2026, 11, 23, 8, 15, 2, tzinfo=UTC)
    assert parsed.text_source == "plain"
    # The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
    assert parsed.text == "Guten Tag,\n\ndie Rechnung ist zu hoch. Bitte prüfen Sie das."
    assert [(a.filename, a.content_type, a.data[:5]) for a in parsed.attachments] == [
        ("Rechnung 11.pdf", "application/pdf", b"%PDF-"),
    ]
    assert parsed.in_reply_to == ("<179542160190.9435.1.case7@example.com>",)
    assert parsed.references == ("<root@customer.example>", "<179542160190.9435.1.case7@example.com>")
    assert parsed.thread_ids == ("<179542160190.9435.1.case7@example.com>", "<root@customer.example>")
    assert parsed.content_language == "de-DE"
    assert parsed.problems == ()


def test_html_only_becomes_safe_text() -> None:
    raw = (
        b"From: shop@vendor.example\r\nTo: support@example.com\r\nSubject: Order\r\n"
        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <o1@vendor.example>\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n"
        b"<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        b"<body><h1>Order&nbsp;42</h1><p>Caf\xe9 <b>cr\xe8me</b></p>"
        b"<ul><li>one</li><li>two</li></ul><a href=\"https://vendor.example/o/42\">track it</a>"
        b"<img src=cid:x alt=\"logo\"></body></html>"
    )
    parsed = parse_message(raw)
    assert parsed.text_source == "html"
    assert parsed.text == "Order 42\n\nCafé crème\n\n- one\n- two\ntrack it <https://vendor.example/o/42>[logo]"
    assert "alert" not in parsed.text and "color" not in parsed.text
    assert parsed.problems == ()


def test_unknown_charset_is_read_and_noted() -> None:
    raw = (
        b"From: a@b.example\r\nTo: support@example.com\r\nSubject: x\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b"Message-ID: <c@b.example>\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\nna\xefve\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "naïve\n"
    assert parsed.problems == ("unknown charset 'x-unknown-42'; read as Windows-1252",)


def test_wrong_charset_falls_back() -> None:
    assert decode_text("grüße".encode(), "us-ascii") == ("grüße", "text is not valid us-ascii; read as UTF-8")
    assert decode_text(b"\xff\xfe", None) == ("ÿþ", "text without charset is not UTF-8; read as Windows-1252")
    assert decode_text(b"plain", "utf-8") == ("plain", None)


def test_missing_headers_and_empty_body_are_noted() -> None:
    parsed = parse_message(b"Subject: hello\r\n\r\n")
    assert parsed.from_addr is None
    assert parsed.problems == ("no From address", "no Message-ID header", "no Date header", "empty body")


def test_no_header_section() -> None:
    parsed = parse_message(b"just some text\r\nwithout any header\r\n")
    assert "no header section" in parsed.problems or any("MIME" in p for p in parsed.problems)
    assert "just some text" in parsed.text or parsed.text == ""


def test_broken_multipart_keeps_the_text() -> None:
    raw = (
        b"From: a@b.example\r\nTo: support@example.com\r\nSubject: broken\r\nMessage-ID: <m@b.example>\r\n"
        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\nsome text but no boundary at all\r\n"
    )
    parsed = parse_message(raw)
    assert any(problem.startswith("MIME: ") for problem in parsed.problems)
    # Whatever the parser makes of it, nothing is thrown away silently.
    assert "some text" in parsed.text or parsed.attachments


def test_attached_message_and_inline_image() -> None:
    raw = (
        b"From: a@b.example\r\nTo: support@example.com\r\nSubject: fwd\r\nMessage-ID: <f@b.example>\r\n"
        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--B\r\nContent-Type: image/png\r\nContent-ID: <img1@b.example>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: other@c.example\r\nSubject: original\r\n\r\nthe original\r\n"
        b"--B--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "see below"
    assert [(a.filename, a.content_type, a.inline, a.content_id) for a in parsed.attachments] == [
        ("part-1.png", "image/png", True, "<img1@b.example>"),
        ("part-2.eml", "message/rfc822", False, None),
    ]
    assert b"the original" in parsed.attachments[1].data


def test_text_is_cut_at_the_limit() -> None:
    raw = b"From: a@b.example\r\nSubject: big\r\n\r\n" + b"x" * 5000
    parsed = parse_message(raw, max_text_chars=1000)
    assert len(parsed.text) == 1000
    assert "text cut at 1000 characters (the stored message keeps all of it)" in parsed.problems


def test_message_ids() -> None:
    assert message_ids(" <a@b> junk <c@d>\r\n\t<e@f>") == ("<a@b>", "<c@d>", "<e@f>")
    assert message_ids(None) == ()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed.text, str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    b"From: ", b"=?utf-8?q?=C3=A9?=", b"<a@b>", b"\r\n", b"Content-Type: multipart/mixed; boundary=x",
    b"--x", b"Content-Transfer-Encoding: base64", b"charset=\"bogus\"", b"\xff", b": ", b"Subject:", b"\r\n\r\n",
    b"text/html", b"<p>", b"Date: 32 Foo 99", b"Reply-To: <", b"To: a@b, ,@c",
]), max_size=60))
def test_mime_like_garbage_parses_without_raising(parts: list[bytes]) -> None:
    parse_message(b"".join(parts))
