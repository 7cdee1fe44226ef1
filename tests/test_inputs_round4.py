"""Inputs as users have them, round 4 (issue 26): each reported input with its right value or message, and one more
input of the same kind. The report page's markup case is in test_report_html.py (it needs a compare run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from avse_bench.cli import main
from avse_bench.data.avsync import envelope
from avse_bench.data.check import check_split
from avse_bench.errors import AvseBenchError
from avse_bench.metrics import binaural, dispatch, scoring
from avse_bench.system_schema import check_config
from avse_bench.systems import System, load
from avse_bench.weights import read_weights

DCNN = Path(__file__).resolve().parent.parent / "systems" / "dcnn_rnn"


@pytest.fixture(scope="module")
def avsec4_corpus(tmp_path_factory):
    """avse-bench's own binaural corpus: `data synth OUT --train 2 --dev 3 --layout avsec4`."""
    from avse_bench.data.synth import synthesize

    root = tmp_path_factory.mktemp("avsec4_synth")
    synthesize(root, n_train=2, n_dev=3, seed=0, min_seconds=1.2, max_seconds=1.5, progress=False, layout="avsec4")
    return root


def test_data_check_of_the_binaural_corpus_gives_its_lip_sync_figures(avsec4_corpus, capsys):
    """Item 2: `data check` on the AVSEC-4 corpus ended in a ValueError from avsync (a (L, 2) target read as (L,)).
    One more of the kind: the envelope of a 2-channel signal is that of its (L + R) / 2."""
    report = check_split(avsec4_corpus, "dev")
    assert report.ok and report.sync is not None and len(report.sync.target_r) == 3
    assert report.sync.mean_target_r > 0.3  # the synthetic mouths follow their target
    assert main(["data", "check", str(avsec4_corpus), "--split", "dev"]) == 0
    assert "target:        mean r = +" in capsys.readouterr().out
    stereo = np.random.default_rng(0).standard_normal((3200, 2))
    assert np.allclose(envelope(stereo, 5), envelope(stereo.mean(axis=1), 5))


def _copy(root: Path, out: Path) -> Path:
    shutil.copytree(root, out)
    return out


def test_a_split_that_lost_its_anechoic_references_is_broken_not_blind(avsec4_corpus, tmp_path, capsys):
    """Item 4: AVSEC-4 dev with every _target_anechoic.wav missing passed as an evaluation split and was scored with
    DNSMOS alone. Now each scene is broken and score refuses. One more of the kind: the AVSEC-1/2/3 case (targets gone,
    interferers kept) is in test_data_layout.py; a real eval split is scored blind and says so."""
    root = _copy(avsec4_corpus, tmp_path / "root")
    for f in (root / "dev" / "scenes").glob("*_target_anechoic.wav"):
        f.unlink()
    report = check_split(root, "dev", sync=False)
    assert report.has_targets and sorted(report.problems) == ["S00003", "S00004", "S00005"]
    assert report.problems["S00003"] == ["missing file S00003_target_anechoic.wav"]
    assert main(["data", "check", str(root), "--split", "dev"]) == 1
    assert main(["score", "--data", str(root), "--split", "dev", "--out", str(tmp_path / "s.csv"),
                 "--metrics", "dnsmos"]) == 2
    assert "3 broken scene(s)" in capsys.readouterr().err
    blind = _copy(avsec4_corpus, tmp_path / "blind")
    for f in (blind / "dev" / "scenes").iterdir():
        if not f.name.endswith(("_silent.mp4", "_mono_mix.wav", "_mix.wav")):
            f.unlink()
    assert main(["score", "--data", str(blind), "--split", "dev", "--out", str(tmp_path / "b.csv"),
                 "--metrics", "dnsmos", "--jobs", "1"]) == 0
    assert "has no reference files (an evaluation split): scored blind" in capsys.readouterr().err


