"""The report: sheet.md, sheet.csv, quality.csv and plots rendered from a fabricated but realistic compare run folder.

`make_run(root)` writes such a folder (manifest, scores for the mixture and two systems x two conditions over 12
scenes with failed scorings, a CPU profile whose GPU figures are "n/a", training summaries and logs); the compare
tests may reuse it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avse_bench.errors import AvseBenchError
from avse_bench.metrics.stats import METRICS, mean_ci
from avse_bench.report import render_report
from avse_bench.report.published import item_of, published_items

SYSTEMS = ("baseline", "dcnn_rnn")
NO_CUDA = "n/a (no CUDA device)"
PUBLISHED = {  # as the DCNN-RNN sheet prints them
    "parameters": "2.0 M trainable (7.948 MB)", "flops": "7.57 GFLOPS", "training_steps": 135,
    "latency": "144.43 ms per sample", "rtf": 0.15, "training_time_per_epoch": "1 min 43 s",
    "memory_training": {"gpu_mib": 22453, "ram_mib": 11918}, "memory_inference": {"gpu_mib": 6464, "ram_mib": 17607},
    "memory_loading": {"gpu_mib": 302, "ram_mib": 14031}, "hardware": "NVIDIA A10", "team": "Ahmed et al.",
}
OUTPUTS = ("sheet.md", "sheet.csv", "quality.csv", "quality.png", "snr_bands.png", "latency.png", "memory.png")


def _scores(rng: np.random.Generator) -> pd.DataFrame:
    """The mixture and each system (av, audio_only) on 12 scenes; S00012 has a silent reference (unscorable
    everywhere) and dcnn_rnn's PESQ failed on S00003 (a partial error)."""
    scenes = [f"S{i:05d}" for i in range(1, 13)]
    masker = ["speech" if i % 2 else "noise" for i in range(12)]
    snr = np.linspace(-12, 8, 12).round(1)
    base = {"pesq_wb": 1.2, "pesq_nb": 1.6, "stoi": 0.62, "estoi": 0.40, "si_sdr": -1.0}
    gain = {"pesq_wb": 0.2, "pesq_nb": 0.25, "stoi": 0.05, "estoi": 0.06, "si_sdr": 3.0}
    rows = []
    for system, condition, k in [("noisy", "mixture", 0.0), ("baseline", "av", 1.0), ("baseline", "audio_only", 0.6),
                                 ("dcnn_rnn", "av", 1.4), ("dcnn_rnn", "audio_only", 1.1)]:
        for i, scene in enumerate(scenes):
            row = {"system": system, "condition": condition, "scene": scene, "masker": masker[i], "snr_db": snr[i]}
            for m in METRICS:
                row[m] = base[m] + k * gain[m] + 0.05 * snr[i] * gain[m] + rng.normal(0, 0.3 * gain[m])
            row["error"] = ""
            if scene == "S00012":
                row.update(dict.fromkeys(METRICS, np.nan), error="reference is silent")
            elif (system, condition, scene) == ("dcnn_rnn", "av", "S00003"):
                row.update(pesq_wb=np.nan, error="pesq_wb: no utterances detected")
            rows.append(row)
    return pd.DataFrame(rows)


def _memory(gpu: bool, ram: float, batch) -> dict:
    if gpu:
        return {"gpu_mib": 4 * ram, "gpu_baseline_mib": 300.0, "gpu_source": "nvml", "torch_peak_mib": 2 * ram,
                "torch_peak_reserved_mib": 3 * ram, "ram_mib": ram, "ram_baseline_mib": 400.0,
                "ram_peak_method": "VmHWM, reset at the phase's start", "batch": batch}
    return {"gpu_mib": NO_CUDA, "gpu_baseline_mib": NO_CUDA, "gpu_source": NO_CUDA, "torch_peak_mib": NO_CUDA,
            "torch_peak_reserved_mib": NO_CUDA, "ram_mib": ram, "ram_baseline_mib": 400.0,
            "ram_peak_method": "VmHWM, reset at the phase's start", "batch": batch}


def _hardware(gpu: bool) -> dict:
    gpus = ([{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "capability": "9.0"}] if gpu
            else NO_CUDA)
    return {"cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_cores_logical": 2, "cpu_cores_physical": 1,
            "cpu_cores_available": 2, "torch_threads": 2, "ram_gib": 7.75, "gpu_count": 1 if gpu else NO_CUDA,
            "gpus": gpus, "gpu_driver": "550.54" if gpu else NO_CUDA}


