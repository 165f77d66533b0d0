"""The statistics the riddle post reports: intervals for rare events and over seeds,
and smoothing that does not look ahead.

- :func:`wilson`: the Wilson score interval for a proportion; unlike the normal approximation it
  is not ``[0, 0]`` at 0 successes (0 of 90 gives an upper bound near 4%).
- :func:`t_interval`: mean and 95% Student-t interval over a few seeds (degrees of freedom
  ``n - 1``: with 3 seeds the multiplier is 4.30, not 1.96).
- :func:`paired_bootstrap`: a percentile interval for a mean difference, resampling riddles.
- :func:`two_level_bootstrap`: the same over a (seeds x riddles) table of differences,
  resampling seeds and riddles, so that both sources of variance count.
- :func:`trailing_mean`: a moving average over the current and *earlier* steps only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from llm_exploration.intervals import t_quantile

Z_975 = 1.959964


def wilson(successes: float, n: int, z: float = Z_975) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` of ``n`` (successes may be fractional, e.g.
    a sum of per-riddle accuracies)."""
    if n <= 0:
        raise ValueError(f"wilson needs n >= 1, got {n}.")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and two-sided 95% t-interval over independent runs (e.g. training seeds)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError("a t-interval needs at least two values (seeds).")
    df = len(x) - 1
    t = t_quantile(df)
    half = t * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def paired_bootstrap(diffs: Sequence[float], n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-riddle differences and its 95% percentile interval, resampling riddles."""
    d = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def two_level_bootstrap(diffs: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a (seeds x riddles) table of per-riddle differences and its 95% percentile
    interval, resampling seeds (rows) and then riddles (columns). A difference against the
    base model (one sampled estimate per riddle) carries the base's sampling error in every
    row, so the riddle resampling counts it; the seed resampling counts training noise."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or min(d.shape) < 1:
        raise ValueError(f"two_level_bootstrap needs a (seeds x riddles) table; got shape {d.shape}.")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, d.shape[0], size=d.shape[0])
        cols = rng.integers(0, d.shape[1], size=d.shape[1])
        means[b] = d[np.ix_(rows, cols)].mean()
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def trailing_mean(y: Sequence[float] | pd.Series, window: int) -> pd.Series:
    """Mean over the current and the ``window - 1`` previous values: what was known at each step."""
    return pd.Series(y, dtype=float).rolling(window, min_periods=1).mean()
