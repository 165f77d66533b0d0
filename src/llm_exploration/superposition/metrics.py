"""What a trained toy model's weights say about superposition (Elhage et al., 2022).

Every function takes `W` as `[..., features, hidden]` (row `i` is the paper's column
`W_i`, the direction of feature `i`), so it works on one model or on a stack of instances.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

EPS = 1e-8

#: The "sticky" feature dimensionalities of the paper's geometry section, with the
#: arrangement of features that produces each (k features sharing d dimensions: d/k).
STICKY_FRACTIONS: dict[float, str] = {
    1.0: "dedicated dimension",
    3 / 4: "tetrahedron",
    2 / 3: "triangle",
    1 / 2: "digon (antipodal pair)",
    2 / 5: "pentagon",
    3 / 8: "square antiprism",
}

#: Phases of the two-feature, one-neuron model, named for what happens to the extra
#: feature 1 (the paper's phase-diagram labels): dropped while feature 0 keeps the neuron,
#: given the neuron while feature 0 is dropped, or sharing the neuron with feature 0.
PHASES: tuple[str, ...] = (
    "extra feature not represented",
    "extra feature gets the neuron",
    "superposition",
)


def feature_norms(W: Tensor) -> Tensor:
    """`‖W_i‖`: how strongly each feature is represented. `[..., features]`."""
    return W.norm(dim=-1)


def projections(W: Tensor) -> Tensor:
    """`P[i, j] = Ŵ_i · W_j`: how much of feature `j` lands on feature `i`'s direction.
    `[..., features, features]`; rows of unrepresented features (norm 0) are 0."""
    unit = W / (feature_norms(W)[..., None] + EPS)
    return unit @ W.transpose(-1, -2)


def superposition(W: Tensor) -> Tensor:
    """`Σ_{j≠i} (Ŵ_i · W_j)²`: how much other features interfere with feature `i`
    (0 when it has a dimension to itself, about 1 when it shares one). `[..., features]`."""
    p2 = projections(W) ** 2
    return p2.sum(-1) - p2.diagonal(dim1=-2, dim2=-1)


def feature_dimensionality(W: Tensor) -> Tensor:
    """`D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)²`: the fraction of a dimension feature `i` gets.

    1 for a feature alone in its dimension, 1/2 for each of an antipodal pair, 2/5 for
    each corner of a pentagon, 0 for a feature that is not represented. `[..., features]`.
    """
    return feature_norms(W) ** 2 / ((projections(W) ** 2).sum(-1) + EPS)


def dimensions_per_feature(W: Tensor) -> Tensor:
    """`m / ‖W‖_F²`: hidden dimensions per (norm-weighted) feature learned. `[...]`.

    A model that stores `k` features with norm 1 has `‖W‖_F² = k`, so this is `m / k`.
    """
    return W.shape[-1] / (W**2).sum(dim=(-2, -1))


def nearest_sticky(dimensionality: float, tol: float = 0.02) -> str:
    """Name of the polytope whose fraction is within `tol` of `dimensionality`, else ""."""
    for fraction, name in STICKY_FRACTIONS.items():
        if abs(dimensionality - fraction) <= tol:
            return name
    return ""


def neighbour_angles(W: Tensor, min_norm: float = 0.5) -> Tensor:
    """Angles in degrees between consecutive represented features of a 2-D model.

    `W`: `[features, 2]`. Features with norm below `min_norm` are left out; the gaps
    between the remaining directions, going round the circle, sum to 360.
    """
    if W.ndim != 2 or W.shape[-1] != 2:
        raise ValueError(f"neighbour_angles needs W of shape [features, 2], got {tuple(W.shape)}")
    kept = W[feature_norms(W) >= min_norm]
    if kept.shape[0] == 0:
        return torch.empty(0)
    angles = torch.sort(torch.atan2(kept[:, 1], kept[:, 0]))[0]
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    return torch.rad2deg(gaps)


def extra_feature_phase(W: Tensor, threshold: float = 0.5) -> Tensor:
    """Phase of feature 1 (the "extra" feature) in two-feature models: an index into
    `PHASES`. `W`: `[..., 2, hidden]` -> `[...]` integers.

    not represented: `‖W_1‖ < threshold`; superposition: represented and sharing its
    direction with feature 0 (`Σ_{j≠1} (Ŵ_1 · W_j)² ≥ threshold`); dedicated neuron:
    represented and alone.
    """
    if W.shape[-2] != 2:
        raise ValueError(f"extra_feature_phase needs 2 features, got W of shape {tuple(W.shape)}")
    represented = feature_norms(W)[..., 1] >= threshold
    shared = superposition(W)[..., 1] >= threshold
    return torch.where(represented, torch.where(shared, 2, 1), 0)
