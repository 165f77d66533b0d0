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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_exploration import settings
from llm_exploration.grpo.rewards import REWARD_FUNCS
from llm_exploration.settings import Rule, SettingError

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
GSM8K = "openai/gsm8k"

ConfigError = SettingError
"""A setting is invalid; the message names the setting, the value and what is allowed."""


def _reasoning_gym_config(dataset: str) -> type | None:
    """The config class of a reasoning-gym task (None for an unknown name)."""
    from reasoning_gym.factory import DATASETS

    return DATASETS[dataset][1] if dataset in DATASETS else None


RULES: dict[str, Rule] = {
    "attn_implementation": Rule(choices=("eager", "sdpa", "flash_attention_2")),
    "dataset": Rule(test=lambda d: d == GSM8K or _reasoning_gym_config(d) is not None,
                    expected=f"{GSM8K!r} or a reasoning-gym task name (basic_arithmetic, "
                             "chain_sum, gsm_symbolic, ...)"),
    "train_size": Rule(ge=1), "eval_size": Rule(ge=0), "few_shot": Rule(ge=0),
    "reward_funcs": Rule(choices=tuple(REWARD_FUNCS)),
    "num_generations": Rule(ge=2, hint="GRPO compares completions within a group, so it needs "
                                       "at least 2 per prompt."),
    "max_prompt_length": Rule(ge=1), "max_completion_length": Rule(ge=1),
    "temperature": Rule(gt=0), "top_p": Rule(gt=0, le=1), "top_k": Rule(ge=0, hint="0 disables."),
    "loss_type": Rule(choices=LOSS_TYPES), "beta": Rule(ge=0, hint="0 disables the KL."),
    "epsilon": Rule(ge=0, lt=1), "epsilon_high": Rule(ge=0), "scale_rewards": Rule(choices=SCALE_REWARDS),
    "num_iterations": Rule(ge=1), "learning_rate": Rule(gt=0), "weight_decay": Rule(ge=0),
    "adam_beta1": Rule(ge=0, lt=1), "adam_beta2": Rule(ge=0, lt=1),
    "max_grad_norm": Rule(ge=0, hint="0 disables clipping."), "warmup_steps": Rule(ge=0),
    "lr_scheduler_type": Rule(choices=LR_SCHEDULERS),
    "per_device_train_batch_size": Rule(ge=1), "gradient_accumulation_steps": Rule(ge=1),
    "max_steps": Rule(ge=1), "seed": Rule(ge=0),
    "lora_r": Rule(ge=1), "lora_alpha": Rule(gt=0), "lora_dropout": Rule(ge=0, lt=1),
    "accelerator": Rule(choices=("auto", "cpu", "gpu", "cuda", "mps", "tpu")),
    "devices": Rule(test=lambda d: isinstance(d, str) or d == -1 or d >= 1,
                    expected="a device count >= 1, -1 (all), or a string such as 'auto' or '0,1'"),
    "num_nodes": Rule(ge=1), "output_dir": Rule(test=bool, expected="a non-empty folder path"),
    "logger": Rule(choices=("csv", "tensorboard", "none")),
    "logging_steps": Rule(ge=1), "log_completions": Rule(ge=0), "save_steps": Rule(ge=0),
    "resume_from_checkpoint": Rule(test=lambda p: p == "last" or Path(p).is_file(),
                                   expected="an existing .ckpt file or 'last'"),
}
"""Range and allowed values of each field (every field's type is checked from its annotation)."""


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
        settings.check(self, RULES)
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` for settings that do not fit together (each field alone is
        checked by ``RULES``)."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(self.generation_batch_size % self.num_generations == 0,
             f"per_device_train_batch_size * gradient_accumulation_steps = {self.generation_batch_size} "
             f"is not divisible by num_generations={self.num_generations}: each rollout holds whole groups; "
             "change per_device_train_batch_size, gradient_accumulation_steps or num_generations.")
        need(self.train_size >= self.prompts_per_step,
             f"train_size={self.train_size} is smaller than one rollout's {self.prompts_per_step} prompts.")
        need(len(self.reward_funcs) > 0, f"reward_funcs is empty; choose from {sorted(REWARD_FUNCS)}.")
        need(self.reward_weights is None or len(self.reward_weights) == len(self.reward_funcs),
             f"reward_weights has {len(self.reward_weights or [])} entries for "
             f"{len(self.reward_funcs)} reward_funcs; give one weight per function or null.")
        if {"seed", "size"} & set(self.dataset_kwargs):
            raise ConfigError(f"dataset_kwargs={self.dataset_kwargs!r} must not set seed or size: "
                              "they come from seed, train_size and eval_size.", setting="dataset_kwargs")
        rg_config = _reasoning_gym_config(self.dataset) if self.dataset != GSM8K else None
        try:
            if rg_config is not None:
                rg_config(**self.dataset_kwargs).validate()
        except (TypeError, ValueError, AssertionError) as err:
            keys = [f.name for f in dataclasses.fields(rg_config) if f.name not in ("seed", "size")]
            raise ConfigError(f"dataset_kwargs={self.dataset_kwargs!r} do not fit dataset="
                              f"{self.dataset!r}: {err}. Valid keys: {', '.join(keys)}.",
                              setting="dataset_kwargs") from None

    # --- YAML ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> GRPOConfig:
        """Read a YAML mapping of field names (unknown keys are an error), then apply ``overrides``."""
        return settings.load(cls, path, **overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GRPOConfig:
        return settings.load(cls, **data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GRPOConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
