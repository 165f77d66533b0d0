"""Scores, baselines and intervals: checked against hand computations and known quantiles."""

from __future__ import annotations

import pytest
import torch

from llm_exploration.sparse import stats


def test_t_quantiles_match_tables():
    for df, expected in [(1, 12.7062), (4, 2.7764), (9, 2.2622), (29, 2.0452)]:
        assert stats.t_quantile(df) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_quantile(0)


def test_t_interval_uses_n_minus_one_degrees_of_freedom():
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    out = stats.t_interval(values)
    half = 2.7764 * torch.tensor(values).std().item() / 5**0.5
    assert out["value"] == pytest.approx(0.3)
    assert out["high"] - out["value"] == pytest.approx(half, rel=1e-4)


def test_macro_f1_by_hand():
    pred = torch.tensor([0, 0, 1, 1, 2])
    labels = torch.tensor([0, 1, 1, 1, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 0, fn 1 -> 0.8; class 2: tp 0 -> 0
    assert float(stats.macro_f1(pred, labels, 3)) == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert float(stats.accuracy(pred, labels)) == pytest.approx(0.6)


def test_resampled_scores_equal_scores_of_resampled_data():
    gen = torch.Generator().manual_seed(0)
    pred, labels = torch.randint(3, (50,), generator=gen), torch.randint(3, (50,), generator=gen)
    w = stats.resample_weights(50, 4, seed=1)
    batched = stats.macro_f1(pred, labels, 3, w)
    for b in range(4):
        idx = torch.repeat_interleave(torch.arange(50), w[b].long())
        assert float(batched[b]) == pytest.approx(float(stats.macro_f1(pred[idx], labels[idx], 3)))


def test_paired_bootstrap_of_a_system_with_itself_is_exactly_zero():
    pred = torch.tensor([0, 1, 1, 0, 2, 2, 1])
    labels = torch.tensor([0, 1, 0, 0, 2, 1, 1])
    out = stats.paired_bootstrap(pred, pred, labels, 3, n_boot=100)
    assert out == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_majority_and_collapse():
    train = torch.tensor([1, 1, 1, 0])
    test = torch.tensor([1, 0, 1, 1])
    base = stats.majority(train, test, 2)
    assert base["class"] == 1 and base["accuracy"] == pytest.approx(0.75)
    assert base["macro_f1"] == pytest.approx((0 + 2 * 3 / (4 + 3)) / 2)
    assert stats.collapsed(torch.ones(100, dtype=torch.long), 2)
    assert not stats.collapsed(torch.tensor([0, 1] * 50), 2)
