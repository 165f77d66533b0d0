"""The toy model: data, batching over instances, determinism, and the paper's solutions.

The training tests use few instances, a raised learning rate and a few thousand steps so
they run in seconds (with the cosine decay, a raised rate still settles); where a
configuration has known local minima they keep the best of a few seeds, as the paper does.
"""

import pytest
import torch

import llm_exploration.superposition.model as model_module
from llm_exploration.superposition.metrics import feature_norms, neighbour_angles, partner_cosines
from llm_exploration.superposition.model import (
    ToyModel,
    expected_loss,
    loss_and_grads,
    sample_features,
    train,
    train_sweep,
    weighted_mse,
)

FAST = {"batch_size": 256, "lr": 2e-2}


def test_features_are_zero_with_probability_S_else_uniform():
    density = torch.tensor([[0.1, 1.0]])
    x = sample_features(density, 200_000, seed=0)
    assert x.shape == (1, 2, 200_000)
    present = x[0, 0] > 0
    assert float(present.float().mean()) == pytest.approx(0.1, abs=0.005)
    assert float(x[0, 0][present].mean()) == pytest.approx(0.5, abs=0.01)
    assert float(x[0, 0][present].max()) <= 1.0
    assert bool((x[0, 1] > 0).all())  # density 1: dense
    assert float(x[0, 1].var()) == pytest.approx(1 / 12, abs=0.002)


def test_paired_features():
    """Correlated pairs are present together; anticorrelated pairs never both; every
    feature keeps its density; Gaussian values are signed."""
    density = torch.full((1, 4), 0.2)
    together = sample_features(density, 100_000, seed=0, pairs="correlated")[0] > 0
    torch.testing.assert_close(together[0], together[1])
    assert float(together[0].float().mean()) == pytest.approx(0.2, abs=0.005)
    assert float((together[0] & together[2]).float().mean()) == pytest.approx(0.04, abs=0.003)
    apart = sample_features(density, 100_000, seed=0, pairs="anticorrelated")[0] > 0
    assert not bool((apart[0] & apart[1]).any())
    for i in range(4):
        assert float(apart[i].float().mean()) == pytest.approx(0.2, abs=0.005)
    normal = sample_features(torch.full((1, 2), 0.5), 100_000, seed=1, values="normal")[0]
    present = normal != 0
    assert float(present.float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float(normal[present].std()) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="even number"):
        sample_features(torch.full((1, 3), 0.2), 8, pairs="correlated")
    with pytest.raises(ValueError, match="density <= 0.5"):
        sample_features(torch.full((1, 2), 0.8), 8, pairs="anticorrelated")


def test_instances_do_not_interact():
    """The gradient of one instance is the gradient it would get alone."""
    many = ToyModel(3, 4, 2, seed=1)
    x = sample_features(torch.full((3, 4), 0.5), 64, seed=0)
    importance = torch.rand(3, 4)
    weighted_mse(x, many(x), importance).sum().backward()
    for k in range(3):
        one = ToyModel(1, 4, 2)
        with torch.no_grad():
            one.W.copy_(many.W[k : k + 1])
        weighted_mse(x[k : k + 1], one(x[k : k + 1]), importance[k : k + 1]).sum().backward()
        torch.testing.assert_close(one.W.grad[0], many.W.grad[k])
        torch.testing.assert_close(one.b.grad[0], many.b.grad[k])


def test_linear_and_relu_instances_train_side_by_side():
    model = ToyModel(2, 3, 2, relu=[True, False], seed=0)
    x = torch.randn(2, 3, 16)
    pre = model.preactivation(x)
    out = model(x)
    torch.testing.assert_close(out[0], pre[0].clamp_min(0))
    torch.testing.assert_close(out[1], pre[1])
    assert bool((pre[1] < 0).any())  # the linear instance really keeps negative outputs
    with pytest.raises(ValueError, match="relu"):
        ToyModel(3, 3, 2, relu=[True, False])


@pytest.mark.parametrize(
    "relu", [[True, True, False, False], [True] * 4, [False] * 4], ids=["mixed", "relu", "linear"]
)
def test_hand_written_gradient_matches_autograd(relu):
    """The loss and gradient used for training equal autograd's through the model, for
    ReLU and linear instances (mixed in one model or not), dense and sparse features."""
    model = ToyModel(4, 6, 3, relu=relu, seed=2)
    with torch.no_grad():
        model.b.normal_(0, 0.3)  # some outputs clipped by the ReLU, some not
    density = torch.tensor([1.0, 0.2, 1.0, 0.2])[:, None].expand(4, 6)
    x = sample_features(density, 128, seed=1)
    importance = torch.rand(4, 6)
    reference = weighted_mse(x, model(x), importance)
    ref_grads = torch.autograd.grad(reference.sum(), [model.W, model.b])
    loss, dW, db = loss_and_grads(model, x.clone(), importance)
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(dW, ref_grads[0])
    torch.testing.assert_close(db, ref_grads[1])


