"""`rwavse_baseline`: the Real-World AVSE Challenge 2026 baseline, AV-ConvTasNet, exact to the parameter.

The network is `avse_bench.nn.av_convtasnet.AVConvTasNet` (read it there, top to bottom, with
shapes), with the official module names, so the organisers' `model.safetensors` loads as it is.

25,014,849 parameters (counted from the official code): the frozen visual encoder 11,186,688 (stem 15,872, trunk
11,170,816), trainable 13,828,161 (visual blocks 797,184; encoder, channel norm and bottleneck 76,800; 32 TCN blocks
12,746,816; fusion, mask and decoder 207,361).
"""

from avse_bench.nn.av_convtasnet import build_model

LIGHTNING_PREFIX = "audio_model."  # the official Lightning module holds the model under this name


def convert_state_dict(state: dict) -> dict:
    """A state dict of the official training's Lightning checkpoint (`audio_model.` keys) in the model's names; a
    plain one (model.safetensors, our own) unchanged."""
    if state and all(k.startswith(LIGHTNING_PREFIX) for k in state):
        return {k[len(LIGHTNING_PREFIX):]: v for k, v in state.items()}
    return state


__all__ = ["build_model", "convert_state_dict"]
