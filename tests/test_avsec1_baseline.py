"""The AVSEC-1 baseline (issue 30): systems/avsec1_baseline, exact to the parameter.

The figures the tests hold the model to come from the official code (baseline/avse1/model.py and utils/ of
github.com/cogmhear/avse_challenge at 9a9db3d), built as its train.py builds it (`torch.manual_seed(seed)`, then
`build_audiofeat_net()`, `build_visualfeat_net(extract_feats=True)`, `FusionNet()`, `AVNet(...)`) with
`LightningModule` replaced by a plain nn.Module (it adds no parameters): the parameter counts per module; the 324
state-dict keys with their shapes and, for seed 1143, each initial tensor's sum and absolute sum (recorded in
tests/data/avsec1_official_keys.json); the official forward on a seeded magnitude and RGB frames; the waveform of
test.py's path (librosa.stft with librosa 0.8's reflect padding, the noisy phase, librosa.istft(length=L)) on a
seeded mixture. The same session found every initial tensor equal to the official model's for seeds 0 and 1143
(largest difference 0), the official forward equal to ours (largest difference 0), and test.py's waveform equal to
ours within 4.5e-8 (peak 0.18).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from avse_bench.data.synth import synthesize
from avse_bench.errors import AvseBenchError
from avse_bench.systems import load
from avse_bench.weights import model_with_weights

HERE = Path(__file__).parent
OFFICIAL_COUNTS = {"total": 20_112_544, "net_visualfeat": 17_784_436, "net_visualfeat.trunk": 11_170_816,
                   "net_visualfeat.frontend3D": 47_232, "net_visualfeat.tcn": 6_566_388,
                   "net_visualfeat.tcn.tcn_output": 256_500, "net_audiofeat": 412_430, "net_audiofeat.conv2": 102_464,
                   "net_audiofeat.convf": 260, "net_fusion": 1_915_678, "net_fusion.lstm_conv": 1_849_372,
                   "net_fusion.time_distributed_1": 66_306}
# The official AVNet.forward, seed-1143 weights, eval mode: magnitude torch.rand(1, 1, 40, 257) * 3 then frames
# torch.rand(1, 3, 10, 224, 224) * 255 from torch.Generator().manual_seed(5).
OFFICIAL_MAG_FIRST = [1.2990903854370117, 0.25313740968704224, 1.6964110136032104, 1.3562923669815063,
                      1.1488685607910156, 0.19079239666461945]
OFFICIAL_MAG_ABS_SUM, OFFICIAL_MAG_ENERGY = 7507.79443359375, 7639.87890625
# test.py's waveform, seed-0 weights: noisy 0.1 * standard_normal(6407) then frames integers(0, 256, (3, 11, 224,
# 224)) from numpy.random.default_rng(5).
OFFICIAL_WAV_FIRST = [-0.042940404266119, -0.0669386014342308, -0.013918738812208176, 0.018050188198685646,
                      0.05780825763940811, -0.0012101753382012248]
OFFICIAL_WAV_ABS_SUM, OFFICIAL_WAV_ENERGY = 258.89373779296875, 16.424591064453125


def _fresh(seed: int = 0):
    torch.manual_seed(seed)
    return load("avsec1_baseline").build_model().eval()


@pytest.fixture(scope="module")
def fresh():
    return _fresh(0)


def test_parameter_counts_module_by_module(fresh):
    for module, count in OFFICIAL_COUNTS.items():
        part = fresh if module == "total" else fresh.get_submodule(module)
        assert sum(p.numel() for p in part.parameters()) == count, module


def test_the_state_dict_and_the_initial_weights_are_the_official_codes_tensor_by_tensor():
    """Seed 1143 (the official train.py's): every one of the 324 keys, its shape, its sum and absolute sum."""
    recorded = json.loads((HERE / "data" / "avsec1_official_keys.json").read_text())
    state = _fresh(1143).state_dict()
    assert [[k, list(v.shape)] for k, v in state.items()] == [r[:2] for r in recorded] and len(recorded) == 324
    for key, _, total, absolute in recorded:
        tensor = state[key].double()
        assert float(tensor.sum()) == pytest.approx(total, abs=1e-4), key
        assert float(tensor.abs().sum()) == pytest.approx(absolute, rel=1e-6, abs=1e-4), key


def test_the_official_forward_and_the_waveform_of_its_test_script(fresh):
    g = torch.Generator().manual_seed(5)
    magnitude, frames = torch.rand(1, 1, 40, 257, generator=g) * 3, torch.rand(1, 3, 10, 224, 224, generator=g) * 255
    with torch.no_grad():
        masked = _fresh(1143).masked_magnitude(magnitude, frames)
    assert masked[0, 0, 0, :6].tolist() == pytest.approx(OFFICIAL_MAG_FIRST, abs=1e-5)
    assert float(masked.abs().sum()) == pytest.approx(OFFICIAL_MAG_ABS_SUM, rel=1e-5)
    assert float(masked.pow(2).sum()) == pytest.approx(OFFICIAL_MAG_ENERGY, rel=1e-5)
    rng = np.random.default_rng(5)
    noisy = torch.from_numpy((0.1 * rng.standard_normal(6407)).astype(np.float32))[None]
    video = torch.from_numpy(rng.integers(0, 256, (3, 11, 224, 224)).astype(np.uint8))[None]
    with torch.no_grad():  # the system's model takes [0, 1] frames: its [preprocessing] std = 1 / 255 restores 0-255
        wav = fresh(noisy, video.float() / 255.0)[0]
    assert wav.shape == (6407,)
    assert wav[:6].tolist() == pytest.approx(OFFICIAL_WAV_FIRST, abs=1e-6)
    assert float(wav.abs().sum()) == pytest.approx(OFFICIAL_WAV_ABS_SUM, rel=1e-5)
    assert float(wav.pow(2).sum()) == pytest.approx(OFFICIAL_WAV_ENERGY, rel=1e-5)


def test_the_unused_tcn_output_layer_gets_no_gradient():
    model = _fresh(0).train()
    out = model(torch.randn(1, 3200), torch.rand(1, 3, 5, 224, 224))
    out.square().mean().backward()
    assert model.net_visualfeat.tcn.tcn_output.weight.grad is None
    assert model.net_visualfeat.trunk.layer1[0].conv1.weight.grad is not None


def _lightning_1_4_checkpoint(path: Path, state: dict) -> None:
    """A checkpoint as pytorch_lightning 1.4.9 writes one for the official train.py: `state_dict` with the
    LightningModule's own keys (net_visualfeat., ...), optimiser and scheduler states, and `callbacks` keyed by the
    callback's class (1.4 keys them by type: a global the file names). The class is pickled by reference from a
    module made here; the reader must not import it."""
    module = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": module.__name__, "__qualname__": "ModelCheckpoint"})
    module.ModelCheckpoint = ModelCheckpoint
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", module.__name__]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({n: types.ModuleType(n) for n in names[:2]})
    sys.modules[module.__name__] = module
    try:
        torch.save({"epoch": 14, "global_step": 1234, "pytorch-lightning_version": "1.4.9", "state_dict": state,
                    "callbacks": {ModelCheckpoint: {"monitor": "val_loss_epoch", "best_model_score": torch.tensor(0.1),
                                                    "best_model_path": "/x/epoch=14.ckpt"}},
                    "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001}]}],
                    "lr_schedulers": [{"factor": 0.8, "patience": 2}]}, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def test_the_official_lightning_checkpoint_loads_strictly_and_a_foreign_one_is_one_line(tmp_path):
    system = load("avsec1_baseline")
    trained = _fresh(7)
    ckpt = tmp_path / "avse1_baseline.ckpt"
    _lightning_1_4_checkpoint(ckpt, trained.state_dict())
    assert "pytorch_lightning" not in sys.modules or not hasattr(sys.modules["pytorch_lightning"], "LightningModule")
    model, info = model_with_weights(system, ckpt)
    assert info["format"] == "PyTorch Lightning checkpoint"
    assert "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint" in info["skipped"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.state_dict().items())
    other = tmp_path / "baseline.pt"
    torch.save(load("baseline").build_model().state_dict(), other)
    with pytest.raises(AvseBenchError, match=r"does not fit this system's model: missing 324"):
        model_with_weights(system, other)


def test_rgb_frames_are_the_decoded_colour_and_training_crops_start_two_frames_early(tmp_path):
    import cv2
    import soundfile as sf

    from avse_bench.data.dataset import AVSEDataset, video_to_frames
    from avse_bench.data.face import write_mp4
    from avse_bench.data.layout import Scene
    from avse_bench.data.preprocessing import Preprocessing

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (50, 1, 1, 3)), 64, 1).repeat(64, 2).astype(np.uint8)  # a colour each
    write_mp4(tmp_path / "S1_silent.mp4", frames)
    pre = Preprocessing(size=64, equalize=False, color="rgb")
    got = pre.video_uint8(tmp_path / "S1_silent.mp4")
    cap, decoded = cv2.VideoCapture(str(tmp_path / "S1_silent.mp4")), []
    while (ok := cap.read())[0]:
        decoded.append(cv2.cvtColor(ok[1], cv2.COLOR_BGR2RGB))
    assert got.shape == (50, 64, 64, 3) and np.array_equal(got, np.stack(decoded))
    assert np.abs(got[:, 32, 32].astype(int) - frames[:, 32, 32, ::-1]).mean() < 12  # written BGR, read R, G, B
    for name in ("mixed", "target"):
        sf.write(tmp_path / f"S1_{name}.wav", (0.1 * rng.standard_normal(32_000)).astype(np.float32), 16_000)
    scene = Scene(id="S1", split="train", mixed=tmp_path / "S1_mixed.wav", target=tmp_path / "S1_target.wav",
                  interferer=None, video=tmp_path / "S1_silent.mp4")
    system = load("avsec1_baseline")
    plain = AVSEDataset([scene], pre, crop_seconds=0.4, system=system)
    early = AVSEDataset([scene], pre, crop_seconds=0.4, system=system, video_offset=-2)
    for epoch in range(6):
        start = plain.crop_start(0, 32_000, epoch)
        item, shifted = plain[(epoch, 0)], early[(epoch, 0)]
        assert item["video"].shape == (3, 10, 64, 64) and torch.equal(item["mixed"], shifted["mixed"])
        want = got[max(start - 2, 0):max(start - 2, 0) + 10]
        assert np.array_equal((video_to_frames(shifted["video"]) * 255).round().byte().numpy(), want)


@pytest.mark.slow
def test_compare_runs_the_avsec1_baseline_with_its_13_items(tmp_path, smoke_compare):
    """Two dev scenes of 1 s (224 px RGB frames cost 71 G multiply-adds per second of audio) with one stress
    condition."""
    corpus, out = synthesize(tmp_path / "corpus", 2, 2, 0, 1.0, 1.0, progress=False), tmp_path / "run"
    sheet, manifest = smoke_compare(corpus, out, "avsec1_baseline", "--stress", "occlusion=0.5")
    assert "20.11 M (20,112,544 total, 20,112,544 trainable)" in sheet and "color: rgb" in sheet
    flops = next(line for line in sheet.splitlines() if line.startswith("| 2 ") and "FLOPs" in line)
    assert "G (fvcore" in flops and "224 px" in flops  # item 2 measured at the run's RGB frames
    assert manifest["preprocessing"]["config"]["color"] == "rgb"
    profile = json.loads((out / "profiles" / "avsec1_baseline.json").read_text())
    assert profile["reference_input"]["video_shape"][1] == 3
    assert any((out / "enhanced" / "avsec1_baseline" / "stress").rglob("*.wav"))  # the stressed RGB video
