"""Shared fixtures. The tiny embedded corpus is written once per test session (a few seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """An AVSEC-layout root with 4 train and 3 dev scenes of 1.2-1.5 s (why not shorter: profiles.py, smoke), seed 0."""
    from avse_bench.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny_corpus")
    synthesize(root, n_train=4, n_dev=3, seed=0, min_seconds=1.2, max_seconds=1.5, progress=False)
    return root


@pytest.fixture
def smoke_compare(capsys):
    """A callable: `smoke_compare(root, out, *systems_and_options)` runs `avse-bench compare ... --profile smoke`,
    asserts it succeeded (showing the end of stderr otherwise) and returns (sheet.md's text, manifest.json)."""
    import json

    from avse_bench.cli import main

    def run(root, out, *args: str) -> tuple[str, dict]:
        code = main(["compare", *args, "--data", str(root), "--profile", "smoke", "--out", str(out)])
        assert code == 0, capsys.readouterr().err[-2000:]
        return (out / "sheet.md").read_text(), json.loads((out / "manifest.json").read_text())

    return run
