"""The AVSEC scene layouts, read as distributed, and the tracks they are scored on.

AVSEC-1/2/3 (`avsec2`): `ROOT/<split>/scenes/<scene>_{target,interferer,mixed}.wav` and `<scene>_silent.mp4`, mono.
AVSEC-4 (`avsec4`, data_preparation/avse4 of cogmhear/avse_challenge): per scene `_mix.wav` (2 channels, left and
right ear), `_target.wav`, `_target_anechoic.wav` (the binaural reference), `_interferer.wav` (2 channels each),
`_mono_mix.wav`, `_target_mono.wav`, `_target_mono_anechoic.wav`, `_interferer_mono.wav` ((L+R)/2 of each) and
`_silent.mp4`; its eval split holds only `_silent.mp4`, `_mono_mix.wav` and `_mix.wav`. Metadata (optional) in
`ROOT/metadata/scenes.<split>.json`. The layout is detected per split from its file names (`detect_layout`): a split
with `_mixed.wav` files is AVSEC-1/2/3, one with any file only AVSEC-4 has is AVSEC-4, one with both is refused.

Tracks (`TRACK_FILES`): AVSEC-1/2/3 data has the mono track only. AVSEC-4 has the binaural track (the default:
the challenge's own evaluation, MBSTOI of a 2-channel output against `_target_anechoic`) and the mono track
(systems read `_mono_mix`; scored against `_target_mono_anechoic`, the mono reference of the AVSEC-4 data
specification; trained against `_target_anechoic` downmixed to (L+R)/2 as the official baseline's dataset.py does,
`load_wav(..., mono=True)`). A `Scene` of a track carries its mixture, training target and scoring reference.

`scan_split` finds every scene a split mentions (by its files or by its metadata) and what is missing;
`load_split` turns that into `Scene` objects, or raises naming each broken scene: nothing is dropped silently.
A split where no scene has any reference file (`reference_parts`: the challenge's eval split) is an evaluation
split: targets are not expected; one with some reference files requires them all.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from avse_bench.errors import AvseBenchError

AVSEC2, AVSEC4 = "avsec2", "avsec4"
LAYOUT_NAMES = {AVSEC2: "AVSEC-1/2/3", AVSEC4: "AVSEC-4"}
PARTS = {  # layout -> part -> file suffix
    AVSEC2: {"target": "_target.wav", "interferer": "_interferer.wav", "mixed": "_mixed.wav", "video": "_silent.mp4"},
    AVSEC4: {"mix": "_mix.wav", "target": "_target.wav", "target_anechoic": "_target_anechoic.wav",
             "interferer": "_interferer.wav", "mono_mix": "_mono_mix.wav", "target_mono": "_target_mono.wav",
             "target_mono_anechoic": "_target_mono_anechoic.wav", "interferer_mono": "_interferer_mono.wav",
             "video": "_silent.mp4"},
}
BINAURAL_PARTS = {AVSEC4: ("mix", "target", "target_anechoic", "interferer")}  # 2 channels; every other file mono
MONO_PARTS = {"mix": "mono_mix", "target": "target_mono", "interferer": "interferer_mono",
              "target_anechoic": "target_mono_anechoic"}  # AVSEC-4: each binaural part's (L+R)/2 file
REQUIRED = {  # layout -> (parts of a split with targets, parts of an evaluation split)
    AVSEC2: (("mixed", "video", "target"), ("mixed", "video")),
    AVSEC4: (tuple(PARTS[AVSEC4]), ("mix", "mono_mix", "video")),
}
MONO, BINAURAL = "mono", "binaural"
TRACKS = (MONO, BINAURAL)
DEFAULT_TRACK = {AVSEC2: MONO, AVSEC4: BINAURAL}
TRACK_FILES = {  # (layout, track) -> role -> part
    (AVSEC2, MONO): {"mixed": "mixed", "target": "target", "reference": "target", "interferer": "interferer"},
    (AVSEC4, MONO): {"mixed": "mono_mix", "target": "target_anechoic", "reference": "target_mono_anechoic",
                     "interferer": "interferer_mono"},
    (AVSEC4, BINAURAL): {"mixed": "mix", "target": "target_anechoic", "reference": "target_anechoic",
                         "interferer": "interferer"},
}
TRACK_CHANNELS = {MONO: 1, BINAURAL: 2}


def reference_parts(layout: str) -> tuple[str, ...]:
    """The parts that only a split with references has (targets, their anechoic and mono forms, interferers): an
    evaluation split has none of them. A split holding any of them is scored against references, and a scene that
    lacks one of the layout's required parts is broken, so a split that lost some reference files is never
    mistaken for a blind one."""
    return tuple(p for p in PARTS[layout] if p not in REQUIRED[layout][1])


def part_channels(layout: str, part: str) -> int:
    """How many channels a file of `part` has in `layout` (2 for AVSEC-4's binaural files, else 1)."""
    return 2 if part in BINAURAL_PARTS.get(layout, ()) else 1


def default_part(layout: str, role: str) -> str:
    """The part that plays `role` ("mixed", "target", "reference", "interferer") on the layout's default track."""
    return TRACK_FILES[layout, DEFAULT_TRACK[layout]][role]


def count_maskers(masker: str | None) -> int | None:
    """How many maskers a `masker` label names ("speech+music" -> 2); None without one."""
    return None if masker is None or not str(masker).strip() else str(masker).count("+") + 1


def require_channels(scenes: list, channels: int, who: str) -> None:
    """AvseBenchError unless every scene's track has `channels` audio channels, the number `who` (a system) reads
    and writes: a mono system on the binaural track of AVSEC-4 is told to pass --track mono, a binaural system on
    a mono track that it needs the binaural track of AVSEC-4 data."""
    wrong = [s.id for s in scenes if s.channels != channels]
    if not wrong:
        return
    if channels == 1:
        raise AvseBenchError(f"{len(wrong)} scene(s) (e.g. {wrong[0]}) are on the binaural track of AVSEC-4 "
                             f"data (2-channel mixtures; the default track there), and {who} reads and writes one "
                             "channel: pass --track mono (it then reads _mono_mix and is scored against "
                             "_target_mono_anechoic)")
    raise AvseBenchError(f"{who} reads and writes 2 channels (binaural), and {len(wrong)} scene(s) (e.g. "
                         f"{wrong[0]}) are on a mono track: it needs AVSEC-4 data on the binaural track (--track "
                         "binaural, the default there; AVSEC-1/2/3 data has no binaural track)")


_SUFFIXES = sorted({(suffix, part) for parts in PARTS.values() for part, suffix in parts.items()},
                   key=lambda sp: -len(sp[0]))  # longest first: `_mono_mix.wav` before `_mix.wav`


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(scene id, part) of a file name in scenes/, or None. A scene id is everything before the longest part suffix
    the name ends with, underscores included (LRS2/VoxCeleb-style ids such as 5535415699068794046_00001); a
    leading dot marks a hidden file, never a scene."""
    if name.startswith("."):
        return None
    for suffix, part in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], part
    return None


@dataclass
class Scene:
    """One scene on one track. `mixed`: what a system reads; `target`: what it is trained against (None on eval);
    `reference`: what its output is scored against (None on eval; AVSEC-1/2/3: the target); `channels`: of the
    mixture and the output (1 mono, 2 binaural); `files`: every file of the scene by part (`PARTS`)."""

    id: str
    split: str
    mixed: Path
    target: Path | None
    interferer: Path | None
    video: Path
    masker: str | None = None  # "speech" | "noise" | "music" | several joined by "+" | None (no metadata)
    snr_db: float | None = None
    meta: dict = field(default_factory=dict)
    reference: Path | None = None
    channels: int = 1
    layout: str = AVSEC2
    track: str = MONO
    files: dict = field(default_factory=dict)
    output_name: str | None = None  # its enhanced file relative to an output folder (None: `<id>.wav`)

    def output(self, out_dir) -> Path:
        """Where a system's enhanced file of this scene goes under `out_dir`: `<id>.wav` (AVSEC), or the
        submission layout `<track>/<split>/<scene>/<clip_id>/<sK>.wav` (Real-World AVSE, `realworld`)."""
        return Path(out_dir) / (self.output_name or f"{self.id}.wav")

    @property
    def n_maskers(self) -> int | None:
        """How many maskers the metadata names (None without metadata)."""
        return count_maskers(self.masker)


@dataclass
class SplitScan:
    """What is on disk for one split: files per scene, metadata records, and missing-file problems."""

    root: Path
    split: str
    layout: str  # AVSEC2 or AVSEC4
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
    parsed = {path: parse_file_name(path.name) if path.is_file() else None for path in sorted(scenes_dir.iterdir())}
    layout = detect_layout(scenes_dir, [found[1] for found in parsed.values() if found])
    files: dict[str, dict[str, Path]] = {}
    unrecognised = []
    for path, found in parsed.items():
        if found and found[1] in PARTS[layout]:
            files.setdefault(found[0], {})[found[1]] = path
        else:
            unrecognised.append(path.name)
    meta_path = root / "metadata" / f"scenes.{split}.json"
    metadata, problems = _read_metadata(meta_path) if meta_path.is_file() else ({}, {})
    has_targets = any(set(parts) & set(reference_parts(layout)) for parts in files.values())
    required = REQUIRED[layout][0 if has_targets else 1]
    for scene_id in sorted(set(files) | set(metadata)):
        missing = [f"{scene_id}{PARTS[layout][p]}" for p in required if p not in files.get(scene_id, {})]
        if missing:
            problems.setdefault(scene_id, []).append("missing file " + ", ".join(missing))
    return SplitScan(root, split, layout, scenes_dir, files, metadata, meta_path if metadata else None, has_targets,
                     problems, unrecognised)


def detect_layout(scenes_dir: Path, parts: list[str]) -> str:
    """The layout of a split from the parts its files are (`parse_file_name`): AVSEC4 when it has AVSEC-4 mixtures
    (`_mix.wav`, `_mono_mix.wav`) or other parts only AVSEC-4 has and no `_mixed.wav`, AVSEC2 otherwise. A split
    with both kinds of mixture takes the kind most of its mixtures are (the other kind's files are then listed as
    unrecognised); as many of each is refused (AvseBenchError)."""
    counts = Counter(parts)
    only4 = set(PARTS[AVSEC4]) - set(PARTS[AVSEC2])
    mixtures2, mixtures4 = counts["mixed"], counts["mix"] + counts["mono_mix"]
    if mixtures2 and mixtures4:
        scenes4 = max(counts["mix"], counts["mono_mix"])
        if scenes4 == mixtures2:
            raise AvseBenchError(f"{scenes_dir} holds as many AVSEC-1/2/3 mixtures (_mixed.wav) as AVSEC-4 ones "
                                 "(_mix.wav, _mono_mix.wav): one layout per split")
        return AVSEC4 if scenes4 > mixtures2 else AVSEC2
    if mixtures2:
        return AVSEC2
    return AVSEC4 if any(counts[p] for p in only4) else AVSEC2


def resolve_track(layout: str, track: str | None, where: Path) -> str:
    """The track to read a split of `layout` on: `track`, or the layout's default (`DEFAULT_TRACK`: mono for
    AVSEC-1/2/3, binaural for AVSEC-4); AvseBenchError for a track the layout does not have."""
    track = track or DEFAULT_TRACK[layout]
    if track not in TRACKS:
        raise AvseBenchError(f"--track {track!r}: choose {' or '.join(TRACKS)}")
    if (layout, track) not in TRACK_FILES:
        raise AvseBenchError(f"{where} is {LAYOUT_NAMES[layout]} data, which has no {track} track (only "
                             f"{', '.join(t for lay, t in TRACK_FILES if lay == layout)})")
    return track



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


def broken(problems: dict[str, list[str]], noun: str, where, check: str) -> AvseBenchError:
    """The error of a split with broken scenes or items: how many, where, the `check` command that says more, then
    one line per id with what is wrong."""
    lines = [f"  {key}: {'; '.join(found)}" for key, found in sorted(problems.items())]
    return AvseBenchError(f"{len(problems)} broken {noun}(s) in {where} (run `{check}`):\n" + "\n".join(lines))


def load_split(root, split: str, track: str | None = None) -> list[Scene]:
    """Every scene of `split` on `track` (None: the layout's default, `resolve_track`), sorted by id; raises
    `AvseBenchError` naming the broken ones, or for a track the layout does not have. A split in the Real-World
    AVSE layout (`realworld`: ROOT/track{1,2}/<split>/{mix,remix}/) gives its items, two per clip."""
    from avse_bench.data import realworld

    if realworld.is_realworld(root, split):
        return realworld.load_items(root, split, track)
    if track in realworld.TRACKS:
        raise AvseBenchError(f"--track {track}: a Real-World AVSE track, and {Path(root) / split} is not in that "
                             "layout (ROOT/track1/<split>/mix/ ...)")
    scan = scan_split(root, split)
    track = resolve_track(scan.layout, track, scan.scenes_dir)
    roles = TRACK_FILES[scan.layout, track]
    if scan.problems:
        raise broken(scan.problems, "scene", scan.scenes_dir, f"avse-bench data check {scan.root} --split {split}")
    if not scan.scene_ids:
        raise AvseBenchError(f"no scenes in {scan.scenes_dir}")
    scenes = []
    for scene_id in scan.scene_ids:
        parts, record = scan.files[scene_id], scan.metadata.get(scene_id, {})
        masker, snr = masker_of(record, scan.metadata_path)
        scenes.append(Scene(id=scene_id, split=split, mixed=parts[roles["mixed"]], target=parts.get(roles["target"]),
                            interferer=parts.get(roles["interferer"]), video=parts["video"], masker=masker,
                            snr_db=snr, meta=record, reference=parts.get(roles["reference"]),
                            channels=TRACK_CHANNELS[track], layout=scan.layout, track=track, files=dict(parts)))
    return scenes