SOFTWARE = {"python": "3.11.9", "torch": "2.13.0", "cuda": "n/a (CPU build of torch)", "numpy": "2.1.0",
            "pesq": "0.0.4", "pystoi": "0.4.1", "fvcore": "0.1.5.post20221221"}


def _profile(params: int, ms: float, gpu: bool, rng: np.random.Generator) -> dict:
    samples = list(np.round(ms + rng.gamma(2.0, ms / 40, 20), 4))
    a = np.asarray(samples)
    device = "cuda:0" if gpu else "cpu"
    return {
        "system": "x", "device": device, "device_name": "NVIDIA H100 80GB HBM3" if gpu else "Intel(R) Xeon(R) CPU",
        "reference_input": {"seconds": 3.0, "sample_rate": 16000, "samples": 48000, "fps": 25, "frames": 75,
                            "size": 64, "batch": 1, "audio_shape": [1, 48000], "video_shape": [1, 1, 75, 64, 64]},
        "params_total": params, "params_trainable": params, "size_mb": round(params * 4 / 1e6, 3),
        "size_mib": round(params * 4 / 2**20, 3), "size_note": "fp32, parameters only",
        "flops": 31 * params, "flops_by_op": {"conv": 20 * params, "aten::lstm": 11 * params},
        "flops_unsupported": {"aten::add": 12, "aten::max_pool3d": 1}, "flops_note": "one multiply-add is one flop",
        "latency_ms": {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
                       "p99": float(np.percentile(a, 99)), "mean": float(a.mean()), "std": float(a.std()), "n": 20},
        "latency_samples_ms": samples, "timer": "time.perf_counter (wall clock around each call)",
        "latency_warmup": 3, "rtf": float(np.percentile(a, 50)) / 3000, "rtf_mean": float(a.mean()) / 3000,
        "rtf_basis": "rtf = p50 latency / audio duration",
        "throughput": {"batch": 4, "samples_per_s": 4000 / ms, "audio_seconds_per_s": 12000 / ms},
        "memory": {"loading": _memory(gpu, 420.0 + params / 1e5, "n/a (no input)"),
                   "inference": _memory(gpu, 650.0 + params / 1e5, 1), "training": _memory(gpu, 1900.0, 2)},
        "hardware": _hardware(gpu), "software": SOFTWARE,
    }


def _config(name: str, sheet: dict) -> dict:
    return {"system": {"name": name, "title": f"{name} title", "description": "d", "source": "s"},
            "model": {"separator_blocks": 6 if name == "baseline" else 1},
            "recipe": {"optimizer": "adam", "lr": 3e-4, "batch_size": 16, "epochs": 50, "crop_seconds": 3.0},
            "profiles": {"quick": {"batch_size": 4, "max_steps": 120, "epochs": 3}}, "sheet": sheet}


