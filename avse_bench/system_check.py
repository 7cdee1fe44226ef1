"""`avse-bench system new NAME` (a template system folder that runs) and `avse-bench system check NAME` (does a
system keep the call contract, docs/ADDING_A_SYSTEM.md, before any training?).

`check` loads the system (its system.toml against `system_schema`, its model.py as a package), builds the model,
and runs it as the harness will: forward and backward in training mode on a crop of the smoke profile's length,
forward in eval mode under no_grad on odd lengths (whole utterances are any length) with as many video frames as
cover the audio and with one more, checking the output's shape, dtype and finiteness (`contract.OutputCheck` does
the shape), that eval mode is deterministic, and that the loss reaches the trainable parameters. It prints what
the harness will feed the model, per profile, and each check's outcome; the exit status is 1 when one fails.
"""

from __future__ import annotations

import math
from pathlib import Path

from avse_bench.errors import AvseBenchError

TEMPLATE_MODEL = '''"""{name}: a template audio-visual masker made by `avse-bench system new` (edit it; keep the
call contract).

model(audio (B, L) float32 at 16 kHz, video (B, 1, T, H, W) float32 in [0, 1]) -> (B, L): exactly as long as the
audio (docs/ADDING_A_SYSTEM.md, "The model call contract"). Other modules of this folder import relatively.
"""

import torch
from torch import nn


class TemplateAVMasker(nn.Module):
    def __init__(self, features: int = 64, kernel: int = 40, stride: int = 20):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.encoder = nn.Conv1d(1, features, kernel, stride=stride, bias=False)  # (B, 1, L) -> (B, C, N)
        self.lips = nn.Sequential(nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fuse = nn.Conv1d(features + 16, features, 1)
        self.decoder = nn.ConvTranspose1d(features, 1, kernel, stride=stride, bias=False)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        batch, length = audio.shape
        pad = (-(length - self.kernel)) % self.stride if length > self.kernel else self.kernel - length
        x = self.encoder(nn.functional.pad(audio, (0, pad))[:, None])  # (B, C, N)
        frames = video.shape[2]
        lips = self.lips(video.transpose(1, 2).reshape(batch * frames, 1, *video.shape[3:]))  # (B T, 16, 1, 1)
        lips = lips.reshape(batch, frames, 16).transpose(1, 2)  # (B, 16, T)
        lips = nn.functional.interpolate(lips, size=x.shape[-1], mode="nearest")  # (B, 16, N)
        mask = torch.sigmoid(self.fuse(torch.cat([x, lips], dim=1)))  # (B, C, N)
        return self.decoder(x * mask)[:, 0, :length]  # (B, L)


def build_model(config: dict) -> nn.Module:
    return TemplateAVMasker(**config)
'''

TEMPLATE_TOML = '''[system]
name = "{name}"
title = "{name} (template)"
description = "A template audio-visual masker made by avse-bench system new."
source = "avse-bench system new"
initialisation = "PyTorch's defaults"

[model]           # build_model's arguments (`channels`, if given, is the harness's: 1 mono, 2 binaural)
features = 64
kernel = 40
stride = 20

[recipe]          # the published recipe: the `paper` profile
optimizer = "adam"
lr = 1e-3
schedule = "plateau"
plateau_factor = 0.5
plateau_patience = 3
batch_size = 8
epochs = 50
crop_seconds = 3.0

[profiles.quick]  # minutes on a 2-core CPU
batch_size = 4
crop_seconds = 1.0
max_steps = 100
epochs = 4

[profiles.smoke]  # seconds, for a first try
batch_size = 2
crop_seconds = 0.5
max_steps = 4
epochs = 2

[profiles.smoke.model]  # a smaller model for the smoke profile only (the sheet says so)
features = 16

[sheet]           # the published sheet's own values, shown beside the measured ones
'''


def new_system(name: str, folder: Path) -> Path:
    """Write the template system `name` into `folder/name/` (model.py, system.toml); returns that folder.
    AvseBenchError when the name is not an identifier or the folder exists."""
    if not name.isidentifier():
        raise AvseBenchError(f"system new {name!r}: a system name is a Python identifier (letters, digits, _)")
    target = Path(folder) / name
    if target.exists():
        raise AvseBenchError(f"{target} exists already: choose another name or --dir")
    target.mkdir(parents=True)
    (target / "model.py").write_text(TEMPLATE_MODEL.replace("{name}", name))
    (target / "system.toml").write_text(TEMPLATE_TOML.replace("{name}", name))
    return target


