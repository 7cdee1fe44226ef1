"""The AVSEC-4 baseline (systems/avsec4_baseline, systems/avsec4_baseline_mono; avse_bench/nn/avsec4.py) and the
harness paths it needs: the centre crop, the video's own frames, 2-channel systems, official Lightning checkpoints.

The figures the tests hold the model to come from the official code (cogmhear/avse_challenge, baseline/avse4,
model.py and utils.py at the mirrored commit), instantiated as `AVSE4BaselineModule(num_channels=2)` and
`(num_channels=1)` with `pytorch_lightning` and `speechbrain` stubbed (neither is needed to build the modules):
`sum(p.numel() for p in module.parameters())` for the module and each submodule named below. The same session also
checked that with seed 1143 every initial tensor of `AVSEC4Baseline` equals the official module's (largest
difference 0, identical key order) and that both give the same output for the same weights and input (largest
difference 2.1e-8 binaural, 1.6e-8 mono; `fold` and the official `index_add_` sum in another order).
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import soundfile as sf
import torch

from avse_bench.cli import main
from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.synth import synthesize
from avse_bench.errors import AvseBenchError
from avse_bench.nn.avsec4 import AVSEC4Baseline, official_names
from avse_bench.profiles import choose_preprocessing
from avse_bench.systems import Feed, count_parameters, load

# module -> parameters, counted from the official code (see the module docstring); our module on the right
OFFICIAL_COUNTS = {
    2: {"model.encoder": 20_480, "model.separator.layer_norm": 512, "model.separator.bottleneck_conv1x1": 65_536,
        "model.separator.tcn.0": 2_256_912, "model.separator.visual_conv": 1_328_645,
        "model.separator.ve_conv1x1.0": 131_072, "model.separator.mask_conv1x1": 131_072,
        "model.decoder": 10_240, "visual_frontend.frontend3D": 15_808, "visual_frontend.resnet": 11_169_280,
        "model": 11_108_421, "visual_frontend": 11_185_088, "total": 22_293_509},
    1: {"model.encoder": 10_240, "model.separator.mask_conv1x1": 65_536, "model": 11_032_645,
        "visual_frontend": 11_185_088, "total": 22_217_733},
}
OURS = {"model.encoder": "separator.encoder", "model.separator.layer_norm": "separator.norm",
        "model.separator.bottleneck_conv1x1": "separator.bottleneck", "model.separator.tcn.0": "separator.repeats.0",
        "model.separator.visual_conv": "separator.visual_blocks", "model.separator.ve_conv1x1.0":
        "separator.visual_proj.0", "model.separator.mask_conv1x1": "separator.mask", "model.decoder":
        "separator.decoder", "visual_frontend.frontend3D": "visual_frontend.stem",
        "visual_frontend.resnet": "visual_frontend.resnet", "model": "separator", "visual_frontend": "visual_frontend"}
SYSTEMS = {2: "avsec4_baseline", 1: "avsec4_baseline_mono"}


@pytest.mark.parametrize("channels", [2, 1])
def test_parameter_counts_module_by_module(channels):
    model = load(SYSTEMS[channels]).build_model()
    for official, count in OFFICIAL_COUNTS[channels].items():
        module = model if official == "total" else model.get_submodule(OURS[official])
        assert count_parameters(module) == count, official


def test_official_names_are_a_one_to_one_map_in_the_official_order():
    model = AVSEC4Baseline(2)
    names = official_names(model)
    assert len(set(names.values())) == len(names) == len(model.state_dict())
    # spot checks against the official module's keys
    assert names["separator.encoder.weight"] == "model.encoder.conv1d_U.weight"
    assert names["separator.repeats.3.blocks.7.norm2.gamma"] == "model.separator.tcn.3.8.net.3.net.2.gamma"
    assert names["separator.repeats.0.fuse.weight"] == "model.separator.tcn.0.0.weight"
    assert names["separator.visual_blocks.4.norm2.running_var"] == "model.separator.visual_conv.4.net.4.running_var"
    assert names["visual_frontend.stem.1.num_batches_tracked"] == "visual_frontend.frontend3D.1.num_batches_tracked"
    assert names["visual_frontend.resnet.layer1.downsample.weight"] == "visual_frontend.resnet.layer1.downsample.weight"
    system = load("avsec4_baseline")
    official = {names[k]: v for k, v in model.state_dict().items()}
    assert system.convert_state_dict(official).keys() == model.state_dict().keys()


def _std_expected(name: str, p: torch.Tensor) -> float | None:
    """The spread the official scheme gives tensor `name`: xavier_normal_ in the separator (dim > 1), PyTorch's
    default kaiming_uniform_(a=sqrt(5)) (std 1 / sqrt(3 fan_in)) for the front end's convolutions; None for the
    rest (checked by value)."""
    if p.dim() < 2:
        return None
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(p)
    if name.startswith("separator."):
        return math.sqrt(2.0 / (fan_in + fan_out))
    return 1.0 / math.sqrt(3.0 * fan_in)  # the front end's convolutions


def test_a_fresh_model_has_the_official_spread_per_tensor():
    torch.manual_seed(0)
    model = AVSEC4Baseline(2)
    checked = 0
    for name, p in model.named_parameters():
        expected = _std_expected(name, p)
        if expected is not None:
            assert p.std().item() == pytest.approx(expected, rel=0.15), name  # >= 512 draws each
            assert abs(p.mean().item()) < 4 * expected / math.sqrt(p.numel()) + 1e-6, name
            checked += 1
        elif "act" in name:
            assert torch.all(p == 0.25), name  # PReLU's default, left alone (1-D)
        elif name.endswith("weight"):
            assert torch.all(p == 1), name  # LayerNorm and BatchNorm gains (1-D)
        else:
            assert torch.all(p == 0), name
    # separator: encoder, bottleneck, 4 x (fuse + 8 x (3 convs + 2 gLN x gain, bias)), 5 x 2 visual convs, 4
    # projections, mask, decoder = 246; front end: the 3-D conv + 4 layers x 5 convs = 21
    assert checked == 267
    gln = model.separator.repeats[0].blocks[0].norm1
    assert gln.gamma.shape == (1, 512, 1) and not torch.all(gln.gamma == 1)  # xavier-drawn, as the official code
    bn = model.visual_frontend.stem[1]
    assert (bn.momentum, bn.eps) == (0.01, 0.001) and model.separator.visual_blocks[0].norm1.momentum == 0.1


def test_forward_shapes_and_the_frame_size_the_front_end_needs():
    torch.manual_seed(0)
    binaural, mono = AVSEC4Baseline(2).eval(), AVSEC4Baseline(1).eval()
    video = torch.rand(1, 1, 25, 112, 112)
    with torch.no_grad():
        assert binaural(0.1 * torch.randn(1, 2, 16_000), video).shape == (1, 2, 16_000)
        assert mono(0.1 * torch.randn(1, 16_000), video).shape == (1, 16_000)
        assert mono(0.1 * torch.randn(1, 1, 16_001), video).shape == (1, 1, 16_001)
        with pytest.raises(ValueError, match="needs 112 px frames"):
            binaural(torch.zeros(1, 2, 16_000), torch.rand(1, 1, 25, 160, 160))
        with pytest.raises(ValueError, match="reads 2 channel"):
            binaural(torch.zeros(1, 16_000), video)


def test_the_centre_crop_is_the_official_one():
    """dataset.py process_frames: frame[56:-56, 56:-56] of the 224 px RGB frame, then RGB -> grey."""
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    official = cv2.cvtColor(np.ascontiguousarray(bgr[..., ::-1][56:-56, 56:-56]), cv2.COLOR_RGB2GRAY)
    pre = Preprocessing(size=112, equalize=False, crop="centre")
    assert np.array_equal(pre.frame(bgr), official)
    wide = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)  # another shape: its middle 112 x 112
    assert np.array_equal(pre.frame(wide), cv2.cvtColor(wide, cv2.COLOR_BGR2GRAY)[64:176, 104:216])
    with pytest.raises(AvseBenchError, match="smaller than the 112 px centre crop"):
        pre.frame(rng.integers(0, 256, (100, 224, 3), dtype=np.uint8))
    with pytest.raises(AvseBenchError, match="crop must be one of"):
        Preprocessing(crop="middle")
    assert pre.config_hash() != Preprocessing(size=112, equalize=False).config_hash()


def test_the_declared_preprocessing_is_chosen_and_conflicts_are_refused():
    avsec4, baseline = load("avsec4_baseline"), load("baseline")
    pre, rule = choose_preprocessing([baseline, avsec4], "smoke")
    assert pre == Preprocessing(112, False, "centre") and "declared by avsec4_baseline" in rule
    pre, rule = choose_preprocessing([baseline], "smoke")
    assert pre == Preprocessing(32, True, "none") and rule == "the smoke profile's"
    pre, rule = choose_preprocessing([avsec4], "smoke", frame_size=128)
    assert pre == Preprocessing(128, False, "centre") and "size = 128 from the command line" in rule
    other = SimpleNamespace(name="other", declared_preprocessing=lambda: {"size": 96})
    with pytest.raises(AvseBenchError, match="declare different preprocessing"):
        choose_preprocessing([avsec4, other], "smoke")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The embedded AVSEC-4 corpus (`data synth --layout avsec4`): 4 train and 3 dev scenes of 1.2-1.5 s."""
    root = tmp_path_factory.mktemp("avsec4_corpus")
    synthesize(root, n_train=4, n_dev=3, seed=0, min_seconds=1.2, max_seconds=1.5, layout="avsec4")
    return root


