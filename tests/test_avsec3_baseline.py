"""The AVSEC-3 baseline (issue 30): systems/avsec3_baseline, a PyTorch port of the official Keras 3 model.

The figures the tests hold the model to come from the official code (baseline/avse3 of
github.com/cogmhear/avse_challenge at 9a9db3d: model.py, utils.py, model_utils/) run with Keras 3.15.1 on its torch
backend (`KERAS_BACKEND=torch`, config.py switched to it as its comment allows), outside this repository:
- `AVSE(batch_size=1)`: `count_params()` 76,012,738, trainable 75,954,626 (visual_feat_extract 36,603,392: trunk
  11,372,608, frontend3D 15,808, tcn 25,214,976; audio_separator 39,351,234);
- `save_weights` wrote the 441 variables whose paths and shapes are tests/data/avsec3_keras_weights_layout.json;
- each variable then set to `_weights` below (a seeded draw per path), `load_weights`, and `utils.get_enhanced` on
  `_inputs()` (50,000 samples: two 40,800-sample chunks, the second zero-padded; 80 frames: the second chunk's 64
  padded with zeros): every 250th output sample, the absolute sum and the energy are in
  tests/data/avsec3_official_forward.json (ours matched every sample within 3.0e-8, peak 0.23);
- `keras.utils.set_random_seed(42)` then `AVSE()`: the standard deviation of every initial kernel (ours within 1.05 %
  of each; biases and BatchNorm equal: 0, 1, 0, 1), `keras_initial_std` in the same file.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avse_bench.data.synth import synthesize
from avse_bench.errors import AvseBenchError
from avse_bench.systems import load
from avse_bench.weights import model_with_weights

HERE = Path(__file__).parent
LAYOUT = json.loads((HERE / "data" / "avsec3_keras_weights_layout.json").read_text())
OFFICIAL = json.loads((HERE / "data" / "avsec3_official_forward.json").read_text())
OFFICIAL_COUNTS = {"total": 75_954_626, "visual_feat_net": 36_603_392, "visual_feat_net.trunk": 11_372_608,
                   "visual_feat_net.frontend3D": 15_808, "visual_feat_net.tcn": 25_214_976, "u_net": 39_351_234}
BN_STATISTICS = 58_112  # count_params() - trainable: the moving means and variances
KERAS_BN_LAYERS = ("batch_normalization", "bn_", "init_bn", "res_bn")


@pytest.fixture(scope="module")
def system():
    return load("avsec3_baseline")


@pytest.fixture(scope="module")
def fresh(system):
    torch.manual_seed(0)
    return system.build_model().eval()


def test_parameter_counts_module_by_module_and_the_batchnorm_statistics(fresh):
    for module, count in OFFICIAL_COUNTS.items():
        part = fresh if module == "total" else fresh.get_submodule(module)
        assert sum(p.numel() for p in part.parameters()) == count, module
    stats = [b for n, b in fresh.named_buffers() if n.endswith(("running_mean", "running_var"))]
    assert sum(b.numel() for b in stats) == BN_STATISTICS
    norms = [m for m in fresh.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 73 and all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)  # Keras's 1e-3 and 0.99


def test_the_initial_weights_follow_the_keras_initialisers_tensor_by_tensor(fresh):
    """Keras draws from its own stream, so the test is per tensor in distribution: each kernel's standard deviation
    within 6 % of the official model's (Glorot-uniform; He-normal truncated in the ResNet and the TCN), biases zero,
    BatchNorm 1 and 0."""
    state = fresh.state_dict()
    recorded = OFFICIAL["keras_initial_std"]
    assert len(recorded) == 75
    for name, std in recorded.items():
        assert float(state[name].double().std()) == pytest.approx(std, rel=0.06), name
    for name, tensor in state.items():
        bn_gain = name.endswith(".weight") and name.split(".")[-2].startswith(KERAS_BN_LAYERS)
        if bn_gain or name.endswith(".running_var"):
            assert torch.all(tensor == 1.0), name
        elif name.endswith((".bias", ".running_mean")):
            assert torch.all(tensor == 0.0), name


def _weights(path: str, shape) -> np.ndarray:
    """The value the official run gave the variable at `path`: a draw seeded by the path's CRC-32 (BatchNorm gamma
    and moving variance uniform in [0.8, 1.2], beta and moving mean N(0, 0.05); biases N(0, 0.01); kernels N(0,
    1 / sqrt(fan in)))."""
    rng = np.random.default_rng(zlib.crc32(path.encode()))
    shape, parts = tuple(shape), path.split("/")
    index, layer = int(parts[-1]), parts[-3]
    if layer.startswith(KERAS_BN_LAYERS):
        draw = (rng.uniform(0.8, 1.2, shape) if index in (0, 3) else rng.normal(0, 0.05, shape))
        return draw.astype(np.float32)
    if index == 1:
        return rng.normal(0, 0.01, shape).astype(np.float32)
    fan_in = int(np.prod(shape[:-1])) if "transpose" not in layer else int(np.prod(shape[:-2]) * shape[-1])
    return rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)


def _keras_weights_file(path: Path, drop: str | None = None) -> Path:
    """A `.weights.h5` as Keras 3's `save_weights` lays it out (groups `layers/.../vars`, datasets "0", "1", ...),
    holding `_weights`; `drop`: a variable path left out."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for name, shape in LAYOUT:
            if name != drop:
                f.create_dataset(name, data=_weights(name, shape))
    return path


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    noisy = (0.1 * rng.standard_normal(50_000)).astype(np.float32)
    video = rng.random((80, 88, 88, 1)).astype(np.float32)
    return noisy, video


