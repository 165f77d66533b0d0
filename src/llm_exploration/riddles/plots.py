"""Figures for the riddle post: learnability, training curves over seeds, before vs after."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from llm_exploration.riddles.evaluate import FAILURES
from llm_exploration.riddles.stats import trailing_mean

COLORS = {"correctness": "#2a9d8f", "format": "#e76f51", "base": "#8d99ae"}
FAILURE_COLORS = dict(zip(FAILURES, ["#2a9d8f", "#8d99ae", "#e9c46a", "#f4a261", "#e76f51",
                                     "#b5838d", "#6d6875"]))


def plot_learnability(base: pd.DataFrame, n: int):
    """Left: how many of ``n`` base samples were right, per riddle, by split. Right: pass@k
    against k (the unbiased estimator), by split. ``base`` is :func:`evaluate.per_riddle` output
    with a ``split`` column and ``pass@k`` columns."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.3), gridspec_kw={"width_ratios": [1.4, 1]})
    bins = np.arange(n + 2) - 0.5
    for split, color in (("train", "#264653"), ("test", "#e9c46a")):
        c = base.loc[base["split"] == split, "c"]
        a.hist(c, bins=bins, color=color, alpha=0.75, label=f"{split} ({len(c)} riddles)")
    a.set(xlabel=f"right samples out of {n} (base model)", ylabel="riddles",
          title="How often the base model is right, per riddle")
    a.legend(fontsize=8)
    ks = sorted(int(c.split("@")[1]) for c in base.columns if c.startswith("pass@"))
    for split, color in (("train", "#264653"), ("test", "#e9c46a")):
        d = base[base["split"] == split]
        b.plot(ks, [d[f"pass@{k}"].mean() for k in ks], marker="o", ms=3, color=color, label=split)
    b.axhline(0.25, color="grey", lw=0.8, ls=":", label="chance at k = 1")
    b.set(xlabel="k (samples)", ylabel="pass@k", title="pass@k of the base model", ylim=(0, 1),
          xscale="log", xticks=ks, xticklabels=[str(k) for k in ks])
    b.minorticks_off()
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _band(ax, frame: pd.DataFrame, column: str, color: str, label: str, window: int) -> None:
    """Per-seed trailing means of ``column`` by step: their mean (line) and min-max (band)."""
    smooth = {seed: trailing_mean(d.sort_values("step")[column].to_numpy(), window).to_numpy()
              for seed, d in frame.groupby("seed")}
    steps = np.sort(frame["step"].unique())
    curves = np.array([v[: len(steps)] for v in smooth.values()])
    ax.fill_between(steps, curves.min(0), curves.max(0), color=color, alpha=0.2, lw=0)
    ax.plot(steps, curves.mean(0), color=color, lw=2, label=label)


