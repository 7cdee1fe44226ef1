"""One training loop for every system, single process or `torchrun --nproc_per_node N` (DistributedDataParallel).

Driven by the system's `system.toml` recipe for the chosen profile (optimiser, learning rate and schedule, batch
size, epochs, optional `max_steps`, crop length) and the harness-wide preprocessing of that profile. Writes in the
run folder: `checkpoint.pt` after every epoch (atomic; model, optimiser, scheduler, RNG states, epoch and step, the
log so far), `train_log.csv`, `model.pt` (final weights) and `train_summary.json`. `resume=True` continues from
the checkpoint and ends with exactly the weights an uninterrupted run would have had.
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from avse_bench.contract import check_finite_loss
from avse_bench.data.loading import LoaderOptions, make_loader
from avse_bench.errors import AvseBenchError
from avse_bench.io import replace_atomically, writable_dir, write_json
from avse_bench.nn import si_snr_loss
from avse_bench.nn.loss import recipe_losses
from avse_bench.systems import System, load

LOG_FIELDS = ["epoch", "steps", "train_loss", "val_loss", "lr", "epoch_seconds"]


# --- process group and device -------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group, so it also ends it

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when torch sees a device, else CPU; 'cuda' without one is the user's to fix."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AvseBenchError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise AvseBenchError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def init_distributed(device: str) -> tuple[Dist, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world == 1:
        return Dist(), dev
    d = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), not dist.is_initialized())
    if d.owns_group:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(d.local_rank)
        return d, torch.device("cuda", d.local_rank)
    # N processes share the cores: one thread each per share, or they fight over them.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return d, dev


def _all_mean(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """Mean of each value over the ranks (identity in a single process)."""
    if d.world_size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / d.world_size).tolist()


# --- seeding and RNG state (plain tensors/ints so that torch.load(weights_only=True) reads them) -----------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state(device: torch.device) -> dict:
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# --- optimiser and schedule from the recipe -----------------------------------------------------------------------
def early_stop_epoch(val_losses: list[float], patience: int | None) -> int | None:
    """The epoch (1-based) after which training stops: the first whose validation loss is the `patience`-th in a
    row without a new lowest one (Lightning's and Keras's EarlyStopping: mode min, min_delta 0); None when it never
    comes or `patience` is None. Computed from the log alone, so a resumed run stops where the uninterrupted run
    would."""
    if not patience:
        return None
    best, wait = math.inf, 0
    for epoch, loss in enumerate(val_losses, start=1):
        best, wait = (loss, 0) if loss < best else (best, wait + 1)
        if wait >= patience:
            return epoch
    return None


def whole_epoch_mean(rows: list[dict], steps_per_epoch: int) -> float | str:
    """Mean wall time in seconds of the epochs that ran all `steps_per_epoch` steps (a `max_steps` run's last epoch
    is partial and is left out), or "n/a (reason)" when none did."""
    steps = [r["steps"] for r in rows]
    whole = [r["epoch_seconds"] for r, before in zip(rows, [0, *steps[:-1]], strict=True)
             if r["steps"] - before == steps_per_epoch]
    if not whole:
        return (f"n/a (no whole epoch: the run stopped after {steps[-1] if steps else 0} steps of an epoch of "
                f"{steps_per_epoch})")
    return round(sum(whole) / len(whole), 2)


def build_optimizer(params, recipe: dict, where: Path) -> torch.optim.Optimizer:
    name = recipe.get("optimizer", "adam").lower()
    lr, decay = float(recipe["lr"]), float(recipe.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    raise AvseBenchError(f"{where}: [recipe] optimizer {name!r} is not one of adam, rmsprop")


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: dict, where: Path):
    """`plateau` (ReduceLROnPlateau on the validation loss), `exponential` (ExponentialLR per epoch) or `none`."""
    name = recipe.get("schedule", "none").lower()
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=float(recipe.get("plateau_factor", 0.8)), patience=int(recipe.get("plateau_patience", 5)))
    if name == "exponential":
        if "gamma" not in recipe:
            raise AvseBenchError(f"{where}: [recipe] schedule 'exponential' needs gamma (the decay per epoch)")
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(recipe["gamma"]))
    if name == "none":
        return None
    raise AvseBenchError(f"{where}: [recipe] schedule {name!r} is not one of plateau, exponential, none")


def _schedule_step(scheduler, val_loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()


# --- data ---------------------------------------------------------------------------------------------------------
def with_targets(scenes: list) -> list:
    """The scenes that have a clean target to train or validate against: all of an AVSEC split; a Real-World
    split's remix items (its mix clips are real recordings without one). AvseBenchError when none has one."""
    kept = [s for s in scenes if s.target is not None]
    if not kept and scenes:
        raise AvseBenchError(f"no scene of split {scenes[0].split!r} has a clean target to train against")
    return kept


