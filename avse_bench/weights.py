"""Supplied weights: read a checkpoint an entrant trained elsewhere into a system's model, safely.

Formats read, all with `torch.load(weights_only=True)` (tensors and plain values only; never arbitrary objects):
- a plain state dict (keys with a DDP `module.` prefix too);
- avse-bench's own `model.pt` (a state dict) and `checkpoint.pt` (a dict whose `model` is the state dict);
- a PyTorch Lightning checkpoint, the format of the official AVSEC-2 baseline's training code (`trainer.fit` of
  `AVSEModule` in baseline/avse2 of github.com/cogmhear/avse_challenge): a dict with `state_dict` (keys prefixed
  `model.`), `epoch`, `global_step`, `pytorch-lightning_version` and `hyper_parameters`. Lightning's own
  `AttributeDict` (in `hyper_parameters`) is read as a plain dict. Other objects there (a Hydra `DictConfig`, an
  `argparse.Namespace`, a `pathlib.PosixPath`: what `save_hyperparameters` stores for Hydra and argparse users,
  the AVSEC-4 baseline's train.py among them; EasyDict, addict and a project's own dict subclasses) are never
  imported or run: each is replaced by a `Skipped` stand-in (a plain OrderedDict that takes the object's items and
  state as data) and named in the file's info (`skipped`) and in a note; the weights, plain tensors, load as they are.

- a `.safetensors` file (read with safetensors: tensors only, nothing to unpickle), or a folder as Hugging Face's
  `PyTorchModelHubMixin` writes it, `config.json` + `model.safetensors` (the Real-World AVSE baseline's published
  weights): the config's constructor arguments are checked against the system's `[model]` table, every argument
  they share and every one the config has must agree, or the folder is refused naming them.

- a Keras 3 weights file (`.weights.h5`, what `model.save_weights` writes: the AVSEC-3 baseline's published
  `best_dev.weights.h5`), read with h5py as arrays only (HDF5 datasets: nothing is imported or run, no Keras needed):
  a flat dict from each variable's path in the file (`layers/u_net/conv1/layers/conv2d/vars/0`) to its tensor, which
  the system's `convert_state_dict` maps onto its own names and layouts.

Names: a system whose published code names its modules otherwise declares the mapping in its own `model.py`
(`convert_state_dict(state) -> state`, e.g. the baseline maps the official module names onto its own); the harness
knows no system's names.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from avse_bench.errors import AvseBenchError

LIGHTNING_ATTRIBUTE_DICTS = ("pytorch_lightning.utilities.parsing.AttributeDict",
                             "lightning_fabric.utilities.data.AttributeDict",
                             "lightning.fabric.utilities.data.AttributeDict")
_SHOWN = 3  # entries listed per kind of mismatch


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_digest(path: Path) -> str:
    """sha256 of the tensors of a state dict file (each entry's name, dtype, shape and bytes, in name order): the
    identity of the weights, whatever the file's serialisation around them (torch.save's archive names, pickle
    protocol). Stage keys use it, so identical weights give identical keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class Skipped:
    """The placeholder for a class a checkpoint names but we never import or run (a Hydra `DictConfig`, an
    `argparse.Namespace`, a `pathlib.PosixPath`, a dict subclass such as EasyDict or addict's Dict, a project's own
    config class in Lightning's `hyper_parameters`). Building one, as pickle does (NEWOBJ or REDUCE), calls nothing
    of the class and gives a plain `collections.OrderedDict`: the one type torch's weights-only unpickler lets take
    both what pickle gives a dict subclass (its items, SETITEMS) and an object's state (BUILD, laid into its
    attributes as data). Constructor arguments are dropped. `name` is the global it replaced."""

    name = "?"

    def __new__(cls, *args, **kwargs):
        return OrderedDict()


def _stand_in(name: str) -> type:
    return type(f"Skipped[{name}]", (Skipped,), {"name": name})


def _refused(path: Path, err: Exception) -> AvseBenchError:
    text = str(err)
    found = (re.search(r"(unsupported GLOBAL \S+ whose module \S+ is blocked)", text)
             or re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global by default|\n|$)", text))
    reason = found[1].strip() if found else type(err).__name__
    return AvseBenchError(f"{path}: cannot be read safely ({reason}); state dicts, avse-bench checkpoints and "
                          "PyTorch Lightning checkpoints are read, arbitrary pickled objects never")


def _load(path: Path) -> tuple[object, list[str]]:
    """(the file's object, the globals it named that were skipped). Read with torch.load(weights_only=True):
    tensors and plain values only, never code from the file. A global outside that set (the objects Lightning puts
    in `hyper_parameters` for Hydra or argparse users: torch.serialization.get_unsafe_globals_in_checkpoint lists
    them) is not imported: it is replaced by a `Skipped` stand-in, so that the file's tensors still load and what
    was skipped is named."""
    allowed = [(dict, name) for name in LIGHTNING_ATTRIBUTE_DICTS]  # Lightning's dict subclass, read as a dict
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True), []
    except pickle.UnpicklingError as err:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # not a zip checkpoint (the legacy format): its globals cannot be listed beforehand
            raise _refused(path, err) from err
        if not unsafe:
            raise _refused(path, err) from err
        stand_ins = [(_stand_in(name), name) for name in unsafe]
        try:
            with torch.serialization.safe_globals(allowed + stand_ins):
                return torch.load(path, map_location="cpu", weights_only=True), sorted(unsafe)
        except Exception as again:
            raise _refused(path, again) from again
    except Exception as err:  # a truncated file, not a torch file at all, ...
        raise AvseBenchError(f"cannot read weights {path}: {type(err).__name__}: {err}") from err


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip(state: dict, prefix: str) -> dict:
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


