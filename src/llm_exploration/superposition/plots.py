"""The post's figures: matplotlib for the static ones, Altair for the interactive one.

Each function takes weights as `[..., features, hidden]` tensors (see `model.py`) and
returns a figure or chart; none trains anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter
from torch import Tensor

from .metrics import (
    PHASES,
    STICKY_FRACTIONS,
    feature_norms,
    superposition,
)


def _sparsity_label(S: float) -> str:
    return f"S = {S:g}"


def plot_feature_directions(W: Tensor, sparsities: Sequence[float]) -> Figure:
    """Figure 1: each feature's direction `W_i` in a 2-D hidden space, one panel per
    sparsity. `W`: `[panels, features, 2]`; colour = feature index (importance order)."""
    n_panels, n_features, _ = W.shape
    fig, axes = plt.subplots(1, n_panels, figsize=(1.85 * n_panels, 2.5), squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 0.9, n_features))
    lim = max(1.3, float(feature_norms(W).max()) * 1.15)
    for ax, w, S in zip(axes[0], W.numpy(), sparsities):
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, lw=0.6, ls=":", color="grey"))
        for i, (x, y) in enumerate(w):
            ax.plot([0, x], [0, y], color=colors[i], lw=2)
            ax.plot(x, y, "o", color=colors[i], ms=5)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=_sparsity_label(S))
        ax.set_xticks([-1, 0, 1])
        ax.set_yticks([-1, 0, 1])
    axes[0, 0].set_ylabel("hidden dimension 2")
    for ax in axes[0]:
        ax.set_xlabel("hidden dimension 1")
    handles = [plt.Line2D([], [], color=c, lw=2, marker="o", ms=4) for c in colors]
    fig.legend(
        handles,
        [f"feature {i}" for i in range(n_features)],
        loc="lower center",
        ncol=n_features,
        bbox_to_anchor=(0.5, -0.08),
    )
    fig.tight_layout()
    return fig


def plot_pair_directions(Ws: Sequence[Tensor], titles: Sequence[str], n_columns: int = 3) -> Figure:
    """Feature directions in a 2-D hidden space with the features of each pair (0-1, 2-3,
    ...) in one colour, the first solid and the second dashed. `Ws`: one `[features, 2]`
    per panel (panels may have different numbers of features)."""
    n_panels, n_features = len(Ws), max(len(w) for w in Ws)
    rows = -(-n_panels // n_columns)
    fig, axes = plt.subplots(
        rows, n_columns, figsize=(2.4 * n_columns, 2.5 * rows + 0.5), squeeze=False
    )
    colours = ["#c44e52", "#55a868", "#4c72b0", "#8172b3"]
    lim = max(1.3, max(float(feature_norms(w).max()) for w in Ws) * 1.15)
    for ax, w, title in zip(axes.flat, Ws, titles):
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, lw=0.6, ls=":", color="grey"))
        for i, (x, y) in enumerate(w.tolist()):
            colour = colours[(i // 2) % len(colours)]
            ax.plot([0, x], [0, y], color=colour, lw=2, ls="-" if i % 2 == 0 else "--")
            ax.plot(x, y, "o" if i % 2 == 0 else "s", color=colour, ms=5)
        ax.set(
            xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[-1, 0, 1], yticks=[-1, 0, 1]
        )
        ax.set_title(title, fontsize=9)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], color=colours[k], lw=2, ls=ls, marker=mk, ms=4)
        for k in range(n_features // 2)
        for ls, mk in (("-", "o"), ("--", "s"))
    ]
    labels = [f"pair {k}: feature {2 * k + j}" for k in range(n_features // 2) for j in (0, 1)]
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=n_features,
        bbox_to_anchor=(0.5, -0.05),
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def plot_wtw_and_bias(
    W_by_model: dict[str, Tensor], b_by_model: dict[str, Tensor], sparsities: Sequence[float]
) -> Figure:
    """Figure 2: `WᵀW` (`[features, features]`) beside the bias `b`, one row per model
    (e.g. "linear", "ReLU"), one column per sparsity. Blue positive, red negative."""
    names = list(W_by_model)
    n_cols = len(sparsities)
    fig, axes = plt.subplots(
        len(names),
        2 * n_cols,
        figsize=(1.78 * n_cols + 0.9, 2.0 * len(names) + 0.4),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 0.07] * n_cols, "wspace": 0.06},
    )
    # aspect="auto": the heatmap and its bias strip fill axes of the same height.
    style = {"cmap": "RdBu", "vmin": -1, "vmax": 1, "interpolation": "nearest", "aspect": "auto"}
    for r, name in enumerate(names):
        W, b = W_by_model[name], b_by_model[name]
        for c, S in enumerate(sparsities):
            ax_w, ax_b = axes[r, 2 * c], axes[r, 2 * c + 1]
            image = ax_w.imshow((W[c] @ W[c].T).numpy(), **style)
            ax_b.imshow(b[c].numpy()[:, None], **style)
            for ax in (ax_w, ax_b):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                ax.spines[:].set_visible(False)
            if r == 0:
                ax_w.set_title(_sparsity_label(S))
            if c == 0:
                ax_w.set_ylabel(f"{name}\nfeature i", fontsize=10)
            if r == len(names) - 1:
                ax_w.set_xlabel("feature j")
                ax_b.set_xlabel("b", labelpad=6)
    fig.colorbar(image, ax=axes, shrink=0.7, pad=0.02, label="(WᵀW)ᵢⱼ  and  bᵢ")
    return fig


def plot_feature_norms(W: Tensor, sparsities: Sequence[float]) -> Figure:
    """Figure 3: bars of `‖W_i‖` per feature (top: most important), coloured by
    `Σ_{j≠i} (Ŵ_i·W_j)²` (dark: a dimension of its own; yellow: shared).
    `W`: `[panels, features, hidden]`."""
    n_panels, n_features, _ = W.shape
    norms, sup = feature_norms(W).numpy(), superposition(W).clamp(0, 1).numpy()
    fig, axes = plt.subplots(
        1, n_panels, figsize=(1.8 * n_panels + 0.95, 3.6), sharey=True, squeeze=False
    )
    cmap = plt.cm.plasma
    for ax, norm, s, S in zip(axes[0], norms, sup, sparsities):
        ax.barh(np.arange(n_features), norm, color=cmap(s), height=0.8)
        ax.set(
            xlim=(0, max(1.2, float(norms.max()) * 1.05)), title=_sparsity_label(S), xlabel="‖Wᵢ‖"
        )
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_yticks(range(0, n_features, max(1, n_features // 10)))
    axes[0, 0].invert_yaxis()  # shared: flips every panel, most important feature on top
    axes[0, 0].set_ylabel("feature i (most important at top)")
    mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
    # Values above 1 (a pentagon corner has 1.5) share the top colour: the bar's end says so.
    fig.colorbar(mappable, ax=axes, pad=0.02, extend="max", label="superposition  Σⱼ≠ᵢ (Ŵᵢ·Wⱼ)²")
    return fig


#: One colour per entry of `PHASES`.
PHASE_COLORS = ["#d9d9d9", "#4c72b0", "#dd8452", "#55a868", "#8172b3"]


def plot_phase_diagrams(
    panels: Sequence[tuple[str, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]],
) -> Figure:
    """Phase diagrams of the extra feature, measured cell by cell, with the phase
    boundaries of the paper's closed-form configurations drawn over them (black lines).

    `panels`: `(title, density, relative_importance, phase, analytic, fine_density,
    fine_importance)` per panel: `phase` is the measured phase (index into `PHASES`),
    `[densities, importances]`; `analytic` the closed-form phase on the meshgrid
    `fine_density`, `fine_importance` (`[fine, fine]` each).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.9), squeeze=False)
    seen: set[int] = set()
    for ax, (title, density, importance, phase, analytic, fine_p, fine_r) in zip(axes[0], panels):
        ax.pcolormesh(
            importance.numpy(),
            density.numpy(),
            phase.numpy(),
            cmap=ListedColormap(PHASE_COLORS),
            vmin=-0.5,
            vmax=len(PHASE_COLORS) - 0.5,
            shading="nearest",
        )
        for k in analytic.unique().tolist():
            ax.contour(
                fine_r.numpy(),
                fine_p.numpy(),
                (analytic == k).float().numpy(),
                levels=[0.5],
                colors="black",
                linewidths=1.4,
            )
        ax.set(xlim=_cell_edges(importance), ylim=_cell_edges(density))
        seen |= set(phase.unique().tolist()) | set(analytic.unique().tolist())
        ax.set(
            xscale="log",
            yscale="log",
            title=title,
            xlabel="relative importance r of the extra feature",
        )
        ax.grid(False)
    axes[0, 0].set_ylabel("feature density  1 − S  (all features)")
    handles = [Patch(color=PHASE_COLORS[k], ec="black", lw=0.4) for k in sorted(seen)]
    handles.append(plt.Line2D([], [], color="black", lw=1.4))
    labels = [PHASES[k] for k in sorted(seen)] + ["boundary of the closed-form configurations"]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=2)
    fig.tight_layout()
    return fig


