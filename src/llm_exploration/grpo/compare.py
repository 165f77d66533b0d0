"""The engine and TRL's ``GRPOTrainer`` run side by side at the same settings.

The engine's config uses TRL's field names, so :func:`trl_args` is a field-by-field copy into
``trl.GRPOConfig`` (:data:`SHARED_SETTINGS`). Both :func:`train_ours` and :func:`train_trl`
train the same model on the same prompt rows (the engine's chat messages and reference
columns) with the same reward functions (:func:`named_reward_funcs`, so both logs name them
``rewards/<name>/mean``), time every optimizer step by the same rule (wall clock from the end
of the previous step to the end of this one: generation, scoring, update and logging all
count) and return a :class:`Run`: one metrics row per optimizer step with TRL's metric names,
``step_time``, ``completion_tokens`` and ``completion_tokens_per_s``, plus the peak memory.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from transformers import PrinterCallback, TrainerCallback

from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import build_messages, load_rows
from llm_exploration.grpo.rewards import REWARD_FUNCS

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


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (what a CPU run costs)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def named_reward_funcs(names: list[str]) -> list:
    """The engine's reward functions, each wrapped under its config name.

    TRL (and the engine) name a reward's log columns after the function's ``__name__``; the
    wrapper makes both logs say ``rewards/<config name>/mean``. Values are unchanged.
    """
    funcs = []
    for name in names:
        if name not in REWARD_FUNCS:
            raise ValueError(f"Unknown reward function {name!r}; choose from {sorted(REWARD_FUNCS)}.")
        func = REWARD_FUNCS[name]

        @functools.wraps(func)
        def wrapped(prompts: list, completions: list, _func=func, **kwargs: Any) -> list:
            return _func(prompts, completions, **kwargs)

        wrapped.__name__ = name
        funcs.append(wrapped)
    return funcs


def training_rows(cfg: GRPOConfig) -> list[dict[str, Any]]:
    """The engine's training questions as TRL dataset rows: ``prompt`` (the same chat messages
    the engine templates), ``question`` and ``answer``."""
    rows = load_rows(cfg.dataset, "train", cfg.train_size, cfg.seed, cfg.dataset_kwargs)
    return [{"prompt": build_messages(r["question"], cfg.system_prompt, cfg.few_shot), **r} for r in rows]


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


class _Clock:
    """Step durations: wall time and this process's CPU time (all threads) from the previous
    mark (or start) to each step's end. CPU time is what a busy shared machine inflates least."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self.cpu_times: list[float] = []
        self.start()

    def start(self) -> None:
        self._last, self._last_cpu = time.perf_counter(), time.process_time()

    def mark(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.step_times.append(now - self._last)
        self.cpu_times.append(cpu - self._last_cpu)
        self._last, self._last_cpu = now, cpu


class StepTimer(TrainerCallback):
    """:class:`_Clock` for a ``transformers`` / TRL trainer (one mark per optimizer step)."""

    def __init__(self) -> None:
        self.clock = _Clock()

    @property
    def step_times(self) -> list[float]:
        return self.clock.step_times

    @property
    def cpu_times(self) -> list[float]:
        return self.clock.cpu_times

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.mark()


class LightningStepTimer(L.Callback):
    """:class:`_Clock` for a Lightning trainer: one mark each time ``global_step`` advances."""

    def __init__(self) -> None:
        self.clock = _Clock()
        self._step = 0

    @property
    def step_times(self) -> list[float]:
        return self.clock.step_times

    @property
    def cpu_times(self) -> list[float]:
        return self.clock.cpu_times

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.start()
        self._step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.global_step > self._step:
            self._step = trainer.global_step
            self.clock.mark()


@dataclass
class Run:
    """One training run, engine or TRL, in a common shape."""

    trainer: str
    """``"ours"`` or ``"TRL"``."""
    seed: int
    metrics: pd.DataFrame
    """One row per optimizer step: TRL-named metrics, ``trainer``, ``seed``, ``step`` (1-based),
    ``step_time`` (s), ``completion_tokens`` and ``completion_tokens_per_s``."""
    peak_rss_mb: float
    """Peak memory of the process at the end of the run (monotone: meaningful per process)."""
    model: Any = field(repr=False, default=None)
    tokenizer: Any = field(repr=False, default=None)


def _finish(trainer: str, cfg: GRPOConfig, rows: list[dict[str, Any]], clock: Any, model: Any,
            tokenizer: Any) -> Run:
    m = pd.DataFrame(rows)
    m = m[m["reward"].notna()].reset_index(drop=True)
    m["step"] = range(1, len(m) + 1)
    m["trainer"], m["seed"] = trainer, cfg.seed
    m["step_time"] = clock.step_times[: len(m)]
    m["step_cpu_time"] = clock.cpu_times[: len(m)]
    m["completion_tokens"] = m["completions/mean_length"] * cfg.generation_batch_size
    m["completion_tokens_per_s"] = m["completion_tokens"] / m["step_time"]
    return Run(trainer, cfg.seed, m, peak_rss_mb(), model, tokenizer)


@contextlib.contextmanager
def _lightning_quiet() -> Iterator[None]:
    """Lightning's info messages (accelerator, tips, "max_steps reached") off for a block.
    (Importing ``lightning.pytorch`` resets its logger to INFO, so this is done at run time.)"""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def train_ours(cfg: GRPOConfig, model: Any = None, tokenizer: Any = None) -> Run:
    """Train with the engine (``llm_exploration.grpo.train.fit``) at ``cfg``; CSV metrics only,
    no checkpoints, no progress bar. ``model``/``tokenizer`` default to ``cfg.model``."""
    from llm_exploration.grpo.train import fit

    timer = LightningStepTimer()
    out = tempfile.mkdtemp(prefix="grpo-ours-")
    with _lightning_quiet():
        result = fit(cfg.replace(output_dir=out, logger="csv"), model=model, tokenizer=tokenizer,
                     reward_funcs=named_reward_funcs(cfg.reward_funcs), callbacks=[timer],
                     enable_checkpointing=False, enable_progress_bar=False)
    rows = result.metrics()
    for r in rows:  # the CSV logger counts steps from 0, TRL from 1
        r.pop("step", None)
        r.pop("epoch", None)
    return _finish("ours", cfg, rows, timer, result.module.policy, result.module.tokenizer)


def _bf16_generation(base: type) -> type:
    """``GRPOTrainer`` whose rollouts run under the same bf16 autocast as its loss (and as the
    engine's rollouts, which Lightning's ``bf16-mixed`` covers). TRL 1.16 generates outside
    ``compute_loss_context_manager``, so on CPU its rollouts would otherwise run in float32."""

    class Trainer(base):
        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            device = self.accelerator.device.type
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bool(self.args.bf16)):
                return super()._generate_single_turn(*args, **kwargs)

    return Trainer


