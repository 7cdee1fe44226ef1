"""avse_bench.data: the AVSEC scene layout, the embedded synthetic corpus, THE preprocessing, the torch Dataset."""

from avse_bench.data.layout import Scene, load_split
from avse_bench.data.preprocessing import Preprocessing

__all__ = ["AVSEDataset", "Preprocessing", "Scene", "load_split"]


def __getattr__(name: str):
    # The Dataset imports torch (seconds); only code that asks for it pays, not `data synth` or `data check`.
    if name == "AVSEDataset":
        from avse_bench.data.dataset import AVSEDataset

        return AVSEDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
