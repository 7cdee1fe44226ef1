"""score_split / merge_scores on a small AVSEC-layout corpus: values, error rows, resumption after a crash or a kill,
sharding, the official CSV and the CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pebble
import pesq
import pystoi
import pytest
import soundfile as sf

from avse_bench.cli import main
from avse_bench.errors import AvseBenchError
from avse_bench.machine import worker_context
from avse_bench.metrics import functional, pool, scoring, store
from avse_bench.metrics.functional import METRICS
from avse_bench.metrics.scoring import COLUMNS, merge_scores, score_split, select_shard

N_SCENES = 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from avse_bench.data.synth import synthesize

    root = tmp_path_factory.mktemp("score_corpus")
    synthesize(root, n_train=0, n_dev=N_SCENES, seed=1, min_seconds=1.0, max_seconds=1.5, progress=False)
    return root


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """The mixture scored by one uninterrupted serial run."""
    return score_split(corpus, "dev", tmp_path_factory.mktemp("ref") / "noisy.csv", jobs=1, progress=False,
                       metrics="intrusive")


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        return list(reader)


def assert_same_rows(got: Path, want: Path) -> None:
    """Same scenes in the same order, same text fields, metric values equal to 1e-12 (numpy's sums can differ in the
    last bit from run to run)."""
    a, b = read(got), read(want)
    assert [r["scene"] for r in a] == [r["scene"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert {k: ra[k] for k in ("masker", "snr_db", "error")} == {k: rb[k] for k in ("masker", "snr_db", "error")}
        for m in METRICS:
            assert (ra[m] == "") == (rb[m] == ""), (ra["scene"], m)
            if ra[m]:
                assert float(ra[m]) == pytest.approx(float(rb[m]), abs=1e-12), (ra["scene"], m)


def test_rows_hold_every_scene_with_the_library_values(corpus, reference):
    rows = read(reference)
    assert [r["scene"] for r in rows] == [f"S{i:05d}" for i in range(1, N_SCENES + 1)]
    scenes_dir = corpus / "dev" / "scenes"
    for row in rows:
        assert row["error"] == "" and row["masker"] in ("speech", "noise") and -15 <= float(row["snr_db"]) <= 10
        ref, _ = sf.read(scenes_dir / f"{row['scene']}_target.wav")  # as the official script reads them
        mix, _ = sf.read(scenes_dir / f"{row['scene']}_mixed.wav")
        assert float(row["pesq_wb"]) == pytest.approx(pesq.pesq(16000, ref, mix, "wb"), abs=1e-9)
        assert float(row["stoi"]) == pytest.approx(pystoi.stoi(ref, mix, 16000), abs=1e-9)
        assert float(row["estoi"]) == pytest.approx(pystoi.stoi(ref, mix, 16000, extended=True), abs=1e-9)


def test_parallel_run_equals_the_serial_one_and_writes_the_official_csv(corpus, reference, tmp_path):
    out = score_split(corpus, "dev", tmp_path / "p.csv", jobs=2, official_csv=tmp_path / "official.csv",
                      progress=False, metrics="intrusive")
    assert_same_rows(out, reference)
    with open(tmp_path / "official.csv", newline="") as f:
        official = list(csv.reader(f))
    assert official[0] == ["scene", "stoi", "pesq"]
    assert official[1:] == [[r["scene"], r["stoi"], r["pesq_wb"]] for r in read(out)]


def test_problem_scenes_get_error_rows_while_the_others_are_scored(corpus, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(corpus, root)
    scenes_dir = root / "dev" / "scenes"
    silent, _ = sf.read(scenes_dir / "S00002_target.wav")
    sf.write(scenes_dir / "S00002_target.wav", np.zeros_like(silent), 16000, subtype="PCM_16")
    enhanced = tmp_path / "enhanced"
    enhanced.mkdir()
    for i in (1, 2, 5, 6):  # S00003 has no enhanced file
        shutil.copy(scenes_dir / f"S{i:05d}_target.wav", enhanced / f"S{i:05d}.wav")
    target4, _ = sf.read(scenes_dir / "S00004_target.wav")
    sf.write(enhanced / "S00004.wav", target4[::2], 8000)

    rows = {r["scene"]: r for r in read(score_split(root, "dev", tmp_path / "s.csv", enhanced_dir=enhanced, jobs=2,
                                                    progress=False, metrics="intrusive"))}
    assert rows["S00002"]["error"] == "silent reference"
    assert rows["S00003"]["error"].startswith("missing enhanced file") and "S00003.wav" in rows["S00003"]["error"]
    assert "8000 Hz, expected 16000 Hz" in rows["S00004"]["error"]
    for bad in ("S00002", "S00003", "S00004"):
        assert all(rows[bad][m] == "" for m in METRICS)
    for good in ("S00001", "S00005", "S00006"):  # the enhanced output is the target itself
        assert rows[good]["error"] == ""
        assert float(rows[good]["si_sdr"]) > 100 and float(rows[good]["stoi"]) > 0.999


def test_a_run_stopped_by_an_exception_resumes_to_the_same_rows(corpus, reference, tmp_path, monkeypatch):
    """The scoring process itself stops (an exception where its rows are collected; a crash inside a worker is
    caught instead: see test_inputs.py) after three scenes; the re-run finishes with the same rows."""
    out = tmp_path / "s.csv"
    real, calls = pool._row, []

    def crash_after_three(future, job, *rest):
        if len(calls) == 3:
            raise RuntimeError("injected crash")
        calls.append(job.scene)
        return real(future, job, *rest)

    monkeypatch.setattr(pool, "_row", crash_after_three)
    with pytest.raises(RuntimeError, match="injected crash"):
        score_split(corpus, "dev", out, jobs=1, progress=False, metrics="intrusive")
    assert [r["scene"] for r in read(out)] == calls == ["S00001", "S00002", "S00003"]
    with open(out, "a") as f:
        f.write("S00004,noise,-3.1,1.0")  # a line cut in the middle by the crash

    monkeypatch.setattr(pool, "_row", real)
    score_split(corpus, "dev", out, jobs=1, progress=False, metrics="intrusive")
    assert_same_rows(out, reference)


@pytest.mark.slow
def test_a_killed_parallel_run_resumes_to_the_same_rows(corpus, reference, tmp_path):
    """SIGKILL the whole process group of a jobs=2 run once two scenes are written, then re-run."""
    out = tmp_path / "s.csv"
    (tmp_path / "slowdown.py").write_text(textwrap.dedent("""
        import time
        from avse_bench.metrics import pool
        real = pool.score_job
        def slow_after_two(job, call=None):  # scheduled by reference: a worker imports this module to run it
            if job.scene > "S00002":
                time.sleep(120)
            return real(job, call)
    """))
    script = textwrap.dedent(f"""
        import slowdown
        from avse_bench.metrics import pool, scoring
        pool.score_job = slowdown.slow_after_two
        scoring.score_split({str(corpus)!r}, "dev", {str(out)!r}, jobs=2, progress=False, metrics="intrusive")
    """)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(scoring.__file__).parents[2]), *sys.path])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and len(out.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended on its own"
        assert len(out.read_text().splitlines()) == 3  # header + S00001 + S00002
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    score_split(corpus, "dev", out, jobs=2, progress=False, metrics="intrusive")
    assert_same_rows(out, reference)


def test_shards_are_disjoint_and_merge_to_the_whole(corpus, reference, tmp_path):
    parts = [score_split(corpus, "dev", tmp_path / f"part{i}.csv", jobs=1, shard=f"{i}/4", progress=False,
                         metrics="intrusive")
             for i in range(1, 5)]
    scenes = [[r["scene"] for r in read(p)] for p in parts]
    assert sorted(sum(scenes, [])) == [r["scene"] for r in read(reference)]
    assert scenes[0] == ["S00001", "S00005"] and scenes[3] == ["S00004"]  # every 4th scene from the i-th
    merged = merge_scores(list(reversed(parts)), tmp_path / "merged.csv")
    assert_same_rows(merged, reference)

    with pytest.raises(AvseBenchError, match="S00001 is in both"):
        merge_scores([parts[0], parts[1], parts[0]], tmp_path / "dup.csv")
    with pytest.raises(AvseBenchError, match=r"part1.csv holds rows scored from shard '1/4' \(now '2/4'\)"):
        score_split(corpus, "dev", parts[0], jobs=1, shard="2/4", progress=False, metrics="intrusive")


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1/0", "a/b", "2", "1/2/3", "-1/2"])
def test_bad_shards_are_refused(bad):
    with pytest.raises(AvseBenchError, match="shard"):
        select_shard(["S00001", "S00002"], bad)


def test_a_split_without_targets_is_refused_for_intrusive_metrics_alone(corpus, tmp_path):
    scenes = tmp_path / "root" / "eval" / "scenes"
    shutil.copytree(corpus / "dev" / "scenes", scenes)
    for target in [*scenes.glob("*_target.wav"), *scenes.glob("*_interferer.wav")]:  # as the challenge's eval
        target.unlink()
    with pytest.raises(AvseBenchError, match="no clean targets, so only the non-intrusive"):
        score_split(tmp_path / "root", "eval", tmp_path / "s.csv", jobs=1, progress=False, metrics="intrusive")


def test_an_eval_split_where_only_some_scenes_have_a_target_is_refused(corpus, tmp_path):
    scenes = tmp_path / "root" / "eval" / "scenes"
    shutil.copytree(corpus / "dev" / "scenes", scenes)
    for target in sorted(scenes.glob("*_target.wav"))[1:]:
        target.unlink()
    with pytest.raises(AvseBenchError, match=r"(?s)broken scene.*S00003: missing file S00003_target\.wav"):
        score_split(tmp_path / "root", "eval", tmp_path / "s.csv", jobs=1, progress=False)


def test_cli_score_and_merge(corpus, reference, tmp_path, capsys):
    for i in (1, 2):
        assert main(["score", "--data", str(corpus), "--split", "dev", "--out", str(tmp_path / f"{i}.csv"),
                     "--jobs", "1", "--shard", f"{i}/2", "--metrics", "intrusive"]) == 0
    assert main(["score", "merge", str(tmp_path / "1.csv"), str(tmp_path / "2.csv"),
                 "--out", str(tmp_path / "all.csv")]) == 0
    assert_same_rows(tmp_path / "all.csv", reference)
    assert main(["score", "--data", str(corpus), "--out", str(tmp_path / "x.csv"), "--shard", "3/2"]) == 2
    assert "shard" in capsys.readouterr().err


def test_negative_jobs_are_refused(corpus, tmp_path):
    with pytest.raises(AvseBenchError, match="--jobs -1"):
        score_split(corpus, "dev", tmp_path / "s.csv", jobs=-1, progress=False, metrics="intrusive")


HELD_IN_THE_PARENT = threading.Lock()


def _value_under_the_lock(ref, deg) -> float:
    with HELD_IN_THE_PARENT:
        return 1.0


def test_workers_do_not_inherit_a_lock_the_parent_holds(corpus, tmp_path, monkeypatch):
    """The kind of a hang seen on CI (a worker that took a scene and never answered): a forked worker inherits, held
    forever, any lock that one of the parent's threads (pebble's, BLAS's, onnxruntime's) holds at that instant.
    Here the parent holds one for the whole run; with forked workers every scene timed out."""
    monkeypatch.setitem(functional.FUNCTIONS, "si_sdr", _value_under_the_lock)
    with HELD_IN_THE_PARENT:
        out = score_split(corpus, "dev", tmp_path / "s.csv", jobs=2, progress=False, timeout=20, metrics="si_sdr")
    assert [(r["si_sdr"], r["error"]) for r in read(out)] == [("1.0", "")] * N_SCENES


def _exit_at_start(workers: int) -> None:
    os._exit(3)  # a worker that dies before it takes a task: pebble breaks the whole pool


def _pools_broken_at_start(count: int, made: list):
    """A stand-in for pool._pool whose first `count` pools have workers that die as they start."""
    real = pool._pool

    def broken(workers: int) -> pebble.ProcessPool:
        made.append(workers)
        if len(made) <= count:
            return pebble.ProcessPool(max_workers=workers, context=worker_context(__name__),
                                      initializer=_exit_at_start, initargs=(workers,))
        return real(workers)

    return broken


def test_a_pool_that_breaks_is_replaced_and_the_run_completes(corpus, reference, tmp_path, monkeypatch):
    """A broken pool made every remaining scene an error row ('RuntimeError: Unexpected error within the Pool')."""
    made = []
    monkeypatch.setattr(pool, "_pool", _pools_broken_at_start(1, made))
    out = score_split(corpus, "dev", tmp_path / "s.csv", jobs=2, progress=False, metrics="intrusive")
    assert len(made) == 2
    assert_same_rows(out, reference)


def test_a_pool_that_cannot_run_is_one_clear_error_and_keeps_nothing_false(corpus, tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(pool, "_pool", _pools_broken_at_start(2, made))
    out = tmp_path / "s.csv"
    with pytest.raises(AvseBenchError, match=r"could not start or all died at once .*twice.*if __name__ =="):
        score_split(corpus, "dev", out, jobs=2, progress=False, metrics="intrusive")
    assert len(made) == 2 and read(out) == []  # no error rows pretending to be scores


def test_a_kept_pool_scores_every_split_of_a_block_and_is_stopped_after_it(corpus, reference, tmp_path, monkeypatch):
    """compare keeps one scoring pool for all its score stages (`pool.kept_alive`: a fresh pool per stage paid the
    workers' imports and DNSMOS sessions each time): three calls, one pool, the serial run's rows each time; the pool
    is stopped when the block ends. One more of the kind: a call that fails inside the block does not leave its pool
    for the next (a kill there stops it, as outside a block)."""
    made = []

    def counted(workers: int) -> pebble.ProcessPool:
        made.append(real(workers))
        return made[-1]

    real = pool._pool
    monkeypatch.setattr(pool, "_pool", counted)
    with pool.kept_alive():
        for i in range(3):
            assert_same_rows(score_split(corpus, "dev", tmp_path / f"{i}.csv", jobs=2, progress=False,
                                         metrics="intrusive"), reference)
        assert len(made) == 1 and made[0].active

        def killed(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(pool, "_append", killed)
        with pytest.raises(KeyboardInterrupt):
            score_split(corpus, "dev", tmp_path / "killed.csv", jobs=2, progress=False, metrics="intrusive")
        assert not made[0].active
        monkeypatch.undo()
        monkeypatch.setattr(pool, "_pool", counted)
        assert_same_rows(score_split(corpus, "dev", tmp_path / "after.csv", jobs=2, progress=False,
                                     metrics="intrusive"), reference)
        assert len(made) == 2
    assert not made[1].active
    assert pool._kept is None


def test_every_worker_starts_with_the_dataset_and_the_scoring_modules_imported():
    """A process has one forkserver, preloading what the worker kind that started it named (in a compare run, data
    check's or the synthesiser's): DataLoader and scoring workers then imported torch (1.6 s) or the metric libraries
    (0.9 s) each time one started. Whichever kind starts it now, it preloads `machine.WORKER_MODULES` too."""
    from concurrent.futures import ProcessPoolExecutor

    import worker_probe

    from avse_bench.machine import WORKER_MODULES

    for kind in ("avse_bench.data.check", "avse_bench.data.frames"):
        with ProcessPoolExecutor(1, mp_context=worker_context(kind)) as workers:
            assert workers.submit(worker_probe.loaded, list(WORKER_MODULES)).result() == [True] * len(WORKER_MODULES)


def test_a_script_without_the_main_guard_gets_the_hint(corpus, tmp_path):
    # the real input of that kind: workers start by importing the main script, which calls score_split again
    script = tmp_path / "unguarded.py"
    script.write_text(f"from avse_bench.metrics.scoring import score_split\n"
                      f"score_split({str(corpus)!r}, 'dev', {str(tmp_path / 's.csv')!r}, jobs=1, progress=False,"
                      f" metrics='si_sdr')\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("avse_bench.errors.AvseBenchError: the scoring worker")
    assert 'put the call under `if __name__ == "__main__":`' in run.stderr


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_workers_use_single_threaded_blas():
    """Two workers with a BLAS thread per core oversubscribe 2 cores (1.8x slower per scene, measured)."""
    workers = pool._pool(2)
    try:
        assert workers.schedule(_blas_threads).result() == [1] * len(_blas_threads())
    finally:
        workers.stop()
        workers.join()


def test_a_second_writer_of_the_same_output_is_refused_at_once(corpus, reference, tmp_path, capsys):
    """Issue 18, item 10: two `score` runs on one --out (a re-submitted cluster job) left 23 rows for 12 scenes and
    every later run exited 2. Now the second is refused while the first holds the output, and the lock goes with
    the process that held it (one more of the kind: a writer killed with SIGKILL leaves no stale lock)."""
    out = tmp_path / "scores.csv"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from avse_bench.metrics.scoring import _writer_lock
        with _writer_lock(Path({str(out)!r})):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["score", "--data", str(corpus), "--split", "dev", "--out", str(out), "--jobs", "1",
                     "--metrics", "si_sdr"]) == 2
        err = capsys.readouterr().err
        assert f"{out} is being written by avse-bench score (pid {holder.pid}" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    assert main(["score", "--data", str(corpus), "--split", "dev", "--out", str(out), "--jobs", "1",
                 "--metrics", "si_sdr"]) == 0
    assert [r["scene"] for r in read(out)] == [f"S{i:05d}" for i in range(1, N_SCENES + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.csv.sources.json"]  # no lock


def test_a_file_two_writers_left_is_recovered_by_the_next_run(corpus, reference, tmp_path, capsys):
    """Issue 18, item 10: identical repeats are one row; a scene with rows that differ is scored again."""
    rows = read(reference)
    twice = [*rows, rows[0], {**rows[3], "si_sdr": "0.5"}]  # S00001 repeated as is, S00004 with another value
    out = tmp_path / "noisy.csv"
    scoring.write_scores(out, twice)
    shutil.copy(store.sources_path(reference), store.sources_path(out))  # what a run of the same sources left
    score_split(corpus, "dev", out, jobs=1, progress=False, metrics="intrusive")
    assert_same_rows(out, reference)
    assert "1 scene(s) appear more than once with different rows (e.g. S00004" in capsys.readouterr().err


@pytest.mark.parametrize("error, again", [
    ("pesq_wb: crashed (signal 11)", True), ("timed out after 300 s", True), ("worker exited with status 1", True),
    ("stoi: failed: ValueError: boom", True), ("dnsmos: failed: RuntimeError: onnx", True),
    ("missing enhanced file /x/S1.wav", True), ("silent reference", False), ("pesq_wb: PESQ NoUtterancesError", False),
    ("scored metric by metric after the scene's task crashed (signal 11)", False),
    ("silent reference; dnsmos: timed out after 5 s", True)])
def test_rows_failed_by_the_environment_are_scored_again(error, again):
    """Issue 18, item 10: a re-run retried only rows of missing files; a crash, a time-out or a library's
    exception is the environment's, not the scene's, and is retried. A reason of the data is not."""
    assert scoring.retried(error) is again


def test_a_crashed_row_is_scored_again_by_the_next_run(corpus, reference, tmp_path):
    rows = read(reference)
    out = tmp_path / "noisy.csv"
    crashed = {**rows[2], **dict.fromkeys(METRICS, ""), "error": "pesq_wb: crashed (signal 11)"}
    scoring.write_scores(out, [*rows[:2], crashed, *rows[3:]])
    shutil.copy(store.sources_path(reference), store.sources_path(out))  # what a run of the same sources left
    score_split(corpus, "dev", out, jobs=1, progress=False, metrics="intrusive")
    assert_same_rows(out, reference)


@pytest.fixture()
def read_only(tmp_path):
    """A read-only file system (a tmpfs mounted ro), as corpora and HOME are on clusters; skipped where this
    process may not mount (CI and the development machines run as root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only file system here")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_is_one_line_before_any_work(corpus, read_only, tmp_path, capsys, monkeypatch):
    """Issue 18, item 9: `score --out` on a read-only root ended in a traceback after the pool started; compare
    with a read-only HOME in four chained errors. One more of the kind: `data synth` into a read-only folder."""
    monkeypatch.setattr(pool, "_pool", lambda workers: pytest.fail("a pool was started"))
    assert main(["score", "--data", str(corpus), "--split", "dev", "--out", str(read_only / "scores.csv")]) == 2
    err = capsys.readouterr().err
    assert err == (f"avse-bench: error: cannot write the scores in {read_only}: Read-only file system; choose "
                   "another --out\n")
    monkeypatch.setenv("HOME", str(read_only))
    monkeypatch.delenv("AVSE_BENCH_CACHE", raising=False)
    assert main(["compare", "dcnn_rnn", "--profile", "smoke", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot write the embedded corpus in" in err and "Read-only file system" in err
    assert "set AVSE_BENCH_CACHE to a writable folder" in err
    assert main(["data", "synth", str(read_only / "corpus"), "--train", "1", "--dev", "1"]) == 2
    assert "cannot write the embedded corpus in" in capsys.readouterr().err


def _enhanced(corpus: Path, folder: Path, part: str) -> Path:
    """An enhanced folder whose <scene>.wav are copies of each dev scene's `part` file."""
    folder.mkdir()
    for f in (corpus / "dev" / "scenes").glob(f"*_{part}.wav"):
        shutil.copy(f, folder / f"{f.name.removesuffix(f'_{part}.wav')}.wav")
    return folder


def test_a_score_file_knows_its_sources(corpus, tmp_path, capsys):
    """Issue 25, item 1: `score --enhanced A --out x.csv`, then `--enhanced B --out x.csv` kept A's values (156.5 dB
    against -5.4 dB for B scored alone), exit 0; `--metrics si_sdr` then `stoi,si_sdr` left STOI empty; merge joined
    shards scored with different metrics. One more of the kind: a scene whose enhanced file is rewritten is scored
    again, the others kept."""
    a, b = _enhanced(corpus, tmp_path / "A", "target"), _enhanced(corpus, tmp_path / "B", "mixed")
    out = tmp_path / "x.csv"
    score_split(corpus, "dev", out, enhanced_dir=a, jobs=1, progress=False, metrics="si_sdr")
    assert float(read(out)[0]["si_sdr"]) > 100  # the target scored against itself
    with pytest.raises(AvseBenchError, match=r"x.csv holds rows scored from enhanced '.*/A' \(now '.*/B'\)"):
        score_split(corpus, "dev", out, enhanced_dir=b, jobs=1, progress=False, metrics="si_sdr")
    assert main(["score", "--data", str(corpus), "--split", "dev", "--enhanced", str(b), "--out", str(out)]) == 2
    score_split(corpus, "dev", out, enhanced_dir=a, jobs=1, progress=False, metrics="stoi,si_sdr",
                official_csv=tmp_path / "official.csv")
    assert "the rows lack stoi: those rows are scored again" in capsys.readouterr().err
    rows = read(out)
    assert all(float(r["stoi"]) > 0.99 and float(r["si_sdr"]) > 100 for r in rows)
    with open(tmp_path / "official.csv", newline="") as f:
        assert all(r["stoi"] for r in csv.DictReader(f))  # the official format's STOI column is filled too
    record = json.loads((tmp_path / "x.csv.sources.json").read_text())
    assert record["metrics"] == ["stoi", "si_sdr"] and record["enhanced"] == str(a.resolve())
    assert record["packages"]["pystoi"] and record["track"] == "mono"

    shutil.copy(corpus / "dev" / "scenes" / "S00002_mixed.wav", a / "S00002.wav")  # rewritten since it was scored
    score_split(corpus, "dev", out, enhanced_dir=a, jobs=1, progress=False, metrics="stoi,si_sdr")
    assert "1 scene(s) whose estimate or reference changed" in capsys.readouterr().err
    after = {r["scene"]: r for r in read(out)}
    assert float(after["S00002"]["si_sdr"]) < 30 and after["S00001"] == {r["scene"]: r for r in rows}["S00001"]

    one = score_split(corpus, "dev", tmp_path / "p1.csv", enhanced_dir=b, jobs=1, shard="1/2", progress=False,
                      metrics="si_sdr")
    two = score_split(corpus, "dev", tmp_path / "p2.csv", enhanced_dir=b, jobs=1, shard="2/2", progress=False,
                      metrics="stoi,si_sdr")
    with pytest.raises(AvseBenchError, match=r"p2.csv was scored otherwise than .*p1.csv: metrics \['si_sdr'\]"):
        merge_scores([one, two], tmp_path / "merged.csv")
    two = score_split(corpus, "dev", tmp_path / "p3.csv", enhanced_dir=b, jobs=1, shard="2/2", progress=False,
                      metrics="si_sdr")
    merged = merge_scores([one, two], tmp_path / "merged.csv")
    assert len(read(merged)) == N_SCENES and json.loads((tmp_path / "merged.csv.sources.json").read_text())["shard"] \
        is None
