"""Evaluation on held-out riddles: sample n completions per riddle and score each one.

Every sample is scored by the same functions the training rewards use (answer extraction from the
GRPO engine, :func:`answers.is_correct`), so "accuracy" here is the correctness reward averaged
over riddles and samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_exploration.grpo.rewards import extract_answer, is_strict_format
from llm_exploration.riddles.answers import is_correct, normalise_words
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.prompts import riddle_messages


def score_completion(text: str, riddle: Riddle) -> dict:
    """The scores of one completion: the extracted answer, correct, formatted, answer length."""
    answer = extract_answer(text)
    return {
        "answer": answer,
        "correct": is_correct(answer, riddle.answer, riddle.aliases),
        "formatted": is_strict_format(text),
        "answer_words": len(normalise_words(answer)) if answer is not None else np.nan,
    }


@torch.no_grad()
def sample_riddles(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, riddles: list[Riddle],
                   *, n_samples: int = 4, max_new_tokens: int = 64, temperature: float = 0.7,
                   seed: int = 0, batch_size: int = 16, shots: list[Riddle] | None = None) -> pd.DataFrame:
    """Sample ``n_samples`` completions for each riddle (nucleus off, ``temperature``) and score them.

    Returns one row per (riddle, sample): ``id``, ``kind``, ``sample``, ``completion``, ``answer``,
    ``correct``, ``formatted``, ``answer_words``, ``completion_tokens``, ``reference``."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples={n_samples} and batch_size={batch_size} must be at least 1.")
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left
    torch.manual_seed(seed)
    rows = []
    for start in range(0, len(riddles), batch_size):
        batch = riddles[start : start + batch_size]
        texts = [tokenizer.apply_chat_template(riddle_messages(r, shots), tokenize=False,
                                               add_generation_prompt=True) for r in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                             max_new_tokens=max_new_tokens, num_return_sequences=n_samples,
                             pad_token_id=tokenizer.pad_token_id)
        completion_ids = out[:, enc["input_ids"].shape[1]:]  # [batch * n_samples, new_tokens]
        for j, ids in enumerate(completion_ids):
            riddle = batch[j // n_samples]
            n_tokens = int((ids != tokenizer.pad_token_id).sum())
            text = tokenizer.decode(ids, skip_special_tokens=True)
            rows.append({"id": riddle.id, "kind": riddle.kind, "sample": j % n_samples,
                         "completion": text, "reference": riddle.answer,
                         "completion_tokens": n_tokens, **score_completion(text, riddle)})
    return pd.DataFrame(rows)


def summarise(samples: pd.DataFrame) -> dict:
    """Accuracy (mean over riddles and samples), its spread over the n sample draws (sd of the
    per-draw accuracy), pass@n (any sample correct), format rate and mean lengths."""
    per_draw = samples.groupby("sample")["correct"].mean()
    return {
        "riddles": samples["id"].nunique(),
        "samples_per_riddle": int(samples["sample"].nunique()),
        "accuracy": float(samples["correct"].mean()),
        "accuracy_sd": float(per_draw.std(ddof=1)) if len(per_draw) > 1 else 0.0,
        "pass_at_n": float(samples.groupby("id")["correct"].any().mean()),
        "format_rate": float(samples["formatted"].mean()),
        "answer_rate": float(samples["answer"].notna().mean()),
        "mean_answer_words": float(samples["answer_words"].mean()),
        "mean_completion_tokens": float(samples["completion_tokens"].mean()),
    }


def failure_modes(samples: pd.DataFrame, riddles: list[Riddle], shots: list[Riddle]) -> pd.Series:
    """Sort each sample into one outcome, in this order: "correct"; "no answer" (no
    ``<answer>`` tags); "worked example's answer" (it answered "tooth" or "kettle" from the
    prompt); "word from the riddle" (every answer word occurs in the riddle text); "other wrong
    answer". Returns one label per row of ``samples``."""
    texts = {r.id: set(normalise_words(r.riddle)) for r in riddles}
    shot_answers = {" ".join(normalise_words(s.answer)) for s in shots}

    def label(row) -> str:
        if row["correct"]:
            return "correct"
        if row["answer"] is None or not isinstance(row["answer"], str):
            return "no answer"
        words = normalise_words(row["answer"])
        if " ".join(words) in shot_answers:
            return "worked example's answer"
        if words and set(words) <= texts[row["id"]]:
            return "word from the riddle"
        return "other wrong answer"

    return samples.apply(label, axis=1)


def side_by_side(before: pd.DataFrame, after: pd.DataFrame, riddles: list[Riddle],
                 k: int = 6) -> pd.DataFrame:
    """One row per riddle: the riddle, its answer, and before and after training a correct
    sample's answer if there is one (else the first sample's) with the count of correct samples;
    every riddle answered correctly at least once, then the first other riddles up to ``k`` rows."""
    text = {r.id: r.riddle for r in riddles}
    hits = set(before.loc[before["correct"], "id"]) | set(after.loc[after["correct"], "id"])
    order = [r.id for r in riddles if r.id in hits]
    order += [r.id for r in riddles if r.id not in hits][: max(0, k - len(order))]

    def shown(df: pd.DataFrame, rid: str) -> str:
        rows = df[df["id"] == rid]
        hit = rows[rows["correct"]]
        row = (hit if len(hit) else rows).iloc[0]
        answer = row["answer"] if isinstance(row["answer"], str) else "(no answer tags)"
        return f"{answer}  [{int(rows['correct'].sum())}/{len(rows)} correct]"

    return pd.DataFrame([{"riddle": text[rid], "answer": before.loc[before["id"] == rid, "reference"].iloc[0],
                          "before": shown(before, rid), "after": shown(after, rid)} for rid in order])

