"""Mean, spread and Welch's t interval of a difference of means, for results over a few seeds.

``str-lightning compare`` reports every configuration as mean ± standard deviation over its seeds
and the difference of each row's mean from a reference row with a 95 % Welch t interval. The
Student t quantile is computed here from the regularised incomplete beta function (a continued
fraction, ``math.lgamma``) and bisection, so no statistics package is needed; it matches
tabulated quantiles to 1e-9 (``tests/test_statistics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_CONTINUED_FRACTION_TERMS = 300
_TINY = 1e-300


@dataclass(frozen=True)
class Summary:
    """``n`` values: their mean and sample standard deviation (``None`` when ``n == 1``)."""

    n: int
    mean: float
    std: float | None


@dataclass(frozen=True)
class Interval:
    """A difference of means ``b - a`` and its confidence interval ``[low, high]``."""

    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0."""
        return self.low > 0 or self.high < 0


def summarize(values: Sequence[float]) -> Summary:
    """Mean and sample standard deviation (``ddof=1``) of at least one value."""
    if not values:
        raise ValueError("summarize: no values")
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Summary(n, mean, std)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, _CONTINUED_FRACTION_TERMS + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"regularized_incomplete_beta: x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df > 0`` (not necessarily integer) degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``math.inf``: normal)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"student_t_quantile: expected 0 < p < 1 and df > 0, got p={p}, df={df}")
    if math.isinf(df):
        from statistics import NormalDist

        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """Welch's t interval for ``mean(b) - mean(a)`` (unequal variances, Welch–Satterthwaite
    degrees of freedom); ``None`` when either sample has fewer than two values."""
    if len(a) < 2 or len(b) < 2:
        return None
    first, second = summarize(a), summarize(b)
    difference = second.mean - first.mean
    var_a, var_b = first.std ** 2 / first.n, second.std ** 2 / second.n
    standard_error = math.sqrt(var_a + var_b)
    if standard_error == 0.0:
        return Interval(difference, difference, difference)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (first.n - 1) + var_b ** 2 / (second.n - 1))
    half_width = student_t_quantile(0.5 + confidence / 2.0, df) * standard_error
    return Interval(difference, difference - half_width, difference + half_width)
