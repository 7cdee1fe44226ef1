"""Run a trained system over a split and write one enhanced `<scene>.wav` per scene (16-bit PCM, 16 kHz, as the
official AVSEC `test.py` writes them; 2 channels for a binaural system), and each output's peak before writing in
`peaks.csv` beside them. A system whose `[inference] output` is "peak" has its output divided by its largest
absolute sample first (the AVSEC-4 baseline's `enhance`).

Whole utterances, eval mode, no gradients; the preprocessing is the one recorded in the run's
`train_summary.json`, so the model sees at test time what it saw in training. Scenes already written are skipped,
so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Subset
from tqdm import tqdm

from avse_bench.data.loading import LoaderOptions, make_loader
from avse_bench.data.preprocessing import AUDIO_RATE
from avse_bench.errors import AvseBenchError
from avse_bench.io import replace_atomically, writable_dir
from avse_bench.systems import System, load
from avse_bench.train import resolve_device


def load_trained(system: System, run_dir: Path, device: torch.device) -> torch.nn.Module:
    """The system's model with the run's final weights (model.pt, read with weights_only=True), in eval mode; the
    model built as the run trained it (`System.for_profile` of the profile its train_summary.json records)."""
    weights = run_dir / "model.pt"
    if not weights.is_file():
        raise AvseBenchError(f"{weights} not found: train first (avse-bench train {system.name} --out {run_dir})")
    summary = run_dir / "train_summary.json"
    profile = json.loads(summary.read_text()).get("profile") if summary.is_file() else None
    model = (system.for_profile(profile) if profile else system).build_model()
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except RuntimeError as err:  # shapes/keys of another system or another [model] configuration
        raise AvseBenchError(f"{weights} does not fit system {system.name!r}: {err}") from err
    return model.to(device).eval()


def model_and_preprocessing(system: System, run_dir: Path | None, weights, device: torch.device, preprocessing=None):
    """The model (eval mode, on `device`) and the preprocessing to enhance with: a training run's `model.pt` and
    recorded preprocessing, or supplied `weights` with the run's preprocessing if a run is given, else
    `preprocessing`. Raises AvseBenchError when neither a run nor weights are given, or when a preprocessing is
    given for a run that records its own."""
    from avse_bench.weights import model_with_weights

    if preprocessing is not None and run_dir is not None:
        raise AvseBenchError("the run's preprocessing is recorded in it: --frame-size and --no-equalize apply to "
                             "--weights without --run")

    if weights is None:
        if run_dir is None:
            raise AvseBenchError("enhance needs --run (a training run) or --weights (a weights file)")
        return load_trained(system, run_dir, device), run_preprocessing(run_dir)
    model = model_with_weights(system, weights)[0].to(device).eval()
    if run_dir is not None and (run_dir / "train_summary.json").is_file():
        return model, run_preprocessing(run_dir)
    return model, preprocessing


def run_preprocessing(run_dir: Path):
    """The Preprocessing recorded by training in run_dir/train_summary.json."""
    from avse_bench.data import Preprocessing

    summary_path = run_dir / "train_summary.json"
    if not summary_path.is_file():
        raise AvseBenchError(f"{summary_path} not found: the run in {run_dir} did not finish training")
    summary = json.loads(summary_path.read_text())
    config = summary["preprocessing"]
    pre = Preprocessing.from_config(config)
    if pre.config_hash() != summary["preprocessing_hash"]:
        raise AvseBenchError(f"{summary_path}: the recorded preprocessing (hash {summary['preprocessing_hash']}) "
                             f"is not what this version rebuilds from its settings ({pre.config_hash()})")
    return pre


VideoTransform = Callable[[np.ndarray, str], np.ndarray]  # uint8 (T, H, W) frames, scene id -> the same shape
ENHANCED_SUBTYPE = "PCM_16"  # soundfile's default for .wav, which the official test.py's sf.write call gets
PEAKS = "peaks.csv"  # beside the wavs: scene, peak (max |sample| of the model's output before writing)


def write_enhanced(path: Path, audio: np.ndarray) -> None:
    """Write `audio` (L,) or (channels, L) float at 16 kHz to `path` as a 16-bit PCM wav, atomically.

    The official AVSEC baseline writes its outputs with `sf.write(enhanced_path, estimated_audio,
    samplerate=sampling_rate)` (cogmhear/avse_challenge, baseline/avse2/test.py), whose .wav default is PCM_16, and
    its evaluation scores those files: so are ours. soundfile clips samples beyond full scale to [-1, 32767/32768]
    (an output peaking at 1.7 is scored clipped, as the challenge would have scored it); 16-bit quantisation adds
    noise about 98 dB below full scale. An output with a NaN or infinite sample is written as a float wav instead:
    16-bit conversion would turn NaN into -1 without a word, and scoring reports a non-finite estimate as an error."""
    subtype = ENHANCED_SUBTYPE if np.isfinite(audio).all() else "FLOAT"
    frames = audio.T if audio.ndim == 2 else audio  # soundfile takes (L, channels)
    replace_atomically(path, lambda tmp: sf.write(tmp, frames, AUDIO_RATE, subtype=subtype, format="WAV"))


def apply_output_rule(audio: np.ndarray, output: str) -> np.ndarray:
    """The system's declared output rule (`Feed.output`): "as is", or "peak": divided by its largest absolute
    sample over all channels (`estimated_audio /= np.max(np.abs(estimated_audio))` in the AVSEC-4 baseline's
    `AVSE4BaselineModule.enhance`); an all-zero or non-finite output is left as it is."""
    if output != "peak":
        return audio
    peak = float(np.abs(audio).max(initial=0.0))
    return audio / peak if np.isfinite(peak) and peak > 0 else audio


def read_peaks(out_dir: Path) -> dict[str, float]:
    """{scene: peak} from `out_dir/peaks.csv` (the last line of a scene wins; a line cut short by a kill, which
    does not read as a number, is skipped); {} when there is none."""
    path = Path(out_dir) / PEAKS
    if not path.is_file():
        return {}
    peaks = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                peaks[row["scene"]] = float(row["peak"])
            except (TypeError, ValueError):  # a torn line: its scene's wav was not written, so it is enhanced again
                continue
    return peaks


def _record_peak(out_dir: Path, scene: str, peak: float) -> None:
    """Append (scene, peak) to out_dir/peaks.csv before the scene's wav is written: every wav has its line (a kill
    in between re-enhances the scene and appends the same peak again). A last line cut short by a kill is ended
    first, so that it cannot swallow the new one."""
    path = Path(out_dir) / PEAKS
    if not path.is_file() or path.stat().st_size == 0:
        start = "scene,peak\n"
    else:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            start = "" if f.read(1) == b"\n" else "\n"
    with open(path, "a", newline="") as f:
        f.write(f"{start}{scene},{peak!r}\n")


def clipping_note(out_dir: Path) -> str | None:
    """A one-line note when outputs in `out_dir` peaked above full scale (and were clipped when written), else None."""
    peaks = read_peaks(out_dir)
    over = [p for p in peaks.values() if p > 1.0]
    if not over:
        return None
    return (f"{len(over)} of {len(peaks)} outputs in {out_dir} peaked above full scale (up to {max(over):.2f}) and "
            f"were clipped when written as 16-bit PCM, as the official test.py's files are (peaks: {PEAKS})")


def enhance(system: str | System, run_dir, data_root, split: str = "dev", out_dir=None, device: str = "auto",
            blank_video: bool = False, progress: bool = True, loader: LoaderOptions | None = None, weights=None,
            preprocessing=None, track: str | None = None) -> Path:
    """Write out_dir/<scene>.wav for every scene of `data_root/split`; returns out_dir.

    `blank_video=True` replaces every video frame by zeros: the audio-only control. `loader`: workers that decode
    the next scenes while the model runs (each scene is read once, so no in-memory frame cache is kept; a disk
    frame store in the options is used). `weights`: a supplied weights file instead of the run's model.pt;
    `preprocessing`: the frames to give it when there is no run (see `model_and_preprocessing`). `track`: of
    AVSEC-4 data, which mixture the system reads (None: the layout's default; `data.layout.resolve_track`).
    """
    from avse_bench.data.stress import Stress

    run_dir = Path(run_dir) if run_dir is not None else None
    if out_dir is None and run_dir is None:
        raise AvseBenchError("enhance needs --out when no --run is given")
    out = Path(out_dir) if out_dir is not None else run_dir / "enhanced" / split
    transform = Stress("blank", 1).apply if blank_video else None
    enhance_variants(system, run_dir, data_root, {out: transform}, split=split, device=device, progress=progress,
                     loader=loader, weights=weights, preprocessing=preprocessing, track=track)
    return out


def enhance_variants(system: str | System, run_dir, data_root, variants: dict[Path, VideoTransform | None],
                     split: str = "dev", device: str = "auto", progress: bool = True,
                     loader: LoaderOptions | None = None, weights=None, preprocessing=None,
                     track: str | None = None) -> None:
    """For each (out_dir, transform) of `variants`, write out_dir/<scene>.wav for every scene of `data_root/split`,
    the model given the scene's preprocessed frames through `transform` (None: as they are). Each scene is decoded
    once for all variants (the visual stress conditions are applied to the preprocessed frames); a scene whose
    files all exist is not read, so an interrupted run resumes. Other arguments as `enhance`.
    """
    from avse_bench.data import AVSEDataset, load_split
    from avse_bench.data.dataset import frames_to_video, video_to_float, video_to_frames

    system = load(system) if isinstance(system, str) else system
    run_dir = Path(run_dir) if run_dir is not None else None
    dev = resolve_device(device)
    model, preprocessing = model_and_preprocessing(system, run_dir, weights, dev, preprocessing)
    for out in variants:
        writable_dir(out, "the enhanced files", "choose another --out")
    scenes = load_split(data_root, split, track)
    todo = [i for i, s in enumerate(scenes) if any(not s.output(o).is_file() for o in variants)]
    by_id = {s.id: s for s in scenes}
    if not todo:
        return
    loader = replace(loader or LoaderOptions(), frame_cache_mb=0)
    dataset = AVSEDataset(scenes, preprocessing, crop_seconds=None, video_uint8=True, system=system,
                          **loader.dataset_kwargs())
    output = system.feed().output
    items = make_loader(Subset(dataset, todo), loader, dev, seed=0, batch_size=None)
    label = f"enhance {system.name} {split}" + (f" ({len(variants)} conditions)" if len(variants) > 1 else "")
    with torch.no_grad():
        for item in tqdm(items, desc=label, disable=not progress):
            scene = item["scene"]
            mixed = item["mixed"].unsqueeze(0).to(dev, non_blocking=True)  # (1, L) or (1, 2, L)
            for out, transform in variants.items():
                path = by_id[scene].output(out)  # <scene>.wav, or the Real-World submission layout
                if path.is_file():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                video = item["video"]  # (C, T, H, W) uint8
                if transform is not None:
                    frames = transform(video_to_frames(video).numpy(), scene)  # (T, H, W) or (T, H, W, 3)
                    video = frames_to_video(torch.from_numpy(np.ascontiguousarray(frames)))
                video = video_to_float(video[None].to(dev, non_blocking=True))  # (1, C, T, H, W)
                enhanced = apply_output_rule(model(mixed, video)[0].cpu().numpy(), output)  # (L,) or (2, L)
                _record_peak(Path(out), scene, float(np.abs(enhanced).max(initial=0.0)))
                write_enhanced(path, enhanced)
    for out in variants:
        note = clipping_note(Path(out))
        if note and progress:
            print(f"avse-bench: note: {note}", file=sys.stderr)