def plot_training(history: pd.DataFrame, window: int = 5):
    """Reward components per GRPO step, for the experiment (format + correctness) and the
    format-only ablation: lines are the mean over seeds of a trailing ``window``-step mean,
    bands the range over seeds. ``history`` has ``run``, ``seed``, ``step`` and TRL's columns."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.3), sharey=True)
    for ax, column, title in ((a, "rewards/riddle_correctness_reward/mean", "Correctness reward"),
                              (b, "rewards/riddle_format_reward/mean", "Format reward (commits)")):
        for run, color in COLORS.items():
            d = history[history["run"] == run]
            if len(d):
                label = "format + correctness" if run == "correctness" else "format only (ablation)"
                _band(ax, d, column, color, f"{label}, {d['seed'].nunique()} seeds", window)
        ax.set(xlabel="GRPO step", title=title, ylim=(0, 1.02))
    a.set_ylabel(f"mean over the step's samples\n(trailing {window}-step mean)")
    a.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_lengths(samples: pd.DataFrame, window: int = 5):
    """Completion length (tokens) and committed answer length (words) per GRPO step, mean over
    seeds of a trailing mean, band: range over seeds; both runs."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.1))
    per_step = samples.groupby(["run", "seed", "step"]).agg(
        tokens=("completion_tokens", "mean"),
        words=("answer_words", lambda w: w[w > 0].mean() if (w > 0).any() else np.nan)).reset_index()
    per_step["words"] = per_step.groupby(["run", "seed"])["words"].transform(lambda s: s.ffill().bfill())
    for run, color in COLORS.items():
        d = per_step[per_step["run"] == run]
        if len(d):
            label = "format + correctness" if run == "correctness" else "format only"
            _band(a, d, "tokens", color, label, window)
            _band(b, d, "words", color, label, window)
    a.set(xlabel="GRPO step", ylabel="tokens", title="Completion length", ylim=(0, None))
    b.set(xlabel="GRPO step", ylabel="words", title="Answer length (committed answers)", ylim=(0, None))
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_accuracy(table: pd.DataFrame, base_pass_k: float, k: int):
    """Accuracy (pass@1) on each evaluation set: the base model, and after training (mean over
    seeds, error bar: 95% t-interval, dots: seeds) for both runs. ``table`` has ``set``, ``run``
    ("base", "correctness", "format"), ``seed`` and ``accuracy``."""
    sets = list(dict.fromkeys(table["set"]))
    runs = [r for r in ("base", "format", "correctness") if r in set(table["run"])]
    from llm_exploration.riddles.stats import t_interval

    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    width = 0.8 / len(runs)
    x = np.arange(len(sets))
    for j, run in enumerate(runs):
        pos = x + (j - (len(runs) - 1) / 2) * width
        for i, s in enumerate(sets):
            acc = table[(table["run"] == run) & (table["set"] == s)]["accuracy"].to_numpy()
            if not len(acc):
                continue
            mean = acc.mean()
            err = None
            if len(acc) > 1:
                _, lo, hi = t_interval(acc)
                err = [[mean - lo], [hi - mean]]
            elif {"accuracy_low", "accuracy_high"} <= set(table.columns):  # one model: Wilson over items
                row = table[(table["run"] == run) & (table["set"] == s)].iloc[0]
                err = [[mean - row["accuracy_low"]], [row["accuracy_high"] - mean]]
            ax.bar(pos[i], mean, width, color=COLORS[run], yerr=err, capsize=3,
                   label={"base": "base model", "format": "after GRPO, format only",
                          "correctness": "after GRPO, format + correctness"}[run] if i == 0 else None)
            if len(acc) > 1:
                ax.scatter(np.full(len(acc), pos[i]), acc, s=9, color="black", zorder=3)
    choice = [i for i, s in enumerate(sets) if not s.startswith("free-form")]
    ax.hlines(0.25, -0.5, max(choice) + 0.5, color="grey", lw=0.8, ls=":")
    ax.text(max(choice) + 0.45, 0.255, "chance", fontsize=8, color="grey", ha="right", va="bottom")
    ax.axhline(base_pass_k, color=COLORS["base"], lw=1, ls="--")
    ax.text(-0.45, base_pass_k + 0.01, f"base pass@{k}, held-out", fontsize=8, color="#555", va="bottom")
    ax.set_xticks(x, sets)
    ax.set(ylabel="accuracy (pass@1)", ylim=(0, 1), title="Accuracy before and after GRPO")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    fig.tight_layout()
    return fig


def plot_failures(shares: pd.DataFrame):
    """What the held-out samples were: one stacked bar per row of ``shares`` (rows: model,
    columns: outcome shares from :func:`evaluate.failure_modes`)."""
    shares = shares.reindex(columns=[f for f in FAILURES if f in shares.columns]).fillna(0)
    fig, ax = plt.subplots(figsize=(8.5, 0.5 + 0.55 * len(shares)))
    left = np.zeros(len(shares))
    y = np.arange(len(shares))[::-1]
    for outcome in shares.columns:
        vals = shares[outcome].to_numpy()
        ax.barh(y, vals, left=left, color=FAILURE_COLORS[outcome], label=outcome)
        left += vals
    ax.set_yticks(y, shares.index)
    ax.set(xlim=(0, 1), title="What the held-out replies were (share of samples)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(shares)), ncol=4)
    ax.grid(False, axis="y")
    fig.tight_layout()
    return fig
