"""No process outlives its command (issue 18, item 11): after kill -9 of `data check --jobs 2`, its forkserver
workers and the resource tracker stayed alive; after kill -9 of `profile`, its spawned memory-phase child did."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest


def _descendants_after_kill(cmd: list[str], ready, settle: float = 20.0) -> list[str]:
    """Start `cmd`, wait until `ready(descendants)`, SIGKILL the command alone and return the descendants still
    alive `settle` seconds later (as "pid name" strings)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        children = []
        while time.monotonic() < deadline:
            children = parent.children(recursive=True)
            if ready(children):
                break
            if proc.poll() is not None:
                pytest.fail(f"{cmd} ended before its workers were seen")
            time.sleep(0.05)
        else:
            pytest.fail(f"{cmd}: workers never appeared")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=settle)
        return [f"{p.pid} {p.name()}" for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_data_check_workers_end_with_it(tiny_corpus, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tiny_corpus / "train", root / "train")
    scenes = root / "train" / "scenes"
    for copy in range(40):  # enough scenes that the check is still running when it is killed
        for f in list(scenes.glob("S0000[1-4]_*")):
            shutil.copy(f, scenes / f.name.replace("S0000", f"C{copy:02d}"))
    cmd = [sys.executable, "-m", "avse_bench.cli", "data", "check", str(root), "--split", "train", "--jobs", "2"]
    left = _descendants_after_kill(cmd, lambda kids: len(kids) >= 3)  # forkserver, 2 workers (+ tracker)
    assert left == []


@pytest.mark.slow
def test_profile_memory_phase_ends_with_it():
    """One more of the kind: the profiler's spawned memory phase (a different start method)."""
    cmd = [sys.executable, "-m", "avse_bench.cli", "profile", "dcnn_rnn", "--device", "cpu", "--seconds", "1",
           "--size", "16", "--repeats", "2"]
    left = _descendants_after_kill(cmd, lambda kids: any("python" in k.name() for k in kids))
    assert left == []
