"""Visual stress: degradations of the preprocessed video, applied at enhancement time, identically for every system.

Each degradation takes one scene's preprocessed frames, uint8 (T, H, W) as `Preprocessing.video_uint8` gives them
(after grayscale, resize and equalisation, so no video is decoded again per condition), and a severity in its own
unit, and returns new frames of the same shape and dtype. Randomness (dropped frames only) comes from a generator
seeded with (seed, scene id), so a condition is the same for every system and every run with that seed.

| name | severity | identity | what it does |
|---|---|---|---|
| occlusion | fraction of the lower half's area, 0-1 | 0 | a black patch over the mouth region (below) |
| lowres | N px | >= the frame size | each frame downsampled to N x N (area), then back up (bilinear) |
| frozen | k frames | 1 | frame t shows frame k * floor(t / k): the video updates every k frames |
| dropped | fraction of frames, 0-1 | 0 | each frame but the first dropped with that probability, the last kept shown |
| offset | k frames, signed | 0 | video shifted k frames later (k > 0: it lags the audio) or earlier, edges held |
| blank | 1 | (none) | every frame zero: the audio-only control |
| dcnn_rnn_loader | 1 | (none) | every frame but the last zero: the DCNN-RNN entry's published loader |
| rw_blackout, rw_occlusion, rw_lowquality, rw_freeze, rw_desync | (drawn) | (none) | Track 2 of the Real-World AVSE
Challenge 2026: each item's parameters drawn from the official generator's distributions |
| rw_track2 | (drawn) | (none) | one of those five per item, with the official type weights |

The occlusion patch: a rectangle `round(W sqrt(f))` wide and `round(H/2 sqrt(f))` high (so f of the lower half's
area, up to rounding), centred horizontally and centred vertically in the lower half, where a face crop's mouth is;
f = 1 covers the whole lower half. Masks, hands and microphones in real recordings sit there (the 2026 real-world
AVSE challenge ranks systems on such video).

dcnn_rnn_loader: in the DCNN-RNN entry's `dataset.py` (github.com/RamiSaad/AVSE-2-Challenge), `enhanced_frames`
equalises each frame in a loop but assigns the result into its array of zeros after the loop, so only the last
frame survives: its model was trained and tested on such video.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from avse_bench.errors import AvseBenchError

FRAME_SIZE = "frame size"  # an identity severity equal to the run's frame size (lowres)


@dataclass(frozen=True)
class Degradation:
    """One stress condition, declared once (`register_degradation`): its `function` (frames uint8 (T, H, W),
    severity, rng) -> frames, the `unit` of its severity, the severity at which it leaves the video as it is
    (`identity`: a number, `FRAME_SIZE`, or None for a single condition such as blank), and whether it is `single`
    (no severity: its label is its name). Every table, folder, label and plot reads it."""

    name: str
    function: Callable
    unit: str
    identity: float | str | None
    single: bool = False

    def identity_at(self, frame_size: int) -> float | None:
        """The severity that is the identity at `frame_size` px (None for a single condition)."""
        return float(frame_size) if self.identity == FRAME_SIZE else self.identity


DEGRADATIONS: dict[str, Degradation] = {}


def register_degradation(unit: str, identity: float | str | None, single: bool = False):
    """Decorator: declare the decorated function as the degradation of its name."""
    def register(function: Callable) -> Callable:
        DEGRADATIONS[function.__name__] = Degradation(function.__name__, function, unit, identity, single)
        return function
    return register


@register_degradation("fraction of the lower half", 0.0)
def occlusion(frames: np.ndarray, fraction: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> the same with a black patch covering `fraction` (0-1) of the lower half (module docstring)."""
    if not 0.0 <= fraction <= 1.0:
        raise AvseBenchError(f"occlusion: the fraction must be in [0, 1] (got {fraction:g})")
    out = frames.copy()
    height, width = frames.shape[1:]
    half = height - height // 2  # rows of the lower half
    h, w = round(half * math.sqrt(fraction)), round(width * math.sqrt(fraction))
    top = height // 2 + (half - h) // 2
    left = (width - w) // 2
    out[:, top:top + h, left:left + w] = 0
    return out


