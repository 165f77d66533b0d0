"""Fine-tune a BERT-style encoder for tweet classification under an attention schedule.

One run = (task, schedule, window, seed): load the encoder with a fresh classification head,
switch it to the schedule with :func:`~llm_exploration.sparse.attention.use_sparse_attention`,
train with the transformers ``Trainer`` on a subset of ``cardiffnlp/tweet_eval`` and score
accuracy and macro-F1 on a subset of its test split.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import datasets
import pandas as pd
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from llm_exploration.data import load_dataset
from llm_exploration.models import load_encoder
from llm_exploration.settings import Rule, check
from llm_exploration.sparse.attention import Backend, use_sparse_attention
from llm_exploration.sparse.masks import SCHEDULE_NAMES, schedule

DATASET = "cardiffnlp/tweet_eval"
TASKS = ("offensive", "emotion")


@dataclass(frozen=True)
class Budget:
    """How much data and compute one run gets (set per profile)."""

    train_size: int = 2000
    eval_size: int = 600
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4  # the encoder
    head_learning_rate: float = 2e-3  # pooler + classifier: new or unused weights learn faster
    max_length: int = 64
    model: str = "all-minilm-l6-v2"
    backend: Backend = "banded"

    def __post_init__(self) -> None:
        check(self, BUDGET_RULES)


@dataclass(frozen=True)
class Run:
    task: str  # a tweet_eval config: "offensive" or "emotion"
    schedule: str  # a masks.schedule name, e.g. "every-3-dense"
    window: int
    seed: int

    def __post_init__(self) -> None:
        check(self, RUN_RULES)


def _is_schedule(name: str) -> bool:
    try:
        schedule(name, 12)
    except ValueError:
        return False
    return True


BUDGET_RULES: dict[str, Rule] = {
    "train_size": Rule(ge=1), "eval_size": Rule(ge=1), "epochs": Rule(gt=0), "batch_size": Rule(ge=1),
    "learning_rate": Rule(gt=0), "head_learning_rate": Rule(gt=0), "max_length": Rule(ge=2),
}
RUN_RULES: dict[str, Rule] = {
    "task": Rule(choices=TASKS), "window": Rule(ge=0), "seed": Rule(ge=0),
    "schedule": Rule(test=_is_schedule, expected="a schedule name: " + ", ".join(SCHEDULE_NAMES)),
}
"""Ranges and allowed values of :class:`Budget` and :class:`Run` (types come from the annotations)."""


@lru_cache(maxsize=8)
def tweets(task: str, split: str, size: int) -> datasets.Dataset:
    """The first ``size`` rows of a fixed shuffle (seed 0) of one tweet_eval split."""
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; valid: {', '.join(TASKS)}.")
    data = load_dataset(DATASET, task, split=split).shuffle(seed=0)
    return data.select(range(min(size, len(data))))


def num_labels(task: str) -> int:
    return max(tweets(task, "train", 10**9)["label"]) + 1


_ENCODED: dict[tuple, datasets.Dataset] = {}


def encoded(
    tok: PreTrainedTokenizerBase, task: str, split: str, size: int, max_length: int
) -> datasets.Dataset:
    """:func:`tweets` tokenized (cached per tokenizer, so a grid of runs tokenizes once)."""
    key = (tok.name_or_path, task, split, size, max_length)
    if key not in _ENCODED:
        _ENCODED[key] = tweets(task, split, size).map(
            lambda b: tok(b["text"], truncation=True, max_length=max_length),
            batched=True,
            remove_columns=["text"],
        )
    return _ENCODED[key]


def finetune(run: Run, budget: Budget) -> dict:
    """Train one run and return its settings with ``accuracy``, ``macro_f1`` and ``seconds``."""
    set_seed(run.seed)  # the classification head's initialisation
    n_labels = num_labels(run.task)
    model, tok = load_encoder(
        budget.model, model_cls=AutoModelForSequenceClassification, num_labels=n_labels
    )
    kinds = schedule(run.schedule, model.config.num_hidden_layers)
    use_sparse_attention(
        model, kinds, run.window, [tok.cls_token_id, tok.sep_token_id], budget.backend
    )

    train = encoded(tok, run.task, "train", budget.train_size, budget.max_length)
    test = encoded(tok, run.task, "test", budget.eval_size, budget.max_length)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=budget.batch_size,
            per_device_eval_batch_size=128,
            num_train_epochs=budget.epochs,
            learning_rate=budget.learning_rate,
            warmup_steps=0.1,
            seed=run.seed,
            use_cpu=not torch.cuda.is_available(),
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            bf16=True,  # autocast: matmuls in bfloat16 (AMX on recent Xeons), weights in float32
            train_sampling_strategy="group_by_length",  # less padding: tweets are 10 to 60 tokens
        )
        head = [p for n, p in model.named_parameters() if "classifier" in n or "pooler" in n]
        body = [p for n, p in model.named_parameters() if not ("classifier" in n or "pooler" in n)]
        optimizer = torch.optim.AdamW(
            [{"params": body}, {"params": head, "lr": budget.head_learning_rate}],
            lr=budget.learning_rate,
            weight_decay=0.01,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tok),
            optimizers=(optimizer, None),  # Trainer adds the warmup + linear decay schedule
        )
        trainer.remove_callback(PrinterCallback)  # no metric dicts printed into the post
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        pred = trainer.predict(test)
    logits, labels = torch.as_tensor(pred.predictions), torch.as_tensor(pred.label_ids)
    return {
        **asdict(run),
        "accuracy": multiclass_accuracy(
            logits, labels, num_classes=n_labels, average="micro"
        ).item(),
        "macro_f1": multiclass_f1_score(
            logits, labels, num_classes=n_labels, average="macro"
        ).item(),
        "seconds": seconds,
    }


def run_grid(runs: list[Run], budget: Budget) -> pd.DataFrame:
    """Every run, one row each (in order)."""
    return pd.DataFrame([finetune(run, budget) for run in runs])


def summarize(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and standard deviation (over seeds) of accuracy and macro-F1 per group."""
    agg = results.groupby(by, sort=False)[["accuracy", "macro_f1"]].agg(["mean", "std"])
    agg.columns = [f"{metric}_{stat}" for metric, stat in agg.columns]
    return agg.assign(seeds=results.groupby(by, sort=False).size()).reset_index()
