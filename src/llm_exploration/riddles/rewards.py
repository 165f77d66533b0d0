"""Riddle rewards with TRL's signature ``f(prompts, completions, **columns) -> list[float | None]``.

The format rewards and the answer extraction are the GRPO engine's
(:mod:`llm_exploration.grpo.rewards`), so both trainers score completions the same way. The
correctness reward is riddle-specific: the text inside the last ``<answer>…</answer>`` must
*equal* the canonical answer or an alias after normalisation (:func:`answers.is_correct`).

Why equality: an earlier version of this experiment gave full reward when either string contained
the other, so the answer "a" (inside "a towel") or "i" scored; the policy learned to answer single
letters. Here an empty, one-letter or merely overlapping answer scores 0.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llm_exploration.grpo.rewards import (
    completion_text,
    extract_answer,
    format_soft_reward,
    format_strict_reward,
)
from llm_exploration.riddles.answers import is_correct
from llm_exploration.riddles.prompts import format_reply

__all__ = [
    "format_soft_reward",
    "format_strict_reward",
    "riddle_correctness_reward",
    "substring_reward",
]


def riddle_correctness_reward(prompts: list, completions: list, answer: list[str] | None = None,
                              aliases: list[list[str]] | None = None,
                              **kwargs: Any) -> list[float | None]:
    """1.0 if the answer in tags equals the riddle's answer or an alias (normalised), else 0.0.

    ``answer`` and ``aliases`` are dataset columns, one entry per completion."""
    if answer is None:
        raise ValueError("riddle_correctness_reward needs an `answer` column in the dataset.")
    aliases = aliases if aliases is not None else [()] * len(answer)
    return [float(is_correct(extract_answer(completion_text(c)), ref, alts or ()))
            for c, ref, alts in zip(completions, answer, aliases, strict=True)]


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
    """What a policy that gives the same answer to every riddle would earn, per reward.

    One row per constant answer: the mean substring (gameable) reward and the mean equality
    reward over ``riddles``."""
    rows = []
    for text in answers:
        completions = [format_reply("", text)] * len(riddles)
        refs = [r.answer for r in riddles]
        sub = substring_reward([""] * len(riddles), completions, answer=refs)
        ours = riddle_correctness_reward([""] * len(riddles), completions, answer=refs,
                                         aliases=[list(r.aliases) for r in riddles])
        rows.append({"constant answer": repr(text), "substring reward": sum(sub) / len(sub),
                     "equality reward": sum(ours) / len(ours)})
    return pd.DataFrame(rows)
