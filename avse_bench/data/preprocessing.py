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
SAMPLES_PER_FRAME = AUDIO_RATE // VIDEO_FPS  # 640: the audio under one video frame


def source_frame(j: int, fps: float) -> int:
    """Index of the source frame that 25 fps output frame j shows (the one on screen at its centre)."""
    return math.floor((j + 0.5) * fps / VIDEO_FPS + 1e-9)


def output_frame_indices(n_source: int, fps: float) -> np.ndarray:
    """Source frame index for each 25 fps output frame of a clip with n_source frames at `fps` (rule above)."""
    idx = []
    while source_frame(len(idx), fps) < n_source:
        idx.append(source_frame(len(idx), fps))
    return np.asarray(idx, np.int64)


class _Video:
    """An opened video: `with _Video(path) as v:` gives `v.cap` (cv2.VideoCapture) and `v.fps`.

    FFmpeg decodes with one thread: on 30 face clips of 6-8 s (224 px) its default thread pool took 0.96 s wall
    and 1.11 s CPU, one thread 0.68 s of both; and DataLoader workers are already one core each. Other backends
    are tried when FFmpeg cannot open the file."""

    def __init__(self, path):
        self.path = path
        self.cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not self.cap.isOpened():
            self.cap.release()
            self.cap = cv2.VideoCapture(str(path))

    def __enter__(self) -> _Video:
        if not self.cap.isOpened():
            self.cap.release()
            raise AvseBenchError(f"cannot open video {self.path}")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS))
        if not self.fps > 0:
            self.cap.release()
            raise AvseBenchError(f"video {self.path} does not state its frame rate")
        return self

    def __exit__(self, *exc) -> None:
        self.cap.release()


def read_frames(path) -> tuple[list[np.ndarray], float]:
    """All frames of a video file as decoded by OpenCV (BGR uint8), and its frame rate."""
    with _Video(path) as v:
        frames = []
        while True:
            ok, frame = v.cap.read()
            if not ok:
                break
            frames.append(frame)
    if not frames:
        raise AvseBenchError(f"no decodable frames in video {path}")
    return frames, v.fps


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

    def video_uint8(self, path, start: int = 0, stop: int | None = None) -> np.ndarray:
        """uint8 (T, size, size) at 25 fps: output frames [start, stop) (all by default; fewer, or none, past the
        clip's end), the exact values of `video` times 255 (compact for caching).

        Streams the file: decoding ends at the last frame asked for, a source frame no requested output frame shows
        is skipped undecoded (`grab` without `retrieve`), and one shown several times (source below 25 fps) is
        processed once. Raises AvseBenchError when the file cannot be opened or holds no decodable frame."""
        out: list[np.ndarray] = []
        if stop is not None and stop <= start:
            return np.empty((0, self.size, self.size), np.uint8)
        j = start  # the next output frame to fill
        with _Video(path) as v:
            k = 0  # index of the source frame just grabbed
            while (stop is None or j < stop) and v.cap.grab():
                if source_frame(j, v.fps) == k:
                    ok, bgr = v.cap.retrieve()
                    if not ok:
                        raise AvseBenchError(f"cannot decode frame {k} of video {path}")
                    processed = self.frame(bgr)
                    while source_frame(j, v.fps) == k and (stop is None or j < stop):
                        out.append(processed)
                        j += 1
                k += 1
            if k == 0:
                raise AvseBenchError(f"no decodable frames in video {path}")
        if not out:
            return np.empty((0, self.size, self.size), np.uint8)
        return np.stack(out)  # (T, size, size)

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
