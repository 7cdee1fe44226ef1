"""`avse-bench data check ROOT --split NAME`: validate one split of an AVSEC-layout root.

A scene is broken when a required file is missing (targets are required unless no scene of the split has one, as in
the challenge's eval split), an audio file cannot be read, is empty, is not 16 kHz mono, or differs in length from
the mixture, the video cannot be decoded, or the audio and video durations (the video's by its frames' timestamps)
disagree by more than one video frame. A variable frame rate is reported, not an error: the preprocessing maps
frames by their timestamps. The summary gives scenes, hours, sample rates, video frame rates and sizes, and the
masker/SNR histogram (from the metadata, which is optional); for the embedded corpus it adds the audio-visual
correlation figures of `avse_bench.data.avsync`.
"""

from __future__ import annotations

import math
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from avse_bench.data.avsync import SyncFigures, sync_figures
from avse_bench.data.layout import AVSEC2, LAYOUT_NAMES, PARTS, default_part, masker_of, part_channels, scan_split
from avse_bench.data.preprocessing import AUDIO_RATE, LIPS_DIR, LIPS_HOW, _Video, clip_end_ms
from avse_bench.errors import AvseBenchError
from avse_bench.machine import available_cores, worker_context

SNR_BAND_DB = 5


@dataclass
class CheckReport:
    root: Path
    split: str
    n_scenes: int
    has_targets: bool
    metadata: Path | None
    seconds: float = 0.0
    sample_rates: Counter = field(default_factory=Counter)
    video_fps: Counter = field(default_factory=Counter)
    video_sizes: Counter = field(default_factory=Counter)
    maskers: Counter = field(default_factory=Counter)  # (masker type, SNR band start) -> scenes
    problems: dict[str, list[str]] = field(default_factory=dict)
    sync: SyncFigures | None = None
    unrecognised: list[str] = field(default_factory=list)  # files in scenes/ that belong to no scene
    variable_rate: list[str] = field(default_factory=list)  # scenes whose video has a variable frame rate
    layout: str = AVSEC2
    lips: Counter | None = None  # lip-crop frame sizes (AVSEC-3's lips/); None: the split has no lips/ folder

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unrecognised

    def format(self) -> str:
        lines = [f"split {self.split!r} of {self.root}: {self.n_scenes} scenes, {self.seconds / 3600:.3f} h "
                 f"({self.seconds:.1f} s of mixture)",
                 f"layout: {LAYOUT_NAMES[self.layout]} (from the file names)",
                 "targets: " + ("yes" if self.has_targets else "none (evaluation split)"),
                 "metadata: " + (str(self.metadata) if self.metadata else "none (masker type and SNR unknown)"),
                 "audio sample rates: " + _counts(self.sample_rates, "Hz"),
                 "video frame rates: " + _counts(self.video_fps, "fps"),
                 "video frame sizes: " + _counts(self.video_sizes, "")]
        lines.append(f"lip crops ({LIPS_DIR}/): " + (_counts(self.lips, "") if self.lips is not None else
                     f"none (read only by systems whose frames are crop = \"lips\", e.g. avsec3_baseline; "
                     f"{LIPS_HOW})"))
        if self.variable_rate:
            shown = ", ".join(self.variable_rate[:5]) + (" ..." if len(self.variable_rate) > 5 else "")
            lines.append(f"variable frame rate: {len(self.variable_rate)} scene(s) ({shown}); each 25 fps output "
                         "frame shows the frame on screen at its centre by the container's timestamps")
        if self.maskers:
            lines.append("maskers by SNR band (dB): scenes")
            for (kind, band), n in sorted(self.maskers.items(), key=lambda kv: (kv[0][0], kv[0][1] is None,
                                                                                 kv[0][1] or 0)):
                label = "unknown" if band is None else f"[{band:+d}, {band + SNR_BAND_DB:+d})"
                lines.append(f"  {kind:<8} {label:<10} {n}")
        if self.sync is not None:
            lines.append(_format_sync(self.sync))
        else:
            reason = "no targets" if not self.has_targets else "no mouth boxes: not the embedded corpus"
            lines.append(f"audio-visual correlation: n/a ({reason})")
        if self.unrecognised:
            lines.append(f"UNRECOGNISED: {len(self.unrecognised)} file(s) belong to no scene (expected in scenes/ "
                         f"<scene>{', '.join(PARTS[self.layout].values())}; in {LIPS_DIR}/ <scene>_silent.mp4)")
            lines += [f"  {name}" for name in self.unrecognised]
        if self.problems:
            lines.append(f"BROKEN: {len(self.problems)} scene(s)")
            lines += [f"  {sid}: {'; '.join(msgs)}" for sid, msgs in sorted(self.problems.items())]
        elif not self.unrecognised:
            lines.append("OK: no broken scene")
        return "\n".join(lines)


