"""Figures for the sparse-attention post: masks, attention flow, probe and fine-tune scores, cost."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from llm_exploration.sparse.flow import DESTINATIONS

READOUT_STYLE = {
    "cls": ("#4c72b0", "o", "final [CLS] vector"),
    "mean": ("#dd8452", "s", "mean over tokens"),
}
DEST_COLOURS = dict(zip(DESTINATIONS, ["#c44e52", "#8172b3", "#55a868", "#4c72b0", "#cccccc"]))


def kind_masks(tokens: list[str], masks: dict[str, torch.Tensor], title: str) -> Figure:
    """One panel per layer kind: who may attend to whom in one text (``(seq, seq) bool`` each)."""
    n = len(masks)
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(8.4, 2.9 * rows), squeeze=False)
    seq = len(tokens)
    ticks = [0, seq - 1]
    for ax, (name, mask) in zip(axes.flat, masks.items()):
        ax.imshow(
            mask.numpy(),
            cmap=ListedColormap(["#f2f2f2", "#dd8452"]),
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=10)
        ax.set_xticks(ticks, [tokens[0], tokens[-1]], fontsize=8)
        ax.set_yticks(ticks, [tokens[0], tokens[-1]], fontsize=8)
        ax.grid(False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes[-1, 0].set_xlabel("key (attended to)")
    axes[-1, 0].set_ylabel("query (attending)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def flow_bars(flows: dict[str, pd.DataFrame]) -> Figure:
    """Stacked bars per layer: where a token's attention goes, one panel per variant."""
    n = len(flows)
    fig, axes = plt.subplots(1, n, figsize=(2.0 * n + 0.8, 3.4), sharey=True, squeeze=False)
    for ax, (name, df) in zip(axes[0], flows.items()):
        wide = df.pivot(index="layer", columns="destination", values="share")[list(DESTINATIONS)]
        bottom = np.zeros(len(wide))
        for dest in DESTINATIONS:
            ax.bar(
                wide.index,
                wide[dest],
                bottom=bottom,
                color=DEST_COLOURS[dest],
                width=0.8,
                label=dest,
                edgecolor="white",
                linewidth=0.4,
            )
            bottom += wide[dest].to_numpy()
        ax.set_title(name, fontsize=10)
        ax.set_xticks(wide.index)
        ax.set_xlabel("layer")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("share of a token's attention")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.0, 0.55), fontsize=8
    )
    fig.tight_layout()
    return fig


