"""The t quantile, summaries, Welch and paired intervals and the detectable effect
``str-lightning compare`` reports, against tabulated quantiles, closed forms, hand-computed
intervals and published sample sizes."""

from __future__ import annotations

import math

import pytest

from str_lightning.reporting.stats import (
    PAIRED,
    WELCH,
    minimum_detectable_effect,
    paired_interval,
    paired_seeds_needed,
    regularized_incomplete_beta,
    student_t_cdf,
    student_t_quantile,
    summarize,
    welch_interval,
    welch_seeds_needed,
)

T_975_DF2 = 4.302652729749464
T_975_DF4 = 2.7764451051977987


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
    half = T_975_DF4 * math.sqrt(2 / 3)
    assert (interval.difference, interval.low, interval.high) == pytest.approx((3.0, 3 - half, 3 + half))
    assert (interval.standard_error, interval.df, interval.design) == (
        pytest.approx(math.sqrt(2 / 3)), pytest.approx(4.0), WELCH)
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
    assert (constant.low, constant.high, constant.significant, constant.df) == (1.0, 1.0, True, 2.0)
    assert constant.detectable_effect() == 0.0


def test_paired_interval_is_the_one_sample_interval_of_the_differences():
    # differences 1, 2, 6: mean 3, std sqrt(7), se sqrt(7/3), df 2
    interval = paired_interval([10.0, 20.0, 30.0], [11.0, 22.0, 36.0])
    half = T_975_DF2 * math.sqrt(7 / 3)
    assert (interval.difference, interval.low, interval.high) == pytest.approx((3.0, 3 - half, 3 + half))
    assert (interval.df, interval.design, interval.significant) == (2, PAIRED, False)


def test_pairing_removes_what_the_seeds_share():
    # a seed effect of 10 per seed on both rows and a constant difference of 1: Welch sees the
    # seed spread, the pairs see only the difference
    a, b = [10.0, 20.0, 30.0], [11.0, 21.0, 31.2]
    assert not welch_interval(a, b).significant
    paired = paired_interval(a, b)
    assert paired.significant and paired.high - paired.low < 1.0
    assert paired.detectable_effect() < welch_interval(a, b).detectable_effect() / 10


def test_paired_interval_needs_two_pairs_of_one_length():
    assert paired_interval([1.0], [2.0]) is None
    with pytest.raises(ValueError, match="3 values paired with 2"):
        paired_interval([1.0, 2.0, 3.0], [1.0, 2.0])


# Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, Table 2.4.1: per-group n of
# a two-sided two-sample t test at alpha 0.05 with 80 % power for d = 0.2 / 0.5 / 0.8 is
# 393 / 64 / 26; the exact (noncentral t) sizes behind them are 393.41 / 63.77 / 25.52 (as R's
# power.t.test gives them), so the smallest whole number of seeds is 394 / 64 / 26.
EXACT_PER_GROUP_N = {0.2: 393.4056950197416, 0.5: 63.765610190952245, 0.8: 25.524571835771745}


@pytest.mark.parametrize(("effect", "seeds"), [(0.2, 394), (0.5, 64), (0.8, 26)])
def test_detectable_effect_gives_cohens_sample_sizes(effect, seeds):
    n = EXACT_PER_GROUP_N[effect]
    assert minimum_detectable_effect(math.sqrt(2 / n), 2 * n - 2) == pytest.approx(effect, rel=5e-4)
    assert welch_seeds_needed(1.0, 1.0, effect) == seeds
    assert welch_seeds_needed(3.0, 3.0, 3 * effect) == seeds  # effect sizes are in units of std


def test_detectable_effect_at_other_power_and_in_paired_designs():
    # R's ?power.t.test example: power 0.90, delta 1, sd 1 -> n = 22.02110 per group
    n = 22.02110
    assert minimum_detectable_effect(math.sqrt(2 / n), 2 * n - 2, power=0.9) == pytest.approx(1.0, rel=1e-3)
    # paired, d = 0.5, 80 %: exact n = 33.367 pairs (R: power.t.test(delta=.5, type="paired"))
    assert minimum_detectable_effect(1 / math.sqrt(33.367), 33.367 - 1) == pytest.approx(0.5, rel=1e-3)
    assert paired_seeds_needed(1.0, 0.5) == 34
    # large samples: the familiar 2.80 standard errors (1.960 + 0.842)
    assert minimum_detectable_effect(1.0, math.inf) == pytest.approx(1.959964 + 0.841621, rel=1e-6)


def test_seeds_needed_grow_with_the_spread_and_never_fall_below_two():
    assert welch_seeds_needed(0.0, 0.0, 0.1) == paired_seeds_needed(0.0, 0.1) == 2
    needed = [paired_seeds_needed(std, 1.0) for std in (0.5, 1.0, 2.0, 4.0)]
    assert needed == sorted(needed) and needed[-1] > 4 * needed[1]
    # the smallest n whose detectable effect is at most the target
    n = paired_seeds_needed(2.0, 1.0)
    assert minimum_detectable_effect(2.0 / math.sqrt(n), n - 1) <= 1.0
    assert minimum_detectable_effect(2.0 / math.sqrt(n - 1), n - 2) > 1.0
    with pytest.raises(ValueError, match="must be positive"):
        paired_seeds_needed(1.0, 0.0)
