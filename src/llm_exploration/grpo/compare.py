"""TRL's ``GRPOTrainer`` run with the settings of an engine :class:`GRPOConfig`, side by side.

The engine's config uses TRL's field names, so :func:`trl_args` is a plain field-by-field
copy into ``trl.GRPOConfig``. :func:`train_trl` trains with the same model, the same prompt
rows (chat messages plus reference columns) and the same reward functions, and returns the
per-step metrics under the engine's names (``rewards/<name>/mean`` with the engine's reward
names) plus the wall time of every optimizer step measured the same way as for the engine
(:class:`StepTimer`), completion tokens per second and the process's peak memory.
"""

from __future__ import annotations

import functools
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from transformers import PrinterCallback, TrainerCallback

from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.rewards import REWARD_FUNCS


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (CPU runs)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def named_reward_funcs(names: list[str]) -> list:
    """The engine's reward functions, named so TRL logs them as ``rewards/<name>/…``.

    TRL names a reward column after the function's ``__name__``; the engine after its key in
    ``REWARD_FUNCS``. A thin named wrapper makes both logs use the same column names.
    """
    funcs = []
    for name in names:
        if name not in REWARD_FUNCS:
            raise ValueError(f"Unknown reward function {name!r}; choose from {sorted(REWARD_FUNCS)}.")
        wrapped = functools.wraps(REWARD_FUNCS[name])(
            lambda prompts, completions, _f=REWARD_FUNCS[name], **kw: _f(prompts, completions, **kw)
        )
        wrapped.__name__ = name
        funcs.append(wrapped)
    return funcs


SHARED_SETTINGS = (
    # rollout
    "num_generations", "max_completion_length", "temperature", "top_p", "top_k",
    # loss
    "loss_type", "beta", "epsilon", "epsilon_high", "scale_rewards", "num_iterations", "reward_weights",
    # optimisation
    "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "max_grad_norm", "warmup_steps",
    "lr_scheduler_type", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
    "bf16", "gradient_checkpointing", "seed",
)
"""Fields with the same name and meaning in the engine's config and ``trl.GRPOConfig``."""


def trl_args(cfg: GRPOConfig, output_dir: str | Path) -> Any:
    """A ``trl.GRPOConfig`` with every :data:`SHARED_SETTINGS` value of ``cfg``; same dtype and
    attention kernel; logging every step to memory only."""
    from trl import GRPOConfig as TRLConfig

    cuda = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    return TRLConfig(
        output_dir=str(output_dir),
        use_cpu=not cuda,
        model_init_kwargs={"dtype": torch.float32, "attn_implementation": cfg.attn_implementation},
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        **{name: getattr(cfg, name) for name in SHARED_SETTINGS},
    )


class StepTimer(TrainerCallback):
    """Wall-clock time of each optimizer step: from the end of the previous step (or the start
    of training) to the end of this one, so generation, scoring, update and logging all count.
    The engine's Lightning runs are timed by the same rule (``benchmarks/grpo_vs_trl.py``)."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._last = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        self.step_times.append(now - self._last)
        self._last = now


@dataclass
class TRLRun:
    """What a TRL run returns for the side-by-side comparison."""

    metrics: pd.DataFrame
    """One row per optimizer step: TRL's logged metrics (engine reward names), ``step``,
    ``step_time`` (s), ``completion_tokens`` and ``completion_tokens_per_s``."""
    peak_rss_mb: float
    trainer: Any = field(repr=False, default=None)
    """The ``trl.GRPOTrainer`` (its ``.model`` is the trained policy)."""


def train_trl(
    cfg: GRPOConfig,
    rows: list[dict[str, Any]],
    model: str | Path,
    *,
    output_dir: str | Path | None = None,
    keep_trainer: bool = True,
) -> TRLRun:
    """Train with ``trl.GRPOTrainer`` at the settings of ``cfg``.

    rows: the training prompts as TRL dataset rows, each with ``prompt`` (chat messages, the
    same ones the engine templates) and the reference columns the reward functions read
    (e.g. ``answer``). model: a local Hugging Face folder or hub id (for the embedded model,
    ``llm_exploration.models.embedded_model_path(name)``).
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    if not rows or "prompt" not in rows[0]:
        raise ValueError("train_trl needs rows with a 'prompt' column (chat messages).")
    out = Path(output_dir or tempfile.mkdtemp(prefix="trl-grpo-"))
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=str(model),
        args=trl_args(cfg, out),
        reward_funcs=named_reward_funcs(cfg.reward_funcs),
        train_dataset=Dataset.from_list(rows),
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log dict
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    metrics = pd.DataFrame(logs)
    metrics["step"] = metrics["step"].astype(int)
    metrics["step_time"] = timer.step_times[: len(metrics)]
    metrics["completion_tokens"] = metrics["completions/mean_length"] * cfg.generation_batch_size
    metrics["completion_tokens_per_s"] = metrics["completion_tokens"] / metrics["step_time"]
    return TRLRun(metrics=metrics, peak_rss_mb=peak_rss_mb(), trainer=trainer if keep_trainer else None)
