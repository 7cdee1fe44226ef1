"""The report's PNG plots. Figures are built with matplotlib's object API (no pyplot state, Agg canvas), so that
rendering is headless and the same files come out every time.

A figure that was not measured is drawn as absent and labelled "n/a", never as a zero-height bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from avse_bench.data.stress import DEGRADATIONS
from avse_bench.fmt import METRIC_LABELS, describe, is_na
from avse_bench.metrics.stats import MIN_SCENES_FOR_CI
from avse_bench.pipeline import AUDIO_ONLY, AV, MIXTURE, NOISY
from avse_bench.report import quality
from avse_bench.report.items import NO_CUDA, PHASES, get
from avse_bench.report.load import Run

NOISY_COLOR = "0.55"
DPI = 110


def _colors(systems: list[str]) -> dict[str, str]:
    return {s: f"C{i % 10}" for i, s in enumerate(systems)}


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def _errorbar(stats: pd.DataFrame) -> np.ndarray:
    """(2, k) distances below and above the mean, for matplotlib's yerr."""
    return np.abs(np.vstack([stats["mean"] - stats.ci_lo, stats.ci_hi - stats["mean"]]).astype(float))


def quality_plot(run: Run, summary: pd.DataFrame, path: Path) -> Path:
    """One panel per metric: mean with its 95 % CI for the mixture and each system, audio-visual (solid) and
    audio-only (hatched)."""
    colors = _colors(run.systems)
    bars = [(NOISY, MIXTURE, "noisy", NOISY_COLOR, "")]
    for s in run.systems:
        bars += [(s, AV, f"{s}\nAV", colors[s], ""),
                 (s, AUDIO_ONLY, f"{s}\naudio only", colors[s], "//")]
    metrics = list(summary.metric.unique())
    ncols = min(5, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(3.0 * ncols, 3.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes, metrics, strict=False):
        for x, (system, condition, _, color, hatch) in enumerate(bars):
            stats = summary[(summary.system == system) & (summary.condition == condition) & (summary.metric == metric)]
            if stats.empty or is_na(stats["mean"].iloc[0]):
                ax.text(x, 0, "n/a", ha="center", va="bottom", rotation=90, fontsize=8)
                continue
            ax.bar(x, stats["mean"], yerr=_errorbar(stats), color=color, hatch=hatch, edgecolor="black",
                   linewidth=0.5, capsize=3, alpha=0.6 if hatch else 1.0)
        ax.set_xticks(range(len(bars)), [b[2] for b in bars], rotation=60, fontsize=7)
        ax.set_title(METRIC_LABELS[metric])
        ax.axhline(0, color="black", linewidth=0.5)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Quality on the evaluation split: mean and 95 % BCa bootstrap CI over scenes")
    return _save(fig, path)


def snr_plot(run: Run, bands: pd.DataFrame, order: list[str], path: Path) -> Path:
    """The run's core metrics (the track's stress metrics that were scored: SI-SDR, PESQ-WB and STOI on a mono
    track, MBSTOI on the binaural one; else the headline metric) against the SNR band: the mixture and each
    system's audio-visual output."""
    colors = {NOISY: NOISY_COLOR, **_colors(run.systems)}
    scored = set(bands.loc[bands["mean"].notna(), "metric"])
    metrics = [m for m in run.stress_metrics if m in scored] or [quality.headline(run.scores)]
    fig = Figure(figsize=(max(4.4 * len(metrics), 6.8), 3.8), layout="constrained")
    x = np.arange(len(order))
    for ax, metric in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics, strict=True):
        for k, system in enumerate([NOISY, *run.systems]):
            rows = bands[(bands.system == system) & (bands.metric == metric)].set_index("snr_band").reindex(order)
            shift = (k - len(run.systems) / 2) * 0.06  # keep the error bars of different lines apart
            ax.errorbar(x + shift, rows["mean"], yerr=_errorbar(rows), color=colors[system], marker="o",
                        capsize=3, label="noisy (mixture)" if system == NOISY else f"{system} (AV)")
        ax.set_xticks(x, order, rotation=30, fontsize=8)
        ax.set_xlabel("SNR band")
        ax.set_title(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    fig.suptitle(f"Quality against input SNR: mean and 95 % CI per band (no CI for a band of fewer than "
                 f"{MIN_SCENES_FOR_CI} scenes)")
    return _save(fig, path)


def latency_plot(run: Run, path: Path) -> Path:
    """Distribution of the timed forward passes per system (box plot with every sample shown)."""
    fig = Figure(figsize=(2.2 + 2.0 * len(run.systems), 4.0), layout="constrained")
    ax = fig.subplots()
    colors = _colors(run.systems)
    rng = np.random.default_rng(0)  # jitter of the dots only
    timed = []
    for x, system in enumerate(run.systems):
        samples = get(run.profile[system], "latency_samples_ms")
        if not isinstance(samples, list) or not samples:
            reason = samples if isinstance(samples, str) else "n/a (no samples recorded)"
            ax.text(x, 0.5, reason.replace(" (", "\n("), transform=ax.get_xaxis_transform(), ha="center",
                    va="center", fontsize=8)
            continue
        timed.append(system)
        ax.boxplot([samples], positions=[x], widths=0.5, showfliers=False)
        ax.scatter(x + rng.uniform(-0.15, 0.15, len(samples)), samples, s=8, color=colors[system], alpha=0.6)
    ax.set_xticks(range(len(run.systems)), run.systems)
    ax.set_xlim(-0.6, len(run.systems) - 0.4)
    ax.set_ylabel("latency per reference input (ms)")
    if not timed:
        ax.set_yticks([])  # nothing was timed: no scale that could be read as one
    elif max(_all_samples(run, timed)) > 10 * min(_all_samples(run, timed)):
        ax.set_yscale("log")  # systems (or outliers) an order of magnitude apart: keep every box readable
        ax.set_ylabel("latency per reference input (ms, log scale)")
    facts = [sorted({describe(get(run.profile[s], key)) for s in timed}) for key in ("device_name", "timer")]
    ax.set_title(f"Latency per reference input (batch 1) on {', '.join(facts[0]) or 'n/a'}\n"
                 f"timer: {', '.join(facts[1]) or 'n/a'}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _all_samples(run: Run, systems: list[str]) -> list[float]:
    return [x for s in systems for x in get(run.profile[s], "latency_samples_ms")]


def _memory_value(run: Run, system: str, phase: str, kind: str):
    """A phase's RAM or GPU figure in MiB, or its n/a text (any GPU figure of a run without CUDA is n/a)."""
    profile = run.profile[system]
    value = get(profile, "memory", phase, f"{kind}_mib")
    device = get(profile, "device")
    if kind == "gpu" and not (isinstance(device, str) and device.startswith("cuda")):
        return value if isinstance(value, str) and value.startswith("n/a") else NO_CUDA
    return value


def memory_plot(run: Run, path: Path) -> Path:
    """Grouped bars per phase (training, inference, model loading), RAM and GPU panels; an unmeasured figure is
    an "n/a" mark where its bar would be."""
    colors = _colors(run.systems)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    width = 0.8 / len(run.systems)
    for ax, kind, title in zip(fig.subplots(1, 2), ("ram", "gpu"), ("RAM (peak RSS)", "GPU (NVML)"), strict=True):
        reasons = set()
        for k, system in enumerate(run.systems):
            for p, phase in enumerate(PHASES):
                x = p - 0.4 + width * (k + 0.5)
                value = _memory_value(run, system, phase, kind)
                if is_na(value):
                    reasons.add(str(value))
                    ax.text(x, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                            rotation=90, fontsize=8, color=colors[system])
                    continue
                ax.bar(x, value, width, color=colors[system], label=system if p == 0 else None)
                ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(PHASES)), ["training", "inference", "model loading"])
        ax.set_xlim(-0.5, len(PHASES) - 0.5)
        ax.set_ylabel("MiB")
        ax.set_title(title)
        if reasons:
            ax.text(0.5, 0.5, "not measured:\n" + "\n".join(sorted(reasons)), transform=ax.transAxes, ha="center",
                    va="center", fontsize=9, color="0.3")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.set_yticks([])  # no figure on this panel: no scale that could be read as one
    fig.suptitle("Memory footprint per phase")
    return _save(fig, path)


