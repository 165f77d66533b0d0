"""Metrics on hand-built weights whose answers are known in closed form."""

import math

import pytest
import torch

from llm_exploration.superposition.metrics import (
    MAX_STICKY_TOLERANCE,
    PHASES,
    POLYTOPES,
    STICKY_FRACTIONS,
    component_dimension,
    dimensions_per_feature,
    extra_feature_phase,
    feature_components,
    feature_dimensionality,
    feature_norms,
    nearest_sticky,
    neighbour_angles,
    partner_cosines,
    sticky_null_rate,
    superposition,
)


def polygon(k: int) -> torch.Tensor:
    """`k` unit vectors evenly spread round the circle: `[k, 2]`."""
    angles = torch.arange(k) * 2 * math.pi / k
    return torch.stack([angles.cos(), angles.sin()], 1)


def tetrahedron() -> torch.Tensor:
    return torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)


def square_antiprism() -> torch.Tensor:
    """Two squares at heights ±1/√3, the second turned by 45°: 8 unit vectors in 3-D."""
    rows = []
    for k in range(8):
        angle, z = k * math.pi / 4, (1 if k % 2 == 0 else -1) / math.sqrt(3)
        r = math.sqrt(2 / 3)
        rows.append([r * math.cos(angle), r * math.sin(angle), z])
    return torch.tensor(rows)


@pytest.mark.parametrize(
    ("W", "expected"),
    [
        (torch.eye(3), 1.0),
        (torch.tensor([[1.0], [-1.0]]), 1 / 2),  # antipodal pair (digon)
        (polygon(3), 2 / 3),  # triangle
        (polygon(5), 2 / 5),  # pentagon
        (tetrahedron(), 3 / 4),
        (square_antiprism(), 3 / 8),
    ],
    ids=["orthogonal", "digon", "triangle", "pentagon", "tetrahedron", "square-antiprism"],
)
def test_dimensionality_of_the_sticky_polytopes(W, expected):
    D = feature_dimensionality(W)
    torch.testing.assert_close(D, torch.full_like(D, expected), atol=1e-5, rtol=0)
    # Every feature has norm 1, so m / ‖W‖_F² is the same fraction.
    assert float(dimensions_per_feature(W)) == pytest.approx(expected, abs=1e-5)
    assert nearest_sticky(expected) == STICKY_FRACTIONS[expected]
    # The paper's way: connected components whose size and dimension give the fraction.
    for component in feature_components(W):
        k, d = len(component), component_dimension(W[component])
        assert d / k == pytest.approx(expected)
        assert POLYTOPES[(k, d)] == STICKY_FRACTIONS[expected]


def test_nearest_sticky_is_the_nearest_fraction():
    """0.38 is 0.005 from 3/8 and 0.02 from 2/5: it is a square antiprism, not a pentagon
    (the first fraction within a wide tolerance in dict order)."""
    assert nearest_sticky(0.38) == "square antiprism"
    assert nearest_sticky(0.395) == "pentagon"
    assert nearest_sticky(0.3875) == ""  # half way between 3/8 and 2/5: neither
    assert nearest_sticky(0.6) == ""
    values = torch.linspace(0, 1, 2001).tolist()
    fractions = list(STICKY_FRACTIONS)
    for tol in (0.002, 0.01, MAX_STICKY_TOLERANCE - 1e-6):
        for d in values:
            best = min(fractions, key=lambda f: abs(d - f))
            expected = STICKY_FRACTIONS[best] if abs(d - best) <= tol else ""
            assert nearest_sticky(d, tol) == expected, (d, tol)


@pytest.mark.parametrize("tol", [0.0, MAX_STICKY_TOLERANCE, 0.02])
def test_tolerances_whose_bands_overlap_are_refused(tol):
    with pytest.raises(ValueError, match="overlap"):
        nearest_sticky(0.4, tol)


def test_null_rate_is_the_share_of_the_range_the_bands_cover():
    # Five full bands of width 0.02 and half a band below 1.
    assert sticky_null_rate(0.0, 1.0, 0.01) == pytest.approx(0.11)
    assert sticky_null_rate(0.45, 0.55, 0.01) == pytest.approx(0.2)
    assert sticky_null_rate(0.1, 0.3, 0.01) == 0.0
    points = torch.rand(20_000, generator=torch.Generator().manual_seed(0)) * 0.7 + 0.3
    hits = sum(nearest_sticky(float(d)) != "" for d in points)
    assert hits / len(points) == pytest.approx(sticky_null_rate(0.3, 1.0), abs=0.01)
    with pytest.raises(ValueError, match="low < high"):
        sticky_null_rate(0.5, 0.5)


