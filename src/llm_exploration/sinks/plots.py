"""Figures for the sink post: one function per figure, each returns the matplotlib Figure."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter
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
    """Head-averaged attention maps ``[len(layers), T, T]`` of one text, keys on x, queries on y."""
    n = len(layers)
    size = min(3.8, 15 / n)
    fig, axes = plt.subplots(
        1, n, figsize=(size * n + 1.0, size + 0.8), squeeze=False, layout="constrained"
    )
    ticks = range(len(tokens))
    for ax, m, layer in zip(axes[0], maps, layers):
        im = ax.imshow(m.numpy(), vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(f"layer {layer}")
        ax.set_xticks(ticks, tokens, rotation=90, fontsize=7)
        ax.set_yticks(ticks, tokens if ax is axes[0][0] else [""] * len(tokens), fontsize=7)
        ax.set_xlabel("key")
        ax.grid(False)
    axes[0][0].set_ylabel("query")
    fig.suptitle(title, fontsize=11)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="attention (mean over heads)")
    return fig


def plot_where_sink_goes(tables: dict[str, pd.DataFrame]) -> Figure:
    """Per model, alpha at position 0, at the followed token after it moved, and of a typical token."""
    bars = [("position 0", "C3"), ("followed token, moved", "C1"), ("typical token", "0.6")]
    fig, axes = _panels(len(tables), 5.6, 3.9)
    for ax, (name, df) in zip(axes, tables.items()):
        x = np.arange(len(df))
        for j, (col, color) in enumerate(bars):
            ax.bar(x + (j - 1) * 0.27, df[col].fillna(0), width=0.27, color=color, label=col)
        ax.set_xticks(x, df["variant"], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("α (mean over layers, heads, texts)")
        ax.set_ylim(0, max(0.7, df[["position 0", "followed token, moved"]].max().max() * 1.15))
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_hidden_norms(reports: Sequence[SinkReport]) -> Figure:
    """Per model and layer, the hidden-state norm of the first token vs the other tokens
    (median and 10-90% range over all other tokens of all texts)."""
    fig, axes = _panels(len(reports), 5.2, 3.6)
    for ax, r in zip(axes, reports):
        first = np.stack([h[:, 0].numpy() for h in r.hidden_norm])  # [N, L]
        rest = np.concatenate([h[:, 1:].numpy() for h in r.hidden_norm], axis=1)  # [L, sum T]
        layers = np.arange(r.n_layers)
        ax.fill_between(
            layers, np.percentile(rest, 10, 1), np.percentile(rest, 90, 1), color="0.6", alpha=0.3
        )
        ax.plot(
            layers,
            np.median(rest, 1),
            color="0.4",
            marker="o",
            ms=3,
            label="other tokens (median, 10–90%)",
        )
        ax.plot(layers, np.median(first, 0), color="C3", marker="o", ms=3, label=_first_label(r))
        if max(first.max(), rest.max()) > 20 * min(first.min(), rest.min()):
            ax.set_yscale("log")
        ax.set_xlabel("layer (output of the block)")
        ax.set_ylabel("hidden-state L2 norm")
        ax.set_title(r.name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_window_perplexity(df: pd.DataFrame) -> Figure:
    """Perplexity against the attention budget per variant (mean over streams, bars: min-max)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    dense = df[df["variant"] == "dense"]["ppl"]
    ax.axhspan(dense.min(), dense.max(), color="k", alpha=0.1)
    ax.axhline(dense.mean(), color="k", lw=1, label="dense attention (all tokens)")
    windowed = df[df["variant"] != "dense"]
    for i, (variant, part) in enumerate(windowed.groupby("variant", sort=False)):
        g = part.groupby("budget")["ppl"]
        mean, lo, hi = g.mean(), g.min(), g.max()
        ax.errorbar(
            mean.index,
            mean,
            yerr=[mean - lo, hi - mean],
            marker="o",
            ms=4,
            capsize=3,
            label=variant,
            color="C3" if "evicted" in variant else f"C{i}",
        )
    ax.set_xscale("log", base=2)
    budgets = sorted(windowed["budget"].unique())
    ax.set_xticks(budgets, [str(int(b)) for b in budgets])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("attention budget (keys a query may see)")
    ax.set_ylabel("perplexity")
    ax.legend(fontsize=8)
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