def test_the_official_keras_weights_file_gives_the_official_forward(system, tmp_path):
    """Through a Keras 3 `.weights.h5` (read with h5py, every kernel transposed from Keras's layout), the chunked
    inference of utils.get_enhanced on 50,000 samples and 80 frames equals the official Keras model's output."""
    model, info = model_with_weights(system, _keras_weights_file(tmp_path / "best_dev.weights.h5"))
    assert info["format"] == "Keras 3 weights (HDF5)"
    noisy, video = _inputs()
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(noisy)[None], torch.from_numpy(video[..., 0])[None, None])[0].double()
    assert out.shape == (OFFICIAL["length"],)
    assert out[::250].numpy() == pytest.approx(np.array(OFFICIAL["every_250th"]), abs=1e-6)
    assert float(out.abs().sum()) == pytest.approx(OFFICIAL["abs_sum"], rel=1e-5)
    assert float(out.square().sum()) == pytest.approx(OFFICIAL["energy"], rel=1e-5)


def test_a_keras_file_that_does_not_fit_and_a_foreign_checkpoint_are_one_line(system, tmp_path):
    dropped = "layers/u_net/conv3/layers/conv2d_1/vars/0"
    with pytest.raises(AvseBenchError) as err:
        model_with_weights(system, _keras_weights_file(tmp_path / "short.weights.h5", drop=dropped))
    assert "\n" not in str(err.value) and "u_net.conv3.conv2d_1.conv.weight" in str(err.value)
    torch.manual_seed(0)
    torch.save({"state_dict": {f"model.{k}": v for k, v in load("baseline").build_model().state_dict().items()}},
               tmp_path / "other.ckpt")
    with pytest.raises(AvseBenchError) as err:
        model_with_weights(system, tmp_path / "other.ckpt")
    assert "\n" not in str(err.value)
    (tmp_path / "text.weights.h5").write_text("not HDF5")
    with pytest.raises(AvseBenchError, match="not an HDF5 file"):
        model_with_weights(system, tmp_path / "text.weights.h5")


@pytest.fixture(scope="module")
def lips_corpus(tmp_path_factory):
    """`data synth --layout avsec3`: 2 train and 2 dev scenes of 1 s, with lips/ beside scenes/."""
    return synthesize(tmp_path_factory.mktemp("avsec3_corpus"), 2, 2, 0, 1.0, 1.0, progress=False, layout="avsec3")


