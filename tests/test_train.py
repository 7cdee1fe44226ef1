"""The one training loop: it learns, it resumes exactly, it refuses to clobber a run, and it runs under torchrun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.loading import LoaderOptions
from avse_bench.errors import AvseBenchError
from avse_bench.profiles import choose_preprocessing, get_profile
from avse_bench.systems import System, load
from avse_bench.train import seed_everything, train, validate

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "dcnn_rnn"  # the small one: seconds per smoke run
SMOKE_PRE = choose_preprocessing([], "smoke")[0]


@pytest.fixture(scope="module")
def full_run(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "full"
    train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False, preprocessing=SMOKE_PRE)
    return out


def _log(run: Path) -> list[dict]:
    with open(run / "train_log.csv") as f:
        return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]


def test_a_smoke_run_writes_its_records(full_run):
    summary = json.loads((full_run / "train_summary.json").read_text())
    recipe = load(SYSTEM).recipe("smoke")
    assert summary["system"] == SYSTEM and summary["profile"] == "smoke"
    assert summary["recipe"] == recipe
    assert summary["preprocessing"]["size"] == get_profile("smoke")["video_size"]
    assert summary["total_steps"] == min(recipe["max_steps"], recipe["epochs"] * summary["steps_per_epoch"])
    assert summary["world_size"] == 1 and summary["batch_size"] == recipe["batch_size"]
    for key in ("steps_per_epoch", "epochs", "mean_epoch_seconds", "total_seconds", "device", "seed",
                "final_val_loss", "preprocessing_hash"):
        assert key in summary
    rows = _log(full_run)
    assert len(rows) == summary["epochs"]
    assert int(rows[-1]["steps"]) == summary["total_steps"]
    assert float(rows[-1]["val_loss"]) == summary["final_val_loss"]
    ckpt = torch.load(full_run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == summary["epochs"] and ckpt["step"] == summary["total_steps"]


def test_smoke_training_decreases_the_validation_loss(full_run, tiny_corpus):
    system = load(SYSTEM)
    recipe = system.recipe("smoke")
    val = AVSEDataset(load_split(tiny_corpus, "dev"), Preprocessing(size=get_profile("smoke")["video_size"]),
                      crop_seconds=recipe["crop_seconds"], seed=0)
    loader = DataLoader(val, batch_size=recipe["batch_size"])
    seed_everything(0)
    model = system.build_model()  # the run's initial weights (same seed)
    before = validate(model, loader, torch.device("cpu"))
    model.load_state_dict(torch.load(full_run / "model.pt", weights_only=True))
    after = validate(model, loader, torch.device("cpu"))
    assert after < before - 0.5, (before, after)


def test_a_killed_run_resumes_to_the_same_weights(full_run, tiny_corpus, tmp_path):
    out = tmp_path / "resumed"
    train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False, preprocessing=SMOKE_PRE, stop_after_epochs=1)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (out / "model.pt").exists()
    train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False, preprocessing=SMOKE_PRE, resume=True)
    expected = torch.load(full_run / "model.pt", weights_only=True)
    got = torch.load(out / "model.pt", weights_only=True)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert _log(out) == _log(full_run)


def test_the_same_seed_gives_the_same_weights_with_0_and_2_workers(full_run, tiny_corpus, tmp_path):
    runs = {}
    for workers in (0, 2):
        runs[workers] = tmp_path / f"workers{workers}"
        train(SYSTEM, tiny_corpus, runs[workers], profile="smoke", progress=False, preprocessing=SMOKE_PRE,
              loader=LoaderOptions(workers=workers))
        assert json.loads((runs[workers] / "train_summary.json").read_text())["loader_workers"] == workers
    reference = torch.load(full_run / "model.pt", weights_only=True)  # the default loader
    for workers, run in runs.items():
        weights = torch.load(run / "model.pt", weights_only=True)
        for name in reference:
            assert torch.equal(reference[name], weights[name]), (workers, name)
        assert _log(run) == _log(full_run)


def test_a_run_folder_is_not_overwritten_without_resume(full_run, tiny_corpus):
    with pytest.raises(AvseBenchError, match="--resume"):
        train(SYSTEM, tiny_corpus, full_run, profile="smoke", progress=False, preprocessing=SMOKE_PRE)


def test_resuming_with_other_settings_is_refused(full_run, tiny_corpus):
    with pytest.raises(AvseBenchError, match="another run"):
        train(SYSTEM, tiny_corpus, full_run, profile="smoke", progress=False, preprocessing=SMOKE_PRE, resume=True,
              seed=1)


def test_resuming_on_other_frames_is_refused(full_run, tiny_corpus):
    other = Preprocessing(size=40, equalize=False)
    with pytest.raises(AvseBenchError, match="another run"):
        train(SYSTEM, tiny_corpus, full_run, profile="smoke", progress=False, preprocessing=other, resume=True)


def test_training_uses_the_preprocessing_it_is_given(tiny_corpus, tmp_path, monkeypatch):
    """The reported input (issue 18, item 1): 40 px without equalisation reaches the loaders and the summary."""
    recipe = System.recipe
    monkeypatch.setattr(System, "recipe", lambda self, profile: {**recipe(self, profile), "max_steps": 1})
    seen = []
    dataset_init = AVSEDataset.__init__
    monkeypatch.setattr(AVSEDataset, "__init__", lambda self, scenes, pre, **kw: seen.append(pre) or dataset_init(
        self, scenes, pre, **kw))
    pre = Preprocessing(size=40, equalize=False)
    train(SYSTEM, tiny_corpus, tmp_path / "run", profile="smoke", progress=False, preprocessing=pre)
    assert seen and all(p == pre for p in seen)
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["preprocessing"] == {**pre.config()} and summary["preprocessing_hash"] == pre.config_hash()
    with pytest.raises(AvseBenchError, match="preprocessing"):
        train(SYSTEM, tiny_corpus, tmp_path / "other", profile="smoke", progress=False)


def test_too_few_scenes_for_a_batch_is_explained(tiny_corpus, tmp_path, monkeypatch):
    recipe = System.recipe
    monkeypatch.setattr(System, "recipe", lambda self, profile: {**recipe(self, profile), "batch_size": 64})
    with pytest.raises(AvseBenchError, match="no full batch"):
        train(SYSTEM, tiny_corpus, tmp_path / "run", profile="smoke", progress=False, preprocessing=SMOKE_PRE)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tiny_corpus, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "avse_bench.cli", "train", SYSTEM, "--data", str(tiny_corpus), "--out", str(out),
           "--profile", "smoke", "--device", "cpu"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    n_train = len(load_split(tiny_corpus, "train"))
    batch = load(SYSTEM).recipe("smoke")["batch_size"]
    assert summary["world_size"] == 2
    assert summary["steps_per_epoch"] == n_train // (2 * batch)  # the distributed sampler splits the scenes
    weights = torch.load(out / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in weights)  # the plain model's weights, not DDP's wrapper
    load(SYSTEM).build_model().load_state_dict(weights)
    assert run.stdout.count("[train] dcnn_rnn epoch 1/") == 1  # only rank 0 reports (and writes)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "model.pt", "train_log.csv",
                                                     "train_summary.json"]


def test_grad_clip_in_the_recipe_clips_every_step(tiny_corpus, tmp_path, monkeypatch):
    system = load(SYSTEM)
    recipe = {**system.recipe("smoke"), "grad_clip": 5.0, "max_steps": 2}
    monkeypatch.setattr(System, "recipe", lambda self, profile: recipe)
    norms = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm, **kw: norms.append(max_norm) or clip(params, max_norm, **kw))
    train(system, data_root=tiny_corpus, out_dir=tmp_path / "run", profile="smoke", device="cpu", progress=False,
          preprocessing=SMOKE_PRE)
    assert norms == [5.0, 5.0]


def test_the_recipe_declares_its_losses():
    """Issue 27, item 4: the harness always trained on negative SI-SNR; the Real-World baseline trains on negative
    SNR (asteroid's zero-mean PairwiseNegSDR("snr")), AVSEC-1 on L1 of STFT magnitudes. A recipe names them."""
    from avse_bench.nn.loss import l1_stft_magnitude_loss, recipe_losses, si_snr_loss, snr_loss
    from avse_bench.system_schema import check_config

    torch.manual_seed(0)
    target = torch.randn(2, 4000)
    noise = 0.1 * torch.randn(2, 4000)
    t0, n0 = target - target.mean(-1, keepdim=True), noise - noise.mean(-1, keepdim=True)
    expected = -(10 * torch.log10(t0.pow(2).sum(-1) / n0.pow(2).sum(-1))).mean()
    assert torch.allclose(snr_loss(target + noise, target), expected, atol=1e-4)
    assert not torch.allclose(snr_loss(2 * target, target), si_snr_loss(2 * target, target))  # not scale-invariant
    assert l1_stft_magnitude_loss(target, target) == 0 and l1_stft_magnitude_loss(target + noise, target) > 0
    assert recipe_losses({"loss": "neg_snr"}) == (snr_loss, si_snr_loss)
    assert recipe_losses({}) == (si_snr_loss, si_snr_loss)
    config = {"system": {}, "model": {}, "recipe": {"loss": "pit_si_sdr"}}
    with pytest.raises(AvseBenchError, match=r"\[recipe\] loss must be one of neg_si_snr, neg_snr, l1_stft_magnitude"):
        check_config(config, Path("system.toml"))


def test_early_stopping_stops_and_keeps_the_best_weights_also_when_resumed(tiny_corpus, tmp_path, monkeypatch):
    """Issue 27, item 4: a recipe declares early stopping (`early_stop_patience`, as Lightning's and Keras's
    EarlyStopping on val_loss) and which weights model.pt holds (`keep = "best"`). Scripted validation losses:
    the lowest at epoch 2, none lower in the 2 epochs after, so training stops after epoch 4 of 6 and model.pt is
    epoch 2's model. A run killed after epoch 3 and resumed stops at the same epoch with the same weights."""
    import avse_bench.train as train_module
    from avse_bench.train import early_stop_epoch

    assert early_stop_epoch([3.0, 2.0, 2.5, 2.1], 2) == 4
    assert early_stop_epoch([3.0, 2.0, 2.0, 1.9], 2) is None  # equal is not lower; 1.9 resets the count
    assert early_stop_epoch([3.0, 3.5, 4.0], None) is None
    recipe = {k: v for k, v in load(SYSTEM).recipe("smoke").items() if k != "max_steps"}
    recipe.update(epochs=6, early_stop_patience=2, keep="best")
    monkeypatch.setattr(System, "recipe", lambda self, profile: recipe)
    scripted = [3.0, 2.0, 2.5, 2.1, 1.0, 0.5]

    def run(out: Path, **kw) -> list[dict]:
        seen = []

        def fake_validate(model, loader, device, loss_fn):
            seen.append({k: v.clone() for k, v in model.state_dict().items()})
            return scripted[len(_log(out)) if (out / "train_log.csv").exists() else 0]

        monkeypatch.setattr(train_module, "validate", fake_validate)
        train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False, preprocessing=SMOKE_PRE, **kw)
        return seen

    states = run(tmp_path / "full")
    summary = json.loads((tmp_path / "full" / "train_summary.json").read_text())
    assert len(states) == 4 and summary["epochs"] == 4
    assert summary["early_stop"] == {"epoch": 4, "of": 6, "patience": 2}
    assert summary["kept"] == {"epoch": 2, "val_loss": 2.0, "which": "lowest validation loss"}
    kept = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    assert all(torch.equal(kept[k], states[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], states[3][k]) for k in kept)

    run(tmp_path / "killed", stop_after_epochs=3)
    assert not (tmp_path / "killed" / "model.pt").exists()
    run(tmp_path / "killed", resume=True)
    resumed = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    assert all(torch.equal(resumed[k], kept[k]) for k in kept)
    assert json.loads((tmp_path / "killed" / "train_summary.json").read_text())["early_stop"]["epoch"] == 4


