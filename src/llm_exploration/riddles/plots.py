"""Figures for the riddle post: rewards and lengths over training, before vs after."""

from __future__ import annotations

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

OUTCOME_ORDER = ["correct", "other wrong answer", "word from the riddle",
                 "worked example's answer", "no answer"]
OUTCOME_COLORS = ["#2a9d8f", "#8d99ae", "#e9c46a", "#f4a261", "#e76f51"]


def _smooth(y: pd.Series, window: int) -> pd.Series:
    return y.rolling(window, min_periods=1, center=True).mean()


def plot_rewards(history: pd.DataFrame, samples: pd.DataFrame, window: int = 5):
    """Reward components per GRPO step (thin) and their rolling mean (thick)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    step = history["step"]
    strict = samples.groupby("step")["formatted"].mean().reindex(step)
    series = [("graded format reward", history["rewards/format_soft_reward/mean"], "#264653"),
              ("strict format (share of samples)", strict.to_numpy(), "#e9c46a"),
              ("correctness reward", history["rewards/riddle_correctness_reward/mean"], "#e76f51")]
    for label, y, color in series:
        y = pd.Series(np.asarray(y, dtype=float), index=step.index)
        ax.plot(step, y, color=color, alpha=0.3, lw=1)
        ax.plot(step, _smooth(y, window), color=color, lw=2.2, label=f"{label} ({window}-step mean)")
    ax.set(xlabel="GRPO step", ylabel="mean over the step's completions", ylim=(-0.03, 1.03),
           title="Reward components during training")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    return fig


def plot_lengths(history: pd.DataFrame, samples: pd.DataFrame, window: int = 5):
    """Completion length (tokens) and answer length (words) per step: a collapse into
    degenerate short answers would show as both falling."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.5, 3.2))
    step = history["step"]
    a.fill_between(step, history["completions/min_length"], history["completions/max_length"],
                   color="#264653", alpha=0.15, label="min to max")
    a.plot(step, history["completions/mean_length"], color="#264653", alpha=0.35, lw=1)
    a.plot(step, _smooth(history["completions/mean_length"], window), color="#264653", lw=2.2,
           label=f"mean ({window}-step smoothing)")
    a.set(xlabel="GRPO step", ylabel="completion length (tokens)", title="Completion length",
          ylim=(0, None))
    a.legend(fontsize=8, loc="lower left")
    per_step = samples.groupby("step")["answer_words"].agg(["mean", "min", "max"]).reindex(step)
    b.fill_between(step, per_step["min"], per_step["max"], color="#e76f51", alpha=0.15,
                   label="min to max")
    b.plot(step, per_step["mean"], color="#e76f51", alpha=0.35, lw=1)
    b.plot(step, _smooth(per_step["mean"], window), color="#e76f51", lw=2.2,
           label=f"mean ({window}-step smoothing)")
    b.set(xlabel="GRPO step", ylabel="answer length (words)",
          title="Answer length (samples with an answer)", ylim=(0, None))
    b.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_before_after(before: pd.DataFrame, after: pd.DataFrame, outcomes_before: pd.Series,
                      outcomes_after: pd.Series):
    """Left: accuracy by riddle kind (error bars: sd over the n sample draws). Right: what
    the samples were, before and after."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 1.25]})
    kinds = ["all", "descriptive", "wordplay"]
    x = np.arange(len(kinds))
    for k, (label, df, color) in enumerate([("before", before, "#8d99ae"), ("after", after, "#2a9d8f")]):
        means, sds, labels = [], [], []
        for kind in kinds:
            d = df if kind == "all" else df[df["kind"] == kind]
            per_draw = d.groupby("sample")["correct"].mean()
            means.append(per_draw.mean() if len(per_draw) else 0.0)
            sds.append(per_draw.std(ddof=1) if len(per_draw) > 1 else 0.0)
            labels.append(f"{int(d['correct'].sum())}/{len(d)}")
        bars = a.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=sds, capsize=3, color=color, label=label)
        a.bar_label(bars, labels, fontsize=7.5, padding=2)
    counts = [before["id"].nunique(), *(before[before["kind"] == k]["id"].nunique() for k in kinds[1:])]
    a.set_xticks(x, [f"{k}\n({n} riddles)" for k, n in zip(kinds, counts)])
    a.set(ylabel="accuracy (held-out riddles)", title="Accuracy before and after GRPO",
          ylim=(0, max(0.1, 1.15 * a.get_ylim()[1])))
    a.legend(fontsize=8)
    shares = pd.DataFrame({"before": outcomes_before.value_counts(normalize=True),
                           "after": outcomes_after.value_counts(normalize=True)}).reindex(OUTCOME_ORDER).fillna(0)
    left = np.zeros(2)
    for outcome, color in zip(OUTCOME_ORDER, OUTCOME_COLORS):
        vals = shares.loc[outcome, ["before", "after"]].to_numpy()
        b.barh([1, 0], vals, left=left, color=color, label=outcome)
        left += vals
    b.set_yticks([1, 0], ["before", "after"])
    b.set(xlabel="share of samples", xlim=(0, 1), title="What the samples were")
    b.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    b.grid(False, axis="y")
    fig.tight_layout()
    return fig


def training_samples_chart(samples: pd.DataFrame) -> alt.Chart:
    """Every training completion: step against answer length, coloured by reward; hover to read it."""
    df = samples.assign(answer=samples["answer"].fillna("(no answer)"),
                        answer_words=samples["answer_words"].fillna(0),
                        completion=samples["completion"].str.slice(0, 300),
                        outcome=np.where(samples["reward"] > 0, "correct",
                                         np.where(samples["formatted"], "formatted, wrong",
                                                  "not in format")))
    return alt.Chart(df).mark_circle(size=45, opacity=0.6).encode(
        x=alt.X("step:Q", title="GRPO step"),
        y=alt.Y("answer_words:Q", title="answer length (words; 0 = no answer)"),
        color=alt.Color("outcome:N", title="completion",
                        scale=alt.Scale(domain=["correct", "formatted, wrong", "not in format"],
                                        range=["#2a9d8f", "#8d99ae", "#e76f51"])),
        tooltip=["step:Q", "id:N", "answer:N", "completion:N"],
    ).properties(
        width=620, height=260, title="Every training completion (hover to read it)").interactive()
