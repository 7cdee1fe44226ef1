"""Does the video carry the target? Correlation of mouth-region activity with speech envelopes, from the files.

Mouth activity per frame is the contrast of the mouth box, std / mean of its grey levels (an open mouth shows a
dark cavity and teeth between the lips; dividing by the mean cancels the lighting's gain changes). The
envelope is the RMS of the 640 samples under each 25 fps frame. The embedded corpus records each scene's mouth
box in `ROOT/metadata/synth.<split>.json`; for other data these figures are not available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from avse_bench.data.layout import default_part, masker_of, scan_split
from avse_bench.data.preprocessing import SAMPLES_PER_FRAME, read_frames


def envelope(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS per 25 fps frame, shape (n_frames,), of 16 kHz audio (L,) or (L, channels) (zero-padded to whole
    frames; several channels, e.g. AVSEC-4's left and right ears, are averaged first: the mouth drives both)."""
    audio = np.asarray(audio, np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    x = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float64)
    x[:min(len(audio), len(x))] = audio[:len(x)]
    return np.sqrt(np.mean(x.reshape(n_frames, SAMPLES_PER_FRAME) ** 2, axis=1))


def mouth_activity(video_path, box: tuple[int, int, int, int]) -> np.ndarray:
    """Contrast (std / mean) of the mouth box in each frame, shape (T,), from the decoded video."""
    frames, _ = read_frames(video_path)
    x0, y0, x1, y1 = box
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        box_pixels = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[y0:y1, x0:x1].astype(np.float64)
        out[i] = box_pixels.std() / max(box_pixels.mean(), 1e-6)
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson r, or None when either series is constant."""
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else None


@dataclass
class SyncFigures:
    """Per-scene Pearson r of mouth activity with the target's envelope and with a speech masker's."""

    target_r: dict[str, float]
    speech_masker_r: dict[str, float]

    @staticmethod
    def _mean(values) -> float | None:
        return float(np.mean(list(values))) if values else None

    @property
    def mean_target_r(self) -> float | None:
        return self._mean(self.target_r.values())

    @property
    def mean_speech_masker_r(self) -> float | None:
        return self._mean(self.speech_masker_r.values())


def synth_metadata_path(root, split: str) -> Path:
    return Path(root) / "metadata" / f"synth.{split}.json"


def sync_figures(root, split: str, skip: set[str] = frozenset()) -> SyncFigures | None:
    """The figures for a split written by the embedded corpus generator (scenes in `skip` left out); None for
    other data."""
    path = synth_metadata_path(root, split)
    if not path.is_file():
        return None
    boxes = {sid: rec["mouth_box"] for sid, rec in json.loads(path.read_text())["scenes"].items()}
    scan = scan_split(root, split)
    maskers = {sid: masker_of(record, scan.metadata_path)[0] for sid, record in scan.metadata.items()}
    target_part, masker_part = default_part(scan.layout, "target"), default_part(scan.layout, "interferer")
    figures = SyncFigures({}, {})
    for sid, box in sorted(boxes.items()):
        if sid in skip:
            continue
        files = scan.files[sid]
        activity = mouth_activity(files["video"], tuple(box))
        target, _ = sf.read(str(files[target_part]), dtype="float64")
        r = pearson(activity, envelope(target, len(activity)))
        if r is not None:
            figures.target_r[sid] = r
        if maskers.get(sid) == "speech":
            masker, _ = sf.read(str(files[masker_part]), dtype="float64")
            r = pearson(activity, envelope(masker, len(activity)))
            if r is not None:
                figures.speech_masker_r[sid] = r
    return figures