@pytest.mark.parametrize("chunk_elements", [1 << 18, 5 * 64], ids=["one group", "two groups"])
def test_training_is_deterministic(monkeypatch, chunk_elements):
    """Same seeds, same weights and losses, whether the instances go through each step
    together or in groups."""
    monkeypatch.setattr(model_module, "CHUNK_ELEMENTS", chunk_elements)
    runs = []
    for _ in range(2):
        model = ToyModel(2, 5, 2, seed=3)
        losses, snapshots = train(
            model,
            torch.tensor([1.0, 0.1]),
            steps=50,
            batch_size=64,
            seed=4,
            log_every=10,
            snapshot_steps=[25],
        )
        runs.append((model.W.detach().clone(), losses))
    assert list(snapshots) == [25] and not torch.equal(snapshots[25], runs[1][0])
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=0, atol=0)
    assert runs[0][1].shape == (5, 2)


def test_bad_settings_fail_early_with_the_setting_named():
    model = ToyModel(2, 5, 2)
    with pytest.raises(ValueError, match="density"):
        train(model, 0.0, steps=1)
    with pytest.raises(ValueError, match="importance"):
        train(model, 1.0, torch.ones(3), steps=1)
    with pytest.raises(ValueError, match="n_hidden"):
        ToyModel(1, 5, 0)


def test_sparse_features_form_a_pentagon():
    """n=5, m=2, equal importance, S = 0.9 and 0.97: five features of norm about 1,
    72° apart (the best of four seeds: a seed can stop at a square with one feature off)."""
    sweep = train_sweep(5, 2, torch.tensor([0.1, 0.03]), 1.0, seeds=4, steps=1000, **FAST)
    for W in sweep.W:
        norms = feature_norms(W)
        assert bool(((norms > 0.9) & (norms < 1.3)).all()), norms
        angles = neighbour_angles(W)
        assert angles.shape == (5,)
        torch.testing.assert_close(angles, torch.full((5,), 72.0), atol=4.0, rtol=0)
    # The kept seed is the lowest-loss one, and its weights are among every seed's.
    keep = sweep.seed_losses.argmin(1)
    torch.testing.assert_close(sweep.loss, sweep.seed_losses[torch.arange(2), keep])
    torch.testing.assert_close(sweep.W, sweep.seed_W[torch.arange(2), keep])


def test_correlated_partners_are_orthogonal_and_anticorrelated_ones_antipodal():
    """The paper's correlated-features result on two pairs in two dimensions (best of
    four seeds)."""
    cosines = {}
    for pairs in ("correlated", "anticorrelated"):
        sweep = train_sweep(
            4, 2, torch.tensor([0.05]), 1.0, seeds=4, pairs=pairs, steps=1000, **FAST
        )
        cosines[pairs] = partner_cosines(sweep.W[0])
    torch.testing.assert_close(cosines["correlated"], torch.zeros(2), atol=0.1, rtol=0)
    torch.testing.assert_close(cosines["anticorrelated"], -torch.ones(2), atol=0.05, rtol=0)


def test_dense_features_keep_two_orthogonal_features():
    """S = 0, n=5, m=2: the two most important features get a dimension each, the rest
    are dropped. Importance falls slightly (0.9^i, the paper's intro figure): with equal
    importance and dense features every 2-D subspace loses the same, so no pair is preferred."""
    sweep = train_sweep(5, 2, torch.tensor([1.0]), 0.9 ** torch.arange(5), steps=2000, **FAST)
    W = sweep.W[0]
    norms = feature_norms(W)
    torch.testing.assert_close(norms[:2], torch.ones(2), atol=0.05, rtol=0)
    assert bool((norms[2:] < 0.1).all()), norms
    cosine = float(W[0] @ W[1] / (norms[0] * norms[1]))
    assert abs(cosine) < 0.05


@pytest.mark.parametrize("S", [0.0, 0.9, 0.99])
def test_linear_model_keeps_only_the_top_m_features(S):
    """Without the ReLU the model is PCA-like at every sparsity: WᵀW projects onto the m
    most important features."""
    n, m = 6, 3
    sweep = train_sweep(
        n, m, torch.tensor([1 - S]), 0.8 ** torch.arange(n), relu=False, steps=1500, **FAST
    )
    W = sweep.W[0]
    expected = torch.diag(torch.tensor([1.0] * m + [0.0] * (n - m)))
    torch.testing.assert_close(W @ W.T, expected, atol=0.06, rtol=0)


def test_expected_loss_of_hand_set_weights():
    """An antipodal pair loses min(x_0, x_1)² on each feature when both are present:
    2 p² / 6 in all, which the estimate recovers (summed over the two features)."""
    W = torch.tensor([[[1.0], [-1.0]], [[1.0], [0.0]]])
    b = torch.zeros(2, 2)
    loss = expected_loss(W, b, 0.3, n_samples=400_000) * 2
    assert float(loss[0]) == pytest.approx(2 * 0.3**2 / 6, rel=0.03)
    # Feature 1 dropped with bias 0: it loses E[x²] = p / 3.
    assert float(loss[1]) == pytest.approx(0.3 / 3, rel=0.03)
