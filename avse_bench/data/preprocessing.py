"""THE preprocessing: one object, applied identically to every system; its settings and hash go into reports.

Video: decode (OpenCV) -> resample to 25 fps -> grayscale (or R, G, B for `color="rgb"`) -> resize to size x size,
or (`crop="centre"`) cut the middle size x size pixels out without resizing -> `cv2.equalizeHist` on every frame
(if enabled) -> [0, 1] float32. Audio: float32 at 16 kHz, mono (channels averaged) or, for a binaural system, (2, L).

The centre crop is the AVSEC-4 baseline's input (cogmhear/avse_challenge, baseline/avse4/dataset.py,
`process_frames`: `frame[56:-56, 56:-56]` of the 224 px RGB frame, `cv2.COLOR_RGB2GRAY`, / 255, no equalisation):
for 224 px frames and size 112 the same pixels (rows and columns 56 to 167); a frame smaller than the crop is an
error. Grey before or after the crop gives the same pixels.

Frame-rate rule: output frame j stands for the interval [j/25, (j+1)/25) s and shows the source frame on screen at
its centre t_j = (j + 0.5) / 25 s, by the container's timestamps: the last source frame whose presentation time
(relative to the first frame's) is at or before t_j. The clip ends one mean frame interval after its last frame's
time (1/fps for a single frame), and gives the output frames whose centre falls inside it. For a constant frame
rate this is source index floor((j + 0.5) * fps / 25) and round-half-down(N * 25 / fps) frames, the identity at
25 fps; a variable-frame-rate file (phones record so) gets the frame that was really on screen, where an index at
the nominal rate would be up to hundreds of ms off. Without a crop, frames of any size are resized directly to a
square (the AVSEC videos are face crops; other shapes are stretched, not cropped).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from avse_bench.errors import AvseBenchError

PREPROCESSING_VERSION = "2"  # 2: frames chosen by timestamps (variable frame rates)
VIDEO_FPS = 25
AUDIO_RATE = 16_000
SAMPLES_PER_FRAME = AUDIO_RATE // VIDEO_FPS  # 640: the audio under one video frame


TIME_TOLERANCE_MS = 1e-6  # a frame whose time equals an output centre is on screen there


def source_frame(j: int, fps: float) -> int:
    """Index of the source frame that 25 fps output frame j shows in a constant-rate clip at `fps` (the one on
    screen at its centre)."""
    return math.floor((j + 0.5) * fps / VIDEO_FPS + 1e-9)


def output_frame_indices(n_source: int, fps: float) -> np.ndarray:
    """Source frame index for each 25 fps output frame of a constant-rate clip with n_source frames at `fps`."""
    return frames_on_screen(np.arange(n_source) * 1000.0 / fps, fps)


def output_centre_ms(j: int) -> float:
    """The centre of output frame j's interval, in ms."""
    return (j + 0.5) * 1000.0 / VIDEO_FPS


def clip_end_ms(times_ms: np.ndarray, fps: float) -> float:
    """Where a clip whose frames start at `times_ms` (relative, increasing) ends: one mean frame interval after
    its last frame (1/fps for a single frame)."""
    n = len(times_ms)
    return float(times_ms[-1] + ((times_ms[-1] - times_ms[0]) / (n - 1) if n > 1 else 1000.0 / fps))