def generation_precision(cfg: GRPOConfig) -> str:
    """The dtype both trainers sample in at ``cfg`` (weights stay float32; autocast when bf16)."""
    return "bf16 autocast" if cfg.bf16 else "float32"


def train_trl(cfg: GRPOConfig, rows: list[dict[str, Any]] | None = None, model: str | Path | None = None) -> Run:
    """Train with ``trl.GRPOTrainer`` at the settings of ``cfg``.

    rows: TRL dataset rows with ``prompt`` (chat messages) and the reference columns the
    reward functions read; default :func:`training_rows`. model: a local Hugging Face folder
    or hub id; default ``cfg.model`` (the embedded model's converted folder).
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    from llm_exploration.models import EMBEDDED, embedded_model_path

    rows = training_rows(cfg) if rows is None else rows
    if not rows or "prompt" not in rows[0]:
        raise ValueError("train_trl needs rows with a 'prompt' column (chat messages).")
    if model is None:
        model = embedded_model_path(cfg.model) if cfg.model in EMBEDDED else cfg.model
    timer = StepTimer()
    trainer = _bf16_generation(GRPOTrainer)(
        model=str(model),
        args=trl_args(cfg, tempfile.mkdtemp(prefix="grpo-trl-")),
        reward_funcs=named_reward_funcs(cfg.reward_funcs),
        train_dataset=Dataset.from_list(rows),
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log dict
    trainer.train()
    logs = [{k: v for k, v in h.items() if k not in ("step", "epoch", "step_time")}
            for h in trainer.state.log_history if "reward" in h]
    return _finish("TRL", cfg, logs, timer, trainer.model, trainer.processing_class)


# --- tables for the side-by-side comparison -------------------------------------------------


def reward_summary(logs: pd.DataFrame, reward_names: list[str], window: int = 5) -> pd.DataFrame:
    """Per run: mean of each reward over the first and the last ``window`` steps, and the change.

    logs: concatenated :attr:`Run.metrics`. The result's ``attrs["window"]`` holds ``window``.
    """
    columns = [f"rewards/{n}/mean" for n in reward_names] + ["reward"]
    rows = []
    for (trainer, seed), d in logs.groupby(["trainer", "seed"], sort=False):
        d = d.sort_values("step")
        w = max(1, min(window, len(d) // 2 or 1))
        for col, name in zip(columns, reward_names + ["total"]):
            first, last = d[col].head(w).mean(), d[col].tail(w).mean()
            rows.append({"trainer": trainer, "seed": seed, "reward": name,
                         "first steps": first, "last steps": last, "change": last - first})
    out = pd.DataFrame(rows)
    out.attrs["window"] = window
    return out


def speed_table(runs: list[Run]) -> pd.DataFrame:
    """Per trainer: median step time and completion tokens/s over all runs' steps (the first
    step of each run left out as warm-up), and ours / TRL ratios when both are present."""
    rows = []
    for trainer in dict.fromkeys(r.trainer for r in runs):
        m = pd.concat([r.metrics.iloc[1:] if len(r.metrics) > 1 else r.metrics
                       for r in runs if r.trainer == trainer])
        rows.append({"trainer": trainer, "steps timed": len(m),
                     "step time, median (s)": m["step_time"].median(),
                     "completion tokens/s, median": m["completion_tokens_per_s"].median(),
                     "completion tokens per step, mean": m["completion_tokens"].mean()})
    table = pd.DataFrame(rows).set_index("trainer")
    if {"ours", "TRL"} <= set(table.index):
        table.loc["ours / TRL"] = table.loc["ours"] / table.loc["TRL"]
        table.loc["ours / TRL", "steps timed"] = float("nan")
    return table


def accuracy_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per model from ``{name: evaluate.EvalResult}``: strict and lenient accuracy with
    their standard errors over questions, and the strict-format rate."""
    return pd.DataFrame([{"model": name, "strict": r.strict_accuracy, "strict s.e.": r.strict_stderr,
                          "lenient": r.lenient_accuracy, "lenient s.e.": r.lenient_stderr,
                          "format": r.format_rate, "n": r.n_questions * r.n_samples}
                         for name, r in results.items()])


def completions_table(results: dict[str, Any], k: int = 5) -> pd.DataFrame:
    """The first ``k`` held-out questions with each model's (first) completion side by side."""
    first = next(iter(results.values()))
    n = first.n_samples
    rows = []
    for q in range(min(k, first.n_questions)):
        s = first.samples[q * n]
        row = {"question": s["question"], "answer": s["answer"]}
        for name, r in results.items():
            row[name] = r.samples[q * n]["completion"].strip()
        rows.append(row)
    return pd.DataFrame(rows)
