"""`data check` of a Real-World AVSE split (`data.realworld`): every file of every item, named where it is wrong.

Per item: `mix.wav` (16 kHz, mono, not empty), the face video (decodable, 25 fps, lasting as long as the mixture
within a frame), its landmarks (read without running anything, `realworld.read_landmarks`: one entry per video
frame, 68 x 2 points or None), the transcript (UTF-8, one non-empty line) and in remix the clean source (16 kHz,
mono, as long as the mixture). A clip without landmark files is counted, not broken (the 3 m far-field clips of
Track 2 ship without them); a frame without a face is counted too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from avse_bench.data.check import _check_audio, _check_video
from avse_bench.data.preprocessing import AUDIO_RATE
from avse_bench.data.realworld import read_landmarks, scan
from avse_bench.errors import AvseBenchError

EXPECTED_FPS = 25.0


@dataclass
class RealWorldReport:
    """What `check` found: counts, and problems per item id."""

    folder: Path
    split: str
    track: str
    n_items: dict = field(default_factory=Counter)  # scene -> items
    seconds: float = 0.0
    video_fps: Counter = field(default_factory=Counter)
    video_sizes: Counter = field(default_factory=Counter)
    without_landmarks: int = 0
    faceless_frames: int = 0
    landmark_frames: int = 0
    has_targets: bool = False
    has_transcripts: bool = False
    problems: dict = field(default_factory=dict)
    unrecognised: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unrecognised

    def format(self) -> str:
        counts = ", ".join(f"{scene} {n} items ({n // 2} clips)" for scene, n in self.n_items.items())
        lines = [f"Real-World AVSE {self.track} split {self.split!r} in {self.folder}: {counts or 'no items'}; "
                 f"{self.seconds / 3600:.3f} h of mixture",
                 "clean sources (remix): " + ("yes" if self.has_targets else "none (inputs only: scored blind)"),
                 "transcripts: " + ("yes" if self.has_transcripts else "none (CER cannot be computed)"),
                 "video frame rates: " + (", ".join(f"{k} fps: {v}" for k, v in sorted(self.video_fps.items()))
                                          or "none"),
                 "video frame sizes: " + (", ".join(f"{k}: {v}" for k, v in sorted(self.video_sizes.items()))
                                          or "none"),
                 f"landmarks: {self.without_landmarks} item(s) without a landmark file; {self.faceless_frames} of "
                 f"{self.landmark_frames} landmark frames without a face"]
        if self.unrecognised:
            lines.append(f"UNRECOGNISED: {len(self.unrecognised)} file(s) belong to no item")
            lines += [f"  {name}" for name in self.unrecognised]
        if self.problems:
            lines.append(f"BROKEN: {len(self.problems)} item(s)")
            lines += [f"  {k}: {'; '.join(v)}" for k, v in sorted(self.problems.items())]
        elif not self.unrecognised:
            lines.append("OK: no broken item")
        return "\n".join(lines)


def _check_item(item, report: RealWorldReport, mixtures: dict) -> list[str]:
    problems: list[str] = []
    mix_path = item.files.get("mixed")
    if mix_path is not None and mix_path not in mixtures:
        info = _check_audio(mix_path, problems)
        mixtures[mix_path] = (info.frames if info is not None and info.samplerate == AUDIO_RATE else None,
                              list(problems))
        if mixtures[mix_path][0]:
            report.seconds += mixtures[mix_path][0] / AUDIO_RATE
    samples, mix_problems = mixtures.get(mix_path, (None, []))
    problems = list(mix_problems)
    if "target" in item.files:
        info = _check_audio(item.files["target"], problems)
        if info is not None and samples and info.frames != samples:
            problems.append(f"{item.tag}.wav has {info.frames} samples, mix.wav {samples}")
    video = _check_video(item.files["video"], problems) if "video" in item.files else None
    if video is not None:
        n_frames, fps, size, seconds, _ = video
        report.video_fps[round(fps, 3)] += 1
        report.video_sizes[f"{size[0]}x{size[1]}"] += 1
        if abs(fps - EXPECTED_FPS) > 0.01:
            problems.append(f"{item.tag}.mp4 is {fps:g} fps (the challenge's videos are 25 fps)")
        if samples and abs(samples / AUDIO_RATE - seconds) > 1 / fps:
            problems.append(f"mix.wav lasts {samples / AUDIO_RATE:.3f} s but {item.tag}.mp4 {seconds:.3f} s")
    if "landmarks" in item.files:
        try:
            marks = read_landmarks(item.files["landmarks"])
        except AvseBenchError as err:
            problems.append(str(err).replace(str(item.files["landmarks"]), f"{item.tag}.pkl"))
        else:
            report.landmark_frames += len(marks)
            report.faceless_frames += sum(m is None for m in marks)
            if video is not None and len(marks) != video[0]:
                problems.append(f"{item.tag}.pkl has {len(marks)} frames, {item.tag}.mp4 {video[0]}")
    else:
        report.without_landmarks += 1
    if "transcript" in item.files:
        try:
            text = item.files["transcript"].read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"unreadable {item.tag}.txt ({err})")
        else:
            if not text:
                problems.append(f"empty transcript {item.tag}.txt")
    return problems


def check(root, split: str, track: str | None = None) -> RealWorldReport:
    """Check one split of one track (module docstring). AvseBenchError only when the split is not there or a
    manifest cannot be read."""
    found = scan(root, split, track)
    report = RealWorldReport(found.folder, split, found.track, has_targets=found.has_targets,
                             has_transcripts=found.has_transcripts,
                             problems={k: list(v) for k, v in found.problems.items()},
                             unrecognised=list(found.unrecognised))
    mixtures: dict = {}
    for item in found.items:
        report.n_items[item.scene] += 1
        problems = _check_item(item, report, mixtures)
        if problems:
            report.problems.setdefault(item.id, []).extend(problems)
    return report
