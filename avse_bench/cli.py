"""The `avse-bench` command line: a thin front door; each verb calls one function of the harness.

Imports are done inside each verb so that `avse-bench --help` is instant and a verb only pays for what it uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avse_bench.errors import AvseBenchError

PROFILES = ("quick", "paper", "smoke")
DEVICES = ("auto", "cpu", "cuda")


def _loader(a: argparse.Namespace):
    from avse_bench.data.loading import LoaderOptions

    return LoaderOptions(workers=a.workers, frame_cache_mb=a.frame_cache_mb,
                         frame_store=None if a.frame_store is None else str(a.frame_store),
                         frame_store_gb=a.frame_store_gb)


def _add_loader_options(p: argparse.ArgumentParser) -> None:
    from avse_bench.data.frames import DEFAULT_MEMORY_MB, DEFAULT_STORE_GB
    from avse_bench.data.loading import MAX_DEFAULT_WORKERS

    g = p.add_argument_group("data loading")
    g.add_argument("--workers", type=int, default=None,
                   help=f"DataLoader worker processes (default: half the cores, at most {MAX_DEFAULT_WORKERS}; "
                        "0 loads in the main process)")
    g.add_argument("--frame-cache-mb", type=float, default=DEFAULT_MEMORY_MB,
                   help=f"in-memory budget for decoded frames, per process (MiB, default {DEFAULT_MEMORY_MB:g})")
    g.add_argument("--frame-store", type=Path, default=None,
                   help="folder of a disk store of preprocessed frames, read by memory map (default: none)")
    g.add_argument("--frame-store-gb", type=float, default=DEFAULT_STORE_GB,
                   help=f"budget of the frame store (GiB, default {DEFAULT_STORE_GB:g}; 1.4 GiB per hour at 128 px)")


def _add_metrics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated metrics or families (intrusive, dnsmos, all; pesq_wb, stoi, dnsmos_ovrl, "
                        "...); default: the intrusive five, plus DNSMOS when speechmos is installed. A split "
                        "without clean targets (eval) gets the non-intrusive ones alone")


def _add_track_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--track", choices=("binaural", "mono", "track1", "track2"), default=None,
                   help="AVSEC-4 data: binaural (the default, as the challenge: 2-channel files, MBSTOI against "
                        "_target_anechoic; the noisy row is _mix) or mono (1-channel files: systems read _mono_mix, "
                        "train against _target_anechoic downmixed as the official baseline does, and are scored "
                        "with the mono metrics against _target_mono_anechoic). AVSEC-1/2/3 data is mono. "
                        "Real-World AVSE 2026 data: track1 or track2 (the ROOT/track{1,2}/<split>/ folder; the "
                        "only one when ROOT holds one track's zip)")


def _add_preprocessing_options(p: argparse.ArgumentParser, note: str) -> None:
    g = p.add_argument_group("preprocessing (shared by every system of a run; default: the systems' declared "
                             "[preprocessing], else the profile's)")
    g.add_argument("--frame-size", type=int, default=None,
                   help=f"frame size in px (224 for the official AVSEC-2 baseline's weights){note}")
    g.add_argument("--no-equalize", action="store_true",
                   help=f"no histogram equalisation (the official baselines' code feeds unequalised frames){note}")
    g.add_argument("--centre-crop", action="store_true",
                   help=f"cut the middle frame-size px out of each frame instead of resizing it (the AVSEC-4 "
                        f"baseline: 112 of 224){note}")


def _preprocessing_options(a: argparse.Namespace) -> dict:
    """The preprocessing options given on the command line (none given: {})."""
    options = {"frame_size": a.frame_size, "equalize": False if a.no_equalize else None,
               "crop": "centre" if a.centre_crop else None}
    return {k: v for k, v in options.items() if v is not None}


def _preprocessing(a: argparse.Namespace, system_names: list[str]):
    """The preprocessing for these systems: options over their declaration or the profile's (`choose_preprocessing`)."""
    from avse_bench.profiles import choose_preprocessing
    from avse_bench.systems import load

    return choose_preprocessing([load(n) for n in system_names], a.profile, **_preprocessing_options(a))[0]


