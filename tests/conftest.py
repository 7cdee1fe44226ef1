"""Shared fixtures. The tiny embedded corpus is written once per test session (a few seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """An AVSEC-layout root with 4 train and 3 dev scenes of 1.0-1.5 s, seed 0."""
    from avse_bench.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny_corpus")
    synthesize(root, n_train=4, n_dev=3, seed=0, min_seconds=1.0, max_seconds=1.5, progress=False)
    return root
