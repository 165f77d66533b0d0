"""GRPO on riddles with TRL's ``GRPOTrainer`` and a PEFT LoRA adapter (Unsloth on a CUDA GPU).

- CPU (the ``cpu`` profile): the model in fp32, LoRA from PEFT, TRL's own generation,
  ``use_cpu=True``.
- CUDA GPU with the ``unsloth`` package (the ``gpu`` extra): Unsloth's 4-bit model and LoRA,
  and its fast generation (vLLM) inside TRL. Unsloth is imported only on this path.

Every training completion is recorded with its rewards (:class:`RecordedReward`) so the post can
plot what the answers look like as training goes, not only the mean reward.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from datasets import Dataset

from llm_exploration.grpo.rewards import completion_text, format_soft_reward
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.evaluate import score_completion
from llm_exploration.riddles.prompts import riddle_dataset_rows, worked_examples
from llm_exploration.riddles.rewards import riddle_correctness_reward
from llm_exploration.settings import Rule, check

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class UnslothUnavailableError(RuntimeError):
    """Unsloth was asked for, but the package or a CUDA GPU is missing."""


@dataclass
class RiddleGRPOSettings:
    """Everything one riddle training run depends on (TRL's names where TRL has one)."""

    model: str = "smollm2-135m-instruct"  # an embedded name or a hub id
    max_steps: int = 30
    num_generations: int = 4  # completions per riddle (the GRPO group)
    riddles_per_step: int = 1
    max_completion_length: int = 48
    temperature: float = 1.0
    learning_rate: float = 1e-4
    beta: float = 0.0  # no KL term, no reference model
    lora_r: int = 16
    lora_alpha: int = 32
    format_weight: float = 0.5  # reward = format_weight * graded format + correctness
    n_shots: int = 2  # worked examples in every prompt (they seed the answer format)
    seed: int = 0
    use_unsloth: bool | None = None  # None: Unsloth when a CUDA GPU and the package are present
    max_seq_length: int = 1024  # Unsloth only

    def __post_init__(self) -> None:
        check(self, SETTING_RULES)


SETTING_RULES: dict[str, Rule] = {
    "max_steps": Rule(ge=1), "num_generations": Rule(ge=2, hint="GRPO compares completions "
                                                               "within a group of at least 2."),
    "riddles_per_step": Rule(ge=1), "max_completion_length": Rule(ge=1), "temperature": Rule(gt=0),
    "learning_rate": Rule(gt=0), "beta": Rule(ge=0), "lora_r": Rule(ge=1), "lora_alpha": Rule(gt=0),
    "format_weight": Rule(ge=0), "n_shots": Rule(ge=0), "seed": Rule(ge=0),
    "max_seq_length": Rule(ge=1),
}
"""Ranges of :class:`RiddleGRPOSettings` (every field's type is checked from its annotation)."""


def resolve_unsloth(use_unsloth: bool | None) -> bool:
    """Whether to train with Unsloth: ``None`` picks it when CUDA and ``unsloth`` are present;
    ``True`` without them raises :class:`UnslothUnavailableError` with the fix."""
    installed = importlib.util.find_spec("unsloth") is not None
    cuda = torch.cuda.is_available()
    if use_unsloth is None:
        return installed and cuda
    if use_unsloth and not installed:
        raise UnslothUnavailableError(
            "use_unsloth=True, but the `unsloth` package is not installed. Install the gpu extra "
            "on a CUDA machine (pip install -e '.[gpu]'), or set use_unsloth=None (or False) to "
            "train with TRL + PEFT instead."
        )
    if use_unsloth and not cuda:
        raise UnslothUnavailableError(
            "use_unsloth=True, but no CUDA GPU is visible (Unsloth runs only on CUDA). Set "
            "use_unsloth=None (or False) to train with TRL + PEFT on this machine."
        )
    return bool(use_unsloth)


def load_policy(settings: RiddleGRPOSettings) -> tuple[Any, Any, Any]:
    """The model to train, its tokenizer and the PEFT config to hand to TRL.

    With Unsloth the LoRA adapter is already attached (4-bit base) and the PEFT config is None."""
    if resolve_unsloth(settings.use_unsloth):
        from unsloth import FastLanguageModel  # only here: importing it patches transformers

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=settings.model, max_seq_length=settings.max_seq_length, load_in_4bit=True,
            fast_inference=True, max_lora_rank=settings.lora_r, gpu_memory_utilization=0.6)
        model = FastLanguageModel.get_peft_model(
            model, r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules=LORA_TARGETS,
            use_gradient_checkpointing="unsloth", random_state=settings.seed)
        return model, tokenizer, None

    from peft import LoraConfig

    from llm_exploration.models import load_causal_lm

    model, tokenizer = load_causal_lm(settings.model)
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=0.0,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return model, tokenizer, lora


