"""Group-relative advantages on hand-built rewards, against TRL's formulas.

TRL 1.16 trl/trainer/grpo_trainer.py, ``_generate_and_score_completions``
("sum_then_normalize" branch): ``advantages = rewards - mean_grouped_rewards``, divided by
``std_rewards + 1e-4`` unless ``scale_rewards == "none"``; ``std_rewards`` is the group's
``nanstd`` ("group", "none") or the batch's ("batch"); ``is_std_zero = isclose(std, 0)``;
``nan_to_num(advantages, nan=0)``.
"""

from __future__ import annotations

import math

import pytest
import torch
from trl.trainer.utils import nanstd as trl_nanstd

from llm_exploration.grpo.advantages import combine_rewards, group_advantages, nanstd


def trl_advantages(rewards, G, scale):
    grouped = rewards.view(-1, G)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(G)
    std = (trl_nanstd(grouped, dim=1).repeat_interleave(G) if scale in ("group", "none")
           else trl_nanstd(rewards).expand_as(rewards))
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0), torch.isclose(std, torch.zeros_like(std))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_matches_trl(scale):
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(24, generator=g)
    rewards[4:8] = 0.5  # a zero-std group
    rewards[13] = math.nan  # one unscorable completion
    ours = group_advantages(rewards, 4, scale)
    expected, is_zero = trl_advantages(rewards, 4, scale)
    torch.testing.assert_close(ours.advantages, expected)
    assert torch.equal(ours.is_std_zero, is_zero)
    assert ours.group_std_zero.tolist() == [False, True, False, False, False, False]


def test_hand_values():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    out = group_advantages(rewards, 4, "group")
    std = math.sqrt(0.25)  # Bessel: var = (0.75^2 + 3 * 0.25^2) / 3 = 0.25
    assert out.advantages[:4].tolist() == pytest.approx([0.75 / (std + 1e-4)] + [-0.25 / (std + 1e-4)] * 3)
    assert out.advantages[4:].tolist() == [0.0] * 4  # zero-std group: exactly 0, never NaN
    assert out.is_std_zero.float().mean().item() == 0.5  # frac_reward_zero_std
    assert out.group_std_zero.sum().item() == 1
    none = group_advantages(rewards, 4, "none")
    assert none.advantages[:4].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_zero_std_group_is_exactly_zero_even_with_rounding():
    # 0.1 * 3 / 3 != 0.1 in float32: TRL would give a tiny nonzero advantage; we give 0
    rewards = torch.full((3,), 0.1)
    assert group_advantages(rewards, 3, "group").advantages.tolist() == [0.0, 0.0, 0.0]


def test_all_nan_group_and_bad_shape():
    rewards = torch.tensor([math.nan, math.nan, 1.0, 0.0])
    out = group_advantages(rewards, 2)
    assert not torch.isnan(out.advantages).any()
    assert out.advantages[:2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="num_generations"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="scale_rewards"):
        group_advantages(torch.zeros(4), 2, "global")


def test_combine_rewards_nansum_and_unscorable():
    rpf = torch.tensor([[1.0, math.nan], [math.nan, math.nan], [0.5, 1.0]])
    out = combine_rewards(rpf, torch.tensor([1.0, 2.0]))
    assert out[0].item() == 1.0 and math.isnan(out[1].item()) and out[2].item() == 2.5


def test_nanstd_matches_trl():
    x = torch.tensor([[1.0, 2.0, math.nan, 4.0], [3.0, math.nan, math.nan, math.nan]])
    torch.testing.assert_close(nanstd(x, dim=1), trl_nanstd(x, dim=1), equal_nan=True)
    torch.testing.assert_close(nanstd(x), trl_nanstd(x), equal_nan=True)