def make_run(root: Path, *, gpu: bool = False, seed: int = 0) -> Path:
    """Write a compare run folder (docs/ARCHITECTURE.md layout, minus wavs and weights) at `root`."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    configs = {"baseline": _config("baseline", {}), "dcnn_rnn": _config("dcnn_rnn", PUBLISHED)}
    configs["dcnn_rnn"]["sheet_mapping"] = {"parameters": "the 8-layer DCNN and one dual-path block: 2.0 M"}
    manifest = {
        "command_line": ["avse-bench", "compare", "baseline", "dcnn_rnn", "--profile", "quick"],
        "git_commit": "0123456789abcdef0123456789abcdef01234567", "profile": "quick", "seed": 0,
        "created": "2026-11-23T22:00:00+00:00",
        "systems": {s: {"config": configs[s], "recipe": {**configs[s]["recipe"], **configs[s]["profiles"]["quick"]}}
                    for s in SYSTEMS},
        "data": {"root": "/cache/corpus/abc", "synthetic": True, "train_split": "train", "eval_split": "dev",
                 "n_train": 200, "n_eval": 12},
        "preprocessing": {"config": {"size": 64, "equalize": True, "fps": 25, "sample_rate": 16000},
                          "hash": "9f2c1e"},
        "hardware": _hardware(gpu), "software": SOFTWARE,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _scores(rng).to_csv(root / "scores.csv", index=False)
    profiles = {"baseline": _profile(13_967_489, 900.0, gpu, rng), "dcnn_rnn": _profile(2_010_000, 240.0, gpu, rng)}
    (root / "profile.json").write_text(json.dumps(profiles, indent=2))
    for s, epoch_s in (("baseline", 140.0), ("dcnn_rnn", 35.0)):
        run = root / "runs" / s
        run.mkdir(parents=True, exist_ok=True)
        log = pd.DataFrame({"epoch": [1, 2, 3], "steps": [40, 80, 120], "train_loss": [-1.0, -2.5, -3.1],
                            "val_loss": [-1.2, -2.4, -2.9], "lr": [1e-3] * 3,
                            "epoch_seconds": [epoch_s + 2, epoch_s - 1, epoch_s - 1]})
        log.to_csv(run / "train_log.csv", index=False)
        summary = {"system": s, "profile": "quick", "recipe": manifest["systems"][s]["recipe"],
                   "preprocessing": manifest["preprocessing"], "steps_per_epoch": 40, "total_steps": 120,
                   "epochs": 3, "mean_epoch_seconds": epoch_s, "total_seconds": 3 * epoch_s,
                   "device": "cuda:0" if gpu else "cpu", "world_size": 1, "batch_size": 4, "seed": 0,
                   "final_val_loss": -2.9, "torch_threads": 2}
        (run / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return root


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = make_run(tmp_path_factory.mktemp("run") / "quick")
    render_report(root)
    return root


def _sheet_csv(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "sheet.csv", dtype=str, keep_default_na=False)


def _table_row(md: str, label: str, after: str = "") -> list[str]:
    """The cells of the first Markdown table row whose first cell is `label`, after the line `after`."""
    for line in md[md.index(after):].splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no table row {label!r}")


def test_every_item_for_every_system(rendered):
    rows = _sheet_csv(rendered)
    measured = rows[rows.source == "measured"]
    for system in SYSTEMS:
        mine = measured[measured.system == system]
        assert list(mine.item_no.astype(int)) == list(range(1, 14))
        assert (mine.value.str.strip() != "").all()
    md = (rendered / "sheet.md").read_text()
    for no in range(1, 14):
        cells = _table_row(md, str(no))
        assert len(cells) == 2 + len(SYSTEMS) + 1 and all(cells), cells  # No., Item, 2 measured, 1 published


def test_gpu_items_read_na_on_a_cpu_run(rendered):
    rows = _sheet_csv(rendered)
    measured = rows[rows.source == "measured"].set_index(["system", "item_no"]).value
    for system in SYSTEMS:
        assert measured[system, "9"] == NO_CUDA
        memory = measured[system, "7"]
        assert memory.count(f"GPU {NO_CUDA}") == 3, memory
        assert f"GPU memory {NO_CUDA}" in measured[system, "13"]
    assert not measured.str.contains(r"GPU:? 0(?:\.0)?\b|\b0 MiB", regex=True).any()


def test_limitations_are_derived_from_the_run(tmp_path):
    from avse_bench.report.items import limitations
    from avse_bench.report.load import load_run

    root = make_run(tmp_path / "blind")
    scores = pd.read_csv(root / "scores.csv", dtype={"scene": str})
    av = scores[(scores.system == "dcnn_rnn") & (scores.condition == "av")]
    blind = scores.condition == "audio_only"
    scores.loc[blind & (scores.system == "dcnn_rnn"), METRICS] = av[list(METRICS)].to_numpy()  # ignores the video
    scores.to_csv(root / "scores.csv", index=False)
    run = load_run(root)
    text = {s: limitations(run, s)[0] for s in SYSTEMS}
    for system in SYSTEMS:
        assert "embedded synthetic corpus" in text[system] and "trained on CPU only" in text[system]
        assert "120 steps over 3 epochs against 50 epochs at batch 16" in text[system]
        assert "only 12 evaluation scenes" in text[system]
    assert "no clear use of the video" in text["dcnn_rnn"]
    # baseline gains on each of its 5 speech-masker scenes, but 5 scenes get no interval and no test (fewer than
    # MIN_SCENES_FOR_CI): the verdict follows the test, never a 5-scene interval
    assert "(n=5, p n/a), not shown to exceed 0.1 dB" in text["baseline"]
    assert "2 of 24 scene scorings" in text["baseline"] and "3 of 24" in text["dcnn_rnn"]


def test_gpu_run_reports_gpu_figures(tmp_path):
    root = make_run(tmp_path / "gpu", gpu=True)
    render_report(root)
    rows = _sheet_csv(root)
    measured = rows[rows.source == "measured"].set_index(["system", "item_no"]).value
    assert measured["baseline", "9"] == "1 x NVIDIA H100 80GB HBM3"
    ram = json.loads((root / "profile.json").read_text())["baseline"]["memory"]["training"]["ram_mib"]
    assert f"GPU {4 * ram:,.0f} MiB (torch peak {2 * ram:,.0f} MiB)" in measured["baseline", "7"]
    assert NO_CUDA not in measured["baseline", "7"]


def test_one_system_without_audio_only_scores(tmp_path):
    root = make_run(tmp_path / "one")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["systems"]["dcnn_rnn"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    scores = pd.read_csv(root / "scores.csv", dtype={"scene": str})
    scores[scores.system.isin(["noisy", "baseline"]) & (scores.condition != "audio_only")].to_csv(
        root / "scores.csv", index=False)
    render_report(root)
    md = (root / "sheet.md").read_text()
    assert "dcnn_rnn (" not in md and "Paired comparison" not in md
    visual = md[md.index("### Visual contribution"):md.index("### By masker type")]
    assert "_(no rows)_" in visual and "audio only" not in visual
    assert len(_sheet_csv(root)) == 13


def test_published_column_and_rows(rendered):
    md = (rendered / "sheet.md").read_text()
    assert "dcnn_rnn (published sheet, NVIDIA A10)" in md
    assert _table_row(md, "2")[-1] == "7.57 GFLOPS"
    assert "memory_training: gpu_mib: 22453; ram_mib: 11918" in _table_row(md, "7")[-1]
    assert _table_row(md, "12")[-1] == "not reported"
    assert "team: Ahmed et al." in md  # a published value that fits no item is listed, not dropped
    assert "No published sheet values for: baseline." in md
    rows = _sheet_csv(rendered)
    published = rows[rows.source == "published sheet"]
    assert set(published.system) == {"dcnn_rnn"}
    assert len(published) == 13 and len(rows) == 13 * len(SYSTEMS) + 13
    assert published.set_index("item_no").value["5"] == "0.15"


def test_quality_table_matches_scores(rendered):
    scores = pd.read_csv(rendered / "scores.csv", dtype={"scene": str, "error": str})
    md = (rendered / "sheet.md").read_text()
    columns = _table_row(md, "", after="## Quality")  # the header of the quality table
    for label, system, condition in [("noisy (mixture)", "noisy", "mixture"),
                                     ("dcnn_rnn (audio-visual)", "dcnn_rnn", "av")]:
        cells = dict(zip(columns, _table_row(md, label, after="## Quality"), strict=True))
        df = scores[(scores.system == system) & (scores.condition == condition)]
        for metric, label_, digits in [("pesq_wb", "PESQ-WB", 3), ("stoi", "STOI", 3), ("si_sdr", "SI-SDR (dB)", 2)]:
            values = df[metric].dropna().to_numpy()
            _, lo, hi, _ = mean_ci(values)
            expected = f"{values.mean():.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            assert cells[label_].startswith(expected), (label_, cells[label_], expected)
        assert cells["scenes"] == "12"
    assert _table_row(md, "noisy (mixture)", after="## Quality")[-1] == "1 (1 x reference is silent)"
    dcnn = dict(zip(columns, _table_row(md, "dcnn_rnn (audio-visual)"), strict=True))
    assert dcnn["PESQ-WB"].endswith("(n=10)") and "(n=" not in dcnn["STOI"]
    assert dcnn["scenes with an error"] == "2 (1 x pesq_wb: no utterances detected; 1 x reference is silent)"

    quality = pd.read_csv(rendered / "quality.csv").set_index(["system", "condition", "metric"])
    noisy = scores[scores.system == "noisy"].set_index("scene")
    av = scores[(scores.system == "baseline") & (scores.condition == "av")].set_index("scene")
    gain = (av.si_sdr - noisy.si_sdr).dropna()
    assert quality.loc[("baseline", "av - mixture", "si_sdr"), "mean"] == pytest.approx(gain.mean())
    assert quality.loc[("baseline", "av - mixture", "si_sdr"), "n"] == 11


def test_comparisons_and_breakdowns_present(rendered):
    md = (rendered / "sheet.md").read_text()
    assert re.search(r"\| baseline better than dcnn_rnn\s+\| SI-SDR \(dB\)\s+\| 11 ", md)
    assert "p, Holm over the table" in md and "Holm's step-down method" in md  # which p-values are adjusted, how
    assert "BCa bootstrap test of the mean difference" in md and "Wilcoxon" not in md
    speech = [line for line in md.splitlines() if line.startswith("| dcnn_rnn ") and "| speech " in line]
    assert len(speech) == len(METRICS)  # the visual contribution over speech maskers, per metric
    assert "### By masker type" in md and "### By SNR band" in md
    band = md[md.index("### By SNR band"):]
    assert band.index("[-15, -10) dB") < band.index("[-10, -5) dB") < band.index("[5, 10] dB")


def test_plots_are_valid_images(rendered):
    from PIL import Image

    for name in OUTPUTS[3:]:
        with Image.open(rendered / name) as image:
            image.verify()
        with Image.open(rendered / name) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_rerendering_is_deterministic(rendered, tmp_path):
    before = {name: (rendered / name).read_bytes() for name in OUTPUTS}
    render_report(rendered)
    assert {name: (rendered / name).read_bytes() for name in OUTPUTS} == before


def test_missing_profile_reads_na_and_missing_manifest_raises(tmp_path):
    root = make_run(tmp_path / "partial")
    (root / "profile.json").unlink()
    render_report(root)
    rows = _sheet_csv(root)
    flops = rows[(rows.source == "measured") & (rows.item_no == "2")].value
    assert (flops == "n/a (profile.json has no entry for baseline)").sum() == 1
    (root / "manifest.json").unlink()
    with pytest.raises(AvseBenchError, match="manifest.json"):
        render_report(root)


@pytest.mark.parametrize("folder", sorted((Path(__file__).parents[1] / "systems").glob("*/system.toml")),
                         ids=lambda p: p.parent.name)
def test_builtin_published_sheets_fit_the_items(folder):
    """Every value of a built-in system's published sheet lands on an item of the template."""
    import tomllib

    sheet = tomllib.loads(folder.read_text()).get("sheet", {})
    assert published_items(sheet)[1] == {}


