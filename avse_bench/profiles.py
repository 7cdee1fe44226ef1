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
    # Seconds, for tests: 1 warm-up call, then 5 timed; throughput from 2 calls at batch 2. Scenes of at least
    # 1.2 s: DNSMOS doubles a clip shorter than its 9.01 s window until it is not, so one of 1.0-1.12 s is scored on
    # 16-18 s of itself in 7-9 windows, one of 1.13-1.5 s in 1-3 (metrics/dnsmos.py).
    "smoke": {"video_size": 32, "corpus": {"train": 6, "dev": 4, "min_seconds": 1.2, "max_seconds": 1.5},
              "profiling": {"seconds": 1.0, "repeats": 5, "throughput_batch": 2,
                            "timing": {"warmup": 1, "throughput_warmup": 1, "throughput_repeats": 1}},
              "stress": ("occlusion=0.5", "offset=-2,2")},
}


def get_profile(name: str) -> dict:
    from avse_bench.errors import AvseBenchError

    if name not in PROFILES:
        raise AvseBenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def choose_preprocessing(systems: list, profile: str, frame_size: int | None = None, equalize: bool | None = None,
                         crop: str | None = None):
    """(Preprocessing, rule): the frames every system of a run shares, and in words the rule that chose them (the
    manifest and the sheet state both).

    Base: the systems' `[preprocessing]` declaration (the frames their published recipes use) when every system
    that declares one declares the same; the profile's (its frame size, equalised, no crop) when none declares one.
    Options given (`frame_size`, `equalize`, `crop`: the CLI's --frame-size, --no-equalize, --centre-crop) are laid
    over the base. Raises AvseBenchError when two systems declare different preprocessing and no option is given,
    and for an invalid setting."""
    from avse_bench.data.preprocessing import Preprocessing
    from avse_bench.errors import AvseBenchError

    options = {k: v for k, v in (("size", frame_size), ("equalize", equalize), ("crop", crop)) if v is not None}
    declared = {s.name: s.declared_preprocessing() for s in systems if s.declared_preprocessing() is not None}
    profile_base = {"size": get_profile(profile)["video_size"], "equalize": True, "crop": "none"}
    distinct = {tuple(sorted(d.items())) for d in declared.values()}
    if len(distinct) > 1 and not options:
        listed = "; ".join(f"{name}: {d}" for name, d in declared.items())
        raise AvseBenchError(f"the systems declare different preprocessing ({listed}); one run gives all its "
                             f"systems the same frames: choose them with --frame-size, --no-equalize, --centre-crop")
    if len(distinct) == 1:
        base, rule = {**profile_base, **next(iter(declared.values()))}, (
            f"declared by {', '.join(declared)} (system.toml [preprocessing]: the published recipe's frames)")
    else:
        base, rule = profile_base, f"the {profile} profile's"
    if options:
        rule += " with " + ", ".join(f"{k} = {v}" for k, v in options.items()) + " from the command line"
    try:
        return Preprocessing(**{**base, **options}), rule
    except TypeError as err:  # an unknown key in a [preprocessing] table
        raise AvseBenchError(f"[preprocessing]: {err}") from err
