"""Writing mail out: agents' replies and automatic acknowledgements.

Every message carries a fresh ``Message-ID`` in our domain, and when it
answers a customer's message, ``In-Reply-To`` and ``References``
(RFC 5322 §3.6.4, :func:`cosmo.email.threads.reply_references`) and the case
token in the subject, so the customer's mail program threads it and their
answer comes back to the case.  Acknowledgements are marked
``Auto-Submitted: auto-replied`` (RFC 3834 §5) and ask Exchange not to
answer them (``X-Auto-Response-Suppress``); they are sent with a null
envelope sender, as RFC 3834 recommends, so a bounce of an automatic answer
goes nowhere.

Templates use ``$name`` placeholders (:class:`string.Template`): nothing in a
template is evaluated, and an unknown placeholder stays as written.

Whether an acknowledgement may be sent at all is :func:`ack_refusal`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import charset
from email.header import Header
from email.message import Message
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid
from string import Template

from cosmo.email.mime import ParsedEmail
from cosmo.email.threads import reply_references, reply_subject, with_case_token

__all__ = ["Outgoing", "ack_refusal", "compose", "fill", "quote"]

_BULK = frozenset({"bulk", "list", "junk"})
_UTF8_QP = charset.Charset("utf-8")
_UTF8_QP.body_encoding = charset.QP  # 7-bit safe for any relay, readable in the raw file
_SMTP = compat32.clone(linesep="\r\n")
_QUOTE_LINES = 200


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A composed message: its bytes and the fields the store keeps of it."""

    raw: bytes
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    text: str


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` with ``$name`` placeholders filled in from ``values``; unknown ones stay."""
    return Template(template).safe_substitute({k: "" if v is None else str(v) for k, v in values.items()})


def quote(text: str, sender: str | None, when: datetime | None) -> str:
    """The customer's text quoted below a reply (``> `` lines, at most 200)."""
    lines = text.strip("\n").splitlines()
    cut = len(lines) > _QUOTE_LINES
    quoted = "\n".join(f"> {line}" if line else ">" for line in lines[:_QUOTE_LINES])
    intro = f"On {format_datetime(when)}, {sender or 'you'} wrote:" if when else f"{sender or 'You'} wrote:"
    return f"{intro}\n{quoted}" + ("\n> [...]" if cut else "")


def compose(
    *,
    case_id: int,
    from_addr: str,
    from_name: str,
    to: Sequence[str],
    subject: str,
    body: str,
    now: datetime,
    parent_id: str | None = None,
    parent_references: Sequence[str] = (),
    parent_in_reply_to: Sequence[str] = (),
    automatic: bool = False,
    subject_as_is: bool = False,
) -> Outgoing:
    """A reply on case ``case_id`` as bytes ready for the relay.

    ``subject`` is the subject answered (it becomes ``Re: subject [#case]``),
    or with ``subject_as_is`` the subject to send (the case token is added when missing).
    """
    domain = from_addr.rpartition("@")[2] or "localhost"
    message_id = make_msgid(idstring=f"case{case_id}", domain=domain)
    references = reply_references(parent_id, parent_references, parent_in_reply_to)
    final_subject = with_case_token(subject, case_id) if subject_as_is else reply_subject(subject, case_id)
    # Written with the compat32 classes: the same bytes as policy.default would give for a
    # plain-text message, at a fifth of the cost (this runs for every acknowledgement).
    msg = Message()
    msg["MIME-Version"] = "1.0"
    msg.set_payload(body if body.endswith("\n") else body + "\n", _UTF8_QP)  # text/plain, quoted-printable
    msg["From"] = formataddr((from_name, from_addr), charset="utf-8") if from_name else from_addr
    msg["To"] = ", ".join(to)
    if final_subject.isascii():
        msg["Subject"] = final_subject
    else:  # RFC 2047 encoded words; compat32 messages take a Header (typeshed says str only)
        msg["Subject"] = Header(final_subject, "utf-8")  # type: ignore[assignment]
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if parent_id is not None:
        msg["In-Reply-To"] = parent_id
    if references:
        msg["References"] = " ".join(references)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    return Outgoing(
        raw=msg.as_bytes(policy=_SMTP), message_id=message_id, in_reply_to=parent_id, references=references,
        subject=final_subject, from_addr=from_addr, from_name=from_name, to=tuple(to), text=body,
    )


def ack_refusal(parsed: ParsedEmail, mail_from: str | None, sender: str | None, *, own_addresses: set[str],
                never_to: Sequence[str]) -> str | None:
    """Why no acknowledgement may answer this message (``None``: one may).

    RFC 3834 §2: never answer automatic mail, lists or bounces.
    """
    if sender is None:
        return "no sender address"
    if mail_from is not None and not mail_from.strip("<> "):
        return "null envelope sender (a bounce)"
    auto = (parsed.header("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if parsed.header("List-Id") or parsed.header("List-Unsubscribe") or parsed.header("List-Post"):
        return "mailing list"
    if (parsed.header("Precedence") or "").strip().lower() in _BULK:
        return f"Precedence: {parsed.header('Precedence')}"
    suppress = (parsed.header("X-Auto-Response-Suppress") or "").lower()
    if "all" in suppress or "autoreply" in suppress:
        return f"X-Auto-Response-Suppress: {suppress}"
    if sender.lower() in own_addresses:
        return "sent from one of our own addresses"
    local = sender.partition("@")[0].lower()
    for pattern in never_to:
        if re.fullmatch(pattern, local, re.IGNORECASE):
            return f"sender {sender} looks automatic"
    return None
