"""Small measurements that explain the GRPO objective, computed with the engine's own loss.

Each function answers one question the "Simple GRPO trainer" post asks, by calling
:func:`llm_exploration.grpo.loss.grpo_loss` on tensors and reading values or gradients back:

- :func:`surrogate_curve`: the clipped per-token objective and its gradient as a function of the
  probability ratio r, for a positive and a negative advantage (what clipping does);
- :func:`token_gradient_weights`: how hard each completion token is pushed, ``-∂loss/∂logp``,
  for each ``loss_type`` (where the length bias comes from);
- :func:`loss_at_mu1`: the loss value at μ = 1 next to the size of its gradient (why the
  reported loss sits near zero while the model still learns);
- :func:`sample_groups`: one real rollout (G completions per prompt, their rewards and
  advantages) made with the engine's own rollout, reward and advantage functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from llm_exploration.grpo.advantages import combine_rewards, group_advantages
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import apply_template, build_messages
from llm_exploration.grpo.loss import grpo_loss
from llm_exploration.grpo.rewards import REWARD_FUNCS
from llm_exploration.grpo.rollout import generate, tokenize_prompts

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")


def surrogate_curve(
    ratios: Tensor, advantage: float, epsilon_low: float = 0.2, epsilon_high: float = 0.2
) -> pd.DataFrame:
    """Per-token objective ``min(r·A, clip(r, 1-ε_low, 1+ε_high)·A)`` and its gradient, on a grid of r.

    ratios: (R,) positive probability ratios π_θ/π_old. Each ratio is evaluated as a one-token
    completion through :func:`grpo_loss`, so the value is exactly the per-token objective.
    Returns columns ``ratio``, ``objective`` (= -loss) and ``gradient`` (∂objective/∂log π_θ;
    exactly 0 where clipping cuts the gradient off).
    """
    rows = []
    for r in ratios.double().tolist():
        logp = torch.tensor([[float(torch.tensor(r).log())]], dtype=torch.float64, requires_grad=True)
        out = grpo_loss(
            logp,
            torch.tensor([float(advantage)], dtype=torch.float64),
            torch.ones(1, 1),
            loss_type="grpo",
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            old_per_token_logps=torch.zeros(1, 1, dtype=torch.float64),
        )
        out.loss.backward()
        rows.append({"ratio": r, "objective": -float(out.loss.detach()), "gradient": -float(logp.grad)})
    return pd.DataFrame(rows)


def _loss_and_grad_at_mu1(
    advantages: Tensor, mask: Tensor, loss_type: str, max_completion_length: int
) -> tuple[Tensor, Tensor]:
    """The engine's loss at μ = 1 (log-probs at 0, π_old = π_θ) and its gradient ∂loss/∂logp (B, T)."""
    logps = torch.zeros(mask.shape, dtype=torch.float64, requires_grad=True)
    out = grpo_loss(
        logps,
        advantages.double(),
        mask,
        loss_type=loss_type,
        max_completion_length=max_completion_length,
        num_items_in_batch=mask.sum(),
    )
    out.loss.backward()
    return out.loss.detach(), logps.grad


def token_gradient_weights(
    advantages: Tensor,
    mask: Tensor,
    loss_type: str,
    max_completion_length: int | None = None,
) -> Tensor:
    """``-∂loss/∂logp`` for every completion token at μ = 1 (π_old = π_θ).

    advantages: (B,); mask: (B, T) completion mask. Returns (B, T): the weight with which each
    token's log-probability is pushed up (positive) or down (negative) in one step. For
    ``grpo`` it is A_i / (B·|o_i|) (shrinks with the completion's length); for ``dr_grpo``
    A_i / (B·max_completion_length); for ``dapo`` A_i / (tokens in the batch).
    """
    _, grad = _loss_and_grad_at_mu1(advantages, mask, loss_type, max_completion_length or mask.shape[1])
    return -grad * mask