def build_loaders(system: System, data_root: Path, train_split: str, val_split: str, preprocessing, recipe: dict,
                  seed: int, d: Dist, options: LoaderOptions, device: torch.device, track: str | None = None):
    """The training loader (shuffled by a DistributedSampler, crops per (seed, epoch, index)) and the validation
    loader (fixed crops: epoch 0's), both over bounded frame sources, with the options' workers; items shaped for
    `system` (its channels and video padding)."""
    from avse_bench.data import AVSEDataset, load_split
    from avse_bench.data.dataset import EpochSampler

    crop = float(recipe["crop_seconds"])
    batch = int(recipe["batch_size"])
    frames = {**options.dataset_kwargs(), "video_uint8": True, "system": system,
              "video_offset": int(recipe.get("crop_video_offset", 0))}
    train_set = AVSEDataset(with_targets(load_split(data_root, train_split, track)), preprocessing,
                            crop_seconds=crop, seed=seed, **frames)
    # Validation on fixed crops (epoch 0's) of the same length, so that batches stack and val losses compare.
    val_set = AVSEDataset(with_targets(load_split(data_root, val_split, track)), preprocessing, crop_seconds=crop,
                          seed=seed, **frames)
    # One sampler for every case: with one replica it is a seeded shuffle that depends only on (seed, epoch).
    sampler = EpochSampler(DistributedSampler(train_set, num_replicas=d.world_size, rank=d.rank, shuffle=True,
                                              seed=seed, drop_last=True))
    train_loader = make_loader(train_set, options, device, seed, batch_size=batch, sampler=sampler, drop_last=True)
    val_loader = make_loader(val_set, options, device, seed, batch_size=batch)
    if len(train_loader) == 0:
        raise AvseBenchError(f"{data_root}/{train_split}: {len(train_set)} scenes give no full batch of {batch} "
                             f"on each of {d.world_size} process(es); use more scenes or a smaller batch")
    if len(val_set) == 0:
        raise AvseBenchError(f"{data_root}/{val_split}: no scenes to validate on")
    return train_set, train_loader, sampler, val_loader


