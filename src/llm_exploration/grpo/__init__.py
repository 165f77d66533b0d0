"""A from-scratch GRPO trainer on PyTorch Lightning + transformers (no TRL inside).

Read top to bottom: ``config`` (every setting, TRL's names), ``rewards`` (TRL-signature reward
functions), ``advantages`` (group-normalised advantages), ``loss`` (the clipped surrogate with
TRL's grpo / dr_grpo / dapo normalisations and the k3 KL), ``rollout`` (generation, completion
masks, log-probs at completion positions), ``data`` (prompts), ``module`` (the LightningModule
that ties one GRPO step together), ``train`` (building the Lightning Trainer), ``evaluate``
(strict / lenient accuracy) and ``cli`` (``python -m llm_exploration.grpo fit|evaluate``).
"""

from llm_exploration.grpo.advantages import combine_rewards, group_advantages
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.loss import grpo_loss
from llm_exploration.grpo.rewards import (
    REWARD_FUNCS,
    correctness_reward,
    extract_answer,
    format_soft_reward,
    format_strict_reward,
    last_number,
    lenient_correctness_reward,
)

__all__ = [
    "REWARD_FUNCS",
    "GRPOConfig",
    "combine_rewards",
    "correctness_reward",
    "extract_answer",
    "format_soft_reward",
    "format_strict_reward",
    "group_advantages",
    "grpo_loss",
    "last_number",
    "lenient_correctness_reward",
]
