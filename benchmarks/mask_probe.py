"""How much a trained system's mask varies over time (a saturation check), on fixed dev crops (a helper).

    python benchmarks/mask_probe.py SYSTEM RUN_DIR DATA_ROOT [--crops 4] [--seconds 1]

Loads RUN_DIR/model.pt, runs the first `--crops` dev items (epoch-0 crops of `--seconds`, the run's preprocessing)
and prints, as JSON, the mask's standard deviation over time (the separator's output, (B, 256, F): std over F,
averaged over channels and crops) and the mean mask. A mask that no longer varies over time (std near 0) is a fixed
filter: its output cannot depend on the video.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from avse_bench.data import AVSEDataset, load_split
from avse_bench.enhance import load_trained, run_preprocessing
from avse_bench.systems import load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("system")
    p.add_argument("run", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--crops", type=int, default=4)
    p.add_argument("--seconds", type=float, default=1.0)
    a = p.parse_args()
    model = load_trained(load(a.system), a.run, torch.device("cpu"))
    dataset = AVSEDataset(load_split(a.data, "dev"), run_preprocessing(a.run), crop_seconds=a.seconds)
    masks = []
    model.separator.register_forward_hook(lambda module, args, out: masks.append(out.detach()))
    with torch.no_grad():
        for i in range(min(a.crops, len(dataset))):
            item = dataset[i]
            model(item["mixed"][None], item["video"][None])
    stacked = torch.cat(masks)  # (crops, 256, F)
    print(json.dumps({"system": a.system, "crops": len(masks), "seconds": a.seconds,
                      "mask_std_over_time": float(stacked.std(dim=-1).mean()), "mask_mean": float(stacked.mean())}))


if __name__ == "__main__":
    main()
