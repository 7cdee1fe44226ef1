"""`compare` end to end with the smoke profile: every file, every sheet item, stage skipping, and a third system
added as a folder outside the harness."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from avse_bench.compare import compare
from avse_bench.run_config import RunConfig

SHEET_ITEMS = range(1, 14)
SYSTEMS = ["baseline", "dcnn_rnn", "dcnn_rnn_code"]  # the sheet's claims, the sheet's design, the code's design
GPU_ITEM_WORDS = ("gpu", "GPU")
PLOTS_MIN = 4
# The runs of tests about keys, folders and torchrun score the intrusive metrics alone: DNSMOS is most of a smoke
# run's scoring time, and the runs that test scoring, the sheet and the page keep it.
INTRUSIVE = "intrusive"

TOY_MODEL = '''
"""A toy system: an audio-only learned gain, to show that adding a system is adding a folder."""
import torch
from torch import nn


class ToyGain(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(1, hidden, 9, padding=4), nn.ReLU(), nn.Conv1d(hidden, 1, 9, padding=4))

    def forward(self, audio, video):  # audio (B, L), video (B, 1, T, H, W), unused
        return audio * torch.sigmoid(self.net(audio[:, None]))[:, 0]  # (B, L)


def build_model(config: dict) -> nn.Module:
    return ToyGain(**config)
'''

TOY_TOML = '''
[system]
name = "toy"
title = "Toy gain"
description = "An audio-only learned gain (test fixture)."
source = "tests/test_compare.py"

[model]
hidden = 4

[recipe]
optimizer = "adam"
lr = 1e-3
schedule = "none"
batch_size = 2
epochs = 1
crop_seconds = 0.5

[profiles.smoke]
max_steps = 2

[sheet]
'''


def toy_system(tmp_path, monkeypatch, cache):
    """The toy system as a folder on AVSE_BENCH_SYSTEMS, the smoke run's corpus cache in use; returns the folder."""
    folder = tmp_path / "my_systems" / "toy"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(TOY_MODEL))
    (folder / "system.toml").write_text(textwrap.dedent(TOY_TOML))
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(folder.parent))
    monkeypatch.setenv("AVSE_BENCH_CACHE", str(cache))
    return folder


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """compare baseline dcnn_rnn dcnn_rnn_code --profile smoke, run once for the module (its corpus cached in a tmp
    folder)."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("cache")
    mp.setenv("AVSE_BENCH_CACHE", str(cache))
    out = tmp_path_factory.mktemp("run") / "smoke"
    compare(RunConfig(systems=SYSTEMS, profile="smoke", out_dir=out, device="cpu", seed=0,
            command_line=["avse-bench", "compare", *SYSTEMS, "--profile", "smoke"]))
    yield out, cache
    mp.undo()


@pytest.mark.slow
def test_compare_writes_every_output(smoke_run):
    out, _ = smoke_run
    for name in ("sheet.md", "sheet.csv", "scores.csv", "profile.json", "manifest.json"):
        assert (out / name).is_file(), name
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= PLOTS_MIN
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)

    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["systems"]) == set(SYSTEMS)
    assert manifest["data"]["synthetic"] is True
    assert manifest["preprocessing"]["config"]["size"] == 32
    assert manifest["git_commit"]

    scores = pd.read_csv(out / "scores.csv", dtype={"scene": str})
    n_dev = manifest["data"]["n_eval"]
    groups = scores.groupby(["system", "condition"]).size().to_dict()
    expected = {("noisy", "mixture")} | {(system, c) for system in SYSTEMS for c in ("av", "audio_only")}
    assert set(groups) == expected
    assert all(n == n_dev for n in groups.values())
    peaks = pd.read_csv(out / "peaks.csv", dtype={"scene": str})  # each enhanced output's peak before writing
    enhanced = expected - {("noisy", "mixture")}
    assert peaks.groupby(["system", "condition"]).size().to_dict() == dict.fromkeys(enhanced, n_dev)
    assert (peaks.peak > 0).all()

    profile = json.loads((out / "profile.json").read_text())
    for name in SYSTEMS:
        assert profile[name]["params_total"] > 0
        assert str(profile[name]["memory"]["inference"]["gpu_mib"]).startswith("n/a")


@pytest.mark.slow
def test_sheet_has_every_item_for_every_system(smoke_run):
    out, _ = smoke_run
    sheet = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    measured = sheet[sheet["source"] == "measured"]
    for system in SYSTEMS:
        rows = measured[measured["system"] == system]
        assert sorted({int(i) for i in rows["item_no"]}) == list(SHEET_ITEMS), system
        for _, row in rows.iterrows():
            assert row["value"].strip(), f"{system} item {row['item_no']} is blank"
            if any(w in row["item"] for w in GPU_ITEM_WORDS):
                assert row["value"].strip() not in {"0", "0.0"}, f"{system} item {row['item_no']} reads 0"
    published = sheet[sheet["source"] == "published sheet"]
    assert "7.57" in " ".join(published["value"])  # the DCNN-RNN sheet's GFLOPS, as a labelled reference
    md = (out / "sheet.md").read_text()
    assert "n/a (no CUDA device)" in md


@pytest.mark.slow
def test_rerun_skips_finished_stages(smoke_run, capsys):
    out, _ = smoke_run
    stamps = {p.name: p.read_text() for p in (out / "stages").glob("*.done.json")}
    compare(RunConfig(systems=SYSTEMS, profile="smoke", out_dir=out, device="cpu", seed=0))
    printed = capsys.readouterr().out
    assert "running" not in printed.replace("resuming", "")
    assert printed.count("up to date, skipped") == len(stamps)
    assert {p.name: p.read_text() for p in (out / "stages").glob("*.done.json")} == stamps


@pytest.fixture(scope="module")
def toy_run(smoke_run, tmp_path_factory):
    """compare toy --profile smoke, the toy system a folder outside the harness, run once for the module: (run
    folder, toy folder). Tests that change either work on copies (`_copy_toy`)."""
    _, cache = smoke_run
    mp = pytest.MonkeyPatch()
    folder = toy_system(tmp_path_factory.mktemp("toy"), mp, cache)
    out = compare(RunConfig(systems=["toy"], profile="smoke", out_dir=folder.parents[1] / "run", device="cpu", seed=0,
                            metrics=INTRUSIVE))
    mp.undo()
    return out, folder


def _copy_toy(toy_run, tmp_path, monkeypatch, cache):
    """The toy run and the toy folder copied under `tmp_path` (AVSE_BENCH_SYSTEMS and the cache set to the copy's):
    (run folder, toy folder)."""
    import shutil

    out, folder = toy_run
    copy = toy_system(tmp_path, monkeypatch, cache)
    shutil.copytree(folder, copy, dirs_exist_ok=True)
    shutil.copytree(out, tmp_path / "run")
    return tmp_path / "run", copy


@pytest.mark.slow
def test_a_third_system_is_a_folder(toy_run):
    out, _ = toy_run
    sheet = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    toy = sheet[(sheet["system"] == "toy") & (sheet["source"] == "measured")]
    assert sorted({int(i) for i in toy["item_no"]}) == list(SHEET_ITEMS)
    scores = pd.read_csv(out / "scores.csv", dtype={"scene": str})
    assert set(scores["system"]) == {"noisy", "toy"}


@pytest.mark.slow
def test_nproc_per_node_trains_under_torchrun(smoke_run, tmp_path, monkeypatch, capfd):
    from avse_bench.cli import main

    _, cache = smoke_run
    monkeypatch.setenv("AVSE_BENCH_CACHE", str(cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "ddp"
    assert main(["compare", "dcnn_rnn", "--profile", "smoke", "--device", "cpu", "--nproc-per-node", "2",
                 "--workers", "0", "--metrics", INTRUSIVE, "--out", str(out)]) == 0
    assert "torch.distributed.run --standalone --nproc-per-node=2" in capfd.readouterr().out
    summary = json.loads((out / "runs" / "dcnn_rnn" / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    sheet = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    measured = sheet[(sheet["system"] == "dcnn_rnn") & (sheet["source"] == "measured")]
    item = {int(r["item_no"]): r for _, r in measured.iterrows()}
    assert "world size 2" in item[6]["notes"] and "world size 2" in item[9]["notes"]  # item 9's value: n/a on CPU


@pytest.mark.slow
def test_compare_stress_and_a_blind_eval_split_end_to_end(smoke_run, tmp_path, capsys):
    """`compare --stress` on two systems of a data root whose eval split has no targets: the robustness table, its
    test and plots, DNSMOS columns, and the blind table; a re-run with one more condition enhances only that one."""
    import shutil

    from avse_bench.cli import main

    _, cache = smoke_run
    root = tmp_path / "data"
    shutil.copytree(next((cache / "corpus").glob("*")), root)
    shutil.copytree(root / "dev" / "scenes", root / "eval" / "scenes")
    for target in [*(root / "eval" / "scenes").glob("*_target.wav"),  # as the challenge's eval split
                   *(root / "eval" / "scenes").glob("*_interferer.wav")]:
        target.unlink()
    shutil.copy(root / "metadata" / "scenes.dev.json", root / "metadata" / "scenes.eval.json")
    out = tmp_path / "run"
    args = ["compare", "dcnn_rnn", "dcnn_rnn_code", "--profile", "smoke", "--device", "cpu", "--data", str(root),
            "--out", str(out), "--workers", "0", "--stress", "occlusion=0.5", "offset=2"]
    assert main(args) == 0
    stress = pd.read_csv(out / "stress.csv", dtype={"scene": str})
    assert sorted(set(stress.condition)) == ["occlusion=0.5", "offset=2"] and len(stress) == 2 * 2 * 4
    assert stress[["si_sdr", "pesq_wb", "stoi"]].notna().all().all() and stress["estoi"].isna().all()
    sheet = (out / "sheet.md").read_text()
    assert "## Robustness to degraded video" in sheet and "Which degrades more gracefully (SI-SDR)" in sheet
    assert "BCa bootstrap test of the mean difference" in sheet.split("## Robustness")[1]
    for metric in ("si_sdr", "pesq_wb", "stoi"):
        assert (out / f"stress_{metric}.png").stat().st_size > 10_000
    scores = pd.read_csv(out / "scores.csv", dtype={"scene": str})
    assert scores["dnsmos_ovrl"].notna().all() and "DNSMOS-OVRL" in sheet.split("## Quality")[1]
    blind = pd.read_csv(out / "blind.csv", dtype={"scene": str})
    assert set(zip(blind.system, blind.condition, strict=True)) == {("noisy", "mixture"), ("dcnn_rnn", "av"),
                                                                    ("dcnn_rnn_code", "av")}
    assert blind["dnsmos_ovrl"].notna().all() and blind["si_sdr"].isna().all() and (blind["error"].isna()).all()
    assert "## Blind evaluation (no clean reference)" in sheet
    capsys.readouterr()
    written = {p: p.stat().st_mtime_ns for p in (out / "enhanced" / "dcnn_rnn" / "stress").rglob("*.wav")}
    assert len(written) == 2 * 4
    assert main([*args, "frozen=3"]) == 0  # one more condition: the other two are not enhanced again
    assert all(p.stat().st_mtime_ns == t for p, t in written.items())
    printed = capsys.readouterr().out
    assert "score.dcnn_rnn.stress.occlusion=0.5: up to date" in printed
    assert "score.dcnn_rnn.stress.frozen=3: running" in printed
    assert len(pd.read_csv(out / "stress.csv")) == 2 * 3 * 4


@pytest.mark.slow
def test_run_settings_code_and_weights_are_what_the_stage_keys_say(smoke_run, tmp_path, monkeypatch, capsys):
    """Issue 18, items 1 and 2: the run's preprocessing (40 px, not equalised) is the one training used; a system
    whose model.py changes (same system.toml) is trained, enhanced and profiled again; two runs whose weights are
    bit-identical have identical model.pt bytes and identical enhancement keys."""
    _, cache = smoke_run
    folder = toy_system(tmp_path, monkeypatch, cache)
    runs = [tmp_path / "run1", tmp_path / "run2"]
    for out in runs:
        compare(RunConfig(systems=["toy"], profile="smoke", out_dir=out, device="cpu", seed=0, metrics=INTRUSIVE,
                frames={"frame_size": 40, "equalize": False}))
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    summary = json.loads((runs[0] / "runs" / "toy" / "train_summary.json").read_text())
    assert manifest["preprocessing"]["config"] == {**summary["preprocessing"]} and \
        summary["preprocessing"]["size"] == 40 and summary["preprocessing"]["equalize"] is False
    assert summary["preprocessing_hash"] == manifest["preprocessing"]["hash"]
    assert (runs[0] / "runs/toy/model.pt").read_bytes() == (runs[1] / "runs/toy/model.pt").read_bytes()
    keys = [{p.name: json.loads(p.read_text())["inputs_hash"] for p in (out / "stages").glob("*.done.json")}
            for out in runs]
    assert keys[0] == keys[1]

    capsys.readouterr()
    (folder / "model.py").write_text(textwrap.dedent(TOY_MODEL).replace("nn.ReLU()", "nn.Tanh()"))
    compare(RunConfig(systems=["toy"], profile="smoke", out_dir=runs[0], device="cpu", seed=0, metrics=INTRUSIVE,
            frames={"frame_size": 40, "equalize": False}))
    printed = capsys.readouterr().out
    for stage in ("train.toy", "enhance.toy.av", "score.toy.av", "profile.toy"):
        assert f"{stage}: running" in printed, stage
    assert "score.noisy: up to date" in printed  # the mixture's scores do not depend on the system


@pytest.mark.parametrize("nproc", [2, 1])
def test_cuda_without_a_cuda_device_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, nproc):
    """Issue 18, item 12: `--device cuda --nproc-per-node 2` on a CPU machine launched torchrun and ended in a
    20-line traceback; now it is refused before anything is launched or written (and so with one process)."""
    import subprocess

    import torch

    from avse_bench.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"launched {a}"))
    monkeypatch.setenv("AVSE_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["compare", "dcnn_rnn", "--profile", "smoke", "--device", "cuda", "--nproc-per-node", str(nproc),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "cache").exists()


def _copy_run(smoke_run, tmp_path):
    import shutil

    out, _ = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return copy


@pytest.mark.slow
def test_a_rerun_that_dies_is_never_reported_as_finished(smoke_run, tmp_path, monkeypatch, capsys):
    """Issue 25, item 3: a re-run with a new --stress list killed after it started left its manifest (new command
    line, commit, conditions) beside the last finished run's scores, and `report RUN` rendered them. Now the run is
    "running" until its last stage, and report refuses it in one line; one more of the kind: `report --listen`
    refuses too. Finishing the run (the same command again) makes it reportable."""
    import avse_bench.compare as compare_module
    from avse_bench.cli import main
    from avse_bench.data.stress import parse_stress

    copy = _copy_run(smoke_run, tmp_path)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_module, "enhance_variants", killed)
    with pytest.raises(KeyboardInterrupt):
        compare(RunConfig(systems=SYSTEMS, profile="smoke", out_dir=copy, device="cpu", seed=0,
                          stress=parse_stress(["occlusion=0.5"])))
    assert json.loads((copy / "manifest.json").read_text())["status"] == "running"
    capsys.readouterr()
    assert main(["report", str(copy)]) == 2
    assert "has not finished" in capsys.readouterr().err
    assert main(["report", str(copy), "--listen"]) == 2
    monkeypatch.undo()
    compare(RunConfig(systems=SYSTEMS, profile="smoke", out_dir=copy, device="cpu", seed=0))  # the finished run's
    assert json.loads((copy / "manifest.json").read_text())["status"] == "finished"
    assert main(["report", str(copy)]) == 0


def test_stage_code_is_the_import_closure_of_what_each_stage_runs():
    """What a stage runs is read from the source: the metric code is in the score stage's closure and not in
    training's; train.py is in training's and not in scoring's."""
    from avse_bench.stage_code import STAGE_CODE, closure

    def names(kind):
        return {p.relative_to(p.parents[1]).as_posix() if p.parent.name != "avse_bench" else p.name
                for p in closure(STAGE_CODE[kind][0])}

    assert {"metrics/functional.py", "metrics/spec.py", "metrics/dnsmos.py", "metrics/binaural.py"} <= names("score")
    assert "train.py" in names("train") and "metrics/functional.py" not in names("train")
    assert "weights.py" in names("train")  # supplied weights are read in the training stage's place
    assert "train.py" not in names("score") and "enhance.py" in names("enhance")


@pytest.mark.slow
def test_a_metric_change_rescores_and_rerenders_and_does_not_retrain(smoke_run, tmp_path, monkeypatch, capsys):
    """Issue 25, item 2: changing how a metric is computed (`si_sdr` returning 1 dB more) left every stage "up to
    date". The score stages' key holds their code's import closure (`stage_code.made_by`); a changed closure is
    simulated here (the installed package is not edited): every score stage and the listening cards run again,
    training, enhancement and profiling do not. One more of the kind: a metric package's version."""
    from avse_bench import stage_code

    copy = _copy_run(smoke_run, tmp_path)
    real = stage_code.made_by
    for change in ({"code": "si_sdr + 1 dB"}, {"packages": {**real("score")["packages"], "pesq": "0.0.5"}}):
        monkeypatch.setattr(stage_code, "made_by", lambda kind, change=change: {**real(kind), **change}
                            if kind == "score" else real(kind))
        capsys.readouterr()
        compare(RunConfig(systems=SYSTEMS, profile="smoke", out_dir=copy, device="cpu", seed=0))
        printed = capsys.readouterr().out
        for system in SYSTEMS:
            assert f"score.{system}.av: running" in printed and f"train.{system}: up to date" in printed
            assert f"enhance.{system}.av: up to date" in printed and f"profile.{system}: up to date" in printed
        assert "score.noisy: running" in printed and "listen: running" in printed
        stamp = json.loads((copy / "stages" / "score.noisy.done.json").read_text())
        assert stamp["made_by"] == {**real("score"), **change} and stamp["git_commit"] and stamp["machine"]["cpu"]


@pytest.mark.slow
def test_an_edit_of_the_sheet_text_only_rerenders(smoke_run, toy_run, tmp_path, monkeypatch, capsys):
    """Issue 27, item 6: editing only `[sheet]` (the published reference strings) re-ran training, enhancement,
    scoring and profiling. Now no stage runs again and the sheet shows the new text; one more of the kind: the
    [system] description. A change of [model] still retrains (the stage reads it)."""
    out, folder = _copy_toy(toy_run, tmp_path, monkeypatch, smoke_run[1])
    config = RunConfig(systems=["toy"], profile="smoke", out_dir=out, device="cpu", seed=0, metrics=INTRUSIVE)
    compare(config)  # the copied run, finished: every stage up to date
    toml = folder / "system.toml"
    text = toml.read_text().replace("[sheet]\n", '[sheet]\nparameters = "3.1 M (published)"\n')
    toml.write_text(text.replace('description = "An audio-only learned gain (test fixture)."',
                                 'description = "A learned gain, described anew."'))
    capsys.readouterr()
    compare(config)
    printed = capsys.readouterr().out
    assert ": running" not in printed.replace("resuming", "") and printed.count("up to date, skipped") >= 7
    assert "3.1 M (published)" in (out / "sheet.md").read_text()
    toml.write_text(toml.read_text().replace("hidden = 4", "hidden = 5"))
    compare(config)
    assert "train.toy: running" in capsys.readouterr().out


@pytest.mark.slow
def test_a_profile_can_shrink_the_model_and_the_sheet_says_so(smoke_run, tmp_path, monkeypatch):
    """Issue 27, item 3: `[profiles.smoke]` overrode the recipe only, so a published-size model could not run at
    smoke scale without editing `[model]` for every profile. `[profiles.smoke.model]` is laid over `[model]` for
    that profile, recorded in the manifest, and the sheet states the reduced configuration; the paper profile's
    model is unchanged."""
    from avse_bench.systems import count_parameters, load

    _, cache = smoke_run
    folder = toy_system(tmp_path, monkeypatch, cache)
    toml = folder / "system.toml"
    toml.write_text(toml.read_text().replace("[profiles.smoke]\n", "[profiles.smoke]\nmodel = { hidden = 2 }\n"))
    system = load("toy")
    assert count_parameters(system.build_model()) == 19 * 4 + 1  # Conv1d(1, h, 9) + Conv1d(h, 1, 9): 19 h + 1
    small = system.for_profile("smoke")
    assert small.config["model"]["hidden"] == 2 and small.overrides == {"profile": "smoke", "hidden": 2}
    assert count_parameters(small.build_model()) == 19 * 2 + 1
    assert system.recipe("smoke")["max_steps"] == 2 and "model" not in system.recipe("smoke")
    out = compare(RunConfig(systems=["toy"], profile="smoke", out_dir=tmp_path / "run", device="cpu", seed=0,
                            metrics=INTRUSIVE))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["systems"]["toy"]["model_overrides"] == {"profile": "smoke", "hidden": 2}
    items = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    params = items[(items.system == "toy") & (items.item == "Parameters") & (items.source == "measured")]
    assert "39 total" in params.value.iloc[0]
    assert "measured at a reduced configuration ([profiles.smoke.model]: hidden: 2)" in params.value.iloc[0]