#: Colours of the named polytopes in the geometry figures (other components are grey).
POLYTOPE_COLORS = {
    "dedicated dimension": "#4c72b0",
    "tetrahedron": "#55a868",
    "triangle": "#8172b3",
    "digon (antipodal pair)": "#dd8452",
    "pentagon": "#c44e52",
    "square antiprism": "#17becf",
    "other component": "#b0b0b0",
}


def _sticky_guides(ax, x_label_at: float = 1.01) -> None:
    for fraction, name in STICKY_FRACTIONS.items():
        ax.axhline(fraction, color="grey", lw=0.6, ls="--", zorder=0)
        nudge = {2 / 5: 0.012, 3 / 8: -0.012}.get(fraction, 0.0)  # 2/5 and 3/8 are close
        ax.text(
            x_label_at,
            fraction + nudge,
            f"{_fraction(fraction)}  {name}",
            va="center",
            fontsize=8,
            color="dimgrey",
            transform=ax.get_yaxis_transform(),
        )


def plot_geometry(
    features: pd.DataFrame, steps: pd.DataFrame, n_features: int, n_hidden: int
) -> Figure:
    """The geometry figure: each represented feature's dimensionality `D_i` (points,
    coloured by the polytope its feature-graph component forms) and the dimensions per
    feature `m / ‖W‖_F²` (line: mean over seeds; band: lowest to highest seed) against
    `1/(1-S)`. `features`: `geometry.feature_table`; `steps`: `geometry.staircase`."""
    fig, ax = plt.subplots(figsize=(7.6, 4.6))
    _sticky_guides(ax)
    floor = n_hidden / n_features
    ax.axhline(floor, color="black", lw=0.8, ls=":", zorder=0)
    ax.text(
        1.01,
        floor,
        f"{_fraction(floor)}  all {n_features} stored",
        va="center",
        fontsize=8,
        transform=ax.get_yaxis_transform(),
    )
    jitter = np.exp(np.random.default_rng(0).uniform(-0.05, 0.05, len(features)))
    names = features["shape"].where(features["shape"].isin(POLYTOPE_COLORS), "other component")
    for name, colour in POLYTOPE_COLORS.items():
        chosen = (names == name).to_numpy()
        if chosen.any():
            ax.scatter(
                features["1/(1-S)"][chosen] * jitter[chosen],
                features["dimensionality"][chosen],
                s=7,
                alpha=0.4 if name == "other component" else 0.75,
                color=colour,
                label=name,
                lw=0,
                zorder=1 if name == "other component" else 2,  # polytopes over the grey cloud
            )
    x = steps["1/(1-S)"]
    ax.fill_between(x, steps["D* min"], steps["D* max"], color="black", alpha=0.15, lw=0)
    (line,) = ax.plot(x, steps["D* mean"], color="black", lw=1.8, marker="o", ms=3)
    ax.set(
        xscale="log",
        ylim=(0, 1.1),
        xlabel="1 / (1 − S)   (inverse feature density)",
        ylabel="dimensions per feature",
    )
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500) if t <= x.max() * 1.05]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    points = ax.legend(
        loc="upper right",
        fontsize=8,
        markerscale=2,
        title="points: component of the feature graph\n(its features at d/k)",
        title_fontsize=8,
        framealpha=1,
    )
    ax.add_artist(points)  # a second legend below would replace it otherwise
    ax.legend(
        [line],
        [r"dimensions per feature $m\,/\,\|W\|_F^2$ (mean of seeds)"],
        loc="lower left",
        fontsize=8,
        framealpha=1,
    )
    return fig