def test_the_tracks_own_metric_missing_is_said_before_any_work(avsec4_corpus, tmp_path, monkeypatch, capsys):
    """Item 3: without pyclarity, `score` of the AVSEC-4 dev split exited 0 with MBSTOI empty on every row, and
    `compare --stress` trained before it stopped. Now both refuse in one line naming the install command, and write
    nothing. One more of the kind: DNSMOS missing on the mono track."""
    monkeypatch.setattr(binaural, "available", lambda: "MBSTOI needs pyclarity (No module named 'clarity'): "
                                                      f"pip install --no-deps {binaural.PYCLARITY} pyyaml")
    out = tmp_path / "s.csv"
    assert main(["score", "--data", str(avsec4_corpus), "--split", "dev", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the binaural track's metrics cannot all be computed here" in err and "pip install --no-deps" in err
    assert not out.exists()
    run = tmp_path / "run"
    assert main(["compare", "avsec4_baseline", "--profile", "smoke", "--data", str(avsec4_corpus), "--out",
                 str(run), "--device", "cpu", "--stress", "occlusion=0.5"]) == 2
    assert "pip install --no-deps" in capsys.readouterr().err
    assert not (run / "stages").exists()  # no stage ran
    monkeypatch.setattr(dispatch, "available", lambda: "DNSMOS needs speechmos and onnxruntime (No module named "
                                                      "'speechmos'): pip install speechmos==0.0.1.1 onnxruntime")
    with pytest.raises(AvseBenchError, match="mono track's metrics cannot all be computed here: DNSMOS needs"):
        scoring.parse_metrics(None, track="mono")
    assert scoring.parse_metrics("intrusive", track="mono")  # a list without it is the user's choice


def _system(root: Path, name: str, model_py: str | None = None, toml_edit=None, files: dict | None = None) -> Path:
    """A copy of dcnn_rnn named `name` under `root`, with another model.py, an edited system.toml or extra files."""
    folder = root / name
    shutil.copytree(DCNN, folder)
    toml = (folder / "system.toml").read_text().replace('name = "dcnn_rnn"', f'name = "{name}"')
    (folder / "system.toml").write_text(toml_edit(toml) if toml_edit else toml)
    if model_py is not None:
        (folder / "model.py").write_text(model_py)
    for rel, text in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


MULTI_MODEL = """from .nets.core import Net


def build_model(config):
    return Net(config.get("gain", 1.0))
"""
MULTI_CORE = """import torch

from ..helpers import scale


class Net(torch.nn.Module):
    def __init__(self, gain):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(float(gain)))

    def forward(self, audio, video):  # (B, L), (B, 1, T, H, W) -> (B, L)
        return scale(audio, self.gain)
"""


def test_a_system_with_a_syntax_error_is_listed_with_it_and_the_others_work(tmp_path, monkeypatch, capsys):
    """Item 5: a user folder whose model.py has a syntax error ended `avse-bench systems` in a traceback. One more of
    the kind: a model.py whose import fails (a module that is not installed); and a multi-file system beside them
    imports its own modules relatively."""
    _system(tmp_path, "broken_syntax", model_py="def build_model(config:\n    pass\n")
    _system(tmp_path, "broken_import", model_py="import not_installed_anywhere\n\ndef build_model(c):\n    pass\n")
    _system(tmp_path, "multi", model_py=MULTI_MODEL, files={
        "nets/__init__.py": "", "nets/core.py": MULTI_CORE, "helpers.py": "def scale(x, g):\n    return x * g\n"})
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path))
    assert main(["systems"]) == 0
    captured = capsys.readouterr()
    lines = {line.split()[0]: line for line in captured.out.splitlines()}
    assert "SyntaxError: '(' was never closed (at model.py:1)" in lines["broken_syntax"]
    assert "ModuleNotFoundError: No module named 'not_installed_anywhere'" in lines["broken_import"]
    assert "1 params" in lines["multi"] and "13,967,489 params" in lines["baseline"]
    assert "2 system(s) cannot be loaded" in captured.err and "Traceback" not in captured.err
    model = load("multi").build_model()
    assert torch.equal(model(torch.ones(2, 640), torch.zeros(2, 1, 1, 8, 8)), torch.ones(2, 640))
    with pytest.raises(AvseBenchError, match=r"broken_syntax/model.py does not load: SyntaxError"):
        load("broken_syntax").build_model()


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t.replace("[profiles.smoke]\nbatch_size = 2", '[profiles.smoke]\nbatch_size = "auto"'),
     "[profiles.smoke] batch_size must be a whole number (got 'auto')"),
    (lambda t: t.replace("[recipe]\n", "[recipe]\nlearning_rate = 0.001\n"),  # one more: a key the harness never reads
     "[recipe] has an unknown key 'learning_rate'; the harness reads optimizer, lr,"),
    (lambda t: t.replace('optimizer = "rmsprop"', 'optimizer = "sgd"'),
     "[recipe] optimizer must be one of adam, rmsprop (got 'sgd')"),
    (lambda t: t + '\n[preprocessing]\nnormalise = 0.421\n',  # mean and std are keys now (issue 27)
     "[preprocessing] has an unknown key 'normalise'; the harness reads size, equalize, crop, face_size, color, mean, "
     "std"),
    (lambda t: t + '\n[preprocessing]\nstd = 0\n',
     "[preprocessing] std must be > 0 (got 0)"),
])
def test_a_system_toml_value_of_the_wrong_kind_is_one_line(tiny_corpus, tmp_path, monkeypatch, capsys, edit, words):
    """Item 6: `[profiles.smoke] batch_size = "auto"` ended `train` in `ValueError: invalid literal for int()`."""
    _system(tmp_path, "typo", toml_edit=edit)
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path))
    assert main(["train", "typo", "--profile", "smoke", "--data", str(tiny_corpus), "--out", str(tmp_path / "run"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert words in err and str(tmp_path / "typo" / "system.toml") in err and "Traceback" not in err


ONE_CHANNEL = """import torch


class Mono(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, audio, video):  # audio (B, 2, L): returns {returns}
        return {expr}


def build_model(config):
    return Mono()
"""


@pytest.mark.parametrize(("expr", "returned"), [
    ("audio.mean(dim=1) * self.w", "a float32 tensor of shape (2, 16000)"),  # the reported case: 1 channel
    ("(audio * self.w)[..., :-16]", "a float32 tensor of shape (2, 2, 15984)"),  # one more: 16 samples short
    ("(audio * self.w, None)", "a tuple of 2"),
])
def test_a_model_output_that_does_not_fit_its_system_is_one_line(tmp_path, expr, returned):
    """Item 7: a system with [model] channels = 2 whose forward returns one channel ended `train` in a traceback
    from the loss, and `enhance --weights` wrote 1-channel wavs for a binaural system."""
    folder = _system(tmp_path, "wrong_out", model_py=ONE_CHANNEL.replace("{expr}", expr).replace("{returns}", expr),
                     toml_edit=lambda t: t.replace("[model]\n", "[model]\nchannels = 2\n"))
    config = tomllib.loads((folder / "system.toml").read_text())
    check_config(config, folder / "system.toml")
    config["model"] = {"channels": 2}  # the dcnn_rnn arguments are not this model's
    model = System("wrong_out", folder, config).build_model()
    with pytest.raises(AvseBenchError) as err:
        model(torch.zeros(2, 2, 16000), torch.zeros(2, 1, 25, 8, 8))
    assert f"system wrong_out: its model returned {returned}" in str(err.value)
    assert "(B, 2, L) = (2, 2, 16000)" in str(err.value)


def test_a_dict_subclass_from_a_package_not_installed_in_hyper_parameters_loads_the_weights(tmp_path, capsys):
    """Item 8: hyper_parameters holding an EasyDict (a dict subclass from a package that is not installed, as
    save_hyperparameters writes it) was refused. One more of the kind: an addict-like Dict whose __setstate__ would
    write a file, inside it."""
    marker = tmp_path / "ran"
    module = types.ModuleType("easydict_standin")

    class EasyDict(dict):
        def __init__(self, d=None, **kw):
            super().__init__()
            for k, v in dict(d or {}, **kw).items():
                setattr(self, k, v)

        def __setattr__(self, k, v):
            super().__setattr__(k, v)
            super().__setitem__(k, v)

    class Dict(dict):  # addict's shape, with a state hook that would run code
        def __setstate__(self, state):
            open(state["marker"], "w").close()

    for cls in (EasyDict, Dict):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    sys.modules[module.__name__] = module
    try:
        system = load("dcnn_rnn")
        ours = system.build_model().state_dict()
        inner = Dict(depth=3)
        inner.marker = str(marker)
        path = tmp_path / "easydict.ckpt"
        torch.save({"state_dict": {f"model.{k}": v for k, v in ours.items()}, "pytorch-lightning_version": "2.4.0",
                    "hyper_parameters": {"cfg": EasyDict(lr=1e-3, model={"blocks": 1}), "extra": inner}}, path)
    finally:
        del sys.modules[module.__name__]
    state, info = read_weights(system, path)
    assert state.keys() == ours.keys() and all(torch.equal(state[k], ours[k]) for k in ours)
    assert info["skipped"] == ["easydict_standin.Dict", "easydict_standin.EasyDict"]
    assert not marker.exists()  # nothing of the class ran
    assert "skipped, not run" in capsys.readouterr().err


def test_no_command_above_prints_a_traceback_from_a_fresh_process(tmp_path):
    """The CLI itself (not only main()): a system with a syntax error beside the others, in a fresh interpreter."""
    _system(tmp_path, "broken_syntax", model_py="def build_model(config:\n")
    run = subprocess.run([sys.executable, "-m", "avse_bench.cli", "systems"], capture_output=True, text=True,
                         env={**os.environ, "AVSE_BENCH_SYSTEMS": str(tmp_path)}, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr and "broken_syntax" in run.stdout
