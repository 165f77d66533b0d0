"""Figures for the sparse-attention post: masks, accuracy, window sweep, speed."""

from __future__ import annotations

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

KIND_COLOURS = {"dense": "#4c72b0", "window+global": "#dd8452", "window": "#c44e52"}
SCHEDULE_COLOURS = {
    "dense": "#4c72b0",
    "sparse": "#dd8452",
    "sparse-no-globals": "#c44e52",
    "first-2-dense": "#55a868",
    "every-3-dense": "#8172b3",
}


def mask_grid(
    tokens: list[str], masks: dict[str, torch.Tensor], kinds: dict[str, tuple[str, ...]]
) -> Figure:
    """One row per schedule, one column per layer: who may attend to whom in one sentence.

    ``masks[name]``: ``(layers, seq, seq) bool`` for one sentence (no padding).
    """
    names = list(masks)
    n_layers = next(iter(masks.values())).shape[0]
    seq = len(tokens)
    fig, axes = plt.subplots(
        len(names),
        n_layers,
        figsize=(1.4 * n_layers + 1.1, 1.45 * len(names) + 0.6),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for row, name in enumerate(names):
        for layer in range(n_layers):
            ax = axes[row, layer]
            kind = kinds[name][layer]
            cmap = ListedColormap(["#f4f4f4", KIND_COLOURS[kind]])
            ax.imshow(
                masks[name][layer].numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(f"layer {layer}", fontsize=9)
            if layer == 0:
                ax.set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLOURS.values()]
    fig.legend(
        handles,
        [f"{k} layer: may attend" for k in KIND_COLOURS],
        loc="lower center",
        ncol=3,
        fontsize=9,
        bbox_to_anchor=(0.5, -0.01),
    )
    fig.suptitle(
        f"Attention masks for one tweet ({seq} tokens; rows: queries, columns: keys)", fontsize=11
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig


def mask_detail(tokens: list[str], mask: torch.Tensor, title: str) -> Figure:
    """One mask with the tokens on both axes (``mask``: ``(seq, seq) bool``)."""
    seq = len(tokens)
    fig, ax = plt.subplots(figsize=(0.28 * seq + 1.8, 0.28 * seq + 1.2))
    ax.imshow(
        mask.numpy(),
        cmap=ListedColormap(["#f4f4f4", KIND_COLOURS["window+global"]]),
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks(range(seq), tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(seq), tokens, fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.grid(False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def score_bars(
    results: pd.DataFrame, schedules: list[str], majority: dict[str, float] | None = None
) -> Figure:
    """Accuracy and macro-F1 per schedule and task: bars = mean over seeds, whiskers = std, dots = seeds.

    ``majority``: per task, the accuracy of always predicting the most frequent class (drawn dotted).
    """
    tasks = list(dict.fromkeys(results["task"]))
    metrics = [("accuracy", "accuracy"), ("macro_f1", "macro-F1")]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    width = 0.38
    for ax, task in zip(axes[0], tasks):
        sub = results[results["task"] == task]
        for m, (metric, label) in enumerate(metrics):
            for i, name in enumerate(schedules):
                vals = sub.loc[sub["schedule"] == name, metric].to_numpy()
                x = i + (m - 0.5) * width
                ax.bar(
                    x,
                    vals.mean(),
                    width,
                    yerr=vals.std(ddof=1) if len(vals) > 1 else 0,
                    color=SCHEDULE_COLOURS.get(name, "grey"),
                    alpha=1.0 if m == 0 else 0.55,
                    capsize=3,
                    edgecolor="black",
                    linewidth=0.5,
                )
                ax.scatter(np.full(len(vals), x), vals, s=9, color="black", zorder=3)
        if majority is not None:
            ax.axhline(
                majority[task],
                color="black",
                linestyle=":",
                linewidth=1.2,
                label="accuracy of always guessing the majority class",
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xticks(range(len(schedules)), schedules, rotation=20, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score on the test subset")
        ax.set_title(f"tweet_eval {task}: accuracy (solid) and macro-F1 (pale)")
    fig.tight_layout()
    return fig


def window_sweep(sweep: pd.DataFrame, references: pd.DataFrame, metric: str = "macro_f1") -> Figure:
    """Score vs window size, mean ± std over seeds, with dense and window+global references.

    ``sweep``: rows with ``window``, ``schedule`` and ``metric`` (one per seed);
    ``references``: rows of other schedules (their mean ± std drawn as bands).
    """
    label = {"macro_f1": "macro-F1", "accuracy": "accuracy"}[metric]
    fig, ax = plt.subplots(figsize=(7.8, 3.8))
    for name, group in sweep.groupby("schedule", sort=False):
        stats = group.groupby("window")[metric].agg(["mean", "std"]).reset_index()
        ax.errorbar(
            stats["window"],
            stats["mean"],
            yerr=stats["std"],
            marker="o",
            capsize=3,
            color=SCHEDULE_COLOURS.get(name, "grey"),
            label=f"{name} (window k)",
        )
    for name, group in references.groupby("schedule", sort=False):
        mean, std = group[metric].mean(), group[metric].std(ddof=1)
        colour = SCHEDULE_COLOURS.get(name, "grey")
        ax.axhline(
            mean,
            color=colour,
            linestyle="--",
            linewidth=1,
            label=f"{name} (k = {group['window'].iloc[0]})" if name != "dense" else "dense",
        )
        ax.axhspan(mean - std, mean + std, color=colour, alpha=0.12)
    ax.set_xscale("log", base=2)
    windows = sorted(sweep["window"].unique())
    ax.set_xticks(windows, [str(w) for w in windows])
    ax.set_xlabel("window k (each token sees k neighbours on each side)")
    ax.set_ylabel(f"{label} on the test subset")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def speed_vs_length(table: pd.DataFrame, scope: str = "layer") -> Figure:
    """Median time and peak memory vs sequence length, dense / masked / sparse, both passes."""
    sub = table[table["scope"] == scope]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {"dense": "#4c72b0", "masked": "#937860", "sparse": "#dd8452"}
    styles = {"forward": "-", "forward+backward": "--"}
    for (variant, pass_name), group in sub.groupby(["variant", "pass"], sort=False):
        group = group.sort_values("length")
        kw = {
            "color": colours[variant],
            "linestyle": styles[pass_name],
            "marker": "o",
            "markersize": 4,
            "label": f"{variant}, {pass_name}",
        }
        axes[0].plot(group["length"], 1e3 * group["seconds"], **kw)
        axes[1].plot(group["length"], group["peak_mib"], **kw)
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sequence length (tokens)")
        lengths = sorted(sub["length"].unique())
        ax.set_xticks(lengths, [str(n) for n in lengths])
    axes[0].set_ylabel("median time (ms)")
    axes[1].set_ylabel("peak memory of the call (MiB)")
    what = "one attention layer" if scope == "layer" else "whole 6-layer encoder"
    axes[0].set_title(f"Time, {what}")
    axes[1].set_title(f"Memory, {what}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def seeds_chart(results: pd.DataFrame) -> alt.Chart:
    """Interactive: every run (task, schedule, seed) with its scores in the tooltip."""
    return (
        alt.Chart(results)
        .mark_circle(size=70)
        .encode(
            x=alt.X("accuracy:Q", scale=alt.Scale(zero=False), title="accuracy"),
            y=alt.Y("macro_f1:Q", scale=alt.Scale(zero=False), title="macro-F1"),
            color=alt.Color(
                "schedule:N",
                scale=alt.Scale(
                    domain=list(SCHEDULE_COLOURS), range=list(SCHEDULE_COLOURS.values())
                ),
            ),
            shape=alt.Shape("task:N"),
            tooltip=[
                "task",
                "schedule",
                "window",
                "seed",
                alt.Tooltip("accuracy:Q", format=".3f"),
                alt.Tooltip("macro_f1:Q", format=".3f"),
                alt.Tooltip("seconds:Q", format=".1f", title="train seconds"),
            ],
        )
        .properties(width=420, height=300, title="Every fine-tuning run (hover for details)")
        .interactive()
    )