def _to(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixture, video (float32 in [0, 1], converted from uint8 on the device) and target on `device`
    (non-blocking from pinned memory on CUDA)."""
    from avse_bench.data.dataset import video_to_float

    mixed, video, target = (batch[k].to(device, non_blocking=True) for k in ("mixed", "video", "target"))
    return mixed, video_to_float(video), target


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, device: torch.device, loss_fn=si_snr_loss) -> float:
    """Mean validation loss (`loss_fn`: the recipe's `val_loss`) per item over the whole validation set (every rank
    sees all of it: same figure)."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        mixed, video, target = _to(batch, device)
        total += loss_fn(model(mixed, video), target).item() * len(mixed)
        count += len(mixed)
    return total / count


# --- checkpoints ----------------------------------------------------------------------------------------------------
def atomic_save(obj, path: Path) -> None:
    """torch.save `obj` to `path` atomically. Saved through an open file, so the archive's inner folder is
    torch's fixed "archive" and not the temporary file's name (which holds the process id): the same tensors give
    the same bytes in every run."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    replace_atomically(path, write)


def _gather_rng(device: torch.device, d: Dist) -> list[dict]:
    state = rng_state(device)
    if d.world_size == 1:
        return [state]
    states: list = [None] * d.world_size
    dist.all_gather_object(states, state)
    return states


def _write_log(rows: list[dict], path: Path) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    replace_atomically(path, write)


def _load_checkpoint(path: Path, system: System, profile: str, recipe: dict, seed: int, preprocessing_hash: str
                     ) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        raise AvseBenchError(f"cannot read checkpoint {path}: {err}") from err
    expected = {"system": system.name, "profile": profile, "recipe": recipe, "seed": seed,
                "preprocessing_hash": preprocessing_hash}
    found = {k: ckpt.get(k) for k in expected}
    if found != expected:
        raise AvseBenchError(f"{path} belongs to another run ({found}); this one is {expected}: "
                             "use another --out or the same settings")
    return ckpt


# --- the loop -------------------------------------------------------------------------------------------------------
def train(system: str | System, data_root, out_dir, profile: str = "quick", resume: bool = False,
          device: str = "auto", seed: int = 0, train_split: str = "train", val_split: str = "dev",
          progress: bool = True, stop_after_epochs: int | None = None, loader: LoaderOptions | None = None,
          preprocessing=None, track: str | None = None) -> Path:
    """Train `system` on `data_root/train_split`, validating on `val_split`; returns the run folder.

    `loader`: DataLoader workers and frame budgets (default LoaderOptions(): half the cores, 256 MiB per process).
    `track`: of AVSEC-4 data, "mono" or "binaural" (which the system's channels must match; a binaural system is
    trained on 2-channel crops, its loss the mean over items and channels); None: the layout's default
    (`data.layout.resolve_track`).
    `preprocessing`: the run's shared Preprocessing, received from the caller (`compare` passes the run's, the CLI
    the system's declared one or the options'; `profiles.choose_preprocessing`); required: a training that
    re-derived it from the profile once trained on other frames than the run's manifest stated. The checkpoint
    records its hash, so a resume on other frames is refused.

    `stop_after_epochs` ends this call after that many epochs (checkpoint written, run left resumable): what a
    killed job looks like, used to test that resuming is exact.
    """
    system = (load(system) if isinstance(system, str) else system).for_profile(profile)
    recipe = system.recipe(profile)
    where = system.path / "system.toml"
    for key in ("lr", "batch_size", "epochs", "crop_seconds"):
        if key not in recipe:
            raise AvseBenchError(f"{where}: the recipe for profile {profile!r} lacks {key!r}")
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    d, dev = init_distributed(device)
    if d.main:
        writable_dir(out, "the training run", "choose another --out")
    if ckpt_path.exists() and not resume:
        raise AvseBenchError(f"{out} already holds a training run (checkpoint.pt): pass --resume to continue it, "
                             "or choose another --out")

    if preprocessing is None:
        raise AvseBenchError("train() needs the run's preprocessing (avse_bench.profiles.choose_preprocessing)")
    seed_everything(seed)
    model = system.build_model().to(dev)  # same initial weights on every rank
    seed_everything(seed + d.rank)  # per-rank dropout streams
    optimizer = build_optimizer(model.parameters(), recipe, where)
    scheduler = build_scheduler(optimizer, recipe, where)
    loss_fn, val_loss_fn = recipe_losses(recipe)  # the recipe's declared losses (nn.loss.LOSSES)
    loader = loader or LoaderOptions()
    train_set, train_loader, sampler, val_loader = build_loaders(
        system, Path(data_root), train_split, val_split, preprocessing, recipe, seed, d, loader, dev, track)
    steps_per_epoch = len(train_loader)
    total_steps = int(recipe["epochs"]) * steps_per_epoch
    if recipe.get("max_steps"):
        total_steps = min(total_steps, int(recipe["max_steps"]))
    epochs = math.ceil(total_steps / steps_per_epoch)

    epoch, step, rows, elapsed = 0, 0, [], 0.0
    if resume and ckpt_path.exists():
        ckpt = _load_checkpoint(ckpt_path, system, profile, recipe, seed, preprocessing.config_hash())
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        epoch, step, rows, elapsed = ckpt["epoch"], ckpt["step"], ckpt["log"], ckpt["elapsed"]
        rngs = ckpt["rng"]
        set_rng_state(rngs[d.rank] if len(rngs) == d.world_size else rngs[0], dev)
        if d.main:
            print(f"[train] {system.name}: resuming {out} after epoch {epoch} (step {step})")

    patience, keep = recipe.get("early_stop_patience"), recipe.get("keep", "last")
    best = ckpt.get("best") if resume and ckpt_path.exists() else None  # {"epoch", "val_loss", "model"}
    stopped = early_stop_epoch([r["val_loss"] for r in rows], patience)
    net = DistributedDataParallel(model) if d.world_size > 1 else model
    ran = 0
    while epoch < epochs and stopped is None and (stop_after_epochs is None or ran < stop_after_epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)  # the epoch reaches the dataset (in any worker) with each index
        net.train()
        losses = []
        bar = tqdm(train_loader, desc=f"{system.name} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not (progress and d.main))
        for batch in bar:
            if step >= total_steps:  # the last epoch of a `max_steps` run is partial
                break
            mixed, video, target = _to(batch, dev)
            loss = loss_fn(net(mixed, video), target)
            check_finite_loss(loss, system.name, step + 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.get("grad_clip"):  # max L2 norm of all gradients together (DPRNN's recipe uses 5)
                torch.nn.utils.clip_grad_norm_(net.parameters(), float(recipe["grad_clip"]))
            optimizer.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.2f}")
        (train_loss,) = _all_mean([float(np.mean(losses))], d, dev)
        val_loss = validate(model, val_loader, dev, val_loss_fn)
        lr = optimizer.param_groups[0]["lr"]
        _schedule_step(scheduler, val_loss)
        epoch, ran = epoch + 1, ran + 1
        seconds = time.perf_counter() - t0
        elapsed += seconds
        rows.append({"epoch": epoch, "steps": step, "train_loss": round(train_loss, 4),
                     "val_loss": round(val_loss, 4), "lr": lr, "epoch_seconds": round(seconds, 2)})
        if keep == "best" and (best is None or rows[-1]["val_loss"] < best["val_loss"]):
            best = {"epoch": epoch, "val_loss": rows[-1]["val_loss"],
                    "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        stopped = early_stop_epoch([r["val_loss"] for r in rows], patience)
        rngs = _gather_rng(dev, d)
        if d.main:
            atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else {},
                         "best": best,
                         "rng": rngs, "epoch": epoch, "step": step, "log": rows, "elapsed": elapsed,
                         "system": system.name, "profile": profile, "recipe": recipe, "seed": seed,
                         "preprocessing_hash": preprocessing.config_hash()}, ckpt_path)
            _write_log(rows, out / "train_log.csv")
            print(f"[train] {system.name} epoch {epoch}/{epochs}: step {step}, train loss {train_loss:.3f}, "
                  f"val loss {val_loss:.3f}, lr {lr:.3g}, {seconds:.1f} s", flush=True)

    if stopped is not None and d.main:
        print(f"[train] {system.name}: stopped early after epoch {stopped} (no lower validation loss in {patience} "
              "epochs)")
    if (epoch >= epochs or stopped is not None) and d.main:
        from avse_bench.profiling.hardware import hardware_info

        kept = best if keep == "best" and best is not None else None
        atomic_save(kept["model"] if kept else model.state_dict(), out / "model.pt")
        summary = {
            "system": system.name, "profile": profile, "recipe": recipe,
            "preprocessing": preprocessing.config(), "preprocessing_hash": preprocessing.config_hash(),
            "steps_per_epoch": steps_per_epoch, "total_steps": step, "epochs": epoch,
            "mean_epoch_seconds": whole_epoch_mean(rows, steps_per_epoch), "total_seconds": round(elapsed, 2),
            "hardware": hardware_info(),  # the machine that trained (item 9 reads it; the profile may be elsewhere)
            "device": str(dev), "world_size": d.world_size, "batch_size": int(recipe["batch_size"]),
            "seed": seed, "final_val_loss": rows[-1]["val_loss"],
            "early_stop": ({"epoch": stopped, "of": epochs, "patience": patience} if stopped is not None
                           else None),
            "kept": ({"epoch": kept["epoch"], "val_loss": kept["val_loss"], "which": "lowest validation loss"}
                     if kept else {"epoch": epoch, "val_loss": rows[-1]["val_loss"], "which": "last epoch"}),
            "train_scenes": len(train_set), "torch_threads": torch.get_num_threads(),
            "loader_workers": loader.n_workers, "frame_cache_mb": loader.frame_cache_mb,
            "frame_store": loader.frame_store,
            "data_root": str(data_root), "train_split": train_split, "val_split": val_split,
            "track": train_set.scenes[0].track,
        }
        write_json(out / "train_summary.json", summary)
        print(f"[train] {system.name}: {step} steps in {elapsed:.0f} s; final val loss {rows[-1]['val_loss']:.3f}; "
              f"weights in {out / 'model.pt'}")
    if d.world_size > 1:
        dist.barrier()
        if d.owns_group:
            dist.destroy_process_group()
    return out