# --- data -------------------------------------------------------------------------------------------------------
def _data_synth(a: argparse.Namespace) -> int:
    from avse_bench.data.synth import synthesize

    if a.layout == "realworld":
        from avse_bench.data.synth_realworld import synthesize_realworld

        synthesize_realworld(a.out, n_train=a.train, n_dev=a.dev, seed=a.seed, min_seconds=a.min_seconds,
                             max_seconds=a.max_seconds)
        return 0
    synthesize(a.out, n_train=a.train, n_dev=a.dev, seed=a.seed, min_seconds=a.min_seconds,
               max_seconds=a.max_seconds, progress=True, layout=a.layout)
    return 0


def _data_check(a: argparse.Namespace) -> int:
    from avse_bench.data import realworld

    if realworld.is_realworld(a.root, a.split):
        from avse_bench.data.realworld_check import check

        tracks = [a.track] if a.track else realworld.tracks_present(a.root, a.split)
        reports = [check(a.root, a.split, t) for t in tracks]
        print("\n\n".join(r.format() for r in reports))
        return 0 if all(r.ok for r in reports) else 1
    from avse_bench.data.check import run_check

    return run_check(a.root, a.split, jobs=a.jobs)


def _data_frames(a: argparse.Namespace) -> int:
    from avse_bench.data import Preprocessing, load_split
    from avse_bench.data.frames import fill_store
    from avse_bench.data.loading import default_workers
    from avse_bench.profiles import get_profile

    pre = Preprocessing(size=a.size if a.size is not None else get_profile(a.profile)["video_size"],
                        crop="centre" if a.centre_crop else "none")
    videos = [scene.video for split in a.split for scene in load_split(a.root, split)]
    result = fill_store(videos, pre, a.store, a.store_gb, jobs=a.jobs or max(1, 2 * default_workers()))
    gib = result["bytes"] / 2**30
    print(f"frame store {result['folder']}: {result['stored']} video(s) added, {result['already_stored']} already "
          f"there, {result['left_out_by_budget']} left out by the {a.store_gb:g} GiB budget; {gib:.2f} GiB in all")
    return 0


# --- systems, training, enhancement -------------------------------------------------------------------------------
def _systems(a: argparse.Namespace) -> int:
    from avse_bench.systems import print_systems

    broken = print_systems()
    if broken:
        print(f"avse-bench: note: {broken} system(s) cannot be loaded (listed above with their error); the others "
              "work", file=sys.stderr)
    return 0


def _system_new(a: argparse.Namespace) -> int:
    from avse_bench.system_check import new_system

    folder = new_system(a.name, a.dir)
    print(f"wrote {folder / 'model.py'} and {folder / 'system.toml'}; to use it: export "
          f"AVSE_BENCH_SYSTEMS={folder.parent.resolve()}, then avse-bench system check {a.name}")
    return 0


def _system_check(a: argparse.Namespace) -> int:
    from avse_bench.system_check import check_system

    return check_system(a.name)


def _train(a: argparse.Namespace) -> int:
    from avse_bench.train import train

    if a.run_manifest is not None:
        return _train_as_run(a)
    if a.data is None:
        raise AvseBenchError("train needs --data ROOT (or --run-manifest RUN/manifest.json)")
    train(a.system, data_root=a.data, out_dir=a.out, profile=a.profile, resume=a.resume, device=a.device,
          seed=a.seed, train_split=a.split, val_split=a.val_split, loader=_loader(a),
          preprocessing=_preprocessing(a, [a.system]), track=a.track)
    return 0


