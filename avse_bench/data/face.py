"""A rendered talking face for the embedded corpus: the mouth follows the target's phonemes at 25 fps.

Phoneme events become viseme targets (mouth opening and lip rounding), which are co-articulated by smoothing
over neighbouring phonemes and averaged per video frame. The face itself has per-speaker geometry and tone, and
each clip adds head motion, slowly changing lighting (gain and a side gradient), reduced contrast and sensor
noise, so that a model has to find the mouth and histogram equalisation has something to undo.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from avse_bench.data.preprocessing import VIDEO_FPS as FPS  # the corpus is written at the rate the preprocessing reads

FRAME_SIZE = 224
_MS_PER_FRAME = 1000 // FPS
_COARTICULATION_MS = 30.0  # standard deviation of the Gaussian that blends neighbouring visemes

# (opening 0..1, rounding 0..1) of the mouth for espeak phoneme mnemonics, by their leading characters.
_VOWELS = {"a": (1.0, 0.0), "A": (1.0, 0.1), "V": (0.85, 0.0), "0": (0.9, 0.4), "E": (0.7, 0.0), "e": (0.6, 0.0),
           "@": (0.55, 0.0), "3": (0.6, 0.2), "I": (0.45, 0.0), "i": (0.4, 0.0), "O": (0.75, 0.7),
           "o": (0.65, 0.8), "U": (0.4, 0.8), "u": (0.35, 1.0)}
_CONSONANTS = {"p": (0.0, 0.1), "b": (0.0, 0.1), "m": (0.0, 0.1), "f": (0.1, 0.0), "v": (0.1, 0.0),
               "w": (0.2, 1.0), "r": (0.3, 0.5), "T": (0.25, 0.0), "D": (0.25, 0.0), "S": (0.25, 0.6),
               "Z": (0.25, 0.6), "tS": (0.25, 0.6), "dZ": (0.25, 0.6)}
_OTHER_CONSONANT = (0.3, 0.0)
_CLOSED = (0.0, 0.0)


def viseme(phoneme: str) -> tuple[float, float]:
    """(opening, rounding) for one espeak phoneme mnemonic such as "'aI", "@2", "tS" or "_:" (a pause)."""
    name = phoneme.lstrip("'%,=")
    if not name or name[0] in "_(":  # pauses and language switches such as "(en)"
        return _CLOSED
    if name[0] in _VOWELS:
        return _VOWELS[name[0]]
    return _CONSONANTS.get(name[:2], _CONSONANTS.get(name[:1], _OTHER_CONSONANT))


def loudness_ms(audio: np.ndarray, rate: int) -> np.ndarray:
    """Loudness per millisecond in [0, 1]: 20 ms RMS relative to the utterance's 95th percentile."""
    hop, win = rate // 1000, rate // 50
    rms = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(win) / win, mode="same")[::hop])
    voiced = rms[rms > 0]
    return np.clip(rms / np.percentile(voiced, 95), 0, 1) if len(voiced) else rms


def mouth_track(phonemes: list[tuple[float, str]], end_s: float, n_frames: int,
                loudness: np.ndarray | None = None) -> np.ndarray:
    """Per-frame (opening, rounding), shape (n_frames, 2), from phoneme onsets in seconds.

    Each phoneme holds its viseme until the next onset (the mouth closes after the last one or at `end_s`); the
    jaw opens further on louder sounds (`loudness` per ms in [0, 1], as `loudness_ms` gives); the millisecond
    track is smoothed (co-articulation) and averaged over each 40 ms frame.
    """
    n_ms = n_frames * _MS_PER_FRAME
    track = np.zeros((n_ms, 2), np.float32)  # (ms, 2)
    bounds = [t for t, _ in phonemes[1:]] + [end_s]
    for (start, name), stop in zip(phonemes, bounds, strict=True):
        a, b = int(round(start * 1000)), int(round(min(stop, end_s) * 1000))
        track[max(a, 0):min(b, n_ms)] = viseme(name)
    if loudness is not None:
        loud = np.zeros(n_ms, np.float32)
        loud[:min(len(loudness), n_ms)] = loudness[:n_ms]
        track[:, 0] *= 0.4 + 0.6 * np.sqrt(loud)
    radius = int(3 * _COARTICULATION_MS)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / _COARTICULATION_MS) ** 2)
    kernel /= kernel.sum()
    smooth = np.stack([np.convolve(track[:, k], kernel, mode="same") for k in range(2)], axis=1)
    return smooth.reshape(n_frames, _MS_PER_FRAME, 2).mean(axis=1)  # (n_frames, 2)


