"""Scores, baselines and intervals for comparing attention schedules.

- :func:`macro_f1` and :func:`accuracy` score predictions; :func:`majority` scores always
  predicting the training split's most frequent class (the bar every run must clear).
- :func:`collapsed` flags a run that predicts (almost) one class: it looks like a result but
  is the majority baseline in disguise.
- :func:`paired_bootstrap` compares two systems scored on the *same* test examples: resampling
  examples keeps the pairing, so the interval is that of the difference, not of each score.
- :func:`t_interval` is the interval of a mean over seeds (paired differences), with Student's
  ``t`` and ``n - 1`` degrees of freedom (``t_{0.975, 4} = 2.78``, not 2).
"""

from __future__ import annotations

import math

import torch

from llm_exploration.intervals import t_quantile

COLLAPSE_SHARE = 0.95  # a run predicting one class for this share of the test set collapsed


def _counts(pred: torch.Tensor, labels: torch.Tensor, n_classes: int, weights: torch.Tensor):
    """Weighted true positives, predicted and actual counts per class: ``(..., n_classes)``."""
    one_p = torch.nn.functional.one_hot(pred, n_classes).to(weights.dtype)  # (N, C)
    one_y = torch.nn.functional.one_hot(labels, n_classes).to(weights.dtype)
    tp = weights @ (one_p * one_y)
    return tp, weights @ one_p, weights @ one_y


def macro_f1(
    pred: torch.Tensor, labels: torch.Tensor, n_classes: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Macro-F1 (mean over classes of ``2 TP / (2 TP + FP + FN)``; 0 for a class never seen
    nor predicted). ``weights`` ``(B, N)`` scores ``B`` resamples of the examples at once."""
    w = torch.ones(1, len(labels)) if weights is None else weights
    tp, predicted, actual = _counts(pred, labels, n_classes, w.double())
    f1 = 2 * tp / (predicted + actual).clamp_min(1e-12)
    out = f1.mean(-1)
    return out[0] if weights is None else out


def accuracy(
    pred: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Share of correct predictions (``weights`` ``(B, N)``: one score per resample)."""
    hit = (pred == labels).double()
    if weights is None:
        return hit.mean()
    w = weights.double()
    return (w @ hit) / w.sum(-1)


METRICS = {"macro_f1": macro_f1, "accuracy": lambda p, y, n, w=None: accuracy(p, y, w)}


def majority(train_labels: torch.Tensor, test_labels: torch.Tensor, n_classes: int) -> dict:
    """Scores of always predicting the training split's most frequent class."""
    top = int(torch.bincount(train_labels, minlength=n_classes).argmax())
    pred = torch.full_like(test_labels, top)
    return {
        "class": top,
        "accuracy": float(accuracy(pred, test_labels)),
        "macro_f1": float(macro_f1(pred, test_labels, n_classes)),
    }


def collapsed(pred: torch.Tensor, n_classes: int, share: float = COLLAPSE_SHARE) -> bool:
    """True when one class takes at least ``share`` of the predictions."""
    return bool(torch.bincount(pred, minlength=n_classes).max() >= share * len(pred))


def resample_weights(n: int, n_boot: int, seed: int) -> torch.Tensor:
    """``(n_boot, n)``: how often each example is drawn in each bootstrap resample."""
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randint(n, (n_boot, n), generator=gen)
    return torch.zeros(n_boot, n).scatter_add_(1, draws, torch.ones(n_boot, n))


def bootstrap(
    pred: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    metric: str = "macro_f1",
    other: torch.Tensor | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Score of ``pred`` (minus ``other``'s, paired, when given) with a percentile interval.

    Resampling the test examples (the same resample for both systems) gives the sampling
    uncertainty of the score, or of the difference, that a new test set would show.
    """
    score = METRICS[metric]
    w = resample_weights(len(labels), n_boot, seed)
    values = score(pred, labels, n_classes, w)
    point = score(pred, labels, n_classes)
    if other is not None:
        values = values - score(other, labels, n_classes, w)
        point = point - score(other, labels, n_classes)
    lo, hi = torch.quantile(
        values.double(), torch.tensor([(1 - level) / 2, (1 + level) / 2]).double()
    )
    return {"value": float(point), "low": float(lo), "high": float(hi)}


def paired_bootstrap(pred_a, pred_b, labels, n_classes, metric="macro_f1", **kwargs) -> dict:
    """``metric(a) - metric(b)`` on the same examples, with its bootstrap interval."""
    return bootstrap(pred_a, labels, n_classes, metric, other=pred_b, **kwargs)


def t_interval(values, level: float = 0.95) -> dict:
    """Mean of ``values`` (e.g. per-seed paired differences) with its t-interval, ``n - 1`` df."""
    x = torch.as_tensor(values, dtype=torch.float64)
    n = len(x)
    mean = float(x.mean())
    half = t_quantile(n - 1, level) * float(x.std()) / math.sqrt(n)
    return {"value": mean, "low": mean - half, "high": mean + half, "n": n}