def official_input(scene) -> tuple[np.ndarray, np.ndarray]:
    """The official dataset.py's whole-utterance input, written out here apart from the harness: the mixture as
    wavfile int16 / 2 ** 15; every frame of lips/<scene>_silent.mp4, RGB -> grey (decord decodes RGB; OpenCV's BGR
    reversed), cv2.resize to 88 x 88 (its default, bilinear), / 255. Returns (noisy (L,), frames (T, 88, 88))."""
    import cv2
    import soundfile as sf

    noisy = sf.read(scene.mixed, dtype="int16")[0].astype(np.float32) / 2**15
    cap, frames = cv2.VideoCapture(str(scene.video.parent.parent / "lips" / scene.video.name)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(cv2.cvtColor(np.ascontiguousarray(bgr[..., ::-1]), cv2.COLOR_RGB2GRAY), (88, 88)))
    cap.release()
    return noisy, np.stack(frames).astype(np.float32) / 255.0


def test_data_check_reads_lip_crops_and_names_what_is_missing(lips_corpus, tmp_path):
    from avse_bench.data.check import check_split

    report = check_split(lips_corpus, "dev", sync=False)
    assert report.ok and report.lips == {"96x96": 2} and "lip crops (lips/): 96x96 (2)" in report.format()
    import shutil

    broken = shutil.copytree(lips_corpus, tmp_path / "broken")
    (broken / "dev" / "lips" / "S00003_silent.mp4").unlink()
    report = check_split(broken, "dev", sync=False)
    assert report.problems == {"S00003": ["no lip crop lips/S00003_silent.mp4"]}
    shutil.rmtree(broken / "train" / "lips")
    text = check_split(broken, "train", sync=False).format()
    assert "lip crops (lips/): none" in text and "avsec_preprocessing" in text and "OK: no broken scene" in text


def test_a_split_without_lip_crops_is_refused_before_any_work_in_one_line(lips_corpus, tmp_path, capsys):
    import shutil

    from avse_bench.cli import main

    root = shutil.copytree(lips_corpus, tmp_path / "no_lips", ignore=shutil.ignore_patterns("lips"))
    out = tmp_path / "run"
    assert main(["compare", "avsec3_baseline", "--data", str(root), "--profile", "smoke", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no lip-crop video" in err[0] and "MediaPipe FaceMesh" in err[0]
    assert not (out / "manifest.json").exists()


@pytest.mark.slow
def test_compare_evaluates_the_official_weights_file_as_the_official_test_script(system, lips_corpus, tmp_path,
                                                                                  smoke_compare):
    """`compare avsec3_baseline --weights avsec3_baseline=best_dev.weights.h5` on lip crops: the 13 items, the
    weights named, and every enhanced file equal (to 16-bit rounding) to test.py's: get_enhanced on the input built
    the official way above, divided by its peak."""
    import soundfile as sf

    from avse_bench.data import load_split

    weights = _keras_weights_file(tmp_path / "best_dev.weights.h5")
    out = tmp_path / "run"
    sheet, manifest = smoke_compare(lips_corpus, out, "avsec3_baseline", "--weights",
                                    f"avsec3_baseline={weights}")
    assert manifest["preprocessing"]["config"]["crop"] == "lips"
    assert manifest["supplied_weights"]["avsec3_baseline"]["format"] == "Keras 3 weights (HDF5)"
    assert all(f"| {n} " in sheet for n in range(1, 14)) and "75,954,626 trainable" in sheet
    model, _ = model_with_weights(system, weights)
    for scene in load_split(lips_corpus, "dev"):
        noisy, frames = official_input(scene)
        with torch.no_grad():
            expected = model.eval()(torch.from_numpy(noisy)[None], torch.from_numpy(frames)[None, None])[0].numpy()
        expected /= np.abs(expected).max()  # test.py
        written, rate = sf.read(out / "enhanced" / "avsec3_baseline" / "av" / f"{scene.id}.wav", dtype="float32")
        assert rate == 16_000 and written.shape == expected.shape
        assert np.abs(written - expected).max() <= 1.5 / 32768
