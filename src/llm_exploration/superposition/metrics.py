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

#: Half the smallest gap between two sticky fractions (2/5 - 3/8 = 0.025): a tolerance below
#: it keeps the bands around neighbouring fractions apart.
MAX_STICKY_TOLERANCE = (
    min(abs(a - b) for a in STICKY_FRACTIONS for b in STICKY_FRACTIONS if a != b) / 2
)

#: The polytope of a connected component of `k` features spanning `d` dimensions, by `(k, d)`:
#: the uniform polytopes behind the sticky fractions (each feature's dimensionality is d/k).
POLYTOPES: dict[tuple[int, int], str] = {
    (1, 1): "dedicated dimension",
    (2, 1): "digon (antipodal pair)",
    (3, 2): "triangle",
    (4, 3): "tetrahedron",
    (5, 2): "pentagon",
    (8, 3): "square antiprism",
}

#: What happens to the "extra" (last) feature of a model with one feature more than it has
#: dimensions, in the paper's terms. With 2 features and 1 neuron only the first three
#: occur; with 3 features in 2 dimensions the extra feature can also keep a dimension while
#: the other two share one (the paper's W ⊥ [1, 1, 0]), or all three can share the plane.
PHASES: tuple[str, ...] = (
    "extra feature not represented",
    "extra feature gets a dimension, another is dropped",
    "extra feature in superposition",
    "extra feature gets a dimension, the others share one",
    "all features share (triangle)",
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


def _check_tolerance(tol: float) -> None:
    if not 0 < tol < MAX_STICKY_TOLERANCE:
        raise ValueError(
            f"tol={tol} must lie in (0, {MAX_STICKY_TOLERANCE:.4f}): wider bands around 2/5 "
            "and 3/8 would overlap, and a dimensionality could match two polytopes"
        )


def nearest_sticky(dimensionality: float, tol: float = 0.01) -> str:
    """Name of the sticky fraction nearest to `dimensionality` if it is within `tol`, else "".

    `tol` must stay below half the smallest gap between fractions, so that at most one
    fraction can match.
    """
    _check_tolerance(tol)
    fraction = min(STICKY_FRACTIONS, key=lambda f: abs(dimensionality - f))
    return STICKY_FRACTIONS[fraction] if abs(dimensionality - fraction) <= tol else ""


def sticky_null_rate(low: float, high: float, tol: float = 0.01) -> float:
    """How often a point drawn uniformly from [low, high] lands within `tol` of a sticky
    fraction: the rate at which `nearest_sticky` would name a polytope by chance."""
    _check_tolerance(tol)
    if not high > low:
        raise ValueError(f"need low < high, got [{low}, {high}]")
    covered = sum(max(0.0, min(high, f + tol) - max(low, f - tol)) for f in STICKY_FRACTIONS)
    return covered / (high - low)


def feature_components(W: Tensor, threshold: float = 0.1, min_norm: float = 0.5) -> list[list[int]]:
    """The paper's feature graph, cut into its connected components.

    Nodes are the represented features (`‖W_i‖ ≥ min_norm`) of one model, `W`:
    `[features, hidden]`; features `i` and `j` are joined when `|Ŵ_i · W_j|` or `|Ŵ_j · W_i|`
    exceeds `threshold` (they are not orthogonal). Features in different components share
    no dimension (the paper's tegum factors). Returns lists of feature indices, largest first.
    """
    if W.ndim != 2:
        raise ValueError(
            f"feature_components needs one model's W [features, hidden], got {tuple(W.shape)}"
        )
    kept = torch.nonzero(feature_norms(W) >= min_norm).flatten().tolist()
    P = projections(W[kept]).abs()
    adjacent = ((P > threshold) | (P.T > threshold)).tolist()
    seen, components = set(), []
    for start in range(len(kept)):
        if start in seen:
            continue
        stack, component = [start], []
        seen.add(start)
        while stack:
            node = stack.pop()
            component.append(kept[node])
            for other, joined in enumerate(adjacent[node]):
                if joined and other not in seen:
                    seen.add(other)
                    stack.append(other)
        components.append(sorted(component))
    return sorted(components, key=lambda c: (-len(c), c[0]))


def component_dimension(W: Tensor, rel_tol: float = 0.3) -> int:
    """Number of hidden dimensions a group of features spans, `W`: `[features, hidden]`:
    singular values above `rel_tol` times the largest (a digon spans 1, a pentagon 2)."""
    sigma = torch.linalg.svdvals(W)
    return int((sigma > rel_tol * sigma[0]).sum()) if len(sigma) else 0


def partner_cosines(W: Tensor, min_norm: float = 0.1) -> Tensor:
    """Cosine between the directions of features 0-1, 2-3, ... (the pairs of
    `FeatureSampler(pairs=...)`): 0 for orthogonal partners, -1 for antipodal ones, 1 for
    partners stored along one direction. NaN where a partner is not represented
    (`‖W_i‖ < min_norm`). `W`: `[..., features, hidden]` -> `[..., features / 2]`."""
    a, b = W[..., 0::2, :], W[..., 1::2, :]
    na, nb = feature_norms(a), feature_norms(b)
    cos = (a * b).sum(-1) / (na * nb).clamp_min(EPS)
    return torch.where((na >= min_norm) & (nb >= min_norm), cos, torch.nan)


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


def extra_feature_phase(W: Tensor, threshold: float = 0.5, shared: float = 0.25) -> Tensor:
    """Phase of the extra (last) feature: an index into `PHASES`. `W`: `[..., features,
    hidden]` -> `[...]` integers.

    Not represented: `‖W_last‖ < threshold`. In superposition: represented and sharing its
    direction (`Σ_{j≠last} (Ŵ_last · W_j)² ≥ shared`: a represented feature on the same
    line gives at least `threshold²`, each corner of a triangle 0.5); "all share" when every
    feature is represented and shares. Otherwise it has a dimension of its own, and either
    some other feature is dropped or all are stored (the others then share the rest).
    """
    if W.shape[-2] < 2:
        raise ValueError(
            f"extra_feature_phase needs at least 2 features, got W of shape {tuple(W.shape)}"
        )
    represented = feature_norms(W) >= threshold
    shares = superposition(W) >= shared
    extra_in, extra_shares = represented[..., -1], shares[..., -1]
    all_stored = represented.all(-1)
    several_others = W.shape[-2] > 2  # with one other feature, "the others share" cannot be
    all_share = all_stored & shares.all(-1) & several_others
    phase = torch.where(all_stored & several_others, 3, 1)
    phase = torch.where(extra_shares, torch.where(all_share, 4, 2), phase)
    return torch.where(extra_in, phase, 0)
