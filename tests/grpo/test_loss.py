"""The GRPO loss and its metrics equal TRL's on the same tensors, for every loss type.

TRL's ``GRPOTrainer._compute_loss`` is a method; it is called here unbound, with a minimal
stand-in for ``self`` whose ``_get_per_token_logps_and_entropies`` returns hand-built log-probs
(TRL 1.16, trl/trainer/grpo_trainer.py, ``_compute_loss``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from trl import GRPOTrainer

from llm_exploration.grpo.loss import grpo_loss, k3_kl, loss_metrics


def trl_loss(logps, entropies, inputs, *, loss_type, beta, eps_low, eps_high, max_len, ga):
    accelerator = SimpleNamespace(num_processes=1, reduce=lambda t, reduction: t, gather=lambda t: t)
    fake = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, entropies, None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level="token", beta=beta, loss_type=loss_type, epsilon_low=eps_low,
        epsilon_high=eps_high, use_vllm=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=ga, max_completion_length=max_len, accelerator=accelerator,
        _entropy_bonus_enabled=False, _metrics=defaultdict(lambda: defaultdict(list)),
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=ga),
    )
    loss = GRPOTrainer._compute_loss(fake, None, inputs)
    return loss, {k: v[0] for k, v in fake._metrics["train"].items()}


def hand_built(seed=0, B=6, T=7, spread=0.4):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(B, T, generator=g) * 3).requires_grad_()
    old = logps.detach() + spread * torch.randn(B, T, generator=g)  # ratios far outside 1 ± ε
    ref = logps.detach() + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g).abs() * torch.tensor([1.0, -1.0] * (B // 2))  # both signs
    lengths = torch.tensor([7, 3, 1, 5, 0, 6])[:B]  # includes an empty completion
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()
    entropy = torch.rand(B, T, generator=g) * 4
    return logps, old, ref, adv, mask, entropy


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.05])
@pytest.mark.parametrize("mu_gt_1", [False, True])
@pytest.mark.parametrize("ga", [1, 3])
def test_loss_and_metrics_equal_trl(loss_type, beta, mu_gt_1, ga):
    logps, old, ref, adv, mask, entropy = hand_built()
    eps_low, eps_high, max_len = 0.2, 0.28, 10
    # num_items_in_batch spans the whole rollout (here: this micro-batch and two more tokens).
    num_items = mask.sum() + 2
    inputs = {"prompt_ids": torch.zeros(6, 2, dtype=torch.long), "prompt_mask": torch.ones(6, 2, dtype=torch.long),
              "completion_ids": torch.zeros(6, 7, dtype=torch.long), "completion_mask": mask,
              "advantages": adv, "num_items_in_batch": num_items}
    if mu_gt_1:
        inputs["old_per_token_logps"] = old
    if beta:
        inputs["ref_per_token_logps"] = ref
    expected, trl_metrics = trl_loss(logps, entropy, inputs, loss_type=loss_type, beta=beta, eps_low=eps_low,
                                     eps_high=eps_high, max_len=max_len, ga=ga)
    (g_expected,) = torch.autograd.grad(expected, logps)

    out = grpo_loss(logps, adv, mask, loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high,
                    old_per_token_logps=old if mu_gt_1 else None, beta=beta,
                    ref_per_token_logps=ref if beta else None, max_completion_length=max_len,
                    num_items_in_batch=num_items, gradient_accumulation_steps=ga)
    (g_ours,) = torch.autograd.grad(out.loss, logps)
    torch.testing.assert_close(out.loss, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(g_ours, g_expected, rtol=1e-6, atol=1e-7)

    ours = loss_metrics(out, entropy, mask)
    assert set(ours) == set(trl_metrics)
    for k, v in trl_metrics.items():
        assert ours[k] == pytest.approx(v, rel=1e-6, abs=1e-7, nan_ok=True), k
    if mu_gt_1:  # the hand-built ratios exercise both clipped branches
        assert ours["clip_ratio/low_mean"] > 0 and ours["clip_ratio/high_mean"] > 0


def test_clipped_branches_by_hand():
    """r = 1.5 with A = +1 is clipped at 1 + ε_high (no gradient); r = 0.5 with A = -1 at 1 - ε_low;
    r = 0.5 with A = +1 and r = 1.5 with A = -1 are not clipped (the pessimistic min keeps r*A)."""
    old = torch.zeros(4, 1)
    logps = torch.log(torch.tensor([[1.5], [0.5], [0.5], [1.5]])).requires_grad_()
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    mask = torch.ones(4, 1)
    out = grpo_loss(logps, adv, mask, loss_type="grpo", epsilon_low=0.2, epsilon_high=0.3,
                    old_per_token_logps=old)
    per_seq = torch.tensor([-1.3, 0.8, -0.5, 1.5])  # -min(r A, clip(r) A)
    torch.testing.assert_close(out.loss, per_seq.mean())
    (grad,) = torch.autograd.grad(out.loss, logps)
    # d(-r A)/dlogp = -r A / 4 where unclipped; 0 where clipped
    torch.testing.assert_close(grad.squeeze(1), torch.tensor([0.0, 0.0, -0.5 / 4, 1.5 / 4]))
    assert out.is_high_clipped.squeeze(1).tolist() == [True, False, False, False]
    assert out.is_low_clipped.squeeze(1).tolist() == [False, True, False, False]


def test_normalisations_by_hand():
    """Per-token loss -A (ratio 1): grpo averages per sequence, dr_grpo divides by B*L_max,
    dapo by the rollout's token count."""
    logps = torch.zeros(2, 4, requires_grad=True)
    adv = torch.tensor([1.0, 1.0])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    grpo = grpo_loss(logps, adv, mask, loss_type="grpo").loss
    dr = grpo_loss(logps, adv, mask, loss_type="dr_grpo", max_completion_length=8).loss
    dapo = grpo_loss(logps, adv, mask, loss_type="dapo", num_items_in_batch=5).loss
    assert grpo.item() == pytest.approx(-1.0)  # mean of (-4/4, -1/1)
    assert dr.item() == pytest.approx(-5 / 16)
    assert dapo.item() == pytest.approx(-1.0)
    # grpo weighs the short sequence's token 4x more than each token of the long one
    (g,) = torch.autograd.grad(grpo, logps)
    assert g[1, 0].item() == pytest.approx(4 * g[0, 0].item())


def test_k3_kl_is_nonnegative_and_zero_at_equality():
    a = torch.randn(100)
    b = torch.randn(100)
    assert (k3_kl(a, b) >= 0).all()
    assert k3_kl(a, a).abs().max().item() == 0.0


def test_bad_arguments_raise():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(x, torch.zeros(1), x, loss_type="ppo")
    with pytest.raises(ValueError, match="ref_per_token_logps"):
        grpo_loss(x, torch.zeros(1), x, loss_type="grpo", beta=0.1)
    with pytest.raises(ValueError, match="num_items_in_batch"):
        grpo_loss(x, torch.zeros(1), x, loss_type="dapo")
    assert not math.isnan(grpo_loss(x, torch.zeros(1), torch.zeros(1, 2), loss_type="grpo").loss.item())
