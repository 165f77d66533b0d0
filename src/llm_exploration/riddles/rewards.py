"""Riddle rewards with TRL's signature ``f(prompts, completions, **columns) -> list[float | None]``.

The dataset columns (:func:`prompts.riddle_dataset_rows`) say how to read each completion:
``options``/``correct`` for a multiple-choice item (``options == []`` for free-form), ``answer``
and ``aliases`` for free-form, ``think`` for the reply form.

- **correctness**: 1 when the reply commits to the right candidate (:func:`choices.chosen_option`)
  or, free-form, when its answer *equals* the canonical answer or an alias after normalisation
  (:func:`answers.is_correct`); else 0.
- **format**: 1 when the reply commits to one answer, right or wrong: exactly one candidate, or
  a free-form answer of one to three words; in the think form half of it is the GRPO engine's
  graded tag score. It is the reward of the "format only" ablation.

Why equality: an earlier version of this experiment paid full reward when either string contained
the other, so the answer "a" (inside "a towel") or "i" scored; the policy learned to answer single
letters. Here an empty, one-letter or merely overlapping answer, a list of candidates, or a bare
position ("B") scores 0.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llm_exploration.grpo.rewards import completion_text, extract_answer, soft_format_score
from llm_exploration.riddles.answers import is_correct, normalise_words
from llm_exploration.riddles.choices import LETTERS, ChoiceItem, chosen_option, strip_lead_in
from llm_exploration.riddles.prompts import reply_answer

MAX_FREE_WORDS = 3  # a committed free-form answer has one to three words


def _columns(n: int, answer, aliases, options, correct, think) -> list[tuple]:
    if answer is None and options is None:
        raise ValueError("riddle rewards need an `answer` or `options` column in the dataset.")
    answer = answer if answer is not None else [""] * n
    aliases = aliases if aliases is not None else [()] * n
    options = options if options is not None else [[]] * n
    correct = correct if correct is not None else [-1] * n
    think = think if think is not None else [False] * n
    return list(zip(answer, aliases, options, correct, think, strict=True))


def score_reply(reply: str, *, answer: str = "", aliases=(), options=(), correct: int = -1,
                think: bool = False) -> dict:
    """Everything the rewards and the evaluation read from one reply: the ``answer`` text found,
    the candidate ``chosen`` (multiple choice; None if none), ``committed`` and ``correct``."""
    found = reply_answer(reply, think)
    if options:
        chosen = chosen_option(found, tuple(options))
        committed, right = chosen is not None, chosen is not None and chosen == correct
    else:
        chosen = None
        words = normalise_words(strip_lead_in(found)) if found is not None else []
        committed = 1 <= len(words) <= MAX_FREE_WORDS
        right = found is not None and is_correct(strip_lead_in(found), answer, aliases or ())
    return {"answer": found, "chosen": chosen, "committed": committed, "correct": bool(right)}


def riddle_correctness_reward(prompts: list, completions: list, answer: list[str] | None = None,
                              aliases: list | None = None, options: list | None = None,
                              correct: list[int] | None = None, think: list[bool] | None = None,
                              **kwargs: Any) -> list[float | None]:
    """1.0 if the reply commits to the right candidate (or equals the answer, free-form), else 0.0."""
    rows = _columns(len(completions), answer, aliases, options, correct, think)
    return [float(score_reply(completion_text(c), answer=a, aliases=al, options=o, correct=k,
                              think=t)["correct"]) for c, (a, al, o, k, t) in zip(completions, rows)]


def riddle_format_reward(prompts: list, completions: list, answer: list[str] | None = None,
                         aliases: list | None = None, options: list | None = None,
                         correct: list[int] | None = None, think: list[bool] | None = None,
                         **kwargs: Any) -> list[float | None]:
    """1.0 if the reply commits to one answer, right or wrong (think form: half tags, half commit)."""
    rows = _columns(len(completions), answer, aliases, options, correct, think)
    out = []
    for c, (a, al, o, k, t) in zip(completions, rows):
        text = completion_text(c)
        commit = float(score_reply(text, answer=a, aliases=al, options=o, correct=k, think=t)["committed"])
        out.append(0.5 * soft_format_score(text) + 0.5 * commit if t else commit)
    return out


def substring_reward(prompts: list, completions: list, answer: list[str] | None = None,
                     **kwargs: Any) -> list[float | None]:
    """The gameable reward of the earlier experiment, kept only to show what goes wrong:
    1.0 when the lower-cased answer in tags and the reference contain one another."""
    if answer is None:
        raise ValueError("substring_reward needs an `answer` column in the dataset.")
    out: list[float | None] = []
    for c, ref in zip(completions, answer, strict=True):
        got = extract_answer(completion_text(c))
        if got is None:
            out.append(0.0)
            continue
        got, ref = got.strip().lower(), ref.strip().lower()
        out.append(float(got in ref or ref in got))
    return out


def constant_answer_rewards(riddles: list, answers: list[str]) -> pd.DataFrame:
    """Free-form: what a policy that gives the same answer to every riddle would earn, under
    the old substring reward (answer in tags) and the equality reward used here."""
    rows = []
    for text in answers:
        tagged = [f"<answer>{text}</answer>"] * len(riddles)
        refs = [r.answer for r in riddles]
        sub = substring_reward([""] * len(riddles), tagged, answer=refs)
        ours = riddle_correctness_reward([""] * len(riddles), [text] * len(riddles), answer=refs,
                                         aliases=[list(r.aliases) for r in riddles])
        rows.append({"constant answer": repr(text), "substring reward": sum(sub) / len(sub),
                     "equality reward": sum(ours) / len(ours)})
    return pd.DataFrame(rows)


def constant_choice_policies(n_options: int) -> dict[str, Any]:
    """Policies that ignore the riddle, by name: each maps an item to a reply. Always the same
    letter, always the candidate at one position, every letter, every candidate, a candidate
    with the wrong letter, a hedge between two candidates, and a fixed word."""
    letters = LETTERS[:n_options]
    policies: dict[str, Any] = {}
    for k, letter in enumerate(letters):
        policies[f"always '{letter}'"] = lambda item, letter=letter: letter
    for k, letter in enumerate(letters):
        policies[f"always the candidate at {letter}"] = lambda item, k=k: f"{LETTERS[k]}) {item.options[k]}"
    policies["every letter ('A B C D')"] = lambda item: " ".join(letters)
    policies["every candidate, one line"] = lambda item: ", ".join(item.options)
    policies["two candidates ('x or y')"] = lambda item: f"{item.options[0]} or {item.options[1]}"
    policies["candidate A with letter B"] = lambda item: f"B) {item.options[0]}"
    policies["the word 'answer'"] = lambda item: "answer"
    return policies


def surface_policies() -> dict[str, Any]:
    """Reference heuristics that read the candidates (and the riddle) only superficially: the
    longest candidate, the shortest, and the one sharing most words with the riddle. Not bound
    to chance (answers may differ in length from distractors), but no riddle is solved."""
    return {"the longest candidate": lambda item: max(item.options, key=len),
            "the shortest candidate": lambda item: min(item.options, key=len),
            "most words shared with the riddle": word_overlap_reply}


def word_overlap_reply(item: ChoiceItem) -> str:
    """A heuristic that reads the riddle only superficially: the candidate sharing the most
    words with it (first such candidate on ties)."""
    words = set(normalise_words(item.text))
    return max(item.options, key=lambda option: len(set(normalise_words(option)) & words))


def policy_reward(items: list[ChoiceItem], policy: Any) -> float:
    """Mean correctness reward over ``items`` of ``policy`` (item -> reply)."""
    rewards = riddle_correctness_reward([""] * len(items), [policy(i) for i in items],
                                        options=[list(i.options) for i in items],
                                        correct=[i.correct for i in items])
    return sum(rewards) / len(rewards)


def constant_choice_rewards(items: list[ChoiceItem], policies: dict[str, Any] | None = None) -> pd.DataFrame:
    """Multiple choice: the mean correctness reward over ``items`` of every riddle-ignoring
    policy of :func:`constant_choice_policies` (or of ``policies``), next to chance."""
    n_options = len(items[0].options)
    rows = []
    policies = constant_choice_policies(n_options) if policies is None else policies
    for name, policy in policies.items():
        rows.append({"policy": name, "example reply": policy(items[0]), "mean reward": policy_reward(items, policy)})
    table = pd.DataFrame(rows)
    table.attrs["chance"] = 1 / n_options
    return table
