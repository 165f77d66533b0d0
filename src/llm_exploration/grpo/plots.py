"""Figures of the "Simple GRPO trainer" post, one idea per figure (matplotlib; one Altair chart).

Training logs come in as one long DataFrame with a row per (trainer, seed, step) and TRL's
metric names as columns (``reward``, ``rewards/<func>/mean``, ``frac_reward_zero_std``,
``completions/mean_length``, ``step_time``, ...), as produced by the engine and by
:func:`llm_exploration.grpo.compare.train_trl`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TRAINER_COLORS = {"ours": "tab:blue", "TRL": "tab:orange"}
SEED_STYLES = ["-", "--", ":", "-."]


def _color(trainer: str) -> str:
    return TRAINER_COLORS.get(trainer, "tab:gray")


def advantage_figure(rewards: np.ndarray, advantages: np.ndarray, labels: list[str] | None = None) -> Figure:
    """Rewards (top) and group-relative advantages (bottom) of one real rollout.

    rewards, advantages: (P, G) arrays, one row per prompt. Groups whose rewards are all equal
    (zero advantage, no learning signal) are shaded.
    """
    rewards, advantages = np.asarray(rewards, float), np.asarray(advantages, float)
    P, G = rewards.shape
    x = np.arange(P * G) + np.repeat(np.arange(P), G)  # a gap between groups
    fig, (ax_r, ax_a) = plt.subplots(2, 1, figsize=(max(6.5, 0.28 * P * G + 1.5), 4.6), sharex=True)
    colors = plt.cm.tab10(np.repeat(np.arange(P) % 10, G))
    ax_r.scatter(x, rewards.ravel(), c=colors, s=28, zorder=3)
    for p in range(P):
        xs = x[p * G : (p + 1) * G]
        ax_r.hlines(rewards[p].mean(), xs[0] - 0.4, xs[-1] + 0.4, colors="k", lw=1, ls="--", zorder=2)
        if np.allclose(rewards[p], rewards[p][0]):
            for ax in (ax_r, ax_a):
                ax.axvspan(xs[0] - 0.5, xs[-1] + 0.5, color="0.85", zorder=0, lw=0)
    ax_r.set_ylabel("total reward $R_i$")
    ax_r.set_title("One rollout: G completions per prompt; dashed line = the group's mean reward")
    bar_colors = np.where(advantages.ravel() > 0, "tab:green", np.where(advantages.ravel() < 0, "tab:red", "0.5"))
    ax_a.bar(x, advantages.ravel(), color=bar_colors, width=0.8)
    ax_a.axhline(0, color="k", lw=0.8)
    ax_a.set_ylabel("advantage $A_i$")
    centers = [x[p * G : (p + 1) * G].mean() for p in range(P)]
    ax_a.set_xticks(centers)
    ax_a.set_xticklabels(labels or [f"prompt {p + 1}" for p in range(P)], rotation=30 if P > 6 else 0, ha="right" if P > 6 else "center")
    ax_a.set_xlabel("completions, grouped by prompt (grey: all rewards equal, so every advantage is 0)")
    fig.tight_layout()
    return fig


def surrogate_figure(curves: dict[str, pd.DataFrame], epsilon_low: float, epsilon_high: float) -> Figure:
    """The clipped per-token objective (left) and its gradient (right) versus the ratio r.

    curves: ``{"A > 0": df, "A < 0": df}`` from :func:`llm_exploration.grpo.explain.surrogate_curve`.
    """
    fig, (ax_o, ax_g) = plt.subplots(1, 2, figsize=(9, 3.6))
    for (label, df), color in zip(curves.items(), ["tab:green", "tab:red"]):
        ax_o.plot(df["ratio"], df["objective"], color=color, lw=2, label=label)
        ax_g.plot(df["ratio"], df["gradient"], color=color, lw=2, label=label)
    for ax in (ax_o, ax_g):
        ax.axvspan(1 - epsilon_low, 1 + epsilon_high, color="0.9", zorder=0)
        ax.axvline(1, color="k", lw=0.8, ls=":")
        ax.set_xlabel(r"probability ratio $r = \pi_\theta / \pi_{\mathrm{old}}$")
        ax.legend(loc="best")
    ax_o.set_ylabel(r"objective $\min(rA,\ \mathrm{clip}(r)A)$")
    ax_o.set_title("Objective per token (|A| = 1)")
    ax_g.set_ylabel(r"gradient $\partial\,$objective$/\partial \log\pi_\theta$")
    ax_g.set_title("Its gradient: zero once r leaves the grey band\nin the direction the advantage pushes")
    fig.tight_layout()
    return fig


def length_bias_figure(table: pd.DataFrame) -> Figure:
    """Per-token push versus completion length for each loss type, on a real rollout.

    table: :func:`llm_exploration.grpo.explain.length_bias_table`. One panel per loss type;
    points are completions, colored by the sign of their advantage.
    """
    types = list(dict.fromkeys(table["loss_type"]))
    fig, axes = plt.subplots(1, len(types), figsize=(3.3 * len(types), 3.4), sharex=True)
    for ax, loss_type in zip(np.atleast_1d(axes), types):
        d = table[(table["loss_type"] == loss_type) & (table["advantage"] != 0)]
        # normalise by |A| so only the length dependence is left
        weight = d["per_token"] / d["advantage"].abs()
        pos = d["advantage"] > 0
        ax.scatter(d["length"][pos], weight[pos], s=18, color="tab:green", label="A > 0")
        ax.scatter(d["length"][~pos], weight[~pos], s=18, color="tab:red", marker="x", label="A < 0")
        ax.set_title(loss_type)
        ax.set_xlabel("completion length (tokens)")
        ax.set_ylim(0, None)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("push per token / |A|\n" + r"($|\partial$loss$/\partial\log p_t|$ / |A|)")
    first.legend(loc="upper right")
    fig.tight_layout()
    return fig


def _integer_steps(fig: Figure) -> None:
    for ax in fig.axes:
        if ax.get_xlabel() == "optimizer step":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _band(ax, df: pd.DataFrame, column: str, trainer: str, smooth: int, label: str | None = None) -> None:
    """Thin line per seed, bold rolling mean over seeds, shaded min-max band across seeds."""
    color = _color(trainer)
    wide = df.pivot_table(index="step", columns="seed", values=column)
    for seed in wide.columns:
        ax.plot(wide.index, wide[seed], color=color, lw=0.6, alpha=0.35)
    smooth_wide = wide.rolling(smooth, min_periods=1).mean()
    n = wide.shape[1]
    if n > 1:
        ax.fill_between(wide.index, smooth_wide.min(axis=1), smooth_wide.max(axis=1), color=color, alpha=0.18, lw=0)
    ax.plot(wide.index, smooth_wide.mean(axis=1), color=color, lw=2.2,
            label=label or f"{trainer} ({n} seed{'s' if n > 1 else ''})")


def reward_curves_figure(logs: pd.DataFrame, reward_names: list[str], smooth: int = 5) -> Figure:
    """Mean reward per training step for each reward function and in total, each trainer.

    Thin lines: every seed's raw per-step mean; bold: the mean over seeds of a ``smooth``-step
    (trailing) rolling mean; band: min-max of the smoothed curves across seeds. With a single
    reward function the total would repeat it, so only that panel is drawn.
    """
    columns = [f"rewards/{n}/mean" for n in reward_names]
    titles = list(reward_names)
    if len(reward_names) > 1:
        columns, titles = columns + ["reward"], titles + ["total (weighted sum)"]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.4), sharex=True)
    for ax, column, title in zip(np.atleast_1d(axes), columns, titles):
        for trainer, df in logs.groupby("trainer", sort=False):
            _band(ax, df, column, trainer, smooth)
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
    np.atleast_1d(axes)[0].set_ylabel("mean reward of the step's completions")
    np.atleast_1d(axes)[-1].legend(loc="best")
    _integer_steps(fig)
    fig.tight_layout()
    return fig


def step_time_figure(logs: pd.DataFrame) -> Figure:
    """Wall time per optimizer step (left) and completion tokens per second (right), per trainer."""
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(9, 3.4))
    for trainer, df in logs.groupby("trainer", sort=False):
        for k, (seed, d) in enumerate(df.groupby("seed")):
            ax_t.plot(d["step"], d["step_time"], color=_color(trainer), lw=1.2, alpha=0.85,
                      ls=SEED_STYLES[k % len(SEED_STYLES)], label=f"{trainer}, seed {seed}")
    ax_t.set_xlabel("optimizer step")
    ax_t.set_ylabel("wall time of the step (s)")
    ax_t.set_ylim(0, None)
    ax_t.legend(loc="best", fontsize=8)
    trainers = list(dict.fromkeys(logs["trainer"]))
    data = [logs.loc[logs["trainer"] == t, "completion_tokens_per_s"].to_numpy() for t in trainers]
    parts = ax_s.boxplot(data, patch_artist=True, widths=0.5)
    ax_s.set_xticks(range(1, len(trainers) + 1), trainers)
    for patch, t in zip(parts["boxes"], trainers):
        patch.set_facecolor(_color(t))
        patch.set_alpha(0.5)
    ax_s.set_ylabel("completion tokens per second")
    ax_s.set_title("Throughput over all steps")
    ax_s.set_ylim(0, None)
    _integer_steps(fig)
    fig.tight_layout()
    return fig


def dynamics_figure(logs: pd.DataFrame, smooth: int = 5) -> Figure:
    """Fraction of groups with zero reward std (left) and mean completion length (right)."""
    fig, (ax_z, ax_l) = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    for trainer, df in logs.groupby("trainer", sort=False):
        _band(ax_z, df, "frac_reward_zero_std", trainer, smooth)
        _band(ax_l, df, "completions/mean_length", trainer, smooth)
    ax_z.set_ylabel("fraction of completions in\nzero-std groups (no gradient)")
    ax_z.set_ylim(-0.02, 1.02)
    ax_l.set_ylabel("mean completion length (tokens)")
    ax_l.set_ylim(0, None)
    for ax in (ax_z, ax_l):
        ax.set_xlabel("optimizer step")
    ax_l.legend(loc="best")
    _integer_steps(fig)
    fig.tight_layout()
    return fig


def loss_signal_figure(logs: pd.DataFrame) -> Figure:
    """The reported loss (left) next to the gradient norm (right) over training."""
    fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
    for trainer, df in logs.groupby("trainer", sort=False):
        for k, (seed, d) in enumerate(df.groupby("seed")):
            style = {"color": _color(trainer), "lw": 1.2, "alpha": 0.85, "ls": SEED_STYLES[k % len(SEED_STYLES)]}
            ax_l.plot(d["step"], d["loss"], label=f"{trainer}, seed {seed}", **style)
            ax_g.plot(d["step"], d["grad_norm"], **style)
    ax_l.axhline(0, color="k", lw=0.8)
    ax_l.set_ylabel("reported loss")
    ax_l.set_title("The loss value hovers around 0 ...")
    ax_g.set_ylabel("gradient norm (before clipping)")
    ax_g.set_title("... while its gradient is far from 0")
    ax_g.set_ylim(0, None)
    for ax in (ax_l, ax_g):
        ax.set_xlabel("optimizer step")
    ax_l.legend(loc="best", fontsize=8)
    _integer_steps(fig)
    fig.tight_layout()
    return fig


def accuracy_figure(table: pd.DataFrame) -> Figure:
    """Held-out strict and lenient accuracy before and after training.

    table: :func:`llm_exploration.grpo.compare.accuracy_table` (columns ``model``, ``strict``,
    ``lenient`` and optionally their standard errors ``strict s.e.``, ``lenient s.e.``, drawn
    as error bars).
    """
    fig, ax = plt.subplots(figsize=(max(5.5, 1.3 * len(table) + 2), 3.4))
    x = np.arange(len(table))
    w = 0.38
    err = {k: table.get(f"{k} s.e.") for k in ("strict", "lenient")}
    b1 = ax.bar(x - w / 2, table["strict"], w, yerr=err["strict"], capsize=3,
                label="strict: inside <answer> tags", color="tab:purple")
    b2 = ax.bar(x + w / 2, table["lenient"], w, yerr=err["lenient"], capsize=3,
                label="lenient: last number in the text", color="tab:cyan")
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
    ax.set_xticks(x, table["model"])
    ax.set_ylabel("held-out accuracy")
    ax.set_xlabel("model")
    ax.set_ylim(0, 1.12)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def reward_chart(logs: pd.DataFrame, reward_names: list[str]):
    """Interactive Altair chart: every reward function's per-step mean, per trainer and seed."""
    import altair as alt

    columns = {f"rewards/{n}/mean": n for n in reward_names} | {"reward": "total"}
    long = logs.melt(id_vars=["trainer", "seed", "step"], value_vars=list(columns), var_name="metric", value_name="mean reward")
    long["reward function"] = long["metric"].map(columns)
    long["run"] = long["trainer"] + " seed " + long["seed"].astype(str)
    select = alt.selection_point(fields=["run"], bind="legend")
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="optimizer step"),
            y=alt.Y("mean reward:Q"),
            color=alt.Color("run:N", title="run (click to highlight)"),
            opacity=alt.condition(select, alt.value(0.9), alt.value(0.12)),
            tooltip=["run", "reward function", "step", alt.Tooltip("mean reward:Q", format=".3f")],
        )
        .add_params(select)
        .properties(width=230, height=180)
        .facet(column=alt.Column("reward function:N", title=None))
    )


