"""The stage cache of a compare run, as a build tool keeps one: each stage's stamp holds the key of what made it.

A stage runs unless its `stages/<name>.done.json` stamp holds the same key. The key is the hash of the stage's
inputs (what it reads of the run, declared in `compare.STAGE_READS`, and the keys of the stages it consumes) and of
what makes its output (`stage_code.made_by`: its code's import closure and its distributions). A stage that started
on the same key and was killed is resumed (its outputs kept: the stage's own work resumes per scene or from its
checkpoint); a stage whose key changed starts over, its old outputs removed so that none is reused by mistake.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from avse_bench.io import json_hash as stage_hash
from avse_bench.io import write_json
from avse_bench.provenance import git_commit


def write_json_file(path: Path, obj) -> None:
    """`obj` as JSON at `path` (its folder made), atomically (`io.write_json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, obj)


def machine_facts() -> dict:
    """The machine a stage ran on, for its stamp: host, CPU model and cores, Python."""
    from avse_bench.profiling.hardware import cpu_model

    return {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


class Stages:
    """The stamps of one run folder (`out/stages/`) and the keys of the stages run (or skipped) in this process."""

    def __init__(self, out: Path):
        self.dir = out / "stages"
        self.keys: dict[str, str] = {}  # stage name -> key
        self._maker: dict | None = None  # the commit and machine, asked once (two git calls) per run

    def maker(self) -> dict:
        """The commit and the machine this process runs stages on, for the stamps."""
        if self._maker is None:
            self._maker = {"git_commit": git_commit(), "machine": machine_facts()}
        return self._maker

    def _stamp(self, name: str, kind: str) -> Path:
        return self.dir / f"{name}.{kind}.json"

    def _hash_in(self, path: Path) -> str | None:
        return json.loads(path.read_text()).get("inputs_hash") if path.exists() else None

    def run(self, name: str, inputs, outputs: list[Path], fn: Callable[[], None], kind: str | None = None) -> str:
        """Run stage `name` (`fn`, writing `outputs`) unless its stamp holds the key of `inputs` and of what makes a
        stage of `kind` (default: the name's first part, e.g. "score" for "score.baseline.av"); returns the key (a
        consumer puts it in its own inputs). The stamp records the key, the time taken, what made the output, the
        git commit and the machine."""
        from avse_bench.stage_code import made_by

        code = made_by(kind or name.split(".")[0])
        key = self.keys[name] = stage_hash({"inputs": inputs, "made_by": code})
        done, started = self._stamp(name, "done"), self._stamp(name, "started")
        if self._hash_in(done) == key:
            print(f"[compare] {name}: up to date, skipped")
            return key
        if self._hash_in(started) == key:
            print(f"[compare] {name}: resuming")
        else:
            for path in outputs:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            print(f"[compare] {name}: running")
        done.unlink(missing_ok=True)
        write_json_file(started, {"inputs_hash": key})
        begin = time.perf_counter()
        fn()
        write_json_file(done, {"inputs_hash": key, "seconds": round(time.perf_counter() - begin, 3),
                               "finished": datetime.now(UTC).isoformat(timespec="seconds"), "made_by": code,
                               **self.maker()})
        return key
