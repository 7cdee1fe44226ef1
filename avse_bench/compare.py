"""`avse-bench compare`: data -> train -> enhance -> score -> profile -> report, for N systems.

Every stage writes its outputs into the run folder (layout in docs/ARCHITECTURE.md) and, when it finishes, a stamp
`stages/<stage>.json` holding the hash of what it consumed. A re-run skips a stage whose stamp matches; a killed run
resumes, because each stage's own work is resumable too (training from its checkpoint, enhancement and scoring per
scene). Nothing here knows any system by name: everything system-specific comes from the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from avse_bench.data import Preprocessing
from avse_bench.data.loading import LoaderOptions
from avse_bench.enhance import ENHANCED_SUBTYPE, PEAKS, enhance, enhance_variants, read_peaks, run_preprocessing
from avse_bench.errors import AvseBenchError
from avse_bench.io import CACHE_ENV, cache_dir, writable_dir, write_json
from avse_bench.pipeline import (
    AV,
    BLIND_SPLIT,
    CONDITIONS,
    EVAL_SPLIT,
    FINISHED,
    MIXTURE,
    NOISY,
    RUNNING,
    TRAIN_SPLIT,
    stress_metrics,
)
from avse_bench.profiles import get_profile
from avse_bench.weights import state_digest


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, obj)


class Stages:
    """Stage stamps. A stage runs unless its `done` stamp holds the hash of the same inputs. A stage that started on
    the same inputs and was killed is resumed (its outputs kept: the stage's own work resumes per scene or from its
    checkpoint); a stage whose inputs changed starts over, its old outputs removed so none is reused by mistake."""

    def __init__(self, out: Path):
        self.dir = out / "stages"
        self.keys: dict[str, str] = {}  # stage name -> key, of every stage run (or skipped) in this process

    def _stamp(self, name: str, kind: str) -> Path:
        return self.dir / f"{name}.{kind}.json"

    def _hash_in(self, path: Path) -> str | None:
        return json.loads(path.read_text()).get("inputs_hash") if path.exists() else None

    def run(self, name: str, inputs, outputs: list[Path], fn: Callable[[], None], kind: str | None = None) -> str:
        """Run stage `name` unless its inputs are those of its `done` stamp; returns its key (a consumer puts it in
        its own inputs). `kind`: the `stage_code.STAGE_CODE` entry whose code and packages make the output, hashed
        into the key with `inputs`; the stamp records them, the commit and the machine."""
        from avse_bench.stage_code import made_by

        code = made_by(kind or name.split(".")[0])
        key = self.keys[name] = _hash({"inputs": inputs, "made_by": code})
        done, started = self._stamp(name, "done"), self._stamp(name, "started")
        if self._hash_in(done) == key:
            print(f"[compare] {name}: up to date, skipped")
            return key
        if self._hash_in(started) == key:
            print(f"[compare] {name}: resuming")
        else:
            for path in outputs:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            print(f"[compare] {name}: running")
        done.unlink(missing_ok=True)
        _write_json(started, {"inputs_hash": key})
        begin = time.perf_counter()
        fn()
        _write_json(done, {"inputs_hash": key, "seconds": round(time.perf_counter() - begin, 3),
                           "finished": datetime.now(UTC).isoformat(timespec="seconds"), "made_by": code,
                           "git_commit": git_commit(), "machine": _machine()})
        return key


def _machine() -> dict:
    """The machine a stage ran on, for its stamp: host, CPU model and cores, GPU (profiling.hardware)."""
    from avse_bench.profiling.hardware import cpu_model

    return {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


# --- data -------------------------------------------------------------------------------------------------------
def embedded_corpus(spec: dict, seed: int) -> Path:
    """The embedded corpus for `spec` (train/dev counts and durations), generated once and cached by its settings."""
    from avse_bench.data.synth import GENERATOR_VERSION, synthesize

    root = cache_dir() / "corpus" / _hash({**spec, "seed": seed, "generator": GENERATOR_VERSION})
    if (root / "COMPLETE").exists():
        return root  # a read-only cache that holds the corpus is fine
    writable_dir(root.parent, "the embedded corpus", f"set {CACHE_ENV} to a writable folder (default "
                                                     "~/.cache/avse-bench), or pass --data")
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"[compare] writing the embedded corpus ({spec['train']} train + {spec['dev']} dev scenes) to {root}")
    synthesize(tmp, n_train=spec["train"], n_dev=spec["dev"], seed=seed, min_seconds=spec["min_seconds"],
               max_seconds=spec["max_seconds"], progress=True)
    (tmp / "COMPLETE").write_text(json.dumps({**spec, "seed": seed}) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root


def data_fingerprint(root: Path, splits: list[str]) -> str:
    """Cheap identity of a data root: names, sizes and modification times of every file in the splits used."""
    entries = []
    for split in splits:
        for p in sorted((root / split).rglob("*")):
            if p.is_file():
                st = p.stat()
                entries.append((str(p.relative_to(root)), st.st_size, int(st.st_mtime)))
    meta = root / "metadata"
    if meta.is_dir():
        entries += [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sorted(meta.glob("*.json"))]
    return _hash(entries)


# --- provenance ---------------------------------------------------------------------------------------------------
def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not run from a git checkout)"
    return sha.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def build_manifest(systems, profile: str, seed: int, data: dict, pre: Preprocessing, command_line: list[str]):
    from avse_bench.profiling import hardware_info, software_info

    return {
        "command_line": command_line,
        "git_commit": git_commit(),
        "profile": profile,
        "seed": seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "systems": {s.name: {"config": s.config, "recipe": s.recipe(profile), "path": str(s.path)} for s in systems},
        "data": data,
        "preprocessing": {"config": pre.config(), "hash": pre.config_hash()},
        "hardware": hardware_info(),
        "software": software_info(),
    }


# --- the stages ---------------------------------------------------------------------------------------------------
def check_supplied_weights(systems, weights: dict[str, Path]) -> dict[str, tuple]:
    """Before any work: every supplied file names a system of the run, reads safely and fits that system's model.
    Returns {system: (model with the weights, {file, name, sha256, format})}: each file is read once."""
    from avse_bench.weights import model_with_weights

    by_name = {s.name: s for s in systems}
    unknown = [name for name in weights if name not in by_name]
    if unknown:
        raise AvseBenchError(f"--weights names {', '.join(unknown)}, not a system of this run "
                             f"({', '.join(by_name)}); use --weights SYSTEM=PATH")
    return {name: model_with_weights(by_name[name], path) for name, path in weights.items()}


def validate_splits(root: Path, splits: list[str]) -> None:
    """`data check`'s checks on every split the run uses, before any work: raises AvseBenchError naming every broken
    scene and its reason; files in scenes/ that belong to no scene are listed as a warning."""
    from avse_bench.data.check import check_split

    broken = []
    for split in splits:
        report = check_split(root, split, progress=True, sync=False, jobs=0)
        broken += [f"  {split}/{sid}: {'; '.join(msgs)}" for sid, msgs in sorted(report.problems.items())]
        if report.unrecognised:
            names = ", ".join(report.unrecognised[:5]) + (" ..." if len(report.unrecognised) > 5 else "")
            print(f"[compare] warning: {len(report.unrecognised)} file(s) in {root / split / 'scenes'} belong to no "
                  f"scene and are not used: {names}")
    if broken:
        raise AvseBenchError(f"{len(broken)} broken scene(s) in {root}; nothing was trained (fix or remove them, "
                             f"`avse-bench data check {root} --split NAME` shows them):\n" + "\n".join(broken))


def train_under_torchrun(system: str, nproc: int, root: Path, run_dir: Path, profile: str, device: str, seed: int,
                         loader: LoaderOptions, train_split: str, val_split: str, pre: Preprocessing,
                         track: str) -> None:
    """`avse-bench train` under PyTorch's own launcher, `torchrun --standalone --nproc-per-node N` (DDP: NCCL on
    GPU, gloo on CPU), resuming from the run folder's checkpoint when there is one. Raises AvseBenchError when the
    launch fails (the processes' own output is above it)."""
    if nproc > 1 and device != "cpu":
        import torch

        if torch.cuda.is_available() and nproc > torch.cuda.device_count():
            raise AvseBenchError(f"--nproc-per-node {nproc} asks for more processes than the "
                                 f"{torch.cuda.device_count()} CUDA device(s) here; use at most that many")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "avse_bench.cli", "train", system, "--data", str(root), "--out", str(run_dir), "--profile", profile,
           "--device", device, "--seed", str(seed), "--split", train_split, "--val-split", val_split,
           "--frame-cache-mb", str(loader.frame_cache_mb), "--frame-store-gb", str(loader.frame_store_gb),
           "--frame-size", str(pre.size), "--track", track] + ([] if pre.equalize else ["--no-equalize"])
    cmd += ["--centre-crop"] if pre.crop == "centre" else []
    cmd += ["--workers", str(loader.workers)] if loader.workers is not None else []
    cmd += ["--frame-store", loader.frame_store] if loader.frame_store is not None else []
    cmd += ["--resume"] if (run_dir / "checkpoint.pt").exists() else []
    print(f"[compare] {' '.join(cmd[2:])}", flush=True)
    status = subprocess.run(cmd).returncode
    if status != 0:
        raise AvseBenchError(f"training {system} under torchrun ({nproc} processes) ended with exit status {status} "
                             "(its output is above); re-run the same command to resume from the last checkpoint")


