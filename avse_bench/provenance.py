"""What a compare run's manifest records about where its numbers come from: the commit, the data's fingerprint, the
systems' configurations, the chosen preprocessing, the machine and the software (`profiling.hardware`)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from avse_bench.data.preprocessing import Preprocessing
from avse_bench.io import json_hash


def data_fingerprint(root: Path, splits: list[str]) -> str:
    """Cheap identity of a data root: names, sizes and modification times of every file in the splits used."""
    entries = []
    for split in splits:
        for p in sorted((root / split).rglob("*")):
            if p.is_file():
                st = p.stat()
                entries.append((str(p.relative_to(root)), st.st_size, int(st.st_mtime)))
    meta = root / "metadata"
    if meta.is_dir():
        entries += [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sorted(meta.glob("*.json"))]
    return json_hash(entries)


CODE_PATHS = ("avse_bench", "systems", "pyproject.toml")  # what makes the figures; reports/ is what a run writes


def git_commit() -> str:
    """The checkout's HEAD commit ("(with uncommitted changes)" when tracked files of the code, `CODE_PATHS`, differ:
    a bench rewriting the committed report under reports/ is not a change of code), or why there is none."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                               cwd=here.parent, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not run from a git checkout)"
    return sha.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def build_manifest(systems, config, data: dict, pre: Preprocessing) -> dict:
    """The manifest of a run of `config` (a RunConfig, recorded whole under "config") on `data` with `pre`."""
    from avse_bench.profiling import hardware_info, software_info

    return {
        "config": config.to_dict(),
        "command_line": list(config.command_line),
        "git_commit": git_commit(),
        "profile": config.profile,
        "seed": config.seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "systems": {s.name: {"config": s.config, "recipe": s.recipe(config.profile), "path": str(s.path),
                             "model_overrides": s.overrides} for s in systems},
        "data": data,
        "preprocessing": {"config": pre.config(), "hash": pre.config_hash()},
        "hardware": hardware_info(),
        "software": software_info(),
    }
