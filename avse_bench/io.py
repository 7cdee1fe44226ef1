"""Writing files so that a crash never leaves half of one: write a temporary file beside it, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from avse_bench.errors import AvseBenchError


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which then replaces `path` in one rename. The temporary
    name is hidden and carries the process id, so parallel writers of the same file (DataLoader workers filling the
    frame store) never share one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def json_hash(obj) -> str:
    """16 hex digits of the sha256 of `obj` as sorted JSON (anything else as its text): the keys of stages and
    caches."""
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_json(path, what: str):
    """The JSON value in `path`; AvseBenchError naming `what` the file should be when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read {what} {path}: {err}") from None


def write_json(path: Path, obj, indent: int = 2) -> None:
    """`obj` as JSON (objects JSON lacks, such as paths, as their str), written atomically."""
    replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=indent, default=str) + "\n"))


def writable_dir(folder, what: str, hint: str = "") -> Path:
    """`folder`, created if need be, once a file could be written in it; AvseBenchError otherwise, naming `what` the
    folder is for, the folder, the system's reason and `hint` (how to move it: an option or an environment
    variable). Called before any work at every place we write (corpora and HOME are read-only on many clusters), so
    a read-only folder is one line at the start, not a traceback after minutes."""
    folder = Path(folder)
    probe = folder / f".avse-bench-write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise AvseBenchError(f"cannot write {what} in {folder}: {err.strerror or err}"
                             + (f"; {hint}" if hint else "")) from None
    return folder


def os_error_message(err: OSError) -> str:
    """One line for an OSError that reached the command line: the system's reason and the path(s) it names."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return f"{err.strerror or err}" + (f": {paths}" if paths else "")


CACHE_ENV = "AVSE_BENCH_CACHE"


def cache_dir() -> Path:
    """avse-bench's cache (the embedded corpus, numba's compiled functions): $AVSE_BENCH_CACHE, else
    ~/.cache/avse-bench."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "avse-bench"))