def combine_scores(out_csv: Path, score_files: dict[tuple, Path], labels: tuple[str, ...] = ("system", "condition")
                   ) -> None:
    """One CSV of every score file, each keyed by a tuple of `labels` values (e.g. (system, condition)), which
    become the first columns."""
    import pandas as pd

    frames = []
    for key, path in score_files.items():
        df = pd.read_csv(path, dtype={"scene": str, "masker": str, "error": str})
        for label, value in reversed(list(zip(labels, key, strict=True))):
            df.insert(0, label, value)
        frames.append(df)
    pd.concat(frames, ignore_index=True).to_csv(out_csv, index=False)


def combine_peaks(out_csv: Path, enhanced_dirs: dict[tuple[str, str], Path]) -> None:
    """One CSV (system, condition, scene, peak) of the peaks recorded beside each (system, condition)'s enhanced wavs
    (`enhance.read_peaks`: one per scene)."""
    import pandas as pd

    rows = [{"system": system, "condition": condition, "scene": scene, "peak": peak}
            for (system, condition), folder in enhanced_dirs.items()
            for scene, peak in sorted(read_peaks(folder).items())]
    pd.DataFrame(rows, columns=["system", "condition", "scene", "peak"]).to_csv(out_csv, index=False)


def stress_stage(out: Path, stages: Stages, system, conditions, key_inputs: dict, score, enhance_all) -> dict:
    """The visual-stress stage of one system: every condition enhanced in one pass over the dev split (each scene
    decoded once, `enhance_all(variants)`) into enhanced/<system>/stress/<key>/<label>/, then each scored by
    `score(enhanced_dir, csv)`. `key` hashes what the files depend on (data, preprocessing, weights, seed): a new
    condition reuses the others' files, changed weights never do. Returns {(system, label, name, severity): csv}."""
    key = _hash(key_inputs)
    root = out / "enhanced" / system.name / "stress"
    for stale in (root.iterdir() if root.is_dir() else ()):
        if stale.name != key:
            shutil.rmtree(stale)
    dirs = {c: root / key / c.folder for c in conditions}
    enhanced_key = stages.run(f"stress.enhance.{system.name}", {**key_inputs, "conditions": [c.label for c in
                                                                                          conditions]}, [],
                              lambda: enhance_all({d: c for c, d in dirs.items()}), kind="enhance")
    files = {}
    for c, enhanced in dirs.items():
        csv = out / "scores" / "stress" / system.name / f"{c.folder}.csv"
        stages.run(f"score.{system.name}.stress.{c.label}", {"key": key, "condition": c.label,
                                                              "enhanced": enhanced_key}, [csv],
                   lambda enhanced=enhanced, csv=csv: score(enhanced, csv))
        files[system.name, c.label, c.name, c.severity] = csv
    return files


