"""The riddle post's experiment in three calls: measure the base model, train one seed, tabulate.

- :func:`learnable`: the training items the base model gets right at least once in ``n`` samples
  (GRPO learns only from groups whose rewards differ).
- :func:`train_and_evaluate`: one GRPO run (fresh model, one seed, one reward setting), then the
  merged model sampled on every evaluation set.
- :func:`accuracy_table` / :func:`gain`: accuracy per set, run and seed; the paired gain over the
  base model with its 95% t-interval over seeds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import torch

from llm_exploration.riddles.choices import ChoiceItem
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.evaluate import evaluate, per_riddle, summarise
from llm_exploration.riddles.stats import t_interval
from llm_exploration.riddles.train import RiddleGRPOSettings, load_policy, train_riddles

EvalSet = tuple[list[ChoiceItem] | list[Riddle], int]  # items and samples per item


def sample_sets(model: Any, tokenizer: Any, sets: dict[str, EvalSet], *, max_new_tokens: int,
                temperature: float, seed: int, autocast_dtype: torch.dtype | None) -> dict[str, pd.DataFrame]:
    """Every evaluation set sampled (``n`` replies per item; ``n == 1`` decodes greedily) and scored."""
    out = {}
    for name, (items, n) in sets.items():
        out[name] = evaluate(model, tokenizer, items, n=n, max_new_tokens=max_new_tokens,
                             temperature=temperature if n > 1 else 0.0, seed=seed,
                             autocast_dtype=autocast_dtype)
    return out


def learnable(items: list[ChoiceItem], base_samples: pd.DataFrame) -> list[ChoiceItem]:
    """The items with at least one right base sample (pass@n > 0): where a group can disagree."""
    table = per_riddle(base_samples)
    keep = set(table.index[table["c"] > 0])
    return [item for item in items if item.riddle.id in keep]


def train_and_evaluate(items: list[ChoiceItem], settings: RiddleGRPOSettings, sets: dict[str, EvalSet],
                       *, max_new_tokens: int, temperature: float, eval_seed: int) -> dict:
    """Train a fresh policy on ``items`` with ``settings`` and sample the merged model on ``sets``.

    Returns ``history`` and ``samples`` (training, with ``run`` and ``seed`` columns), ``eval``
    (set name -> scored samples) and the run's ``seconds`` / ``cpu_seconds`` of training."""
    model, tokenizer, lora = load_policy(settings)
    result = train_riddles(items, settings, model=model, tokenizer=tokenizer, peft_config=lora)
    merged = result.model.merge_and_unload() if hasattr(result.model, "merge_and_unload") else result.model
    dtype = torch.bfloat16 if settings.bf16 and not torch.cuda.is_available() else None
    evals = sample_sets(merged, tokenizer, sets, max_new_tokens=max_new_tokens, temperature=temperature,
                        seed=eval_seed, autocast_dtype=dtype)
    tag = {"run": settings.rewards, "seed": settings.seed}
    return {"history": result.history.assign(**tag), "samples": result.samples.assign(**tag),
            "eval": {name: df.assign(**tag) for name, df in evals.items()},
            "seconds": result.seconds, "cpu_seconds": result.cpu_seconds}


def seeded(settings: RiddleGRPOSettings, rewards: str, seed: int) -> RiddleGRPOSettings:
    """``settings`` for one run of the sweep."""
    return replace(settings, rewards=rewards, seed=seed)


def accuracy_table(base: dict[str, pd.DataFrame], runs: list[dict]) -> pd.DataFrame:
    """One row per (set, run, seed): accuracy, its Wilson interval over items, commit rate.
    The base model is run "base" with seed -1."""
    rows = []
    for name, df in base.items():
        rows.append({"set": name, "run": "base", "seed": -1, **_brief(df)})
    for r in runs:
        for name, df in r["eval"].items():
            rows.append({"set": name, "run": df["run"].iloc[0], "seed": int(df["seed"].iloc[0]), **_brief(df)})
    return pd.DataFrame(rows)


def _brief(df: pd.DataFrame) -> dict:
    s = summarise(df)
    return {k: s[k] for k in ("accuracy", "accuracy_low", "accuracy_high", "commit_rate")}


def gain(table: pd.DataFrame, set_name: str, run: str, over: str = "base") -> dict:
    """Mean accuracy gain of ``run`` over ``over`` on ``set_name`` with its 95% t-interval over
    seeds (paired by seed when ``over`` is a trained run; the base model is one fixed model)."""
    d = table[table["set"] == set_name]
    after = d[d["run"] == run].set_index("seed")["accuracy"]
    if over == "base":
        diffs = after - float(d.loc[d["run"] == "base", "accuracy"].iloc[0])
    else:
        diffs = (after - d[d["run"] == over].set_index("seed")["accuracy"]).dropna()
    mean, lo, hi = t_interval(diffs.to_numpy())
    return {"mean": mean, "low": lo, "high": hi, "seeds": len(diffs), "per_seed": diffs.round(4).tolist()}
