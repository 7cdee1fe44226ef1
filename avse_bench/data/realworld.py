"""The Real-World AVSE Challenge (ISCSLP 2026) data, read as distributed (../shared/REALWORLD.md section 1).

Tree (the official reader's, `look2hear/datas/real_test_dataset.py` of the baseline):

    ROOT/track{1,2}/<split>/mix/<clip_id>/    mix.wav s1.mp4 s2.mp4 s1.pkl s2.pkl [s1.txt s2.txt]
    ROOT/track{1,2}/<split>/remix/<clip_id>/  the same [+ s1.wav s2.wav: the clean sources]
    ROOT/track{1,2}/<split>/{mix,remix}_manifest.json   [{mix_id, s1_speaker, s2_speaker[, s1_id, s2_id]}]

or one track's zip as it unpacks: `ROOT/<split>/{mix,remix,...}` (the track then comes from `--track`). A test split
as first released holds only `mix.wav`, the videos and the landmarks (no transcripts, clean sources or manifests).

Each clip gives two items, one per target tag `sK`: the same `mix.wav`, that tag's face video, landmarks,
transcript and (remix) clean source; the item's id is `<scene>/<clip_id>/<sK>` (`mix/000591/s1`), and its output
`OUT/<track>/<split>/<scene>/<clip_id>/<sK>.wav`, the submission layout. `mix` clips are real two-talker recordings
without a reference: reference metrics are computed on `remix` only, as the official scorer does.

Landmark files (`sK.pkl`) are pickles from the internet. `read_landmarks` reads them with an unpickler that
resolves only the few NumPy names an array of the challenge's shape needs (NumPy 1 and 2 module paths) and then
checks the result is a list of 68 x 2 float arrays or None; any other name a file asks for (`os.system`, `eval`, a
class of some package) is refused before anything is called, so no code in a file ever runs.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avse_bench.errors import AvseBenchError

REALWORLD = "realworld"
TRACKS = ("track1", "track2")
SCENES = ("mix", "remix")  # mix: real two-talker recordings (no reference); remix: two clips summed (references)
TAGS = ("s1", "s2")
ITEM_FILES = {"mixed": "mix.wav", "video": "{tag}.mp4", "landmarks": "{tag}.pkl", "transcript": "{tag}.txt",
              "target": "{tag}.wav"}  # role -> file name in a clip folder
REQUIRED = ("mixed", "video")  # every item; landmarks may be missing (counted), the rest where the split has them


def is_realworld(root, split: str) -> bool:
    """Whether `root` holds `split` in the Real-World layout (either form)."""
    root = Path(root)
    return any((d / scene).is_dir() for d in [*(root / t / split for t in TRACKS), root / split] for scene in SCENES)


def tracks_present(root, split: str) -> list[str]:
    """The tracks of `split` under `root`: those of the nested form, else [None] (one track's zip, track unknown)."""
    root = Path(root)
    return [t for t in TRACKS if any((root / t / split / s).is_dir() for s in SCENES)] or [None]


def split_folder(root, split: str, track: str | None) -> tuple[Path, str]:
    """(the folder holding `mix/` and `remix/`, the track): `ROOT/<track>/<split>` (nested) or `ROOT/<split>` (one
    track's zip, the track then `track` or track1). AvseBenchError when neither exists or the track is unknown."""
    root = Path(root)
    if track is not None and track not in TRACKS:
        raise AvseBenchError(f"--track {track!r}: the Real-World AVSE data has {' and '.join(TRACKS)}")
    nested = [t for t in TRACKS if any((root / t / split / s).is_dir() for s in SCENES)]
    if nested:
        chosen = track or nested[0]
        if chosen not in nested:
            raise AvseBenchError(f"{root} holds {', '.join(nested)} of split {split!r}, not {chosen}")
        return root / chosen / split, chosen
    if any((root / split / s).is_dir() for s in SCENES):
        return root / split, track or TRACKS[0]
    raise AvseBenchError(f"no Real-World AVSE split {split!r} under {root} (expected ROOT/track1/{split}/mix/ or, "
                         f"as one track's zip unpacks, ROOT/{split}/mix/)")


# --- landmarks: a pickle read without running it -------------------------------------------------------------------
def _frombuffer(buffer, dtype, shape, order):  # numpy._core.numeric._frombuffer, for protocol-5 pickles
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _latin1(text: str, encoding: str = "latin1") -> bytes:  # _codecs.encode, for latin-1 only
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED = {  # (module, name) a landmark pickle may ask for -> what it gets (NumPy 2 paths, and NumPy 1's)
    **{(m, "_reconstruct"): np._core.multiarray._reconstruct for m in ("numpy._core.multiarray",
                                                                       "numpy.core.multiarray")},
    **{(m, "scalar"): np._core.multiarray.scalar for m in ("numpy._core.multiarray", "numpy.core.multiarray")},
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy._core.numeric", "numpy.core.numeric")},
    ("_codecs", "encode"): _latin1,  # protocol 2 writes an array's bytes as a latin-1 string
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _LandmarkUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED`; any other global (a callable of any module) raises before it can be called."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refused {module}.{name} (a landmark file holds arrays only)") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id")


def read_landmarks(path: Path) -> list[np.ndarray | None]:
    """One landmark file: a list, one entry per video frame, of (68, 2) float32 arrays (x, y in pixels of the
    original frame) or None (no face found). Read without executing anything the file holds (module docstring).
    AvseBenchError naming the file when it is not a pickle, asks for anything but NumPy arrays, or holds another
    shape."""
    try:
        data = path.read_bytes()
        value = _LandmarkUnpickler(io.BytesIO(data)).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise AvseBenchError(f"{path}: not a landmark file ({err})") from None
    if not isinstance(value, list):
        raise AvseBenchError(f"{path}: a landmark file holds a list of 68 x 2 arrays, not a {type(value).__name__}")
    frames = []
    for i, entry in enumerate(value):
        if entry is None:
            frames.append(None)
            continue
        if not isinstance(entry, np.ndarray) or entry.shape != (68, 2) or entry.dtype.kind != "f":
            what = (f"an array {entry.shape} {entry.dtype}" if isinstance(entry, np.ndarray)
                    else f"a {type(entry).__name__}")
            raise AvseBenchError(f"{path}: frame {i} is {what}, not 68 x 2 floats or None")
        frames.append(entry.astype(np.float32))
    return frames


# --- the items of a split ------------------------------------------------------------------------------------------
@dataclass
class Item:
    """One (clip, target tag): `files` by role (`ITEM_FILES`, those that exist), `speaker` from the manifest."""

    scene: str  # "mix" or "remix"
    clip: str
    tag: str  # "s1" or "s2"
    files: dict = field(default_factory=dict)
    speaker: str | None = None

    @property
    def id(self) -> str:
        return f"{self.scene}/{self.clip}/{self.tag}"


@dataclass
class RealWorldScan:
    """What is on disk for one split of one track: its items, its manifests and what is wrong (per item id, and
    files that belong to no item)."""

    folder: Path
    split: str
    track: str
    items: list[Item]
    manifests: dict  # scene -> {clip_id: record}, for the scenes whose manifest exists
    has_targets: bool  # some remix clip holds its clean sources
    has_transcripts: bool
    problems: dict = field(default_factory=dict)
    unrecognised: list = field(default_factory=list)


def _read_manifest(path: Path) -> dict:
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read the manifest {path}: {err}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "mix_id" in r for r in records):
        raise AvseBenchError(f"{path} is not a list of records with a 'mix_id' field")
    return {str(r["mix_id"]): r for r in records}


def scan(root, split: str, track: str | None = None) -> RealWorldScan:
    """Every item of `split` (both scenes, both tags) and what each lacks: the mixture and the face video always;
    in a remix clip, the clean source when any remix clip has one (a split with ground truth); the transcript when
    any clip has one. A clip the manifest lists but that is not on disk, and a clip folder the manifest does not
    list, are problems too."""
    folder, track = split_folder(root, split, track)
    known = {n.format(tag=t) for n in ITEM_FILES.values() for t in TAGS}
    items, manifests, problems, unrecognised = [], {}, {}, []
    for scene in SCENES:
        manifest_path = folder / f"{scene}_manifest.json"
        manifest = _read_manifest(manifest_path) if manifest_path.is_file() else None
        if manifest is not None:
            manifests[scene] = manifest
        clips = sorted(p.name for p in (folder / scene).iterdir() if p.is_dir()) if (folder / scene).is_dir() else []
        for clip in sorted(set(clips) | set(manifest or {})):
            clip_dir = folder / scene / clip
            if clip not in clips:
                problems[f"{scene}/{clip}"] = [f"listed in {manifest_path.name} but no folder {clip_dir}"]
                continue
            unrecognised += [str(p.relative_to(folder)) for p in sorted(clip_dir.iterdir())
                             if p.name not in known and not p.name.startswith(".")]
            record = (manifest or {}).get(clip)
            if manifest is not None and record is None:
                problems[f"{scene}/{clip}"] = [f"not listed in {manifest_path.name}"]
            for tag in TAGS:
                files = {role: clip_dir / name.format(tag=tag) for role, name in ITEM_FILES.items()}
                item = Item(scene, clip, tag, {r: p for r, p in files.items() if p.is_file()},
                            None if record is None else record.get(f"{tag}_speaker"))
                items.append(item)
    has_targets = any("target" in i.files for i in items if i.scene == "remix")
    has_transcripts = any("transcript" in i.files for i in items)
    for item in items:
        wanted = [*REQUIRED, *(["target"] if has_targets and item.scene == "remix" else []),
                  *(["transcript"] if has_transcripts else [])]
        missing = [ITEM_FILES[r].format(tag=item.tag) for r in wanted if r not in item.files]
        if missing:
            problems.setdefault(item.id, []).append(f"missing {', '.join(missing)}")
    return RealWorldScan(folder, split, track, items, manifests, has_targets, has_transcripts, problems,
                         unrecognised)


def load_items(root, split: str, track: str | None = None) -> list:
    """The split's items as `layout.Scene`s (id `<scene>/<clip>/<sK>`; `reference` and `target` the clean source in
    remix with ground truth, None otherwise; `interferer` the other tag's source; `meta` the scene, clip, tag,
    speaker and the transcript and landmark paths), sorted by id; AvseBenchError naming every broken item."""
    from avse_bench.data.layout import Scene, broken

    found = scan(root, split, track)
    if found.problems:
        raise broken(found.problems, "item", found.folder,
                     f"avse-bench data check {root} --split {split} --track {found.track}")
    if not found.items:
        raise AvseBenchError(f"no clips in {found.folder}/mix or {found.folder}/remix")
    scenes = []
    for item in sorted(found.items, key=lambda i: i.id):
        other = found.folder / item.scene / item.clip / f"{'s2' if item.tag == 's1' else 's1'}.wav"
        target = item.files.get("target")
        meta = {"scene": item.scene, "clip": item.clip, "tag": item.tag, "speaker": item.speaker,
                "transcript": str(item.files["transcript"]) if "transcript" in item.files else None,
                "landmarks": str(item.files["landmarks"]) if "landmarks" in item.files else None}
        scenes.append(Scene(id=item.id, split=split, mixed=item.files["mixed"], target=target,
                            interferer=other if other.is_file() else None, video=item.files["video"],
                            masker="speech", meta=meta, reference=target, channels=1, layout=REALWORLD,
                            track=found.track, files=dict(item.files),
                            output_name=f"{found.track}/{split}/{item.id}.wav"))
    return scenes