def test_published_keys_land_on_their_items():
    assert item_of("memory_training_gpu_mib") == 7
    assert item_of("Training time per epoch") == 6
    assert item_of("training_steps") == 3
    assert item_of("params_trainable") == 1
    assert item_of("team") is None
    assert item_of("epoch_seconds") == 6 and item_of("epochs") == 10
    placed, unplaced = published_items({"flops": "7.57 GFLOPS", "flops_note": "per 3 s", "team": "x"})
    assert placed == {2: "7.57 GFLOPS; flops_note: per 3 s"} and unplaced == {"team": "x"}


def test_clipped_outputs_are_counted_and_absent_peaks_say_nothing(tmp_path):
    root = make_run(tmp_path / "clip")
    render_report(root)  # a run folder from before 16-bit outputs: no peaks.csv, no clipping table
    assert "above full scale" not in (root / "sheet.md").read_text()
    peaks = pd.DataFrame({"system": ["baseline"] * 3 + ["dcnn_rnn"] * 3,
                          "condition": ["av", "av", "audio_only", "av", "av", "audio_only"],
                          "scene": ["S1", "S2", "S1", "S1", "S2", "S1"], "peak": [1.73, 0.8, 1.02, 0.5, 0.9, 0.99]})
    peaks.to_csv(root / "peaks.csv", index=False)
    render_report(root)
    md = (root / "sheet.md").read_text()
    assert _table_row(md, "baseline (audio-visual)", "outputs above full scale")[1:] == ["1 of 2", "1.73"]
    assert _table_row(md, "baseline (audio only, blank video)", "outputs above full scale")[1:] == ["1 of 1", "1.02"]
    assert _table_row(md, "dcnn_rnn (audio-visual)", "outputs above full scale")[1:] == ["0 of 2", "0.90"]


