from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_exploration.riddles.answers import is_correct, normalise_answer, singular_forms


@pytest.mark.parametrize("text, expected", [
    ("A Keyboard!", "keyboard"),
    ("  the   LETTER  m. ", "letter m"),
    ("It's a tea-pot", "tea pot"),
    ("The answer is: an echo", "echo"),
    ("I am a shadow", "shadow"),
    ("Ｅｃｈｏ", "echo"),  # full-width letters fold (NFKC)
    ("a", ""),
    ("", ""),
    ("it is", "it is"),  # a lead-in alone is kept
])
def test_normalise(text, expected):
    assert normalise_answer(text) == expected


@pytest.mark.parametrize("answer, canonical, aliases", [
    ("Keyboards", "keyboard", ()),
    ("the keyboard", "keyboard", ()),
    ("An echo.", "echo", ()),
    ("Footprints", "footsteps", ("steps", "footprints")),
    ("steps", "footsteps", ("steps", "footprints")),
    ("Teeth", "tooth", ()),
    ("boxes", "box", ()),
    ("Batteries", "battery", ()),
    ("dice", "die", ()),
    ("teapot", "tea pot", ()),
    ("Yo-Yo", "yo yo", ("yoyo",)),
    ("deck of cards", "deck of cards", ()),
    ("The decks of cards", "deck of cards", ()),
    ("It is a candle", "candle", ()),
])
def test_variants_score(answer, canonical, aliases):
    assert is_correct(answer, canonical, aliases)


@pytest.mark.parametrize("answer, canonical", [
    ("", "echo"),
    (None, "echo"),
    ("a", "towel"),
    ("i", "ice"),
    ("e", "echo"),
    ("the", "echo"),
    ("!!!", "echo"),
    ("key", "keyboard"),       # a substring of the answer
    ("board", "keyboard"),
    ("piano keyboard", "keyboard"),  # the answer inside a longer one
    ("echo or towel", "echo"),       # a list of guesses
    ("echo echo", "echo"),
    ("ech", "echo"),
    ("is", "i"),               # "is" is not the plural of "i"
    ("bus", "bu"),             # three-letter words keep their s
    ("a keyboard is what i think it is", "keyboard"),
])
def test_wrong_answers_score_zero(answer, canonical):
    assert not is_correct(answer, canonical)


def test_singular_forms():
    assert singular_forms("boxes") == {"boxes", "boxe", "box"}
    assert singular_forms("cities") == {"cities", "citie", "citi", "city"}
    assert singular_forms("glass") == {"glass"}
    assert singular_forms("is") == {"is"}


def test_very_long_answers_never_match():
    assert not is_correct("echo " * 50_000, "echo")
    assert not is_correct("x" * 1_000_000, "x" * 1_000_000)


@settings(max_examples=300, deadline=timedelta(seconds=2))
@given(answer=st.text(max_size=400), canonical=st.text(min_size=1, max_size=40),
       aliases=st.lists(st.text(max_size=20), max_size=3))
def test_fuzz_never_raises(answer, canonical, aliases):
    result = is_correct(answer, canonical, aliases)
    assert isinstance(result, bool)
    if not normalise_answer(answer):
        assert result is False


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(st.text(alphabet=st.characters(categories=["L", "N", "Zs", "P"]), max_size=60))
def test_fuzz_an_answer_always_matches_itself_when_nonempty(text):
    assert is_correct(text, text) == bool(normalise_answer(text))


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(st.sampled_from(["echo", "keyboard", "towel", "candle", "letter m", "deck of cards"]),
       st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=30))
def test_fuzz_proper_substrings_never_match(canonical, start, length):
    piece = canonical[start : start + length].strip()
    singular = canonical.removesuffix("s")  # "deck of card" is a fair plural variant
    if piece not in (canonical, singular):
        assert not is_correct(piece, canonical)
