"""The closed-form losses of the paper's configurations, checked against the model itself."""

import pytest
import torch

from llm_exploration.superposition.metrics import PHASES
from llm_exploration.superposition.model import ToyModel, sample_features, weighted_mse
from llm_exploration.superposition.theory import analytic_phase, configuration_losses


def sampled_loss(W: list[list[float]], b: list[float], density: float, importance) -> float:
    """The expected loss of a hand-set model, summed over features, by sampling."""
    W, b = torch.tensor(W)[None], torch.tensor(b)[None]
    model = ToyModel(1, W.shape[1], W.shape[2])
    with torch.no_grad():
        model.W.copy_(W)
        model.b.copy_(b)
    x = sample_features(torch.full((1, W.shape[1]), density), 400_000, seed=0)
    with torch.no_grad():
        return float(weighted_mse(x, model(x), torch.tensor([importance]))) * W.shape[1]


@pytest.mark.parametrize(("density", "r"), [(0.3, 0.5), (0.8, 2.0)])
def test_closed_forms_match_the_model(density, r):
    losses = configuration_losses(torch.tensor(density), torch.tensor(r), n_features=2)
    name = {PHASES[k]: float(v) for k, v in losses.items()}
    mean = density / 2  # the bias of a dropped feature is its mean
    assert sampled_loss([[1.0], [0.0]], [0.0, mean], density, [1.0, r]) == pytest.approx(
        name["extra feature not represented"], rel=0.02
    )
    assert sampled_loss([[0.0], [1.0]], [mean, 0.0], density, [1.0, r]) == pytest.approx(
        name["extra feature gets a dimension, another is dropped"], rel=0.02
    )
    assert sampled_loss([[1.0], [-1.0]], [0.0, 0.0], density, [1.0, r]) == pytest.approx(
        name["extra feature in superposition"], rel=0.02
    )


def test_two_feature_boundaries():
    """Superposition beats dropping the extra feature (r < 1) below density 4r / (2 + 5r),
    and beats dropping feature 0 (r > 1) below 4 / (5 + 2r)."""
    for r in (0.2, 0.5, 0.9):
        edge = 4 * r / (2 + 5 * r)
        phases = analytic_phase(torch.tensor([edge * 0.98, edge * 1.02]), torch.tensor(r), 2)
        assert [PHASES[i] for i in phases] == [
            "extra feature in superposition",
            "extra feature not represented",
        ]
    for r in (1.5, 4.0):
        edge = 4 / (5 + 2 * r)
        phases = analytic_phase(torch.tensor([edge * 0.98, edge * 1.02]), torch.tensor(r), 2)
        assert [PHASES[i] for i in phases] == [
            "extra feature in superposition",
            "extra feature gets a dimension, another is dropped",
        ]


def test_three_features_give_the_extra_one_a_dimension_when_it_matters_most():
    """Sparse, important extra feature: the other two pair up (W ⊥ [1, 1, 0]); sparse,
    unimportant one: it pairs with another feature (W ⊥ [0, 1, 1])."""
    phases = analytic_phase(torch.tensor(0.05), torch.tensor([5.0, 0.3]), 3)
    assert [PHASES[i] for i in phases] == [
        "extra feature gets a dimension, the others share one",
        "extra feature in superposition",
    ]
    with pytest.raises(ValueError, match="2 or 3 features"):
        analytic_phase(torch.tensor(0.5), torch.tensor(1.0), 4)
