"""One run configuration: everything a `compare` run is asked for, as one frozen object.

Built once (by the CLI from its options, or by a caller), written whole into the run's manifest (`config`), and
handed to every stage; the torchrun children that train a system under DDP receive the run as one file (the
manifest: `avse-bench train SYSTEM --run RUN/manifest.json`), not as flags that cannot express it. What each stage
reads of the run is declared in `compare.STAGE_READS`, and a stage's key is made from that declaration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from avse_bench.data.loading import LoaderOptions
from avse_bench.errors import AvseBenchError


@dataclass(frozen=True)
class FrameOptions:
    """The frame options laid over the run's chosen preprocessing (`profiles.choose_preprocessing`): the CLI's
    `--frame-size` (px), `--no-equalize` and `--centre-crop`; None leaves the chosen value."""

    frame_size: int | None = None
    equalize: bool | None = None
    crop: str | None = None

    def given(self) -> dict:
        """The options that were given, as `choose_preprocessing` takes them."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RunConfig:
    """A compare run. `systems`: their names, in order. `data_root`: an AVSEC or AVSEC-4 root (None: the embedded
    corpus of the profile). `profile`: quick, paper or smoke. `out_dir`: the run folder (None: reports/<profile>).
    `device`: auto, cpu or cuda. `seed`. `track`: mono or binaural (None: the layout's default). `frames`: frame
    options over the chosen preprocessing. `metrics`: a `--metrics` spec (None: the track's). `stress`: stress
    condition specs such as "occlusion=0.5,1" (None: no stress; `data.stress.parse_stress`). `loader`: DataLoader
    workers and frame budgets (they change speed only). `nproc_per_node`: training processes under torchrun.
    `weights`: (system, file) pairs of supplied weights. `listen_scenes`: the dev scenes the listening cards show
    (None: chosen). `command_line`: as typed, for the sheet's item 11."""

    systems: tuple[str, ...]
    data_root: Path | None = None
    profile: str = "quick"
    out_dir: Path | None = None
    device: str = "auto"
    seed: int = 0
    track: str | None = None
    frames: FrameOptions = field(default_factory=FrameOptions)
    metrics: str | None = None
    stress: tuple[str, ...] | None = None
    loader: LoaderOptions = field(default_factory=LoaderOptions)
    nproc_per_node: int = 1
    weights: tuple[tuple[str, str], ...] = ()
    listen_scenes: tuple[str, ...] | None = None
    command_line: tuple[str, ...] = ()

    def __post_init__(self):  # lists and dicts from callers become the frozen forms
        def put(name, value):
            object.__setattr__(self, name, value)

        put("systems", tuple(self.systems))
        if isinstance(self.weights, dict):
            put("weights", tuple((str(k), str(v)) for k, v in self.weights.items()))
        else:
            put("weights", tuple((str(k), str(v)) for k, v in self.weights))
        for name in ("stress", "listen_scenes"):
            value = getattr(self, name)
            if value is not None:
                put(name, tuple(getattr(c, "label", c) for c in value))  # Stress objects or their specs
        put("command_line", tuple(self.command_line))
        for name in ("data_root", "out_dir"):
            if getattr(self, name) is not None:
                put(name, Path(getattr(self, name)))
        if isinstance(self.frames, dict):
            put("frames", FrameOptions(**self.frames))
        if isinstance(self.loader, dict):
            put("loader", LoaderOptions(**self.loader))
        if len(set(self.systems)) != len(self.systems):
            raise AvseBenchError(f"a system is named twice: {' '.join(self.systems)}")
        if not self.systems:
            raise AvseBenchError("compare needs at least one system")
        if self.nproc_per_node < 1:
            raise AvseBenchError(f"--nproc-per-node must be 1 or more (got {self.nproc_per_node})")

    def to_dict(self) -> dict:
        """The configuration as JSON values (paths as text), as the manifest records it."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, FrameOptions | LoaderOptions):
                value = asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        """The configuration a manifest recorded (`to_dict`); AvseBenchError for one that is not."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown or "systems" not in values:
            raise AvseBenchError(f"not a run configuration (unknown fields {sorted(unknown)}, or no systems)")
        return cls(**values)
