"""Reading a stored message: headers, the text an agent reads, attachments, and what was wrong.

Theory of operation
-------------------
:func:`parse_message` reads raw RFC 5322 bytes with the standard library's
``email`` package and ``policy.default`` and returns a :class:`ParsedEmail`.
Mail from the wild is often broken, so the rule (after h11's "parse or raise
our own error, never anything else") is stricter still: *parse, never
raise*.  Whatever cannot be read is noted in ``problems`` in words an
operator understands, and the best reading is kept:

* a header that ``policy.default`` cannot parse is decoded from its raw text
  (RFC 2047 encoded words, else as is);
* the text is the first ``text/plain`` body, else the first ``text/html``
  turned into safe text (:mod:`cosmo.email.htmltext`), else nothing;
* a part's charset that Python does not know, or that does not fit its
  bytes, falls back to UTF-8 and then Windows-1252 (which maps every byte),
  with the problem noted;
* every other leaf part is an attachment (its bytes, name and type); an
  attached message (``message/rfc822``) is one attachment, not walked into;
* MIME defects the parser found (a missing boundary, a bad
  Content-Transfer-Encoding...) are listed; so are a missing ``From``,
  ``Date`` or ``Message-ID`` and an empty body.
"""

from __future__ import annotations

import codecs
import email
import email.errors
import email.header
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Literal

from cosmo.email.htmltext import html_to_text

__all__ = ["POLICY", "AttachmentPart", "ParsedEmail", "decode_text", "message_ids", "parse_message"]

log = logging.getLogger(__name__)

TextSource = Literal["plain", "html", "none"]

_PARSE_ERRORS = (
    ValueError, TypeError, IndexError, KeyError, AttributeError, LookupError, UnicodeError, AssertionError,
    email.errors.MessageError,
)
"""What the ``email`` package raises on broken input (its header registry is not picky about its own errors)."""

class _HeaderClasses(HeaderRegistry):
    """``policy.default``'s header registry, remembering the class it makes for each header name.

    CPython's registry builds a new class on every lookup (``type(...)`` in
    ``HeaderRegistry.__getitem__``), several times per message; the classes are
    the same, only made once here.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = policy.default.clone(header_factory=_HeaderClasses())
"""``policy.default`` (RFC 5322 headers, ``EmailMessage``), with the header classes made once."""

_MSG_ID = re.compile(r"<[^<>\s]+>")
_WS = re.compile(r"\s+")
_MAX_PARTS = 500
_MAX_HEADERS = 200
_MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """One attachment of a message: its bytes and what the message says about it."""

    index: int
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """A message as the e-mail channel uses it.  Addresses are lower case; texts are decoded."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str | None
    from_name: str
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    text_source: TextSource
    attachments: tuple[AttachmentPart, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()
    content_language: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), decoded."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def reply_address(self) -> str | None:
        """Where an answer goes: ``Reply-To`` when given, else ``From``."""
        return self.reply_to or self.from_addr

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this one answers, most specific first: ``In-Reply-To``, then ``References`` newest first."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)


@dataclass
class _Reader:
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


def message_ids(text: str | None) -> tuple[str, ...]:
    """The ``<id@host>`` message identifiers in a header value (RFC 5322 §3.6.4), in order."""
    if not text:
        return ()
    return tuple(_MSG_ID.findall(text))


