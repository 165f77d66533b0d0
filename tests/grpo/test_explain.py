"""The post's explanatory measurements, checked against the formulas they illustrate."""

import pytest
import torch

from llm_exploration.grpo.advantages import group_advantages
from llm_exploration.grpo.explain import (
    length_bias_table,
    loss_at_mu1,
    surrogate_curve,
    token_gradient_weights,
)


def test_surrogate_curve_clips_the_gradient_only_in_the_pushed_direction():
    ratios = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5])
    pos = surrogate_curve(ratios, advantage=1.0, epsilon_low=0.2, epsilon_high=0.28)
    neg = surrogate_curve(ratios, advantage=-1.0, epsilon_low=0.2, epsilon_high=0.28)
    # A > 0: objective min(r, clip(r)) -> capped at 1 + eps_high, gradient 0 past it
    assert pos["objective"].tolist() == pytest.approx([0.5, 0.9, 1.0, 1.1, 1.28])
    assert pos["gradient"].tolist() == pytest.approx([0.5, 0.9, 1.0, 1.1, 0.0])
    # A < 0: objective min(-r, -clip(r)) -> floor at -(1 - eps_low), gradient 0 below it
    assert neg["objective"].tolist() == pytest.approx([-0.8, -0.9, -1.0, -1.1, -1.5])
    assert neg["gradient"].tolist() == pytest.approx([0.0, -0.9, -1.0, -1.1, -1.5])


def _batch():
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5])
    lengths = [2, 10, 5, 7]
    mask = torch.zeros(4, 10)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return advantages, mask, torch.tensor(lengths, dtype=torch.float64)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_token_gradient_weights_match_the_normalisations(loss_type):
    advantages, mask, lengths = _batch()
    w = token_gradient_weights(advantages, mask, loss_type, max_completion_length=16)
    B = len(advantages)
    divisor = {"grpo": B * lengths, "dr_grpo": torch.full_like(lengths, B * 16.0),
               "dapo": torch.full_like(lengths, float(mask.sum()))}[loss_type]
    expected = (advantages.double() / divisor).unsqueeze(1) * mask
    torch.testing.assert_close(w, expected)


def test_length_bias_table_totals():
    advantages, mask, lengths = _batch()
    t = length_bias_table(advantages, mask, max_completion_length=10)
    grpo = t[t["loss_type"] == "grpo"]
    # grpo: every completion's total push is A_i / B, whatever its length
    assert grpo["total"].tolist() == pytest.approx((advantages / 4).tolist())
    dapo = t[t["loss_type"] == "dapo"]
    # dapo: the total grows with length (A_i * |o_i| / N)
    assert dapo["total"].tolist() == pytest.approx((advantages.double() * lengths / mask.sum()).tolist())


def test_loss_value_at_mu1_is_zero_for_grpo_but_its_gradient_is_not():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.25, 1.0, 0.0, 0.0])
    adv = group_advantages(rewards, num_generations=4).advantages
    mask = torch.zeros(8, 12)
    for i, n in enumerate([3, 12, 5, 7, 9, 2, 12, 4]):
        mask[i, :n] = 1
    t = loss_at_mu1(adv, mask, max_completion_length=12).set_index("loss_type")
    assert t.loc["grpo", "loss"] == pytest.approx(0.0, abs=1e-6)  # float32 advantages
    assert (t["gradient_norm"] > 0.01).all()
    # dapo's value is minus the token-weighted mean advantage: not 0 when lengths differ
    expected = -float((adv.double() * mask.sum(1)).sum() / mask.sum())
    assert t.loc["dapo", "loss"] == pytest.approx(expected)


def test_sample_groups_scores_a_real_rollout():
    from llm_exploration.grpo.config import GRPOConfig
    from llm_exploration.grpo.explain import sample_groups, zero_std_fraction
    from llm_exploration.models import load_causal_lm

    model, tok = load_causal_lm("smollm2-135m-instruct")
    cfg = GRPOConfig(num_generations=2, per_device_train_batch_size=4, max_completion_length=6, few_shot=1,
                     train_size=2, reward_funcs=["format_soft", "lenient_correctness"], reward_weights=[1.0, 2.0])
    rows = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is 3 + 1?", "answer": "4"}]
    torch.manual_seed(0)
    g = sample_groups(model, tok, cfg, rows)
    t = g.table()
    assert len(g.completions) == 4 and list(t["prompt"]) == [1, 1, 2, 2]
    assert list(g.rewards_per_func.columns) == ["format_soft", "lenient_correctness"]
    expected = g.rewards_per_func["format_soft"] + 2 * g.rewards_per_func["lenient_correctness"]
    assert t["reward"].tolist() == pytest.approx(expected.tolist())
    assert (t["tokens"] <= 6).all() and (t["tokens"] >= 1).all()
    # advantages are centred within each group
    assert g.advantages.view(2, 2).sum(1).abs().max() < 1e-5
    assert zero_std_fraction(g.rewards, 2) in (0.0, 0.5, 1.0)
