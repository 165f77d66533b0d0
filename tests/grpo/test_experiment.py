"""The post's experiment helpers: per-question scores, pass@k from samples, the settings table."""

import numpy as np
import pytest

from llm_exploration.grpo import GRPOConfig, compare, experiment, plots
from llm_exploration.grpo.evaluate import EvalResult


def _result(correct: list[list[int]]) -> EvalResult:
    n = len(correct[0])
    samples = [{"question": f"q{i}", "answer": "1", "completion": "", "strict": 0.0, "lenient": float(c),
                "format": 0.0} for i, row in enumerate(correct) for c in row]
    acc = float(np.mean(correct))
    return EvalResult(len(correct), n, 0.0, acc, 0.0, 0.0, 0.0, 0.0, 0.0, samples=samples)


def test_per_question_and_pass_at_k_from_samples():
    r = _result([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_allclose(experiment.per_question(r), [0.25, 0.0, 1.0])
    assert experiment.pass_at(r, 1) == pytest.approx(r.lenient_accuracy)
    assert experiment.pass_at(r, 4) == pytest.approx(2 / 3)  # any sample correct
    assert experiment.pass_at(r, 2) == pytest.approx((0.5 + 0 + 1) / 3)  # 1 - C(3,2)/C(4,2) = 0.5


def test_settings_table_reads_both_configs():
    cfg = GRPOConfig(learning_rate=3e-5, max_steps=7, bf16=True)
    table = experiment.settings_table(cfg, compare.trl_args(cfg, "/tmp/unused-trl-out")).set_index("setting")
    shared = table.loc[list(compare.SHARED_SETTINGS)]
    assert shared["same"].all(), shared[~shared["same"].astype(bool)]
    assert table.loc["learning_rate", "TRL"] == "3e-05" and table.loc["max_steps", "ours"] == "7"
    assert "fused" in table.loc["optim", "TRL"]
    assert table.loc["lr_scheduler_type", "TRL"] == table.loc["lr_scheduler_type", "ours"]
    assert table.loc["generation precision", "ours"] == "bf16 autocast"


def test_heldout_figure_draws_every_model():
    import pandas as pd

    table = pd.DataFrame({"greedy": [0.3, 0.5], "pass@1, T=1": [0.2, 0.5], "pass@4, T=1": [0.5, 0.7]},
                         index=["base", "ours, seed 0"])
    fig = plots.heldout_figure(table, {"base": np.array([0, 0.5, 0.1]), "ours, seed 0": np.array([0.5, 0.5, 0.5])},
                               k=4)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["base", "ours, seed 0"]
