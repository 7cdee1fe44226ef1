"""Statistics over per-scene scores: means with bootstrap confidence intervals, improvement over the mixture,
paired comparisons of two systems on the same scenes, and breakdowns by masker type and SNR band.

One estimate everywhere: the mean over scenes. Its interval is the BCa bootstrap and its test the same bootstrap
read as a test (`mean_ci`), so an interval and the p beside it never disagree; every verdict reads that p and the
sign of that mean. No interval and no test are given for fewer than MIN_SCENES_FOR_CI scenes (the mean and n are).

Inputs are DataFrames with the `score_split` columns (`scene`, `masker`, `snr_db`, one column per metric). Missing
values (scenes that could not be scored) are left out of every mean and counted out of `n`: `n` says how many scenes
a figure rests on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import ndtr, ndtri

from avse_bench.data.layout import count_maskers
from avse_bench.metrics.functional import METRICS
from avse_bench.metrics.spec import SPECS, signed

SUMMARY_COLUMNS = ("metric", "n", "mean", "ci_lo", "ci_hi")
# 5 dB bands over the AVSEC SNR ranges (AVSEC-2: speech maskers -15..+5 dB, noise maskers -10..+10 dB; AVSEC-4: dev
# -10..+10 dB, eval -18..+6.55 dB); each band holds its lower edge, the last one both edges.
SNR_EDGES = (-20, -15, -10, -5, 0, 5, 10)
SNR_BANDS = (
    f"< {SNR_EDGES[0]} dB",
    *(f"[{lo}, {hi}) dB" for lo, hi in zip(SNR_EDGES[:-2], SNR_EDGES[1:-1], strict=True)),
    f"[{SNR_EDGES[-2]}, {SNR_EDGES[-1]}] dB",
    f"> {SNR_EDGES[-1]} dB",
    "unknown",
)
MIN_SCENES_FOR_CI = 10  # below it a mean is printed with its n, no interval and no test (BCa coverage falls off)
N_RESAMPLES = 9999  # bootstrap resamples per interval and test
CI_METHOD = (f"BCa bootstrap interval of the mean (scipy.stats.bootstrap, {N_RESAMPLES} resamples, seed 0; "
             f"Efron 1987); none below {MIN_SCENES_FOR_CI} scenes")
TEST_METHOD = "BCa bootstrap test of the mean difference, two-sided"  # the interval read as a test: see _bca_p
TEST_EXPLAINED = (f"{TEST_METHOD}: p is the level at which the BCa interval of the same bootstrap reaches 0, so "
                  f"p < 0.05 exactly when the 95 % interval excludes 0")


def _rank_cdf(sample: np.ndarray, value: float) -> float:
    """The share of `sample` below `value`, ties counted half: scipy's percentile of score (kind "rank") / 100, the
    one its BCa interval uses for the bias correction."""
    return float((np.count_nonzero(sample < value) + np.count_nonzero(sample <= value)) / (2 * sample.size))


def _bca_p(x: np.ndarray, boot_means: np.ndarray, null: float) -> float:
    """Two-sided p of H0 "mean = null": twice the smaller tail level at which the BCa interval's edge reaches `null`
    (the interval inverted; Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 14-15, whose BCa
    formulas scipy's interval follows: bias z0 from the bootstrap means, acceleration a from the jackknife)."""
    n, B = x.size, boot_means.size
    z0 = ndtri(_rank_cdf(boot_means, float(x.mean())))
    jack = (x.sum() - x) / (n - 1)  # (n,) the mean without each scene
    u = jack.mean() - jack
    denom = (u**2).sum() ** 1.5
    a = (u**3).sum() / (6 * denom) if denom > 0 else 0.0
    # the BCa bound at tail level t is the bootstrap quantile at ndtr(z0 + (z0 + z_t) / (1 - a (z0 + z_t))):
    # solve "that quantile level = the level of `null` among the bootstrap means" for t
    w = ndtri(min(max(_rank_cdf(boot_means, null), 0.5 / B), 1 - 0.5 / B)) - z0
    if 1 + a * w <= 0:  # beyond every level the interval can reach
        return 1.0 / B
    tail = float(ndtr(w / (1 + a * w) - z0))
    return max(2 * min(tail, 1 - tail), 1.0 / B)


def mean_ci(values, *, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0,
            min_n: int = MIN_SCENES_FOR_CI, null: float = 0.0) -> tuple[float, float, float, float]:
    """(mean, lo, hi, p) of the finite values of `values` (any shape, flattened): the mean, its two-sided
    `confidence` interval by the bias-corrected and accelerated (BCa) bootstrap (Efron, "Better bootstrap confidence
    intervals", JASA 1987; `scipy.stats.bootstrap(method="BCa")`), and the two-sided p-value of "mean = `null`"
    read off the same bootstrap (`_bca_p`): p < 1 - confidence exactly when the interval excludes `null`, up to one
    resample at the edge. lo, hi and p are NaN below `min_n` values, where the interval would promise a coverage it
    does not have; all four are NaN for no values. Values equal up to rounding (1e-9 relative) give [mean, mean]
    and p = 1 when the mean is `null`, else 0."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]  # (n,)
    if x.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < min_n:
        return mean, math.nan, math.nan, math.nan
    if np.ptp(x) <= 1e-9 * max(1.0, abs(mean)):  # BCa's acceleration is 0/0 there
        return mean, mean, mean, 1.0 if abs(mean - null) <= 1e-9 * max(1.0, abs(mean)) else 0.0
    result = sps.bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="BCa",
                           vectorized=True, rng=np.random.default_rng(seed))
    lo, hi = result.confidence_interval
    return mean, float(lo), float(hi), _bca_p(x, result.bootstrap_distribution, null)


def _numeric(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def summarize(df: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] | None = None, *,
              seed: int = 0) -> pd.DataFrame:
    """One row per (group, metric): [*by, metric, n, mean, ci_lo, ci_hi], the mean with its 95 % `mean_ci` (ci_lo
    and ci_hi NaN below MIN_SCENES_FOR_CI scenes)."""
    by = list(by or ())
    groups = df.groupby(by, dropna=False, sort=True, observed=True) if by else [((), df)]
    rows = []
    for key, group in groups:
        labels = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        for metric in metrics:
            values = _numeric(group[metric])
            mean, lo, hi, _ = mean_ci(values, seed=seed)
            rows.append({**labels, "metric": metric, "n": int(np.isfinite(values).sum()), "mean": mean,
                         "ci_lo": lo, "ci_hi": hi})
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def improvement(system_df: pd.DataFrame, noisy_df: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per scene of `system_df`: scene, masker, snr_db and, per metric, the improvement over the mixture (NaN where
    either is missing): system minus mixture for a metric where higher is better, mixture minus system where lower
    is (`spec.signed`), so that a positive improvement is always better."""
    system = system_df.set_index("scene")
    noisy = noisy_df.set_index("scene").reindex(system.index)
    out = system[["masker", "snr_db"]].copy()
    for metric in metrics:
        out[metric] = signed(metric, _numeric(system[metric]) - _numeric(noisy[metric]))
    return out.reset_index()


def paired_comparison(a: pd.Series, b: pd.Series, *, seed: int = 0) -> dict:
    """a against b on the scenes both have a value for (Series indexed by scene): one quantity, the mean of the
    paired differences a - b, with its interval and its test.

    Returns n, mean_diff, ci_lo / ci_hi (95 % BCa bootstrap interval of that mean) and p_value (the BCa bootstrap
    test of that mean being 0), both from `mean_ci` on the differences, so the interval excludes 0 exactly when
    p < 0.05; all but n and mean_diff NaN below MIN_SCENES_FOR_CI pairs. `test` names the method. (A Wilcoxon
    signed-rank test, printed here before, tests the pseudomedian: a few large differences of one sign against many
    small ones of the other made it disagree with the interval of the mean beside it.)
    """
    pair = pd.concat({"a": pd.to_numeric(a, errors="coerce"), "b": pd.to_numeric(b, errors="coerce")},
                     axis=1, join="inner").dropna()
    diff = (pair["a"] - pair["b"]).to_numpy(dtype=np.float64)  # (n,)
    mean, lo, hi, p = mean_ci(diff, seed=seed)
    return {"n": int(diff.size), "mean_diff": mean, "ci_lo": lo, "ci_hi": hi, "p_value": p, "test": TEST_METHOD}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (Holm, Scand. J. Statist. 6, 1979): the k-th smallest
    of m becomes max over j <= k of min(1, (m - j + 1) p_(j)); NaN stays NaN and is not counted in m. Rejecting
    where the adjusted p < 0.05 keeps the family-wise error rate at 5 %. Shape (m,) -> (m,). Written here: scipy has
    Benjamini-Hochberg (`false_discovery_control`), not Holm, and statsmodels is not a dependency."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def snr_band(snr_db) -> str:
    """The 5 dB band (one of `SNR_BANDS`) an SNR in dB falls in; "unknown" for None or NaN."""
    if snr_db is None or pd.isna(snr_db):
        return SNR_BANDS[-1]
    snr = float(snr_db)
    if snr < SNR_EDGES[0]:
        return SNR_BANDS[0]
    if snr > SNR_EDGES[-1]:
        return SNR_BANDS[-2]
    width = SNR_EDGES[1] - SNR_EDGES[0]
    index = min(int((snr - SNR_EDGES[0]) // width), len(SNR_EDGES) - 2)  # the top edge belongs to the last band
    return SNR_BANDS[1 + index]


def n_maskers(masker) -> str:
    """How many maskers a `masker` label names ("speech+music" -> "2", `layout.count_maskers`); "unknown" without
    one."""
    count = None if pd.isna(masker) else count_maskers(masker)
    return "unknown" if count is None else str(count)


def breakdown(df: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] = ("masker", "snr_band"), *,
              seed: int = 0) -> pd.DataFrame:
    """`summarize` per group of `by`: "masker" (the masker type, or the combination joined by "+", a missing one
    "unknown"), "snr_band" (bands in SNR order) or "n_maskers" (how many maskers the combination has: "1", "2",
    "3", "unknown"), as the AVSEC-4 results tables break results down, or "part" (a Real-World item's scene, the
    first part of its id: "mix" or "remix", as the official scorer's per-scene rows)."""
    df = df.copy()
    if "part" in by:
        df["part"] = df["scene"].astype(str).str.split("/").str[0]
    if "n_maskers" in by:
        df["n_maskers"] = df["masker"].map(n_maskers)
    if "snr_band" in by and "snr_band" not in df:
        df["snr_band"] = pd.Categorical(df["snr_db"].map(snr_band), categories=SNR_BANDS, ordered=True)
    if "masker" in by:
        df["masker"] = df["masker"].fillna("unknown").replace("", "unknown")
    out = summarize(df, metrics, by, seed=seed)
    if "snr_band" in out:
        out["snr_band"] = out["snr_band"].astype(str)
    return out


def rank_systems(means: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """The leaderboard ranking of the Real-World AVSE Challenge 2026 (../shared/REALWORLD.md section 3): per metric
    of `metrics`, each system's rank by its mean (1 best; ascending for a metric where lower is better, CER, as
    `spec.higher_is_better` declares; tied means share the average of their ranks, the leaderboard's tie rule being
    unpublished), and the mean of its ranks over the metrics that every system has, lower is better.

    `means`: one row per system, one column per metric (NaN where a system has no value). Returns one row per
    system, sorted by mean rank: system, `<metric>` (its rank, NaN where the metric is not ranked), "mean rank",
    "metrics ranked" (how many)."""
    ranked = [m for m in metrics if m in means and means[m].notna().all()]
    out = pd.DataFrame({"system": means["system"]})
    for metric in metrics:
        if metric in ranked:
            out[metric] = means[metric].rank(ascending=not SPECS[metric].higher_is_better, method="average")
        else:
            out[metric] = np.nan
    out["mean rank"] = out[ranked].mean(axis=1) if ranked else np.nan
    out["metrics ranked"] = len(ranked)
    return out.sort_values(["mean rank", "system"], kind="stable").reset_index(drop=True)