def install_weights(system, model, info: dict, run_dir: Path, profile: str, pre: Preprocessing) -> None:
    """The training stage of a system with supplied weights: `model` (the system's model with them loaded) saved as
    the run's `model.pt`, and a `train_summary.json` that says so (with the file's name and sha256, `info`) and
    records the preprocessing enhancement will use."""
    from avse_bench.train import atomic_save

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(model.state_dict(), run_dir / "model.pt")
    _write_json(run_dir / "train_summary.json", {
        "system": system.name, "profile": profile, "supplied_weights": info,
        "preprocessing": pre.config(), "preprocessing_hash": pre.config_hash()})
    print(f"[compare] {system.name}: not trained in this run: weights supplied ({info['name']}, {info['format']}, "
          f"sha256 {info['sha256'][:12]}...)")


def check_run_preprocessing(run_dir: Path, pre: Preprocessing) -> None:
    """Raises AvseBenchError unless the training run in `run_dir` recorded the run's preprocessing: enhancement
    uses the recorded one, so a mismatch would enhance and report frames the manifest does not state."""
    recorded = run_preprocessing(run_dir)  # the reader enhancement uses
    if recorded != pre:
        raise AvseBenchError(f"{run_dir / 'train_summary.json'} records preprocessing {recorded.config()} "
                             f"(hash {recorded.config_hash()}), not the run's {pre.config()} "
                             f"(hash {pre.config_hash()}); remove {run_dir} and re-run")