def heldout_figure(table: pd.DataFrame, per_question: dict[str, np.ndarray], k: int, temperature: float = 1.0,
                   reps: int = 2000, seed: int = 0) -> Figure:
    """Held-out greedy lenient accuracy per model (bars, 95% bootstrap interval over questions)
    with pass@1 and pass@k at ``temperature`` T (dots).

    table: indexed by model with columns ``greedy``, ``pass@1, T={T}`` and ``pass@{k}, T={T}``;
    per_question: each model's (questions,) greedy accuracy, for the intervals.
    """
    names = list(table.index)
    rng = np.random.default_rng(seed)
    lows, highs = [], []
    for name in names:
        q = np.asarray(per_question[name], float)
        means = q[rng.integers(0, len(q), size=(reps, len(q)))].mean(1)
        lows.append(np.quantile(means, 0.025))
        highs.append(np.quantile(means, 0.975))
    mean = table["greedy"].to_numpy()
    colors = [_color(n.split(",")[0]) for n in names]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 3.8))
    x = np.arange(len(names))
    ax.bar(x, mean, 0.6, color=colors, alpha=0.75,
           yerr=[mean - np.array(lows), np.array(highs) - mean], capsize=3, label="greedy")
    t = f"{temperature:g}"
    ax.scatter(x, table[f"pass@1, T={t}"], color="k", marker="o", s=18, zorder=3, label=f"pass@1, T = {t}")
    ax.scatter(x, table[f"pass@{k}, T={t}"], color="k", marker="D", s=22, zorder=3, label=f"pass@{k}, T = {t}")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("held-out lenient accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    fig.tight_layout()
    return fig