def probe_scores(
    scores: dict[str, pd.DataFrame],
    majority: dict[str, float],
    order: list[str],
    title: str = "Frozen-encoder probes",
    chance: float | None = None,
) -> Figure:
    """Macro-F1 with 95% bootstrap intervals per variant and readout, one panel per task.

    Dotted line: always predicting the majority class; dashed (if ``chance``): random guessing;
    thin lines: dense, per readout.
    Collapsed runs (one class for most predictions) are drawn as a cross and named.
    """
    tasks = list(scores)
    seen = set().union(*(set(df["variant"]) for df in scores.values()))
    present = [v for v in order if v in seen]  # one row per variant, shared by every panel
    y = {v: len(present) - 1 - i for i, v in enumerate(present)}
    fig, axes = plt.subplots(
        1,
        len(tasks),
        figsize=(3.9 * len(tasks) + 1.0, 0.42 * len(present) + 1.5),
        sharey=True,
        squeeze=False,
    )
    for ax, task in zip(axes[0], tasks):
        df = scores[task]
        for k, (readout, (colour, marker, label)) in enumerate(READOUT_STYLE.items()):
            sub = df[df["readout"] == readout]
            dense = sub.loc[sub["variant"] == "dense", "macro_f1"]
            if len(dense):
                ax.axvline(float(dense.iloc[0]), color=colour, linewidth=0.8, alpha=0.6)
            for _, row in sub.iterrows():
                if row["variant"] not in y:
                    continue
                yy = y[row["variant"]] + (0.16 if k == 0 else -0.16)
                ax.errorbar(
                    row["macro_f1"],
                    yy,
                    xerr=[
                        [row["macro_f1"] - row["macro_f1_low"]],
                        [row["macro_f1_high"] - row["macro_f1"]],
                    ],
                    fmt="x" if row["collapsed"] else marker,
                    color=colour,
                    capsize=2,
                    markersize=5,
                    label=label if row["variant"] == present[0] else None,
                )
                if row["collapsed"]:
                    ax.annotate(
                        "collapsed",
                        (row["macro_f1"], yy),
                        fontsize=7,
                        xytext=(4, -3),
                        textcoords="offset points",
                    )
        ax.axvline(
            majority[task],
            color="black",
            linestyle=":",
            linewidth=1.2,
            label="always the majority class",
        )
        if chance is not None:
            ax.axvline(chance, color="grey", linestyle="--", linewidth=1.0, label="random guessing")
        ax.set_xlabel("macro-F1 on the test split (95% interval)")
        ax.set_title(f"tweet_eval {task}")
    axes[0, 0].set_yticks(list(y.values()), list(y.keys()))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(title, fontsize=11)
    rows = -(-len(labels) // 3)  # legend rows below the panels
    fig.tight_layout(rect=(0, 0.05 + 0.05 * rows * 4 / (0.42 * len(present) + 1.5), 1, 1))
    return fig


def seed_scores(
    results: pd.DataFrame, summary: pd.DataFrame, majority: float, title: str
) -> Figure:
    """Left: macro-F1 of every seed per variant (crosses: collapsed). Right: paired difference to
    dense, mean over seeds with its t-interval."""
    order = list(dict.fromkeys(results["variant"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 0.5 * len(order) + 1.6), sharey=True)
    y = {v: len(order) - 1 - i for i, v in enumerate(order)}
    for _, row in results.iterrows():
        left.plot(
            row["macro_f1"],
            y[row["variant"]],
            "x" if row["collapsed"] else "o",
            color="#c44e52" if row["collapsed"] else "#4c72b0",
            alpha=0.8,
            markersize=5,
        )
    for _, row in summary.iterrows():
        if pd.notna(row.get("macro_f1_value")):
            left.plot(row["macro_f1_value"], y[row["variant"]], "|", color="black", markersize=16)
        if pd.notna(row.get("delta")):
            right.errorbar(
                row["delta"],
                y[row["variant"]],
                xerr=[[row["delta"] - row["delta_low"]], [row["delta_high"] - row["delta"]]],
                fmt="o",
                color="#4c72b0",
                capsize=3,
            )
    left.axvline(
        majority, color="black", linestyle=":", linewidth=1.2, label="always the majority class"
    )
    left.set_yticks(list(y.values()), list(y.keys()))
    left.set_xlabel("macro-F1 (dots: seeds, bar: mean)")
    left.set_ylim(-0.5, len(order) - 0.5 + 0.5)  # a free band on top for the legend
    left.legend(fontsize=8, loc="upper left")
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel("macro-F1 minus dense, same seed\n(mean and 95% t-interval)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def cost_bars(cost: pd.DataFrame, title: str) -> Figure:
    """Time (CPU) and peak memory of each variant relative to dense, forward and forward+backward."""
    passes = list(dict.fromkeys(cost["pass"]))
    variants = list(dict.fromkeys(cost["variant"]))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.2))
    width = 0.8 / len(passes)
    for ax, (col, label) in zip(axes, [("cpu_seconds", "CPU time"), ("peak_mib", "peak memory")]):
        for j, p in enumerate(passes):
            sub = cost[cost["pass"] == p].set_index("variant")
            rel = sub[col] / sub.loc["dense", col]
            xs = np.arange(len(variants)) + (j - (len(passes) - 1) / 2) * width
            ax.bar(
                xs, [rel[v] for v in variants], width, label=p, color=["#4c72b0", "#dd8452"][j % 2]
            )
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xticks(range(len(variants)), variants, rotation=15, ha="right")
        ax.set_ylabel(f"{label} / dense")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def speed_vs_length(table: pd.DataFrame, scope: str = "layer") -> Figure:
    """Median time and peak memory vs sequence length, dense / masked / sparse, both passes."""
    sub = table[table["scope"] == scope]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
    colours = {"dense": "#4c72b0", "masked": "#937860", "sparse": "#dd8452"}
    markers = {"dense": ("s", 7, "none"), "masked": ("^", 4, None), "sparse": ("o", 4, None)}
    styles = {"forward": "-", "forward+backward": "--"}
    for (variant, pass_name), group in sub.groupby(["variant", "pass"], sort=False):
        group = group.sort_values("length")
        kw = {
            "color": colours[variant],
            "linestyle": styles[pass_name],
            "marker": markers[variant][0],
            "markersize": markers[variant][1],
            "markerfacecolor": markers[variant][2] or colours[variant],
            "label": f"{variant}, {pass_name}",
        }
        axes[0].plot(group["length"], 1e3 * group["cpu_seconds"], **kw)
        axes[1].plot(group["length"], group["peak_mib"], **kw)
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    lengths = sorted(sub["length"].unique())
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sequence length (tokens)")
        ax.set_xticks(lengths, [str(n) for n in lengths])
    axes[0].set_ylabel("median CPU time (ms)")
    axes[1].set_ylabel("peak memory of the call (MiB)")
    what = "one attention layer" if scope == "layer" else "whole 6-layer encoder"
    axes[0].set_title(f"Time, {what}")
    axes[1].set_title(f"Memory, {what}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
