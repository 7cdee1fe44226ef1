"""The quality numbers of a compare run, as tidy DataFrames: every statistic comes from `avse_bench.metrics.stats`.

Rows are (system, condition): the unprocessed mixture ("noisy", "mixture") and each system's audio-visual ("av")
and blank-video ("audio_only") outputs. Metric cells that could not be scored are NaN and stay out of the
statistics; how many there were, and why, is counted by `errors`.
"""

from __future__ import annotations

import re
from itertools import combinations

import pandas as pd

from avse_bench.metrics.spec import SPECS, headline_metric, signed
from avse_bench.metrics.stats import SNR_BANDS, breakdown, improvement, paired_comparison, summarize
from avse_bench.pipeline import AUDIO_ONLY, AV, MIXTURE, NOISY


def metrics_in(scores: pd.DataFrame) -> list[str]:
    """The metrics the run computed (a column with at least one value), in column order: the intrusive five, and
    DNSMOS where it was scored."""
    return [m for m in SPECS if m in scores and scores[m].notna().any()] or ["si_sdr"]  # SPECS: as declared now


def rows(scores: pd.DataFrame, system: str, condition: str) -> pd.DataFrame:
    return scores[(scores.system == system) & (scores.condition == condition)]


def by_scene(scores: pd.DataFrame, system: str, condition: str, metric: str) -> pd.Series:
    """One metric of one (system, condition), indexed by scene, unscored scenes dropped."""
    return rows(scores, system, condition).set_index("scene")[metric].dropna()


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """[system, condition, metric, n, mean, ci_lo, ci_hi] for every (system, condition) in the scores."""
    return summarize(scores, metrics=metrics_in(scores), by=["system", "condition"])


def _without_na(error: str) -> str:
    """An error cell without its "<metric>: n/a (...)" parts: a metric that cannot be computed here (its model
    is not held, the item has no transcript) reads n/a in its own cell, and is not a failure of the scene."""
    return "; ".join(p for p in str(error).split("; ") if p and not re.match(r"^\w+: n/a \(", p))


def errors(scores: pd.DataFrame, system: str, condition: str) -> tuple[int, int, str]:
    """(scenes, scenes with an error, the reasons as "count x reason; ..."); n/a parts are not errors."""
    df = rows(scores, system, condition)
    real = df.error.map(_without_na)
    failed = real[real != ""]
    reasons = failed.value_counts().sort_index()
    return len(df), len(failed), "; ".join(f"{n} x {reason}" for reason, n in reasons.items())


def improvements(scores: pd.DataFrame, systems: list[str]) -> pd.DataFrame:
    """[system, metric, n, mean, ci_lo, ci_hi] of each system's audio-visual score minus the mixture's, per scene."""
    noisy, metrics = rows(scores, NOISY, MIXTURE), metrics_in(scores)
    frames = []
    for system in systems:
        deltas = improvement(rows(scores, system, AV), noisy, metrics=metrics)
        frames.append(summarize(deltas, metrics=metrics).assign(system=system))
    return pd.concat(frames, ignore_index=True)


def _paired(x: pd.Series, y: pd.Series, /, **labels) -> dict:
    """The paired comparison of x against y in `labels["metric"]`, signed so that a positive mean_diff says x is
    better (`spec.signed`: x - y, or y - x for a metric where lower is better)."""
    metric = labels["metric"]
    return {**labels, **paired_comparison(signed(metric, x), signed(metric, y))}


def headline(scores: pd.DataFrame) -> str:
    """The metric views lead with (`spec.headline_metric` of the metrics the run computed)."""
    return headline_metric(metrics_in(scores)) or metrics_in(scores)[0]


def pairs(scores: pd.DataFrame, systems: list[str]) -> pd.DataFrame:
    """[a, b, metric, n, mean_diff, ci_lo, ci_hi, p_value, test]: how much better a is than b on the scenes both
    scored (audio-visual; `_paired`)."""
    out = [_paired(by_scene(scores, a, AV, m), by_scene(scores, b, AV, m), a=a, b=b, metric=m)
           for a, b in combinations(systems, 2) for m in metrics_in(scores)]
    return pd.DataFrame(out)


def visual_gain(scores: pd.DataFrame, system: str, metric: str, maskers: str = "all") -> dict | None:
    """How much better audio-visual is than audio-only (blank video) per scene (`_paired`), over all scenes or one
    masker type; None when there is no such scene."""
    av, blank = by_scene(scores, system, AV, metric), by_scene(scores, system, AUDIO_ONLY, metric)
    if maskers != "all":
        chosen = set(scores.loc[scores.masker == maskers, "scene"])
        av, blank = av[av.index.isin(chosen)], blank[blank.index.isin(chosen)]
    if not (len(av) and len(blank)):
        return None
    return _paired(av, blank, system=system, maskers=maskers, metric=metric)


def uses_video(gain: dict | None) -> bool:
    """Whether a visual contribution (`visual_gain`) shows the video is used: its 95 % interval lies above the
    metric's declared `meaningful` difference (SI-SDR 0.1 dB, MBSTOI 0.01: `spec.py`), the same as the interval's
    test of "gain <= that" rejecting. A gain that is significant but negligible (the quick baseline's +0.00004 dB,
    p < 0.001) does not."""
    return gain is not None and not pd.isna(gain["ci_lo"]) and gain["ci_lo"] > SPECS[gain["metric"]].meaningful


def meaningful_text(metric: str) -> str:
    """The metric's meaningful difference with its unit, as sentences quote it ("0.1 dB", "0.01")."""
    spec = SPECS[metric]
    return f"{spec.meaningful:g}{' ' + spec.unit if spec.unit else ''}"


def visual_contribution(scores: pd.DataFrame, systems: list[str]) -> pd.DataFrame:
    """[system, maskers, metric, n, mean_diff, ci_lo, ci_hi, p_value, test]: audio-visual minus audio-only per
    scene, over all scenes and over the speech-masker scenes (where only the video tells which voice to keep)."""
    out = [visual_gain(scores, system, m, maskers) for system in systems for m in metrics_in(scores)
           for maskers in ("all", "speech")]
    return pd.DataFrame([row for row in out if row is not None])


def breakdowns(scores: pd.DataFrame, systems: list[str], by: str) -> pd.DataFrame:
    """[system, condition, <by>, metric, n, mean, ci_lo, ci_hi] for the mixture and each system's audio-visual
    output, split by `by` ("masker" or "snr_band")."""
    frames = [breakdown(rows(scores, s, c), metrics=metrics_in(scores), by=(by,)).assign(system=s, condition=c)
              for s, c in [(NOISY, MIXTURE), *((s, AV) for s in systems)]]
    return pd.concat(frames, ignore_index=True)


def group_order(parts: pd.DataFrame, by: str) -> list[str]:
    """The groups of a breakdown in reading order: SNR bands from the lowest SNR up, maskers by name."""
    present = set(parts[by])
    return [b for b in SNR_BANDS if b in present] if by == "snr_band" else sorted(present)


def clipping(peaks: pd.DataFrame) -> pd.DataFrame:
    """Per (system, condition) of `peaks` (system, condition, scene, peak): outputs, how many peaked above full scale
    (so were clipped when written as 16-bit PCM, `avse_bench.enhance.write_enhanced`) and the highest peak."""
    over = peaks.assign(clipped=peaks.peak > 1.0)
    return (over.groupby(["system", "condition"], sort=False)
            .agg(outputs=("scene", "size"), clipped=("clipped", "sum"), max_peak=("peak", "max")).reset_index())
