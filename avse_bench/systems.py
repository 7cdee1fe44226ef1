"""The system registry: a system is a folder holding `model.py` (build_model) and `system.toml` (its settings).

What a system declares (docs/ADDING_A_SYSTEM.md): `[model] channels` (1: mono audio in and out, the default;
2: a binaural (left, right) pair), `[preprocessing]` (the frames its published recipe uses: size, equalize, crop;
`profiles.choose_preprocessing` reads it) and `[inference]` (`Feed`: how a whole utterance is given to it and what
is done to its output).

Search path: the built-in folder (`avse_bench.builtin_systems`, the repository's `systems/`), then every folder
listed in the environment variable AVSE_BENCH_SYSTEMS (os.pathsep-separated). Each system folder is imported as a
package of its own under a unique name (`System.package_name`), its `model.py` as that package's `model`: a system
may hold several modules and subfolders and import them relatively, and no two systems share a module. The folder
is never put on sys.path. A system that does not load is named with its error; the others keep working.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from avse_bench.contract import FrameNormalisation, OutputCheck
from avse_bench.errors import AvseBenchError
from avse_bench.system_schema import check_config

ENV_VAR = "AVSE_BENCH_SYSTEMS"


def builtin_dir() -> Path:
    """The built-in systems: package data when installed, the repository's `systems/` in a source checkout."""
    try:
        import avse_bench.builtin_systems as builtin

        return Path(builtin.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "systems"


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return [builtin_dir(), *extra]


def available() -> dict[str, Path]:
    """{name: folder} for every folder on the search path holding model.py and system.toml (first one wins)."""
    found: dict[str, Path] = {}
    for root in search_path():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / "model.py").is_file() and (folder / "system.toml").is_file():
                found.setdefault(folder.name, folder)
    return found


NORMALISATION_KEYS = ("mean", "std")  # [preprocessing] keys that belong to one system, not to the run's frames
MODEL_TABLES = ("model", "preprocessing", "inference", "recipe", "profiles")  # what changes the model or its run
VIDEO_FRAMES = ("audio", "video")
VIDEO_PADDING = ("edge", "zeros")
OUTPUTS = ("as is", "peak")


@dataclass(frozen=True)
class Feed:
    """How the harness gives a system a whole utterance, and what it does with the output (`[inference]` of
    system.toml). `video_frames`: "audio" (the default: as many frames as cover the audio, ceil(L / 640)) or
    "video" (the video's own frames, as the AVSEC-4 baseline's test path, dataset.py `process_full_batch`).
    `min_video_frames`: fewer frames are padded up to this many (the AVSEC-4 baseline: 75, its MAX_FRAMES).
    `video_padding`: frames appended, here and to training crops past a video's end: "edge" (the last frame
    repeated, the default) or "zeros" (black frames, as the AVSEC-4 baseline). `output`: "as is" (the default) or
    "peak" (divided by its largest absolute sample over all channels, as the AVSEC-4 baseline's `enhance`).
    Raises AvseBenchError for a value outside these."""

    video_frames: str = "audio"
    min_video_frames: int = 0
    video_padding: str = "edge"
    output: str = "as is"

    def __post_init__(self):
        for key, allowed in (("video_frames", VIDEO_FRAMES), ("video_padding", VIDEO_PADDING), ("output", OUTPUTS)):
            if getattr(self, key) not in allowed:
                raise AvseBenchError(f"[inference] {key} must be one of {', '.join(allowed)} "
                                     f"(got {getattr(self, key)!r})")
        if not isinstance(self.min_video_frames, int) or self.min_video_frames < 0:
            raise AvseBenchError(f"[inference] min_video_frames must be a whole number >= 0 "
                                 f"(got {self.min_video_frames!r})")