@dataclass
class Run:
    """Everything the stages of one compare run read: where it writes (`out`, `stages`), what it compares
    (`systems`, their code hashes, supplied weights), on what (`root`, `track`, `data`, the `blind` split or None),
    with which shared settings (profile, preprocessing and the rule that chose it, seed, device, loader, metrics,
    stress conditions, processes per node), and the manifest it wrote."""

    out: Path
    stages: Stages
    systems: list
    profile: str
    root: Path
    track: str
    data: dict
    blind: str | None
    pre: Preprocessing
    pre_rule: str
    seed: int
    device: str
    loader: LoaderOptions
    metrics: tuple[str, ...]
    stress: list | None
    nproc_per_node: int
    supplied: dict
    manifest: dict
    codes: dict = field(default_factory=dict)
    made: dict = field(default_factory=dict)  # {system: made_inputs}, once its weights are final

    @property
    def base_inputs(self) -> dict:
        """What every stage's output depends on: the data, the track, the frames, the seed, the profile."""
        return {"data": self.data["fingerprint"], "track": self.track, "preprocessing": self.pre.config_hash(),
                "seed": self.seed, "profile": self.profile}

    def run_dir(self, system) -> Path:
        return self.out / "runs" / system.name

    def score(self, split: str, csv: Path, enhanced: Path | None = None, metrics=None) -> None:
        from avse_bench.metrics.scoring import score_split

        score_split(self.root, split, out_csv=csv, enhanced_dir=enhanced, progress=True,
                    metrics=metrics or self.metrics, track=self.track)


