"""Figures for the sink post: one function per figure, each returns the matplotlib Figure."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor

from llm_exploration.sinks.measure import EPSILON, TOKEN_CLASSES, SinkReport

CLASS_COLORS = {
    "first token": "C3",
    "[CLS]": "C1",
    "[SEP]": "C2",
    "punctuation": "C0",
    "other": "0.5",
}


def _panels(n: int, width: float, height: float, **kwargs) -> tuple[Figure, list[plt.Axes]]:
    """A figure with ``n`` panels, at most three a row; unused panels removed."""
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def _first_label(report: SinkReport) -> str:
    firsts = {t[0] for t in report.tokens}
    return f"first token ({firsts.pop()})" if len(firsts) == 1 else "first token"


def plot_sink_heatmaps(reports: Sequence[SinkReport], eps: float = EPSILON) -> Figure:
    """Per model, the mean alpha of the first token for every (layer, head); dots mark heads whose
    alpha exceeds ``eps`` in most texts."""
    fig, axes = _panels(len(reports), 4.2, 5.2)
    for ax, r in zip(axes, reports):
        mean = r.alpha_at(0).mean(0).numpy()  # [L, H]
        im = ax.imshow(
            mean,
            vmin=0,
            vmax=1,
            cmap="magma",
            aspect="auto",
            origin="lower",
            interpolation="nearest",
        )
        ly, hx = np.nonzero(r.sink_rate_by_head(0, eps).numpy() > 0.5)
        ax.scatter(hx, ly, s=6, c="white", marker="o", linewidths=0)
        ax.set_title(
            f"{r.name}\nSink$_1^{{{eps}}}$ = {r.sink_rate(0, eps):.0f}% of (layer, head) pairs"
        )
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label=f"α of the {_first_label(r)}", shrink=0.85)
    fig.tight_layout()
    return fig


def plot_class_shares(reports: Sequence[SinkReport]) -> Figure:
    """Per model and layer, the share of each query's attention landing on each token class
    (mean over heads and texts; band: ±1 sd over texts; dashed: what uniform attention gives)."""
    fig, axes = _panels(len(reports), 5.2, 3.8, sharey=True)
    for ax, r in zip(axes, reports):
        df = r.shares_by_layer()
        uniform = r.uniform_shares().mean(0)
        for cls, part in df.groupby("class", sort=False):
            color = CLASS_COLORS[cls]
            label = _first_label(r) if cls == "first token" else cls
            ax.plot(part["layer"], part["share"], marker="o", ms=3, color=color, label=label)
            ax.fill_between(
                part["layer"],
                part["share"] - part["sd"],
                part["share"] + part["sd"],
                color=color,
                alpha=0.15,
            )
            ax.axhline(uniform[TOKEN_CLASSES.index(cls)].item(), color=color, ls="--", lw=0.8)
        ax.set_title(r.name)
        ax.set_xlabel("layer")
        ax.plot([], [], color="0.3", ls="--", lw=0.8, label="uniform attention (dashed)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    for ax in axes[:: min(len(axes), 3)]:
        ax.set_ylabel("share of a query's attention")
    fig.tight_layout()
    return fig


def plot_attention_maps(
    maps: Tensor, tokens: Sequence[str], layers: Sequence[int], title: str
) -> Figure:
    """Head-averaged attention maps ``[len(layers), T, T]`` of one text, keys on x, queries on y,
    two maps a row (token labels on the left column and the bottom row)."""
    n = len(layers)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    size = 3.9
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.2, size * nrows + 0.6),
                             squeeze=False, layout="constrained")  # fmt: skip
    ticks = range(len(tokens))
    flat = list(axes.flat)
    for i, (ax, m, layer) in enumerate(zip(flat, maps, layers)):
        im = ax.imshow(m.numpy(), vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(f"layer {layer}")
        bottom = i + ncols >= n
        ax.set_xticks(ticks, tokens if bottom else [""] * len(tokens), rotation=90, fontsize=7)
        ax.set_yticks(ticks, tokens if i % ncols == 0 else [""] * len(tokens), fontsize=7)
        if bottom:
            ax.set_xlabel("key")
        if i % ncols == 0:
            ax.set_ylabel("query")
        ax.grid(False)
    for ax in flat[n:]:
        ax.remove()
    fig.suptitle(title, fontsize=11)
    fig.colorbar(im, ax=flat[:n], shrink=0.6, label="attention (mean over heads)")
    return fig


def plot_where_sink_goes(tables: dict[str, pd.DataFrame]) -> Figure:
    """Per model, alpha at position 0, at the followed token after it moved, and of a typical token."""
    bars = [("position 0", "C3"), ("followed token, moved", "C1"), ("typical token", "0.6")]
    fig, axes = _panels(len(tables), 4.6, 3.9)
    top = max(df[["position 0", "followed token, moved"]].max().max() for df in tables.values())
    for ax, (name, df) in zip(axes, tables.items()):
        x = np.arange(len(df))
        for j, (col, color) in enumerate(bars):
            ax.bar(x + (j - 1) * 0.27, df[col].fillna(0), width=0.27, color=color, label=col)
        ax.set_xticks(x, df["variant"], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("α (mean over layers, heads, texts)")
        ax.set_ylim(0, max(0.7, top * 1.45))  # one scale for every model, room for the legend
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


STREAM_COLORS = {0: "C3", 1: "C1", 2: "C8", 4: "C0", 8: "C4"}


def _stream_style(label: str) -> dict:
    """Line style of a streaming condition from its label ("dense", "0 sinks", "4 sinks", ...)."""
    if label.startswith("dense"):
        return {"color": "k", "lw": 1.4}
    n = int(label.split()[0])
    return {"color": STREAM_COLORS.get(n, "0.4"), "lw": 1.8 if n == 4 else 1.1}


def plot_stream_nll(
    fine: dict[str, pd.DataFrame],
    coarse: dict[str, pd.DataFrame],
    cache_size: int,
    context: int | None = None,
    banded: Sequence[str] = ("dense", "0 sinks (window only)", "4 sinks"),
) -> Figure:
    """Binned next-token NLL over the stream: left, every condition over the first positions
    (``fine``); right, the long run (``coarse``). Curves are DataFrames with ``position, nll, lo,
    hi`` (:func:`llm_exploration.sinks.stats.binned_curve`); the ``banded`` ones get their
    interval drawn."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2), gridspec_kw={"width_ratios": [1, 1.35]})
    for ax, curves in zip(axes, (fine, coarse)):
        for label, c in curves.items():
            style = _stream_style(label)
            ax.plot(c["position"], c["nll"], label=label, **style)
            if label in banded:
                ax.fill_between(
                    c["position"], c["lo"], c["hi"], color=style["color"], alpha=0.15, lw=0
                )
        ax.axvline(cache_size, color="0.5", ls=":", lw=1)
        ax.set_xlabel("position in the stream (token)")
    axes[0].set_ylabel("next-token NLL (nats, binned)")
    axes[0].set_title("the first tokens, every cache")
    axes[1].set_title("the whole stream")
    if context is not None and context < max(c["position"].max() for c in coarse.values()):
        axes[1].axvline(context, color="0.3", ls="--", lw=1)
        axes[1].text(context, axes[1].get_ylim()[1], " model's context", fontsize=8, va="top")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_stream_gap(gaps: dict[str, pd.DataFrame], cache_size: int) -> Figure:
    """NLL of each condition minus the 4-sink cache's on the same tokens, binned, with paired
    bootstrap bands (DataFrames from :func:`llm_exploration.sinks.stats.binned_curve`)."""
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    for label, c in gaps.items():
        style = _stream_style(label)
        ax.plot(c["position"], c["nll"], label=label, **style)
        ax.fill_between(c["position"], c["lo"], c["hi"], color=style["color"], alpha=0.2, lw=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(cache_size, color="0.5", ls=":", lw=1)
    ax.text(cache_size, ax.get_ylim()[1], " cache full", color="0.4", fontsize=8, va="top")
    ax.set_xlabel("position in the stream (token)")
    ax.set_ylabel("NLL minus the 4-sink cache's\n(nats, binned)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_speed(df: pd.DataFrame) -> Figure:
    """Tokens per second against the cache size: sink cache vs sliding window with recomputation."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    sizes = df["cache size"]
    ax.plot(
        sizes,
        df["sink cache (tokens/s)"],
        marker="o",
        color="C0",
        label="sink cache (StreamingLLM)",
    )
    ax.plot(sizes, df["recompute (tokens/s)"], marker="s", color="C3",
            label="sliding window, recomputed per token")  # fmt: skip
    for x, y, r in zip(sizes, df["sink cache (tokens/s)"], df["speed-up"]):
        ax.annotate(f"{r:.0f}×", (x, y), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8, color="C0")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("cache size (tokens attended)")
    ax.set_ylabel("tokens per second")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sink_contributions(df: pd.DataFrame) -> Figure:
    """Per layer: attention on the sink against the sink's share of the attention output, and the
    sink's value norm against the other tokens'."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.5))
    share = df["output norm, sink"] / (df["output norm, sink"] + df["output norm, rest"])
    axes[0].plot(df["layer"], df["attention"], marker="o", ms=3, color="C3",
                 label="attention weight on the sink")  # fmt: skip
    axes[0].plot(df["layer"], share, marker="s", ms=3, color="C0",
                 label="sink's share of the output norm")  # fmt: skip
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("fraction")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].plot(df["layer"], df["value norm, sink"], marker="o", ms=3, color="C3", label="sink")
    axes[1].plot(df["layer"], df["value norm, others"], marker="s", ms=3, color="0.4",
                 label="other tokens (median)")  # fmt: skip
    axes[1].set_ylabel("value vector L2 norm")
    axes[1].legend(fontsize=8, loc="upper left")
    for ax in axes:
        ax.set_xlabel("layer")
    fig.tight_layout()
    return fig


def plot_blocked_sink(df: pd.DataFrame) -> Figure:
    """Perplexity ratio (blocked / intact, with interval) when one layer may not attend to the sink."""
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    ax.errorbar(df["layer"], df["ratio"], yerr=[df["ratio"] - df["lo"], df["hi"] - df["ratio"]],
                fmt="o", ms=4, capsize=2, color="C3")  # fmt: skip
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xlabel("layer whose attention to the sink is blocked")
    ax.set_ylabel("perplexity ratio\n(blocked / intact)")
    fig.tight_layout()
    return fig


def plot_massive(df: pd.DataFrame) -> Figure:
    """Sun et al.'s view: per layer, the mean of the three largest |h| and the median |h|."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    per = df.groupby(["layer", "rank"])["magnitude"].mean().unstack()
    median = df.groupby("layer")["median"].mean()
    for rank, color in zip(per.columns, ("C3", "C1", "C8")):
        ax.plot(per.index, per[rank], marker="o", ms=3, color=color, label=f"top {rank}")
    ax.plot(median.index, median, marker="s", ms=3, color="0.4", label="median")
    ax.set_yscale("log")
    ax.set_xlabel("layer (output hidden state)")
    ax.set_ylabel("|activation|")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def top_sink_chart(report: SinkReport, min_queries: int = 1) -> alt.Chart:
    """Interactive: every (layer, head), coloured by the alpha of its strongest key (mean over
    texts) among the keys at least ``min_queries`` queries see; hover for the token that is most
    often that key."""
    alpha = report.alpha_seen(min_queries)
    rows = []
    for layer in range(report.n_layers):
        for head in range(report.n_heads):
            best = [a[layer, head].nan_to_num(0).argmax().item() for a in alpha]
            strings = pd.Series([toks[k] for toks, k in zip(report.tokens, best)])
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "alpha of strongest key": float(
                        np.mean([a[layer, head].nan_to_num(0).max().item() for a in alpha])
                    ),
                    "most common strongest key": strings.mode()[0],
                    "texts where it is position 0 (%)": 100
                    * float(np.mean([b == 0 for b in best])),
                }
            )
    return (
        alt.Chart(pd.DataFrame(rows), title=f"{report.name}: the strongest key of every head")
        .mark_rect()
        .encode(
            x=alt.X("head:O"),
            y=alt.Y("layer:O", sort="descending"),
            color=alt.Color(
                "alpha of strongest key:Q", scale=alt.Scale(domain=[0, 1], scheme="magma")
            ),
            tooltip=list(rows[0]),
        )
        .properties(width=220, height=min(400, 14 * report.n_layers))
    )