class RecordedReward:
    """Wraps a reward function (same TRL signature and name) and records every completion it
    scores: the step, riddle id, completion text, reward and :func:`score_completion` fields."""

    def __init__(self, func, riddles: dict[str, Riddle], records: list[dict]):
        self.func, self.riddles, self.records = func, riddles, records
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        rewards = self.func(prompts, completions, **kwargs)
        state = kwargs.get("trainer_state")
        step = state.global_step + 1 if state is not None else None
        for completion, reward, rid in zip(completions, rewards, kwargs.get("id", []), strict=False):
            text = completion_text(completion)
            self.records.append({"step": step, "id": rid, "completion": text, "reward": reward,
                                 **score_completion(text, self.riddles[rid])})
        return rewards


@dataclass
class RiddleGRPOResult:
    """What a training run leaves: the trained (LoRA) model, TRL's log history, every training
    completion with its scores, and the wall time."""

    model: Any
    tokenizer: Any
    history: pd.DataFrame
    samples: pd.DataFrame
    seconds: float
    settings: dict = field(default_factory=dict)


def train_riddles(riddles: list[Riddle], settings: RiddleGRPOSettings, *, model: Any = None,
                  tokenizer: Any = None, peft_config: Any = None,
                  output_dir: str | Path | None = None) -> RiddleGRPOResult:
    """Train on ``riddles`` with TRL's GRPOTrainer; rewards: graded format + correctness.

    Pass ``model``/``tokenizer``/``peft_config`` from :func:`load_policy` (e.g. to evaluate the
    same model before training); otherwise they are loaded from ``settings``."""
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    if not riddles:
        raise ValueError("train_riddles needs at least one training riddle.")
    if model is None:
        model, tokenizer, peft_config = load_policy(settings)
    unsloth = resolve_unsloth(settings.use_unsloth)
    cuda = torch.cuda.is_available()
    batch = settings.num_generations * settings.riddles_per_step
    out = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="riddles-grpo-"))
    config = GRPOConfig(
        output_dir=str(out), max_steps=settings.max_steps, per_device_train_batch_size=batch,
        num_generations=settings.num_generations, max_completion_length=settings.max_completion_length,
        temperature=settings.temperature, learning_rate=settings.learning_rate, beta=settings.beta,
        reward_weights=[settings.format_weight, 1.0], seed=settings.seed, logging_steps=1,
        save_strategy="no", report_to="none", use_cpu=not cuda, bf16=cuda, use_vllm=unsloth,
        disable_tqdm=True, gradient_checkpointing=False,  # a 135M model fits; recomputing costs time
    )
    records: list[dict] = []
    by_id = {r.id: r for r in riddles}
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, args=config, peft_config=peft_config,
        reward_funcs=[format_soft_reward, RecordedReward(riddle_correctness_reward, by_id, records)],
        train_dataset=Dataset.from_list(riddle_dataset_rows(riddles, worked_examples(settings.n_shots))),
    )
    trainer.remove_callback(PrinterCallback)  # the logs are returned, not printed into the post
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    history = pd.DataFrame([h for h in trainer.state.log_history if "reward" in h])
    return RiddleGRPOResult(model=trainer.model, tokenizer=tokenizer, history=history,
                            samples=pd.DataFrame(records), seconds=seconds, settings=asdict(settings))
