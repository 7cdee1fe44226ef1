"""Fixtures shared by the micro-benchmarks."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dev_split(tmp_path_factory):
    """make(n, seed) -> a data root whose dev split holds n synthetic scenes of 2-4 s (the quick corpus's lengths)."""
    from avse_bench.data.synth import synthesize

    def make(n: int, seed: int):
        root = tmp_path_factory.mktemp(f"bench_dev{n}")
        synthesize(root, n_train=0, n_dev=n, seed=seed, min_seconds=2, max_seconds=4, progress=False)
        return root

    return make
