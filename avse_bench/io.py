"""Writing files so that a crash never leaves half of one: write a temporary file beside it, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which then replaces `path` in one rename. The temporary
    name is hidden and carries the process id, so parallel writers of the same file (DataLoader workers filling the
    frame store) never share one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, obj, indent: int = 2) -> None:
    """`obj` as JSON (objects JSON lacks, such as paths, as their str), written atomically."""
    replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=indent, default=str) + "\n"))
