"""Accuracy statistics for held-out evaluations: bootstrap and t-intervals over questions
and training seeds.

- :func:`bootstrap_gain`: the mean gain of trained models over their base, with a percentile
  interval from resampling training seeds and held-out questions together (a two-level
  bootstrap: which seeds, then which questions, both with replacement), and the same for the
  difference between two trainers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm_exploration.intervals import t_quantile


@dataclass
class Interval:
    """A mean and its 95% bootstrap percentile interval."""

    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _draws(n_seeds: int, n_questions: int, rng: np.random.Generator, reps: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.integers(0, n_seeds, size=(reps, n_seeds)), rng.integers(0, n_questions, size=(reps, n_questions)))


def bootstrap_gain(trained: np.ndarray, base: np.ndarray, *, reps: int = 4000, seed: int = 0,
                   level: float = 0.95) -> Interval:
    """Mean gain ``trained - base`` and its interval.

    trained: (seeds, questions) per-question accuracy of each seed's trained model (e.g. the
    fraction of its samples that are correct); base: (questions,) the base model's. Each
    bootstrap replicate draws seeds and questions with replacement; the same questions are
    used for the base, so the gain is paired by question.
    """
    trained, base = np.asarray(trained, float), np.asarray(base, float)
    if trained.ndim != 2 or base.shape != (trained.shape[1],):
        raise ValueError(f"trained must be (seeds, questions) and base (questions,), got {trained.shape} "
                         f"and {base.shape}.")
    gain = trained - base[None, :]
    rng = np.random.default_rng(seed)
    s_idx, q_idx = _draws(*gain.shape, rng, reps)
    reps_mean = np.array([gain[s][:, q].mean() for s, q in zip(s_idx, q_idx)])
    a = (1 - level) / 2
    return Interval(float(gain.mean()), float(np.quantile(reps_mean, a)), float(np.quantile(reps_mean, 1 - a)))


def bootstrap_difference(a: np.ndarray, b: np.ndarray, *, reps: int = 4000, seed: int = 0,
                         level: float = 0.95) -> Interval:
    """Mean of ``a - b`` for two trainers' (seeds, questions) accuracies on the same questions:
    seeds of each trainer resampled independently, questions resampled jointly (paired)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (seeds, questions) on the same questions, got {a.shape}, {b.shape}.")
    rng = np.random.default_rng(seed)
    sa = rng.integers(0, a.shape[0], size=(reps, a.shape[0]))
    sb = rng.integers(0, b.shape[0], size=(reps, b.shape[0]))
    q = rng.integers(0, a.shape[1], size=(reps, a.shape[1]))
    reps_mean = np.array([a[i][:, j].mean() - b[k][:, j].mean() for i, k, j in zip(sa, sb, q)])
    lo = (1 - level) / 2
    return Interval(float(a.mean() - b.mean()), float(np.quantile(reps_mean, lo)),
                    float(np.quantile(reps_mean, 1 - lo)))


"""Two-sided 95% Student-t quantiles for 1..10 degrees of freedom (no scipy needed)."""


def t_interval_gain(trained: np.ndarray, base: np.ndarray) -> tuple[Interval, int]:
    """Mean gain ``trained - base`` with a t-interval over the per-seed gains (each seed's gain is
    its mean over the same questions) at 95%, and its degrees of freedom (seeds - 1). With few seeds
    this is wider, and more honest about seed variance, than a bootstrap over seeds."""
    trained, base = np.asarray(trained, float), np.asarray(base, float)
    if trained.ndim != 2 or base.shape != (trained.shape[1],) or trained.shape[0] < 2:
        raise ValueError(f"trained must be (seeds >= 2, questions) and base (questions,), got {trained.shape} "
                         f"and {base.shape}.")
    g = (trained - base[None, :]).mean(1)
    df = len(g) - 1
    t = t_quantile(df)
    half = t * g.std(ddof=1) / np.sqrt(len(g))
    return Interval(float(g.mean()), float(g.mean() - half), float(g.mean() + half)), df