def _train_as_run(a: argparse.Namespace) -> int:
    """`train SYSTEM --run-manifest FILE`: the training stage of that compare run, read whole from its manifest
    (the run's configuration, data root and track, and the preprocessing it chose)."""
    from avse_bench.data.preprocessing import Preprocessing
    from avse_bench.io import read_json
    from avse_bench.pipeline import EVAL_SPLIT, TRAIN_SPLIT
    from avse_bench.run_config import RunConfig
    from avse_bench.train import train

    manifest = read_json(a.run_manifest, "a compare run's manifest")
    try:
        config = RunConfig.from_dict(manifest["config"])
        root, track = Path(manifest["data"]["root"]), manifest["data"]["track"]
        pre = Preprocessing.from_config(manifest["preprocessing"]["config"])
    except (KeyError, TypeError) as err:
        raise AvseBenchError(f"{a.run_manifest}: not a compare run's manifest (no {err})") from None
    train(a.system, data_root=root, out_dir=a.out, profile=config.profile, resume=a.resume, device=config.device,
          seed=config.seed, train_split=TRAIN_SPLIT, val_split=EVAL_SPLIT, loader=config.loader,
          preprocessing=pre, track=track)
    return 0


def _enhance(a: argparse.Namespace) -> int:
    from avse_bench.enhance import enhance

    # a training run records its preprocessing (options with --run are refused by enhance, naming why)
    recorded = a.run is not None and not _preprocessing_options(a)
    enhance(a.system, run_dir=a.run, data_root=a.data, split=a.split, out_dir=a.out, device=a.device,
            blank_video=a.blank_video, loader=_loader(a), weights=a.weights,
            preprocessing=None if recorded else _preprocessing(a, [a.system]), track=a.track)
    return 0


# --- scoring ---------------------------------------------------------------------------------------------------
def _score(a: argparse.Namespace) -> int:
    from avse_bench.metrics.scoring import score_split

    score_split(a.data, a.split, out_csv=a.out, enhanced_dir=a.enhanced, jobs=a.jobs, shard=a.shard,
                official_csv=a.official_csv, progress=True, enhanced_suffix=a.enhanced_suffix, timeout=a.timeout,
                metrics=a.metrics, track=a.track)
    return 0


def _score_merge(a: argparse.Namespace) -> int:
    from avse_bench.metrics.scoring import merge_scores

    merge_scores(a.inputs, out_csv=a.out)
    return 0


# --- profiling, compare, report -----------------------------------------------------------------------------------
def _profile(a: argparse.Namespace) -> int:
    from avse_bench.profiles import choose_preprocessing
    from avse_bench.profiling import profile_system, write_profile
    from avse_bench.systems import load

    pre = choose_preprocessing([load(a.system)], "paper")[0]
    size = a.size if a.size is not None else pre.size
    result = profile_system(a.system, device=a.device, seconds=a.seconds, size=size, train_batch=a.train_batch,
                            repeats=a.repeats, throughput_batch=a.throughput_batch, weights=a.weights,
                            train_seconds=a.train_seconds, video_channels=pre.channels)
    write_profile(result, a.json)
    return 0


def _system_weights(pairs: list[str]) -> dict[str, Path]:
    found = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise AvseBenchError(f"--weights {pair!r}: expected SYSTEM=PATH, e.g. baseline=epoch=49.ckpt")
        if name in found:
            raise AvseBenchError(f"--weights names {name} twice")
        found[name] = Path(path)
    return found


def _stress(specs: list[str] | None, profile: str):
    """`--stress` -> Stress conditions: none without the option, the profile's set with no spec, else the specs."""
    from avse_bench.data.stress import parse_stress
    from avse_bench.profiles import get_profile

    if specs is None:
        return None
    return parse_stress(specs or get_profile(profile)["stress"])


def run_config(a: argparse.Namespace):
    """The one RunConfig of `compare`'s options (avse_bench/run_config.py)."""
    from avse_bench.run_config import FrameOptions, RunConfig

    return RunConfig(systems=a.systems, data_root=a.data, profile=a.profile, out_dir=a.out, device=a.device,
                     seed=a.seed, track=a.track, frames=FrameOptions(**_preprocessing_options(a)), metrics=a.metrics,
                     stress=_stress(a.stress, a.profile), loader=_loader(a), nproc_per_node=a.nproc_per_node,
                     weights=_system_weights(a.weights), listen_scenes=a.listen_scenes,
                     command_line=["avse-bench", *sys.argv[1:]])


