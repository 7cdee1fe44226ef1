"""BCa intervals and the tests read off them, summaries, improvement over the mixture, paired comparisons and
SNR-band breakdowns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from avse_bench.metrics import stats


def scores(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    snr = rng.uniform(-15, 10, n)
    return pd.DataFrame({
        "scene": [f"S{i:05d}" for i in range(1, n + 1)],
        "masker": rng.choice(["speech", "noise"], n),
        "snr_db": snr,
        "pesq_wb": 1.5 + 0.05 * snr + rng.normal(0, 0.1, n),
        "pesq_nb": 2.0 + 0.05 * snr + rng.normal(0, 0.1, n),
        "stoi": 0.7 + 0.01 * snr + rng.normal(0, 0.02, n),
        "estoi": 0.5 + 0.01 * snr + rng.normal(0, 0.02, n),
        "si_sdr": snr + rng.normal(0, 1, n),
        "error": "",
    })


def test_mean_ci_brackets_the_mean_and_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(3, 1, 100), rng.normal(3, 1, 1600)
    for x in (small, large):
        mean, lo, hi, _ = stats.mean_ci(x)
        assert mean == pytest.approx(x.mean()) and lo < mean < hi
    width = [stats.mean_ci(x)[2] - stats.mean_ci(x)[1] for x in (small, large)]
    assert width[0] / width[1] == pytest.approx(4.0, rel=0.2)
    assert width[1] == pytest.approx(2 * 1.96 / math.sqrt(1600), rel=0.15)


def test_mean_ci_is_scipys_bca_interval():
    from scipy.stats import bootstrap

    x = np.random.default_rng(2).lognormal(0, 1, 30)  # skewed, where BCa and percentile differ
    reference = bootstrap((x,), np.mean, n_resamples=stats.N_RESAMPLES, method="BCa",
                          rng=np.random.default_rng(0)).confidence_interval
    assert stats.mean_ci(x)[1:3] == pytest.approx((reference.low, reference.high))


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time_from_the_minimum_n_up():
    rng = np.random.default_rng(1)
    for n in (stats.MIN_SCENES_FOR_CI, 40):
        hits = [lo <= 0.0 <= hi for lo, hi in
                (stats.mean_ci(rng.normal(0, 1, n), n_resamples=400, seed=s)[1:3] for s in range(200))]
        assert 0.86 <= np.mean(hits) <= 0.99, n


def test_no_interval_below_the_minimum_number_of_scenes():
    """Issue 18, item 3: 95 % intervals were printed for groups of 3 scenes (coverage about 0.74 there)."""
    mean, lo, hi, _ = stats.mean_ci([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3) and math.isnan(lo) and math.isnan(hi)
    table = stats.summarize(scores(stats.MIN_SCENES_FOR_CI - 1, 0), metrics=("si_sdr",))
    assert table.n[0] == stats.MIN_SCENES_FOR_CI - 1 and table.ci_lo.isna().all() and table["mean"].notna().all()


def test_mean_ci_drops_nan_and_gives_nan_for_nothing():
    x = np.concatenate([np.arange(12.0), [np.nan]])
    assert stats.mean_ci(x) == stats.mean_ci(x[np.isfinite(x)])
    assert stats.mean_ci(x, seed=0) == stats.mean_ci(x, seed=0)
    assert stats.mean_ci(np.full(12, 0.5)) == (0.5, 0.5, 0.5, 0.0)  # all equal: the degenerate interval, no warning
    assert all(math.isnan(v) for v in stats.mean_ci([np.nan]))
    assert all(math.isnan(v) for v in stats.mean_ci([]))


def test_summarize_counts_scored_scenes_and_groups():
    df = scores(60, 2)
    df.loc[[3, 7], "pesq_wb"] = np.nan  # two scenes that could not be scored
    whole = stats.summarize(df)
    assert list(whole.columns) == ["metric", "n", "mean", "ci_lo", "ci_hi"]
    assert list(whole["metric"]) == list(stats.METRICS)
    pesq_row = whole.set_index("metric").loc["pesq_wb"]
    assert pesq_row["n"] == 58 and pesq_row["mean"] == pytest.approx(df["pesq_wb"].mean())
    by = stats.summarize(df, metrics=("si_sdr",), by=["masker"])
    assert list(by.columns) == ["masker", "metric", "n", "mean", "ci_lo", "ci_hi"]
    expected = df.groupby("masker")["si_sdr"].agg(["count", "mean"])
    assert by.set_index("masker")["n"].to_dict() == expected["count"].to_dict()
    assert by.set_index("masker")["mean"].to_dict() == pytest.approx(expected["mean"].to_dict())


def test_improvement_is_system_minus_mixture_per_scene():
    noisy = scores(10, 3)
    system = noisy.copy()
    system["si_sdr"] += np.arange(10)
    system["stoi"] += 0.1
    system = system.iloc[::-1]  # order must not matter: joined on scene
    gain = stats.improvement(system, noisy.drop(index=4))  # S00005 has no mixture score
    assert list(gain.columns) == ["scene", "masker", "snr_db", *stats.METRICS]
    gain = gain.set_index("scene")
    assert gain.loc["S00010", "si_sdr"] == pytest.approx(9.0) and gain.loc["S00001", "stoi"] == pytest.approx(0.1)
    assert math.isnan(gain.loc["S00005", "si_sdr"])
    assert gain.loc["S00003", "pesq_wb"] == pytest.approx(0.0)


def test_paired_comparison_detects_a_real_shift_but_not_a_null_one():
    rng = np.random.default_rng(4)
    index = [f"S{i:05d}" for i in range(40)]
    p_shift, p_null = [], []
    for _ in range(60):
        base = pd.Series(rng.normal(0, 1, 40), index=index)  # scene difficulty, shared by both systems
        shifted = stats.paired_comparison(base + 0.5 + rng.normal(0, 0.5, 40), base)
        null = stats.paired_comparison(base + rng.normal(0, 0.5, 40), base)
        p_shift.append(shifted["p_value"])
        p_null.append(null["p_value"])
        assert shifted["ci_lo"] <= shifted["mean_diff"] <= shifted["ci_hi"]
    assert np.mean(np.array(p_shift) < 0.05) > 0.95
    assert np.mean(np.array(p_null) < 0.05) < 0.12
    assert "BCa bootstrap test of the mean" in shifted["test"]


def test_the_interval_and_the_test_are_about_the_same_mean():
    """Issue 18, item 3, the reported shape: 29 of 32 differences slightly negative and a few large positive ones.
    A Wilcoxon test (of the pseudomedian) gave p < 0.001 beside a mean whose interval spans 0; the test of the mean
    agrees with the interval."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(7)
    diff = np.concatenate([-rng.uniform(0.002, 0.02, 29), [0.178, 0.05, 0.04]])
    index = [f"S{i:05d}" for i in range(32)]
    result = stats.paired_comparison(pd.Series(diff, index=index), pd.Series(0.0, index=index))
    assert wilcoxon(diff).pvalue < 0.01  # what the old table printed
    assert result["ci_lo"] < 0 < result["ci_hi"] and result["p_value"] > 0.05
    for seed in range(5):  # one more of the kind: a clear shift, where both must exclude 0 together
        d = rng.normal(0.3, 0.5, 32) + (seed == 0) * np.r_[np.zeros(31), 3.0]
        r = stats.paired_comparison(pd.Series(d, index=index), pd.Series(0.0, index=index), seed=seed)
        assert (r["ci_lo"] > 0) == (r["p_value"] < 0.05), (seed, r)


