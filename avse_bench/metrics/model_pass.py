"""The model metrics of the Real-World AVSE tracks (CER, speaker similarity, UTMOS: `spec` family "model"), filled
into a split's rows after the worker pool has scored everything else.

They run here, in the scoring process, because each needs a large model loaded once (`realworld.load_model`), and
speaker similarity needs state across items (each speaker's voiceprint from every clean remix source of the split).
A row keeps a value it already has (a resumed run computes only what is missing); a metric whose model is not held
here gets "<metric>: n/a (reason)" in the row's `error` column, never a number; an item without a transcript (a test
split as released) gets "cer: n/a (no transcript ...)", one whose speaker has no voiceprint likewise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from avse_bench.metrics.dispatch import ScoreJob, read_wav
from avse_bench.metrics.functional import MetricError
from avse_bench.metrics.realworld import (
    MODEL_SOURCES,
    ModelUnavailable,
    cer,
    load_model,
    speaker_similarity,
    voiceprints,
)
from avse_bench.metrics.spec import names

MODEL_METRICS = names(family="model")


def _read(path: Path) -> np.ndarray:
    return read_wav(path).astype(np.float32)  # (L,) float32, as the official scorer reads (dtype="float32")


def _value(metric: str, model, job: ScoreJob, wav: np.ndarray, prints: dict) -> float:
    if metric == "cer":
        if job.transcript is None:
            raise MetricError("n/a (no transcript: the item has no sK.txt)")
        return cer(job.transcript, model.transcribe(wav))
    if metric == "spk_sim":
        if job.speaker not in prints:
            raise MetricError(f"n/a (no voiceprint for speaker {job.speaker}: no clean remix source of theirs in "
                              "this split)")
        return speaker_similarity(model.embed(wav), prints[job.speaker])
    return float(model.predict(wav))


def fill_model_metrics(rows: list[dict], jobs: list[ScoreJob], voice_sources: Iterable[tuple[str, Path]],
                       progress: bool = True) -> list[dict]:
    """`rows` with the model metrics of `jobs[0].metrics` filled where empty (module docstring); rows without a job
    or without their estimate file are left as they are. `voice_sources`: (speaker, clean source path) of the
    split's remix items, for the voiceprints."""
    wanted = [m for m in (jobs[0].metrics if jobs else ()) if m in MODEL_METRICS]
    if not wanted:
        return rows
    models, reasons = {}, {}
    for metric in wanted:
        try:
            models[metric] = load_model(metric)
        except ModelUnavailable as err:
            if progress:
                print(f"avse-bench: note: {metric}: n/a ({err.reason})", file=sys.stderr)
            variable = MODEL_SOURCES[metric].variable
            reasons[metric] = err.reason if os.environ.get(variable) else f"no model here: set {variable}"
    prints = voiceprints(voice_sources, models["spk_sim"].embed, _read) if "spk_sim" in models else {}
    by_scene = {j.scene: j for j in jobs}
    own = tuple(f"{m}: " for m in wanted)
    for row in rows:
        job = by_scene.get(row["scene"])
        if job is None or not job.estimate.is_file() or row["error"].startswith("missing "):
            continue
        parts = [p for p in row["error"].split("; ") if p and not p.startswith(own)]
        wav = None
        for metric in wanted:
            if row.get(metric):
                continue
            if metric in reasons:
                parts.append(f"{metric}: n/a ({reasons[metric]})")
                continue
            try:
                wav = _read(job.estimate) if wav is None else wav
                value = _value(metric, models[metric], job, wav, prints)
            except MetricError as err:
                parts.append(f"{metric}: {err.reason}")
                continue
            if np.isfinite(value):
                row[metric] = repr(float(value))
            else:
                parts.append(f"{metric}: not a finite number ({value})")
        row["error"] = "; ".join(parts)
    return rows
