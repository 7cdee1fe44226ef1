"""Bootstrap intervals, summaries, improvement over the mixture, paired comparisons and SNR-band breakdowns."""

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


def test_bootstrap_ci_brackets_the_mean_and_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(3, 1, 100), rng.normal(3, 1, 1600)
    for x in (small, large):
        mean, lo, hi = stats.bootstrap_ci(x)
        assert mean == pytest.approx(x.mean()) and lo < mean < hi
    width = [stats.bootstrap_ci(x)[2] - stats.bootstrap_ci(x)[1] for x in (small, large)]
    assert width[0] / width[1] == pytest.approx(4.0, rel=0.2)
    assert width[1] == pytest.approx(2 * 1.96 / math.sqrt(1600), rel=0.15)


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = [lo <= 0.0 <= hi for lo, hi in
            (stats.bootstrap_ci(rng.normal(0, 1, 40), n_boot=400, seed=s)[1:] for s in range(300))]
    assert 0.88 <= np.mean(hits) <= 0.99


def test_bootstrap_ci_drops_nan_and_gives_nan_for_nothing():
    x = np.array([1.0, 2.0, np.nan, 4.0])
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci(x[np.isfinite(x)])
    assert stats.bootstrap_ci(x, seed=0) == stats.bootstrap_ci(x, seed=0)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([np.nan]))
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))


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
    for _ in range(100):
        base = pd.Series(rng.normal(0, 1, 40), index=index)  # scene difficulty, shared by both systems
        shifted = stats.paired_comparison(base + 0.5 + rng.normal(0, 0.5, 40), base, n_boot=200)
        null = stats.paired_comparison(base + rng.normal(0, 0.5, 40), base, n_boot=200)
        p_shift.append(shifted["p_value"])
        p_null.append(null["p_value"])
        assert shifted["ci_lo"] <= shifted["mean_diff"] <= shifted["ci_hi"]
    assert np.mean(np.array(p_shift) < 0.05) > 0.95
    assert np.mean(np.array(p_null) < 0.05) < 0.12
    assert "Wilcoxon" in shifted["test"]


def test_paired_comparison_uses_only_scenes_both_have():
    a = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0], index=["S1", "S2", "S3", "S4", "S5"])
    b = pd.Series([0.0, 1.0, 1.0, np.nan, 4.0, 9.0], index=["S1", "S2", "S3", "S4", "S5", "S6"])
    result = stats.paired_comparison(a, b)
    assert result["n"] == 3 and result["mean_diff"] == pytest.approx(1.0)
    assert set(result) == {"n", "mean_diff", "ci_lo", "ci_hi", "p_value", "test"}
    assert stats.paired_comparison(a, a)["p_value"] == 1.0
    assert math.isnan(stats.paired_comparison(a.iloc[:0], b)["p_value"])


@pytest.mark.parametrize("snr, band", [
    (-15.0, "[-15, -10) dB"), (-10.01, "[-15, -10) dB"), (-10.0, "[-10, -5) dB"), (-0.5, "[-5, 0) dB"),
    (0.0, "[0, 5) dB"), (5.0, "[5, 10] dB"), (10.0, "[5, 10] dB"), (-15.5, "< -15 dB"), (10.5, "> 10 dB"),
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