def _feed(system, profile: str) -> str:
    """What the harness gives the model under `profile`, in words and seconds."""
    from avse_bench.profiles import choose_preprocessing

    pre, rule = choose_preprocessing([system], profile)
    recipe = system.recipe(profile)
    frames = round(float(recipe["crop_seconds"]) * 25)
    audio = "(B, L)" if system.channels == 1 else "(B, 2, L)"
    norm = system.frame_normalisation()
    scale = "in [0, 1]" if norm is None else f"(x - {norm[0]:g}) / {norm[1]:g} of x in [0, 1]"
    return (f"{profile}: training crops of {frames} frames = {frames / 25:g} s = {frames * 640} samples, batch "
            f"{recipe['batch_size']}: audio {audio} float32 at 16 kHz, video (B, {pre.channels}, {frames}, {pre.size}, "
            f"{pre.size}) float32 {scale} ({pre.color}, {'equalised' if pre.equalize else 'not equalised'}, crop "
            f"{pre.crop}; {rule})")


def check_system(name: str) -> int:
    """Run the checks of the module docstring on system `name`, printing each; returns 0 when all pass, else 1.
    AvseBenchError (one line) when the system does not load or its model cannot be built."""
    import torch

    from avse_bench.systems import load

    base = load(name)
    system = base.for_profile("smoke")
    print(f"system {name}: {base.path}")
    for profile in ("smoke", "quick", "paper"):
        if profile == "paper" or profile in base.config.get("profiles", {}):
            print("  feeds " + _feed(base.for_profile(profile), profile))
    torch.manual_seed(0)
    model = system.build_model()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    print(f"  parameters (smoke profile's model): {trainable:,} trainable, {frozen:,} frozen")
    from avse_bench.profiles import choose_preprocessing

    pre = choose_preprocessing([system], "smoke")[0]  # the frames the smoke profile gives it
    size, colours = pre.size, pre.channels
    shape = (lambda b, n: (b, n)) if system.channels == 1 else (lambda b, n: (b, 2, n))
    failures = []

    def check(what: str, fn) -> None:
        try:
            fn()
        except (AvseBenchError, AssertionError) as err:
            failures.append(f"{what}: {err}")
            print(f"  FAIL {what}: {err}")
            return
        except Exception as err:  # the system's own code
            failures.append(f"{what}: {type(err).__name__}: {err}")
            print(f"  FAIL {what}: {type(err).__name__}: {err}")
            return
        print(f"  ok   {what}")

    def train_step():
        frames = round(float(system.recipe("smoke")["crop_seconds"]) * 25)
        model.train()
        out = model(torch.randn(*shape(2, frames * 640)), torch.rand(2, colours, frames, size, size))
        assert out.dtype == torch.float32, f"returned {out.dtype}, not float32"
        out.square().mean().backward()
        reached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None]
        assert reached or not trainable, "the loss reaches no trainable parameter"

    def eval_calls(samples: int, extra_frames: int):
        frames = math.ceil(samples / 640) + extra_frames
        model.eval()
        audio, video = torch.randn(*shape(1, samples)), torch.rand(1, colours, frames, size, size)
        with torch.no_grad():
            first, second = model(audio, video), model(audio, video)
        assert torch.isfinite(first).all(), "the output holds NaN or inf"
        assert torch.equal(first, second), "two calls in eval mode on the same input differ"

    check("forward and backward in training mode (a smoke-profile crop, batch 2)", train_step)
    for samples in (16_000, 16_487, 8_001):
        for extra in (0, 1):
            what = (f"eval, no_grad, {samples} samples with {math.ceil(samples / 640) + extra} frames"
                    f"{' (one more than the audio covers)' if extra else ''}")
            check(what, lambda s=samples, e=extra: eval_calls(s, e))
    print(f"system {name}: {'all checks passed' if not failures else f'{len(failures)} check(s) failed'}")
    return 1 if failures else 0
