"""The systems against their specifications (docs/SYSTEMS.md), the shared blocks, and the registry."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from avse_bench.errors import AvseBenchError
from avse_bench.nn import Separator, chunk, overlap_add, si_snr_loss
from avse_bench.systems import available, count_parameters, load, print_systems

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def baseline():
    return load("baseline").build_model()


@pytest.fixture(scope="module")
def dcnn_rnn():
    return load("dcnn_rnn").build_model()


# --- baseline: parameter for parameter ------------------------------------------------------------------------------
def test_baseline_total_parameters(baseline):
    assert count_parameters(baseline) == 13_967_489


@pytest.mark.parametrize("module, expected", [
    ("audio_encoder", 4_096),
    ("audio_decoder", 4_096),
    ("visual", 11_313_856),
    ("visual.frontend", 15_808),
    ("visual.trunk", 11_166_976),
    ("visual.projection", 131_072),
    ("separator", 2_645_441),
    ("separator.input_conv", 33_792),
    ("separator.blocks", 2_582_784),
    ("separator.conv2d", 4_160),
    ("separator.end_conv", 16_384),
    ("separator.prelu", 1),
    ("separator.output", 4_160),
    ("separator.gate", 4_160),
])
def test_baseline_parameters_per_module(baseline, module, expected):
    assert count_parameters(baseline.get_submodule(module)) == expected


def test_baseline_layers_are_the_published_ones(baseline):
    front = baseline.visual.frontend[0]
    assert (front.kernel_size, front.stride, front.padding, front.bias) == ((5, 7, 7), (1, 2, 2), (2, 3, 3), None)
    assert len(baseline.separator.blocks) == 6
    lstm = baseline.separator.blocks[0].intra.rnn
    assert (lstm.input_size, lstm.hidden_size, lstm.bidirectional) == (64, 128, True)
    enc = baseline.audio_encoder.conv
    assert (enc.in_channels, enc.out_channels, enc.kernel_size, enc.stride, enc.bias) == (1, 256, (16,), (8,), None)


# --- dcnn_rnn: the sheet --------------------------------------------------------------------------------------------
def test_dcnn_rnn_has_the_sheets_size_and_layers(dcnn_rnn, baseline):
    n = count_parameters(dcnn_rnn)
    assert 1_900_000 <= n <= 2_100_000
    assert n < count_parameters(baseline)
    trunk = dcnn_rnn.visual.trunk
    kinds = [type(m) for m in trunk.modules()]
    assert kinds.count(nn.Conv2d) == 8
    assert kinds.count(nn.BatchNorm2d) == 8
    assert nn.MaxPool2d in kinds
    assert all(m.p == 0.3 for m in trunk.modules() if isinstance(m, nn.Dropout))
    assert len(dcnn_rnn.separator.blocks) == 1  # one intra- and one inter-chunk BiLSTM: the sheet's "2 LSTM layers"
    lstm = dcnn_rnn.separator.blocks[0].inter.rnn
    assert (lstm.input_size, lstm.hidden_size, lstm.bidirectional) == (32, 32, True)
    assert dcnn_rnn.separator.blocks[0].inter.dropout.p == 0.3


def test_dcnn_rnn_audio_path_is_the_baselines(dcnn_rnn, baseline):
    for name in ("audio_encoder", "audio_decoder", "separator.input_conv.0"):
        a, b = dcnn_rnn.get_submodule(name), baseline.get_submodule(name)
        assert type(a) is type(b)
    assert dcnn_rnn.audio_encoder.conv.weight.shape == baseline.audio_encoder.conv.weight.shape
    assert dcnn_rnn.audio_decoder.conv.weight.shape == baseline.audio_decoder.conv.weight.shape


# --- output length: any input length, any frame size ----------------------------------------------------------------
@pytest.mark.parametrize("name, seconds, size", [
    ("baseline", 3.0, 16), ("baseline", 2.37, 24),
    ("dcnn_rnn", 3.0, 32), ("dcnn_rnn", 2.37, 24), ("dcnn_rnn", 0.5003, 40),  # 8,005 samples: not a multiple of 8
])
def test_output_has_the_input_length(name, seconds, size, baseline, dcnn_rnn):
    model = {"baseline": baseline, "dcnn_rnn": dcnn_rnn}[name].eval()
    length = round(seconds * 16000)
    audio = torch.randn(1, length)
    video = torch.rand(1, 1, math.ceil(length / 640), size, size)
    with torch.no_grad():
        out = model(audio, video)
    assert out.shape == (1, length)
    assert torch.isfinite(out).all()


def test_batch_items_are_independent_in_eval(dcnn_rnn):
    """Item 0 of a batch is enhanced as it is alone: no leakage across the batch (folding frames is per item)."""
    model = dcnn_rnn.eval()
    audio, video = torch.randn(2, 8000), torch.rand(2, 1, 13, 32, 32)
    with torch.no_grad():
        both = model(audio, video)
        alone = model(audio[:1], video[:1])
    torch.testing.assert_close(both[:1], alone, atol=1e-5, rtol=1e-4)


def test_video_changes_the_output(dcnn_rnn):
    model = dcnn_rnn.eval()
    audio = torch.randn(1, 8000)
    with torch.no_grad():
        a = model(audio, torch.rand(1, 1, 13, 32, 32))
        b = model(audio, torch.zeros(1, 1, 13, 32, 32))
    assert not torch.allclose(a, b)


# --- the dual-path chunking -----------------------------------------------------------------------------------------
def test_chunking_of_3_seconds_gives_62_chunks():
    x = torch.randn(1, 4, 5_999)  # the encoder's frames for 48,000 samples
    chunks, gap = chunk(x, 200)
    assert chunks.shape == (1, 4, 200, 62)
    assert gap == 200 - (100 + 5_999 % 200) % 200 == 101


@pytest.mark.parametrize("frames", [1, 99, 100, 199, 200, 201, 4_739, 5_999])
def test_overlap_add_undoes_chunking(frames):
    x = torch.randn(2, 3, frames)
    chunks, gap = chunk(x, 200)
    # every frame lies in exactly one chunk of each of the two interleaved sets: overlap-add gives it back twice
    torch.testing.assert_close(overlap_add(chunks, gap), 2 * x)
    # the chunks hold the frames in order: chunk 0 of the first set starts with K/2 padding zeros
    assert torch.equal(chunks[:, :, :100, 0], torch.zeros(2, 3, 100))
    assert torch.equal(chunks[:, :, 100:100 + min(frames, 100), 0], x[:, :, :100])


def test_separator_mask_is_non_negative_and_frame_aligned():
    sep = Separator(512, 16, 8, 1, bidirectional=True).eval()
    with torch.no_grad():
        mask = sep(torch.randn(2, 512, 437))
    assert mask.shape == (2, 256, 437)
    assert (mask >= 0).all()


# --- the loss -------------------------------------------------------------------------------------------------------
def test_si_snr_loss_known_value():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, 16000, generator=g)
    noise = torch.randn(1, 16000, generator=g)
    noise = noise - (noise * target).sum() / (target * target).sum() * target  # orthogonal to the target
    noise = noise * target.norm() / noise.norm() / math.sqrt(10)  # 10 dB below the target
    loss = si_snr_loss(target + noise, target)
    assert loss.item() == pytest.approx(-10.0, abs=1e-3)
    # scale- and offset-invariant
    assert si_snr_loss(3 * (target + noise) + 0.5, target).item() == pytest.approx(-10.0, abs=1e-3)


def test_si_snr_loss_clips_each_item_at_30_db():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 8000, generator=g)
    estimate = target.clone()
    estimate[1] += 10 * torch.randn(8000, generator=g)  # about -20 dB
    per_item = [si_snr_loss(estimate[i:i + 1], target[i:i + 1]).item() for i in range(2)]
    assert per_item[0] == -30.0  # perfect estimate: clipped
    assert si_snr_loss(estimate, target).item() == pytest.approx(sum(per_item) / 2, rel=1e-5)
    perfect = target.clone().requires_grad_()
    si_snr_loss(perfect, target).backward()
    assert torch.count_nonzero(perfect.grad) == 0  # a clipped item gives no gradient


def test_si_snr_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        si_snr_loss(torch.zeros(1, 10), torch.zeros(1, 11))


# --- the registry ---------------------------------------------------------------------------------------------------
def test_registry_lists_builtin_systems_and_merges_profiles():
    assert {"baseline", "dcnn_rnn"} <= set(available())
    system = load("baseline")
    assert system.config["system"]["name"] == "baseline"
    assert system.recipe("paper") == system.config["recipe"]
    quick = system.recipe("quick")
    assert quick["optimizer"] == "adam" and quick["batch_size"] == system.config["profiles"]["quick"]["batch_size"]
    with pytest.raises(AvseBenchError, match="profiles.nope"):
        system.recipe("nope")


def test_unknown_system_names_the_available_ones():
    with pytest.raises(AvseBenchError, match="baseline.*dcnn_rnn"):
        load("no_such_system")


def test_print_systems_gives_parameter_counts(capsys):
    print_systems()
    out = capsys.readouterr().out
    assert "13,967,489" in out and "dcnn_rnn" in out
    assert any(line.startswith("dcnn_rnn_code") and "5,122,401" in line for line in out.splitlines())


def test_an_extra_folder_on_the_search_path_is_discovered(tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "tiny_av"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent("""
        from torch import nn
        from avse_bench.nn import AVMaskNet, Separator

        class Visual(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(1, 256)

            def forward(self, video):  # (B, 1, T, H, W) -> (B, T, 256)
                return self.proj(video.mean(dim=(1, 3, 4)).unsqueeze(-1))

        def build_model(config):
            return AVMaskNet(Visual(), Separator(512, config["n"], 4, 1))
    """))
    (folder / "system.toml").write_text('[system]\nname = "tiny_av"\n[model]\nn = 8\n[recipe]\nlr = 1e-3\n')
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path / "mine"))
    assert available()["tiny_av"] == folder
    model = load("tiny_av").build_model()
    assert model(torch.randn(1, 3000), torch.rand(1, 1, 5, 8, 8)).shape == (1, 3000)
    # loaded from its file under its own name, not as an importable package `model`
    assert "model" not in sys.modules or getattr(sys.modules["model"], "__file__", None) != str(folder / "model.py")


def test_a_broken_system_folder_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "x" / "broken"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("")
    (folder / "system.toml").write_text("[system\n")
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path / "x"))
    with pytest.raises(AvseBenchError, match="not valid TOML"):
        load("broken")


def _build_isolation() -> list[str]:
    """Build in this interpreter when its setuptools can (>= 70.1, or >= 68 with wheel), else in pip's isolated
    build environment (a fresh Python 3.11 venv, as nox makes, has setuptools 65 and no wheel)."""
    try:
        setuptools = tuple(int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return []
    has_wheel = importlib.util.find_spec("wheel") is not None
    return ["--no-build-isolation"] if setuptools >= (70, 1) or (setuptools >= (68, 0) and has_wheel) else []


@pytest.mark.slow
def test_a_plain_install_carries_the_builtin_systems(tmp_path):
    """`pip install .` (non-editable) into a folder, then load the systems from another working directory."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("avse_bench", "systems"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    readme = REPO / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "")
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *_build_isolation(),
                            "--target", str(target), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    code = ("import avse_bench.systems as s; from avse_bench.systems import load; "
            "print(s.__file__); print(sum(p.numel() for p in load('baseline').build_model().parameters())); "
            "print(sum(p.numel() for p in load('dcnn_rnn').build_model().parameters()))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    where, n_baseline, n_dcnn = run.stdout.split()
    assert where.startswith(str(target))
    assert int(n_baseline) == 13_967_489
    assert int(n_dcnn) == count_parameters(load("dcnn_rnn").build_model())


@pytest.mark.parametrize("name", ["baseline", "dcnn_rnn", "dcnn_rnn_code"])
def test_visual_network_starts_from_the_official_initialisation(name):
    """Per weight tensor of the visual network, the standard deviation over three seeds is within 10 % of the
    official scheme's (convolutions sqrt(2 / (prod(kernel) * out)), the projection sqrt(2 / in)); BatchNorm is 1/0."""
    measured: dict[str, list[float]] = {}
    for seed in range(3):
        torch.manual_seed(seed)
        visual = load(name).build_model().visual
        for module_name, m in visual.named_modules():
            if isinstance(m, nn.Conv2d | nn.Conv3d):
                expected = math.sqrt(2.0 / (math.prod(m.kernel_size) * m.out_channels))
            elif isinstance(m, nn.Linear):
                expected = math.sqrt(2.0 / m.in_features)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                assert torch.all(m.weight == 1) and torch.all(m.bias == 0), module_name
                continue
            else:
                continue
            measured.setdefault(module_name, []).append(m.weight.std().item() / expected)
    assert len(measured) >= 9
    for module_name, ratios in measured.items():
        assert abs(sum(ratios) / len(ratios) - 1) < 0.10, (module_name, ratios)


def test_dcnn_rnn_code_is_the_published_code_not_the_sheet():
    """5,122,401 parameters (the sheet says 2.0 M): four one-block stages with a 1x1-conv shortcut (ReLU, BN,
    Dropout 0.3) in each, eight 3x3 convolutions in the trunk, and no dropout acting in the separator."""
    model = load("dcnn_rnn_code").build_model()
    assert count_parameters(model) == 5_122_401
    parts = {name: count_parameters(getattr(model, name)) for name in ("audio_encoder", "visual", "separator",
                                                                        "audio_decoder")}
    assert parts == {"audio_encoder": 4_096, "visual": 5_047_360, "separator": 66_849, "audio_decoder": 4_096}
    trunk = model.visual.trunk
    convs = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 8 and sum(m.kernel_size == (1, 1) for m in convs) == 4
    assert [m.p for m in trunk.modules() if isinstance(m, nn.Dropout)] == [0.3] * 4
    assert all(m.p == 0 for m in model.separator.modules() if isinstance(m, nn.Dropout))
    assert isinstance(model.visual.frontend[2], nn.ReLU)


def test_code_hash_follows_every_file_of_the_system_and_nothing_else(tmp_path, monkeypatch):
    """A stage key's code input: a helper module beside model.py counts as much as model.py; caches do not."""
    import shutil

    from avse_bench.systems import load as load_system

    root = tmp_path / "mine"
    shutil.copytree(load_system("dcnn_rnn").path, root / "dcnn_rnn_copy")
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(root))
    first = load_system("dcnn_rnn_copy").code_hash()
    (root / "dcnn_rnn_copy" / "__pycache__").mkdir(exist_ok=True)
    (root / "dcnn_rnn_copy" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"cache")
    assert load_system("dcnn_rnn_copy").code_hash() == first
    (root / "dcnn_rnn_copy" / "layers.py").write_text("WIDTH = 3\n")
    second = load_system("dcnn_rnn_copy").code_hash()
    assert second != first
    (root / "dcnn_rnn_copy" / "layers.py").write_text("WIDTH = 4\n")
    assert load_system("dcnn_rnn_copy").code_hash() not in (first, second)