def open_run(system_names: list[str], data_root: Path | None, profile: str, out_dir: Path | None, device: str,
             seed: int, command_line: list[str], loader: LoaderOptions | None, nproc_per_node: int,
             weights: dict | None, preprocessing: dict | None, stress, metrics: str | None,
             track: str | None) -> Run:
    """Check every input before any work (systems, weights, data and its track against the systems' channels, the
    metrics), choose the run's preprocessing, write the manifest; returns the Run."""
    from avse_bench.data import load_split
    from avse_bench.data.layout import require_channels
    from avse_bench.metrics.dnsmos import DNSMOS_METRICS
    from avse_bench.metrics.scoring import parse_metrics
    from avse_bench.profiles import choose_preprocessing
    from avse_bench.systems import load
    from avse_bench.train import resolve_device

    if len(set(system_names)) != len(system_names):
        raise AvseBenchError(f"a system is named twice: {' '.join(system_names)}")
    if nproc_per_node < 1:
        raise AvseBenchError(f"--nproc-per-node must be 1 or more (got {nproc_per_node})")
    resolve_device(device)  # before any work: 'cuda' without a CUDA device is one line, not a launched torchrun
    settings = get_profile(profile)
    systems = [load(name) for name in system_names]  # fail fast on an unknown name
    pre, pre_rule = choose_preprocessing(systems, profile, **(preprocessing or {}))
    supplied = check_supplied_weights(systems, {name: Path(path) for name, path in (weights or {}).items()})
    out = writable_dir(Path(out_dir) if out_dir is not None else Path("reports") / profile, "the run's outputs",
                       "choose another --out")

    # data: a real AVSEC download, or the embedded corpus (generated once, cached)
    synthetic = data_root is None
    root = embedded_corpus(settings["corpus"], seed) if synthetic else Path(data_root)
    eval_scenes = load_split(root, EVAL_SPLIT, track)
    track, layout = eval_scenes[0].track, eval_scenes[0].layout
    for s in systems:
        require_channels(eval_scenes, s.channels, f"system {s.name}")
    channels = eval_scenes[0].channels
    chosen = parse_metrics(metrics, channels=channels)  # fail fast on a bad list or a missing package
    if stress:  # the stress conditions' metrics too, before any training
        parse_metrics(",".join(stress_metrics(track)), channels=channels)
    n_train = len(load_split(root, TRAIN_SPLIT, track))
    blind_scenes = load_split(root, BLIND_SPLIT, track) if (root / BLIND_SPLIT).is_dir() else []
    blind = BLIND_SPLIT if blind_scenes and all(s.reference is None for s in blind_scenes) else None
    if blind and not set(chosen) & set(DNSMOS_METRICS):
        print(f"[compare] {root / blind}: no clean targets, and --metrics has no DNSMOS metric: not scored blind")
        blind = None
    data = {"root": str(root), "synthetic": synthetic, "layout": layout, "track": track,
            "train_split": TRAIN_SPLIT, "eval_split": EVAL_SPLIT, "n_train": n_train, "n_eval": len(eval_scenes),
            "fingerprint": data_fingerprint(root, [TRAIN_SPLIT, EVAL_SPLIT])}
    if blind:
        data.update(blind_split=blind, n_blind=len(blind_scenes), blind_fingerprint=data_fingerprint(root, [blind]))
    if synthetic:
        data["corpus"] = {**settings["corpus"], "seed": seed}
    manifest = build_manifest(systems, profile, seed, data, pre, command_line)
    manifest["preprocessing"]["chosen_by"] = pre_rule
    manifest["supplied_weights"] = {name: info for name, (_, info) in supplied.items()}
    manifest["metrics"] = list(chosen)
    manifest["status"] = RUNNING  # until the last stage: `report` refuses a run in this state
    if stress:
        manifest["stress"] = {"conditions": [c.label for c in stress], "seed": seed,
                              "metrics": list(stress_metrics(track))}
    _write_json(out / "manifest.json", manifest)
    return Run(out=out, stages=Stages(out), systems=systems, profile=profile, root=root, track=track, data=data,
               blind=blind, pre=pre, pre_rule=pre_rule, seed=seed, device=device, loader=loader or LoaderOptions(),
               metrics=chosen, stress=stress, nproc_per_node=nproc_per_node, supplied=supplied, manifest=manifest,
               codes={s.name: s.code_hash() for s in systems})  # what each model is made by: read once


def train_stage(run: Run) -> None:
    """Each system trained on the train split (or its supplied weights installed), under torchrun when asked."""
    from avse_bench.train import train

    for s in run.systems:
        run_dir = run.run_dir(s)
        code = {"system": s.config, "code": run.codes[s.name]}
        inputs = {**run.base_inputs, **code, "recipe": s.recipe(run.profile), "world_size": run.nproc_per_node}
        if s.name in run.supplied:
            model, info = run.supplied[s.name]
            inputs = {**run.base_inputs, **code, "supplied_weights": info["sha256"]}
            work = lambda s=s, run_dir=run_dir, model=model, info=info: install_weights(  # noqa: E731
                s, model, info, run_dir, run.profile, run.pre)
        elif run.nproc_per_node > 1:
            work = lambda s=s, run_dir=run_dir: train_under_torchrun(  # noqa: E731
                s.name, run.nproc_per_node, run.root, run_dir, run.profile, run.device, run.seed, run.loader,
                TRAIN_SPLIT, EVAL_SPLIT, run.pre, run.track)
        else:
            work = lambda s=s, run_dir=run_dir: train(  # noqa: E731
                s, data_root=run.root, out_dir=run_dir, profile=run.profile, device=run.device, seed=run.seed,
                loader=run.loader, resume=(run_dir / "checkpoint.pt").exists(), train_split=TRAIN_SPLIT,
                val_split=EVAL_SPLIT, preprocessing=run.pre, track=run.track)
        run.stages.run(f"train.{s.name}", inputs, [run_dir], work)
        check_run_preprocessing(run_dir, run.pre)


def made_inputs(run: Run, system) -> dict:
    """What an enhanced file of `system` depends on: the frames, the weights (their tensors, not the file's bytes),
    the code, the written format. Read once per run (after training: the weights are final by then)."""
    if system.name not in run.made:
        weights = state_digest(run.run_dir(system) / "model.pt")
        run.made[system.name] = {**run.base_inputs, "weights": weights, "code": run.codes[system.name],
                                 "wav": ENHANCED_SUBTYPE}
    return run.made[system.name]


