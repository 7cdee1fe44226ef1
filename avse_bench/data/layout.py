"""The AVSEC scene layout: `ROOT/<split>/scenes/S*_{target,interferer,mixed}.wav`, `S*_silent.mp4`, and the
optional metadata `ROOT/metadata/scenes.<split>.json`.

`scan_split` finds every scene a split mentions (by its files or by its metadata) and what is missing;
`load_split` turns that into `Scene` objects, or raises naming each broken scene: nothing is dropped silently.
A split where no scene has a target (the challenge's eval split) is an evaluation split: targets are not expected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from avse_bench.errors import AvseBenchError

PARTS = {"target": "_target.wav", "interferer": "_interferer.wav", "mixed": "_mixed.wav", "video": "_silent.mp4"}
# A scene id is everything before the last part suffix, underscores included (LRS2/VoxCeleb-style ids such as
# 5535415699068794046_00001); a leading dot marks a hidden file, never a scene.
_FILE = re.compile(r"^(?P<scene>[^.].*)_(?P<part>target\.wav|interferer\.wav|mixed\.wav|silent\.mp4)$")


@dataclass
class Scene:
    id: str
    split: str
    mixed: Path
    target: Path | None
    interferer: Path | None
    video: Path
    masker: str | None = None  # "speech" | "noise" | "music" | several joined by "+" | None (no metadata)
    snr_db: float | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class SplitScan:
    """What is on disk for one split: files per scene, metadata records, and missing-file problems."""

    root: Path
    split: str
    scenes_dir: Path
    files: dict[str, dict[str, Path]]  # scene id -> part -> path (only the parts that exist)
    metadata: dict[str, dict]  # scene id -> record (empty without a metadata file)
    metadata_path: Path | None
    has_targets: bool
    problems: dict[str, list[str]]  # scene id -> what is wrong
    unrecognised: list[str] = field(default_factory=list)  # names in scenes/ that belong to no scene

    @property
    def scene_ids(self) -> list[str]:
        return sorted(set(self.files) | set(self.metadata))


def _read_metadata(path: Path) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """({scene: record}, {scene: [problem]}) of a metadata file. A scene listed more than once with records that
    differ is a problem naming the fields that disagree (which record is right cannot be known: none is chosen
    silently); identical repeats are one record."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read the scene metadata {path}: {err}") from err
    if not isinstance(records, list) or not all(isinstance(r, dict) and "scene" in r for r in records):
        raise AvseBenchError(f"{path} is not a list of scene records with a 'scene' field")
    by_scene: dict[str, list[dict]] = {}
    for record in records:
        by_scene.setdefault(str(record["scene"]), []).append(record)
    problems = {}
    for scene, found in by_scene.items():
        distinct = [r for i, r in enumerate(found) if r not in found[:i]]
        if len(distinct) > 1:
            fields = sorted({k for r in distinct for k in r if any(o.get(k) != r.get(k) for o in distinct)})
            problems[scene] = [f"{len(found)} records in {path.name} that disagree on {', '.join(fields)}"]
    return {scene: found[0] for scene, found in by_scene.items()}, problems


def scan_split(root, split: str) -> SplitScan:
    """Find every scene of `split` under `root` and which required files each one lacks."""
    root = Path(root)
    scenes_dir = root / split / "scenes"
    if not scenes_dir.is_dir():
        raise AvseBenchError(f"no scene folder {scenes_dir} (expected ROOT/<split>/scenes/ of the AVSEC layout)")
    files: dict[str, dict[str, Path]] = {}
    unrecognised = []
    for path in sorted(scenes_dir.iterdir()):
        m = _FILE.match(path.name)
        if m and path.is_file():
            part = next(k for k, suffix in PARTS.items() if suffix == "_" + m["part"])
            files.setdefault(m["scene"], {})[part] = path
        else:
            unrecognised.append(path.name)
    meta_path = root / "metadata" / f"scenes.{split}.json"
    metadata, problems = _read_metadata(meta_path) if meta_path.is_file() else ({}, {})
    has_targets = any("target" in parts for parts in files.values())
    required = ("mixed", "video", "target") if has_targets else ("mixed", "video")
    for scene_id in sorted(set(files) | set(metadata)):
        missing = [f"{scene_id}{PARTS[p]}" for p in required if p not in files.get(scene_id, {})]
        if missing:
            problems.setdefault(scene_id, []).append("missing file " + ", ".join(missing))
    return SplitScan(root, split, scenes_dir, files, metadata, meta_path if metadata else None, has_targets,
                     problems, unrecognised)


def _interferer_types(record: dict, where: str) -> list[str]:
    """The masker type of every interferer a record lists, in every shape the challenge's tools write: AVSEC-1/2
    `interferer` as one object (or, from the AVSEC-1 scene builder, a list of objects), AVSEC-4 `interferers` as a
    list of 1-3 objects; each object has a string `type` (speech, noise, music). No interferer field: []."""
    field_name = "interferers" if "interferers" in record else "interferer"
    value = record.get(field_name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    types = []
    for i, item in enumerate(items):
        label = f"{field_name}[{i}]" if isinstance(value, list) else field_name
        if not isinstance(item, dict):
            raise AvseBenchError(f"{where}, field {label!r}: expected an object with a 'type', got {item!r}")
        kind = item.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise AvseBenchError(f"{where}, field {label}.type: expected a masker type such as speech, noise or "
                                 f"music, got {kind!r}")
        types.append(kind.strip())
    return types


def masker_of(record: dict, metadata_path: Path | None = None) -> tuple[str | None, float | None]:
    """(masker, SNR in dB) of a metadata record: the interferer's type, or several types joined by "+" in the
    record's order (e.g. "speech+music" for an AVSEC-4 scene with two maskers); None for what the record does not say.
    Raises AvseBenchError naming the file, the scene and the field when a field is there but cannot be understood."""
    where = f"{metadata_path or 'the scene metadata'}: scene {record.get('scene')!r}"
    types = _interferer_types(record, where)
    snr = record.get("SNR")
    if snr is not None:
        try:
            snr = float(snr)
        except (TypeError, ValueError):
            raise AvseBenchError(f"{where}, field 'SNR': expected a number of dB, got {snr!r}") from None
        if not math.isfinite(snr):
            raise AvseBenchError(f"{where}, field 'SNR': expected a finite number of dB, got {snr!r}")
    return ("+".join(types) or None), snr


def load_split(root, split: str) -> list[Scene]:
    """Every scene of `split`, sorted by id; raises `AvseBenchError` naming the broken ones."""
    scan = scan_split(root, split)
    if scan.problems:
        lines = [f"  {sid}: {'; '.join(p)}" for sid, p in sorted(scan.problems.items())]
        raise AvseBenchError(f"{len(scan.problems)} broken scene(s) in {scan.scenes_dir} "
                             f"(run `avse-bench data check {scan.root} --split {split}`):\n" + "\n".join(lines))
    if not scan.scene_ids:
        raise AvseBenchError(f"no scenes in {scan.scenes_dir}")
    scenes = []
    for scene_id in scan.scene_ids:
        parts, record = scan.files[scene_id], scan.metadata.get(scene_id, {})
        masker, snr = masker_of(record, scan.metadata_path)
        scenes.append(Scene(id=scene_id, split=split, mixed=parts["mixed"], target=parts.get("target"),
                            interferer=parts.get("interferer"), video=parts["video"], masker=masker, snr_db=snr,
                            meta=record))
    return scenes