@dataclass(frozen=True)
class FaceStyle:
    """Per-speaker face geometry and tone (pixels of a 224 x 224 frame, grey levels 0..255)."""

    center: tuple[float, float]
    axes: tuple[float, float]
    skin: float
    hair: float
    background: float
    tint: tuple[float, float, float]
    eye_dx: float
    eye_y: float
    mouth_y: float
    mouth_half_width: float
    max_opening: float
    lip_thickness: float
    lip_shade: float

    @classmethod
    def for_speaker(cls, speaker: str) -> FaceStyle:
        """The same speaker always gets the same face."""
        rng = np.random.default_rng(zlib.crc32(speaker.encode()))
        cx, cy = FRAME_SIZE / 2 + rng.uniform(-6, 6), FRAME_SIZE / 2 + rng.uniform(-8, 2)
        ax, ay = rng.uniform(56, 70), rng.uniform(72, 88)
        return cls(center=(cx, cy), axes=(ax, ay), skin=rng.uniform(105, 200), hair=rng.uniform(20, 90),
                   background=rng.uniform(50, 210),
                   tint=tuple(rng.uniform((0.75, 0.88, 1.0), (0.9, 0.98, 1.12))),  # B, G, R
                   eye_dx=ax * rng.uniform(0.36, 0.46), eye_y=cy - ay * rng.uniform(0.15, 0.3),
                   mouth_y=cy + ay * rng.uniform(0.48, 0.58), mouth_half_width=ax * rng.uniform(0.3, 0.4),
                   max_opening=rng.uniform(11, 16), lip_thickness=rng.uniform(2.5, 4.5),
                   lip_shade=rng.uniform(35, 65))


MOTION_PX = 5.0  # largest head translation (each axis) in a clip
MAX_ROLL_DEG = 3.0


