"""Block-bootstrap intervals and paired comparisons of per-token losses."""

from __future__ import annotations

import numpy as np
import pytest

from llm_exploration.sinks.stats import (
    binned_curve,
    block_bootstrap,
    compare_conditions,
    ratio_interval,
)


def test_block_bootstrap_intervals():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, size=(3, 4000))
    mean, lo, hi = block_bootstrap(x, block=50)
    assert lo < mean < hi and lo < 2.0 < hi and hi - lo < 0.2
    assert block_bootstrap(np.ones((2, 100)), block=10) == (1.0, 1.0, 1.0)
    same = ratio_interval(x, x)
    assert same == {"ratio": 1.0, "lo": 1.0, "hi": 1.0}
    curve = binned_curve(x, bin_size=1000, block=50)
    assert len(curve) == 4 and curve["position"].iloc[0] == pytest.approx(500.5)
    with pytest.raises(ValueError, match="blocks"):
        block_bootstrap(np.ones((1, 10)), block=10)


def test_compare_conditions_pairs_on_the_same_tokens():
    rng = np.random.default_rng(1)
    base = rng.normal(3.0, 1.0, size=(2, 600))
    nll = {"a": base, "b": base + 0.1, "short": base[:, :100]}
    table = compare_conditions(nll, 200, 600, reference="a")
    assert list(table.index) == ["a", "b"]  # "short" does not reach token 600
    assert table.loc["b", "ratio to a"] == pytest.approx(np.exp(0.1))
    assert table.loc["b", "ratio lo"] == pytest.approx(np.exp(0.1))  # a constant shift: no spread
    assert table.loc["a", "ppl lo"] < table.loc["a", "perplexity"] < table.loc["a", "ppl hi"]