def plot_loss_tail(history: Tensor, density: Tensor, steps: int, schedule_factor) -> Figure:
    """The last half of training: each sparsity's training loss (mean over seeds) divided
    by its final value, coloured by `1/(1-S)`, with the learning-rate factor on a second
    axis. `history`: `[windows, configs, seeds]`; `schedule_factor(step) -> float`."""
    windows = history.shape[0]
    step_of = (torch.arange(windows) + 1) * steps / windows
    tail = slice(windows // 2, windows)
    curves = history.mean(2)
    curves = curves / curves[-max(1, windows // 20) :].mean(0)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    inverse = (1 / density).numpy()
    norm = plt.matplotlib.colors.LogNorm(float(inverse.min()), float(inverse.max()))
    for k in range(len(density)):
        ax.plot(step_of[tail], curves[tail, k], color=plt.cm.viridis(norm(inverse[k])), lw=1.1)
    ax.axhline(1, color="black", lw=0.6)
    ax.set(xlabel="training step", ylabel="training loss / final loss (mean of seeds)")
    mappable = plt.cm.ScalarMappable(cmap="viridis", norm=norm)
    fig.colorbar(mappable, ax=ax, orientation="horizontal", pad=0.2, aspect=40, label="1 / (1 − S)")
    lr_ax = ax.twinx()  # after the colour bar, so that both share the shrunk axes
    grid = np.linspace(float(step_of[tail][0]), steps, 100)
    lr_ax.plot(grid, [schedule_factor(int(t)) for t in grid], color="grey", ls="--", lw=1)
    lr_ax.set_ylabel("learning-rate factor (dashed)", color="dimgrey")
    lr_ax.set_ylim(0, 1.05)
    lr_ax.grid(False)
    return fig


def geometry_chart(features: pd.DataFrame, steps: pd.DataFrame) -> alt.Chart:
    """The geometry figure as an Altair chart: each point's tooltip names the feature, its
    model (sparsity, seed), its dimensionality and the component it belongs to."""
    frame = features.assign(
        S=1 - features["density"],
        shape=features["shape"].where(features["shape"].isin(POLYTOPE_COLORS), "other component"),
        sticky=features["sticky"].replace("", "none"),
    )
    rules = pd.DataFrame(
        {"fraction": list(STICKY_FRACTIONS), "polytope": list(STICKY_FRACTIONS.values())}
    )
    x = alt.X(
        "1/(1-S):Q",
        title="1 / (1 − S)",
        scale=alt.Scale(type="log", domain=[1, float(steps["1/(1-S)"].max()) * 1.05], nice=False),
    )
    y = alt.Y("dimensionality:Q", title="dimensions per feature", scale=alt.Scale(domain=[0, 1.1]))
    guides = (
        alt.Chart(rules)
        .mark_rule(strokeDash=[4, 4], color="grey", opacity=0.6)
        .encode(y="fraction:Q", tooltip=["polytope:N", alt.Tooltip("fraction:Q", format=".3f")])
    )
    points = (
        alt.Chart(frame)
        .mark_circle(size=30, opacity=0.6)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "shape:N",
                title="component",
                scale=alt.Scale(domain=list(POLYTOPE_COLORS), range=list(POLYTOPE_COLORS.values())),
            ),
            tooltip=[
                alt.Tooltip("feature:Q", title="feature"),
                alt.Tooltip("S:Q", format=".3f", title="sparsity S"),
                alt.Tooltip("seed:Q"),
                alt.Tooltip("dimensionality:Q", format=".3f", title="dimensionality Dᵢ"),
                alt.Tooltip("norm:Q", format=".2f", title="‖Wᵢ‖"),
                alt.Tooltip("polytope:N", title="component (k in d)"),
                alt.Tooltip("sticky:N", title="nearest sticky fraction"),
            ],
        )
    )
    curve = (
        alt.Chart(steps)
        .mark_line(color="black", point=alt.OverlayMarkDef(color="black"))
        .encode(
            x=x,
            y="D* mean:Q",
            tooltip=[alt.Tooltip("D* mean:Q", format=".3f", title="m / ‖W‖²_F (mean of seeds)")],
        )
    )
    return (guides + curve + points).properties(width=560, height=330).interactive()


def _cell_edges(centres: Tensor) -> tuple[float, float]:
    """Outer edges of log-spaced cells with these centres (half a step beyond each end)."""
    if len(centres) < 2:
        return float(centres[0]) / 2, float(centres[0]) * 2
    step = float(centres[1] / centres[0]) ** 0.5
    return float(centres[0]) / step, float(centres[-1]) * step


def _fraction(value: float) -> str:
    return str(Fraction(value).limit_denominator(10))
