"""Evaluation: sample replies to riddles, score each with the training reward's own functions,
and summarise per riddle (accuracy, pass@k with Wilson intervals) and per failure.

A "riddle" here is a multiple-choice :class:`~choices.ChoiceItem` or, free-form, a bare
:class:`~data.Riddle`; both go through :func:`rewards.score_reply`, so "accuracy" is the
correctness reward averaged over samples and riddles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_exploration.intervals import pass_at_k
from llm_exploration.riddles.answers import normalise_words
from llm_exploration.riddles.choices import LETTERS, ChoiceItem, answer_words, strip_lead_in
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.prompts import line_stop_ids, riddle_messages
from llm_exploration.riddles.rewards import score_reply
from llm_exploration.riddles.sampling import sample_replies
from llm_exploration.riddles.stats import wilson


def _fields(item: ChoiceItem | Riddle) -> dict:
    if isinstance(item, ChoiceItem):
        return {"options": item.options, "correct": item.correct, "answer": item.riddle.answer}
    return {"answer": item.answer, "aliases": item.aliases}


def score_samples(items: list[ChoiceItem] | list[Riddle], replies: list[list[str]],
                  lengths: list[list[int]] | None = None, think: bool = False) -> pd.DataFrame:
    """One row per (riddle, sample): ``id``, ``kind``, ``form``, ``wording``, ``sample``,
    ``reply``, ``answer``, ``chosen``, ``committed``, ``correct``, ``answer_words``,
    ``reply_tokens``, ``reference``."""
    rows = []
    for i, (item, texts) in enumerate(zip(items, replies, strict=True)):
        choice = isinstance(item, ChoiceItem)
        riddle = item.riddle if choice else item
        for j, text in enumerate(texts):
            scored = score_reply(text, think=think, **_fields(item))
            words = answer_words(scored["answer"])
            rows.append({"id": riddle.id, "kind": riddle.kind, "form": "choice" if choice else "free",
                         "wording": item.wording if choice else "original", "sample": j, "reply": text,
                         **scored, "answer_words": len(words),
                         "reply_tokens": lengths[i][j] if lengths is not None else np.nan,
                         "reference": riddle.answer})
    return pd.DataFrame(rows)


def evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
             items: list[ChoiceItem] | list[Riddle], *, n: int, max_new_tokens: int,
             temperature: float, seed: int = 0, batch_size: int = 16, think: bool = False,
             shots: list[Riddle] | None = None, autocast_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Sample ``n`` replies per riddle (:func:`sampling.sample_replies`) and score them
    (:func:`score_samples`)."""
    prompts = [tokenizer.apply_chat_template(riddle_messages(item, think=think, shots=shots),
                                             tokenize=False, add_generation_prompt=True) for item in items]
    out = sample_replies(model, tokenizer, prompts, n=n, max_new_tokens=max_new_tokens,
                         temperature=temperature, seed=seed, batch_size=batch_size,
                         autocast_dtype=autocast_dtype, stop_ids=None if think else line_stop_ids(tokenizer))
    return score_samples(items, [texts for texts, _ in out], [lens for _, lens in out], think=think)


def per_riddle(samples: pd.DataFrame, ks: tuple[int, ...] = (1,)) -> pd.DataFrame:
    """One row per riddle: samples ``n``, right ``c``, ``accuracy`` (c / n) and ``pass@k``."""
    g = samples.groupby("id", sort=False).agg(kind=("kind", "first"), n=("correct", "size"),
                                              c=("correct", "sum"))
    g["accuracy"] = g["c"] / g["n"]
    for k in ks:
        g[f"pass@{k}"] = [pass_at_k(int(n), int(c), k) for n, c in zip(g["n"], g["c"])]
    return g