def stress_plot(run: Run, table: pd.DataFrame, metric: str, path: Path) -> Path:
    """Improvement over the mixture against severity, one panel per degradation and one line per system (95 % CI
    bars; each curve starts at the clean-video gain, at the severity that is the identity); the system's
    audio-only (blank video) level dashed, the mixture's at 0. Single conditions (no severity scale) share a panel."""
    from avse_bench.report.stress import BLANK, CLEAN, identity_severity

    colors = _colors(run.systems)
    size = run.manifest.get("preprocessing", {}).get("config", {}).get("size", 0)
    rows = table[table.metric == metric]
    names = [n for n in dict.fromkeys(rows.stress) if n and identity_severity(n, size) is not None]
    singles = [n for n in dict.fromkeys(rows.stress) if n and identity_severity(n, size) is None]
    panels = names + (["single conditions"] if singles else [])
    fig = Figure(figsize=(max(3.4 * len(panels), 6.8), 3.6), layout="constrained")  # wide enough for the title
    for ax, panel in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True):
        for k, system in enumerate(run.systems):
            mine = rows[rows.system == system]
            clean = mine[mine.condition == CLEAN]
            if panel == "single conditions":
                pts = mine[mine.stress.isin(singles)]
                ax.errorbar(np.arange(len(pts)) + 0.1 * k, pts["mean"], yerr=_errorbar(pts), color=colors[system],
                            marker="o", linestyle="none", capsize=3, label=system)
                ax.set_xticks(range(len(pts)), list(pts.stress), rotation=20, fontsize=8)
                ax.set_xlim(-0.5, len(pts) - 0.5)
            else:
                pts = mine[mine.stress == panel]
                start = clean.assign(severity=identity_severity(panel, size))
                line = pd.concat([start, pts]).sort_values("severity")
                ax.errorbar(line.severity, line["mean"], yerr=_errorbar(line), color=colors[system], marker="o",
                            capsize=3, label=system)
                ax.set_xlabel(f"severity ({DEGRADATIONS[panel].unit})", fontsize=8)
            blank = mine[mine.condition == BLANK]["mean"]
            if len(blank):
                ax.axhline(float(blank.iloc[0]), color=colors[system], linestyle="--", linewidth=1,
                           label=f"{system}, audio only")
        ax.axhline(0, color=NOISY_COLOR, linewidth=0.8, label="mixture")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel(f"{METRIC_LABELS[metric]} improvement over the mixture")
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"Visual stress: {METRIC_LABELS[metric]} gain against severity (mean, 95 % CI over scenes)")
    return _save(fig, path)
