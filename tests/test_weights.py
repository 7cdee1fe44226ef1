"""Supplied weights: the official baseline's PyTorch Lightning checkpoint (official module names), our own files and
plain state dicts are read safely; a file that does not fit, or holds arbitrary objects, ends in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.enhance import read_peaks
from avse_bench.errors import AvseBenchError
from avse_bench.run_config import RunConfig
from avse_bench.systems import load
from avse_bench.weights import read_weights


class Opaque:
    """An arbitrary object: what a checkpoint must never make us unpickle."""


def official_state(seed: int = 3) -> tuple[dict, dict]:
    """(our model's state dict, the same tensors under the official code's names), from a seeded fresh model."""
    torch.manual_seed(seed)
    system = load("baseline")
    ours = system.build_model().state_dict()
    to_official = system._module().to_official
    return ours, {to_official(k): v for k, v in ours.items()}


def save_lightning(path, official: dict) -> None:
    """The layout `trainer.fit` writes for the official AVSEModule: `model.`-prefixed names, Lightning's
    AttributeDict in hyper_parameters (a stand-in module here, removed before anything reads the file)."""
    names = ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing")
    module = types.ModuleType(names[-1])

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = module.__name__, "AttributeDict"
    module.AttributeDict = AttributeDict
    sys.modules.update({name: types.ModuleType(name) for name in names[:-1]}, **{names[-1]: module})
    try:
        torch.save({"state_dict": {f"model.{k}": v for k, v in official.items()}, "epoch": 49, "global_step": 107900,
                    "pytorch-lightning_version": "2.0.9", "hyper_parameters": AttributeDict(lr=3e-4, val_dataset=None)},
                   path)
    finally:
        for name in names:
            del sys.modules[name]


def test_every_format_reads_to_our_names(tmp_path):
    ours, official = official_state()
    system = load("baseline")
    files = {"lightning.ckpt": None, "plain.pt": ours, "checkpoint.pt": {"model": ours, "epoch": 3},
             "ddp.pt": {f"module.{k}": v for k, v in ours.items()}}
    save_lightning(tmp_path / "lightning.ckpt", official)
    for name, obj in files.items():
        if obj is not None:
            torch.save(obj, tmp_path / name)
        state, info = read_weights(system, tmp_path / name)
        assert state.keys() == ours.keys(), name
        assert all(torch.equal(state[k], ours[k]) for k in ours), name
        assert len(info["sha256"]) == 64
    assert read_weights(system, tmp_path / "lightning.ckpt")[1]["format"] == "PyTorch Lightning checkpoint"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avse_bench.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("case, words", [
    ("mis-shaped", ["does not fit", "mis-shaped 1: visual.projection.weight (256, 256) (model (256, 512))"]),
    ("missing", ["does not fit", "missing 1: separator.prelu.weight"]),
    ("foreign", ["no weights found", "(objects of test_weights.Opaque were not read)"]),
    ("not a checkpoint", ["no weights found: not a state dict"]),
])
def test_a_file_that_does_not_fit_is_one_line(tmp_path, case, words):
    ours, official = official_state()
    path = tmp_path / "w.ckpt"
    if case == "mis-shaped":
        save_lightning(path, {**official, "visual_encoder.nn_out.weight": torch.zeros(256, 256)})
    elif case == "missing":
        save_lightning(path, {k: v for k, v in official.items() if k != "separator.prelu.weight"})
    elif case == "foreign":
        torch.save({"callback": Opaque()}, path)
    else:
        torch.save({"epoch": 3}, path)
    run = cli("profile", "baseline", "--device", "cpu", "--weights", str(path), "--seconds", "1", "--size", "16")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert run.stderr.count("avse-bench: error:") == 1 and len(run.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in run.stderr, run.stderr


class RunsOnLoad:
    """A trainer's callback whose unpickling runs its own code (its __setstate__ writes a file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        open(state["marker"], "w").close()


