"""Reading a compare run folder (layout in docs/ARCHITECTURE.md) into one object the renderers share.

The report is a function of these stored files alone: manifest.json and scores.csv must be there; a system's
profile or training summary that is missing is not an error here, it becomes "n/a (<file> missing)" in the sheet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avse_bench.errors import AvseBenchError
from avse_bench.metrics.scoring import COLUMNS
from avse_bench.metrics.spec import ALL_METRICS
from avse_bench.percentiles import latency_summary
from avse_bench.pipeline import RUNNING, STRESS_METRICS

SCORE_COLUMNS = ("system", "condition", *COLUMNS)  # scores.csv: score_split's columns, labelled


@dataclass(frozen=True)
class Run:
    root: Path
    manifest: dict
    scores: pd.DataFrame  # one row per (system, condition, scene); `error` is "" where the scene was scored
    profile: dict  # {system: profile dict | "n/a (reason)"}
    train: dict  # {system: train_summary dict | "n/a (reason)"}
    logs: dict  # {system: train_log DataFrame | None}
    stress: pd.DataFrame | None = None  # stress.csv when the run had --stress: scores.csv's columns + stress, severity
    blind: pd.DataFrame | None = None  # blind.csv when the data root had an eval split without targets
    peaks: pd.DataFrame | None = None  # peaks.csv: system, condition, scene, peak (max |sample| before writing)

    @property
    def systems(self) -> list[str]:
        return list(self.manifest["systems"])

    def config(self, system: str) -> dict:
        return self.manifest["systems"][system].get("config", {})

    def recipe(self, system: str) -> dict:
        return self.manifest["systems"][system].get("recipe", {})

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the run scored (the manifest's; those with values for runs that did not record them)."""
        return tuple(self.manifest.get("metrics", [m for m in ALL_METRICS if m in self.scores
                                                   and self.scores[m].notna().any()]))

    @property
    def stress_metrics(self) -> tuple[str, ...]:
        """The metrics the stress conditions were scored with (the manifest's; SI-SDR, PESQ-WB and STOI for runs
        that did not record them, which were all mono)."""
        return tuple(self.manifest.get("stress", {}).get("metrics", STRESS_METRICS))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AvseBenchError(f"{path} is not valid JSON ({err}); re-run the stage that writes it") from err


def read_scores(path: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A labelled score CSV (scores.csv, stress.csv with `extra` = ("stress", "severity"), blind.csv)."""
    if not path.is_file():
        raise AvseBenchError(f"{path} not found: run `avse-bench compare` into this folder first")
    df = pd.read_csv(path, dtype={"system": str, "condition": str, "scene": str, "masker": str, "error": str,
                                  "stress": str})
    for column in ALL_METRICS:  # runs scored before a metric was declared (DNSMOS, MBSTOI): not scored, not an error
        if column not in df.columns:
            df[column] = float("nan")
    missing = [c for c in (*SCORE_COLUMNS, *extra) if c not in df.columns]
    if missing:
        raise AvseBenchError(f"{path} lacks the column(s) {', '.join(missing)}")
    df["error"] = df["error"].fillna("")
    return df


def _with_latency_rule(profile):
    """A profile whose latency percentiles are recomputed from its timed runs (`percentiles.latency_summary`), so that a
    profile written before the rule on tail percentiles (p99 of 20 runs) is reported by today's rule."""
    if isinstance(profile, dict) and profile.get("latency_samples_ms"):
        return {**profile, "latency_ms": latency_summary(profile["latency_samples_ms"])}
    return profile




def load_run(root: Path, unfinished_ok: bool = False) -> Run:
    """The stored files of a compare run. AvseBenchError for a folder that is not one, and for a run whose compare
    has not finished (`RUNNING`: a re-run that died may have replaced some outputs and not others, so its files are
    not the report of any one run) unless `unfinished_ok` (compare's own stages, which read the run they are
    making)."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise AvseBenchError(f"{manifest_path} not found: {root} is not a compare run folder")
    manifest = _read_json(manifest_path)
    if not manifest.get("systems"):
        raise AvseBenchError(f"{manifest_path} names no systems")
    if manifest.get("status") == RUNNING and not unfinished_ok:
        raise AvseBenchError(f"{root}: its compare run (started {manifest.get('created', '?')}: "
                             f"{' '.join(manifest.get('command_line', [])) or 'compare'}) has not finished, and its "
                             "stages may have replaced some of the last finished run's outputs: run the same command "
                             "again to finish it (finished stages are skipped)")
    scores = read_scores(root / "scores.csv")

    profile_path = root / "profile.json"
    profiles = _read_json(profile_path) if profile_path.is_file() else {}
    profile, train, logs = {}, {}, {}
    for system in manifest["systems"]:
        profile[system] = _with_latency_rule(
            profiles.get(system, f"n/a ({profile_path.name} has no entry for {system})"))
        run_dir = root / "runs" / system
        summary, log = run_dir / "train_summary.json", run_dir / "train_log.csv"
        train[system] = _read_json(summary) if summary.is_file() else f"n/a ({summary.relative_to(root)} missing)"
        supplied = train[system].get("supplied_weights") if isinstance(train[system], dict) else None
        if supplied:  # every training item reads this instead of a figure
            train[system] = (f"not trained in this run: weights supplied ({supplied['name']}, {supplied['format']}, "
                             f"sha256 {supplied['sha256']})")
        logs[system] = pd.read_csv(log) if log.is_file() else None
    stress = read_scores(root / "stress.csv", ("stress", "severity")) if manifest.get("stress") else None
    blind = read_scores(root / "blind.csv") if manifest.get("data", {}).get("blind_split") else None
    peaks_path = root / "peaks.csv"  # runs made before enhanced files were 16-bit PCM have none
    peaks = pd.read_csv(peaks_path, dtype={"system": str, "condition": str, "scene": str}) if peaks_path.is_file() \
        else None
    return Run(root=root, manifest=manifest, scores=scores, profile=profile, train=train, logs=logs, stress=stress,
               blind=blind, peaks=peaks)