def _counts(counter: Counter, unit: str) -> str:
    if not counter:
        return "n/a (nothing readable)"
    return ", ".join(f"{k}{(' ' + unit) if unit else ''} ({n})" for k, n in sorted(counter.items(), key=str))


def _format_sync(sync: SyncFigures) -> str:
    def fig(values: dict[str, float]) -> str:
        if not values:
            return "n/a (no scene)"
        return f"mean r = {sum(values.values()) / len(values):+.3f} over {len(values)} scenes " \
               f"(min {min(values.values()):+.2f}, max {max(values.values()):+.2f})"

    return ("embedded corpus, mouth-box contrast against the amplitude envelope at 25 fps (Pearson):\n"
            f"  target:        {fig(sync.target_r)}\n  speech masker: {fig(sync.speech_masker_r)}")


def _check_audio(path: Path, problems: list[str], channels: int = 1):
    """soundfile's info of a wav that should be 16 kHz with `channels` channels and not empty, or None (the
    problems noted)."""
    try:
        info = sf.info(str(path))
    except (OSError, RuntimeError) as err:
        problems.append(f"unreadable audio {path.name} ({str(err).strip()})")
        return None
    if info.samplerate != AUDIO_RATE:
        problems.append(f"wrong sample rate {info.samplerate} Hz in {path.name} (expected {AUDIO_RATE})")
    if info.channels != channels:
        problems.append(f"{info.channels} channel(s) in {path.name} (expected "
                        f"{'mono' if channels == 1 else f'{channels}: left and right ear'})")
    if info.frames == 0:
        problems.append(f"empty audio {path.name}")
    return info


VARIABLE_RATE_MS = 1.0  # frame intervals further than this from their median: a variable frame rate


def _check_video(path: Path, problems: list[str]) -> tuple[int, float, tuple[int, int], float, bool] | None:
    """(frames, fps, (width, height), duration in s, variable frame rate) of a decodable video, or None (with the
    problem noted). The duration and the rate come from the frames' timestamps (`preprocessing.clip_end_ms`, the
    rule the preprocessing maps frames by), not from the nominal rate."""
    try:
        with _Video(path) as v:  # opened, with a frame rate
            ok, frame = v.cap.read()
            if not ok:
                problems.append(f"unreadable video {path.name}")
                return None
            fps, times = v.fps, [v.next_time_ms()]
            while v.cap.grab():
                times.append(v.next_time_ms())
    except AvseBenchError as err:
        problems.append(f"video {path.name} states no frame rate" if "frame rate" in str(err) else
                        f"unreadable video {path.name}")
        return None
    intervals = np.diff(times)
    variable = bool(intervals.size and np.abs(intervals - np.median(intervals)).max() > VARIABLE_RATE_MS)
    return len(times), fps, (frame.shape[1], frame.shape[0]), clip_end_ms(np.asarray(times), fps) / 1000, variable


@dataclass
class _SceneFacts:
    """What checking one scene found (sent back from a worker process)."""

    problems: list[str]
    sample_rates: list[int]
    mixed_samples: int | None
    video: tuple[int, float, tuple[int, int], float, bool] | None
    lips: tuple[int, float, tuple[int, int], float, bool] | None = None


def _check_scene(parts: dict[str, Path], layout: str = AVSEC2) -> _SceneFacts:
    """Every audio file of the scene (rate, channels: 2 for AVSEC-4's binaural files, `layout.part_channels`; length
    equal to the mixture's) and its video (decodable, lasting as long as the mixture within a frame); its lip-crop
    video (`parts["lips"]`, AVSEC-3's lips/) when given: decodable, as many frames as the video within one."""
    problems, lengths, rates = [], {}, []
    mix_part = default_part(layout, "mixed")
    for part in (p for p in PARTS[layout] if p != "video"):
        info = _check_audio(parts[part], problems, part_channels(layout, part)) if part in parts else None
        if info is not None:
            lengths[part] = info.frames
            rates.append(info.samplerate)
    video = _check_video(parts["video"], problems) if "video" in parts else None
    mixed = lengths.get(mix_part)
    if mixed:
        for part, n in lengths.items():
            if part != mix_part and n != mixed:
                problems.append(f"{part} has {n} samples, mixture {mixed}")
    if video is not None and mixed:
        n_frames, fps, _, seconds, variable = video
        if abs(mixed / AUDIO_RATE - seconds) > 1 / fps:
            rate = f"variable rate, {n_frames / seconds:.2f} fps on average" if variable else f"{fps:g} fps"
            problems.append(f"audio lasts {mixed / AUDIO_RATE:.3f} s but video {seconds:.3f} s "
                            f"({n_frames} frames at {rate}): more than a frame apart")
    lips = _check_video(parts["lips"], problems) if "lips" in parts else None
    if lips is not None and video is not None and abs(lips[3] - video[3]) > 1 / video[1]:
        problems.append(f"lip crop {LIPS_DIR}/{parts['lips'].name} lasts {lips[3]:.3f} s, the video {video[3]:.3f} s")
    return _SceneFacts(problems, rates, mixed, video, lips)