@dataclass
class System:
    """A system folder: `name`, `path` (the folder), `config` (its parsed system.toml, checked against
    `system_schema`). Its `model.py` is imported on first use (`_module`)."""

    name: str
    path: Path
    config: dict = field(repr=False)
    overrides: dict = field(default_factory=dict)  # {"profile", **[profiles.<profile>.model]} once applied

    def for_profile(self, profile: str) -> System:
        """This system with `[profiles.<profile>.model]` laid over `[model]` (a published model made smoke-sized
        for one profile; `overrides` records what was changed, and the sheet states it); itself when the profile
        overrides nothing or the overrides are applied already."""
        table = self.config.get("profiles", {}).get(profile, {}).get("model")
        if not table or self.overrides:
            return self
        config = copy.deepcopy(self.config)
        config["model"] = {**config["model"], **table}
        return System(self.name, self.path, config, overrides={"profile": profile, **table})

    def build_model(self) -> nn.Module:
        """A fresh model from `model.py`'s build_model(config['model']), its outputs checked against the call
        contract on every forward (`contract.OutputCheck`, a forward hook: the state dict is unchanged).
        AvseBenchError naming the system when build_model fails or returns no nn.Module."""
        try:
            model = self._module().build_model(copy.deepcopy(self.config.get("model", {})))
        except AvseBenchError:
            raise
        except Exception as err:  # the system's own code
            raise AvseBenchError(f"system {self.name}: build_model({self.config.get('model', {})}) raised "
                                 f"{type(err).__name__}: {err}") from None
        if not isinstance(model, nn.Module):
            raise AvseBenchError(f"system {self.name}: build_model returned {type(model).__name__}, not a "
                                 "torch.nn.Module")
        norm = self.frame_normalisation()
        if norm is not None:
            model.register_forward_pre_hook(FrameNormalisation(*norm))
        model.register_forward_hook(OutputCheck(self.name, self.channels))
        return model

    def convert_state_dict(self, state: dict) -> dict:
        """`state` in this system's own module names: `model.py`'s `convert_state_dict(state)` where the system
        declares one (a mapping from its published code's names), else `state` unchanged."""
        convert = getattr(self._module(), "convert_state_dict", None)
        return convert(state) if convert is not None else state

    @property
    def channels(self) -> int:
        """Audio channels the model reads and writes: 1 (mono, (B, L) -> (B, L)) or 2 (binaural, (B, 2, L) ->
        (B, 2, L)); `[model] channels` of system.toml, 1 when absent."""
        return int(self.config["model"].get("channels", 1))

    def declared_preprocessing(self) -> dict | None:
        """The frames the published recipe uses, from `[preprocessing]` (size, equalize, crop: what every system of
        a run shares, `profiles.choose_preprocessing`), or None when it declares none. `mean` and `std` are this
        system's own (`frame_normalisation`), not part of the shared frames."""
        table = {k: v for k, v in (self.config.get("preprocessing") or {}).items() if k not in NORMALISATION_KEYS}
        return table or None

    def frame_normalisation(self) -> tuple[float, float] | None:
        """(mean, std) of `[preprocessing]` (either alone: the other 0 or 1), applied to the [0, 1] video before
        this system's model sees it (`contract.FrameNormalisation`), or None when neither is declared."""
        table = self.config.get("preprocessing") or {}
        if not any(k in table for k in NORMALISATION_KEYS):
            return None
        return float(table.get("mean", 0.0)), float(table.get("std", 1.0))

    def feed(self) -> Feed:
        """How a whole utterance is given to the model (`[inference]` of system.toml; defaults otherwise)."""
        table = self.config.get("inference", {})
        unknown = set(table) - set(Feed.__dataclass_fields__)
        if unknown:
            raise AvseBenchError(f"{self.path / 'system.toml'}: [inference] has unknown key(s) "
                                 f"{', '.join(sorted(unknown))}")
        return Feed(**table)

    def recipe(self, profile: str) -> dict:
        """The published `[recipe]`, with `[profiles.<profile>]` laid over it (`paper` is the recipe as it stands)."""
        recipe = dict(self.config.get("recipe", {}))
        if profile != "paper":
            profiles = self.config.get("profiles", {})
            if profile not in profiles:
                raise AvseBenchError(f"system {self.name!r} has no [profiles.{profile}] in {self.path / 'system.toml'}")
            recipe.update({k: v for k, v in profiles[profile].items() if k != "model"})
        return recipe

    def model_inputs(self) -> dict:
        """The parts of system.toml that change what the harness makes of this system (`[model]`, `[preprocessing]`,
        `[inference]`, `[recipe]`, `[profiles.*]`): what its stages read of the file. `[system]` text, `[sheet]` and
        `[sheet_mapping]` only change the report, which is rendered anew every time."""
        return {table: self.config[table] for table in MODEL_TABLES if table in self.config}

    def code_hash(self) -> str:
        """sha256 (16 hex digits) of the code a model of this system is made by: every file of the system's folder
        but `system.toml` (its `model.py` and anything else there, by relative path and bytes; caches, hidden files
        and Markdown left out; system.toml enters keys by `model_inputs`) and the shared blocks of `avse_bench.nn`
        the systems import. Part of every stage key that depends on the model (training, enhancement, profile): a
        change of code is a change of input."""
        digest = hashlib.sha256()
        nn_dir = Path(__file__).resolve().parent / "nn"
        for label, root in (("system", self.path), ("avse_bench.nn", nn_dir)):
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = path.relative_to(root)
                if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or \
                        rel.suffix == ".md" or (label == "system" and rel.as_posix() == "system.toml"):
                    continue
                digest.update(f"{label}/{rel.as_posix()}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()[:16]

    def _module(self):
        """`model.py` of the folder, imported as the module `model` of a package of its own (`package_name`), so
        that it may import its folder's other modules relatively (`from .net import Net`, `from .sub.layers import
        X`) and two systems never share a module. The folder is never put on sys.path. AvseBenchError naming the
        system, the file and the error when it does not load (a syntax error, a failed import, an exception)."""
        module = load_package_module(self.package_name, self.path, "model")
        if not hasattr(module, "build_model"):
            raise AvseBenchError(f"system {self.name}: {self.path / 'model.py'} defines no build_model(config) "
                                 "function")
        return module

    @property
    def package_name(self) -> str:
        """The name the system's folder is imported under: unique per folder (its resolved path's hash)."""
        digest = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:10]
        return f"avse_bench_system_{''.join(c if c.isalnum() else '_' for c in self.name)}_{digest}"


