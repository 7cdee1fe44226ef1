"""What made a score file's rows: the record beside every `score --out` CSV (`<out>.sources.json`).

A score CSV is resumable (a killed run re-started with the same arguments skips the scenes already written), so
the file must know what its rows were made from, or a second run into the same file would keep rows of another
enhanced folder, split or metric set as if they were its own. The record holds:

- the identity of what is scored (`IDENTITY`): data root, split, track, enhanced folder, file suffix, shard. A run
  whose identity differs is refused in one line naming what differs (write to another --out);
- the metrics the rows hold and the versions of the packages that computed them (`stage_code.METRIC_DISTRIBUTIONS`,
  read with importlib.metadata). A metric asked for that the rows lack, or other package versions, score the kept
  rows again (all of them, with the union of the metrics), so no column is left empty and no value of another
  version kept;
- per scene, the size and modification time of its estimate and reference files: a scene whose files changed since
  its row was written is scored again.

`score merge` joins shards only when their records agree on everything but the shard and the files.
"""

from __future__ import annotations

from pathlib import Path

from avse_bench.errors import AvseBenchError
from avse_bench.io import read_json, write_json
from avse_bench.stage_code import METRIC_DISTRIBUTIONS, versions

SUFFIX = ".sources.json"
IDENTITY = ("data_root", "split", "track", "enhanced", "suffix", "shard")


def sources_path(out_csv: Path) -> Path:
    """The record beside `out_csv`: `<name>.sources.json`."""
    return out_csv.with_name(out_csv.name + SUFFIX)


def package_versions() -> dict[str, str]:
    """{distribution: installed version, or "not installed"} of the metric packages (`stage_code`)."""
    return versions(METRIC_DISTRIBUTIONS)


def _stat(path: Path | None) -> list | None:
    if path is None or not path.is_file():
        return None
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def file_facts(jobs) -> dict[str, list]:
    """{scene: [estimate size, mtime_ns, reference size, mtime_ns]} (None for a file that is not there)."""
    return {j.scene: [_stat(j.estimate), _stat(j.reference)] for j in jobs}


def make_record(identity: dict, metrics, jobs) -> dict:
    """The record of a scoring run: its identity, metrics, the metric packages' versions and the files' facts."""
    return {**{k: identity[k] for k in IDENTITY}, "metrics": list(metrics), "packages": package_versions(),
            "files": file_facts(jobs)}


def read_record(out_csv: Path) -> dict | None:
    path = sources_path(out_csv)
    if not path.is_file():
        return None
    record = read_json(path, "the sources record of a score file")
    if not isinstance(record, dict) or not set(IDENTITY) | {"metrics", "packages", "files"} <= set(record):
        raise AvseBenchError(f"{path}: not a sources record; remove it and {out_csv} to score again")
    return record


def write_record(out_csv: Path, record: dict) -> None:
    write_json(sources_path(out_csv), record)


def _differences(old: dict, new: dict, keys) -> list[str]:
    return [f"{k} {old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


def check_identity(out_csv: Path, recorded: dict | None, identity: dict) -> None:
    """AvseBenchError when `out_csv`, which holds rows, holds them of another identity, or without a record (made by
    an older avse-bench: their sources unknown)."""
    if recorded is None:
        raise AvseBenchError(f"{out_csv} holds rows but no record of what made them ({sources_path(out_csv).name}); "
                             "remove it or write to another --out")
    differ = _differences(recorded, identity, IDENTITY)
    if differ:
        raise AvseBenchError(f"{out_csv} holds rows scored from {'; '.join(differ)}: write to another --out, or "
                             "remove the file to score it anew")


def rows_to_rescore(recorded: dict | None, record: dict) -> tuple[set[str] | None, str]:
    """(the scenes whose kept rows must be scored again, or None for all of them; why, in words, or ""): what
    `recorded` holds against this run's `record` (`make_record`: its metrics, packages and file facts)."""
    if recorded is None:
        return set(), ""
    added = [m for m in record["metrics"] if m not in recorded["metrics"]]
    if added:
        return None, f"the rows lack {', '.join(added)}"
    now, before = record["packages"], recorded["packages"]
    changed = _differences(before, now, sorted(set(now) | set(before)))
    if changed:
        return None, f"the metric packages changed: {'; '.join(changed)}"
    stale = {scene for scene, facts in record["files"].items()
             if scene in recorded["files"] and recorded["files"][scene] != facts}
    return stale, (f"{len(stale)} scene(s) whose estimate or reference changed since" if stale else "")


def merged_record(inputs, records: list[dict | None]) -> dict:
    """The record of shards joined by `score merge`; AvseBenchError unless every shard has one and they agree on all
    but the shard and the files."""
    for path, record in zip(inputs, records, strict=True):
        if record is None:
            raise AvseBenchError(f"score merge: {path} has no record of what made it ({sources_path(Path(path)).name})")
    keys = [k for k in (*IDENTITY, "metrics", "packages") if k != "shard"]
    for path, record in zip(inputs[1:], records[1:], strict=True):
        differ = _differences(records[0], record, keys)
        if differ:
            raise AvseBenchError(f"score merge: {path} was scored otherwise than {inputs[0]}: {'; '.join(differ)}")
    files = {scene: facts for record in records for scene, facts in record["files"].items()}
    return {**records[0], "shard": None, "files": files}