def length_bias_table(advantages: Tensor, mask: Tensor, max_completion_length: int) -> pd.DataFrame:
    """Per-completion summary of :func:`token_gradient_weights` for every loss type.

    Returns one row per (completion, loss_type): ``length`` (tokens), ``advantage``,
    ``per_token`` (|weight| of one of its tokens) and ``total`` (sum of its tokens' weights,
    i.e. how much the whole completion's log-likelihood is pushed).
    """
    lengths = mask.sum(1)
    rows = []
    for loss_type in LOSS_TYPES:
        w = token_gradient_weights(advantages, mask, loss_type, max_completion_length)
        for i in range(len(advantages)):
            if lengths[i] == 0:
                continue
            rows.append(
                {
                    "loss_type": loss_type,
                    "completion": i,
                    "length": int(lengths[i]),
                    "advantage": float(advantages[i]),
                    "per_token": float(w[i][mask[i].bool()].abs().mean()),
                    "total": float(w[i].sum()),
                }
            )
    return pd.DataFrame(rows)


def loss_at_mu1(advantages: Tensor, mask: Tensor, max_completion_length: int) -> pd.DataFrame:
    """Loss value versus the size of its gradient at μ = 1, for every loss type.

    At μ = 1 the ratio r = exp(logp - logp.detach()) equals 1 in value but has gradient
    ∇logp, so the loss *value* is just minus a weighted mean of the advantages (exactly 0 for
    ``grpo`` with group-normalised advantages), while its gradient is the policy gradient.
    Returns columns ``loss_type``, ``loss`` and ``gradient_norm`` (‖∂loss/∂logp‖₂ over tokens).
    """
    rows = []
    for loss_type in LOSS_TYPES:
        loss, grad = _loss_and_grad_at_mu1(advantages, mask, loss_type, max_completion_length)
        rows.append({"loss_type": loss_type, "loss": float(loss), "gradient_norm": float(grad.norm())})
    return pd.DataFrame(rows)


@dataclass
class Groups:
    """One rollout of P prompts × G completions, rows grouped by prompt."""

    questions: list[str]  # (P,)
    completions: list[str]  # (P*G,)
    rewards_per_func: pd.DataFrame  # (P*G, F), one column per reward function
    rewards: Tensor  # (P*G,) weighted sum
    advantages: Tensor  # (P*G,)
    completion_mask: Tensor  # (P*G, C)

    def table(self) -> pd.DataFrame:
        """One row per completion: prompt number, completion, each reward, total, advantage."""
        G = len(self.completions) // len(self.questions)
        return pd.DataFrame({"prompt": [i // G + 1 for i in range(len(self.completions))],
                             "completion": self.completions}).join(self.rewards_per_func).assign(
            reward=self.rewards.numpy(), advantage=self.advantages.numpy(),
            tokens=self.completion_mask.sum(1).numpy())


@torch.no_grad()
def sample_groups(model: Any, tokenizer: Any, cfg: GRPOConfig, rows: list[dict[str, str]]) -> Groups:
    """Sample ``cfg.num_generations`` completions for each row's question as a training step
    would (same prompt, sampling settings, rewards and advantage scaling)."""
    G = cfg.num_generations
    prompts = [build_messages(r["question"], cfg.system_prompt, cfg.few_shot) for r in rows]
    ids, mask = tokenize_prompts(tokenizer, [apply_template(tokenizer, m) for m in prompts])
    device = next(model.parameters()).device
    out = generate(model, tokenizer, ids.to(device), mask.to(device), G,
                   max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
                   top_p=cfg.top_p, top_k=cfg.top_k)
    texts = tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
    columns = {k: [r[k] for r in rows for _ in range(G)] for k in rows[0] if k != "question"}
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    per_func = {name: REWARD_FUNCS[name]([p for p in prompts for _ in range(G)], completions, **columns)
                for name in cfg.reward_funcs}
    table = pd.DataFrame(per_func).astype(float)
    weights = torch.tensor(cfg.reward_weights or [1.0] * len(cfg.reward_funcs))
    rewards = combine_rewards(torch.tensor(table.to_numpy(), dtype=torch.float32), weights)
    adv = group_advantages(rewards, G, cfg.scale_rewards).advantages
    return Groups([r["question"] for r in rows], texts, table, rewards, adv, out.completion_mask.cpu())


def zero_std_fraction(rewards: Tensor, num_generations: int) -> float:
    """Fraction of groups whose G rewards are all equal (advantage 0, no learning signal)."""
    return float(group_advantages(rewards, num_generations).group_std_zero.float().mean())