def _compare(a: argparse.Namespace) -> int:
    from avse_bench.compare import compare

    compare(run_config(a))
    return 0


def _report(a: argparse.Namespace) -> int:
    from avse_bench.report import render_report
    from avse_bench.report.readme import figures, update_readme

    if a.listen is not None:
        from avse_bench.report.listen import build_listening

        build_listening(a.run, a.listen or None)
    render_report(a.run)
    block = figures(a.run) if a.readme else None
    for readme in a.readme:
        update_readme(readme, block, label=a.run.as_posix())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avse-bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    # data synth / data check
    data = sub.add_parser("data", help="the embedded corpus and AVSEC layout checks")
    dsub = data.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    s = dsub.add_parser("synth", help="write the embedded synthetic corpus in the AVSEC layout")
    s.add_argument("out", type=Path, help="output root (gets train/, dev/, metadata/)")
    s.add_argument("--train", type=int, default=200, help="number of train scenes (default 200)")
    s.add_argument("--dev", type=int, default=40, help="number of dev scenes (default 40)")
    s.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes (default 0)")
    s.add_argument("--min-seconds", type=float, default=2.0, help="shortest scene (default 2.0)")
    s.add_argument("--max-seconds", type=float, default=4.0, help="longest scene (default 4.0)")
    s.add_argument("--layout", choices=("avsec2", "avsec3", "avsec4", "realworld"), default="avsec2",
                   help="avsec2: the AVSEC-1/2/3 files (mono, one masker; the default); avsec3: the same with the "
                        "AVSEC-3 lip crops in <split>/lips/ (96 px); avsec4: binaural, "
                        "reverberant scenes with 1-3 maskers including music, in the AVSEC-4 files and metadata "
                        "(a simple head and room model: avse_bench/data/spatial.py); realworld: two-talker clips "
                        "in the Real-World AVSE 2026 layout, both tracks (train and dev count clips, two items each)")
    s.set_defaults(func=_data_synth)
    c = dsub.add_parser("check", help="validate one split of an AVSEC or Real-World AVSE root; exit 1 if anything "
                                      "is broken")
    c.add_argument("root", type=Path)
    c.add_argument("--split", required=True, help="train, dev or eval")
    c.add_argument("--jobs", type=int, default=0, help="processes checking scenes in parallel (default: all cores)")
    _add_track_option(c)
    c.set_defaults(func=_data_check)
    f = dsub.add_parser("frames", help="preprocess a split's videos into a disk frame store (parallel, resumable)")
    f.add_argument("root", type=Path)
    f.add_argument("--split", action="append", required=True, help="split to store (repeatable)")
    f.add_argument("--store", type=Path, required=True, help="the store folder (pass it to --frame-store later)")
    f.add_argument("--profile", choices=PROFILES, default="quick",
                   help="the run profile whose preprocessing (frame size) is stored (default quick)")
    f.add_argument("--size", type=int, default=None, help="frame size instead of the profile's")
    f.add_argument("--centre-crop", action="store_true", help="centre crops of --size px (the AVSEC-4 baseline's)")
    f.add_argument("--store-gb", type=float, default=64.0, help="budget of the store (GiB, default 64)")
    f.add_argument("--jobs", type=int, default=0, help="processes (default: all cores)")
    f.set_defaults(func=_data_frames)

    s = sub.add_parser("systems", help="list the registered systems with their parameter counts")
    s.set_defaults(func=_systems)
    sy = sub.add_parser("system", help="make a new system folder from a template, or check one")
    sysub = sy.add_subparsers(dest="system_verb", required=True, metavar="ACTION")
    sn = sysub.add_parser("new", help="write a template system folder that runs (model.py, system.toml)")
    sn.add_argument("name", help="the system's name (a Python identifier; also its folder's)")
    sn.add_argument("--dir", type=Path, default=Path("."), help="where the folder goes (default: here)")
    sn.set_defaults(func=_system_new)
    sc = sysub.add_parser("check", help="check a system against the call contract before any training")
    sc.add_argument("name")
    sc.set_defaults(func=_system_check)

    t = sub.add_parser("train", help="train one system (also under torchrun for DDP)")
    t.add_argument("system")
    t.add_argument("--data", type=Path, default=None, help="AVSEC-layout root (required unless --run-manifest)")
    t.add_argument("--run-manifest", type=Path, default=None,
                   help="a compare run's manifest.json: train as that run does (its data, track, frames, seed, "
                        "profile, device, loading; how compare's torchrun children are started)")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs)")
    t.add_argument("--profile", choices=PROFILES, default="quick")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    t.add_argument("--device", choices=DEVICES, default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--split", default="train", help="training split (default train)")
    t.add_argument("--val-split", default="dev", help="validation split (default dev)")
    _add_track_option(t)
    _add_loader_options(t)
    _add_preprocessing_options(t, "")
    t.set_defaults(func=_train)

    e = sub.add_parser("enhance", help="run a trained system over a split; writes <scene>.wav per scene")
    e.add_argument("system")
    e.add_argument("--run", type=Path, default=None, help="the training run folder (its model.pt and preprocessing)")
    e.add_argument("--weights", type=Path, default=None,
                   help="supplied weights instead of a run's model.pt: a state dict, an avse-bench checkpoint or a "
                        "PyTorch Lightning checkpoint (the official baseline's)")
    e.add_argument("--profile", choices=PROFILES, default="quick",
                   help="with --weights and no --run: the profile whose preprocessing (frame size) is used")
    _add_preprocessing_options(e, "; with --weights and no --run")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--split", default="dev")
    e.add_argument("--out", type=Path, required=True, help="folder for the enhanced wavs")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--blank-video", action="store_true", help="replace the video by a blank clip (audio-only)")
    _add_track_option(e)
    _add_loader_options(e)
    e.set_defaults(func=_enhance)

    # `score merge` is dispatched in main(); this parser documents `score`.
    sc = sub.add_parser("score", help="score a split per scene (PESQ, STOI, ESTOI, SI-SDR, DNSMOS); "
                                      "`score merge` joins shards")
    sc.add_argument("--data", type=Path, required=True)
    sc.add_argument("--split", default="dev")
    sc.add_argument("--enhanced", type=Path, default=None,
                    help="folder of <scene>.wav; without it the unprocessed mixture is scored")
    sc.add_argument("--out", type=Path, required=True, help="per-scene CSV (appended per scene; resumable)")
    sc.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    sc.add_argument("--shard", default=None, help="i/n: score only the i-th of n deterministic slices (1-based)")
    sc.add_argument("--official-csv", type=Path, default=None,
                    help="also write the official objective_evaluation.py format (scene,stoi,pesq)")
    sc.add_argument("--enhanced-suffix", default="",
                    help="enhanced files are <scene><SUFFIX>.wav (default none; '_mixed' for the official "
                         "evaluation config's names)")
    sc.add_argument("--timeout", type=float, default=300.0,
                    help="seconds one scene's metrics may take before they are reported as timed out (default 300)")
    _add_track_option(sc)
    _add_metrics_option(sc)
    sc.set_defaults(func=_score)

    pr = sub.add_parser("profile", help="FLOPs, parameters, memory per phase, latency and RTF")
    pr.add_argument("system")
    pr.add_argument("--device", choices=DEVICES, default="auto")
    pr.add_argument("--seconds", type=float, default=3.0, help="reference input length (default 3 s)")
    pr.add_argument("--size", type=int, default=None,
                    help="video frame size of the reference input (default: the system's declared [preprocessing] "
                         "size, else 128)")
    pr.add_argument("--train-batch", type=int, default=None,
                    help="batch for the training-memory phase (default: the recipe's, capped on CPU; stated)")
    pr.add_argument("--train-seconds", type=float, default=None,
                    help="input length of the training-memory phase (default: --seconds; compare uses the run's "
                         "training crops)")
    pr.add_argument("--repeats", type=int, default=None, help="timed repetitions (default: 500 GPU, 20 CPU)")
    pr.add_argument("--throughput-batch", type=int, default=None, help="batch for the throughput figure")
    pr.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    pr.add_argument("--weights", type=Path, default=None,
                    help="supplied weights to load (checked to fit; the costs do not depend on their values)")
    pr.set_defaults(func=_profile)

    cm = sub.add_parser("compare", help="data -> train -> enhance -> score -> profile -> report for N systems")
    cm.add_argument("systems", nargs="+")
    cm.add_argument("--data", type=Path, default=None,
                    help="AVSEC-layout root (train on train, score dev); default: the embedded corpus")
    cm.add_argument("--profile", choices=PROFILES, default="quick")
    cm.add_argument("--out", type=Path, default=None, help="output folder (default reports/<profile>)")
    cm.add_argument("--device", choices=DEVICES, default="auto")
    cm.add_argument("--seed", type=int, default=0)
    cm.add_argument("--weights", action="append", default=[], metavar="SYSTEM=PATH",
                    help="use these weights for SYSTEM instead of training it (repeatable): a state dict, an "
                         "avse-bench checkpoint or a PyTorch Lightning checkpoint (the official baseline's)")
    _add_preprocessing_options(cm, "")
    _add_track_option(cm)
    cm.add_argument("--nproc-per-node", type=int, default=1,
                    help="train each system under torchrun with N processes (DDP: NCCL on GPU, gloo on CPU); "
                         "default 1: one process, no torchrun")
    cm.add_argument("--stress", nargs="*", default=None, metavar="NAME[=S1,S2]",
                    help="also enhance and score dev under degraded video: conditions such as occlusion=0.5,1 "
                         "lowres=16,8 frozen=5 dropped=0.5 offset=-5,5 blank dcnn_rnn_loader; alone: the profile's "
                         "set (avse_bench/profiles.py)")
    _add_metrics_option(cm)
    cm.add_argument("--listen-scenes", nargs="+", default=None, metavar="SCENE",
                    help="the dev scenes report.html's listening cards show (default: each system's best, median "
                         "and worst scene by improvement, and one per masker type)")
    _add_loader_options(cm)
    cm.set_defaults(func=_compare)

    r = sub.add_parser("report", help="re-render sheet.md, sheet.csv, plots and report.html from a compare run's "
                                      "stored results")
    r.add_argument("run", type=Path)
    r.add_argument("--listen", nargs="*", default=None, metavar="SCENE",
                   help="make report.html's listening material again (needs the run's data and enhanced files): "
                        "for these dev scenes, or alone for the default choice")
    r.add_argument("--readme", type=Path, action="append", default=[], metavar="FILE",
                   help="also rewrite the run's figures block in FILE (between its '<!-- figures from RUN' markers; "
                        "appended when absent): README figures generated from the run, never typed (repeatable)")
    r.set_defaults(func=_report)
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    m = argparse.ArgumentParser(prog="avse-bench score merge", description="join score shards into one CSV")
    m.add_argument("inputs", type=Path, nargs="+", help="shard CSVs")
    m.add_argument("--out", type=Path, required=True)
    m.set_defaults(func=_score_merge)
    return m


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["score", "merge"]:
        args = build_merge_parser().parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    from avse_bench.errors import AvseBenchError, user_message

    try:
        return int(args.func(args) or 0)
    except AvseBenchError as err:
        print(f"avse-bench: error: {user_message(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a place the user or the environment chose: full, read-only, gone
        from avse_bench.io import os_error_message

        print(f"avse-bench: error: {os_error_message(err)}; finished work is kept", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
