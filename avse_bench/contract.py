"""The model call contract, checked where the harness meets a system's model (docs/ADDING_A_SYSTEM.md).

`model(audio, video)`: audio float32 (B, L) for a mono system, (B, 2, L) for a binaural one (`[model] channels`), 16
kHz; video float32 (B, C, T, H, W) in [0, 1] (C = 1 grey, 3 RGB for `[preprocessing] color = "rgb"`), or (x - mean)
/ std where the system's `[preprocessing]` declares `mean` and `std` (`FrameNormalisation`, a forward pre-hook: the
shared frames stay the run's). It must return one float tensor of exactly the audio's shape: the same batch,
channels and L samples. `OutputCheck` is registered as a forward hook on every model `System.build_model()` makes,
so training, enhancement, profiling and `system check` all see the same check, and a model that returns something
else (a tuple, another channel count, a length off by a few samples, an integer dtype) is named in one line with
what it returned, instead of a traceback from the loss or a file of the wrong shape.
A hook leaves the state dict as it is (no wrapper module, no key prefix).
"""

from __future__ import annotations

import torch

from avse_bench.errors import AvseBenchError

CONTRACT = "docs/ADDING_A_SYSTEM.md, the model call contract"


def describe(value) -> str:
    """What a forward returned, in a few words: a tensor's shape and dtype, or the type (and a tuple's parts)."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(describe(v) for v in value[:3])})"
    return f"a {type(value).__name__}"


def expected_shape(audio: torch.Tensor) -> tuple[int, ...]:
    """The output shape the contract asks for: the audio input's, (B, L) or (B, 2, L)."""
    return tuple(audio.shape)


class FrameNormalisation:
    """Forward pre-hook: the video argument (B, C, T, H, W) in [0, 1] becomes (video - mean) / std before the
    model sees it, as a published recipe normalises its frames (the Real-World AVSE baseline: mean 0.421, std
    0.165). A hook, not a wrapper module: the state dict keeps the system's own key names. Picklable."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)

    def __call__(self, module, inputs):
        if len(inputs) < 2 or not isinstance(inputs[1], torch.Tensor):
            return None
        return (inputs[0], (inputs[1] - self.mean) / self.std, *inputs[2:])


class OutputCheck:
    """Forward hook: AvseBenchError naming `system` unless the output is a floating-point tensor of the audio
    input's shape. Picklable (a plain object), so a model with it can be copied or sent to a process."""

    def __init__(self, system: str, channels: int):
        self.system, self.channels = system, channels

    def __call__(self, module, inputs, output):
        audio = inputs[0] if inputs else None
        if not isinstance(audio, torch.Tensor):
            return None
        want = expected_shape(audio)
        layout = "(B, L)" if self.channels == 1 else "(B, 2, L)"
        if not isinstance(output, torch.Tensor) or not output.is_floating_point() or tuple(output.shape) != want:
            raise AvseBenchError(f"system {self.system}: its model returned {describe(output)} for audio of shape "
                                 f"{tuple(audio.shape)}; the harness needs one float tensor {layout} = {want}, "
                                 f"exactly as long as the input ({CONTRACT})")
        return None


def check_finite_loss(loss: torch.Tensor, system: str, step: int) -> None:
    """AvseBenchError naming the system and the step when a training loss is NaN or infinite (the model's output
    or its gradients went non-finite): training on would only spread NaN through the weights."""
    if not torch.isfinite(loss).all():
        raise AvseBenchError(f"system {system}: the training loss is {loss.item()} at step {step} (the model's "
                             "output is not finite); the checkpoint of the last epoch is kept: lower the learning "
                             "rate or set [recipe] grad_clip, then resume")