def test_declared_frame_normalisation_reaches_the_model_and_not_the_run_frames(tmp_path):
    """Issue 27, item 4: `[preprocessing] mean, std` (the Real-World baseline's 0.421, 0.165) is this system's
    (x - mean) / std of the [0, 1] frames, applied at the model's boundary; the run's shared frames are unchanged
    and a system without it sees [0, 1]."""
    import shutil
    import tomllib

    folder = tmp_path / "normed"
    shutil.copytree(REPO / "systems" / "dcnn_rnn", folder)
    text = (folder / "system.toml").read_text()
    (folder / "system.toml").write_text(text.replace("[recipe]", "[preprocessing]\nmean = 0.421\nstd = 0.165\n\n"
                                                     "[recipe]", 1))
    normed = System("normed", folder, tomllib.loads((folder / "system.toml").read_text()))
    assert normed.frame_normalisation() == (0.421, 0.165) and normed.declared_preprocessing() is None
    assert choose_preprocessing([normed, load(SYSTEM)], "smoke")[1] == "the smoke profile's"
    seen = []
    model = normed.build_model()
    model.register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()))
    video = torch.full((1, 1, 3, 32, 32), 0.5)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1920), video)
    assert torch.allclose(seen[0], torch.full_like(video, (0.5 - 0.421) / 0.165))
    assert load(SYSTEM).frame_normalisation() is None
