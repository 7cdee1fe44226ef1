"""`write_profile`: a readable summary of a profile on stdout, and the whole of it as JSON where asked."""

from __future__ import annotations

from pathlib import Path

from avse_bench.fmt import describe_lookahead, number
from avse_bench.io import write_json


def _num(value, fmt: str = ",.1f") -> str:
    """A number formatted, or an "n/a (...)" string as it stands."""
    return format(value, fmt) if isinstance(value, int | float) else str(value)


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f} %" if total else "n/a (no FLOPs counted)"


def format_profile(r: dict) -> str:
    ref, lat, thr = r["reference_input"], r["latency_ms"], r["throughput"]
    lstm = r["flops_by_op"].get("lstm", 0)
    unsupported = ", ".join(f"{op} x{n}" for op, n in r["flops_unsupported"].items()) or "none"
    lines = [
        f"{r['system']} on {r['device']} ({r['device_name']})",
        f"reference input  {ref['seconds']:g} s of audio ({ref['samples']:,} samples at {ref['sample_rate']} Hz) "
        f"+ {ref['frames']} frames of {ref['size']} x {ref['size']} px, batch {ref['batch']}",
        f"parameters       {r['params_total']:,} total, {r['params_trainable']:,} trainable; "
        f"{r['size_mb']:.3f} MB (1e6 B) = {r['size_mib']:.3f} MiB at fp32",
        f"FLOPs            {r['flops'] / 1e9:.3f} G multiply-adds (fvcore: one multiply-add = one flop, "
        f"so GFLOPs = GMACs); LSTM {lstm / 1e9:.3f} G ({_share(lstm, r['flops'])})",
        f"not counted      {unsupported}",
        f"latency (ms)     p50 {number(lat['p50'], 1)}  p90 {number(lat['p90'], 1)}  p99 {number(lat['p99'], 1)}  "
        f"mean {lat['mean']:.1f} +- {lat['std']:.1f}  ({lat['n']} calls after {r['latency_warmup']} warm-ups; "
        f"{r['timer']})",
        f"RTF              {r['rtf']:.3f} (p50)  {r['rtf_mean']:.3f} (mean)",
        f"look-ahead       audio {describe_lookahead(r['lookahead']['audio'])}, video "
        f"{describe_lookahead(r['lookahead']['video'])} (algorithmic latency, measured by perturbing future input)",
        f"throughput       batch {thr['batch']}: {thr['samples_per_s']:.2f} samples/s, "
        f"{thr['audio_seconds_per_s']:.2f} audio s/s",
    ]
    for phase, m in r["memory"].items():
        gpu = (f"GPU {_num(m['gpu_mib'])} MiB ({m['gpu_source']}), torch peak {_num(m['torch_peak_mib'])} "
               f"allocated / {_num(m['torch_peak_reserved_mib'])} reserved" if isinstance(m["gpu_mib"], int | float)
               else f"GPU {m['gpu_mib']}")
        own = m["ram_mib"] - m["ram_baseline_mib"]
        lines.append(f"memory {phase:<10}RAM peak {m['ram_mib']:,.1f} MiB ({own:+,.1f} over "
                     f"{m['ram_baseline_mib']:,.1f} at its start); {gpu}; batch {m['batch']}")
    load = r["load_average"]
    lines.append(f"machine load     {load['start']} at the start, {load['end']} at the end (1/5/15 min; "
                 f"{r['hardware']['cpu_cores_logical']} cores)")
    training = r["memory"]["training"]
    lines.append(f"training batch   {training['batch']} ({training['batch_note']}), {training['steps']} steps of "
                 f"{training['optimizer']}")
    return "\n".join(lines)


def write_profile(result: dict, path: str | Path | None) -> None:
    """Print the summary; also write `result` as JSON to `path` (folders created) if one is given."""
    print(format_profile(result))
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
        print(f"written: {path}")