def load_package_module(package: str, folder: Path, module: str):
    """`folder/<module>.py` imported as `<package>.<module>`, `package` being `folder` as a namespace of its own
    (registered in sys.modules with `__path__ = [folder]`, so relative imports inside the folder work). Raises
    AvseBenchError naming the file and the error for anything the import raises."""
    import sys
    import traceback
    import types

    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(folder)]
        pkg.__package__ = package
        sys.modules[package] = pkg
    name = f"{package}.{module}"
    spec = importlib.util.spec_from_file_location(name, folder / f"{module}.py",
                                                  submodule_search_locations=None)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except Exception as err:  # the system's own code: any failure is the system's, said in one line
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).is_relative_to(folder)]
        at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        if isinstance(err, SyntaxError) and err.filename:
            at = f" (at {Path(err.filename).name}:{err.lineno})"
        raise AvseBenchError(f"{folder / (module + '.py')} does not load: {type(err).__name__}: "
                             f"{getattr(err, 'msg', None) or err}{at}") from None
    return loaded


def load(name: str) -> System:
    """The system called `name`; AvseBenchError listing the available ones if there is none."""
    systems = available()
    if name not in systems:
        where = ", ".join(str(p) for p in search_path())
        raise AvseBenchError(f"unknown system {name!r}; available: {', '.join(systems) or 'none'} (searched {where})")
    folder = systems[name]
    try:
        with open(folder / "system.toml", "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise AvseBenchError(f"{folder / 'system.toml'} is not valid TOML: {err}") from err
    check_config(config, folder / "system.toml")
    system = System(name=name, path=folder, config=config)
    if system.channels not in (1, 2):
        raise AvseBenchError(f"{folder / 'system.toml'}: [model] channels must be 1 or 2 (got {system.channels})")
    system.feed()  # a bad [inference] table fails here, not minutes later
    return system


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def print_systems() -> int:
    """One line per system: name, parameter count, audio channels, title, folder; a system that does not load (its
    system.toml or its model.py) is listed with its error and the others still are. Returns how many did not."""
    broken = 0
    for name, folder in available().items():
        try:
            system = load(name)
            params = count_parameters(system.build_model())
        except AvseBenchError as err:
            broken += 1
            print(f"{name:<24} {'cannot be loaded':>19}  {err}  ({folder})")
            continue
        io = "mono" if system.channels == 1 else "binaural"
        print(f"{name:<24} {params:>12,} params  {io:<8}  {system.config['system'].get('title', '')}  "
              f"({system.path})")
    return broken