class RunsCommand:
    """Unpickling this runs a shell command: a file made to attack whoever loads it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_lightning_checkpoints_as_trainers_write_them_load_their_weights_and_run_no_code(tmp_path, capsys):
    """Issue 18, item 5: hyper_parameters holding a PosixPath, an argparse.Namespace or a Hydra DictConfig (the
    AVSEC-4 baseline's train.py is Hydra + save_hyperparameters) were refused although the state dict is plain
    tensors. One more of the kind: a callback object whose unpickling would run a command."""
    import argparse
    import pathlib

    from omegaconf import OmegaConf

    ours, official = official_state()
    system = load("baseline")
    marker = tmp_path / "ran"
    hyper = {"cfg": OmegaConf.create({"trainer": {"max_epochs": 100}, "data": {"root": "/data/avsec4"}}),
             "args": argparse.Namespace(lr=1e-4, batch_size=8), "root": pathlib.PosixPath("/data/avsec4"),
             "callback": RunsOnLoad(marker)}
    path = tmp_path / "hydra.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in official.items()}, "epoch": 99,
                "pytorch-lightning_version": "2.4.0", "hyper_parameters": hyper}, path)
    state, info = read_weights(system, path)
    assert not marker.exists()  # nothing from the file ran
    assert state.keys() == ours.keys() and all(torch.equal(state[k], ours[k]) for k in ours)
    assert info["format"] == "PyTorch Lightning checkpoint"
    assert {"argparse.Namespace", "omegaconf.dictconfig.DictConfig", "pathlib.PosixPath",
            "test_weights.RunsOnLoad"} <= set(info["skipped"])
    assert "were skipped, not run: " in capsys.readouterr().err
    torch.save({"state_dict": {f"model.{k}": v for k, v in official.items()}, "cb": RunsCommand(marker)}, path)
    with pytest.raises(AvseBenchError, match="unsupported GLOBAL posix.system whose module posix is blocked"):
        read_weights(system, path)  # torch blocks os's functions outright: refused, nothing run
    assert not marker.exists()


def test_unknown_system_in_weights_is_refused_before_any_work(tmp_path):
    from avse_bench.compare import compare

    with pytest.raises(AvseBenchError, match="not a system of this run"):
        compare(RunConfig(systems=["dcnn_rnn"], profile="smoke", out_dir=tmp_path / "run",
                          weights={"baseline": tmp_path / "x.pt"}))
    assert not (tmp_path / "run" / "runs").exists()


@pytest.mark.slow
def test_compare_with_the_official_lightning_checkpoint_trains_nothing(tmp_path, monkeypatch):
    from avse_bench.compare import compare

    monkeypatch.setenv("AVSE_BENCH_CACHE", str(tmp_path / "cache"))
    ours, official = official_state()
    ckpt = tmp_path / "epoch=49-step=107900.ckpt"
    save_lightning(ckpt, official)
    # the frames the official weights were trained on: no equalisation (at a small size here, for speed)
    out = compare(RunConfig(systems=["baseline"], profile="smoke", out_dir=tmp_path / "run", device="cpu",
                  weights={"baseline": ckpt}, frames={"frame_size": 24, "equalize": False}))
    run = out / "runs" / "baseline"
    assert not (run / "checkpoint.pt").exists() and not (run / "train_log.csv").exists()  # nothing was trained
    summary = json.loads((run / "train_summary.json").read_text())
    sha = summary["supplied_weights"]["sha256"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["supplied_weights"]["baseline"]["sha256"] == sha
    config = manifest["preprocessing"]["config"]
    assert config["size"] == 24 and config["equalize"] is False
    sheet = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    steps = sheet[(sheet.system == "baseline") & (sheet.item_no == "3") & (sheet.source == "measured")]
    value = steps["value"].iloc[0]
    assert value.startswith("not trained in this run: weights supplied") and ckpt.name in value and sha in value
    # the enhanced output is our model's forward with those weights, on the run's preprocessing
    model = load("baseline").build_model()
    model.load_state_dict(ours)
    model.eval()
    root = json.loads((out / "manifest.json").read_text())["data"]["root"]
    scene = load_split(root, "dev")[0]
    item = AVSEDataset([scene], Preprocessing(size=24, equalize=False), crop_seconds=None)[0]
    with torch.no_grad():
        expected = model(item["mixed"][None], item["video"][None])[0].numpy()
    enhanced = out / "enhanced" / "baseline" / "av"
    written, _ = sf.read(enhanced / f"{scene.id}.wav", dtype="float32")
    assert np.allclose(written, np.clip(expected, -1, 32767 / 32768), rtol=0, atol=1 / 32768)  # 16-bit, as official
    assert read_peaks(enhanced)[scene.id] == pytest.approx(float(np.abs(expected).max()), abs=1e-6)


def test_enhance_with_weights_on_chosen_frames(tiny_corpus, tmp_path):
    ours, _ = official_state()
    weights = tmp_path / "model.pt"
    torch.save(ours, weights)
    out = tmp_path / "enhanced"
    run = cli("enhance", "baseline", "--weights", str(weights), "--data", str(tiny_corpus), "--out", str(out),
              "--frame-size", "16", "--no-equalize", "--device", "cpu", "--workers", "0")
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in out.glob("*.wav")) == [f"{s.id}.wav" for s in load_split(tiny_corpus, "dev")]
    refused = cli("enhance", "baseline", "--weights", str(weights), "--run", str(tmp_path), "--data",
                  str(tiny_corpus), "--out", str(out), "--frame-size", "16")
    assert refused.returncode == 2 and "apply to --weights without --run" in refused.stderr
    assert "Traceback" not in refused.stderr
