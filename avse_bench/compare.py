"""`avse-bench compare`: data -> train -> enhance -> score -> listen -> profile -> report, for N systems.

The flow of one run, over one `RunConfig` (avse_bench/run_config.py) and the `Run` it opens. Every stage writes its
outputs into the run folder (layout in docs/ARCHITECTURE.md) and, when it finishes, a stamp
`stages/<stage>.done.json` holding its key (`avse_bench.stages`): what it reads of the run, declared once in
`STAGE_READS`, the keys of the stages it consumes, and the code and packages that make it (`stage_code`). A re-run
skips a stage whose key is unchanged; a killed run resumes, because each stage's own work is resumable too
(training from its checkpoint, enhancement and scoring per scene). The manifest says "running" until the last stage
is done. Nothing here knows any system by name: everything system-specific comes from the registry.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from avse_bench.data import Preprocessing
from avse_bench.enhance import ENHANCED_SUBTYPE, PEAKS, enhance, enhance_variants, read_peaks, run_preprocessing
from avse_bench.errors import AvseBenchError
from avse_bench.io import CACHE_ENV, cache_dir, json_hash, writable_dir
from avse_bench.pipeline import (
    AV,
    BLIND_SPLIT,
    CONDITIONS,
    EVAL_SPLIT,
    FINISHED,
    MANIFEST,
    MIXTURE,
    NOISY,
    RUNNING,
    TRAIN_SPLIT,
    stress_metrics,
)
from avse_bench.profiles import get_profile
from avse_bench.provenance import build_manifest, data_fingerprint
from avse_bench.run_config import RunConfig
from avse_bench.stages import Stages, write_json_file
from avse_bench.weights import state_digest

# What each kind of stage reads of the run (`Run.reads`); its key holds these facts and nothing is added by hand.
# Per system, a stage also reads the system's own declaration, code and weights (`Run.system_inputs`), and a
# consumer the key of the stage it consumes.
STAGE_READS = {
    "check": ("data",),
    "train": ("data", "track", "preprocessing", "seed", "profile", "world_size"),
    "enhance": ("data", "track", "preprocessing", "seed", "profile"),
    "score": ("data", "track", "metrics"),
    "stress": ("data", "track", "preprocessing", "seed", "stress"),
    "stress_score": ("data", "track", "stress_metrics"),  # one condition's files: a new condition re-scores only it
    "blind": ("blind", "track", "preprocessing", "seed", "profile", "metrics"),
    "listen": ("data", "track", "stress", "blind", "listen_scenes"),
    "profile": ("profile", "frame_size", "device"),
}


# --- data -------------------------------------------------------------------------------------------------------
def embedded_corpus(spec: dict, seed: int) -> Path:
    """The embedded corpus for `spec` (train/dev counts and durations), generated once and cached by its settings."""
    from avse_bench.data.synth import GENERATOR_VERSION, synthesize

    root = cache_dir() / "corpus" / json_hash({**spec, "seed": seed, "generator": GENERATOR_VERSION})
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


def validate_splits(root: Path, splits: list[str], track: str | None = None) -> None:
    """`data check`'s checks on every split the run uses, before any work: raises AvseBenchError naming every broken
    scene and its reason; files in scenes/ that belong to no scene are listed as a warning."""
    from avse_bench.data.check import check_split

    broken = []
    for split in splits:
        report = check_split(root, split, progress=True, sync=False, jobs=0, track=track)
        broken += [f"  {split}/{sid}: {'; '.join(msgs)}" for sid, msgs in sorted(report.problems.items())]
        if report.unrecognised:
            names = ", ".join(report.unrecognised[:5]) + (" ..." if len(report.unrecognised) > 5 else "")
            print(f"[compare] warning: {len(report.unrecognised)} file(s) in {root / split / 'scenes'} belong to no "
                  f"scene and are not used: {names}")
    if broken:
        raise AvseBenchError(f"{len(broken)} broken scene(s) in {root}; nothing was trained (fix or remove them, "
                             f"`avse-bench data check {root} --split NAME` shows them):\n" + "\n".join(broken))


# --- the run ------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """An opened compare run: its configuration (`config`), where it writes (`out`, `stages`), what it compares
    (`systems`, their code hashes, supplied weights), on what (`root`, `track`, `data`, the `blind` split or None),
    the preprocessing chosen and its rule, the metrics and stress conditions resolved, and the manifest it wrote."""

    config: RunConfig
    out: Path
    stages: Stages
    systems: list
    root: Path
    track: str
    data: dict
    blind: str | None
    pre: Preprocessing
    metrics: tuple[str, ...]
    stress: list | None
    supplied: dict
    manifest: dict
    codes: dict = field(default_factory=dict)
    made: dict = field(default_factory=dict)  # {system: made_inputs}, once its weights are final

    @functools.cached_property
    def facts(self) -> dict:
        """Every fact of the run a stage may read (`STAGE_READS` names them); gathered once per run (the device's
        identity reads the CPU model and imports torch)."""
        return {"data": self.data["fingerprint"], "track": self.track, "preprocessing": self.pre.config_hash(),
                "frame_size": self.pre.size, "seed": self.config.seed, "profile": self.config.profile,
                "world_size": self.config.nproc_per_node, "metrics": list(self.metrics),
                "stress": [c.label for c in self.stress or []], "stress_metrics": list(stress_metrics(self.track)),
                "blind": self.data.get("blind_fingerprint"), "listen_scenes": self.config.listen_scenes,
                "device": _device_identity(self.config.device)}

    def reads(self, kind: str) -> dict:
        """What a stage of `kind` reads of the run, as its declaration in `STAGE_READS` says."""
        facts = self.facts
        return {name: facts[name] for name in STAGE_READS[kind]}

    def system_inputs(self, system) -> dict:
        """What a system's stages read of the system itself: the parts of its system.toml that change the model or
        its run (`System.model_inputs`; not its [sheet] text) and the code its model is made by."""
        return {"system": system.model_inputs(), "code": self.codes[system.name]}

    def run_dir(self, system) -> Path:
        return self.out / "runs" / system.name

    def score(self, split: str, csv: Path, enhanced: Path | None = None, metrics=None) -> None:
        from avse_bench.metrics.scoring import score_split

        score_split(self.root, split, out_csv=csv, enhanced_dir=enhanced, progress=True,
                    metrics=metrics or self.metrics, track=self.track)

    def enhance(self, system, split: str, out_dir: Path, blank_video: bool = False) -> None:
        enhance(system, run_dir=self.run_dir(system), data_root=self.root, split=split, out_dir=out_dir,
                device=self.config.device, blank_video=blank_video, loader=self.config.loader, track=self.track)


def open_run(config: RunConfig) -> Run:
    """Check every input before any work (systems, weights, data and its track against the systems' channels, the
    metrics, the stress conditions), choose the run's preprocessing, write the manifest ("running"); returns the
    Run. AvseBenchError for bad input."""
    from avse_bench.data import load_split
    from avse_bench.data.layout import require_channels
    from avse_bench.data.stress import parse_stress
    from avse_bench.metrics.dnsmos import DNSMOS_METRICS
    from avse_bench.metrics.scoring import parse_metrics
    from avse_bench.profiles import choose_preprocessing
    from avse_bench.systems import load
    from avse_bench.train import resolve_device

    resolve_device(config.device)  # before any work: 'cuda' without a CUDA device is one line, not a torchrun
    settings = get_profile(config.profile)
    systems = [load(name).for_profile(config.profile) for name in config.systems]  # fail fast on an unknown name
    pre, pre_rule = choose_preprocessing(systems, config.profile, **config.frames.given())
    stress = parse_stress(list(config.stress)) if config.stress else None
    supplied = check_supplied_weights(systems, {name: Path(path) for name, path in config.weights})
    out = writable_dir(config.out_dir if config.out_dir is not None else Path("reports") / config.profile,
                       "the run's outputs", "choose another --out")

    # data: a real AVSEC download, or the embedded corpus (generated once, cached)
    synthetic = config.data_root is None
    root = embedded_corpus(settings["corpus"], config.seed) if synthetic else config.data_root
    eval_scenes = load_split(root, EVAL_SPLIT, config.track)
    track, layout = eval_scenes[0].track, eval_scenes[0].layout
    for s in systems:
        require_channels(eval_scenes, s.channels, f"system {s.name}")
    chosen = parse_metrics(config.metrics, track=track)  # fail fast on a bad list or a missing package
    if stress:  # the stress conditions' metrics too, before any training
        parse_metrics(",".join(stress_metrics(track)), track=track)
    train_scenes = load_split(root, TRAIN_SPLIT, track)
    pre.require_sources([s.video for s in (*train_scenes, *eval_scenes)])  # lip crops, when the frames read them
    n_train = len(train_scenes)
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
        data["corpus"] = {**settings["corpus"], "seed": config.seed}
    if len(systems) > 1 and "declared by" in pre_rule:
        print(f"[compare] frames for every system of this run: {pre.config()}, {pre_rule}")
    manifest = build_manifest(systems, config, data, pre)
    manifest["preprocessing"]["chosen_by"] = pre_rule
    manifest["supplied_weights"] = {name: info for name, (_, info) in supplied.items()}
    manifest["metrics"] = list(chosen)
    manifest["status"] = RUNNING  # until the last stage: `report` refuses a run in this state
    if stress:
        manifest["stress"] = {"conditions": [c.label for c in stress], "seed": config.seed,
                              "metrics": list(stress_metrics(track))}
    write_json_file(out / MANIFEST, manifest)
    return Run(config=config, out=out, stages=Stages(out), systems=systems, root=root, track=track, data=data,
               blind=blind, pre=pre, metrics=chosen, stress=stress, supplied=supplied, manifest=manifest,
               codes={s.name: s.code_hash() for s in systems})  # what each model is made by: read once


# --- training -----------------------------------------------------------------------------------------------------
def train_under_torchrun(system: str, run: Run, run_dir: Path) -> None:
    """`avse-bench train` under PyTorch's own launcher, `torchrun --standalone --nproc-per-node N` (DDP: NCCL on
    GPU, gloo on CPU), resuming from the run folder's checkpoint when there is one. The children read the run as
    one file, its manifest (`train --run-manifest`: data, track, preprocessing, seed, profile, device, loading).
    Raises AvseBenchError when the launch fails (the processes' own output is above it)."""
    nproc, device = run.config.nproc_per_node, run.config.device
    if nproc > 1 and device != "cpu":
        import torch

        if torch.cuda.is_available() and nproc > torch.cuda.device_count():
            raise AvseBenchError(f"--nproc-per-node {nproc} asks for more processes than the "
                                 f"{torch.cuda.device_count()} CUDA device(s) here; use at most that many")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "avse_bench.cli", "train", system, "--run-manifest", str(run.out / MANIFEST), "--out", str(run_dir)]
    cmd += ["--resume"] if (run_dir / "checkpoint.pt").exists() else []
    print(f"[compare] {' '.join(cmd[2:])}", flush=True)
    status = subprocess.run(cmd).returncode
    if status != 0:
        raise AvseBenchError(f"training {system} under torchrun ({nproc} processes) ended with exit status {status} "
                             "(its output is above); re-run the same command to resume from the last checkpoint")


