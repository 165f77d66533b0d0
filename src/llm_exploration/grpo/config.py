"""Every setting of a GRPO run, in one dataclass, with TRL's ``GRPOConfig`` field names.

Field names and meanings follow ``trl.GRPOConfig`` (TRL 1.16) wherever TRL has the setting, so a
config can be read side by side with a TRL run. Defaults differ where TRL's defaults suit GPUs
(``bf16``, ``gradient_checkpointing``) or large models (``learning_rate``); each such default
is stated on the field.

Batch arithmetic (TRL's, with ``steps_per_generation = gradient_accumulation_steps``): one
optimizer step uses ``per_device_train_batch_size * gradient_accumulation_steps`` completions
per device, that is ``prompts_per_step = that / num_generations`` prompts, each sampled
``num_generations`` times in one rollout. The rollout is reused for ``num_iterations``
optimizer steps (PPO-style epochs, TRL's μ).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and how to fix it."""


@dataclass
class GRPOConfig:
    """Settings of one GRPO run (model, data, rollout, loss, optimisation, logging)."""

    # --- model -----------------------------------------------------------------------------
    model: str = "smollm2-135m-instruct"
    """An embedded model name or a hub id, loaded with ``llm_exploration.models.load_causal_lm``."""
    attn_implementation: str = "sdpa"
    """Attention kernel passed to transformers ("sdpa" or "eager")."""

    # --- data ------------------------------------------------------------------------------
    dataset: str = "basic_arithmetic"
    """A reasoning-gym task name (``basic_arithmetic``, ``chain_sum``, ``gsm_symbolic``, ...)
    or ``openai/gsm8k`` (read through ``llm_exploration.data.load_dataset``)."""
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra arguments for ``reasoning_gym.create_dataset`` (e.g. ``{"min_terms": 2, "max_terms": 2}``)."""
    train_size: int = 1000
    """Number of training questions (reasoning-gym: generated with ``seed``; GSM8K: first rows of train)."""
    eval_size: int = 100
    """Number of held-out questions (reasoning-gym: a disjoint seed, duplicates of train removed)."""
    system_prompt: str | None = None
    """System message; ``None`` uses ``data.SYSTEM_PROMPT`` (asks for the think/answer tags)."""
    few_shot: int = 3
    """Worked example turns (user question + tagged assistant answer) put before the question.
    SmolLM2-135M-Instruct never writes ``<answer>`` tags from the system prompt alone; measured at
    temperature 1 on easy basic_arithmetic: with 1 example 0 of 16 samples used a tag, with 2
    examples 2 of 12, with 3 examples 7 of 12 (2 of them correct inside the answer tags)."""

    # --- rewards ---------------------------------------------------------------------------
    reward_funcs: list[str] = field(default_factory=lambda: ["format_soft", "correctness"])
    """Names from ``rewards.REWARD_FUNCS``; each is logged as ``rewards/<name>/mean|std``."""
    reward_weights: list[float] | None = None
    """One weight per reward function (TRL's ``reward_weights``); ``None`` means all 1.0."""

    # --- rollout (generation) --------------------------------------------------------------
    num_generations: int = 4
    """G: completions sampled per prompt (a group). Must be >= 2."""
    max_prompt_length: int | None = None
    """Prompts longer than this many tokens raise an error (``None``: no limit)."""
    max_completion_length: int = 64
    """Maximum new tokens per completion (also the constant of the dr_grpo normalisation)."""
    temperature: float = 1.0
    """Sampling temperature; log-probs are computed on ``logits / temperature`` as in TRL."""
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k (TRL's default)."""
    reuse_prompt_cache: bool = True
    """Encode each prompt once and share its KV cache across its G samples (same samples as
    generating G prompt copies; less prefill compute)."""

    # --- loss ------------------------------------------------------------------------------
    loss_type: str = "dapo"
    """``grpo`` (mean over tokens of each sequence, then over sequences), ``dr_grpo`` (sum over
    tokens / (batch * max_completion_length)) or ``dapo`` (sum / tokens in the generation batch);
    TRL's default is ``dapo``."""
    beta: float = 0.0
    """KL coefficient (k3 estimator to a frozen reference). 0 (TRL's default) loads no reference."""
    epsilon: float = 0.2
    """Lower clip range ε_low (TRL's ``epsilon``)."""
    epsilon_high: float | None = None
    """Upper clip range ε_high; ``None`` means ``epsilon`` (DAPO's clip-higher uses e.g. 0.28)."""
    scale_rewards: str = "group"
    """Advantage scaling: ``group`` (std within each group), ``batch`` (std over the batch) or
    ``none`` (no division; Dr. GRPO)."""
    num_iterations: int = 1
    """μ: optimizer steps taken on one rollout. μ > 1 stores the old log-probs at rollout time."""

    # --- optimisation ----------------------------------------------------------------------
    learning_rate: float = 1e-6
    """AdamW learning rate (TRL's default 1e-6; small models on CPU like ~1e-5)."""
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 disables)."""
    warmup_steps: int = 0
    """Linear warmup over this many optimizer steps (ignored by ``constant``, as in transformers)."""
    lr_scheduler_type: str = "constant"
    """A transformers schedule (``transformers.get_scheduler``, as TRL uses): ``constant``,
    ``constant_with_warmup``, ``linear`` (decay to 0 at ``max_steps``) or ``cosine``."""
    """``constant`` or ``linear`` (decay to 0 at ``max_steps``) after warmup."""
    per_device_train_batch_size: int = 8
    """Completions per micro-batch (forward/backward chunk) on each device."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step (all from one rollout, TRL's ``steps_per_generation``)."""
    max_steps: int = 10
    """Optimizer steps to train for."""
    bf16: bool = False
    """bfloat16 autocast (Lightning precision ``bf16-mixed``); TRL defaults to True on GPU."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (TRL defaults to True)."""
    seed: int = 0

    # --- LoRA (PEFT) -----------------------------------------------------------------------
    use_peft: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = "all-linear"

    # --- hardware / Lightning --------------------------------------------------------------
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    """A Lightning strategy name (``ddp``, ``fsdp``, ``ddp_spawn`` ...)."""
    num_nodes: int = 1

    # --- logging / checkpoints -------------------------------------------------------------
    output_dir: str = "runs/grpo"
    """Root for logs (``<output_dir>/<logger>/version_N``) and checkpoints."""
    run_name: str = "grpo"
    logger: str = "csv"
    """``csv`` (default), ``tensorboard`` or ``none``."""
    logging_steps: int = 1
    log_completions: int = 2
    """Completions written per logged step to ``completions.jsonl`` (0 disables)."""
    save_steps: int = 0
    """Save a checkpoint every this many optimizer steps (0: none on the way)."""
    save_last: bool = True
    """Save ``last.ckpt`` at the end (weights, optimizer, RNG and rollout state: exact resume)."""
    resume_from_checkpoint: str | None = None
    """A ``.ckpt`` path (or ``last``) to resume from exactly."""

    # --- derived ---------------------------------------------------------------------------
    @property
    def generation_batch_size(self) -> int:
        """Completions per device per rollout (``per_device_train_batch_size * gradient_accumulation_steps``)."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    @property
    def prompts_per_step(self) -> int:
        """Prompts per device per rollout."""
        return self.generation_batch_size // self.num_generations

    @property
    def epsilon_low(self) -> float:
        return self.epsilon

    @property
    def epsilon_high_value(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the setting and the fix for any invalid value."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(isinstance(self.num_generations, int) and self.num_generations >= 2,
             f"num_generations={self.num_generations!r}: GRPO compares completions within a group, "
             "so it needs at least 2 per prompt; set num_generations >= 2.")
        need(self.per_device_train_batch_size >= 1 and self.gradient_accumulation_steps >= 1,
             "per_device_train_batch_size and gradient_accumulation_steps must be >= 1.")
        need(self.generation_batch_size % self.num_generations == 0,
             f"per_device_train_batch_size * gradient_accumulation_steps = {self.generation_batch_size} "
             f"is not divisible by num_generations={self.num_generations}: each rollout holds whole groups; "
             "change per_device_train_batch_size, gradient_accumulation_steps or num_generations.")
        need(self.loss_type in LOSS_TYPES,
             f"loss_type={self.loss_type!r} is unknown; use one of {', '.join(LOSS_TYPES)}.")
        need(self.scale_rewards in SCALE_REWARDS,
             f"scale_rewards={self.scale_rewards!r} is unknown; use one of {', '.join(SCALE_REWARDS)}.")
        need(math.isfinite(self.beta) and self.beta >= 0,
             f"beta={self.beta!r}: the KL coefficient must be a finite number >= 0 (0 disables the KL).")
        need(0 <= self.epsilon < 1, f"epsilon={self.epsilon!r} must be in [0, 1).")
        need(self.epsilon_high is None or self.epsilon_high >= 0,
             f"epsilon_high={self.epsilon_high!r} must be >= 0 (or null to use epsilon).")
        need(self.num_iterations >= 1, f"num_iterations={self.num_iterations!r} must be >= 1.")
        need(self.max_completion_length >= 1,
             f"max_completion_length={self.max_completion_length!r} must be >= 1.")
        need(self.temperature > 0, f"temperature={self.temperature!r} must be > 0.")
        need(0 < self.top_p <= 1, f"top_p={self.top_p!r} must be in (0, 1].")
        need(self.top_k >= 0, f"top_k={self.top_k!r} must be >= 0 (0 disables).")
        need(self.learning_rate > 0, f"learning_rate={self.learning_rate!r} must be > 0.")
        need(self.max_steps >= 1, f"max_steps={self.max_steps!r} must be >= 1.")
        need(self.warmup_steps >= 0, f"warmup_steps={self.warmup_steps!r} must be >= 0.")
        need(self.lr_scheduler_type in LR_SCHEDULERS,
             f"lr_scheduler_type={self.lr_scheduler_type!r}: use one of {', '.join(LR_SCHEDULERS)}.")
        need(self.logger in ("csv", "tensorboard", "none"),
             f"logger={self.logger!r}: use 'csv', 'tensorboard' or 'none'.")
        need(self.few_shot >= 0, f"few_shot={self.few_shot!r} must be >= 0.")
        need(self.train_size >= self.prompts_per_step,
             f"train_size={self.train_size} is smaller than one rollout's {self.prompts_per_step} prompts.")
        from llm_exploration.grpo.rewards import REWARD_FUNCS

        unknown = [r for r in self.reward_funcs if r not in REWARD_FUNCS]
        need(not unknown and len(self.reward_funcs) > 0,
             f"reward_funcs={self.reward_funcs!r}: unknown {unknown}; choose from {sorted(REWARD_FUNCS)}.")
        need(self.reward_weights is None or len(self.reward_weights) == len(self.reward_funcs),
             f"reward_weights has {len(self.reward_weights or [])} entries for "
             f"{len(self.reward_funcs)} reward_funcs; give one weight per function or null.")

    # --- YAML ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> GRPOConfig:
        """Read a YAML mapping of field names (unknown keys are an error), then apply ``overrides``."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of GRPOConfig fields, got {type(data).__name__}.")
        data.update(overrides)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GRPOConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown GRPOConfig fields {unknown}; valid fields: {sorted(names)}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GRPOConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
