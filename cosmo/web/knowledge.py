"""Knowledge-base suggestions for a screen-pop: articles whose tags match what the
customer asked for.

The words come from what the caller chose or said in the IVR (the values the
flow stored, not their names) and an e-mail's subject.  An article scores 3
per word of its tags found there and 1 per word of its title; the queue's name
breaks ties, and when nothing matches at all, the articles tagged with the
queue are suggested instead.  The articles are
few (hundreds), so they live in memory and scoring is a set intersection per
article, cheap enough for the pop's hot path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from cosmo.store.web import Article

__all__ = ["KnowledgeIndex", "words_of"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset({
    "a", "an", "and", "are", "at", "be", "by", "can", "do", "for", "from", "have", "how", "i", "in", "is",
    "it", "me", "my", "no", "not", "of", "on", "or", "our", "please", "re", "fw", "fwd", "the", "this", "to",
    "was", "what", "when", "where", "why", "with", "you", "your", "yes",
})
TAG_WEIGHT = 3
TITLE_WEIGHT = 1


def words_of(text: str) -> set[str]:
    """The meaningful words of ``text``, lower case (no stop words, no single letters)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP}


def _values(value: object) -> Iterable[str]:
    """The text of every leaf value of IVR data (keys are variable names, not the caller's words)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from _values(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _values(inner)


class KnowledgeIndex:
    """The articles in memory, for :meth:`suggest`.  :meth:`replace` after every edit."""

    def __init__(self, articles: Sequence[Article] = ()) -> None:
        self._entries: list[tuple[Article, frozenset[str], frozenset[str]]] = []
        self.replace(articles)

    def replace(self, articles: Sequence[Article]) -> None:
        """Use ``articles`` from now on."""
        entries = []
        for article in articles:
            tags: set[str] = set()
            for tag in article.tags:
                tags |= words_of(tag)
            entries.append((article, frozenset(tags), frozenset(words_of(article.title))))
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def suggest(self, *, ivr: object = None, subject: str | None = None, queue: str | None = None,
                limit: int = 3) -> list[Article]:
        """The best ``limit`` articles for a work item (best first; ties by title)."""
        strong: set[str] = set()
        for text in _values(ivr):
            strong |= words_of(text)
        if subject:
            strong |= words_of(subject)
        weak = words_of(queue) if queue else set()
        if not strong and not weak:
            return []
        scored = []
        for article, tags, title in self._entries:
            strength = TAG_WEIGHT * len(tags & strong) + TITLE_WEIGHT * len(title & strong)
            if strength:
                scored.append((-strength - len(tags & weak), article.title, article.id, article))
        if not scored:  # nothing matched what the customer asked for: the queue's articles
            scored = [(-len(tags & weak), article.title, article.id, article)
                      for article, tags, _ in self._entries if tags & weak]
        scored.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in scored[:limit]]
