"""A system's published sheet (`[sheet]` in its system.toml) sorted onto the AVSEC-2 items 1-13.

`[sheet]` holds the published values as the sheet states them (numbers or text, nested tables allowed). A key is
placed on an item by its name: the item's own key (`parameters`, `flops`, `training_steps`, `latency`, `rtf`,
`training_time_per_epoch`, `memory`, `hardware`, `gpus`, `training_process`, `reproducibility`,
`known_limitations`, `requirements`), one of a few synonyms, or any of these followed by `_...`
(`memory_training_gpu_mib` lands on item 7). A key that fits no item is kept and listed, never dropped.
"""

from __future__ import annotations

import re

from avse_bench.fmt import describe

ITEMS: dict[int, str] = {
    1: "Parameters",
    2: "FLOPs",
    3: "Training steps",
    4: "Latency",
    5: "Real-time factor (RTF)",
    6: "Training time per epoch",
    7: "Memory footprint",
    8: "Hardware",
    9: "Number and type of GPUs",
    10: "Training process",
    11: "Reproducibility",
    12: "Known limitations",
    13: "Hardware and software requirements",
}

KEYS: dict[int, tuple[str, ...]] = {
    1: ("parameters", "params", "trainable_parameters", "size_mb", "model_size"),
    2: ("flops", "gflops", "macs"),
    3: ("training_steps", "steps"),
    4: ("latency", "latency_ms"),
    5: ("rtf", "real_time_factor"),
    6: ("training_time_per_epoch", "time_per_epoch", "epoch_time", "epoch_seconds"),
    7: ("memory", "memory_footprint"),
    8: ("hardware",),
    9: ("gpus", "gpu", "num_gpus", "number_of_gpus"),
    10: ("training_process", "preprocessing", "architecture", "optimiser", "optimizer", "batch_size", "learning_rate",
         "lr", "lr_schedule", "epochs"),
    11: ("reproducibility",),
    12: ("known_limitations", "limitations"),
    13: ("requirements", "hardware_and_software_requirements", "software"),
}


def _normal(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def item_of(key: str) -> int | None:
    """The item a `[sheet]` key belongs to: an exact name first, then the longest name it starts with."""
    key = _normal(key)
    best, best_len = None, 0
    for no, names in KEYS.items():
        for name in names:
            if key == name:
                return no
            if key.startswith(name + "_") and len(name) > best_len:
                best, best_len = no, len(name)
    return best


def published_items(sheet: dict) -> tuple[dict[int, str], dict[str, str]]:
    """({item_no: text}, {unplaced key: text}) for one system's `[sheet]`.

    An item's text is its key's value when the key is the item's own name, else "key: value" parts joined by "; "
    (so `memory_training_gpu_mib = 22453` reads "memory_training_gpu_mib: 22453")."""
    placed: dict[int, list[str]] = {}
    unplaced: dict[str, str] = {}
    for key, value in sheet.items():
        no = item_of(key)
        if no is None:
            unplaced[key] = describe(value)
        elif _normal(key) == KEYS[no][0]:
            placed.setdefault(no, []).insert(0, describe(value))
        else:
            placed.setdefault(no, []).append(f"{key}: {describe(value)}")
    return {no: "; ".join(parts) for no, parts in placed.items()}, unplaced


def hardware_label(sheet: dict) -> str | None:
    """The hardware the published figures were measured on, for the reference column's heading."""
    for key, value in sheet.items():
        if item_of(key) == 8 and isinstance(value, str):
            return value
    return None
