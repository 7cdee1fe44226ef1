"""Statistics over per-scene scores: means with bootstrap confidence intervals, improvement over the mixture,
paired comparisons of two systems on the same scenes, and breakdowns by masker type and SNR band.

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

from avse_bench.metrics.functional import METRICS

SUMMARY_COLUMNS = ("metric", "n", "mean", "ci_lo", "ci_hi")
# 5 dB bands over the AVSEC SNR ranges (speech maskers -15..+5 dB, noise maskers -10..+10 dB); each band holds its
# lower edge, the last one both edges.
SNR_EDGES = (-15, -10, -5, 0, 5, 10)
SNR_BANDS = (
    f"< {SNR_EDGES[0]} dB",
    *(f"[{lo}, {hi}) dB" for lo, hi in zip(SNR_EDGES[:-2], SNR_EDGES[1:-1], strict=True)),
    f"[{SNR_EDGES[-2]}, {SNR_EDGES[-1]}] dB",
    f"> {SNR_EDGES[-1]} dB",
    "unknown",
)
_BOOT_CHUNK = 250  # resamples drawn at once: bounds memory at 250 x n indices


def bootstrap_ci(values, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of the finite values and its percentile-bootstrap interval; NaNs for no values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]  # (n,)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.concatenate([
        x[rng.integers(0, x.size, size=(min(_BOOT_CHUNK, n_boot - start), x.size))].mean(axis=1)
        for start in range(0, n_boot, _BOOT_CHUNK)
    ])  # (n_boot,)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(x.mean()), float(lo), float(hi)


def _numeric(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def summarize(df: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] | None = None, *,
              n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (group, metric): [*by, metric, n, mean, ci_lo, ci_hi] with a 95 % bootstrap CI."""
    by = list(by or ())
    groups = df.groupby(by, dropna=False, sort=True, observed=True) if by else [((), df)]
    rows = []
    for key, group in groups:
        labels = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        for metric in metrics:
            values = _numeric(group[metric])
            mean, lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            rows.append({**labels, "metric": metric, "n": int(np.isfinite(values).sum()), "mean": mean,
                         "ci_lo": lo, "ci_hi": hi})
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def improvement(system_df: pd.DataFrame, noisy_df: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per scene of `system_df`: scene, masker, snr_db and, per metric, system minus mixture (NaN where either is)."""
    system = system_df.set_index("scene")
    noisy = noisy_df.set_index("scene").reindex(system.index)
    out = system[["masker", "snr_db"]].copy()
    for metric in metrics:
        out[metric] = _numeric(system[metric]) - _numeric(noisy[metric])
    return out.reset_index()


def paired_comparison(a: pd.Series, b: pd.Series, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """a against b on the scenes both have a value for (Series indexed by scene).

    Returns n, mean_diff (mean of a - b), ci_lo / ci_hi (95 % bootstrap of the paired differences), p_value and
    test: the two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon, zero differences dropped), which does not
    assume normal differences (PESQ and STOI are bounded and skewed).
    """
    pair = pd.concat({"a": pd.to_numeric(a, errors="coerce"), "b": pd.to_numeric(b, errors="coerce")},
                     axis=1, join="inner").dropna()
    diff = (pair["a"] - pair["b"]).to_numpy(dtype=np.float64)  # (n,)
    mean, lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    if diff.size == 0:
        p_value = math.nan
    elif not np.any(diff):
        p_value = 1.0  # identical on every scene: no evidence of a difference
    else:
        p_value = float(sps.wilcoxon(diff, alternative="two-sided").pvalue)
    return {"n": int(diff.size), "mean_diff": mean, "ci_lo": lo, "ci_hi": hi, "p_value": p_value,
            "test": "Wilcoxon signed-rank, two-sided (scipy.stats.wilcoxon)"}


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


def breakdown(df: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] = ("masker", "snr_band"), *,
              n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`summarize` per masker type and SNR band (bands in SNR order, a missing masker as "unknown")."""
    df = df.copy()
    if "snr_band" in by and "snr_band" not in df:
        df["snr_band"] = pd.Categorical(df["snr_db"].map(snr_band), categories=SNR_BANDS, ordered=True)
    if "masker" in by:
        df["masker"] = df["masker"].fillna("unknown").replace("", "unknown")
    out = summarize(df, metrics, by, n_boot=n_boot, seed=seed)
    if "snr_band" in out:
        out["snr_band"] = out["snr_band"].astype(str)
    return out
