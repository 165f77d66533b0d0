"""The geometry of uniform superposition, read off a sweep's weights the paper's way.

Every represented feature of every model gets its dimensionality `D_i`, the connected
component of the feature graph it belongs to (features joined when `|Ŵ_i · W_j|` exceeds a
threshold), that component's size `k` and dimension `d`, and the polytope `(k, d)` names.
A uniform polytope gives each of its features `D_i = d / k`; "on a fraction" counts the
features within a tolerance of one of the paper's sticky fractions, to be set against the
rate at which random points land there (`sticky_null_rate`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .metrics import (
    POLYTOPES,
    STICKY_FRACTIONS,
    component_dimension,
    dimensions_per_feature,
    feature_components,
    feature_dimensionality,
    feature_norms,
    nearest_sticky,
    sticky_null_rate,
)


def inverse_density_grid(fine: int, coarse: int, knee: float = 6.5, high: float = 100.0) -> Tensor:
    """Values of `1/(1-S)` for the geometry sweep: 1 (dense), `fine` points from 1.25 to
    `knee`, where the polytopes come and go, then `coarse` points up to `high`."""
    fine_part = torch.logspace(np.log10(1.25), np.log10(knee), fine)
    coarse_part = torch.logspace(np.log10(knee * 1.4), np.log10(high), coarse)
    return torch.cat([torch.ones(1), fine_part, coarse_part])


def polytope_name(size: int, dimension: int) -> str:
    """The polytope of `size` features spanning `dimension` dimensions, or "k in d"."""
    return POLYTOPES.get((size, dimension), f"{size} in {dimension}")


def feature_table(
    density: Tensor,
    W: Tensor,
    *,
    tol: float = 0.01,
    threshold: float = 0.1,
    min_norm: float = 0.5,
) -> pd.DataFrame:
    """One row per represented feature (`‖W_i‖ ≥ min_norm`) of every model of a sweep.

    `density`: `[configs]`; `W`: `[configs, seeds, features, hidden]`. Columns: config, seed,
    feature, density, `1/(1-S)`, dimensionality, norm, component (an id within its model),
    size and dimension of the component, its polytope, the sticky fraction the feature's
    dimensionality is within `tol` of ("" if none), whether it is within `tol` of its own
    component's `d / k`, and its shape: the polytope when it is, else "other component"
    (a feature the graph isolates at `threshold` can still share a little with many
    others, which its dimensionality shows).
    """
    dims, norms = feature_dimensionality(W), feature_norms(W)
    rows = []
    for c, p in enumerate(density.tolist()):
        for s in range(W.shape[1]):
            for label, component in enumerate(feature_components(W[c, s], threshold, min_norm)):
                k, d = len(component), component_dimension(W[c, s, component])
                for i in component:
                    D = float(dims[c, s, i])
                    at_fraction = abs(D - d / k) <= tol
                    rows.append(
                        {
                            "config": c,
                            "seed": s,
                            "feature": i,
                            "density": p,
                            "1/(1-S)": 1 / p,
                            "dimensionality": D,
                            "norm": float(norms[c, s, i]),
                            "component": label,
                            "size": k,
                            "dimension": d,
                            "polytope": polytope_name(k, d),
                            "sticky": nearest_sticky(D, tol),
                            "at d/k": at_fraction,
                            "shape": polytope_name(k, d) if at_fraction else "other component",
                        }
                    )
    return pd.DataFrame(rows)


def component_table(features: pd.DataFrame) -> pd.DataFrame:
    """One row per component (from `feature_table`): its model, size, dimension, polytope,
    its features' mean dimensionality, and its shape: the polytope when every feature sits
    at `d / k`, else "other component"."""
    keys = ["config", "seed", "component"]
    return (
        features.groupby(keys)
        .agg(
            density=("density", "first"),
            size=("size", "first"),
            dimension=("dimension", "first"),
            polytope=("polytope", "first"),
            dimensionality=("dimensionality", "mean"),
            clean=("at d/k", "all"),
        )
        .reset_index()
        .assign(shape=lambda t: t["polytope"].where(t["clean"], "other component"))
    )


def on_fraction_share(
    features: pd.DataFrame, low: float = min(STICKY_FRACTIONS) - 0.01, tol: float = 0.01
) -> dict[str, float | int]:
    """Share of features with dimensionality ≥ `low` that sit within `tol` of a sticky
    fraction, its 95% bootstrap interval over models (features of one model are not
    independent), and the null rate of uniform random points on the same range."""
    kept = features[features["dimensionality"] >= low]
    if kept.empty:
        raise ValueError(f"no represented feature has dimensionality >= {low}")
    hit = kept["sticky"] != ""
    models = kept.assign(hit=hit).groupby(["config", "seed"])["hit"].agg(["sum", "count"])
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(models), size=(2000, len(models)))
    sums, counts = models["sum"].to_numpy()[picks].sum(1), models["count"].to_numpy()[picks].sum(1)
    low_ci, high_ci = np.percentile(sums / counts, [2.5, 97.5])
    high = float(kept["dimensionality"].max())
    return {
        "features": len(kept),
        "on a fraction": int(hit.sum()),
        "share": float(hit.mean()),
        "share 95% interval": [float(low_ci), float(high_ci)],
        "range": [float(low), high],
        "null rate": sticky_null_rate(low, max(high, low + 1e-6), tol),
    }


def moved_share(
    W_before: Tensor, W_after: Tensor, tol: float = 0.01, min_norm: float = 0.5, low: float = 0.0
) -> float:
    """Share of the features represented at the end with dimensionality at least `low` whose
    dimensionality changed by more than `tol` between two snapshots of the same models:
    how much was still moving."""
    after = feature_dimensionality(W_after)
    kept = (feature_norms(W_after) >= min_norm) & (after >= low)
    change = (after - feature_dimensionality(W_before)).abs()
    return float((change[kept] > tol).float().mean()) if bool(kept.any()) else 0.0


def staircase(density: Tensor, W: Tensor) -> pd.DataFrame:
    """Dimensions per feature `m / ‖W‖_F²` of every model: one row per configuration with
    `1/(1-S)`, the mean over seeds, and the lowest and highest seed."""
    D = dimensions_per_feature(W)  # [configs, seeds]
    return pd.DataFrame(
        {
            "1/(1-S)": (1 / density).numpy(),
            "D* mean": D.mean(1).numpy(),
            "D* min": D.min(1).values.numpy(),
            "D* max": D.max(1).values.numpy(),
        }
    )