def install_weights(system, model, info: dict, run_dir: Path, profile: str, pre: Preprocessing) -> None:
    """The training stage of a system with supplied weights: `model` (the system's model with them loaded) saved as
    the run's `model.pt`, and a `train_summary.json` that says so (with the file's name and sha256, `info`) and
    records the preprocessing enhancement will use."""
    from avse_bench.train import atomic_save

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(model.state_dict(), run_dir / "model.pt")
    write_json_file(run_dir / "train_summary.json", {
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


def train_stage(run: Run) -> None:
    """Each system trained on the train split (or its supplied weights installed), under torchrun when asked."""
    from avse_bench.train import train

    config = run.config
    for s in run.systems:
        run_dir = run.run_dir(s)
        inputs = {**run.reads("train"), **run.system_inputs(s), "recipe": s.recipe(config.profile)}
        if s.name in run.supplied:
            model, info = run.supplied[s.name]
            inputs = {**run.reads("train"), **run.system_inputs(s), "supplied_weights": info["sha256"]}
            work = lambda s=s, run_dir=run_dir, model=model, info=info: install_weights(  # noqa: E731
                s, model, info, run_dir, config.profile, run.pre)
        elif config.nproc_per_node > 1:
            work = lambda s=s, run_dir=run_dir: train_under_torchrun(s.name, run, run_dir)  # noqa: E731
        else:
            work = lambda s=s, run_dir=run_dir: train(  # noqa: E731
                s, data_root=run.root, out_dir=run_dir, profile=config.profile, device=config.device,
                seed=config.seed, loader=config.loader, resume=(run_dir / "checkpoint.pt").exists(),
                train_split=TRAIN_SPLIT, val_split=EVAL_SPLIT, preprocessing=run.pre, track=run.track)
        run.stages.run(f"train.{s.name}", inputs, [run_dir], work)
        check_run_preprocessing(run_dir, run.pre)


# --- enhancement and scoring --------------------------------------------------------------------------------------
def made_inputs(run: Run, system) -> dict:
    """What an enhanced file of `system` depends on: what enhancement reads of the run, the weights (their tensors,
    not the file's bytes), the code, the written format. Read once per run (after training: the weights are final
    by then)."""
    if system.name not in run.made:
        weights = state_digest(run.run_dir(system) / "model.pt")
        run.made[system.name] = {**run.reads("enhance"), **run.system_inputs(system), "weights": weights,
                                 "wav": ENHANCED_SUBTYPE}
    return run.made[system.name]


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


def stress_stage(run: Run, system) -> dict:
    """The visual-stress stage of one system: every condition enhanced in one pass over the dev split (each scene
    decoded once) into enhanced/<system>/stress/<key>/<label>/, then each scored with the track's stress metrics.
    `key` hashes what the files depend on (`made_inputs`): a new condition reuses the others' files, changed
    weights never do; a condition's score stage reads that key and its own label, so adding a condition scores
    only it. Returns {(system, label, name, severity): csv}."""
    made = made_inputs(run, system)
    key = json_hash(made)
    root = run.out / "enhanced" / system.name / "stress"
    for stale in (root.iterdir() if root.is_dir() else ()):
        if stale.name != key:
            shutil.rmtree(stale)
    dirs = {c: root / key / c.folder for c in run.stress}
    variants = {d: c.apply_seeded(run.config.seed) for c, d in dirs.items()}
    run.stages.run(
        f"stress.enhance.{system.name}", {**made, **run.reads("stress")}, [],
        lambda: enhance_variants(system, run.run_dir(system), run.root, variants, split=EVAL_SPLIT,
                                 device=run.config.device, loader=run.config.loader, track=run.track),
        kind="enhance")
    files = {}
    for c, enhanced in dirs.items():
        csv = run.out / "scores" / "stress" / system.name / f"{c.folder}.csv"
        run.stages.run(f"score.{system.name}.stress.{c.label}", {"condition": c.label, "files": key,
                                                                  **run.reads("stress_score")}, [csv],
                       lambda enhanced=enhanced, csv=csv: run.score(EVAL_SPLIT, csv, enhanced,
                                                                    stress_metrics(run.track)))
        files[system.name, c.label, c.name, c.severity] = csv
    return files


def enhance_and_score_stage(run: Run) -> None:
    """The mixture scored; each system's dev outputs (audio-visual and blank video), stress conditions and blind
    split enhanced and scored; the combined scores.csv, peaks.csv, stress.csv and blind.csv written."""
    score_files = {(NOISY, MIXTURE): run.out / "scores" / f"{NOISY}.csv"}
    run.stages.run("score.noisy", run.reads("score"), [score_files[NOISY, MIXTURE]],
                   lambda: run.score(EVAL_SPLIT, score_files[NOISY, MIXTURE]))
    stress_files, blind_files, enhanced_dirs = {}, {}, {}
    for s in run.systems:
        made = made_inputs(run, s)
        for condition, blank in CONDITIONS.items():
            enhanced = run.out / "enhanced" / s.name / condition
            csv = score_files[s.name, condition] = run.out / "scores" / f"{s.name}.{condition}.csv"
            enhanced_dirs[s.name, condition] = enhanced
            enhanced_key = run.stages.run(f"enhance.{s.name}.{condition}", {**made, "condition": condition},
                                          [enhanced], lambda s=s, enhanced=enhanced, blank=blank: run.enhance(
                                              s, EVAL_SPLIT, enhanced, blank))
            run.stages.run(f"score.{s.name}.{condition}", {**run.reads("score"), "enhanced": enhanced_key}, [csv],
                           lambda enhanced=enhanced, csv=csv: run.score(EVAL_SPLIT, csv, enhanced))
        if run.stress:
            stress_files.update(stress_stage(run, s))
        if run.blind:
            enhanced = run.out / "enhanced" / s.name / run.blind
            csv = blind_files[s.name, AV] = run.out / "scores" / run.blind / f"{s.name}.{AV}.csv"
            enhanced_key = run.stages.run(f"enhance.{s.name}.{run.blind}", {**made, **run.reads("blind")},
                                          [enhanced], lambda s=s, enhanced=enhanced: run.enhance(
                                              s, run.blind, enhanced), kind="enhance")
            run.stages.run(f"score.{s.name}.{run.blind}", {**run.reads("blind"), "enhanced": enhanced_key}, [csv],
                           lambda enhanced=enhanced, csv=csv: run.score(run.blind, csv, enhanced))
    combine_scores(run.out / "scores.csv", score_files)
    combine_peaks(run.out / PEAKS, enhanced_dirs)
    if run.stress:
        combine_scores(run.out / "stress.csv", stress_files, ("system", "condition", "stress", "severity"))
    if run.blind:
        noisy_csv = blind_files[NOISY, MIXTURE] = run.out / "scores" / run.blind / f"{NOISY}.csv"
        run.stages.run(f"score.noisy.{run.blind}", run.reads("blind"), [noisy_csv],
                       lambda: run.score(run.blind, noisy_csv), kind="score")
        combine_scores(run.out / "blind.csv", blind_files)


# --- listening material and cost ----------------------------------------------------------------------------------
def _device_identity(device: str) -> dict:
    """What the profile's figures are measured on: the resolved device, the CPU model, the GPU's name."""
    import torch

    from avse_bench.profiling.hardware import cpu_model
    from avse_bench.train import resolve_device

    resolved = resolve_device(device)
    gpu = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else None
    return {"device": str(resolved), "cpu": cpu_model(), "gpu": gpu}


def listen_stage(run: Run) -> None:
    """The listening material of report.html (RUN/listen/: `report.listen.build_listening`), made again whenever an
    output, the scores the cards show (every score stage's key), the scenes asked for or the way it is made
    changes."""
    from avse_bench.report.listen import LISTEN, LISTEN_VERSION, build_listening

    inputs = {**run.reads("listen"), "outputs": {s.name: made_inputs(run, s) for s in run.systems},
              "version": LISTEN_VERSION,
              "scores": {name: key for name, key in run.stages.keys.items() if name.startswith("score.")}}
    scenes = list(run.config.listen_scenes) if run.config.listen_scenes else None
    run.stages.run("listen", inputs, [run.out / LISTEN], lambda: build_listening(run.out, scenes, unfinished_ok=True))


def profile_stage(run: Run) -> None:
    """Each system's cost figures at the profile's reference input (the run's frame size, the system's channels),
    its training-memory phase at the system's training batch and crops."""
    from avse_bench.profiling import profile_system

    profiles = {}
    for s in run.systems:
        path = run.out / "profiles" / f"{s.name}.json"
        recipe = s.recipe(run.config.profile)
        options = {**get_profile(run.config.profile)["profiling"], "size": run.pre.size,
                   "video_channels": run.pre.channels,
                   "train_batch": recipe["batch_size"],
                   "train_seconds": round(float(recipe["crop_seconds"]) * 25) / 25}  # whole frames, as the crops
        inputs = {**run.reads("profile"), **run.system_inputs(s), **options}
        run.stages.run(f"profile.{s.name}", inputs, [path], lambda s=s, path=path, options=options: write_json_file(
            path, profile_system(s, device=run.config.device, **options)))
        profiles[s.name] = json.loads(path.read_text())
    write_json_file(run.out / "profile.json", profiles)


# --- the whole run ------------------------------------------------------------------------------------------------
def compare(config: RunConfig) -> Path:
    """Run every stage of `config` (a RunConfig: the systems, data, track, profile, seed, device, frames, metrics,
    stress conditions, loading, processes per node, supplied weights, listening scenes) and render the report;
    returns the run folder.

    Supplied weights (their own checkpoints, plain state dicts or PyTorch Lightning checkpoints; see
    avse_bench/weights.py) replace training and are checked before any work. The frames are the systems' declared
    preprocessing, else the profile's, with the frame options laid over (`profiles.choose_preprocessing`, whose rule
    the manifest and sheet state). `nproc_per_node` > 1 trains each system under torchrun (the world size is read
    by the training stage and stated in the sheet). Stress conditions enhance and score the dev split again with
    degraded video (`pipeline.stress_metrics`). When the data root has an `eval` split without targets, it is
    enhanced (audio-visual) and scored blind (DNSMOS only). Raises AvseBenchError for bad input.
    """
    from avse_bench.metrics.pool import kept_alive
    from avse_bench.report import render_report

    run = open_run(config)
    run.stages.run("check", run.reads("check"), [], lambda: validate_splits(run.root, [TRAIN_SPLIT, EVAL_SPLIT],
                                                                                   run.track))
    train_stage(run)
    with kept_alive():  # one scoring pool for every score stage of the run (metrics/pool.py: why)
        enhance_and_score_stage(run)
    listen_stage(run)
    profile_stage(run)
    run.manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    run.manifest["status"] = FINISHED
    write_json_file(run.out / MANIFEST, run.manifest)
    render_report(run.out)
    print(f"[compare] done: {run.out / 'sheet.md'}")
    return run.out
