"""The GPU check: one command, under 8 minutes on one GPU, writing one report folder.

    python benchmarks/gpu_check.py [--out reports/gpu-<gpu name>] [--device cuda]

1. Profiles both systems on the device at the `paper` reference input (3 s, 128 px): NVML and allocator memory per
   phase (training, inference, model loading), CUDA-event latency percentiles, RTF, FLOPs.
2. Trains `dcnn_rnn` for the smoke profile's steps under `torchrun --nproc-per-node 1` (NCCL on CUDA) with 2
   DataLoader workers and pinned memory, on a small embedded corpus.
3. Runs a smoke `avse-bench compare baseline dcnn_rnn` on the device (every stage, the sheet included).
4. Writes `README.md` in the folder: provenance (commit, command, machine, software), each step's wall time and exit
   status, and the headline figures read back from the JSON files beside it.

Every step runs as its own process, so one failing step is reported and the others still run; the exit status is
non-zero if any failed. `--device cpu` runs the same steps on CPU (a dry run of the script: every GPU figure then
reads n/a). On a machine without this project's dependencies, install the package first (`pip install --no-deps .`
plus wheels for soundfile, pesq, pystoi, fvcore, iopath, yacs, tabulate, tqdm, threadpoolctl, psutil,
espeakng-loader).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def run_step(name: str, cmd: list[str], log_dir: Path, env: dict) -> dict:
    """Run one step, its output teed to log_dir/<name>.log; returns its wall time and exit status."""
    print(f"[gpu-check] {name}: {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(log_dir / f"{name}.log", "w") as log:
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    seconds = round(time.perf_counter() - t0, 1)
    print(f"[gpu-check] {name}: exit {status} after {seconds} s", flush=True)
    return {"name": name, "command": shlex.join(cmd), "exit_status": status, "seconds": seconds}


def headline(out: Path) -> list[str]:
    """The figures a reader looks for first, read back from the profiles and the training summary."""
    from avse_bench.fmt import number

    lines = []
    for system in ("baseline", "dcnn_rnn"):
        path = out / f"profile.{system}.json"
        if not path.is_file():
            lines.append(f"- {system}: no profile (see profile.{system}.log)")
            continue
        p = json.loads(path.read_text())
        lat, mem = p.get("latency_ms", {}), p.get("memory", {})
        percentiles = "/".join(number(lat.get(k, "n/a (not measured)"), 2) for k in ("p50", "p90", "p99"))
        lines.append(f"- {system}: latency p50/p90/p99 {percentiles} ms ({p.get('timer')}), RTF {p.get('rtf'):.4f}; "
                     f"GPU MiB (NVML) training "
                     f"{mem.get('training', {}).get('gpu_mib')}, inference {mem.get('inference', {}).get('gpu_mib')}"
                     f", loading {mem.get('loading', {}).get('gpu_mib')}")
    summary = out / "train" / "train_summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        lines.append(f"- torchrun training: world size {s['world_size']}, {s['total_steps']} steps on {s['device']}, "
                     f"{s['loader_workers']} loader workers, {s['total_seconds']} s")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/gpu-<gpu name>)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    a = p.parse_args()
    name = gpu_name() if a.device == "cuda" else "cpu-dry-run"
    out = (a.out or REPO / "reports" / f"gpu-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}").resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    env = {**os.environ, "AVSE_BENCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    py, cli = sys.executable, [sys.executable, "-m", "avse_bench.cli"]
    corpus = cache / "check-corpus"
    steps = []
    for system in ("baseline", "dcnn_rnn"):
        steps.append(run_step(f"profile.{system}", [*cli, "profile", system, "--device", a.device, "--seconds", "3",
                                                   "--size", "128", "--json", str(out / f"profile.{system}.json")],
                              logs, env))
    if not corpus.is_dir():
        steps.append(run_step("corpus", [*cli, "data", "synth", str(corpus), "--train", "16", "--dev", "4",
                                         "--min-seconds", "1", "--max-seconds", "2"], logs, env))
    steps.append(run_step("train.torchrun", [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1",
                                             "-m", "avse_bench.cli", "train", "dcnn_rnn", "--data", str(corpus),
                                             "--out", str(out / "train"), "--profile", "smoke", "--device", a.device,
                                             "--workers", "2", "--resume"], logs, env))
    steps.append(run_step("compare.smoke", [*cli, "compare", "baseline", "dcnn_rnn", "--profile", "smoke",
                                            "--device", a.device, "--out", str(out / "compare")], logs, env))
    from avse_bench.io import write_json
    from avse_bench.profiling import hardware_info, software_info
    from avse_bench.provenance import git_commit

    record = {"command": shlex.join([py, *sys.argv]), "git_commit": git_commit(), "device": a.device,
              "hardware": hardware_info(), "software": software_info(), "steps": steps}
    write_json(out / "gpu_check.json", record)
    table = "\n".join(f"| {s['name']} | {s['exit_status']} | {s['seconds']} |" for s in steps)
    (out / "README.md").write_text(
        f"# GPU check on {name}\n\nWritten by `{record['command']}` at commit {record['git_commit']}.\n"
        f"Machine and software: `gpu_check.json`; each step's output: `logs/`.\n\n"
        f"| step | exit status | seconds |\n|---|---|---|\n{table}\n\n## Headline figures (measured in this run)\n\n"
        + "\n".join(headline(out)) + "\n\nThe smoke comparison's sheet: `compare/sheet.md`.\n")
    print(f"[gpu-check] report in {out}")
    return 0 if all(s["exit_status"] == 0 for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
