"""Every figure of the post draws from small inputs of the documented shape, axes labelled."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from llm_exploration.grpo import explain, plots


def _logs():
    rng = np.random.default_rng(0)
    rows = []
    for trainer, seed in [("ours", 0), ("ours", 1), ("TRL", 0)]:
        for step in range(1, 9):
            rows.append({"trainer": trainer, "seed": seed, "step": step, "reward": rng.random(),
                         "rewards/format_soft/mean": rng.random(), "rewards/correctness/mean": rng.random(),
                         "frac_reward_zero_std": rng.random(), "completions/mean_length": 30 * rng.random(),
                         "step_time": 5 + rng.random(), "completion_tokens_per_s": 20 * rng.random(),
                         "loss": 0.01 * rng.standard_normal(), "grad_norm": 3 * rng.random()})
    return pd.DataFrame(rows)


def _labelled(fig):
    """Every panel says what it shows on y; the figure labels its x axes (shared axes once)."""
    for ax in fig.axes:
        assert ax.get_ylabel() or ax.get_title(), ax
    assert all(ax.get_xlabel() or ax.get_xticks().size for ax in fig.axes)
    assert any(ax.get_xlabel() for ax in fig.axes)
    plt.close(fig)


@pytest.mark.parametrize("make", [
    lambda logs: plots.reward_curves_figure(logs, ["format_soft", "correctness"]),
    plots.step_time_figure, plots.dynamics_figure, plots.loss_signal_figure,
])
def test_training_figures(make):
    fig = make(_logs())
    lines = sum(len(ax.lines) for ax in fig.axes)
    assert lines > 0
    _labelled(fig)


def test_reward_curves_have_one_panel_per_reward_plus_total_and_a_legend_per_trainer():
    fig = plots.reward_curves_figure(_logs(), ["format_soft", "correctness"])
    assert [ax.get_title() for ax in fig.axes] == ["format_soft", "correctness", "total (weighted sum)"]
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["ours (2 seeds)", "TRL (1 seed)"]
    plt.close(fig)


def test_reward_curves_with_one_reward_draw_it_once():
    logs = _logs()
    logs["rewards/lenient_correctness/mean"] = logs["rewards/correctness/mean"]
    fig = plots.reward_curves_figure(logs, ["lenient_correctness"])
    assert [ax.get_title() for ax in fig.axes] == ["lenient_correctness"]
    assert fig.axes[0].get_legend() is not None
    plt.close(fig)


def test_explanation_figures():
    rewards = np.array([[1.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]])
    adv = np.array([[1.2, -1.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    _labelled(plots.advantage_figure(rewards, adv))
    ratios = torch.linspace(0.5, 1.5, 11)
    _labelled(plots.surrogate_figure({"A > 0": explain.surrogate_curve(ratios, 1.0),
                                      "A < 0": explain.surrogate_curve(ratios, -1.0)}, 0.2, 0.2))
    mask = torch.zeros(4, 8)
    for i, n in enumerate([2, 8, 5, 3]):
        mask[i, :n] = 1
    table = explain.length_bias_table(torch.tensor([1.0, -1.0, 0.5, -0.5]), mask, 8)
    fig = plots.length_bias_figure(table)
    assert [ax.get_title() for ax in fig.axes] == ["grpo", "dr_grpo", "dapo"]
    _labelled(fig)
    acc = pd.DataFrame({"model": ["base", "ours"], "strict": [0.1, 0.4], "lenient": [0.3, 0.5],
                        "strict s.e.": [0.05, 0.05], "lenient s.e.": [0.05, 0.05]})
    _labelled(plots.accuracy_figure(acc))


def test_reward_chart_is_an_altair_chart():
    chart = plots.reward_chart(_logs(), ["format_soft", "correctness"])
    spec = chart.to_dict()
    assert spec["facet"]["column"]["field"] == "reward function"
