"""The multiple-choice form of a riddle, and how a reply commits to one candidate.

Each riddle is shown with ``n_options`` candidate answers (RiddleSense uses five, BrainTeaser
four): its own answer and distractors drawn from the answers of *other riddles of the same
split*, so a held-out item never shows a word the model was rewarded for in training. A
distractor never shares a word with the answer or with another candidate ("alarm clock" is
never a distractor for "clock"). Within a list of items the right answer's position is
balanced (every position holds it ``len // n`` or ``len // n + 1`` times, in a seeded random
order), so a policy that always picks the same position earns chance, ``1 / n_options``, at most.

A reply *commits* when its answer names exactly one candidate: the candidate's text ("kettle",
"a kettle", "It is a kettle."), optionally after its own letter ("B) kettle", "B. kettle").
It does not commit, and earns nothing, when it names a position without a candidate ("B"), a
letter that disagrees with the text ("A) kettle" when A is not kettle), several candidates
("kettle or echo", "A) kettle B) echo"), or anything else.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from llm_exploration.riddles.answers import is_correct, normalise_words, singular_forms
from llm_exploration.riddles.data import Riddle

LETTERS = "ABCDEFGH"
# "B) kettle", "(B) kettle", "B. kettle", "B: kettle": a letter, a closing mark, then text.
_LETTERED = re.compile(r"^\(?([A-Ha-h])\s*[).:]\s*(.*)$", re.DOTALL)
# Lead-ins a committed answer may start with: "The correct answer is", "Answer:", "My choice is".
_LEAD_IN = re.compile(
    r"^(?:(?:the|my)\s+)?(?:(?:correct|right|final|best)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would\s+be))?\s*[:\-]?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ChoiceItem:
    """One riddle as a multiple-choice question: the text shown, the candidates and the right one."""

    riddle: Riddle
    text: str  # the wording shown: the riddle's own, or its rewording
    options: tuple[str, ...]
    correct: int  # index of the riddle's answer in ``options``
    wording: str = "original"  # "original" or "reworded"

    @property
    def letter(self) -> str:
        return LETTERS[self.correct]


def _words(text: str) -> set[str]:
    return {form for w in normalise_words(text) for form in singular_forms(w)}


def _distractors(riddle: Riddle, pool: list[str], k: int, rng: random.Random) -> list[str]:
    taken = _words(riddle.answer).union(*(_words(a) for a in riddle.aliases))
    candidates = sorted({a for a in pool if not _words(a) & taken})
    rng.shuffle(candidates)
    chosen: list[str] = []
    for c in candidates:
        if not _words(c) & taken:
            chosen.append(c)
            taken |= _words(c)
        if len(chosen) == k:
            return chosen
    raise ValueError(f"riddle {riddle.id!r}: only {len(chosen)} distractors can be drawn from a "
                     f"pool of {len(pool)} answers; {k} are needed. Use a larger pool or fewer options.")


def make_choices(riddles: list[Riddle], pool: list[str] | None = None, *, n_options: int = 4,
                 seed: int = 0, wording: str = "original") -> list[ChoiceItem]:
    """The riddles as multiple-choice items, distractors from ``pool`` (default: the answers of
    ``riddles``), right-answer positions balanced over the list, all seeded by ``seed``.

    ``wording="reworded"`` shows each riddle's rewording (every riddle needs one) with its own
    draw of distractors and positions."""
    if not 2 <= n_options <= len(LETTERS):
        raise ValueError(f"n_options={n_options}: choose between 2 and {len(LETTERS)}.")
    if wording not in ("original", "reworded"):
        raise ValueError(f"wording={wording!r}: choose 'original' or 'reworded'.")
    if wording == "reworded" and (missing := [r.id for r in riddles if not r.reworded]):
        raise ValueError(f"wording='reworded', but riddles {missing[:5]} have no rewording.")
    pool = [r.answer for r in riddles] if pool is None else list(pool)
    rng = random.Random(f"positions-{seed}-{wording}")
    positions = [i % n_options for i in range(len(riddles))]
    rng.shuffle(positions)
    items = []
    for riddle, position in zip(riddles, positions):
        options = _distractors(riddle, pool, n_options - 1, random.Random(f"{seed}-{wording}-{riddle.id}"))
        options.insert(position, riddle.answer)
        text = riddle.reworded if wording == "reworded" else riddle.riddle
        items.append(ChoiceItem(riddle, text, tuple(options), position, wording))
    return items


def rotations(item: ChoiceItem) -> list[ChoiceItem]:
    """The item with its candidates cyclically shifted so that the right one sits at each
    position once: trained on all of them, a policy learns nothing from a position."""
    n = len(item.options)
    out = []
    for shift in range(n):
        options = tuple(item.options[(k - shift) % n] for k in range(n))
        out.append(ChoiceItem(item.riddle, item.text, options, (item.correct + shift) % n, item.wording))
    return out


def strip_lead_in(line: str) -> str:
    """``"The correct answer is B) kettle."`` -> ``"B) kettle."``."""
    return _LEAD_IN.sub("", line.strip(), count=1)


def answer_words(answer: str | None) -> list[str]:
    """The normalised words of an answer without its lead-in or letter prefix:
    ``"The answer is B) alarm clock."`` -> ``["alarm", "clock"]``."""
    if answer is None:
        return []
    line = strip_lead_in(answer)
    lettered = _LETTERED.match(line)
    return normalise_words(lettered.group(2) if lettered else line)


def chosen_option(answer: str | None, options: tuple[str, ...] | list[str]) -> int | None:
    """The index of the one candidate ``answer`` commits to, or None when it commits to none."""
    if answer is None:
        return None
    line = strip_lead_in(answer)
    lettered = _LETTERED.match(line)
    if lettered and lettered.group(1).upper() in LETTERS[: len(options)]:
        k, rest = LETTERS.index(lettered.group(1).upper()), lettered.group(2)
        if normalise_words(rest):  # a letter with text: the text must be that letter's candidate
            return k if is_correct(rest, options[k]) else None
        if len(line) <= 3:  # "B", "(B)", "B.": a position, not a candidate
            return None
    matches = [k for k, option in enumerate(options) if is_correct(line, option)]
    return matches[0] if len(matches) == 1 else None