def random_rotation(m: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=torch.Generator().manual_seed(seed)))
    return q


def test_components_of_a_tegum_product():
    """A pentagon, a digon and a lone feature in orthogonal subspaces of 5 dimensions (the
    last one unused), rotated at random, plus an unrepresented feature: three components."""
    W = torch.zeros(9, 5)
    W[:5, :2] = polygon(5)
    W[5, 2], W[6, 2] = 1.0, -1.0
    W[7, 3] = 1.0
    W[8] = 0.01  # not represented
    W = W @ random_rotation(5)
    components = feature_components(W)
    assert components == [[0, 1, 2, 3, 4], [5, 6], [7]]
    shapes = [(len(c), component_dimension(W[c])) for c in components]
    assert [POLYTOPES[s] for s in shapes] == [
        "pentagon",
        "digon (antipodal pair)",
        "dedicated dimension",
    ]
    # Small leftover interference below the threshold does not join two components.
    W[7] += 0.05 * W[0] / W[0].norm()
    assert len(feature_components(W)) == 3
    assert len(feature_components(W, threshold=0.01)) == 2


def test_superposition_score():
    torch.testing.assert_close(superposition(torch.eye(4)), torch.zeros(4))
    torch.testing.assert_close(superposition(torch.tensor([[1.0], [-1.0]])), torch.ones(2))
    # Pentagon: Σ_{j≠i} cos²(angle) = 2 cos²72° + 2 cos²144° = 1.5.
    torch.testing.assert_close(superposition(polygon(5)), torch.full((5,), 1.5), atol=1e-5, rtol=0)
    # Scaling the other feature scales its interference quadratically.
    W = torch.tensor([[1.0, 0.0], [0.5, 0.0]])
    torch.testing.assert_close(superposition(W), torch.tensor([0.25, 1.0]))


def test_unrepresented_feature_has_zero_dimensionality_and_no_nan():
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(feature_dimensionality(W), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(feature_norms(W), torch.tensor([1.0, 1.0, 0.0]))


def test_metrics_work_on_a_stack_of_instances():
    W = torch.stack([polygon(5), polygon(5) * 2])
    assert feature_dimensionality(W).shape == (2, 5)
    torch.testing.assert_close(dimensions_per_feature(W), torch.tensor([0.4, 0.1]))


def test_neighbour_angles():
    torch.testing.assert_close(neighbour_angles(polygon(5)), torch.full((5,), 72.0))
    W = torch.cat([polygon(4), torch.tensor([[0.1, 0.1]])])  # a weak fifth feature is left out
    torch.testing.assert_close(neighbour_angles(W), torch.full((4,), 90.0))
    with pytest.raises(ValueError, match=r"\[features, 2\]"):
        neighbour_angles(torch.eye(3))


def test_extra_feature_phase_with_one_neuron():
    W = torch.tensor([[[1.0], [0.0]], [[0.0], [1.0]], [[1.0], [-1.0]]])
    phases = [PHASES[i] for i in extra_feature_phase(W).tolist()]
    assert phases == [
        "extra feature not represented",
        "extra feature gets a dimension, another is dropped",
        "extra feature in superposition",
    ]


def test_extra_feature_phase_with_three_features_in_two_dimensions():
    """The paper's four configurations (named by the direction W ignores) and the triangle."""
    W = torch.stack(
        [
            torch.tensor([[1.0, 0], [0, 1], [0, 0]]),  # W ⊥ [0, 0, 1]
            torch.tensor([[0.0, 0], [0, 1], [1, 0]]),  # W ⊥ [1, 0, 0]
            torch.tensor([[1.0, 0], [0, 1], [0, -1]]),  # W ⊥ [0, 1, 1]: extra paired with 1
            torch.tensor([[0.0, 1], [0, -1], [1, 0]]),  # W ⊥ [1, 1, 0]
            polygon(3),
        ]
    )
    phases = [PHASES[i] for i in extra_feature_phase(W).tolist()]
    assert phases == [
        "extra feature not represented",
        "extra feature gets a dimension, another is dropped",
        "extra feature in superposition",
        "extra feature gets a dimension, the others share one",
        "all features share (triangle)",
    ]


def test_partner_cosines():
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, -3.0], [1.0, 0.0], [0.0, 0.0]])
    cos = partner_cosines(W)
    torch.testing.assert_close(cos[:2], torch.tensor([0.0, -1.0]))
    assert torch.isnan(cos[2])  # feature 5 is not represented
