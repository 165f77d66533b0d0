"""One real fine-tuning run, tiny: the Trainer path works under a sparse schedule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_exploration.data import MIRROR_ENV_VAR
from llm_exploration.sparse.finetune import Budget, Run, finetune, summarize

MIRROR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def mirror(monkeypatch):
    root = os.environ.get(MIRROR_ENV_VAR) or (str(MIRROR) if MIRROR.is_dir() else None)
    if root is None:
        pytest.skip(f"no data mirror: set {MIRROR_ENV_VAR}")
    monkeypatch.setenv(MIRROR_ENV_VAR, root)


def test_a_tiny_run_trains_and_scores():
    budget = Budget(train_size=16, eval_size=16, batch_size=8)
    rows = [finetune(Run("emotion", "every-3-dense", 2, seed), budget) for seed in (0, 1)]
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1
        assert row["seconds"] > 0
    import pandas as pd

    table = summarize(pd.DataFrame(rows), ["task", "schedule"])
    assert table["seeds"].tolist() == [2]
    assert {"accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std"} <= set(table.columns)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="offensive"):
        finetune(Run("sarcasm", "dense", 2, 0), Budget(train_size=4, eval_size=4))
