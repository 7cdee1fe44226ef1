"""`avse-bench score`: every scene of a split scored in parallel processes into a resumable per-scene CSV.

Intrusive metrics (PESQ, STOI, ESTOI, SI-SDR: `functional`) compare the estimate with the scene's clean target; the
non-intrusive DNSMOS (`dnsmos`) scores the estimate alone, so a split without targets (eval) is scored with it alone.
`--metrics` chooses (`parse_metrics`). The reference is each scene's `<scene>_target.wav`; the estimate is
`<enhanced_dir>/<scene>.wav` (as the official `test.py` writes them) or, without `enhanced_dir`, the unprocessed
`<scene>_mixed.wav` (the "noisy" row). Files are scored as written, read with soundfile as float64 exactly as the
official `objective_evaluation.py` reads them (no normalisation, no model preprocessing). A file that is not 16 kHz
mono is an error row, not resampled: the official script assumes 16 kHz, and a silent resampling would score
something else than what the system wrote.

One row per scene, columns `COLUMNS`; a scene that cannot be scored (missing or unreadable file, silent reference,
...; see `functional`) keeps its row with empty values and the reason in `error`. Every scene is scored in a worker
process (`pebble.ProcessPool`, one scene at a time per worker, with a time limit): a metric library that crashes
(PESQ segfaults on a 150 s utterance), hangs or raises costs that scene's values, never the run. Such a scene is then
scored again one metric per task, so that only the metric that failed is empty, its reason "crashed (signal 11)"
or "timed out after N s". Rows whose estimate was missing, or whose failure came from the environment (a crash, a
time-out, a library's exception: `retried`), are scored again by the next run. One run at a time writes an output
(`_writer_lock`); rows a second writer left twice are resolved (`_resolve_repeats`).
Rows are appended and flushed as
scenes finish, so a killed run re-started with the same arguments skips the scenes already written (a half-written
last line is dropped and re-scored) and ends, once rewritten sorted by scene, with the same rows as an uninterrupted
run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import io
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from avse_bench.errors import AvseBenchError
from avse_bench.io import replace_atomically, writable_dir
from avse_bench.metrics import store
from avse_bench.metrics.dispatch import COLUMNS, RETRIED, ScoreJob, parse_metrics
from avse_bench.metrics.functional import METRICS  # noqa: F401 (the intrusive five, as callers import them here)
from avse_bench.metrics.model_pass import fill_model_metrics
from avse_bench.metrics.pool import DEFAULT_TIMEOUT, _PoolBroken, _score_jobs, _worker_count
from avse_bench.metrics.spec import ALL_METRICS, SPECS

OFFICIAL_COLUMNS = ("scene", "stoi", "pesq")  # the official objective_evaluation.py: classic STOI, wide-band PESQ
# A failure of the environment, not of the scene's data: the next run scores such a row again (`retried`).
ENVIRONMENT_FAILURES = ("crashed (signal", "timed out after", "worker exited with status", "failed: ")


def parse_shard(shard: str) -> tuple[int, int]:
    """"i/n" -> (i, n) with 1 <= i <= n; AvseBenchError otherwise."""
    try:
        i, n = (int(part) for part in shard.split("/"))
    except ValueError:
        raise AvseBenchError(f"--shard {shard!r}: expected i/n with whole numbers, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise AvseBenchError(f"--shard {shard!r}: need 1 <= i <= n")
    return i, n


def select_shard(items: Sequence, shard: str | None) -> list:
    """The i-th of n deterministic slices of a sorted list: every n-th item from item i-1 (balanced, disjoint)."""
    if shard is None:
        return list(items)
    i, n = parse_shard(shard)
    return list(items[i - 1 :: n])


def _jobs_for(data_root: Path, split: str, enhanced_dir: Path | None, shard: str | None,
              suffix: str = "", metrics: str | Sequence[str] | None = None, track: str | None = None
              ) -> tuple[list[ScoreJob], str, list[tuple[str, Path]]]:
    """(one job per scene of the split (or shard), the track, the (speaker, clean source) pairs of the whole split
    that voiceprints are made of: a Real-World split's remix items). `metrics`: a `--metrics` spec or names (None: the
    default). A split where no scene has a target (eval) gets the non-intrusive metrics alone (`load_split`
    refuses a split where only some scenes have one, naming the others' missing files)."""
    from avse_bench.data.layout import load_split  # not the package: scoring needs no torch

    all_scenes = load_split(data_root, split, track)
    blind = all(s.reference is None for s in all_scenes)
    spec = metrics if metrics is None or isinstance(metrics, str) else ",".join(metrics)
    chosen = parse_metrics(spec, has_targets=not blind, track=all_scenes[0].track)
    track = all_scenes[0].track
    voices = [(s.meta["speaker"], Path(s.target)) for s in all_scenes if s.meta.get("speaker") and s.target]
    if blind:
        print(f"avse-bench: note: {data_root / split} has no reference files (an evaluation split): scored blind, "
              f"with {', '.join(SPECS[m].label for m in chosen)} only", file=sys.stderr)
    return [ScoreJob(s.id, s.masker, s.snr_db, None if s.reference is None else Path(s.reference),
                     _estimate(s, enhanced_dir, suffix) if enhanced_dir is not None else Path(s.mixed),
                     "enhanced" if enhanced_dir is not None else "mixture", chosen, s.channels,
                     s.meta.get("speaker"), _transcript(s))
            for s in select_shard(all_scenes, shard)], track, voices


def _transcript(scene) -> str | None:
    """The scene's reference transcript (a Real-World item's sK.txt, stripped), or None."""
    path = scene.meta.get("transcript")
    return Path(path).read_text(encoding="utf-8").strip() if path else None


def _estimate(scene, enhanced_dir, suffix: str) -> Path:
    """A scene's enhanced file: `Scene.output` (`<id>.wav`, or the Real-World submission layout), `suffix` before
    the extension."""
    path = scene.output(enhanced_dir)
    return path.with_name(f"{path.stem}{suffix}.wav") if suffix else path


def read_scores(path: Path, *, repair: bool = False) -> list[dict[str, str]]:
    """The rows of a score CSV. With `repair`, a half-written last line (no final newline) is cut off the file."""
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        if not repair:
            raise AvseBenchError(f"{path}: the last line is incomplete (an interrupted run?); re-run score to finish")
        text = text[: text.rfind("\n") + 1]
        path.write_text(text)
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if not {"scene", "error"} <= set(header) or not set(header) <= set(COLUMNS) or len(set(header)) < len(header):
        raise AvseBenchError(f"{path}: not a score file (header {reader.fieldnames}, expected {list(COLUMNS)})")
    rows = list(reader)
    broken = [i + 2 for i, r in enumerate(rows) if None in r or None in r.values()]
    if broken:
        raise AvseBenchError(f"{path}: line(s) {broken[:5]} do not have the {len(header)} columns")
    # a file written before a metric was declared (spec.py) lacks its column: that metric was not scored
    return [{**dict.fromkeys(COLUMNS, ""), **r} for r in rows]


def retried(error: str) -> bool:
    """Whether the next run scores a row with this `error` again: its file was missing, or a metric (or the scene's
    task) failed for a reason of the environment (a crash, a time-out, a worker's exit, an exception of the
    library: `ENVIRONMENT_FAILURES`). Reasons of the data (a silent reference, a too short signal, a wrong rate)
    stay: they would give the same row again. A row scored metric by metric after its task crashed has its values
    and stays too."""
    if error.startswith(RETRIED):
        return True
    parts = (re.sub(r"^\w+: ", "", part) for part in error.split("; ") if not part.startswith("scored metric"))
    return any(part.startswith(ENVIRONMENT_FAILURES) for part in parts)


def _resolve_repeats(rows: list[dict[str, str]], path: Path) -> list[dict[str, str]]:
    """Rows with each scene once: identical repeats become one row; a scene with rows that differ (two runs that
    wrote the same file before it was locked) loses them all and is scored again, with a note, since which row is
    right cannot be known."""
    by_scene: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_scene.setdefault(row["scene"], []).append(row)
    conflicting = sorted(scene for scene, found in by_scene.items() if any(r != found[0] for r in found))
    if conflicting:
        print(f"avse-bench: note: {path}: {len(conflicting)} scene(s) appear more than once with different rows "
              f"(e.g. {conflicting[0]}; two runs wrote this file?): scored again", file=sys.stderr)
    return [found[0] for scene, found in by_scene.items() if scene not in conflicting]


@contextlib.contextmanager
def _writer_lock(out_csv: Path):
    """Hold an exclusive lock on `out_csv` for the whole run (fcntl.flock on a hidden `.NAME.lock` beside it, freed
    by the system when the process dies, so a killed run leaves no stale lock; removed at the end while still held,
    and a lock taken on a file its holder just removed counts as held): a second run on the same output
    (a re-submitted cluster job) is refused at once instead of interleaving its rows. flock may not lock across
    the machines of a network file system: there, give each job its own --out (or --shard)."""
    folder = writable_dir(out_csv.parent, "the scores", "choose another --out")
    lock_path = folder / f".{out_csv.name}.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(lock.fileno()).st_ino != os.stat(lock_path).st_ino:  # the holder removed it as we opened it
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise AvseBenchError(f"{out_csv} is being written by {holder}; wait for it to finish, or write to "
                                 "another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"avse-bench score (pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        lock.flush()
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)  # while still held: no lock file is left beside the scores
            fcntl.flock(lock, fcntl.LOCK_UN)


def _unique(rows: Iterable[dict[str, str]], where: str) -> list[dict[str, str]]:
    """Rows sorted by scene; AvseBenchError if a scene appears twice."""
    seen: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["scene"] in seen:
            raise AvseBenchError(f"scene {row['scene']} appears more than once in {where}")
        seen[row["scene"]] = row
    return [seen[k] for k in sorted(seen)]


def _write_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    replace_atomically(path, write)


def write_scores(path: Path, rows: Iterable[dict[str, str]]) -> None:
    _write_atomic(path, COLUMNS, ([r[c] for c in COLUMNS] for r in rows))


def write_official(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """The official objective_evaluation.py's metrics.csv: scene, stoi, pesq (wide-band), one row per scene.

    The official script declares this header; here it is written (the AVSEC-1 script forgot to). A scene that
    could not be scored keeps its row with empty values (the official script would have stopped).
    """
    _write_atomic(Path(path), OFFICIAL_COLUMNS, ([r["scene"], r["stoi"], r["pesq_wb"]] for r in rows))


def check_enhanced_dir(enhanced_dir: Path, jobs: list[ScoreJob], suffix: str) -> None:
    """Refuse, before any work, an enhanced folder that does not exist or holds none of the expected files; the
    message names what it found instead (and the option that would read it)."""
    if not enhanced_dir.is_dir():
        raise AvseBenchError(f"--enhanced {enhanced_dir}: no such folder")
    if any(j.estimate.is_file() for j in jobs):
        return
    wavs = sorted(str(p.relative_to(enhanced_dir)) for p in enhanced_dir.rglob("*.wav"))
    expected = jobs[0].estimate.relative_to(enhanced_dir) if jobs else f"<scene>{suffix}.wav"
    hint = ""
    if jobs and wavs:
        found = re.match(rf"^{re.escape(jobs[0].scene)}(.*)\.wav$", next((w for w in wavs if w.startswith(
            jobs[0].scene)), ""))
        if found:
            hint = f"; to read {jobs[0].scene}{found[1]}.wav, pass --enhanced-suffix {found[1]!r}"
    seen = ", ".join(wavs[:3]) + (f" and {len(wavs) - 3} more" if len(wavs) > 3 else "") if wavs else "no wav file"
    raise AvseBenchError(f"--enhanced {enhanced_dir}: none of the {len(jobs)} expected files (e.g. {expected}) is "
                         f"there; found {seen}{hint}")


def score_split(data_root, split: str, out_csv, enhanced_dir=None, jobs: int = 0, shard: str | None = None,
                official_csv=None, progress: bool = True, enhanced_suffix: str = "",
                timeout: float = DEFAULT_TIMEOUT, metrics: str | Sequence[str] | None = None,
                track: str | None = None) -> Path:
    """Score every scene of `data_root/split` (or one shard of it) into `out_csv`, resuming what is already there.

    `jobs`: worker processes (0 = every core available). `shard`: "i/n", the i-th (1-based) of n disjoint slices
    (`select_shard`). `official_csv`: also write the official script's format there. `enhanced_suffix`: the
    enhanced files are `<scene><suffix>.wav` (e.g. "_mixed" for the official evaluation config's names). `timeout`:
    seconds a scene's task may take. `metrics`: which metrics (`parse_metrics`; the others' columns stay empty); on
    a split without targets the non-intrusive ones alone. `track`: "mono" or "binaural" (None: the layout's
    default, `layout.resolve_track`): which mixture is the noisy row, which reference, how many channels a file
    must have (another count is an error row). Raises AvseBenchError before any work for a bad folder,
    output file or metric list.
    """
    out_csv = Path(out_csv)
    if timeout <= 0:
        raise AvseBenchError(f"--timeout {timeout}: expected a positive number of seconds")
    workers = _worker_count(jobs)
    todo_all, track, voices = _jobs_for(Path(data_root), split, None if enhanced_dir is None else Path(enhanced_dir),
                                        shard, enhanced_suffix, metrics, track)
    if enhanced_dir is not None:
        check_enhanced_dir(Path(enhanced_dir), todo_all, enhanced_suffix)
    identity = {"data_root": str(Path(data_root).resolve()), "split": split, "track": track, "suffix": enhanced_suffix,
                "enhanced": None if enhanced_dir is None else str(Path(enhanced_dir).resolve()), "shard": shard}
    with _writer_lock(out_csv):
        final = _score_locked(out_csv, split, shard, todo_all, workers, timeout, progress, identity, voices)
        if official_csv is not None:
            write_official(Path(official_csv), final)
    return out_csv


def _score_locked(out_csv: Path, split: str, shard: str | None, todo_all: list[ScoreJob], workers: int,
                  timeout: float, progress: bool, identity: dict, voices: list) -> list[dict[str, str]]:
    """`score_split`'s work once it holds the output's lock: check what made the rows already there (`store`),
    resume, score what is left, write sorted; returns the final rows."""
    wanted = {j.scene for j in todo_all}
    read = read_scores(out_csv, repair=True)
    recorded = store.read_record(out_csv) if read else None  # an empty file has nothing to protect
    if read:
        store.check_identity(out_csv, recorded, identity)
    done = _resolve_repeats(read, out_csv)
    foreign = [r["scene"] for r in done if r["scene"] not in wanted]
    if foreign:
        raise AvseBenchError(f"{out_csv} holds scenes that are not in {split}"
                             f"{f' shard {shard}' if shard else ''} (e.g. {foreign[0]}): write to another --out")
    record = store.make_record(identity, todo_all[0].metrics if todo_all else (), todo_all)  # stats each file once
    rescore, why = store.rows_to_rescore(recorded, record)
    if why and done:
        print(f"avse-bench: note: {out_csv}: {why}: those rows are scored again", file=sys.stderr)
    if rescore is None:  # every kept row, with the metrics it had as well as the new ones
        metrics = tuple(m for m in ALL_METRICS if m in set(recorded["metrics"]) | set(todo_all[0].metrics))
        todo_all = [dataclasses.replace(j, metrics=metrics) for j in todo_all]
        record["metrics"] = list(metrics)
        rescore = wanted
    kept = [r for r in done if not retried(r["error"]) and r["scene"] not in rescore]
    store.write_record(out_csv, record)
    if len(kept) < len(read):  # missing files, failures of the environment, conflicting repeats, stale rows
        write_scores(out_csv, kept)
    finished = {r["scene"] for r in kept}
    stalled = 0
    while todo := [j for j in todo_all if j.scene not in finished]:
        try:
            _score_jobs(todo, out_csv, workers, timeout, tqdm(
                total=len(todo_all), initial=len(finished), desc=f"score {split}", unit="scene", disable=not progress))
            break  # every scene has its row
        except _PoolBroken as broken:
            before, finished = finished, {r["scene"] for r in read_scores(out_csv, repair=True)}
            stalled = 0 if finished - before else stalled + 1
            if stalled == 2:  # twice in a row without a scene scored: the workers cannot run here
                raise AvseBenchError(
                    f"the scoring worker processes could not start or all died at once ({broken}), twice; the "
                    f"{len(finished)} scenes scored so far are kept in {out_csv}. If you call avse_bench from a "
                    "Python script, put the call under `if __name__ == \"__main__\":` (each worker imports the main "
                    "script as it starts)") from None
    final = fill_model_metrics(_unique(read_scores(out_csv), str(out_csv)), todo_all, voices, progress)
    write_scores(out_csv, final)
    return final


def merge_scores(inputs: Sequence, out_csv) -> Path:
    """Join shard CSVs into one, sorted by scene; refuses incomplete files, any scene found more than once, and
    shards whose records (`store`) disagree on what was scored (data, split, track, enhanced folder, suffix,
    metrics, metric packages). The merged file gets the joined record."""
    if not inputs:
        raise AvseBenchError("score merge: no input files")
    missing = [str(p) for p in inputs if not Path(p).is_file()]
    if missing:
        raise AvseBenchError(f"score merge: no such file(s): {', '.join(missing)}")
    record = store.merged_record(list(inputs), [store.read_record(Path(p)) for p in inputs])
    source: dict[str, Path] = {}
    rows = []
    for path in map(Path, inputs):
        for row in read_scores(path):
            if row["scene"] in source:
                raise AvseBenchError(f"score merge: scene {row['scene']} is in both {source[row['scene']]} and {path}")
            source[row["scene"]] = path
            rows.append(row)
    write_scores(Path(out_csv), sorted(rows, key=lambda r: r["scene"]))
    store.write_record(Path(out_csv), record)
    return Path(out_csv)
