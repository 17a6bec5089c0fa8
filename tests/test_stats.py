"""The t quantile, summaries and Welch intervals ``str-lightning compare`` reports, against
tabulated quantiles, closed forms and hand-computed intervals."""

from __future__ import annotations

import math

import pytest

from str_lightning.reporting.stats import (
    regularized_incomplete_beta,
    student_t_cdf,
    student_t_quantile,
    summarize,
    welch_interval,
)


@pytest.mark.parametrize(("p", "df", "expected"), [
    (0.975, 1, 12.706204736174698), (0.975, 2, 4.302652729749464), (0.975, 3, 3.182446305284263),
    (0.975, 4, 2.7764451051977987), (0.975, 10, 2.2281388519649385), (0.975, 30, 2.0422724563012373),
    (0.995, 3, 5.840909309733349), (0.95, 5, 2.015048372669157), (0.975, math.inf, 1.959963984540054),
])
def test_t_quantiles_match_tables(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, rel=1e-9)
    assert student_t_quantile(1 - p, df) == pytest.approx(-expected, rel=1e-9)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999])
def test_t_quantiles_match_closed_forms_for_one_and_two_degrees(p):
    assert student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert student_t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


@pytest.mark.parametrize("df", [1.3, 2.5, 3.4483, 7.9])
def test_fractional_degrees_invert_the_cdf_and_lie_between_their_neighbours(df):
    quantile = student_t_quantile(0.975, df)
    assert student_t_cdf(quantile, df) == pytest.approx(0.975, abs=1e-12)
    assert student_t_quantile(0.975, math.ceil(df)) < quantile < student_t_quantile(0.975, math.floor(df))


def test_incomplete_beta_closed_forms():
    assert regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3, rel=1e-12)
    assert regularized_incomplete_beta(2, 1, 0.3) == pytest.approx(0.09, rel=1e-12)
    assert regularized_incomplete_beta(1, 3, 0.2) == pytest.approx(1 - 0.8**3, rel=1e-12)
    with pytest.raises(ValueError, match="x must lie in"):
        regularized_incomplete_beta(1, 1, 1.5)


def test_summary_uses_the_sample_standard_deviation():
    summary = summarize([1.0, 2.0, 3.0, 6.0])
    assert (summary.n, summary.mean, summary.std) == (4, 3.0, pytest.approx(math.sqrt(14 / 3)))
    assert summarize([5.0]).std is None


def test_welch_interval_with_equal_variances_uses_the_pooled_degrees_of_freedom():
    # both samples have variance 1 and n = 3: se = sqrt(2/3), df = 4
    interval = welch_interval([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    half = 2.7764451051977987 * math.sqrt(2 / 3)
    assert (interval.difference, interval.low, interval.high) == pytest.approx((3.0, 3 - half, 3 + half))
    assert interval.significant
    assert not welch_interval([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]).significant


def test_welch_interval_with_unequal_variances():
    # a: mean 2, var 1; b: mean 16/3, var 7/3; se^2 = 1/3 + 7/9 = 10/9;
    # df = (10/9)^2 / ((1/3)^2 / 2 + (7/9)^2 / 2) = 100/29
    interval = welch_interval([1.0, 2.0, 3.0], [4.0, 5.0, 7.0])
    half = student_t_quantile(0.975, 100 / 29) * math.sqrt(10 / 9)
    assert (interval.low, interval.high) == pytest.approx((10 / 3 - half, 10 / 3 + half))
    assert 2.95 < student_t_quantile(0.975, 100 / 29) < 3.0  # between df 3 (3.18) and 4 (2.78)


def test_welch_interval_needs_two_seeds_on_each_side():
    assert welch_interval([1.0], [2.0, 3.0]) is None
    constant = welch_interval([1.0, 1.0], [2.0, 2.0])
    assert (constant.low, constant.high, constant.significant) == (1.0, 1.0, True)
