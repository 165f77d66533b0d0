"""Build the Lightning Trainer for a ``GRPOConfig`` and run ``fit``.

Lightning supplies the loop, gradient accumulation, bf16 autocast, strategies (DDP / FSDP by
``strategy``), loggers (CSV by default, TensorBoard optional) and checkpoints;
``GRPOModule`` supplies the GRPO step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import GRPODataModule
from llm_exploration.grpo.module import GRPOModule


def build_trainer(config: GRPOConfig, **overrides: Any) -> L.Trainer:
    """A Trainer for ``config`` (``overrides`` go to ``L.Trainer``, e.g. ``enable_progress_bar``)."""
    out = Path(config.output_dir)
    if config.logger == "csv":
        logger: Any = CSVLogger(out, name=config.run_name)
    elif config.logger == "tensorboard":
        logger = TensorBoardLogger(out, name=config.run_name)
    else:
        logger = False
    callbacks = list(overrides.pop("callbacks", []))
    if overrides.get("enable_checkpointing", True) and (config.save_steps or config.save_last):
        callbacks.append(ModelCheckpoint(
            dirpath=out / config.run_name / "checkpoints", filename="step{step}", auto_insert_metric_name=False,
            every_n_train_steps=config.save_steps or None, save_top_k=-1 if config.save_steps else 0,
            save_last=config.save_last))
    kwargs: dict[str, Any] = {
        "max_steps": config.max_steps, "max_epochs": -1, "accumulate_grad_batches": config.gradient_accumulation_steps,
        "precision": "bf16-mixed" if config.bf16 else "32-true", "accelerator": config.accelerator,
        "devices": config.devices, "strategy": config.strategy, "num_nodes": config.num_nodes, "logger": logger,
        "callbacks": callbacks, "log_every_n_steps": config.logging_steps, "use_distributed_sampler": False,
        "limit_val_batches": 0, "num_sanity_val_steps": 0, "enable_model_summary": False,
        "default_root_dir": str(out)}
    kwargs.update(overrides)
    # Lightning adds its own ModelCheckpoint unless told not to
    kwargs["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    return L.Trainer(**kwargs)


@dataclass
class FitResult:
    module: GRPOModule
    trainer: L.Trainer
    datamodule: GRPODataModule

    @property
    def log_dir(self) -> Path | None:
        """Folder of ``metrics.csv`` / ``completions.jsonl`` (None without a logger)."""
        lg = self.trainer.logger
        return Path(lg.log_dir) if lg else None

    def metrics(self) -> list[dict[str, float]]:
        """Rows of ``metrics.csv`` (CSV logger), one per logged optimizer step."""
        import csv

        if self.log_dir is None or not (self.log_dir / "metrics.csv").is_file():
            return []
        with open(self.log_dir / "metrics.csv") as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def fit(config: GRPOConfig, model: torch.nn.Module | None = None, tokenizer: Any = None,
        reward_funcs: list | None = None, **trainer_overrides: Any) -> FitResult:
    """Seed everything, build module, data and trainer, and train (resuming if configured)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = GRPOModule(config, model=model, tokenizer=tokenizer, reward_funcs=reward_funcs)
    datamodule = GRPODataModule(config)
    trainer = build_trainer(config, **trainer_overrides)
    trainer.fit(module, datamodule=datamodule, ckpt_path=config.resume_from_checkpoint)
    return FitResult(module, trainer, datamodule)
