"""Harness-level run profiles: the settings that must be identical for every system in one comparison.

A system's own recipe (optimiser, batch, steps) for each profile lives in its `system.toml`
(`[recipe]` is `paper`; `[profiles.quick]` and `[profiles.smoke]` override it). What is here is shared by all
systems so that a comparison is fair by construction: the preprocessing and the embedded corpus's size.
"""

from __future__ import annotations

DEFAULT_STRESS = ("occlusion=0.25,0.5,1", "lowres=16,8,4", "frozen=2,5,10", "dropped=0.25,0.5,0.75",
                  "offset=-5,-2,2,5", "dcnn_rnn_loader")  # paper: 3 severities each (offset both ways)

PROFILES: dict[str, dict] = {
    # The published recipes as they stand: 128 px frames (the DCNN-RNN sheet), histogram-equalised.
    # `profiling`: the reference input's length and the timed repetitions (None: the profiler's defaults).
    "paper": {"video_size": 128, "corpus": {"train": 200, "dev": 40, "min_seconds": 2.0, "max_seconds": 4.0},
              "profiling": {"seconds": 3.0, "repeats": None}, "stress": DEFAULT_STRESS},
    # What fits a 2-core CPU in minutes, the bench within 15 (docs: README "What the bench gives"): 32 dev scenes
    # (40 until stress and DNSMOS joined) and `compare --stress` with one severity of three conditions (the curve
    # runs from the identity, the clean video, to it).
    "quick": {"video_size": 64, "corpus": {"train": 200, "dev": 32, "min_seconds": 2.0, "max_seconds": 4.0},
              "profiling": {"seconds": 3.0, "repeats": None},
              "stress": ("occlusion=1", "offset=5", "dcnn_rnn_loader")},
    # Seconds, for tests.
    "smoke": {"video_size": 32, "corpus": {"train": 6, "dev": 4, "min_seconds": 1.0, "max_seconds": 1.5},
              "profiling": {"seconds": 1.0, "repeats": 5}, "stress": ("occlusion=0.5", "offset=-2,2")},
}


def get_profile(name: str) -> dict:
    from avse_bench.errors import AvseBenchError

    if name not in PROFILES:
        raise AvseBenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def run_preprocessing_for(profile: str, frame_size: int | None = None, equalize: bool = True):
    """The preprocessing every system of a run shares: the profile's frame size unless `frame_size` is given, and
    histogram equalisation unless `equalize` is False (supplied weights trained on other frames, e.g. the official
    baseline's 224 px unequalised ones)."""
    from avse_bench.data.preprocessing import Preprocessing

    return Preprocessing(size=frame_size if frame_size is not None else get_profile(profile)["video_size"],
                         equalize=equalize)
