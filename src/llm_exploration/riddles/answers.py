"""Answer normalisation and matching for riddles: equality, never substring.

An answer is correct when, after normalisation, it *equals* the canonical answer or one of its
aliases. Normalisation lower-cases, folds unicode (NFKC), turns punctuation into spaces, drops
the articles "a", "an", "the" and a leading "it is" / "i am" / "the answer is", and compares word
by word allowing a regular or common irregular plural ("keys" = "key", "teeth" = "tooth").
Nothing is matched by containment: "a", "i", "" and "key" never match "keyboard", and a list of
guesses ("echo or towel") never matches "echo".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

ARTICLES = frozenset({"a", "an", "the"})
LEAD_INS = (("the", "answer", "is"), ("answer", "is"), ("it", "is"), ("it", "s"), ("its",),
            ("i", "am"), ("i", "m"), ("you", "are"))
IRREGULAR_PLURALS = {
    "teeth": "tooth", "feet": "foot", "geese": "goose", "men": "man", "women": "woman",
    "mice": "mouse", "children": "child", "people": "person", "dice": "die", "knives": "knife",
    "leaves": "leaf", "wolves": "wolf", "lives": "life", "loaves": "loaf", "calves": "calf",
}
MAX_ANSWER_CHARS = 200  # longer "answers" are not answers to a riddle; they never match
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise_words(text: str) -> list[str]:
    """The words of ``text`` after case folding, punctuation removal, article and lead-in
    removal: ``"It's  a Tea-pot!"`` -> ``["tea", "pot"]``."""
    if len(text) > MAX_ANSWER_CHARS:
        return []
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    words = text.split()
    for lead in LEAD_INS:
        if tuple(words[: len(lead)]) == lead and len(words) > len(lead):
            words = words[len(lead):]
            break
    return [w for w in words if w not in ARTICLES]


def normalise_answer(text: str) -> str:
    """``normalise_words`` joined by single spaces ("" when nothing is left)."""
    return " ".join(normalise_words(text))


def singular_forms(word: str) -> set[str]:
    """The word and what it would be if it were a plural: ``"boxes"`` -> {boxes, boxe, box}.

    Only words of four or more letters lose an "s", so "is", "as" and "us" stay as they are."""
    forms = {word}
    if word in IRREGULAR_PLURALS:
        forms.add(IRREGULAR_PLURALS[word])
    if len(word) >= 4 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms


def _words_match(a: list[str], b: list[str]) -> bool:
    if not a or not b:
        return False
    if "".join(a) == "".join(b):  # "tea pot" == "teapot"
        return True
    return len(a) == len(b) and all(singular_forms(x) & singular_forms(y) for x, y in zip(a, b))


def is_correct(answer: str | None, canonical: str, aliases: Iterable[str] = ()) -> bool:
    """True iff the normalised ``answer`` equals the normalised canonical answer or an alias.

    ``None`` (no answer found) and answers that normalise to nothing are never correct."""
    if answer is None:
        return False
    got = normalise_words(answer)
    return bool(got) and any(_words_match(got, normalise_words(ref)) for ref in (canonical, *aliases))
