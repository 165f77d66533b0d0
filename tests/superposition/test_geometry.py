"""The geometry tables on hand-built models whose polytopes are known."""

import math

import pytest
import torch

from llm_exploration.superposition.geometry import (
    component_table,
    feature_table,
    inverse_density_grid,
    moved_share,
    on_fraction_share,
    staircase,
)


def tegum(seed: int = 0) -> torch.Tensor:
    """A pentagon, two digons and a lone feature in orthogonal subspaces of 6 dimensions,
    rotated at random, plus one unrepresented feature: `[12, 6]`."""
    W = torch.zeros(12, 6)
    angles = torch.arange(5) * 2 * math.pi / 5
    W[:5, 0], W[:5, 1] = angles.cos(), angles.sin()
    W[5, 2], W[6, 2], W[7, 3], W[8, 3] = 1.0, -1.0, 1.0, -1.0
    W[9, 4] = 1.0
    W[10, 5] = 0.02  # not represented
    W[11, 5] = 0.6  # alone, short
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(seed)))
    return W @ q


def test_feature_and_component_tables_find_the_polytopes():
    W = torch.stack([tegum(0), tegum(1)])[:, None]  # [configs=2, seeds=1, 12, 6]
    density = torch.tensor([0.5, 0.1])
    features = feature_table(density, W)
    assert len(features) == 2 * 11  # the unrepresented feature is left out
    assert sorted(features["1/(1-S)"].unique()) == pytest.approx([2.0, 10.0])
    components = component_table(features)
    shapes = components[components.config == 0].sort_values("size")["shape"].tolist()
    assert shapes == [
        "dedicated dimension",
        "dedicated dimension",
        "digon (antipodal pair)",
        "digon (antipodal pair)",
        "pentagon",
    ]
    assert features["at d/k"].all()
    assert features[features.polytope == "pentagon"]["sticky"].eq("pentagon").all()


def test_a_feature_the_graph_isolates_but_that_shares_a_little_is_not_dedicated():
    """A hundred features that all lean a little towards one extra direction: every
    overlap is below the threshold (no edge), yet together they take 40% of each feature's
    dimension."""
    W = torch.cat([torch.eye(100), torch.full((100, 1), 0.3)], 1)
    features = feature_table(torch.tensor([1.0]), W[None, None])
    assert features["dimensionality"].max() < 0.65
    assert (features["size"] == 1).all()
    assert (features["shape"] == "other component").all()


def test_on_fraction_share_and_null_rate():
    W = torch.stack([tegum(0), tegum(1), tegum(2)])[:, None]
    features = feature_table(torch.tensor([0.5, 0.2, 0.1]), W)
    share = on_fraction_share(features)
    assert share["share"] == 1.0  # every feature sits on its polytope's fraction
    assert share["null rate"] < 0.5
    lo, hi = share["share 95% interval"]
    assert lo <= share["share"] <= hi
    with pytest.raises(ValueError, match="no represented feature"):
        on_fraction_share(features[features.dimensionality < 0.3])


def test_moved_share_and_staircase():
    W = tegum(0)[None, None]
    assert moved_share(W, W) == 0.0
    shifted = W.clone()
    shifted[..., 5, :] *= 0.5  # one digon partner shrinks: both partners' D change
    assert moved_share(W, shifted) == pytest.approx(2 / 11)
    steps = staircase(torch.tensor([0.5]), torch.stack([W[0], W[0]], 1))
    assert steps["D* mean"].item() == pytest.approx(6 / float((W**2).sum()))


def test_inverse_density_grid():
    grid = inverse_density_grid(5, 3, knee=4.0, high=50.0)
    assert grid[0] == 1 and len(grid) == 9
    assert bool((grid[1:] > grid[:-1]).all())
    assert float(grid[-1]) == pytest.approx(50.0)