def mouth_box(style: FaceStyle) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) that holds the mouth in every frame, whatever the head motion."""
    roll = np.sin(np.deg2rad(MAX_ROLL_DEG)) * (style.mouth_y - style.center[1])  # sideways shift by the roll
    half_w = style.mouth_half_width * 1.1 + style.lip_thickness + MOTION_PX + roll + 2
    half_h = style.max_opening + style.lip_thickness + MOTION_PX + 3
    cx, cy = style.center[0], style.mouth_y
    return (int(np.floor(cx - half_w)), int(np.floor(cy - half_h)), int(np.ceil(cx + half_w)),
            int(np.ceil(cy + half_h)))


def _smooth_walk(rng: np.random.Generator, n: int, amplitude: float, max_hz: float) -> np.ndarray:
    """A smooth random curve of n frames within +-amplitude: a sum of three slow sinusoids."""
    t = np.arange(n) / FPS
    curve = sum(np.sin(2 * np.pi * rng.uniform(0.05, max_hz) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
    return amplitude * curve / 3


def _draw_static(style: FaceStyle, rng: np.random.Generator) -> np.ndarray:
    """Background, hair, face, nose and eyebrows: float32 (224, 224) grey levels."""
    low = cv2.resize(rng.uniform(-25, 25, (7, 7)).astype(np.float32), (FRAME_SIZE, FRAME_SIZE),
                     interpolation=cv2.INTER_CUBIC)
    img = np.full((FRAME_SIZE, FRAME_SIZE), style.background, np.float32) + low
    (cx, cy), (ax, ay) = style.center, style.axes
    c = (int(cx), int(cy))
    cv2.ellipse(img, (c[0], int(cy - 8)), (int(ax + 8), int(ay + 10)), 0, 0, 360, style.hair, -1)
    cv2.ellipse(img, c, (int(ax), int(ay)), 0, 0, 360, style.skin, -1)
    for side in (-1, 1):
        x = int(cx + side * style.eye_dx)
        y = int(style.eye_y - 12)
        cv2.line(img, (x - 11, y), (x + 11, y), style.hair, 3)
    nose_y = int((style.eye_y + style.mouth_y) / 2 + 6)
    cv2.line(img, (c[0], int(style.eye_y + 6)), (c[0] + 4, nose_y), style.skin - 35, 2)
    cv2.line(img, (c[0] - 7, nose_y + 2), (c[0] + 7, nose_y + 2), style.skin - 45, 2)
    return img


def _ellipse(img: np.ndarray, center: tuple[float, float], axes: tuple[float, float], value: float,
             arc: tuple[int, int] = (0, 360)) -> None:
    """A filled ellipse (or the sector `arc`, degrees clockwise from +x) with sub-pixel centre and axes
    (4 fractional bits), so that small openings show."""
    cv2.ellipse(img, (int(round(center[0] * 16)), int(round(center[1] * 16))),
                (int(round(axes[0] * 16)), int(round(axes[1] * 16))), 0, *arc, value, -1, cv2.LINE_8, 4)


def _draw_frame(base: np.ndarray, style: FaceStyle, opening: float, rounding: float, eye_open: float) -> np.ndarray:
    img = base.copy()
    jaw_drop = 0.5 * style.max_opening * opening  # the chin goes down as the mouth opens
    _ellipse(img, style.center, (style.axes[0], style.axes[1] + jaw_drop), style.skin, arc=(0, 180))  # lower face
    for side in (-1, 1):
        eye = (style.center[0] + side * style.eye_dx, style.eye_y)
        _ellipse(img, eye, (10, max(5 * eye_open, 0.5)), 235.0)
        if eye_open > 0.3:
            _ellipse(img, eye, (4, 4), 30.0)
    mouth = (style.center[0], style.mouth_y)
    half_w = style.mouth_half_width * (1.0 - 0.25 * rounding) * (1.0 + 0.1 * opening)
    inner_h = style.max_opening * opening
    _ellipse(img, mouth, (half_w + style.lip_thickness, inner_h + style.lip_thickness), style.skin - style.lip_shade)
    if inner_h >= 0.5:
        _ellipse(img, mouth, (half_w * 0.85, inner_h), 25.0)
        if opening > 0.35:  # upper teeth
            _ellipse(img, (mouth[0], mouth[1] - inner_h * 0.7), (half_w * 0.5, inner_h * 0.2), 200.0)
    else:
        x0, x1, y = int(mouth[0] - half_w), int(mouth[0] + half_w), int(round(mouth[1]))
        cv2.line(img, (x0, y), (x1, y), style.skin - style.lip_shade - 30, 1)
    return img


def render(style: FaceStyle, track: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip as uint8 BGR frames, shape (T, 224, 224, 3), for a (T, 2) mouth track."""
    n = len(track)
    base = _draw_static(style, rng)
    shift_x, shift_y = (_smooth_walk(rng, n, MOTION_PX, 0.6) for _ in range(2))
    roll = _smooth_walk(rng, n, MAX_ROLL_DEG, 0.4)
    gain = rng.uniform(0.7, 1.1) * (1 + _smooth_walk(rng, n, 0.15, 0.3))
    gradient = _smooth_walk(rng, n, 0.3, 0.2)
    contrast, noise_sd = rng.uniform(0.35, 1.0), rng.uniform(2.0, 6.0)
    blinks = set()
    for start in np.flatnonzero(rng.random(n) < 0.02):
        blinks.update(range(start, start + 3))
    ramp = np.linspace(-1, 1, FRAME_SIZE, dtype=np.float32)[None, :]  # (1, 224) left-to-right
    tint = np.asarray(style.tint, np.float32)
    frames = np.empty((n, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
    for i, (opening, rounding) in enumerate(track):
        img = _draw_frame(base, style, float(opening), float(rounding), 0.1 if i in blinks else 1.0)
        m = cv2.getRotationMatrix2D(style.center, float(roll[i]), 1.0)
        m[:, 2] += (shift_x[i], shift_y[i])
        img = cv2.warpAffine(img, m, (FRAME_SIZE, FRAME_SIZE), borderMode=cv2.BORDER_REFLECT)
        img = 128 + contrast * (img - 128)
        img = img * gain[i] * (1 + gradient[i] * ramp)
        img += rng.standard_normal((FRAME_SIZE, FRAME_SIZE), dtype=np.float32) * noise_sd
        frames[i] = np.clip(img[:, :, None] * tint, 0, 255).astype(np.uint8)
    return frames


def write_mp4(path, frames: np.ndarray, fps: float = FPS) -> None:
    """Write uint8 BGR frames (T, H, W, 3) as an mp4v video."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write an mp4v video at {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
