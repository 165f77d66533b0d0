"""GRPO on riddles with TRL's ``GRPOTrainer`` and a PEFT LoRA adapter (Unsloth on a CUDA GPU).

- CPU (the ``cpu`` profile): the model in fp32 with bf16 autocast (``bf16=True``; about 1.7x
  faster than fp32 on a CPU with AVX-512 bf16), LoRA from PEFT, TRL's own generation,
  ``use_cpu=True``. Accelerate autocasts only the training forward pass, not TRL's
  ``generate``, so each ``generate`` call gets its own bf16 autocast (``_generate_in_autocast``).
- CUDA GPU with the ``unsloth`` package (the ``gpu`` extra): Unsloth's 4-bit model and LoRA as
  in Unsloth's GRPO notebooks, its vLLM generation inside TRL. Unsloth is imported only there.

Two reward settings: ``"correctness"`` (format + correctness, the experiment) and ``"format"``
(the format reward alone, the ablation; correctness is still computed and logged, with weight
0). Every training completion is recorded with its scores (:class:`RecordedReward`).
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

from llm_exploration.grpo.rewards import completion_text
from llm_exploration.riddles.choices import ChoiceItem, answer_words
from llm_exploration.riddles.data import Riddle
from llm_exploration.riddles.prompts import line_stop_ids, riddle_dataset_rows, worked_examples
from llm_exploration.riddles.rewards import (
    riddle_correctness_reward,
    riddle_format_reward,
    score_reply,
)
from llm_exploration.riddles.sampling import autocast
from llm_exploration.settings import Rule, SettingError, check

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
REWARDS = ("correctness", "format")


class UnslothUnavailableError(RuntimeError):
    """Unsloth was asked for, but the package or a CUDA GPU is missing."""


@dataclass
class RiddleGRPOSettings:
    """Everything one riddle training run depends on (TRL's names where TRL has one)."""

    model: str = "smollm2-135m-instruct"  # an embedded name or a hub id
    rewards: str = "correctness"  # "correctness": format + correctness; "format": format alone
    max_steps: int = 30
    num_generations: int = 8  # completions per riddle (the GRPO group)
    riddles_per_step: int = 2
    max_completion_length: int = 12
    temperature: float = 0.7
    learning_rate: float = 3e-4
    beta: float = 0.0  # no KL term, no reference model
    lora_r: int = 16
    lora_alpha: int = 32
    format_weight: float = 0.5  # reward = format_weight * format + correctness
    think: bool = False  # reply form: the answer alone (False) or <think>/<answer> (True)
    n_shots: int = 0  # worked examples in every prompt (think form only)
    bf16: bool = True  # bf16 autocast (CPU) or bf16 weights (CUDA)
    seed: int = 0
    use_unsloth: bool | None = None  # None: Unsloth when a CUDA GPU and the package are present
    max_seq_length: int = 1024  # Unsloth only
    gpu_memory_utilization: float = 0.6  # Unsloth's vLLM only

    def __post_init__(self) -> None:
        check(self, SETTING_RULES)
        if self.n_shots and not self.think:
            raise SettingError("n_shots > 0 needs think=True (worked examples are in the think form).")


SETTING_RULES: dict[str, Rule] = {
    "max_steps": Rule(ge=1), "num_generations": Rule(ge=2, hint="GRPO compares completions "
                                                               "within a group of at least 2."),
    "riddles_per_step": Rule(ge=1), "max_completion_length": Rule(ge=1), "temperature": Rule(gt=0),
    "learning_rate": Rule(gt=0), "beta": Rule(ge=0), "lora_r": Rule(ge=1), "lora_alpha": Rule(gt=0),
    "format_weight": Rule(ge=0), "n_shots": Rule(ge=0), "seed": Rule(ge=0),
    "max_seq_length": Rule(ge=1), "rewards": Rule(choices=REWARDS),
    "gpu_memory_utilization": Rule(gt=0, le=1),
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
            fast_inference=True, max_lora_rank=settings.lora_r,
            gpu_memory_utilization=settings.gpu_memory_utilization)
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
    scores: step, riddle id, reply, reward, what :func:`rewards.score_reply` reads from it, the
    answer's length in words and the completion's length in tokens."""

    def __init__(self, func, records: list[dict]):
        self.func, self.records = func, records
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        rewards = self.func(prompts, completions, **kwargs)
        state = kwargs.get("trainer_state")
        step = state.global_step + 1 if state is not None else None
        ids = kwargs.get("completion_ids") or [[]] * len(completions)
        for i, (completion, reward) in enumerate(zip(completions, rewards, strict=True)):
            text = completion_text(completion)
            scored = score_reply(text, answer=kwargs["answer"][i], aliases=kwargs["aliases"][i],
                                 options=kwargs["options"][i], correct=kwargs["correct"][i],
                                 think=kwargs["think"][i])
            words = len(answer_words(scored["answer"]))
            self.records.append({"step": step, "id": kwargs["id"][i], "reply": text, "reward": reward,
                                 **scored, "answer_words": words, "completion_tokens": len(ids[i])})
        return rewards


@dataclass
class RiddleGRPOResult:
    """What a training run leaves: the trained (LoRA) model, TRL's log history, every training
    completion with its scores, and the wall and CPU time of training."""

    model: Any
    tokenizer: Any
    history: pd.DataFrame
    samples: pd.DataFrame
    seconds: float
    cpu_seconds: float
    settings: dict = field(default_factory=dict)


def _generate_in_autocast(model: Any) -> None:
    """Make ``model.generate`` (what TRL samples completions with) run in CPU bf16 autocast.

    One autocast context per call, never one around all of training: autocast caches the bf16
    copy of every trainable weight until its outermost context exits, so a context held across
    optimizer steps would keep generating (and training) with the weights of the first step."""
    generate = model.generate

    def in_autocast(*args: Any, **kwargs: Any) -> Any:
        with autocast(torch.bfloat16, torch.device("cpu")):
            return generate(*args, **kwargs)

    model.generate = in_autocast


def train_riddles(items: list[ChoiceItem] | list[Riddle], settings: RiddleGRPOSettings, *,
                  model: Any = None, tokenizer: Any = None, peft_config: Any = None,
                  output_dir: str | Path | None = None) -> RiddleGRPOResult:
    """Train on ``items`` (multiple-choice items or free-form riddles) with TRL's GRPOTrainer.

    Pass ``model``/``tokenizer``/``peft_config`` from :func:`load_policy`; otherwise they are
    loaded from ``settings``."""
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    if not items:
        raise ValueError("train_riddles needs at least one training riddle.")
    if model is None:
        model, tokenizer, peft_config = load_policy(settings)
    unsloth = resolve_unsloth(settings.use_unsloth)
    if not settings.think:  # TRL reads its end tokens from the model: a direct reply is one line
        model.generation_config.eos_token_id = line_stop_ids(tokenizer)
    cuda = torch.cuda.is_available()
    out = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="riddles-grpo-"))
    config = GRPOConfig(
        output_dir=str(out), max_steps=settings.max_steps,
        per_device_train_batch_size=settings.num_generations * settings.riddles_per_step,
        num_generations=settings.num_generations, max_completion_length=settings.max_completion_length,
        temperature=settings.temperature, top_k=0, top_p=1.0, learning_rate=settings.learning_rate,
        beta=settings.beta, seed=settings.seed, logging_steps=1, save_strategy="no", report_to="none",
        reward_weights=[settings.format_weight if settings.rewards == "correctness" else 1.0,
                        1.0 if settings.rewards == "correctness" else 0.0],
        use_cpu=not cuda, bf16=settings.bf16, use_vllm=unsloth, disable_tqdm=True,
        gradient_checkpointing=False,  # a 135M model fits; recomputing costs time
    )
    records: list[dict] = []
    shots = worked_examples(settings.n_shots) if settings.think else None
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, args=config, peft_config=peft_config,
        reward_funcs=[riddle_format_reward, RecordedReward(riddle_correctness_reward, records)],
        train_dataset=Dataset.from_list(riddle_dataset_rows(items, think=settings.think, shots=shots)),
    )
    trainer.remove_callback(PrinterCallback)  # the logs are returned, not printed into the post
    if settings.bf16 and not cuda:
        _generate_in_autocast(trainer.model)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    history = pd.DataFrame([h for h in trainer.state.log_history if "reward" in h])
    return RiddleGRPOResult(model=trainer.model, tokenizer=tokenizer, history=history,
                            samples=pd.DataFrame(records), seconds=seconds, cpu_seconds=cpu_seconds,
                            settings=asdict(settings))
