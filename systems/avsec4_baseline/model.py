"""`avsec4_baseline`: the official AVSEC-4 baseline, binaural (2 channels in, 2 out).

The network is `avse_bench.nn.avsec4.AVSEC4Baseline` (read it there, top to bottom, with shapes), shared with
`avsec4_baseline_mono`, which differs only in its encoder's input channels and its mask's outputs.

22,293,509 parameters (counted from the official code, cogmhear/avse_challenge baseline/avse4, with
`AVSE4BaselineModule(num_channels=2)`): visual front end 11,185,088 (3-D stem 15,808, ResNet 11,169,280); separator
11,108,421 (encoder 20,480; layer norm 512; bottleneck 65,536; 4 repeats of 2,256,912; five VisualConv1D blocks
1,328,645; 4 visual projections of 131,072; mask 131,072; decoder 10,240).
"""

from avse_bench.nn.avsec4 import build_model, convert_state_dict

__all__ = ["build_model", "convert_state_dict"]  # the system's entry points: the [model] table's `channels` picks
# the variant; official names are mapped onto ours (the encoder's weight tells a checkpoint's variant)
