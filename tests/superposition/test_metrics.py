"""Metrics on hand-built weights whose answers are known in closed form."""

import math

import pytest
import torch

from llm_exploration.superposition.metrics import (
    PHASES,
    dimensions_per_feature,
    extra_feature_phase,
    feature_dimensionality,
    feature_norms,
    nearest_sticky,
    neighbour_angles,
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
    assert nearest_sticky(expected) != ""


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


def test_extra_feature_phase():
    W = torch.tensor([[[1.0], [0.0]], [[0.0], [1.0]], [[1.0], [-1.0]]])
    phases = [PHASES[i] for i in extra_feature_phase(W).tolist()]
    assert phases == [
        "extra feature not represented",
        "extra feature gets the neuron",
        "superposition",
    ]
