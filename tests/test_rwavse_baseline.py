"""The Real-World AVSE 2026 baseline, AV-ConvTasNet (issue 29): systems/rwavse_baseline, avse_bench/nn/av_convtasnet.py.

The figures the tests hold the model to come from the official code (look2hear/models/av_convtasnet.py and
look2hear/videomodels/resnet_videomodel.py of github.com/wyx0606h/challenge1-avse at 1d24463, the import of
Real-World-AVSE/Baseline), instantiated as `AV_ConvTasNet(**track1 config)` with its hub mixin base replaced by a
plain nn.Module (the mixin only saves and loads): the parameter counts, the 647 state-dict keys with their shapes
(recorded in tests/data/rwavse_official_keys.json), and the official forward on a seeded input with the seed-0
initial weights (values below). The same session checked that with seeds 0 and 1143 every initial tensor of
`AVConvTasNet` equals the official module's (largest difference 0, the same key order), and that both give the
same output for the same weights and input (largest difference 0). The face-crop figures come from the official
`_fixed_face_box` and `_crop_square` (look2hear/datas/real_test_dataset.py) run on the landmarks built below.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from avse_bench.data.preprocessing import Preprocessing, crop_square, face_box
from avse_bench.errors import AvseBenchError
from avse_bench.nn.av_convtasnet import AVConvTasNet, official_length
from avse_bench.systems import load
from avse_bench.weights import model_with_weights

HERE = Path(__file__).parent
OFFICIAL_COUNTS = {"total": 25_014_849, "video_model": 11_186_688, "video_model.frontend3D": 15_872,
                   "video_model.trunk": 11_170_816, "av_model.video": 797_184, "av_model.encoder": 10_496,
                   "av_model.cln": 512, "av_model.conv1x1": 65_792, "av_model.audio_conv": 3_186_704,
                   "av_model.concat": 131_328, "av_model.feats_conv": 9_560_112, "av_model.mask": 65_792,
                   "av_model.decoder": 10_241}
# The official forward, seed-0 initial weights, input torch.randn(1, 6407) then torch.randn(1, 10, 88, 88) from
# torch.Generator().manual_seed(5): 6400 samples out (6407 - (6367 mod 20)).
OFFICIAL_FIRST = [-0.0074709, -0.1213297, 0.4071406, 0.4149545, -0.2905853, 0.2171523]
OFFICIAL_ABS_SUM, OFFICIAL_ENERGY = 3899.6171875, 3828.0234375


@pytest.fixture(scope="module")
def fresh():
    torch.manual_seed(0)
    return load("rwavse_baseline").build_model().eval()


def test_parameter_counts_module_by_module_and_the_frozen_encoder(fresh):
    for module, count in OFFICIAL_COUNTS.items():
        part = fresh if module == "total" else fresh.get_submodule(module)
        assert sum(p.numel() for p in part.parameters()) == count, module
    assert not any(p.requires_grad for p in fresh.video_model.parameters())
    assert sum(p.numel() for p in fresh.parameters() if p.requires_grad) == 13_828_161
    fresh.train()
    assert not fresh.video_model.training and fresh.av_model.training  # the encoder's statistics never move
    fresh.eval()


def test_the_state_dict_has_the_official_keys_and_shapes_in_order(fresh):
    recorded = json.loads((HERE / "data" / "rwavse_official_keys.json").read_text())
    assert [[k, list(v.shape)] for k, v in fresh.state_dict().items()] == recorded
    assert len(recorded) == 647


def test_the_official_forward_on_the_official_input(fresh):
    """The network alone gets the official model's input (normalised frames); the system's model gets [0, 1]
    frames, which its declared normalisation, (x - 0.421) / 0.165, turns into the same input."""
    g = torch.Generator().manual_seed(5)
    audio, frames = torch.randn(1, 6407, generator=g), torch.randn(1, 10, 88, 88, generator=g)
    torch.manual_seed(0)
    network = AVConvTasNet().eval()
    with torch.no_grad():
        out = network(audio, frames[:, None])  # (1, 6407): the official 6400 samples, then zeros
        through = fresh(audio, frames[:, None] * 0.165 + 0.421)
    assert torch.allclose(through, out, atol=1e-4)
    n = official_length(6407)
    assert n == 6400 and out.shape == (1, 6407) and torch.all(out[0, n:] == 0)
    assert out[0, :6].tolist() == pytest.approx(OFFICIAL_FIRST, abs=1e-6)
    assert float(out[0, :n].abs().sum()) == pytest.approx(OFFICIAL_ABS_SUM, rel=1e-5)
    assert float(out[0, :n].pow(2).sum()) == pytest.approx(OFFICIAL_ENERGY, rel=1e-5)


def _hub_folder(tmp_path: Path, model, **config_changes) -> Path:
    """A folder as PyTorchModelHubMixin writes it: config.json (the 19 init arguments) + model.safetensors."""
    from safetensors.torch import save_file

    from avse_bench.nn.av_convtasnet import OFFICIAL_ARGS

    folder = tmp_path / "hub"
    folder.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({**OFFICIAL_ARGS, **config_changes}, sort_keys=True, indent=2))
    return folder


def test_published_weights_load_strictly_from_a_hub_folder_a_file_or_a_lightning_checkpoint(fresh, tmp_path):
    system = load("rwavse_baseline")
    torch.manual_seed(7)
    trained = AVConvTasNet().eval()  # other weights than `fresh`
    folder = _hub_folder(tmp_path, trained)
    for source in (folder, folder / "model.safetensors"):
        model, info = model_with_weights(system, source)
        assert info["format"].startswith("safetensors")
        assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.state_dict().items())
    ckpt = tmp_path / "epoch=12.ckpt"  # the official Lightning training's checkpoint: keys under audio_model.
    torch.save({"state_dict": {f"audio_model.{k}": v for k, v in trained.state_dict().items()}, "epoch": 12,
                "pytorch-lightning_version": "2.5.0"}, ckpt)
    model, info = model_with_weights(system, ckpt)
    assert info["format"] == "PyTorch Lightning checkpoint"
    assert torch.equal(model.state_dict()["av_model.mask.weight"], trained.state_dict()["av_model.mask.weight"])


def test_a_config_that_disagrees_and_another_systems_checkpoint_are_one_line(tmp_path):
    system = load("rwavse_baseline")
    torch.manual_seed(7)
    folder = _hub_folder(tmp_path, AVConvTasNet(), audio_index=2)
    with pytest.raises(AvseBenchError, match=r"config.json says audio_index = 2, the system's \[model\] 1"):
        model_with_weights(system, folder)
    other = tmp_path / "dcnn_rnn.pt"
    torch.save(load("dcnn_rnn").build_model().state_dict(), other)
    with pytest.raises(AvseBenchError, match=r"does not fit this system's model: missing 647"):
        model_with_weights(system, other)


# --- the face crop of the official evaluation ---------------------------------------------------------------------
def _landmarks(shift=(0.0, 0.0)) -> list:
    rng = np.random.default_rng(3)
    base = np.stack([np.linspace(60, 190, 68), np.linspace(70, 230, 68)], 1).astype(np.float32)
    marks = [None if i % 4 == 0 else base + rng.normal(0, 2, (68, 2)).astype(np.float32) for i in range(9)]
    return [None if m is None else m + np.float32(shift) for m in marks]


def test_the_face_box_and_crop_equal_the_official_computation():
    gray = (np.arange(256 * 256).reshape(256, 256) % 251).astype(np.uint8)
    box = face_box(_landmarks())
    assert box == pytest.approx((23.394515991210938, 26.515174865722656, 205.12322998046875), abs=1e-4)
    crop = crop_square(gray, box, 96)
    assert crop.shape == (96, 96) and int(crop.sum()) == 1151237
    assert crop[0, :5].tolist() == [162, 164, 166, 168, 170] and crop[50, 40:45].tolist() == [28, 30, 32, 34, 36]
    edge = face_box(_landmarks((-50, -60)))  # the box leaves the frame: edge-replicated padding
    assert edge == pytest.approx((-26.605484008789062, -33.48481750488281, 205.12322998046875), abs=1e-4)
    crop = crop_square(gray, edge, 96)
    assert int(crop.sum()) == 1078764 and crop[0, :5].tolist() == [0] * 5
    assert crop[50, 40:45].tolist() == [180, 182, 184, 186, 188]
    assert face_box([None, None]) is None


def test_the_face_preprocessing_reads_the_clips_landmarks_and_falls_back_to_the_whole_frame(tmp_path):
    from avse_bench.data.face import write_mp4

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (9, 256, 256, 3)).astype(np.uint8)
    write_mp4(tmp_path / "s1.mp4", frames)
    (tmp_path / "s1.pkl").write_bytes(pickle.dumps(_landmarks()))
    pre = Preprocessing(size=88, crop="face", face_size=96, equalize=False)
    got = pre.video_uint8(tmp_path / "s1.mp4")
    cap, decoded = cv2.VideoCapture(str(tmp_path / "s1.mp4")), []
    while (ok := cap.read())[0]:
        decoded.append(cv2.cvtColor(ok[1], cv2.COLOR_BGR2GRAY))
    box = face_box(_landmarks())
    want = np.stack([crop_square(g, box, 96)[4:92, 4:92] for g in decoded])  # official: resize 96, CenterCrop 88
    assert got.shape == (9, 88, 88) and np.array_equal(got, want)
    (tmp_path / "s1.pkl").unlink()  # no landmarks: the whole frame resized to 96, then the centre 88
    whole = np.stack([cv2.resize(g, (96, 96), interpolation=cv2.INTER_AREA)[4:92, 4:92] for g in decoded])
    assert np.array_equal(pre.video_uint8(tmp_path / "s1.mp4"), whole)


# --- through the harness ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_compare_runs_the_baseline_per_target_speaker_on_the_realworld_corpus(tmp_path, smoke_compare):
    from avse_bench.data.synth_realworld import synthesize_realworld

    root = synthesize_realworld(tmp_path / "rw", n_train=2, n_dev=2, seed=0, min_seconds=1.2, max_seconds=1.4,
                                progress=False)
    out = tmp_path / "run"
    sheet, manifest = smoke_compare(root, out, "rwavse_baseline", "--track", "track1")
    assert "25.01 M (25,014,849 total, 13,828,161 trainable)" in sheet
    assert "video_model 0 / 11,186,688" in sheet  # item 1's frozen part, module by module
    assert "(x - 0.421) / 0.165" in sheet
    assert manifest["preprocessing"]["config"]["crop"] == "face"
    assert (out / "enhanced" / "rwavse_baseline" / "av" / "track1" / "dev" / "mix" / "000001" / "s2.wav").is_file()