def enhance_and_score_stage(run: Run) -> None:
    """The mixture scored; each system's dev outputs (audio-visual and blank video), stress conditions and blind
    split enhanced and scored; the combined scores.csv, peaks.csv, stress.csv and blind.csv written."""
    score_inputs = {"metrics": list(run.metrics)}
    score_files = {(NOISY, MIXTURE): run.out / "scores" / f"{NOISY}.csv"}
    run.stages.run("score.noisy", {**run.base_inputs, **score_inputs}, [score_files[NOISY, MIXTURE]],
                   lambda: run.score(EVAL_SPLIT, score_files[NOISY, MIXTURE]))
    stress_files, blind_files, enhanced_dirs = {}, {}, {}
    for s in run.systems:
        made = made_inputs(run, s)
        for condition, blank in CONDITIONS.items():
            enhanced = run.out / "enhanced" / s.name / condition
            csv = score_files[s.name, condition] = run.out / "scores" / f"{s.name}.{condition}.csv"
            enhanced_dirs[s.name, condition] = enhanced
            inputs = {**made, "condition": condition}
            enhanced_key = run.stages.run(f"enhance.{s.name}.{condition}", inputs, [enhanced],
                           lambda s=s, enhanced=enhanced, blank=blank: enhance(
                               s, run_dir=run.run_dir(s), data_root=run.root, split=EVAL_SPLIT, out_dir=enhanced,
                               device=run.device, blank_video=blank, loader=run.loader, track=run.track))
            run.stages.run(f"score.{s.name}.{condition}", {**inputs, **score_inputs, "enhanced": enhanced_key}, [csv],
                           lambda enhanced=enhanced, csv=csv: run.score(EVAL_SPLIT, csv, enhanced))
        if run.stress:
            stress_files.update(stress_stage(
                run.out, run.stages, s, run.stress, made,
                score=lambda enhanced, csv: run.score(EVAL_SPLIT, csv, enhanced, stress_metrics(run.track)),
                enhance_all=lambda variants, s=s: enhance_variants(
                    s, run.run_dir(s), run.root, {d: c.apply_seeded(run.seed) for d, c in variants.items()},
                    split=EVAL_SPLIT, device=run.device, loader=run.loader, track=run.track)))
        if run.blind:
            enhanced = run.out / "enhanced" / s.name / run.blind
            csv = blind_files[s.name, AV] = run.out / "scores" / run.blind / f"{s.name}.{AV}.csv"
            inputs = {**made, "blind": run.data["blind_fingerprint"]}
            enhanced_key = run.stages.run(f"enhance.{s.name}.{run.blind}", inputs, [enhanced],
                                          lambda s=s, enhanced=enhanced: enhance(
                s, run_dir=run.run_dir(s), data_root=run.root, split=run.blind, out_dir=enhanced, device=run.device,
                loader=run.loader, track=run.track))
            run.stages.run(f"score.{s.name}.{run.blind}", {**inputs, **score_inputs, "enhanced": enhanced_key},
                           [csv],
                           lambda enhanced=enhanced, csv=csv: run.score(run.blind, csv, enhanced))
    combine_scores(run.out / "scores.csv", score_files)
    combine_peaks(run.out / PEAKS, enhanced_dirs)
    if run.stress:
        combine_scores(run.out / "stress.csv", stress_files, ("system", "condition", "stress", "severity"))
    if run.blind:
        noisy_csv = blind_files[NOISY, MIXTURE] = run.out / "scores" / run.blind / f"{NOISY}.csv"
        run.stages.run(f"score.noisy.{run.blind}", {"blind": run.data["blind_fingerprint"], "track": run.track,
                                                    **score_inputs}, [noisy_csv],
                       lambda: run.score(run.blind, noisy_csv))
        combine_scores(run.out / "blind.csv", blind_files)


def _device_identity(device: str) -> dict:
    """What the profile's figures are measured on: the resolved device, the CPU model, the GPU's name."""
    import torch

    from avse_bench.profiling.hardware import cpu_model
    from avse_bench.train import resolve_device

    resolved = resolve_device(device)
    gpu = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else None
    return {"device": str(resolved), "cpu": cpu_model(), "gpu": gpu}