def check_split(root, split: str, progress: bool = False, sync: bool = True, jobs: int = 1,
                track: str | None = None) -> CheckReport:
    """Validate `split` under `root`, `jobs` scenes at a time in worker processes (0: every core); `sync=False`
    skips the embedded corpus's audio-visual correlation figures. A split in the Real-World AVSE layout is checked
    by `realworld_check.check` on `track` (its report has the same `problems`, `unrecognised`, `ok`, `format`).
    Raises AvseBenchError only when the split's folder does not exist or its metadata cannot be understood."""
    from concurrent.futures import ProcessPoolExecutor

    from avse_bench.data import realworld

    if realworld.is_realworld(root, split):
        from avse_bench.data.realworld_check import check

        return check(root, split, track if track in realworld.TRACKS else None)

    scan = scan_split(root, split)
    report = CheckReport(Path(root), split, len(scan.scene_ids), scan.has_targets, scan.metadata_path,
                         problems={k: list(v) for k, v in scan.problems.items()}, unrecognised=scan.unrecognised,
                         layout=scan.layout)
    for sid in scan.scene_ids:
        record = scan.metadata.get(sid)
        if record is not None:
            kind, snr = masker_of(record, scan.metadata_path)
            band = None if snr is None else int(math.floor(snr / SNR_BAND_DB) * SNR_BAND_DB)
            report.maskers[(kind or "unknown", band)] += 1
    parts = [dict(scan.files.get(sid, {})) for sid in scan.scene_ids]
    lips_dir = Path(root) / split / LIPS_DIR
    if lips_dir.is_dir():  # AVSEC-3: every scene has its lip crop, and every file there is a scene's
        report.lips = Counter()
        expected = {f"{sid}_silent.mp4" for sid in scan.scene_ids}
        report.unrecognised += [f"{LIPS_DIR}/{p.name}" for p in sorted(lips_dir.iterdir())
                                if p.name not in expected and not p.name.startswith(".")]
        for sid, scene_parts in zip(scan.scene_ids, parts, strict=True):
            lip = lips_dir / f"{sid}_silent.mp4"
            if lip.is_file():
                scene_parts["lips"] = lip
            else:
                report.problems.setdefault(sid, []).append(f"no lip crop {LIPS_DIR}/{lip.name}")
    layouts = [scan.layout] * len(parts)
    workers = jobs or available_cores()
    pool_or_none = ProcessPoolExecutor(workers, mp_context=worker_context(__name__)) if workers > 1 else nullcontext()
    with pool_or_none as pool:
        found = (pool.map(_check_scene, parts, layouts, chunksize=8) if pool is not None else
                 map(_check_scene, parts, layouts))
        for sid, facts in tqdm(zip(scan.scene_ids, found, strict=True), total=len(parts), desc=f"check {split}",
                               unit="scene", disable=not progress):
            for rate in facts.sample_rates:
                report.sample_rates[rate] += 1
            if facts.mixed_samples:
                report.seconds += facts.mixed_samples / AUDIO_RATE
            if facts.video is not None:
                _, fps, size, _, variable = facts.video
                report.video_fps["variable" if variable else round(fps, 3)] += 1
                if variable:
                    report.variable_rate.append(sid)
                report.video_sizes[f"{size[0]}x{size[1]}"] += 1
            if facts.lips is not None:
                report.lips[f"{facts.lips[2][0]}x{facts.lips[2][1]}"] += 1
            if facts.problems:
                report.problems.setdefault(sid, []).extend(facts.problems)
    if scan.has_targets and sync:
        report.sync = sync_figures(root, split, skip=set(report.problems))
    return report


def run_check(root, split: str, jobs: int = 0) -> int:
    """Print the report; exit status 0 when every scene is sound and every file belongs to a scene, 1 otherwise."""
    report = check_split(root, split, progress=True, jobs=jobs)
    print(report.format())
    return 0 if report.ok else 1
