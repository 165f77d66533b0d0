"""Small statistics shared by the posts (no SciPy in the default install).

- :func:`pass_at_k`: the unbiased estimator of Chen et al. (2021) from ``n`` samples, ``c`` right.
- :func:`t_quantile`: Student's t quantile for any degrees of freedom (exact, from the
  regularised incomplete beta), for t-intervals over a few seeds.
"""

from __future__ import annotations

import math


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct (``k <= n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k}).")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def t_quantile(df: int, level: float = 0.95) -> float:
    """Student's t quantile ``t_{(1 + level) / 2, df}`` (exact, from the regularised beta)."""
    if df < 1:
        raise ValueError(f"A t-interval needs at least 2 values (df >= 1), got df={df}.")
    target = (1 + level) / 2

    def cdf(t: float) -> float:  # P(T <= t) for t >= 0
        x = df / (df + t * t)
        return 1 - 0.5 * _betainc(df / 2, 0.5, x)

    lo, hi = 0.0, 1e3
    for _ in range(200):  # bisection: cdf is increasing
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` by Lentz's continued fraction."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    front = (
        math.exp(
            a * math.log(x)
            + b * math.log(1 - x)
            - math.lgamma(a)
            - math.lgamma(b)
            + math.lgamma(a + b)
        )
        / a
    )
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + num * d
        d = 1 / (d if abs(d) > 1e-30 else 1e-30)
        c = 1 + num / c if abs(c) > 1e-30 else 1e-30
        f *= c * d
        if abs(1 - c * d) < 1e-12:
            break
    return front * (f - 1)
