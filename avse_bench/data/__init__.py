"""avse_bench.data: the AVSEC scene layout, the embedded synthetic corpus, THE preprocessing, the torch Dataset."""

from avse_bench.data.dataset import AVSEDataset
from avse_bench.data.layout import Scene, load_split
from avse_bench.data.preprocessing import Preprocessing

__all__ = ["AVSEDataset", "Preprocessing", "Scene", "load_split"]