def summarise(samples: pd.DataFrame, k: int | None = None) -> dict:
    """Accuracy (pass@1: mean over riddles of the share of right samples) with a Wilson 95%
    interval over riddles, pass@k (default: all samples), the share of samples that commit to
    an answer, and mean answer (words) and reply (tokens) lengths."""
    n_samples = int(samples.groupby("id").size().min())
    k = n_samples if k is None else k
    table = per_riddle(samples, ks=(k,))
    lo, hi = wilson(table["accuracy"].sum(), len(table))
    return {
        "riddles": len(table), "samples_per_riddle": n_samples,
        "accuracy": float(table["accuracy"].mean()), "accuracy_low": lo, "accuracy_high": hi,
        "k": k, "pass_at_k": float(table[f"pass@{k}"].mean()),
        "commit_rate": float(samples["committed"].mean()),
        "mean_answer_words": float(samples.loc[samples["committed"], "answer_words"].mean())
        if samples["committed"].any() else float("nan"),
        "mean_reply_tokens": float(samples["reply_tokens"].mean()),
    }


def chosen_positions(samples: pd.DataFrame) -> pd.Series:
    """Multiple choice: the share of committed samples that chose each position (A, B, …)."""
    chosen = samples["chosen"].dropna().astype(int).map(lambda k: LETTERS[k])
    return chosen.value_counts(normalize=True).sort_index()


FAILURES = ("correct", "wrong candidate", "several candidates", "position only", "no candidate",
            "word from the riddle", "other wrong answer")


def failure_modes(samples: pd.DataFrame, items: list[ChoiceItem] | list[Riddle]) -> pd.Series:
    """Sort each sample into one outcome. Multiple choice: "correct", "wrong candidate",
    "several candidates" (the reply names two or more), "position only" (a bare letter),
    "no candidate" (anything else). Free-form: "correct", "word from the riddle" (every answer
    word occurs in the riddle), "other wrong answer", "no candidate" (empty or over three words)."""
    by_id = {(i.riddle.id if isinstance(i, ChoiceItem) else i.id): i for i in items}

    def label(row) -> str:
        if row["correct"]:
            return "correct"
        item = by_id[row["id"]]
        answer = row["answer"] if isinstance(row["answer"], str) else ""
        if isinstance(item, ChoiceItem):
            if row["committed"]:
                return "wrong candidate"
            line = strip_lead_in(answer).strip(" .()")
            if len(line) == 1 and line.upper() in LETTERS[: len(item.options)]:
                return "position only"
            words = set(normalise_words(answer))
            named = [o for o in item.options if set(normalise_words(o)) <= words]
            return "several candidates" if len(named) >= 2 else "no candidate"
        if not row["committed"]:
            return "no candidate"
        if set(normalise_words(strip_lead_in(answer))) <= set(normalise_words(item.riddle)):
            return "word from the riddle"
        return "other wrong answer"

    return samples.apply(label, axis=1)


def side_by_side(before: pd.DataFrame, after: pd.DataFrame, items: list[ChoiceItem], k: int = 6) -> pd.DataFrame:
    """One row per riddle: the question, its answer, and before/after the most common committed
    answer with the count of right samples. Riddles whose accuracy changed most come first."""
    text = {i.riddle.id: i.text for i in items}

    def shown(df: pd.DataFrame, rid: str) -> tuple[str, float]:
        rows = df[df["id"] == rid]
        answers = rows.loc[rows["committed"], "answer"]
        common = answers.mode().iloc[0] if len(answers) else "(no candidate)"
        return f"{common} [{int(rows['correct'].sum())}/{len(rows)}]", float(rows["correct"].mean())

    rows = []
    for rid in text:
        (b, acc_b), (a, acc_a) = shown(before, rid), shown(after, rid)
        rows.append({"riddle": text[rid], "answer": before.loc[before["id"] == rid, "reference"].iloc[0],
                     "before": b, "after": a, "change": acc_a - acc_b})
    table = pd.DataFrame(rows).sort_values("change", ascending=False, kind="stable")
    return pd.concat([table.head(k - k // 3), table.tail(k // 3)]).drop(columns="change")