def official_input(scene) -> tuple[np.ndarray, np.ndarray]:
    """The official test path for a whole utterance, written out here independently of the harness: the
    binaural mixture as dataset.py reads it (wavfile int16 / 32768, transposed to (2, L)); every frame of the video
    (decord gives them all, RGB), frame[56:-56, 56:-56], RGB -> grey, / 255, black frames appended up to 75
    (MAX_FRAMES). Returns (noisy (2, L), frames (1, T, 112, 112))."""
    noisy = sf.read(scene.mixed, dtype="int16")[0].astype(np.float32).T / 32768.0
    cap, frames = cv2.VideoCapture(str(scene.video)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(np.ascontiguousarray(bgr[..., ::-1][56:-56, 56:-56]), cv2.COLOR_RGB2GRAY))
    cap.release()
    video = np.stack(frames).astype(np.float32) / 255.0
    if len(video) < 75:
        video = np.concatenate([video, np.zeros((75 - len(video), 112, 112), np.float32)])
    return noisy, video[None]


def test_whole_utterances_get_the_videos_own_frames(corpus):
    """The feed the system declares (`[inference]`): every frame of the video, black frames up to 75; the default
    feed gives as many frames as cover the audio, repeating the last."""
    system = load("avsec4_baseline")
    scenes = load_split(corpus, "dev")
    pre = choose_preprocessing([system], "smoke")[0]
    item = AVSEDataset(scenes, pre, crop_seconds=None, system=system)[0]
    noisy, video = official_input(scenes[0])
    assert item["mixed"].shape == noisy.shape and np.array_equal(item["mixed"].numpy(), noisy)
    assert item["video"].shape == video.shape and np.array_equal(item["video"].numpy(), video)
    own = pre.video_uint8(scenes[0].video)
    assert 25 <= len(own) < 75 and not item["video"][0, len(own):].any()
    # another feed of the same kind: no minimum, so exactly the video's own frames, however long the audio
    short = SimpleNamespace(name="short", channels=2, feed=lambda: Feed(video_frames="video", video_padding="zeros"))
    assert AVSEDataset(scenes, pre, crop_seconds=None, system=short)[0]["video"].shape[1] == len(own)
    default = SimpleNamespace(name="default", channels=2, feed=Feed)
    n_samples = item["mixed"].shape[-1]
    assert AVSEDataset(scenes, pre, crop_seconds=None, system=default)[0]["video"].shape[1] == math.ceil(
        n_samples / 640)
    with pytest.raises(AvseBenchError, match="reads and writes 2 channels"):
        AVSEDataset(load_split(corpus, "dev", "mono"), pre, crop_seconds=None, system=system)


