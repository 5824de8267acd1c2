"""A small language guess for classification rules (``language: de``).

Mail states its language rarely (``Content-Language``, RFC 3282), so the
text is scored against the most frequent function words of a few European
languages.  It is cheap and deterministic, and only answers when the text
is clear: at least :data:`MIN_HITS` function words, and the best language
well ahead of the second.  Otherwise the answer is ``None`` and rules on
language do not match.
"""

from __future__ import annotations

import re

__all__ = ["LANGUAGES", "MIN_HITS", "detect_language"]

MIN_HITS = 3
"""Function words needed before any guess is made."""

_MARGIN = 1.5
_SAMPLE_CHARS = 4000
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

LANGUAGES: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "and", "is", "are", "was", "were", "have", "has", "this", "that", "with", "for", "you", "your", "not", "but", "from", "they", "will", "would", "can", "could", "please", "thank", "thanks", "of", "to", "in", "it", "my", "our", "we"]),
    "de": frozenset(["der", "die", "das", "und", "ist", "nicht", "ich", "sie", "mit", "den", "dem", "ein", "eine", "einen", "auf", "für", "ist", "sind", "wir", "ihr", "bitte", "danke", "haben", "habe", "wurde", "werden", "auch", "noch", "mein", "meine", "ihre", "von", "zu", "im"]),
    "fr": frozenset(["le", "la", "les", "et", "est", "une", "un", "des", "pas", "je", "vous", "nous", "avec", "pour", "dans", "sur", "que", "qui", "ce", "cette", "merci", "bonjour", "mon", "ma", "mes", "votre", "vos", "suis", "avons", "du", "au"]),
    "es": frozenset(["el", "la", "los", "las", "y", "es", "una", "un", "por", "para", "con", "que", "del", "se", "no", "mi", "su", "gracias", "hola", "usted", "ustedes", "estoy", "tengo", "pero", "como", "muy", "esta", "este"]),
    "it": frozenset(["il", "lo", "la", "gli", "le", "e", "è", "un", "una", "per", "con", "che", "del", "della", "non", "mi", "ti", "sono", "grazie", "buongiorno", "vostro", "mio", "ho", "abbiamo", "questo", "questa", "come"]),
    "nl": frozenset(["de", "het", "een", "en", "is", "niet", "ik", "je", "jij", "u", "wij", "met", "voor", "van", "dat", "dit", "zijn", "op", "bedankt", "alstublieft", "mijn", "uw", "heb", "hebben", "ook", "maar"]),
    "pt": frozenset(["o", "a", "os", "as", "e", "é", "um", "uma", "para", "com", "que", "do", "da", "não", "meu", "minha", "obrigado", "obrigada", "olá", "você", "vocês", "estou", "tenho", "mas", "como", "muito"]),
}
"""Function words of each language guessed (ISO 639-1 codes)."""


def detect_language(text: str, declared: str | None = None) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or ``None`` when unclear.

    ``declared`` (a ``Content-Language`` value such as ``de-CH, en``) wins
    when it names a language: its first tag's primary subtag is returned.
    """
    if declared:
        first = declared.split(",")[0].strip().lower()
        primary = first.split("-")[0]
        if 2 <= len(primary) <= 3 and primary.isalpha():
            return primary
    words = _WORD.findall(text[:_SAMPLE_CHARS].lower())
    if not words:
        return None
    scores = sorted(((sum(1 for w in words if w in vocabulary), code) for code, vocabulary in LANGUAGES.items()),
                    reverse=True)
    (best, code), (second, _) = scores[0], scores[1]
    if best < MIN_HITS or best < second * _MARGIN:
        return None
    return code