def test_the_p_value_is_the_bca_interval_read_as_a_test():
    """p is the level at which the BCa interval reaches 0: data shifted so that the 95 % interval's lower edge is
    at 0 give p = 0.05, and below 10 scenes there is neither."""
    x = np.random.default_rng(3).lognormal(0, 0.7, 25)
    mean, lo, hi, p = stats.mean_ci(x)
    assert lo < mean < hi and p < 0.001
    for edge in (lo, hi):  # the resamples shift with the data, so the shifted interval's edge is exactly 0
        assert stats.mean_ci(x - edge)[3] == pytest.approx(0.05, abs=0.002)
    assert stats.mean_ci(x - mean)[3] > 0.8
    assert all(math.isnan(v) for v in stats.mean_ci([1.0, 2.0, 3.0])[2:])


@pytest.mark.parametrize("snr, band", [
    (-15.0, "[-15, -10) dB"), (-10.01, "[-15, -10) dB"), (-10.0, "[-10, -5) dB"), (-0.5, "[-5, 0) dB"),
    (0.0, "[0, 5) dB"), (5.0, "[5, 10] dB"), (10.0, "[5, 10] dB"), (-15.5, "[-20, -15) dB"),
    (-18.0, "[-20, -15) dB"), (-20.5, "< -20 dB"), (10.5, "> 10 dB"),
    (None, "unknown"), (float("nan"), "unknown"),
])
def test_snr_band(snr, band):
    assert stats.snr_band(snr) == band


def test_breakdown_by_masker_and_band_in_snr_order():
    df = scores(80, 5)
    df.loc[0, "masker"] = np.nan
    df.loc[1, "snr_db"] = np.nan
    table = stats.breakdown(df, metrics=("si_sdr",))
    assert list(table.columns) == ["masker", "snr_band", "metric", "n", "mean", "ci_lo", "ci_hi"]
    assert table["n"].sum() == 80
    speech_bands = list(table.loc[table["masker"] == "speech", "snr_band"])
    assert speech_bands == [b for b in stats.SNR_BANDS if b in speech_bands]  # SNR order, not string order
    assert "unknown" in set(table["masker"]) and "unknown" in set(table["snr_band"])
    means = table[(table["masker"] == "noise") & (table["snr_band"] != "unknown")].set_index("snr_band")["mean"]
    assert means.is_monotonic_increasing  # SI-SDR follows the SNR it was built from


def test_breakdown_by_number_of_maskers():
    df = scores(12, 6)
    df["masker"] = ["speech", "noise+music", "speech+noise+music", None] * 3
    table = stats.breakdown(df, metrics=("si_sdr",), by=("n_maskers",))
    assert table.set_index("n_maskers")["n"].to_dict() == {"1": 3, "2": 3, "3": 3, "unknown": 3}