HUB_CONFIG, HUB_WEIGHTS = "config.json", "model.safetensors"  # PyTorchModelHubMixin's file names


def _check_hub_config(system, config_path: Path) -> None:
    """AvseBenchError naming every constructor argument of a hub folder's config.json that the system's `[model]`
    table lacks or gives another value (a model of another configuration would not load, or load wrongly)."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read {config_path}: {err}") from None
    if not isinstance(config, dict):
        raise AvseBenchError(f"{config_path}: not a table of constructor arguments")
    model = system.config.get("model", {})
    wrong = [f"{k} = {v!r}, the system's [model] {model[k]!r}" if k in model else f"{k} = {v!r}, which the "
             f"system's [model] does not have" for k, v in config.items() if model.get(k, object()) != v]
    if wrong:
        raise AvseBenchError(f"{config_path} says {'; '.join(wrong)}: these weights are of another configuration "
                             f"than system {system.name}'s ({system.path / 'system.toml'})")


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read weights {path}: {err}") from None


def _read_keras_h5(path: Path) -> dict:
    """{variable path: tensor} of every HDF5 dataset in a Keras 3 `.weights.h5` file (groups walked, arrays copied;
    attributes and anything that is not a numeric array are ignored). AvseBenchError for a file h5py cannot open."""
    import h5py
    import numpy as np

    state: dict = {}

    def keep(name: str, item) -> None:
        if isinstance(item, h5py.Dataset) and item.dtype.kind in "fiub":
            state[name] = torch.from_numpy(np.array(item))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(keep)
    except (OSError, ValueError) as err:
        raise AvseBenchError(f"cannot read weights {path}: not an HDF5 file h5py can open ({err})") from None
    if not state:
        raise AvseBenchError(f"{path}: an HDF5 file without weight arrays (a Keras 3 .weights.h5 holds them under "
                             "layers/.../vars/N)")
    return state


def read_weights(system, path) -> tuple[dict, dict]:
    """(state dict in the system's own module names, info {file, sha256, format}) for the weights file `path`, a
    hub folder (config.json + model.safetensors) or a Keras 3 `.weights.h5`. Raises AvseBenchError for a missing,
    unreadable, unsafe or unrecognised file, and for a hub config that disagrees with the system's `[model]`."""
    path = Path(path)
    if path.is_dir():
        if not (path / HUB_WEIGHTS).is_file():
            raise AvseBenchError(f"weights folder {path} holds no {HUB_WEIGHTS} (a Hugging Face model folder: "
                                 f"{HUB_CONFIG} + {HUB_WEIGHTS})")
        if (path / HUB_CONFIG).is_file():
            _check_hub_config(system, path / HUB_CONFIG)
        state = system.convert_state_dict(_read_safetensors(path / HUB_WEIGHTS))
        weights = path / HUB_WEIGHTS
        return state, {"file": str(weights.resolve()), "name": f"{path.name}/{HUB_WEIGHTS}",
                       "sha256": sha256_of(weights), "format": "safetensors (Hugging Face model folder)"}
    if not path.is_file():
        raise AvseBenchError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        state = system.convert_state_dict(_read_safetensors(path))
        return state, {"file": str(path.resolve()), "name": path.name, "sha256": sha256_of(path),
                       "format": "safetensors"}
    if path.suffix in (".h5", ".hdf5"):
        state = system.convert_state_dict(_read_keras_h5(path))
        return state, {"file": str(path.resolve()), "name": path.name, "sha256": sha256_of(path),
                       "format": "Keras 3 weights (HDF5)"}
    obj, skipped = _load(path)
    if isinstance(obj, dict) and _is_state_dict(obj.get("state_dict")):
        fmt, state = "PyTorch Lightning checkpoint", _strip(obj["state_dict"], "model.")
    elif isinstance(obj, dict) and _is_state_dict(obj.get("model")):
        fmt, state = "avse-bench checkpoint", obj["model"]
    elif _is_state_dict(obj):
        fmt, state = "state dict", _strip(obj, "module.")
    else:
        unread = f" (objects of {', '.join(skipped)} were not read)" if skipped else ""
        raise AvseBenchError(f"{path}: no weights found: not a state dict of tensors, an avse-bench checkpoint "
                             f"(with 'model') or a PyTorch Lightning checkpoint (with 'state_dict'){unread}")
    state = system.convert_state_dict(dict(state))
    info = {"file": str(path.resolve()), "name": path.name, "sha256": sha256_of(path), "format": fmt}
    if skipped:
        info["skipped"] = skipped
        print(f"avse-bench: note: {path.name}: read its weights; objects outside them that would need their "
              f"classes imported were skipped, not run: {', '.join(skipped)}", file=sys.stderr)
    return state, info


def load_weights(model: nn.Module, state: dict, path) -> nn.Module:
    """`model` with `state` loaded; AvseBenchError listing the first missing, unexpected and mis-shaped entries when
    the names or shapes do not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{label} {len(items)}: {', '.join(items[:_SHOWN])}{' ...' if len(items) > _SHOWN else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes))
                 if items]
        raise AvseBenchError(f"{path} does not fit this system's model: " + "; ".join(parts))
    model.load_state_dict(state)
    return model


def model_with_weights(system, path) -> tuple[nn.Module, dict]:
    """A fresh model of `system` with the weights file `path` loaded (`read_weights` then `load_weights`), and the
    file's info {file, name, sha256, format}. Raises AvseBenchError as those do."""
    state, info = read_weights(system, path)
    return load_weights(system.build_model(), state, path), info
