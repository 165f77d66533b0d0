"""The GRPO objective: a per-token clipped surrogate, an optional k3 KL, three normalisations.

Written to give the same value as TRL 1.16's ``GRPOTrainer._compute_loss`` on the same tensors
(``importance_sampling_level="token"``, no vLLM, no entropy mask; checked in
``tests/grpo/test_loss.py`` by calling TRL's own method). For token t of completion i:

    r = exp(logp - logp_old)                        (= 1 with gradient at μ = 1)
    l = -min(r * A_i, clip(r, 1 - ε_low, 1 + ε_high) * A_i) + β * KL3
    KL3 = exp(logp_ref - logp) - (logp_ref - logp) - 1      (Schulman's k3, DeepSeekMath eq. 4)

then, with m the completion mask and GA the gradient-accumulation steps of one rollout:

    grpo:    mean_i( sum_t l*m / max(sum_t m, 1) ) / GA          (DeepSeekMath: per-sequence mean)
    dr_grpo: sum(l*m) / (B * max_completion_length) / GA         (Dr. GRPO: a constant divisor)
    dapo:    sum(l*m) / (tokens in the whole rollout / processes)  (DAPO: token-level mean)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LossOutput:
    loss: Tensor
    """Scalar to backpropagate (already divided for gradient accumulation)."""
    coef_1: Tensor
    """(B, T) importance ratio r = exp(logp - logp_old)."""
    per_token_kl: Tensor | None
    """(B, T) k3 KL to the reference, None at β = 0."""
    is_low_clipped: Tensor
    """(B, T) bool: r < 1 - ε_low and A < 0 (TRL's ``clip_ratio/low``)."""
    is_high_clipped: Tensor
    """(B, T) bool: r > 1 + ε_high and A > 0 (TRL's ``clip_ratio/high``)."""


def k3_kl(per_token_logps: Tensor, ref_per_token_logps: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(π_θ || π_ref): exp(Δ) - Δ - 1 with Δ = logp_ref - logp (≥ 0)."""
    delta = ref_per_token_logps - per_token_logps
    return torch.exp(delta) - delta - 1


def grpo_loss(
    per_token_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    old_per_token_logps: Tensor | None = None,
    beta: float = 0.0,
    ref_per_token_logps: Tensor | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: Tensor | float | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
) -> LossOutput:
    """GRPO loss of one micro-batch.

    per_token_logps: (B, T) log π_θ of the completion tokens (with gradient).
    advantages: (B,) one advantage per completion.
    mask: (B, T) 1 on completion tokens (up to and including the first EOS), 0 after.
    old_per_token_logps: (B, T) log π_old from rollout time; None means π_old = π_θ (μ = 1).
    ref_per_token_logps: (B, T) reference log-probs, required when beta > 0.
    max_completion_length: the constant divisor of ``dr_grpo``.
    num_items_in_batch: completion tokens in the whole rollout summed over processes (``dapo``).
    """
    mask = mask.to(per_token_logps.dtype)
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    old = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps
    coef_1 = torch.exp(per_token_logps - old)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    per_token_loss = -torch.min(coef_1 * adv, coef_2 * adv)

    per_token_kl = None
    if beta != 0.0:
        if ref_per_token_logps is None:
            raise ValueError("beta > 0 needs ref_per_token_logps (the reference model's log-probs).")
        per_token_kl = k3_kl(per_token_logps, ref_per_token_logps)
        per_token_loss = per_token_loss + beta * per_token_kl

    if loss_type == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        loss = loss / gradient_accumulation_steps
    elif loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length.")
        loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
        loss = loss / gradient_accumulation_steps
    elif loss_type == "dapo":
        if num_items_in_batch is None:
            raise ValueError("loss_type='dapo' needs num_items_in_batch (tokens in the rollout).")
        n = torch.as_tensor(num_items_in_batch, dtype=per_token_loss.dtype, device=per_token_loss.device)
        loss = (per_token_loss * mask).sum() / (n.clamp(min=1.0) / num_processes)
    else:
        raise ValueError(f"loss_type={loss_type!r}: use 'grpo', 'dr_grpo' or 'dapo'.")

    is_low_clipped = (coef_1 < 1 - epsilon_low) & (adv < 0)
    is_high_clipped = (coef_1 > 1 + epsilon_high) & (adv > 0)
    return LossOutput(loss, coef_1.detach(), None if per_token_kl is None else per_token_kl.detach(),
                      is_low_clipped, is_high_clipped)


def _nan_reduce(x: Tensor, reduce: Callable[[Tensor], Tensor], fill: float) -> float:
    """min/max ignoring NaNs; NaN if all are NaN (TRL's ``nanmin`` / ``nanmax``)."""
    if torch.isnan(x).all():
        return math.nan
    return reduce(torch.nan_to_num(x, nan=fill)).item()


def _identity(x: Tensor) -> Tensor:
    return x


def loss_metrics(out: LossOutput, entropy: Tensor, mask: Tensor,
                 gather: Callable[[Tensor], Tensor] = _identity) -> dict[str, float]:
    """TRL's per-micro-batch metrics of ``_compute_loss``: ``entropy``, ``kl`` (β > 0) and
    ``clip_ratio/{low_mean,high_mean,region_mean,low_min,high_max}``; means are over completion
    tokens of all processes (``gather`` concatenates a tensor over processes along dim 0)."""
    fm = mask.float()

    def global_mean(x: Tensor) -> float:
        sums = gather(torch.stack([(x.float() * fm).sum(), fm.sum()]).reshape(1, 2)).sum(0)
        return (sums[0] / sums[1].clamp(min=1.0)).item()

    def seq_means(x: Tensor) -> Tensor:  # NaN for an empty completion, as in TRL
        return gather((x.float() * fm).sum(-1) / fm.sum(-1))

    low, high = out.is_low_clipped, out.is_high_clipped
    metrics = {"entropy": global_mean(entropy)}
    if out.per_token_kl is not None:
        metrics["kl"] = global_mean(out.per_token_kl)
    low_seq, high_seq = seq_means(low), seq_means(high)
    metrics.update({
        "clip_ratio/low_mean": global_mean(low),
        "clip_ratio/high_mean": global_mean(high),
        "clip_ratio/region_mean": global_mean(low | high),
        "clip_ratio/low_min": _nan_reduce(low_seq, torch.min, math.inf),
        "clip_ratio/high_max": _nan_reduce(high_seq, torch.max, -math.inf),
    })
    return metrics
