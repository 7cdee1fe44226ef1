"""`avse-bench system new` then `system check` then `compare NEW dcnn_rnn --profile smoke`, as the README's "Adding
a system" says (issue 27), and `system check` naming what a broken model does."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from avse_bench.cli import main


@pytest.mark.slow
def test_new_then_check_then_compare_beside_dcnn_rnn(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AVSE_BENCH_CACHE", str(tmp_path / "cache"))
    assert main(["system", "new", "my_av", "--dir", str(tmp_path / "mine")]) == 0
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path / "mine"))
    capsys.readouterr()
    assert main(["system", "check", "my_av"]) == 0
    printed = capsys.readouterr().out
    assert "all checks passed" in printed and "feeds smoke: training crops of 12 frames = 0.48 s = 7680 samples" \
        in printed and "FAIL" not in printed
    out = tmp_path / "run"
    assert main(["compare", "my_av", "dcnn_rnn", "--profile", "smoke", "--device", "cpu", "--out", str(out),
                 "--workers", "0"]) == 0
    items = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    measured = items[(items.system == "my_av") & (items.source == "measured")]
    assert measured["item"].nunique() == 13 and (measured.value != "").all()
    assert "measured at a reduced configuration ([profiles.smoke.model]: features: 16)" in \
        measured[measured["item"] == "Parameters"].value.iloc[0]
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"


BROKEN = """import torch


class Short(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, audio, video):
        return (audio * self.w)[:, :-16]  # 16 samples short


def build_model(config):
    return Short()
"""


def test_check_names_a_model_that_breaks_the_contract(tmp_path, monkeypatch, capsys):
    assert main(["system", "new", "short", "--dir", str(tmp_path)]) == 0
    (tmp_path / "short" / "model.py").write_text(BROKEN)
    monkeypatch.setenv("AVSE_BENCH_SYSTEMS", str(tmp_path))
    capsys.readouterr()
    assert main(["system", "check", "short"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL forward and backward in training mode" in printed
    assert "its model returned a float32 tensor of shape (2, 7664) for audio of shape (2, 7680)" in printed
    assert "check(s) failed" in printed
    assert main(["system", "new", "short", "--dir", str(tmp_path)]) == 2  # the folder exists: one line
    assert main(["system", "new", "not-a-name", "--dir", str(tmp_path)]) == 2