def profile_stage(run: Run) -> None:
    """Each system's cost figures at the profile's reference input (the run's frame size, the system's channels)."""
    from avse_bench.profiling import profile_system

    profiles = {}
    for s in run.systems:
        path = run.out / "profiles" / f"{s.name}.json"
        recipe = s.recipe(run.profile)
        options = {**get_profile(run.profile)["profiling"], "size": run.pre.size,
                   "train_batch": recipe["batch_size"],
                   "train_seconds": round(float(recipe["crop_seconds"]) * 25) / 25}  # whole frames, as the crops
        inputs = {"system": s.config, "code": run.codes[s.name], "device": _device_identity(run.device), **options}
        run.stages.run(f"profile.{s.name}", inputs, [path], lambda s=s, path=path, options=options: _write_json(
            path, profile_system(s, device=run.device, **options)))
        profiles[s.name] = json.loads(path.read_text())
    _write_json(run.out / "profile.json", profiles)


def listen_stage(run: Run, scene_ids: list[str] | None) -> None:
    """The listening material of report.html (RUN/listen/: `report.listen.build_listening`), made again whenever an
    output, the scenes asked for or the way it is made changes."""
    from avse_bench.report.listen import LISTEN, LISTEN_VERSION, build_listening

    inputs = {"outputs": {s.name: made_inputs(run, s) for s in run.systems}, "scenes": scene_ids,
              "stress": [c.label for c in run.stress or []], "blind": run.data.get("blind_fingerprint"),
              "version": LISTEN_VERSION,  # and the scores the cards show: every score stage's key
              "scores": {name: key for name, key in run.stages.keys.items() if name.startswith("score.")}}
    run.stages.run("listen", inputs, [run.out / LISTEN], lambda: build_listening(run.out, scene_ids,
                                                                               unfinished_ok=True))


def compare(system_names: list[str], data_root: Path | None = None, profile: str = "quick",
            out_dir: Path | None = None, device: str = "auto", seed: int = 0,
            command_line: list[str] | None = None, loader: LoaderOptions | None = None,
            nproc_per_node: int = 1, weights: dict[str, Path] | None = None, preprocessing: dict | None = None,
            stress=None, metrics: str | None = None, track: str | None = None,
            listen_scenes: list[str] | None = None) -> Path:
    """Run every stage for `system_names` and render the report; returns the output folder.

    `weights`: {system name: weights file} for systems not to train here (their own checkpoints, plain state dicts
    or PyTorch Lightning checkpoints; see avse_bench/weights.py); checked before any work. `preprocessing`:
    options laid over the run's shared preprocessing ({"frame_size", "equalize", "crop"}; the base is the systems'
    declared one, else the profile's: `profiles.choose_preprocessing`, whose rule the manifest and sheet state).

    `loader`: DataLoader workers and frame budgets for training and enhancement (results do not depend on them).
    `nproc_per_node` > 1 trains each system under torchrun with that many processes (the world size is part of the
    training stage's inputs and is stated in the sheet). `stress`: visual-stress conditions (`Stress` list, see
    avse_bench/data/stress.py) under which the dev split is also enhanced and scored (`stress_metrics`).
    `metrics`: the `--metrics` of scoring (None: the track's metrics whose packages are installed). `track`: of
    AVSEC-4 data, "binaural" (the default there) or "mono"; every system's channels must match it. When the data
    root has an `eval` split without targets, it is enhanced (audio-visual) and scored blind (DNSMOS only).
    `listen_scenes`: the dev scenes report.html's listening cards show (None: chosen by `report.listen`). Raises
    AvseBenchError for bad input.
    """
    from avse_bench.report import render_report

    run = open_run(system_names, data_root, profile, out_dir, device, seed, command_line or [], loader,
                   nproc_per_node, weights, preprocessing, stress, metrics, track)
    run.stages.run("check", {"data": run.data["fingerprint"]}, [],
                   lambda: validate_splits(run.root, [TRAIN_SPLIT, EVAL_SPLIT]))
    train_stage(run)
    enhance_and_score_stage(run)
    listen_stage(run, listen_scenes)
    profile_stage(run)
    run.manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    run.manifest["status"] = FINISHED
    _write_json(run.out / "manifest.json", run.manifest)
    render_report(run.out)
    print(f"[compare] done: {run.out / 'sheet.md'}")
    return run.out
