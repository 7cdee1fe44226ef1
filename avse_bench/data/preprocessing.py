"""THE preprocessing: one object, applied identically to every system; its settings and hash go into reports.

Video: decode (OpenCV) -> resample to 25 fps -> grayscale -> resize to size x size -> `cv2.equalizeHist` on every
frame -> [0, 1] float32. Audio: mono float32 at 16 kHz.

Frame-rate rule: output frame j stands for the interval [j/25, (j+1)/25) s and shows the source frame on screen at
its centre, source index floor((j + 0.5) * fps / 25); the clip lasts N/fps s and gives round-half-down(N * 25 / fps)
frames (those whose centre falls inside the clip). At 25 fps this is the identity. Frames of any size are resized
directly to a square (the AVSEC videos are face crops; other shapes are stretched, not cropped).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import soundfile as sf

from avse_bench.errors import AvseBenchError

PREPROCESSING_VERSION = "1"
VIDEO_FPS = 25
AUDIO_RATE = 16_000


def output_frame_indices(n_source: int, fps: float) -> np.ndarray:
    """Source frame index for each 25 fps output frame of a clip with n_source frames at `fps` (rule above)."""
    n_out = max(math.ceil(n_source * VIDEO_FPS / fps - 0.5), 1) if n_source else 0
    idx = np.floor((np.arange(n_out) + 0.5) * fps / VIDEO_FPS + 1e-9).astype(np.int64)
    return np.minimum(idx, n_source - 1)


def read_frames(path) -> tuple[list[np.ndarray], float]:
    """All frames of a video file as decoded by OpenCV (BGR uint8), and its frame rate."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise AvseBenchError(f"cannot open video {path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise AvseBenchError(f"no decodable frames in video {path}")
    if not fps > 0:
        raise AvseBenchError(f"video {path} does not state its frame rate")
    return frames, fps


@dataclass(frozen=True)
class Preprocessing:
    size: int = 128
    equalize: bool = True

    def __post_init__(self):
        if self.size < 8:
            raise AvseBenchError(f"preprocessing frame size must be >= 8 px (got {self.size})")

    def frame(self, bgr: np.ndarray) -> np.ndarray:
        """One decoded frame (H, W, 3) or (H, W) uint8 -> (size, size) uint8, equalised if enabled."""
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        small = cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cv2.equalizeHist(small) if self.equalize else small

    def video_uint8(self, path) -> np.ndarray:
        """uint8 (T, size, size) at 25 fps: the exact values of `video` times 255 (compact for caching)."""
        frames, fps = read_frames(path)
        idx = output_frame_indices(len(frames), fps)
        cache: dict[int, np.ndarray] = {}  # a source frame can be shown by several output frames
        out = np.empty((len(idx), self.size, self.size), np.uint8)
        for j, k in enumerate(idx):
            if k not in cache:
                cache[k] = self.frame(frames[k])
            out[j] = cache[k]
        return out

    def video(self, path) -> np.ndarray:
        """float32 (T, size, size) in [0, 1] at 25 fps."""
        return self.video_uint8(path).astype(np.float32) / 255.0

    def audio(self, path) -> np.ndarray:
        """float32 (L,) at 16 kHz (multi-channel files are averaged; other rates resampled)."""
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (L, channels)
        except (OSError, RuntimeError) as err:  # soundfile raises LibsndfileError (a RuntimeError)
            raise AvseBenchError(f"cannot read audio {path}: {err}") from err
        mono = data.mean(axis=1)
        if rate != AUDIO_RATE:
            from scipy.signal import resample_poly  # scipy.signal takes seconds to import: only when needed

            g = math.gcd(int(rate), AUDIO_RATE)
            mono = resample_poly(mono, AUDIO_RATE // g, int(rate) // g)
        return np.ascontiguousarray(mono, dtype=np.float32)

    def config(self) -> dict:
        """The settings (with a version string that changes whenever the code's output would)."""
        return {"version": PREPROCESSING_VERSION, **asdict(self), "fps": VIDEO_FPS,
                "frame_rule": "source frame at each 40 ms interval's centre", "grayscale": "cv2.COLOR_BGR2GRAY",
                "resize": "cv2.INTER_AREA", "equalizer": "cv2.equalizeHist per frame" if self.equalize else "none",
                "scale": "uint8 / 255", "audio_rate": AUDIO_RATE}

    def config_hash(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