def frames_on_screen(times_ms: np.ndarray, fps: float) -> np.ndarray:
    """Source frame index for each 25 fps output frame of a clip whose frames start at `times_ms` (relative to the
    first, increasing; the rule in the module docstring)."""
    times_ms = np.asarray(times_ms, dtype=np.float64)
    end = clip_end_ms(times_ms, fps)
    centres = [output_centre_ms(j) for j in range(int(end * VIDEO_FPS / 1000.0) + 2)]
    centres = np.asarray([c for c in centres if c < end - TIME_TOLERANCE_MS])
    return np.searchsorted(times_ms, centres + TIME_TOLERANCE_MS, side="right").astype(np.int64) - 1


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
        self._count, self._first_ms, self._last_ms = 0, 0.0, -1.0  # frames timed so far (`next_time_ms`)
        if not self.fps > 0:
            self.cap.release()
            raise AvseBenchError(f"video {self.path} does not state its frame rate")
        return self

    def __exit__(self, *exc) -> None:
        self.cap.release()

    def next_time_ms(self) -> float:
        """Presentation time (ms, from the first frame) of the frame just grabbed or read: the container's timestamp
        (CAP_PROP_POS_MSEC), or k/fps for the k-th frame where the backend gives none that increases. Call it once
        after each frame, in order."""
        raw = float(self.cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._count == 0:
            self._first_ms, t = raw, 0.0
        else:
            t = raw - self._first_ms
            if not t > self._last_ms:
                t = self._count * 1000.0 / self.fps
        self._count, self._last_ms = self._count + 1, t
        return t


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


COLOURS = ("grey", "rgb")  # one grey channel (cv2.COLOR_BGR2GRAY); the decoded colour as R, G, B
CROPS = ("none", "centre", "face", "lips")  # the whole frame resized; the middle size x size pixels; the landmark
# face box; the split's lip-crop video (lips/, AVSEC-3) resized
LIPS_DIR = "lips"  # ROOT/<split>/lips/<scene>_silent.mp4 beside scenes/: the AVSEC-3 lip crops
LIPS_HOW = ("the AVSEC-3 lip crops are made by github.com/cogmhear/avsec_preprocessing (utils/lips.py): per frame a "
            "box around the mouth from MediaPipe FaceMesh points 61, 291, 0 and 17, reaching 1.1 times the lips' "
            "larger extent from their centre, resized to 96 x 96, written as lips/<scene>_silent.mp4 beside scenes/")
FACE_FRACTION, FACE_CX, FACE_CY = 0.78, 0.50, 0.61  # the Real-World baseline's face box (real_test_dataset.py)


def face_box(landmarks: list) -> tuple[float, float, float] | None:
    """(left, top, side) in pixels of one fixed square box for a clip, from its landmarks (a list per frame of
    (68, 2) arrays or None), as the Real-World AVSE baseline's evaluation computes it (`_fixed_face_box` of
    look2hear/datas/real_test_dataset.py): the medians over the frames with a face of the landmarks' min and max x
    and y, side = max(width, height) / 0.78, placed so the face centre is at (0.50, 0.61) of the box; float32 as
    there. None when no frame has a face."""
    valid = [np.asarray(f, np.float32) for f in landmarks if f is not None and np.asarray(f).shape == (68, 2)]
    if not valid:
        return None
    a = np.stack(valid)  # (T', 68, 2)
    x0, x1 = np.median(a[:, :, 0].min(1)), np.median(a[:, :, 0].max(1))
    y0, y1 = np.median(a[:, :, 1].min(1)), np.median(a[:, :, 1].max(1))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = max(x1 - x0, y1 - y0) / FACE_FRACTION
    return float(cx - FACE_CX * side), float(cy - FACE_CY * side), float(side)


def crop_square(gray: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The `box` (left, top, side, rounded to whole pixels) of a grey (H, W) frame, edge-replicated where it
    leaves the frame, resized to (size, size) with INTER_AREA (the baseline's `_crop_square`)."""
    h, w = gray.shape
    left, top, side = (int(round(v)) for v in box)
    pad_l, pad_t, pad_r, pad_b = max(0, -left), max(0, -top), max(0, left + side - w), max(0, top + side - h)
    if pad_l or pad_t or pad_r or pad_b:
        gray = cv2.copyMakeBorder(gray, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
        left, top = left + pad_l, top + pad_t
    return cv2.resize(gray[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Preprocessing:
    """The frames and audio every system of a run gets. `size`: output frames are size x size px. `equalize`:
    `cv2.equalizeHist` per frame. `crop`: "none" (resize the whole frame), "centre" (the middle size x size
    pixels, as the AVSEC-4 baseline), "face" (the clip's landmark face box, the Real-World baseline) or "lips" (the
    split's lip-crop video `lips/<scene>_silent.mp4` resized bilinearly, the AVSEC-3 baseline; `source`). `color`:
    "grey" (frames (T, size, size), the default) or "rgb" (frames (T, size, size, 3) in R, G, B order, as decord
    decodes them for the AVSEC-1 baseline; OpenCV's FFmpeg decode, converted from BGR). Raises AvseBenchError for a
    size below 8, an unknown crop or colour, and for equalisation or a face crop of colour frames."""

    size: int = 128
    equalize: bool = True
    crop: str = "none"
    face_size: int = 96  # crop "face": the face box is resized to this, then its centre size x size is kept
    color: str = "grey"

    def __post_init__(self):
        if self.size < 8:
            raise AvseBenchError(f"preprocessing frame size must be >= 8 px (got {self.size})")
        if self.crop not in CROPS:
            raise AvseBenchError(f"preprocessing crop must be one of {', '.join(CROPS)} (got {self.crop!r})")
        if self.color not in COLOURS:
            raise AvseBenchError(f"preprocessing color must be one of {', '.join(COLOURS)} (got {self.color!r})")
        if self.color == "rgb" and (self.equalize or self.crop == "face"):
            raise AvseBenchError("preprocessing color \"rgb\" takes no histogram equalisation and no face crop "
                                 "(both are defined on grey frames): set equalize = false and another crop")
        if self.crop == "face" and self.face_size < self.size:
            raise AvseBenchError(f"preprocessing face_size {self.face_size} is smaller than the frame size {self.size}")

    @property
    def channels(self) -> int:
        """Colour channels of a frame: 1 (grey) or 3 (RGB); the model's video is (B, channels, T, H, W)."""
        return 3 if self.color == "rgb" else 1

    def source(self, path) -> Path:
        """The file a scene's video `path` (scenes/<scene>_silent.mp4) is read from: for crop "lips" the split's
        lip-crop video `lips/<scene>_silent.mp4` (the AVSEC-3 layout; a path already in lips/ maps to itself), for
        the other crops `path` itself."""
        path = Path(path)
        return path.parent.parent / LIPS_DIR / path.name if self.crop == "lips" else path

    def require_sources(self, videos) -> None:
        """AvseBenchError, in one line, when a file `source` maps one of the scene `videos` to is missing (crop
        "lips" on a split without lip crops), naming how many, one of them, and how the official preprocessing
        makes them."""
        if self.crop != "lips":  # the other crops read the scene's own video, which loading the split checked
            return
        missing = [lip for lip in map(self.source, videos) if not lip.is_file()]
        if missing:
            raise AvseBenchError(f"{len(missing)} scene(s) have no lip-crop video (e.g. {missing[0]}), and the run's "
                                 f"frames are crop = \"lips\" (a system declares lip-crop input): {LIPS_HOW}")

    def clip_box(self, path) -> tuple[float, float, float] | None:
        """For crop "face": the face box of the video at `path` from the landmark file beside it (`<video>.pkl`,
        read without running anything, `realworld.read_landmarks`), or None (no such file, or no face in it: the
        whole frame is used, as the baseline's fallback). None for the other crops."""
        if self.crop != "face":
            return None
        marks = Path(path).with_suffix(".pkl")
        if not marks.is_file():
            return None
        from avse_bench.data.realworld import read_landmarks

        return face_box(read_landmarks(marks))

    def frame(self, bgr: np.ndarray, box: tuple[float, float, float] | None = None) -> np.ndarray:
        """One decoded frame (H, W, 3) BGR or (H, W) uint8 -> (size, size) uint8, equalised if enabled, or for
        color "rgb" (size, size, 3) in R, G, B order (a grey source repeated in all three). Crop "face":
        the clip's face `box` (`face_box`; None: the whole frame) resized to face_size, then its centre size x size
        (the Real-World baseline: 96, then CenterCrop 88). Raises AvseBenchError when a centre crop is larger than
        the frame."""
        if self.color == "rgb":
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else np.repeat(bgr[:, :, None], 3, 2)
        else:
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        if self.crop == "face":
            fs = self.face_size
            face = (crop_square(gray, box, fs) if box is not None else
                    gray if gray.shape == (fs, fs) else cv2.resize(gray, (fs, fs), interpolation=cv2.INTER_AREA))
            off = (fs - self.size) // 2
            small = np.ascontiguousarray(face[off:off + self.size, off:off + self.size])
        elif self.crop == "centre":
            h, w = gray.shape[:2]
            if h < self.size or w < self.size:
                raise AvseBenchError(f"a {w} x {h} px frame is smaller than the {self.size} px centre crop")
            top, left = (h - self.size) // 2, (w - self.size) // 2
            small = np.ascontiguousarray(gray[top:top + self.size, left:left + self.size])
        elif self.crop == "lips":  # the AVSEC-3 baseline's cv2.resize of the 96 px lip crop (bilinear, its default)
            small = cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        else:
            small = cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cv2.equalizeHist(small) if self.equalize else small

    def video_uint8(self, path, start: int = 0, stop: int | None = None) -> np.ndarray:
        """uint8 (T, size, size), or (T, size, size, 3) for color "rgb", at 25 fps: output frames [start, stop) (all
        by default; fewer, or none, past the
        clip's end), the exact values of `video` times 255 (compact for caching).

        Streams the file: decoding ends at the last frame asked for (once the next frame's timestamp shows which
        frame was on screen), a frame shown several times (source below 25 fps) is processed once, and frames
        before `start` are never processed. Raises AvseBenchError when the file cannot be opened or holds no
        decodable frame."""
        out: list[np.ndarray] = []
        path = self.source(path)
        if stop is not None and stop <= start:
            return np.empty(self.frame_shape(0), np.uint8)
        j = start  # the next output frame to fill
        box = self.clip_box(path)
        with _Video(path) as v:
            held, processed, k, times = None, None, 0, []  # the frame on screen so far; every frame's time
            while (stop is None or j < stop) and v.cap.grab():
                t = v.next_time_ms()
                times.append(t)
                while held is not None and output_centre_ms(j) < t - TIME_TOLERANCE_MS and (stop is None or j < stop):
                    processed = self.frame(held, box) if processed is None else processed
                    out.append(processed)  # the previous frame was on screen at output frame j's centre
                    j += 1
                ok, bgr = v.cap.retrieve()
                if not ok:
                    raise AvseBenchError(f"cannot decode frame {k} of video {path}")
                held, processed = bgr, None
                k += 1
            if k == 0:
                raise AvseBenchError(f"no decodable frames in video {path}")
            end = clip_end_ms(np.asarray(times), v.fps)
            while output_centre_ms(j) < end - TIME_TOLERANCE_MS and (stop is None or j < stop):
                processed = self.frame(held, box) if processed is None else processed
                out.append(processed)  # the last frame, on screen until the clip's end
                j += 1
        if not out:
            return np.empty(self.frame_shape(0), np.uint8)
        return np.stack(out)  # (T, size, size) or (T, size, size, 3)

    def frame_shape(self, n: int) -> tuple[int, ...]:
        """The shape of n frames: (n, size, size), or (n, size, size, 3) for color "rgb"."""
        return (n, self.size, self.size) if self.color == "grey" else (n, self.size, self.size, 3)

    def video(self, path) -> np.ndarray:
        """float32 (T, size, size) (or (T, size, size, 3) for color "rgb") in [0, 1] at 25 fps."""
        return self.video_uint8(path).astype(np.float32) / 255.0

    def audio(self, path, channels: int = 1) -> np.ndarray:
        """float32 at 16 kHz (other rates resampled): (L,) for `channels` 1 (a multi-channel file averaged, as the
        AVSEC-4 baseline's `load_wav(mono=True)`), (channels, L) otherwise. Raises AvseBenchError when the file
        cannot be read or a multi-channel read finds another number of channels."""
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (L, channels)
        except (OSError, RuntimeError) as err:  # soundfile raises LibsndfileError (a RuntimeError)
            raise AvseBenchError(f"cannot read audio {path}: {err}") from err
        if channels == 1:
            audio = data.mean(axis=1)  # (L,)
        elif data.shape[1] != channels:
            raise AvseBenchError(f"audio {path} has {data.shape[1]} channel(s); {channels} expected")
        else:
            audio = data.T  # (channels, L)
        if rate != AUDIO_RATE:
            from scipy.signal import resample_poly  # scipy.signal takes seconds to import: only when needed

            g = math.gcd(int(rate), AUDIO_RATE)
            audio = resample_poly(audio, AUDIO_RATE // g, int(rate) // g, axis=-1)
        return np.ascontiguousarray(audio, dtype=np.float32)

    @classmethod
    def from_config(cls, config: dict) -> Preprocessing:
        """The Preprocessing whose `config()` this is (a run's record; runs before the crop option have none)."""
        return cls(size=config["size"], equalize=config["equalize"], crop=config.get("crop", "none"),
                   face_size=config.get("face_size", 96), color=config.get("color", "grey"))

    def config(self) -> dict:
        """The settings (with a version string that changes whenever the code's output would)."""
        fields = {k: v for k, v in asdict(self).items()  # keys as before the options they name, so old keys hold
                  if (k != "face_size" or self.crop == "face") and (k != "color" or self.color != "grey")}
        return {"version": PREPROCESSING_VERSION, **fields, "fps": VIDEO_FPS,
                "frame_rule": "source frame on screen at each 40 ms interval's centre, by the container's timestamps",
                "grayscale": "cv2.COLOR_BGR2GRAY" if self.color == "grey" else "none (cv2.COLOR_BGR2RGB: R, G, B)",
                "resize": {"centre": "none (centre crop)", "face": f"the clip's landmark face box (median extent / "
                           f"0.78, centre at (0.50, 0.61), edge-replicated) or the whole frame, cv2.INTER_AREA to "
                           f"{self.face_size}, then the centre {self.size}",
                           "lips": f"the split's lip-crop video ({LIPS_DIR}/<scene>_silent.mp4), cv2.INTER_LINEAR to "
                           f"{self.size}"}.get(self.crop, "cv2.INTER_AREA"),
                "equalizer": "cv2.equalizeHist per frame" if self.equalize else "none",
                "scale": "uint8 / 255", "audio_rate": AUDIO_RATE}

    def config_hash(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