def decode_text(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """``data`` decoded by ``charset``; returns the text and the problem met, if any.

    An unknown charset, or bytes that do not fit it, fall back to UTF-8 and
    then to Windows-1252 (which decodes every byte).
    """
    problem = None
    if charset:
        name = charset.strip().strip('"').lower()
        try:
            codecs.lookup(name)
        except LookupError:
            problem = f"unknown charset {charset!r}"
        else:
            try:
                return data.decode(name), None
            except UnicodeDecodeError:
                problem = f"text is not valid {charset}"
            except _PARSE_ERRORS:  # some codecs raise other errors on bad input
                problem = f"text is not valid {charset}"
    try:
        text = data.decode("utf-8")
        return text, (f"{problem}; read as UTF-8" if problem else None)
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace")
    return text, f"{problem or 'text without charset is not UTF-8'}; read as Windows-1252"


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    try:
        return [(str(name), str(value)) for name, value in msg.raw_items()]
    except _PARSE_ERRORS:
        return []


def _decode_raw(value: str) -> str:
    """An RFC 2047 header value decoded without the header registry (the fallback for broken headers)."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except _PARSE_ERRORS:
        return value


def _unfold(value: str) -> str:
    """A header value without its line folding (RFC 5322 §2.2.3)."""
    return value.replace("\r\n", "").replace("\n", "") if "\n" in value else value


def _addresses(msg: Message, name: str, raw: list[str], reader: _Reader) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs of an address header (all its occurrences).

    Read from the raw text with ``email.utils.getaddresses`` (encoded words
    hold no commas, so display names are decoded after splitting); only when
    that finds no address does the header registry look, noting what is wrong.
    """
    if not raw:
        return []
    pairs = getaddresses([_unfold(value) for value in raw])
    out = [(_decode_raw(display) if "=?" in display else display, address.lower())
           for display, address in pairs if "@" in address]
    if out:
        return out
    try:
        header = msg.get(name)
        addresses = getattr(header, "addresses", None) if header is not None else None
        if addresses is not None:
            return [(a.display_name or "", a.addr_spec.lower()) for a in addresses
                    if a.addr_spec and "@" in a.addr_spec]
    except _PARSE_ERRORS as exc:
        reader.note(f"header {name} cannot be parsed ({type(exc).__name__}): {_unfold(raw[0])[:80]!r}")
    return []


def _defect_text(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    detail = str(defect)
    return f"{words} ({detail})" if detail and detail != "None" else words


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except _PARSE_ERRORS:
        return "application/octet-stream"


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except _PARSE_ERRORS:
        return None
    return None if name is None else _WS.sub(" ", str(name)).strip() or None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except _PARSE_ERRORS:
        return None


def _payload_bytes(part: Message, reader: _Reader) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except _PARSE_ERRORS as exc:
        reader.note(f"a {_content_type(part)} part cannot be decoded ({type(exc).__name__}); kept raw")
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


def _part_text(part: Message, reader: _Reader) -> str:
    data = _payload_bytes(part, reader)
    try:
        charset = part.get_content_charset()
    except _PARSE_ERRORS:
        charset = None
    text, problem = decode_text(data, charset)
    if problem:
        reader.note(problem)
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A leaf part and what its headers say, read once."""

    part: Message
    content_type: str
    disposition: str | None
    filename: str | None
    content_id: str | None
    alternative: bool
    """Inside a ``multipart/alternative``: another rendering of the body."""


def _leaves(part: Message, depth: int = 0, alternative: bool = False) -> Iterator[_Leaf]:
    """Leaf parts in order; an attached message is a leaf (its own parts are its business)."""
    if depth > _MAX_DEPTH:
        return
    content_type = _content_type(part)
    if part.is_multipart() and not content_type.startswith("message/"):
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    yield from _leaves(sub, depth + 1, content_type == "multipart/alternative")
        return
    yield _Leaf(part, content_type, _disposition(part), _filename(part), _content_id(part), alternative)


def _all_defects(msg: Message, reader: _Reader, depth: int = 0) -> None:
    for defect in getattr(msg, "defects", ()):
        reader.note(f"MIME: {_defect_text(defect)}")
    if depth < _MAX_DEPTH and msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _all_defects(sub, reader, depth + 1)


def _choose_body(leaves: list[_Leaf]) -> tuple[_Leaf | None, TextSource]:
    texts = [leaf for leaf in leaves if leaf.content_type in ("text/plain", "text/html")
             and leaf.disposition != "attachment" and leaf.filename is None]
    for leaf in texts:
        if leaf.content_type == "text/plain":
            return leaf, "plain"
    for leaf in texts:
        if leaf.content_type == "text/html":
            return leaf, "html"
    return None, "none"


def _date(value: str | None, reader: _Reader) -> datetime | None:
    if value is None:
        reader.note("no Date header")
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except _PARSE_ERRORS:
        parsed = None
    if parsed is None:
        reader.note("Date header cannot be read")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_message(raw: bytes, *, max_text_chars: int = 1_000_000) -> ParsedEmail:
    """Read raw message bytes (see the module documentation).  Never raises."""
    reader = _Reader()
    try:
        return _parse(raw, reader, max_text_chars)
    except Exception as exc:  # the last line of defence: a message is never lost to a parser bug
        log.warning("message of %d bytes could not be parsed; kept as text", len(raw), exc_info=True)
        reader.note(f"message cannot be parsed ({type(exc).__name__}: {exc}); shown as raw text")
        text, _ = decode_text(raw[:max_text_chars], None)
        return ParsedEmail(
            message_id=None, in_reply_to=(), references=(), from_addr=None, from_name="", reply_to=None,
            to=(), cc=(), subject="", date=None, text=text, text_source="plain", problems=tuple(reader.problems),
        )


def _parse(raw: bytes, reader: _Reader, max_text_chars: int) -> ParsedEmail:
    if not raw.strip():
        reader.note("empty message")
    msg = email.message_from_bytes(raw, policy=POLICY)
    _all_defects(msg, reader)
    raw_headers = _raw_headers(msg)
    headers = [(header_name, _decode_raw(value) if "=?" in value else _unfold(value))
               for header_name, value in raw_headers[:_MAX_HEADERS]]
    if not headers and raw.strip():
        reader.note("no header section")
    first: dict[str, str] = {}
    for header_name, value in headers:
        first.setdefault(header_name.lower(), value)
    raw_by_name: dict[str, list[str]] = {}
    for header_name, value in raw_headers:
        raw_by_name.setdefault(header_name.lower(), []).append(value)

    def addresses(name: str) -> list[tuple[str, str]]:
        return _addresses(msg, name, raw_by_name.get(name, []), reader)

    senders = addresses("from")
    if not senders:
        reader.note("no From address")
    from_name, from_addr = senders[0] if senders else ("", None)
    reply_to = next((address for _, address in addresses("reply-to")), None)
    to = tuple(address for _, address in addresses("to"))
    cc = tuple(address for _, address in addresses("cc"))

    # Identifiers, subject, date and language are read from the raw text: cheaper than the
    # header registry, and just as strict (a message-id is whatever sits between < and >).
    message_id = next(iter(message_ids(first.get("message-id"))), None)
    if message_id is None:
        reader.note("no Message-ID header")
    in_reply_to = message_ids(first.get("in-reply-to"))
    references = message_ids(first.get("references"))
    subject = _WS.sub(" ", first.get("subject", "")).strip()
    date = _date(first.get("date"), reader)
    content_language = first.get("content-language")

    leaves = list(_leaves(msg))
    if len(leaves) > _MAX_PARTS:
        reader.note(f"{len(leaves)} MIME parts; only the first {_MAX_PARTS} are read")
        leaves = leaves[:_MAX_PARTS]
    body, source = _choose_body(leaves)
    text = ""
    if body is not None:
        text = _part_text(body.part, reader)
        if source == "html":
            text = html_to_text(text)
    attachments: list[AttachmentPart] = []
    for leaf in leaves:
        if leaf is body:
            continue
        part, content_type, name = leaf.part, leaf.content_type, leaf.filename
        if name is None and leaf.disposition != "attachment" and content_type in ("text/plain", "text/html") \
                and leaf.alternative:
            continue  # the other rendering of the body
        if content_type.startswith("message/"):
            data = part.as_bytes(policy=POLICY) if not part.is_multipart() else _embedded(part)
        else:
            data = _payload_bytes(part, reader)
        if not data and name is None:
            continue
        index = len(attachments) + 1
        attachments.append(AttachmentPart(
            index=index,
            filename=name or _default_name(index, content_type),
            content_type=content_type,
            data=data,
            inline=leaf.disposition == "inline" or (leaf.disposition is None and leaf.content_id is not None),
            content_id=leaf.content_id,
        ))
    if not text.strip() and not attachments:
        reader.note("empty body")
    if len(text) > max_text_chars:
        reader.note(f"text cut at {max_text_chars} characters (the stored message keeps all of it)")
        text = text[:max_text_chars]
    return ParsedEmail(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to,
        to=to,
        cc=cc,
        subject=subject,
        date=date,
        text=text,
        text_source=source,
        attachments=tuple(attachments),
        headers=tuple(headers),
        problems=tuple(reader.problems),
        content_language=content_language,
    )


def _embedded(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        try:
            return inner.as_bytes(policy=POLICY) if isinstance(inner, EmailMessage) else inner.as_bytes()
        except _PARSE_ERRORS:
            return str(inner).encode("utf-8", errors="replace")
    return b""


def _content_id(part: Message) -> str | None:
    try:
        value = part.get("content-id")
    except _PARSE_ERRORS:
        return None
    ids = message_ids(str(value)) if value is not None else ()
    return ids[0] if ids else None


_EXTENSIONS = {
    "text/plain": "txt", "text/html": "html", "text/calendar": "ics", "application/pdf": "pdf",
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "message/rfc822": "eml",
    "message/delivery-status": "txt",
}


def _default_name(index: int, content_type: str) -> str:
    return f"part-{index}.{_EXTENSIONS.get(content_type, 'bin')}"