def test_stress_section_compares_every_pair_of_three_systems(tmp_path):
    root = make_run(tmp_path / "three")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["systems"]["dcnn_rnn_code"] = manifest["systems"]["dcnn_rnn"]
    manifest["stress"] = {"conditions": ["offset=5"], "seed": 0, "metrics": ["si_sdr", "pesq_wb", "stoi"]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    scores = pd.read_csv(root / "scores.csv", dtype={"scene": str})
    third = scores[scores.system == "dcnn_rnn"].assign(system="dcnn_rnn_code")
    third["si_sdr"] -= 0.5
    scores = pd.concat([scores, third], ignore_index=True)
    scores.to_csv(root / "scores.csv", index=False)
    stress = scores[scores.condition == "av"].assign(condition="offset=5", stress="offset", severity=5.0)
    stress["si_sdr"] -= stress.system.map({"baseline": 0.1, "dcnn_rnn": 2.0, "dcnn_rnn_code": 1.0})
    stress.to_csv(root / "stress.csv", index=False)
    render_report(root)
    md = (root / "sheet.md").read_text()
    for a, b in (("baseline", "dcnn_rnn"), ("baseline", "dcnn_rnn_code"), ("dcnn_rnn", "dcnn_rnn_code")):
        assert f"**Which degrades more gracefully (SI-SDR), {a} or {b}.**" in md
    assert "baseline degrades more gracefully than dcnn_rnn_code." in md
    assert "p = < 0.001" not in md and "p < 0.001" in md
    assert "(Holm over the 3 pairs: p " in md  # the verdicts read the p adjusted over the pairs