def lightning_checkpoint(path, channels: int, seed: int) -> AVSEC4Baseline:
    """A checkpoint laid out as the official training writes it (`AVSE4BaselineModule` under Lightning): the state
    dict under the official names (through `official_names`), `hyper_parameters` as its save_hyperparameters()
    stores them. Returns the model whose weights it holds (eval mode)."""
    torch.manual_seed(seed)
    model = AVSEC4Baseline(channels)
    with torch.no_grad():  # batch-norm statistics away from their initial 0 and 1, so that loading them matters
        for name, buffer in model.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5) if name.endswith("var") else buffer.normal_(0, 0.1)
    state = {official: model.state_dict()[ours] for ours, official in official_names(model).items()}
    torch.save({"epoch": 41, "global_step": 12_000, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                "hyper_parameters": {"lr": 1e-4, "a_only": False, "val_dataset": None, "loss": None,
                                     "batch_size": 4, "frontend_ckpt_path": None, "num_channels": channels}}, path)
    return model.eval()


@pytest.mark.slow
def test_compare_evaluates_a_supplied_official_checkpoint_as_the_official_model(corpus, tmp_path):
    ckpt = tmp_path / "pretrained.ckpt"
    model = lightning_checkpoint(ckpt, 2, seed=7)
    out = tmp_path / "run"
    assert main(["compare", "avsec4_baseline", "--weights", f"avsec4_baseline={ckpt}", "--data", str(corpus),
                 "--profile", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    run_dir = out / "runs" / "avsec4_baseline"
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["supplied_weights"]["format"] == "PyTorch Lightning checkpoint"
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "train_log.csv").exists()  # nothing trained
    for scene in load_split(corpus, "dev"):
        noisy, video = official_input(scene)
        with torch.no_grad():
            expected = model(torch.from_numpy(noisy)[None], torch.from_numpy(video)[None])[0].numpy()
        expected /= np.abs(expected).max()  # AVSE4BaselineModule.enhance
        written, rate = sf.read(out / "enhanced" / "avsec4_baseline" / "av" / f"{scene.id}.wav", dtype="float32")
        assert rate == 16_000 and written.shape == expected.T.shape  # (L, 2)
        assert np.abs(written - expected.T).max() <= 1.5 / 32768  # 16-bit rounding (and +1.0 written as 32767)
    sheet = (out / "sheet.md").read_text()
    assert "pretrained.ckpt" in sheet and "MBSTOI" in sheet


@pytest.mark.slow
def test_compare_trains_and_reports_the_binaural_baseline(corpus, tmp_path):
    out = tmp_path / "run"
    assert main(["compare", "avsec4_baseline", "--data", str(corpus), "--track", "binaural", "--profile", "smoke",
                 "--out", str(out), "--device", "cpu", "--stress", "occlusion=0.5"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["preprocessing"]["config"]
    assert (config["size"], config["crop"], config["equalize"]) == (112, "centre", False)
    assert "declared by avsec4_baseline" in manifest["preprocessing"]["chosen_by"]
    assert manifest["stress"]["metrics"] == ["mbstoi"]
    sheet = (out / "sheet.md").read_text()
    assert "MBSTOI" in sheet and "Preprocessing chosen by" in sheet and "![MBSTOI under visual stress]" in sheet
    import pandas as pd

    items = pd.read_csv(out / "sheet.csv")
    assert items["item"].nunique() == 13 and items["value"].notna().all()
    params = items[items["item"] == "Parameters"]["value"].iloc[0]
    assert "22,293,509" in params
    profile = json.loads((out / "profile.json").read_text())["avsec4_baseline"]
    assert profile["reference_input"]["audio_shape"] == [1, 2, 16_000]
    enhanced = sf.read(next((out / "enhanced" / "avsec4_baseline" / "av").glob("*.wav")))[0]
    assert enhanced.ndim == 2 and enhanced.shape[1] == 2
    scores = pd.read_csv(out / "scores.csv")
    assert scores["mbstoi"].notna().all() and (scores["error"].isna() | (scores["error"] == "")).all()
    # report.html on the binaural track: 2-channel players (mixture, target, the outputs), chosen by MBSTOI
    cards = json.loads((out / "listen" / "cards.json").read_text())["cards"]
    assert cards and all("MBSTOI improvement" in c["why"] or "masker" in c["why"] for c in cards)
    players = [p for c in cards for p in c["players"]]
    assert len(players) == len(cards) * (2 + 2 + 1) and all(p["channels"] == 2 for p in players)
    assert all(sf.read(out / p["audio"])[0].shape[1] == 2 for p in players)
    assert "left ear above right" in (out / "report.html").read_text()
    # issue 25, item 4: views read the run's metrics. The video-use flag and the limitation speak MBSTOI (no dB,
    # its own meaningful difference), the SNR plot has MBSTOI's panel only, `report --readme` works.
    assert "SI-SDR" not in sheet.split("## Quality")[1].split("### By")[0]
    limitations = items[items["item"] == "Known limitations"]["value"].iloc[0]
    if "no clear use of the video" in limitations:
        assert "in MBSTOI on speech maskers" in limitations and "not shown to exceed 0.01" in limitations
    import matplotlib.image

    height, width = matplotlib.image.imread(out / "snr_bands.png").shape[:2]
    assert width < 1000  # one panel (MBSTOI, 748 px), not three empty SI-SDR / PESQ-WB / STOI ones (1430 px)
    readme = tmp_path / "README.md"
    assert main(["report", str(out), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "MBSTOI, mean [95 % BCa bootstrap CI]" in text and "Under degraded video (`--stress`), MBSTOI gain" in text


def test_the_mono_baseline_enhances_the_mono_track_and_a_binaural_checkpoint_is_refused(corpus, tmp_path, capsys):
    ckpt = tmp_path / "pretrained_mono.ckpt"
    lightning_checkpoint(ckpt, 1, seed=3)
    out = tmp_path / "enhanced"
    assert main(["enhance", "avsec4_baseline_mono", "--weights", str(ckpt), "--data", str(corpus), "--track", "mono",
                 "--out", str(out), "--device", "cpu"]) == 0
    files = sorted(out.glob("*.wav"))
    assert len(files) == 3 and all(sf.info(f).channels == 1 for f in files)
    assert main(["enhance", "avsec4_baseline", "--weights", str(ckpt), "--data", str(corpus), "--out",
                 str(tmp_path / "x"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this system's model" in err and "mis-shaped" in err and "Traceback" not in err
    assert main(["enhance", "avsec4_baseline_mono", "--weights", str(ckpt), "--data", str(corpus), "--out",
                 str(tmp_path / "y"), "--device", "cpu"]) == 2
    assert "pass --track mono" in capsys.readouterr().err
