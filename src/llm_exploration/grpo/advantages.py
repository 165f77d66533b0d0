"""Group-relative advantages, exactly as TRL's GRPOTrainer computes them.

TRL 1.16, ``GRPOTrainer._generate_and_score_completions`` (``multi_objective_aggregation=
"sum_then_normalize"``, the default): rewards of the reward functions are weighted and summed
(``nansum``; a completion for which every function returned None is unscorable, NaN); the
advantage is the reward minus its group's mean, divided by ``std + 1e-4`` where the std is taken
within the group (``scale_rewards="group"``, DeepSeekMath's outcome supervision), over the whole
batch (``"batch"``), or not at all (``"none"``, Dr. GRPO's fix for the question-level difficulty
bias). NaN advantages (unscorable completions) become 0. A group whose rewards are all equal has
std 0 and advantage exactly 0 (reward minus its own mean): it carries no gradient, and TRL logs
the fraction of such completions as ``frac_reward_zero_std``.

Completions are laid out group by group: rows ``[g*G, (g+1)*G)`` are the G samples of prompt g.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

STD_EPS = 1e-4  # TRL's constant in ``advantages / (std_rewards + 1e-4)``


def nanstd(x: Tensor, dim: int | None = None) -> Tensor:
    """Bessel-corrected standard deviation ignoring NaNs (TRL's ``trl.trainer.utils.nanstd``);
    NaN where fewer than two values are present."""
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    var = var * torch.where(count > 1, count / (count - 1), torch.full_like(var, float("nan")))
    std = var.sqrt()
    return std.squeeze(dim) if dim is not None else std.reshape(())


def combine_rewards(rewards_per_func: Tensor, weights: Tensor) -> Tensor:
    """Weighted sum over reward functions, ignoring a function's None (NaN) on a sample.

    rewards_per_func: (N, F); weights: (F,). Returns (N,); NaN where all F are NaN (unscorable).
    """
    rewards = (rewards_per_func * weights.to(rewards_per_func).unsqueeze(0)).nansum(dim=1)
    rewards[torch.isnan(rewards_per_func).all(dim=1)] = float("nan")
    return rewards


class Advantages(NamedTuple):
    advantages: Tensor
    """(N,) float; 0 for zero-std groups and unscorable completions, never NaN."""
    is_std_zero: Tensor
    """(N,) bool, TRL's logging flag: the std used for scaling is 0 (the group's, or the batch's
    with ``scale_rewards="batch"``); its mean is ``frac_reward_zero_std``."""
    group_std_zero: Tensor
    """(groups,) bool: the group's rewards are all equal (no learning signal from it)."""


def group_advantages(rewards: Tensor, num_generations: int, scale_rewards: str = "group",
                     batch_std: Tensor | None = None) -> Advantages:
    """Advantages of N = groups * G completions.

    rewards: (N,) combined rewards, NaN for unscorable completions, grouped consecutively.
    batch_std: for ``scale_rewards="batch"`` in multi-process runs, the std of the rewards of
    all processes (TRL gathers before normalising); default: the std of ``rewards``.
    Advantages of a group whose rewards are all equal are set to exactly 0 (TRL gets 0 up to
    float rounding of the mean); unscorable completions get 0 (TRL's ``nan_to_num``).
    """
    if rewards.dim() != 1 or rewards.numel() % num_generations:
        raise ValueError(f"rewards must be 1-D with a multiple of num_generations={num_generations} "
                         f"entries, got shape {tuple(rewards.shape)}.")
    grouped = rewards.view(-1, num_generations)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
    group_std = nanstd(grouped, dim=1)
    if scale_rewards in ("group", "none"):
        std = group_std.repeat_interleave(num_generations)
    elif scale_rewards == "batch":
        std = (nanstd(rewards) if batch_std is None else batch_std).expand_as(rewards)
    else:
        raise ValueError(f"scale_rewards={scale_rewards!r}: use 'group', 'batch' or 'none'.")
    advantages = rewards - mean
    if scale_rewards != "none":
        advantages = advantages / (std + STD_EPS)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    group_std_zero = torch.isclose(group_std, torch.zeros_like(group_std))
    advantages = advantages.masked_fill(group_std_zero.repeat_interleave(num_generations), 0.0)
    return Advantages(torch.nan_to_num(advantages, nan=0.0), is_std_zero, group_std_zero)
