"""The listening material of a compare run (RUN/listen/): for chosen scenes, browser-playable copies of the mixture,
the target and every system's outputs, their spectrograms on one colour scale, and strips of the face frames the
systems saw. `report.html` (avse_bench/report/html.py) lays it out as one card per scene.

Which scenes (`select_scenes`): for each system its best, median and worst scene by improvement over the mixture in
the run's headline metric (SI-SDR; MBSTOI on the binaural track; DNSMOS-OVRL on a blind split, which has no
reference), then one more scene for each masker type (speech, noise, music) no card has yet; or the scenes a user
names (`--listen-scenes`). Audio: MP3 (MPEG layer III through libsndfile: every current browser plays it; about
32 kbit/s for 16 kHz speech, a tenth of the 16-bit wav), mono or 2 channels as written; 16-bit WAV where the
libsndfile in use cannot write MP3 (`audio_format`). Spectrograms: STFT with a
512-sample Hann window and a 256-sample hop (32 ms, 16 ms), magnitude in dB relative to a full-scale sine, shown
from -90 to 0 dB on one colour scale for the whole page (`DB_RANGE`), JPEG; a binaural file gives its left channel
above its right. Frame strips: `STRIP_FRAMES` frames evenly spaced over the clip, as the shared preprocessing gives
them (before any padding to the audio's length), clean and under each stress condition (PNG).

Everything a card shows is written to RUN/listen/cards.json (the files in RUN/listen/<split>/<scene>/), so that
`avse-bench report RUN` re-renders the page without the data; building the material needs the run's data root and
enhanced files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from avse_bench.errors import AvseBenchError
from avse_bench.metrics.spec import SPECS
from avse_bench.metrics.spec import headline_metric as spec_headline
from avse_bench.pipeline import AUDIO_ONLY, AV, CONDITION_LABELS, MIXTURE, NOISY
from avse_bench.report.load import Run, load_run
from avse_bench.report.quality import rows

LISTEN = "listen"
CARDS = "cards.json"
LISTEN_VERSION = "1"  # changes whenever the material written for the same inputs would
DB_RANGE = (-90.0, 0.0)
STRIP_FRAMES = 8
SPECTROGRAM_WINDOW, SPECTROGRAM_HOP = 512, 256
AUDIO_FORMATS = (("MP3", "MPEG_LAYER_III", ".mp3"), ("WAV", "PCM_16", ".wav"))  # the first this libsndfile writes


def audio_format() -> tuple[str, str, str]:
    """(format, subtype, extension) of the listening copies: MP3 where the libsndfile that soundfile uses writes it
    (the wheels' 1.1 and later do), else 16-bit WAV (as large as the enhanced files, playable everywhere too)."""
    return next(f for f in AUDIO_FORMATS if f[0] in sf.available_formats() and f[1] in sf.available_subtypes(f[0]))
MASKER_TYPES = ("speech", "noise", "music")


def headline_metric(scores: pd.DataFrame) -> str:
    """The metric scenes are chosen by: the run's headline metric (`spec.headline_metric`: SI-SDR where scored,
    else MBSTOI on the binaural track, else DNSMOS-OVRL)."""
    found = spec_headline([m for m in SPECS if m in scores and scores[m].notna().any()])
    if found is None:
        raise AvseBenchError("no scene has a score of a headline metric (SI-SDR, MBSTOI, DNSMOS-OVRL) to choose "
                             "listening scenes by")
    return found


def _improvement(scores: pd.DataFrame, system: str, metric: str) -> pd.Series:
    """Per scene: the system's audio-visual score minus the mixture's, scenes without both dropped."""
    mine = rows(scores, system, AV).set_index("scene")[metric]
    noisy = rows(scores, NOISY, MIXTURE).set_index("scene")[metric]
    return (mine - noisy.reindex(mine.index)).dropna().sort_values(kind="stable")


def select_scenes(scores: pd.DataFrame, systems: list[str], metric: str) -> list[tuple[str, str]]:
    """[(scene, why chosen)]: each system's best, median and worst scene by improvement in `metric`, then a
    scene for each masker type that no chosen scene has (the one nearest the median improvement over systems)."""
    spec = SPECS[metric]
    unit = f" {spec.unit}" if spec.unit else ""
    chosen: dict[str, list[str]] = {}
    for system in systems:
        gains = _improvement(scores, system, metric)
        if gains.empty:
            continue
        order = gains if spec.higher_is_better else gains[::-1]
        for label, index in (("best", -1), ("median", (len(order) - 1) // 2), ("worst", 0)):
            scene = order.index[index]
            chosen.setdefault(scene, []).append(
                f"{system}'s {label} scene by {spec.label.split(' (')[0]} improvement "
                f"({order.iloc[index]:+.{spec.digits}f}{unit})")
    maskers = rows(scores, NOISY, MIXTURE).set_index("scene")["masker"].fillna("").astype(str)
    mean_gain = pd.concat([_improvement(scores, s, metric) for s in systems], axis=1).mean(axis=1)
    for kind in MASKER_TYPES:
        if any(kind in maskers.get(s, "").split("+") for s in chosen):
            continue
        candidates = mean_gain[[kind in maskers.get(s, "").split("+") for s in mean_gain.index]]
        if not candidates.empty:
            scene = (candidates - candidates.median()).abs().sort_values(kind="stable").index[0]
            chosen.setdefault(scene, []).append(f"a scene with a {kind} masker (nearest the median improvement)")
    return [(scene, "; ".join(why)) for scene, why in chosen.items()]


def _spectrogram(audio: np.ndarray, path: Path) -> None:
    """A JPEG of `audio` (L,) or (L, 2)'s STFT magnitude in dB re full scale, clipped to DB_RANGE, low frequencies
    at the bottom; 2 channels stacked (left above right)."""
    from matplotlib import colormaps
    from scipy.signal import stft

    channels = audio.T if audio.ndim == 2 else audio[None]
    window = np.hanning(SPECTROGRAM_WINDOW)
    images = []
    for x in channels:
        _, _, z = stft(x, nperseg=SPECTROGRAM_WINDOW, noverlap=SPECTROGRAM_WINDOW - SPECTROGRAM_HOP,
                       window=window, boundary=None, padded=True, scaling="spectrum")
        db = 20 * np.log10(np.abs(z) * 2 + 1e-12)  # scaling="spectrum": a full-scale sine's peak reads 1 / 2
        images.append(np.flipud((np.clip(db, *DB_RANGE) - DB_RANGE[0]) / (DB_RANGE[1] - DB_RANGE[0])))
    gap = np.ones((2, images[0].shape[1]))
    image = np.concatenate([part for im in images for part in (im, gap)][:-1])
    rgb = (colormaps["magma"](image)[..., :3] * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])


def colour_bar(path: Path) -> None:
    """The page's colour scale: DB_RANGE left to right, as the spectrograms draw it."""
    from matplotlib import colormaps

    ramp = np.tile(np.linspace(0, 1, 256), (12, 1))
    rgb = (colormaps["magma"](ramp)[..., :3] * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _strip(frames: np.ndarray, path: Path) -> int:
    """STRIP_FRAMES of the uint8 (T, H, W) frames (or (T, H, W, 3) in R, G, B), evenly spaced, side by side with a
    2 px gap, as a PNG; returns the spacing in frames."""
    step = max(1, len(frames) // STRIP_FRAMES)
    picked = frames[::step][:STRIP_FRAMES]
    gap = np.full((frames.shape[1], 2, *frames.shape[3:]), 255, np.uint8)
    strip = np.concatenate([part for f in picked for part in (f, gap)][:-1], axis=1)
    cv2.imwrite(str(path), strip if strip.ndim == 2 else cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    return step


def _player(label: str, source: Path, folder: Path, name: str, where: str) -> dict:
    """One player: `source` (a wav) copied as MP3 into `folder` (a scene's) with its spectrogram; the paths it
    gives start with `where`, the folder relative to the run folder (listen/<split>/<scene id>, the id possibly
    nested: a Real-World item's <scene>/<clip>/<sK>)."""
    audio, rate = sf.read(source, dtype="float32")
    audio = np.nan_to_num(audio)
    fmt, subtype, ext = audio_format()
    sf.write(folder / f"{name}{ext}", np.clip(audio, -1, 1), rate, format=fmt, subtype=subtype)
    _spectrogram(audio, folder / f"{name}.jpg")
    return {"label": label, "audio": f"{where}/{name}{ext}", "spectrogram": f"{where}/{name}.jpg",
            "channels": 1 if audio.ndim == 1 else audio.shape[1]}


def _score_rows(scores: pd.DataFrame, scene: str, metrics: list[str], extra: pd.DataFrame | None) -> list[dict]:
    """The scene's scores: the mixture, each (system, condition), then each stress condition's; text cells."""
    def cells(r: dict) -> dict:
        return {m: "" if pd.isna(r.get(m)) else f"{r[m]:.{SPECS[m].digits}f}" for m in metrics}

    out = [{"system": r["system"], "condition": CONDITION_LABELS.get(r["condition"], r["condition"]), **cells(r)}
           for r in scores[scores.scene == scene].to_dict("records")]
    if extra is not None:
        out += [{"system": r["system"], "condition": f"video under {r['condition']}", **cells(r)}
                for r in extra[extra.scene == scene].to_dict("records")]
    return out


def _stress_dir(run_dir: Path, system: str, condition) -> Path | None:
    """Where a stress condition's outputs of `system` are (enhanced/<system>/stress/<key>/<condition.folder>/)."""
    found = sorted((run_dir / "enhanced" / system / "stress").glob(f"*/{condition.folder}"))
    return found[0] if found else None


def _card(run: Run, scene, split: str, why: str, scores: pd.DataFrame, metrics: list[str], pre, stress: list,
          seed: int, work: Path) -> dict:
    """One scene's card: its facts, scores, players and strips, the files written under work/<scene>/."""
    folder = work / split / scene.id
    folder.mkdir(parents=True)
    run_dir = work.parent
    blind = split != run.manifest["data"].get("eval_split", "dev")
    rel = f"{LISTEN}/{split}/{scene.id}"  # the card's folder as the page links it
    players = [_player("mixture", scene.mixed, folder, "mixture", rel)]
    if scene.reference is not None:
        players.append(_player("target (the scoring reference)", scene.reference, folder, "target", rel))
    for system in run.systems:
        outputs = ([(f"{system}, audio-visual", run_dir / "enhanced" / system / split)] if blind else
                   [(f"{system}, {CONDITION_LABELS[AV]}", run_dir / "enhanced" / system / AV),
                    (f"{system}, {CONDITION_LABELS[AUDIO_ONLY]}", run_dir / "enhanced" / system / AUDIO_ONLY)])
        if not blind:
            outputs += [(f"{system}, video under {c.label}", _stress_dir(run_dir, system, c)) for c in stress]
        for i, (label, where) in enumerate(outputs):
            wav = scene.output(where) if where is not None else None
            if wav is None or not wav.is_file():
                raise AvseBenchError(f"{wav or label}: not found; the listening material needs the run's enhanced "
                                     "files (re-run the same compare)")
            players.append(_player(label, wav, folder, f"{system}.{i}", rel))
    frames = pre.video_uint8(scene.video)
    strips = []
    for i, (label, transform) in enumerate([("clean video", None)] + [
            (f"video under {c.label}", c.apply_seeded(seed)) for c in ([] if blind else stress)]):
        shown = frames if transform is None else np.ascontiguousarray(transform(frames.copy(), scene.id))
        step = _strip(shown, folder / f"frames.{i}.png")
        every = "every frame" if step == 1 else f"one frame in {step}"
        strips.append({"label": f"{label}: {every} of {len(shown)} at {pre.size} px",
                       "image": f"{rel}/frames.{i}.png"})
    facts = scores[(scores.scene == scene.id) & (scores.system == NOISY)].iloc[0]
    return {"scene": scene.id, "split": split, "why": why,
            "masker": "" if pd.isna(facts.masker) else str(facts.masker),
            "snr_db": None if pd.isna(facts.snr_db) else float(facts.snr_db),
            "metrics": metrics, "scores": _score_rows(scores, scene.id, metrics, None if blind else run.stress),
            "players": players, "strips": strips}


def _cards(run: Run, root: Path, track: str | None, parts: list, pre, stress: list, seed: int,
           work: Path) -> list[dict]:
    """Every card of every (split, scores, scene ids) of `parts`, its files written under `work`."""
    from avse_bench.data import load_split

    cards = []
    for split, scores, ids in parts:
        scenes = {s.id: s for s in load_split(root, split, track)}
        metric = headline_metric(scores)
        metrics = [m for m in SPECS if m in scores and scores[m].notna().any()]
        if ids:
            unknown = [i for i in ids if i not in scenes]
            if unknown:
                raise AvseBenchError(f"listening cards: scene {', '.join(unknown)} not in the {split} split "
                                     f"({len(scenes)} scenes, e.g. {next(iter(scenes))})")
            chosen = [(i, "asked for by name") for i in ids]
        else:
            chosen = select_scenes(scores, run.systems, metric)
        cards += [_card(run, scenes[scene], split, why, scores, metrics, pre, stress, seed, work)
                  for scene, why in tqdm(chosen, desc=f"listening cards ({split})", unit="scene")]
    return cards


def build_listening(run_dir, scene_ids: list[str] | None = None, unfinished_ok: bool = False) -> Path:
    """Write RUN/listen/ (the cards' audio, spectrograms and frame strips, and cards.json) for the dev split's
    chosen scenes (`scene_ids`, or `select_scenes`) and, where the run has one, the blind split's; returns
    cards.json's path (`unfinished_ok`: see `load.load_run`; compare's listen stage). Built in a temporary folder
    and moved into place, so a kill leaves the previous material.
    Raises AvseBenchError when a named scene is not in the dev split, or the data or enhanced files are gone."""
    from avse_bench.data import Preprocessing
    from avse_bench.data.stress import parse_stress

    run_dir = Path(run_dir)
    run = load_run(run_dir, unfinished_ok)
    data = run.manifest["data"]
    root, track = Path(data["root"]), data.get("track")
    if not root.is_dir():
        raise AvseBenchError(f"the run's data root {root} is gone: the listening material is made from it "
                             "(and from the enhanced files); re-run compare where the data is")
    pre = Preprocessing.from_config(run.manifest["preprocessing"]["config"])
    stress = parse_stress(run.manifest["stress"]["conditions"]) if run.stress is not None else []
    seed = run.manifest.get("stress", {}).get("seed", run.manifest.get("seed", 0))
    parts = [(data.get("eval_split", "dev"), run.scores, scene_ids)]
    if run.blind is not None:
        parts.append((data["blind_split"], run.blind, None))
    work = run_dir / f".{LISTEN}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        cards = _cards(run, root, track, parts, pre, stress, seed, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # the previous material stays as it was
        raise
    colour_bar(work / "colour_scale.png")
    (work / CARDS).write_text(json.dumps({
        "version": LISTEN_VERSION, "db_range": list(DB_RANGE), "colour_scale": f"{LISTEN}/colour_scale.png",
        "spectrogram": f"STFT, {SPECTROGRAM_WINDOW}-sample Hann window, {SPECTROGRAM_HOP}-sample hop; dB re a "
                       f"full-scale sine, {DB_RANGE[0]:g} to {DB_RANGE[1]:g} dB on every spectrogram of the page",
        "audio": f"{audio_format()[0]} (libsndfile {sf.__libsndfile_version__}) copies of the 16-bit wavs",
        "cards": cards}, indent=1) + "\n")
    final = run_dir / LISTEN
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    return final / CARDS
