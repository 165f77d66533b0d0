"""The riddle post's experiment in three calls: measure the base model, train one seed, tabulate.

- :func:`learnable`: the training items the base model gets right at least once in ``n`` samples
  (GRPO learns only from groups whose rewards differ).
- :func:`train_and_evaluate`: one GRPO run (fresh model, one seed, one reward setting), then the
  merged model sampled on every evaluation set.
- :func:`accuracy_table` / :func:`gain`: accuracy per set, run and seed; the gain over the base
  model (or another run), paired by riddle, with a two-level bootstrap interval (seeds, riddles)
  and the t-interval over seeds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from llm_exploration.riddles.choices import ChoiceItem, rotations
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.evaluate import evaluate, per_riddle, summarise
from llm_exploration.riddles.stats import paired_bootstrap, t_interval, two_level_bootstrap
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


def position_balanced(items: list[ChoiceItem]) -> list[ChoiceItem]:
    """Every item at every position (:func:`choices.rotations`): the training rows, so that the
    right answer's letter carries no information whichever items the learnability filter kept."""
    return [r for item in items for r in rotations(item)]


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


def accuracy_given_commit(df: pd.DataFrame) -> float:
    """The share of committed replies that are right (NaN when none commits)."""
    committed = df["committed"].astype(bool)
    return float(df.loc[committed, "correct"].mean()) if committed.any() else float("nan")


def _per_riddle(df: pd.DataFrame, ids: list[str]) -> np.ndarray:
    return df.groupby("id")["correct"].mean().reindex(ids).to_numpy(dtype=float)


def gain(base: dict[str, pd.DataFrame], runs: list[dict], set_name: str, run: str, over: str = "base",
         ids_for: Any = None) -> dict:
    """Accuracy gain of ``run`` over ``over`` (the base model or another run, paired by seed) on
    ``set_name``, paired by riddle: mean, two-level bootstrap 95% interval (``low``/``high``;
    seeds and riddles resampled, so the base model's own sampling error counts) and the
    t-interval over seeds of the per-seed gains (``t_low``/``t_high``, training noise alone).

    ``ids_for(r)``, if given, picks the riddles scored for run ``r`` (e.g. those it trained on);
    the gain is then pooled over those (seed, riddle) pairs."""
    frames = {(r["eval"][set_name]["run"].iloc[0], int(r["eval"][set_name]["seed"].iloc[0])): r
              for r in runs if set_name in r["eval"]}
    seeds = sorted(s for (name, s) in frames if name == run)
    rows, per_seed = [], []
    for seed in seeds:
        r = frames[(run, seed)]
        df = r["eval"][set_name]
        ids = list(ids_for(r)) if ids_for is not None else list(dict.fromkeys(df["id"]))
        ref = base[set_name] if over == "base" else frames[(over, seed)]["eval"][set_name]
        d = _per_riddle(df, ids) - _per_riddle(ref, ids)
        d = d[~np.isnan(d)]
        rows.append(d)
        per_seed.append(float(d.mean()) if len(d) else float("nan"))
    if ids_for is None:
        mean, lo, hi = two_level_bootstrap(np.vstack(rows))
    else:  # different riddles per seed: pool the (seed, riddle) differences, resample them
        mean, lo, hi = paired_bootstrap(np.concatenate(rows))
    _, t_lo, t_hi = t_interval(per_seed) if len(per_seed) > 1 else (0, float("nan"), float("nan"))
    return {"mean": mean, "low": lo, "high": hi, "t_low": t_lo, "t_high": t_hi, "seeds": len(seeds),
            "riddles": [len(d) for d in rows], "per_seed": [round(x, 4) for x in per_seed]}
