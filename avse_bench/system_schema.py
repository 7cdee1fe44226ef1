"""What the harness reads from a system's `system.toml`, declared once, and the check of a file against it.

Every key the harness itself reads has a declared kind (`Key`): a `system.toml` whose value is of another kind, out
of range, or a key the harness does not know in a table it reads, is refused when the system is loaded, in one line
naming the file, the table and the key (`check_config`). Tables the harness does not interpret stay free: `[model]`
(the keyword arguments of the system's own `build_model`, apart from `channels`), `[sheet]` (the published sheet's
values, matched by `report.published`) and `[sheet_mapping]` (text). tomllib reads the file; this module only says
what a value may be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from avse_bench.data.preprocessing import COLOURS, CROPS
from avse_bench.errors import AvseBenchError
from avse_bench.nn.loss import LOSSES


@dataclass(frozen=True)
class Key:
    """One key: `kind` "str" | "int" | "number" | "bool" | "text-or-number"; `choices` (for str) or `minimum` (for
    int and number, inclusive unless `above`)."""

    kind: str
    choices: tuple = ()
    minimum: float | None = None
    above: bool = False  # the minimum itself is not allowed (a learning rate of 0)

    def problem(self, value) -> str | None:
        """Why `value` is not of this key's kind, or None."""
        if self.kind == "str":
            if not isinstance(value, str):
                return f"must be text (got {value!r})"
            if self.choices and value.lower() not in self.choices:
                return f"must be one of {', '.join(self.choices)} (got {value!r})"
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"must be true or false (got {value!r})"
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be a whole number (got {value!r})"
        elif self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return f"must be a number (got {value!r})"
        if self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum):
            return f"must be {'>' if self.above else '>='} {self.minimum:g} (got {value!r})"
        return None


TEXT = Key("str")
POSITIVE = Key("number", minimum=0, above=True)
AT_LEAST_ONE = Key("int", minimum=1)

SYSTEM = {"name": TEXT, "title": TEXT, "description": TEXT, "source": TEXT, "initialisation": TEXT}
MODEL = {"channels": Key("int", minimum=1)}  # the rest: build_model's own keyword arguments
PREPROCESSING = {"size": Key("int", minimum=8), "equalize": Key("bool"), "crop": Key("str", CROPS),
                 "face_size": Key("int", minimum=8), "color": Key("str", COLOURS),
                 "mean": Key("number"), "std": POSITIVE}  # mean, std: this system's (x - mean) / std of its frames
INFERENCE = {"video_frames": Key("str", ("audio", "video")), "min_video_frames": Key("int", minimum=0),
             "video_padding": Key("str", ("edge", "zeros")), "output": Key("str", ("as is", "peak"))}
RECIPE = {  # what avse_bench.train reads (build_optimizer, build_scheduler, build_loaders, the loop)
    "optimizer": Key("str", ("adam", "rmsprop")), "lr": POSITIVE, "weight_decay": Key("number", minimum=0),
    "schedule": Key("str", ("plateau", "exponential", "none")), "gamma": POSITIVE,
    "plateau_factor": POSITIVE, "plateau_patience": Key("int", minimum=0),
    "batch_size": AT_LEAST_ONE, "epochs": AT_LEAST_ONE, "crop_seconds": POSITIVE, "max_steps": AT_LEAST_ONE,
    "grad_clip": Key("number", minimum=0),
    "loss": Key("str", tuple(LOSSES)), "val_loss": Key("str", tuple(LOSSES)),
    "early_stop_patience": AT_LEAST_ONE,  # epochs without a lower validation loss before training stops
    "keep": Key("str", ("last", "best")),  # which weights model.pt holds: the last epoch's or the lowest val loss's
    "crop_video_offset": Key("int"),  # frames a training crop's video starts from its audio (AVSEC-1: -2)
}
TABLES = {"system": SYSTEM, "model": MODEL, "preprocessing": PREPROCESSING, "inference": INFERENCE,
          "recipe": RECIPE}
FREE = ("sheet", "sheet_mapping")  # read as given (report.published matches the [sheet] keys)
OPEN = ("model",)  # tables whose other keys belong to the system (build_model's arguments)


def _check_table(table: dict, keys: dict, name: str, where: Path, open_table: bool) -> None:
    if not isinstance(table, dict):
        raise AvseBenchError(f"{where}: [{name}] must be a table (got {table!r})")
    for key, value in table.items():
        if key not in keys:
            if open_table:
                continue
            raise AvseBenchError(f"{where}: [{name}] has an unknown key {key!r}; the harness reads "
                                 f"{', '.join(keys)} (docs/ADDING_A_SYSTEM.md)")
        problem = keys[key].problem(value)
        if problem:
            raise AvseBenchError(f"{where}: [{name}] {key} {problem}")


def check_config(config: dict, where: Path) -> None:
    """AvseBenchError, in one line naming `where`, the table and the key, for the first value of `config` (a parsed
    system.toml) that is not what the harness reads: a missing [system], [model] or [recipe] table, an unknown
    table or key, a value of the wrong kind or range; `[profiles.<name>]` tables are checked as `[recipe]`, their
    `[profiles.<name>.model]` as `[model]`."""
    for table in ("system", "model", "recipe"):
        if table not in config:
            raise AvseBenchError(f"{where} lacks a [{table}] table")
    unknown = [t for t in config if t not in TABLES and t not in FREE and t != "profiles"]
    if unknown:
        raise AvseBenchError(f"{where}: unknown table [{unknown[0]}]; a system.toml has "
                             f"{', '.join(f'[{t}]' for t in (*TABLES, 'profiles.<name>', *FREE))}")
    for name, keys in TABLES.items():
        if name in config:
            _check_table(config[name], keys, name, where, name in OPEN)
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict):
        raise AvseBenchError(f"{where}: [profiles] must hold tables such as [profiles.smoke]")
    for profile, table in profiles.items():
        if not isinstance(table, dict):
            raise AvseBenchError(f"{where}: [profiles.{profile}] must be a table (got {table!r})")
        recipe = {k: v for k, v in table.items() if k != "model"}
        _check_table(recipe, RECIPE, f"profiles.{profile}", where, False)
        if "model" in table:  # [profiles.<name>.model]: build_model's arguments for this profile
            _check_table(table["model"], MODEL, f"profiles.{profile}.model", where, True)
    for name in FREE:
        if name in config and not isinstance(config[name], dict):
            raise AvseBenchError(f"{where}: [{name}] must be a table (got {config[name]!r})")
