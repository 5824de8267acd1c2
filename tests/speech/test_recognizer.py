"""Phrase normal form and matching (cosmo.speech.recognizer), grammars of both engines."""

from __future__ import annotations

import json

import pytest

from cosmo.speech.recognizer import match_phrase, normalize, phrase_words
from cosmo.speech.sphinx_engine import is_english, jsgf


@pytest.mark.parametrize(("phrase", "form"), [
    ("Technical  Support!", "technical support"),
    ("  operator ", "operator"),
    ("I don't know.", "i don't know"),
    ("아니요", "아니요"),
    ("--", ""),
])
def test_normalize(phrase: str, form: str) -> None:
    assert normalize(phrase) == form


def test_match_phrase_returns_the_flows_spelling() -> None:
    phrases = ["Technical Support", "operator"]
    assert match_phrase("technical support", phrases) == "Technical Support"
    assert match_phrase("technical", phrases) is None
    assert match_phrase("operator operator", phrases) is None
    assert match_phrase("", phrases) is None


def test_phrase_words_distinct_in_order() -> None:
    assert phrase_words(["yes please", "no", "Yes"]) == ["yes", "please", "no"]


def test_jsgf_one_public_rule() -> None:
    assert jsgf(["Yes!", "account balance"]) == (
        "#JSGF V1.0;\ngrammar menu;\npublic <phrase> = yes | account balance ;\n")


@pytest.mark.parametrize(("language", "english"), [("en", True), ("en-GB", True), ("en_us", True),
                                                   ("ko", False), ("eng", False)])
def test_is_english(language: str, english: bool) -> None:
    assert is_english(language) is english


def test_vosk_grammar_json(korean) -> None:  # type: ignore[no-untyped-def]
    grammar = json.loads(korean.grammar(["네", " 아니요 "]))
    assert grammar[:2] == ["네", "아니요"]
    # [unk] only when the model has it (the small Korean model has not)
    assert grammar[2:] == (["[unk]"] if korean.has_unknown else [])
