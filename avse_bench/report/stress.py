"""The robustness numbers of a compare run with `--stress`: each system's improvement over the mixture under each
visual-stress condition (avse_bench/data/stress.py), the share of its clean-video gain it keeps, and which system
degrades more gracefully, with the paired test behind it. Every statistic comes from `avse_bench.metrics.stats`.

`stress` is stress.csv: one row per (system, condition, scene) with the `score_split` columns plus `stress` (the
degradation's name) and `severity`. The mixture's scores and the clean-video (audio-visual) and blank-video
(audio-only) outputs come from scores.csv: nothing is scored twice.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from avse_bench.data.stress import DEGRADATIONS
from avse_bench.metrics.spec import signed
from avse_bench.metrics.stats import improvement, paired_comparison, summarize
from avse_bench.pipeline import AUDIO_ONLY, AV, MIXTURE, NOISY, STRESS_METRICS
from avse_bench.report.quality import by_scene, rows, visual_gain

CLEAN, BLANK = "clean video", "blank video (audio only)"
def identity_severity(name: str, frame_size: int) -> float | None:
    """The severity of `name` that leaves the video as it is (its declaration, `data.stress.DEGRADATIONS`)."""
    return DEGRADATIONS[name].identity_at(frame_size)


def _gains(scores: pd.DataFrame, df: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per scene of `df`: score minus the mixture's score on the same scene."""
    return improvement(df, rows(scores, NOISY, MIXTURE), metrics=metrics)


def robustness(scores: pd.DataFrame, stress: pd.DataFrame, systems: list[str],
               metrics: tuple[str, ...] = STRESS_METRICS) -> pd.DataFrame:
    """[system, condition, stress, severity, metric, n, mean, ci_lo, ci_hi, kept]: improvement over the mixture per
    (system, condition) in each of `metrics` (the run's: `Run.stress_metrics`), the clean-video and blank-video
    references first; `kept` = mean gain under the condition /
    mean clean-video gain, NaN unless the clean-video gain's 95 % CI lies above 0 (no gain shown: nothing to keep,
    and a ratio to a gain near 0 is noise)."""
    frames = []
    for system in systems:
        refs = [(CLEAN, rows(scores, system, AV)), (BLANK, rows(scores, system, AUDIO_ONLY))]
        conditions = stress[stress.system == system].groupby(["condition", "stress", "severity"], sort=False)
        parts = [(label, "", np.nan, df) for label, df in refs]
        parts += [(label, name, severity, df) for (label, name, severity), df in conditions]
        for label, name, severity, df in parts:
            stats = summarize(_gains(scores, df, metrics), metrics=metrics)
            frames.append(stats.assign(system=system, condition=label, stress=name, severity=severity))
    out = pd.concat(frames, ignore_index=True)
    clean = out[out.condition == CLEAN].set_index(["system", "metric"])
    key = pd.MultiIndex.from_frame(out[["system", "metric"]])
    base, base_lo = (clean[c].reindex(key).to_numpy() for c in ("mean", "ci_lo"))
    shown = base_lo > 0
    out["kept"] = np.where(shown, out["mean"] / np.where(shown, base, 1.0), np.nan)
    return out[["system", "condition", "stress", "severity", "metric", "n", "mean", "ci_lo", "ci_hi", "kept"]]


def loss_per_scene(scores: pd.DataFrame, stress: pd.DataFrame, system: str, metric: str) -> pd.Series:
    """Per scene: the mean over every stress condition of how much better the output is under the condition than
    with the clean video (`spec.signed` of score under the condition - clean-video score: negative is a loss, for
    a lower-is-better metric too), the system's average change from degrading its video; scenes missing a value
    under any condition are left out."""
    clean = by_scene(scores, system, AV, metric)
    under = stress[stress.system == system].pivot_table(index="scene", columns="condition", values=metric)
    return signed(metric, under.sub(clean.reindex(under.index), axis=0)).dropna().mean(axis=1)


def graceful(scores: pd.DataFrame, stress: pd.DataFrame, systems: list[str], metric: str) -> list[dict]:
    """For every pair (a, b) of `systems` (in their order), the paired comparison of their average losses
    (`loss_per_scene`): the mean of the paired differences a - b with its BCa interval and the bootstrap test of
    that mean (`stats.paired_comparison`; the verdict reads its sign and p), with each system's mean loss and its visual
    contribution (`quality.visual_gain`, AV - audio-only; None without scenes) for context. Empty with fewer than
    two systems. The p-values are per pair, not corrected for the number of pairs (as the paired quality table)."""
    losses = {s: loss_per_scene(scores, stress, s, metric) for s in systems}
    contribution = {s: visual_gain(scores, s, metric) for s in systems}
    return [{"a": a, "b": b, "metric": metric, "loss_a": float(losses[a].mean()), "loss_b": float(losses[b].mean()),
             "contribution": {a: contribution[a], b: contribution[b]},
             **paired_comparison(losses[a], losses[b])}  # both already signed: a - b above 0, a loses less
            for a, b in combinations(systems, 2)]
