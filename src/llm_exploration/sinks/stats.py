"""Intervals for per-token losses: a block bootstrap over contiguous stretches of tokens.

Next-token losses of neighbouring tokens are correlated (a hard passage is hard for many tokens
in a row), so resampling single tokens would understate the spread. Resampling contiguous blocks
of tokens, from every stream or text, keeps that correlation inside each block. Paired
comparisons (two conditions scored on the same tokens) bootstrap the per-token differences.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from torch import Tensor


def _blocks(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and sizes of the blocks of ``block`` consecutive tokens in each row of ``[S, T]``."""
    sums, sizes = [], []
    for row in values:
        row = row[~np.isnan(row)]
        for start in range(0, len(row), block):
            part = row[start : start + block]
            sums.append(part.sum())
            sizes.append(len(part))
    return np.asarray(sums), np.asarray(sizes, dtype=float)


def block_bootstrap(
    values: np.ndarray | Tensor,
    block: int = 64,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``values [S, T]`` (NaN ignored) and a percentile interval from resampling blocks of
    ``block`` consecutive tokens of any row, with replacement."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    sums, sizes = _blocks(values, block)
    if len(sums) < 2:
        raise ValueError(
            f"Need at least 2 blocks of {block} tokens for an interval, got {len(sums)}."
        )
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[pick].sum(1) / sizes[pick].sum(1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(sums.sum() / sizes.sum()), float(lo), float(hi)


def perplexity_interval(nll: np.ndarray | Tensor, block: int = 64, **kwargs) -> dict[str, float]:
    """Perplexity ``exp(mean NLL)`` with the block-bootstrap interval of the mean NLL."""
    mean, lo, hi = block_bootstrap(nll, block, **kwargs)
    return {"ppl": math.exp(mean), "lo": math.exp(lo), "hi": math.exp(hi)}


def ratio_interval(
    nll: np.ndarray | Tensor, reference: np.ndarray | Tensor, block: int = 64, **kwargs
) -> dict[str, float]:
    """Perplexity ratio ``exp(mean(nll - reference))`` of two conditions scored on the same tokens,
    with a paired block-bootstrap interval."""
    diff = np.asarray(nll, dtype=float) - np.asarray(reference, dtype=float)
    mean, lo, hi = block_bootstrap(diff, block, **kwargs)
    return {"ratio": math.exp(mean), "lo": math.exp(lo), "hi": math.exp(hi)}


def binned_curve(
    nll: np.ndarray | Tensor, bin_size: int, block: int = 16, first: int = 0, **kwargs
) -> pd.DataFrame:
    """Mean NLL of ``nll [S, T]`` in bins of ``bin_size`` positions (entry ``t`` predicts token
    ``first + t + 1``), each with a block-bootstrap interval over the streams' tokens in the bin."""
    values = np.atleast_2d(np.asarray(nll, dtype=float))
    rows = []
    for start in range(0, values.shape[1], bin_size):
        part = values[:, start : start + bin_size]
        if part.shape[1] < block:
            break
        mean, lo, hi = block_bootstrap(part, block, **kwargs)
        rows.append(
            {
                "position": first + start + 1 + (part.shape[1] - 1) / 2,
                "nll": mean,
                "lo": lo,
                "hi": hi,
            }
        )
    return pd.DataFrame(rows)


def compare_conditions(
    nll: dict[str, np.ndarray | Tensor],
    start: int,
    stop: int,
    reference: str,
    block: int = 64,
    **kwargs,
) -> pd.DataFrame:
    """Perplexity of each condition on the same tokens (NLL entries ``start:stop`` of every
    stream; conditions too short for ``stop`` are left out), with its interval and the paired
    ratio to the ``reference`` condition."""
    ref = np.asarray(nll[reference], dtype=float)[:, start:stop]
    rows = []
    for label, values in nll.items():
        values = np.asarray(values, dtype=float)
        if values.shape[1] < stop:
            continue
        part = values[:, start:stop]
        ppl = perplexity_interval(part, block, **kwargs)
        ratio = ratio_interval(part, ref, block, **kwargs)
        rows.append(
            {
                "condition": label,
                "perplexity": ppl["ppl"],
                "ppl lo": ppl["lo"],
                "ppl hi": ppl["hi"],
                f"ratio to {reference}": ratio["ratio"],
                "ratio lo": ratio["lo"],
                "ratio hi": ratio["hi"],
            }
        )
    return pd.DataFrame(rows).set_index("condition")
