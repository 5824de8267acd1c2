"""Threading: which case a message belongs to, and the headers that keep a reply in its thread.

A customer's message joins an existing case when

1. its ``In-Reply-To`` or ``References`` (RFC 5322 §3.6.4) name a message of
   the case — ours or theirs; the most specific identifier wins
   (``In-Reply-To``, then ``References`` from the newest); or
2. its subject carries the case token ``[#1234]`` and the sender is the
   case's customer or writes from the same domain (a token alone is easy to
   type, so a stranger's mail does not join someone else's case).

A closed case is reopened by a message that arrives within ``reopen_within_s``
of its closing; later, the message opens a new case.

Replies carry ``In-Reply-To`` (the message answered) and ``References`` (the
parent's references plus the parent), and the token in the subject, so the
customer's mail program and Cosmo both keep the thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = [
    "MAX_REFERENCES",
    "case_token",
    "choose_by_message_ids",
    "reply_references",
    "reply_subject",
    "same_correspondent",
    "strip_reply_prefix",
    "with_case_token",
]

MAX_REFERENCES = 20
"""Identifiers kept in a reply's ``References``: the first (the thread's root) and the newest."""

_TOKEN = re.compile(r"\[#(\d{1,12})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|antw|odp|ref|rif|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def case_token(subject: str) -> int | None:
    """The case number in a subject's ``[#1234]`` token (the last one, if several)."""
    found = _TOKEN.findall(subject)
    return int(found[-1]) if found else None


def with_case_token(subject: str, case_id: int) -> str:
    """``subject`` carrying the token of case ``case_id`` exactly once (any other token is left alone)."""
    token = f"[#{case_id}]"
    if token in subject:
        return subject
    return f"{subject} {token}".strip()


def strip_reply_prefix(subject: str) -> str:
    """``subject`` without its ``Re:``/``AW:``/``SV:``... prefixes."""
    return _REPLY_PREFIX.sub("", subject).strip()


def reply_subject(subject: str, case_id: int) -> str:
    """``Re: subject [#case]``, without stacking ``Re:``/``AW:``/``SV:`` prefixes."""
    base = strip_reply_prefix(subject) or "(no subject)"
    return with_case_token(f"Re: {base}", case_id)


def reply_references(parent_id: str | None, parent_references: Sequence[str],
                     parent_in_reply_to: Sequence[str] = ()) -> tuple[str, ...]:
    """``References`` of a reply to a message (RFC 5322 §3.6.4).

    The parent's ``References`` (or, lacking them, its single ``In-Reply-To``)
    followed by the parent's own identifier; trimmed to :data:`MAX_REFERENCES`
    keeping the first and the newest.
    """
    chain = list(parent_references)
    if not chain and len(parent_in_reply_to) == 1:
        chain = list(parent_in_reply_to)
    if parent_id is not None:
        chain.append(parent_id)
    unique: list[str] = []
    for mid in chain:
        if mid not in unique:
            unique.append(mid)
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1):]]
    return tuple(unique)


def choose_by_message_ids(thread_ids: Sequence[str], known: Mapping[str, int]) -> int | None:
    """The case of the most specific identifier in ``thread_ids`` that ``known`` maps to a case."""
    for mid in thread_ids:
        case_id = known.get(mid)
        if case_id is not None:
            return case_id
    return None


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def same_correspondent(sender: str | None, case_address: str | None) -> bool:
    """True when ``sender`` may continue a case with ``case_address`` by its subject token alone."""
    if not sender or not case_address:
        return False
    sender, case_address = sender.lower(), case_address.lower()
    return sender == case_address or _domain(sender) == _domain(case_address)
