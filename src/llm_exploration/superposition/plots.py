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
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    nearest_sticky,
    superposition,
)


def _sparsity_label(S: float) -> str:
    return f"S = {S:g}"


def plot_feature_directions(W: Tensor, sparsities: Sequence[float]) -> Figure:
    """Figure 1: each feature's direction `W_i` in a 2-D hidden space, one panel per
    sparsity. `W`: `[panels, features, 2]`; colour = feature index (importance order)."""
    n_panels, n_features, _ = W.shape
    fig, axes = plt.subplots(1, n_panels, figsize=(2.3 * n_panels, 2.8), squeeze=False)
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
        figsize=(2.0 * n_cols + 1, 2.1 * len(names) + 0.4),
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
        1, n_panels, figsize=(1.9 * n_panels + 1, 3.6), sharey=True, squeeze=False
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


def plot_phase_diagram(density: Tensor, relative_importance: Tensor, phase: Tensor) -> Figure:
    """Phase diagram: the extra feature's phase (an index into `PHASES`) for each
    (relative importance, density) cell. `phase`: `[densities, importances]`. The legend
    says, for each phase, which feature holds the neuron."""
    colors = ["#d9d9d9", "#4c72b0", "#dd8452"]
    who = ["feature 0 keeps the neuron", "feature 0 is dropped", "both share the neuron"]
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.pcolormesh(
        relative_importance.numpy(),
        density.numpy(),
        phase.numpy(),
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=2.5,
        shading="nearest",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="relative importance r of the extra feature 1 (feature 0 has importance 1)",
        ylabel="feature density  1 − S  (both features)",
        title="2 features, 1 neuron: what happens to feature 1",
    )
    ax.xaxis.label.set_fontsize(9)
    ax.grid(False)
    ax.legend(
        [Patch(color=c, ec="black", lw=0.4) for c in colors],
        [f"{name} ({w})" for name, w in zip(PHASES, who)],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=1,
        frameon=False,
    )
    return fig


def geometry_frame(density: Tensor, W: Tensor, min_norm: float = 0.5) -> pd.DataFrame:
    """One row per represented feature (`‖W_i‖ ≥ min_norm`) of each instance: its
    dimensionality, norm and the polytope its dimensionality matches (if any).
    `density`: `[instances]`, `W`: `[instances, features, hidden]`."""
    dims, norms = feature_dimensionality(W), feature_norms(W)
    rows = []
    for k, p in enumerate(density.tolist()):
        for i in torch.nonzero(norms[k] >= min_norm).flatten().tolist():
            d = float(dims[k, i])
            rows.append(
                {
                    "instance": k,
                    "feature": i,
                    "density": p,
                    "1/(1-S)": 1 / p,
                    "dimensionality": d,
                    "norm": float(norms[k, i]),
                    "polytope": nearest_sticky(d) or "other",
                }
            )
    return pd.DataFrame(rows)


def plot_geometry(density: Tensor, W: Tensor) -> Figure:
    """Geometry figure: dimensions per feature `m/‖W‖_F²` (line) and each represented feature's
    dimensionality `D_i` (points) against `1/(1-S)`, with the sticky fractions marked."""
    frame = geometry_frame(density, W)
    inv = (1 / density).numpy()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for fraction, name in STICKY_FRACTIONS.items():
        ax.axhline(fraction, color="grey", lw=0.6, ls="--", zorder=0)
        # 2/5 and 3/8 are close: nudge their labels apart.
        nudge = {2 / 5: 0.012, 3 / 8: -0.012}.get(fraction, 0.0)
        ax.text(
            1.01,
            fraction + nudge,
            f"{_fraction(fraction)}  {name}",
            va="center",
            fontsize=8,
            color="dimgrey",
            transform=ax.get_yaxis_transform(),
        )
    # Points jitter a little sideways so the features of one instance do not all overlap.
    jitter = np.exp(np.random.default_rng(0).uniform(-0.04, 0.04, len(frame)))
    ax.scatter(
        frame["1/(1-S)"] * jitter,
        frame["dimensionality"],
        s=9,
        alpha=0.5,
        color="#4c72b0",
        label="feature dimensionality Dᵢ (one point per feature)",
    )
    ax.plot(
        inv,
        dimensions_per_feature(W).numpy(),
        color="black",
        lw=1.8,
        marker="o",
        ms=3,
        label="dimensions per feature  m / ‖W‖²_F",
    )
    ax.set(
        xscale="log",
        ylim=(0, 1.1),
        xlabel="1 / (1 − S)   (inverse feature density)",
        ylabel="dimensions per feature",
    )
    ticks = [t for t in (1, 1.5, 2, 3, 4, 6, 10, 20, 50, 100, 200) if t <= inv.max() * 1.05]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="lower left")
    return fig


def geometry_chart(density: Tensor, W: Tensor) -> alt.Chart:
    """The geometry figure as an Altair chart, each point's tooltip naming the
    feature, its instance's sparsity, its dimensionality and its polytope."""
    frame = geometry_frame(density, W)
    frame["S"] = 1 - frame["density"]
    inv = (1 / density).numpy()
    line = pd.DataFrame({"1/(1-S)": inv, "dims per feature": dimensions_per_feature(W).numpy()})
    rules = pd.DataFrame(
        {"fraction": list(STICKY_FRACTIONS), "polytope": list(STICKY_FRACTIONS.values())}
    )
    names = [*STICKY_FRACTIONS.values(), "other"]
    palette = ["#4c72b0", "#55a868", "#8172b3", "#dd8452", "#c44e52", "#937860", "#b0b0b0"]
    x = alt.X(
        "1/(1-S):Q",
        title="1 / (1 − S)",
        scale=alt.Scale(type="log", domain=[1, float(inv.max()) * 1.05], nice=False),
    )
    y = alt.Y("dimensionality:Q", title="dimensions per feature", scale=alt.Scale(domain=[0, 1.1]))
    guides = (
        alt.Chart(rules)
        .mark_rule(strokeDash=[4, 4], color="grey", opacity=0.6)
        .encode(y="fraction:Q", tooltip=["polytope:N", alt.Tooltip("fraction:Q", format=".3f")])
    )
    points = (
        alt.Chart(frame)
        .mark_circle(size=45, opacity=0.7)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "polytope:N", title="polytope", scale=alt.Scale(domain=names, range=palette)
            ),
            tooltip=[
                alt.Tooltip("feature:Q", title="feature"),
                alt.Tooltip("S:Q", format=".3f", title="sparsity S"),
                alt.Tooltip("dimensionality:Q", format=".3f", title="dimensionality Dᵢ"),
                alt.Tooltip("norm:Q", format=".2f", title="‖Wᵢ‖"),
                alt.Tooltip("polytope:N"),
            ],
        )
    )
    curve = (
        alt.Chart(line)
        .mark_line(color="black", point=alt.OverlayMarkDef(color="black"))
        .encode(
            x=x,
            y="dims per feature:Q",
            tooltip=[alt.Tooltip("dims per feature:Q", format=".3f", title="m / ‖W‖²_F")],
        )
    )
    return (guides + curve + points).properties(width=560, height=330).interactive()


def _fraction(value: float) -> str:
    return str(Fraction(value).limit_denominator(10))