@register_degradation("px", FRAME_SIZE)
def lowres(frames: np.ndarray, px: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> each frame resized to px x px (INTER_AREA) and back (INTER_LINEAR); px >= H is identity."""
    px = int(px)
    if px < 1:
        raise AvseBenchError(f"lowres: the resolution must be at least 1 px (got {px})")
    height, width = frames.shape[1:]
    if px >= min(height, width):
        return frames.copy()
    small = [cv2.resize(f, (px, px), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack([cv2.resize(s, (width, height), interpolation=cv2.INTER_LINEAR) for s in small]).astype(np.uint8)


@register_degradation("frames held", 1.0)
def frozen(frames: np.ndarray, k: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> frame t replaced by frame k * floor(t / k): each shown frame held for k frames."""
    k = int(k)
    if k < 1:
        raise AvseBenchError(f"frozen: frames are held for at least 1 frame (got {k})")
    return frames[(np.arange(len(frames)) // k) * k]


@register_degradation("fraction of frames", 0.0)
def dropped(frames: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W) uint8 -> frames after the first dropped with probability `fraction` each, the last frame kept
    shown in their place (runs of drops hold the same frame)."""
    if not 0.0 <= fraction <= 1.0:
        raise AvseBenchError(f"dropped: the fraction must be in [0, 1] (got {fraction:g})")
    drop = rng.random(len(frames)) < fraction  # (T,)
    drop[:1] = False
    shown = np.maximum.accumulate(np.where(drop, 0, np.arange(len(frames))))  # index of the frame on screen
    return frames[shown]


@register_degradation("frames (video later > 0)", 0.0)
def offset(frames: np.ndarray, k: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> out[t] = frames[clip(t - k, 0, T - 1)]: k > 0 delays the video by k frames (it lags the
    audio), k < 0 advances it; the first or last frame fills the edge."""
    k = int(k)
    return frames[np.clip(np.arange(len(frames)) - k, 0, len(frames) - 1)]


@register_degradation("", None, single=True)
def blank(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> zeros: the audio-only control (a blank video)."""
    return np.zeros_like(frames)


@register_degradation("", None, single=True)
def dcnn_rnn_loader(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, H, W) uint8 -> every frame but the last zero, as the DCNN-RNN entry's published data loader hands the
    video to its model (module docstring)."""
    out = np.zeros_like(frames)
    out[-1:] = frames[-1:]
    return out


# --- Track 2 of the Real-World AVSE Challenge 2026 -----------------------------------------------------------------
# The official training-time generator, look2hear/datas/visual_perturb/{generate_params,perturb}.py of the baseline
# (../shared/REALWORLD.md section 4): each condition draws its parameters per item from its distributions, here from
# the (seed, item) generator, so every system sees the same degraded video. They act on the preprocessed frames.
TRACK2_WEIGHTS = {"rw_lowquality": 0.35, "rw_occlusion": 0.25, "rw_freeze": 0.18, "rw_desync": 0.12,
                  "rw_blackout": 0.10}  # generate_degradation_params' type weights


def _segment(rng: np.random.Generator, n: int, low: int, high: int) -> slice:
    """A run of randint(low, high) frames (at most n) from a uniform start."""
    length = min(n, int(rng.integers(low, max(low, high) + 1)))
    start = int(rng.integers(0, n - length + 1))
    return slice(start, start + length)


@register_degradation("", None, single=True)
def rw_blackout(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """FULL_MASK: int(r T) consecutive frames black, r = round(U(0.2, 0.8), 2), from a uniform start."""
    n, out = len(frames), frames.copy()
    length = int(round(float(rng.uniform(0.2, 0.8)), 2) * n)
    start = int(rng.integers(0, n - length + 1))
    out[start:start + length] = 0
    return out


@register_degradation("", None, single=True)
def rw_occlusion(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """OCCLUSION: an object over the mouth on randint(0.3 T, 0.5 T) consecutive frames. The official code pastes a
    COCO object (40 px of a 256 px face frame in its test state) at a lip landmark; its object images are not
    distributed, so here a textured opaque ellipse of that relative size (40/256 of the frame width) sits at the
    lower-middle of the frame, where a face crop's mouth is, jittered by up to 1/16 of the frame."""
    n, h, w = frames.shape
    seg = _segment(rng, n, int(0.3 * n), int(0.5 * n))
    side = max(2, round(w * 40 / 256))
    cx = w / 2 + rng.uniform(-w / 16, w / 16)
    cy = h * 0.75 + rng.uniform(-h / 16, h / 16)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - cx) / (side / 2)) ** 2 + ((yy - cy) / (side / 2.5)) ** 2 <= 1  # (H, W)
    texture = np.clip(rng.uniform(40, 220) + 25 * rng.standard_normal((h, w)), 0, 255).astype(np.uint8)
    out = frames.copy()
    out[seg][:, inside] = texture[inside]
    return out


@register_degradation("", None, single=True)
def rw_lowquality(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """LOW_RES: on randint(0.1 T, 0.5 T) consecutive frames, with probability 1/2 Gaussian noise of variance
    U(0, 0.2) on [0, 1] frames, clipped (skimage random_noise 'gaussian'), else a Gaussian blur of kernel 7, sigma
    U(0.1, 2.0) (torchvision GaussianBlur). The official noise branch is fed 0-255 values, which saturates frames
    towards white (REALWORLD.md); here the noise is on [0, 1] as random_noise is documented."""
    n = len(frames)
    seg = _segment(rng, n, int(0.1 * n), int(0.5 * n))
    out = frames.copy()
    if rng.random() < 0.5:
        x = frames[seg].astype(np.float64) / 255.0
        noisy = x + rng.normal(0.0, math.sqrt(float(rng.uniform(0.0, 0.2))), x.shape)
        out[seg] = np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
    else:
        sigma = float(rng.uniform(0.1, 2.0))
        out[seg] = np.stack([cv2.GaussianBlur(f, (7, 7), sigma, borderType=cv2.BORDER_REFLECT_101)
                             for f in frames[seg]])
    return out


@register_degradation("", None, single=True)
def rw_freeze(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """FRAME_FREEZE: randint(3, max(3, int(0.3 T))) consecutive frames all showing the run's first frame."""
    n = len(frames)
    seg = _segment(rng, n, 3, max(3, int(0.3 * n)))
    out = frames.copy()
    out[seg] = frames[seg.start]
    return out


@register_degradation("", None, single=True)
def rw_desync(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """AV_DESYNC: the video shifted by randint(-10, 10) frames (0 becomes +-3), the frame count kept: a positive
    shift repeats frame 0 at the start and drops the end, a negative one drops the start and repeats the last."""
    shift = int(rng.integers(-10, 11))
    shift = shift or int(rng.choice([-3, 3]))
    return offset(frames, shift)


@register_degradation("", None, single=True)
def rw_track2(frames: np.ndarray, severity: float = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """One of the five Track 2 degradations per item, drawn with the official generator's weights
    (`TRACK2_WEIGHTS`), then applied with its own drawn parameters."""
    names = list(TRACK2_WEIGHTS)
    chosen = names[int(rng.choice(len(names), p=np.asarray(list(TRACK2_WEIGHTS.values()))))]
    return DEGRADATIONS[chosen].function(frames, 1, rng)


@dataclass(frozen=True, order=True)
class Stress:
    """One stress condition: a degradation `name` at `severity`. `label` names it in tables and folders."""

    name: str
    severity: float

    @property
    def label(self) -> str:
        return self.name if DEGRADATIONS[self.name].single else f"{self.name}={self.severity:g}"

    @property
    def folder(self) -> str:
        """The label as a folder and file name ("=" would need quoting in some shells): occlusion_0.5."""
        return self.label.replace("=", "_")

    def apply(self, frames: np.ndarray, scene: str, seed: int = 0) -> np.ndarray:
        """This condition applied to one scene's uint8 (T, H, W) frames, its randomness seeded by (seed, scene).
        Colour frames (T, H, W, 3) get it channel by channel with the same draws: the same patch, segment or shift
        in R, G and B (noise the same in all three)."""
        function = DEGRADATIONS[self.name].function
        if frames.ndim == 4:
            return np.stack([self.apply(frames[..., c], scene, seed) for c in range(frames.shape[-1])], axis=-1)
        return function(frames, self.severity, np.random.default_rng([seed, zlib.crc32(scene.encode())]))

    def apply_seeded(self, seed: int):
        """`apply` with `seed` fixed: a (frames, scene) -> frames transform, as enhancement takes one."""
        return lambda frames, scene: self.apply(frames, scene, seed)


def parse_stress(specs) -> list[Stress]:
    """["occlusion=0.5,1", "offset=-2", "blank", ...] -> sorted, distinct Stress conditions. A name without
    severities is its severity 1 (blank, dcnn_rnn_loader). Raises AvseBenchError naming the bad spec."""
    out = set()
    for spec in specs:
        name, _, values = spec.partition("=")
        name = name.strip()
        if name not in DEGRADATIONS:
            raise AvseBenchError(f"--stress {spec!r}: unknown condition {name!r}; choose from "
                                 f"{', '.join(DEGRADATIONS)}")
        try:
            severities = [float(v) for v in values.split(",")] if values.strip() else [1.0]
        except ValueError:
            raise AvseBenchError(f"--stress {spec!r}: severities must be numbers, e.g. {name}=0.5,1") from None
        for severity in severities:
            stress = Stress(name, severity)
            try:
                stress.apply(np.zeros((2, 4, 4), np.uint8), "check")  # a bad severity fails here, before any work
            except AvseBenchError as err:
                raise AvseBenchError(f"--stress {spec!r}: {err}") from None
            out.add(stress)
    return sorted(out)
