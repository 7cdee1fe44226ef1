"""`avsec3_baseline`: the official AVSEC-3 baseline (a Keras 3 model) in PyTorch, exact to the parameter.

Read top to bottom: Keras's "same" padding and its inverse STFT (the two places where Keras and PyTorch compute
differently), the visual stream (a 3-D conv stem, a Keras ResNet-18 with its own 7x7 stem, a 16-block TCN whose output
is the sum of its blocks' skip outputs: one 512-d feature per lip frame), the complex-spectrum U-Net (the visual
features resized onto its bottleneck), and `AVSEC3Baseline`, which runs it on 40,800-sample chunks as the official
`utils.get_enhanced` does. Source: github.com/cogmhear/avse_challenge at 9a9db3d, baseline/avse3/{config,model,
dataset,utils,test}.py and model_utils/{nn,generic,visual}.py. Module names follow the Keras variable paths of its
`.weights.h5` (`layers/u_net/conv3/layers/conv2d_1/vars/0` is `u_net.conv3.conv2d_1.weight` here), so that
`keras_state_dict` maps the published `best_dev.weights.h5` onto this model one variable to one tensor.

75,954,626 trainable parameters, as Keras counts them for the official `AVSE()`: visual 36,603,392 (3-D stem 15,808,
ResNet-18 11,372,608, TCN 25,214,976), U-Net 39,351,234; plus 58,112 BatchNorm moving statistics (buffers here).
Tested module by module in tests/test_avsec3_baseline.py.

Layouts: Keras is channels-last, this code channels-first. Spectrogram (B, 2, F, 257): F STFT frames (time) on the
height axis, 257 bins on the width axis, as the official (B, F, 257, 2). Video (B, 1, T, 88, 88) grey lip crops in
[0, 1]. BatchNormalization as Keras's: epsilon 1e-3, momentum 0.99 (PyTorch's momentum 0.01).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

WIN, HOP, N_FFT = 400, 160, 512  # config.py: window_size, window_shift, stft_size
CHUNK, CHUNK_FRAMES = 40_800, 64  # config.py: max_audio_length, max_video_length (utils.get_enhanced)
KERAS_BN = {"eps": 1e-3, "momentum": 0.01}


# --- Keras's "same" padding (keras/src/backend/torch/nn.py `_compute_padding_length`) ------------------------------
def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis for Keras's padding="same": the output has ceil(size / stride) steps; the
    odd pixel goes at the end (as TensorFlow), where PyTorch's padding= would put it at both ends."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = effective - 1 if stride == 1 else max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernels, strides, dilations=None, mode: str = "constant") -> torch.Tensor:
    """x (B, C, *spatial) padded for a Keras "same" operation with these kernel sizes and strides per spatial axis
    (`mode` "replicate" for max pooling, as Keras's torch backend: the max is then that of the frame's own pixels)."""
    dilations = dilations or [1] * len(kernels)
    pads: list[int] = []
    for size, k, s, d in reversed(list(zip(x.shape[2:], kernels, strides, dilations, strict=True))):
        pads.extend(same_padding(size, k, s, d))
    return F.pad(x, pads, mode=mode) if any(pads) else x


class SameConv(nn.Module):
    """A convolution with Keras's padding="same" (`conv` holds the weights: Conv1d/2d/3d, no padding of its own)."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return c(pad_same(x, c.kernel_size, c.stride, c.dilation))


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = True) -> SameConv:
    return SameConv(nn.Conv2d(cin, cout, kernel, stride, bias=bias))


def bn(channels: int, dims: int = 2) -> nn.Module:
    return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](channels, **KERAS_BN)


# --- the inverse STFT of keras.ops.istft (keras/src/backend/torch/math.py) -----------------------------------------
def keras_istft(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """(B, F, 257) real and imaginary parts -> (B, 160 (F - 1)) samples, as keras.ops.istft(sequence_length 400,
    sequence_stride 160, fft_length 512, window "hann", center True) computes it when the window is shorter than the
    FFT: irfft, the Hann(400) window zero-padded to 512 and divided by the steady-state sum of its squares over the
    hops (one constant profile, also at the edges, where torch.istft divides by the true envelope), overlap-add, and
    256 samples cut at each end."""
    frames = torch.fft.irfft(torch.complex(real, imag), n=N_FFT)  # (B, F, 512)
    win = F.pad(torch.hann_window(WIN, periodic=True, dtype=frames.dtype, device=frames.device),
                ((N_FFT - WIN) // 2, N_FFT - WIN - (N_FFT - WIN) // 2))
    overlaps = -(-N_FFT // HOP)
    denom = F.pad(win.square(), (0, overlaps * HOP - N_FFT)).reshape(overlaps, HOP).sum(0).repeat(overlaps)
    frames = frames * (win / denom[:N_FFT])
    n = frames.shape[1]
    out = F.fold(frames.transpose(1, 2), output_size=(1, N_FFT + HOP * (n - 1)), kernel_size=(1, N_FFT),
                 stride=(1, HOP))  # overlap-add: (B, 1, 1, samples)
    return out[:, 0, 0, N_FFT // 2:-(N_FFT // 2)]


# --- visual: the 3-D stem, the Keras ResNet-18 (model_utils/visual.py), the TCN ------------------------------------
class Frontend3D(nn.Module):
    """(B, 1, T, 88, 88) -> (B, 64, T, 21, 21): Conv3D(64, (5, 7, 7), strides (1, 2, 2), same, no bias), BN, ReLU,
    MaxPool3D((1, 3, 3), strides (1, 2, 2), valid)."""

    def __init__(self):
        super().__init__()
        self.conv3d = SameConv(nn.Conv3d(1, 64, (5, 7, 7), (1, 2, 2), bias=False))
        self.batch_normalization = bn(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.relu(self.batch_normalization(self.conv3d(x))), (1, 3, 3), (1, 2, 2))


class ResnetBlock(nn.Module):
    """conv 3x3 (stride 2 when down-sampling) - BN - ReLU - conv 3x3 - BN, + the input (a 1x1 stride-2 conv + BN when
    down-sampling), ReLU. Every conv biased, Keras "same" padding."""

    def __init__(self, cin: int, cout: int, down_sample: bool = False):
        super().__init__()
        self.conv_1 = conv2d(cin, cout, 3, 2 if down_sample else 1)
        self.bn_1 = bn(cout)
        self.conv_2 = conv2d(cout, cout, 3)
        self.bn_2 = bn(cout)
        self.res_conv = conv2d(cin, cout, 1, 2) if down_sample else None
        self.res_bn = bn(cout) if down_sample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_2(self.conv_2(F.relu(self.bn_1(self.conv_1(x)))))
        res = x if self.res_conv is None else self.res_bn(self.res_conv(x))
        return F.relu(out + res)


class ResNet18(nn.Module):
    """(N, 64, 21, 21) -> (N, 512): its own 7x7 stride-2 stem (biased) + BN + ReLU + MaxPool2D(2, 2, same), eight
    blocks (64, 64, 128, 128, 256, 256, 512, 512), global average pooling."""

    def __init__(self):
        super().__init__()
        self.conv_1 = conv2d(64, 64, 7, 2)
        self.init_bn = bn(64)
        widths = [("res_1_1", 64, 64, False), ("res_1_2", 64, 64, False), ("res_2_1", 64, 128, True),
                  ("res_2_2", 128, 128, False), ("res_3_1", 128, 256, True), ("res_3_2", 256, 256, False),
                  ("res_4_1", 256, 512, True), ("res_4_2", 512, 512, False)]
        self.blocks = [name for name, *_ in widths]
        for name, cin, cout, down in widths:
            setattr(self, name, ResnetBlock(cin, cout, down))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.init_bn(self.conv_1(x)))
        x = F.max_pool2d(pad_same(x, (2, 2), (2, 2), mode="replicate"), 2, 2)
        for name in self.blocks:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


class ResidualBlock(nn.Module):
    """One TCN block (keras-tcn's): twice (Conv1D k = 3 with dilation d, same; BN; ReLU; SpatialDropout1D 0.2); the
    block's output x1 is its skip output; x1 + x (512 channels in and out: no matching conv), ReLU, goes on."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1D_0 = SameConv(nn.Conv1d(channels, channels, 3, dilation=dilation))
        self.bn_0 = bn(channels, 1)
        self.conv1D_1 = SameConv(nn.Conv1d(channels, channels, 3, dilation=dilation))
        self.bn_1 = bn(channels, 1)
        self.dropout = nn.Dropout1d(dropout)  # SpatialDropout1D: whole channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = self.dropout(F.relu(self.bn_0(self.conv1D_0(x))))
        x1 = self.dropout(F.relu(self.bn_1(self.conv1D_1(x1))))
        return F.relu(x + x1), x1


class TCN(nn.Module):
    """(B, 512, T) -> (B, 512, T): 16 blocks, dilations 1, 2, 4, 8 four times (`TCN(..., [3], 4, dilations=[1, 2, 4,
    8])`: nb_stacks = 4 passed positionally), the sum of the 16 skip outputs (use_skip_connections, the default)."""

    def __init__(self, channels: int = 512, stacks: int = 4, dilations=(1, 2, 4, 8), dropout: float = 0.2):
        super().__init__()
        self.count = stacks * len(dilations)
        for i in range(self.count):
            setattr(self, f"residual_block_{i}", ResidualBlock(channels, dilations[i % len(dilations)], dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = 0
        for i in range(self.count):
            x, skip = getattr(self, f"residual_block_{i}")(x)
            skips = skips + skip
        return skips


class VisualFeatNet(nn.Module):
    """(B, 1, T, 88, 88) -> (B, 512, 1, T): the official (B, 1, T, 512), channels first."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.frontend3D = Frontend3D()
        self.trunk = ResNet18()
        self.tcn = TCN(dropout=dropout)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b = video.shape[0]
        x = self.frontend3D(video)  # (B, 64, T, 21, 21)
        t = x.shape[2]
        x = self.trunk(x.transpose(1, 2).reshape(b * t, 64, *x.shape[3:]))  # (B T, 512)
        return self.tcn(x.view(b, t, 512).transpose(1, 2)).unsqueeze(2)  # (B, 512, 1, T)


# --- the U-Net (model.py UNet, model_utils/nn.py) ------------------------------------------------------------------
class UnetConv(nn.Module):
    """Conv2D 4x4 stride 2 (same, biased) + BN + LeakyReLU(0.2): the time and frequency axes halved."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv2d = conv2d(cin, cout, 4, 2)
        self.batch_normalization = bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.batch_normalization(self.conv2d(x)), 0.2)


class ConvBlock(nn.Module):
    """Twice (Conv2D 3x3 same, biased; BN; LeakyReLU(0.2))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv2d = conv2d(cin, cout, 3)
        self.batch_normalization = bn(cout)
        self.conv2d_1 = conv2d(cout, cout, 3)
        self.batch_normalization_1 = bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.batch_normalization(self.conv2d(x)), 0.2)
        return F.leaky_relu(self.batch_normalization_1(self.conv2d_1(x)), 0.2)


class UpConv(nn.Module):
    """UpSampling2D((2, 1)) (time doubled, nearest) + Conv2D 3x3 same, then BN + ReLU, or (`outermost`) a sigmoid
    and no BN: the official `up_conv(64, 512)` passes 512 as `outermost`, so its first up-convolution is this."""

    def __init__(self, cin: int, cout: int, outermost: bool = False):
        super().__init__()
        self.conv2d = conv2d(cin, cout, 3)
        self.batch_normalization = None if outermost else bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d(x.repeat_interleave(2, dim=2))
        return torch.sigmoid(x) if self.batch_normalization is None else F.relu(self.batch_normalization(x))


class UnetUpconv(nn.Module):
    """Conv2DTranspose 4x4 stride 2 (same: both axes doubled) + BN + ReLU(True), or (`outermost`) the transposed conv
    alone. Keras's `ReLU(True)` is ReLU(max_value=True): clipped at 1 (the official code meant PyTorch's inplace)."""

    def __init__(self, cin: int, cout: int, outermost: bool = False):
        super().__init__()
        self.conv2d_transpose = nn.ConvTranspose2d(cin, cout, 4, 2)
        self.batch_normalization = None if outermost else bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d_transpose(x)[:, :, 1:-1, 1:-1]  # (2h + 2, 2w + 2) -> Keras's "same" (2h, 2w)
        return x if self.batch_normalization is None else self.batch_normalization(x).clamp(0.0, 1.0)


class UNet(nn.Module):
    """noisy audio (B, 40800) and visual features (B, 512, 1, T) -> enhanced audio (B, 40800).

    STFT (Hann 400 zero-padded to 512, hop 160, centred, reflect) -> real and imaginary parts (B, 2, 256, 257) ->
    zero-padded to multiples of 32 (B, 2, 256, 288) -> two strided convs (64, 128: (64, 72)) -> six conv blocks
    (256, 512 x 5), each followed by MaxPool2D((2, 1)) over time: (B, 512, 1, 72) -> the visual features resized
    bilinearly onto that (1, 72) grid: the 64 video frames are laid along the frequency axis there, as the official
    code does (ops.image.resize of the (1, T) visual map to the bottleneck's (1, 72)) -> concatenated (1024) ->
    up-convolutions with skip connections back to (B, 2, 256, 288) -> sigmoid -> the padding cut -> a mask on the
    real and one on the imaginary part -> Keras's inverse STFT."""

    def __init__(self, filters: int = 64):
        super().__init__()
        f = filters
        self.conv1, self.conv2 = UnetConv(2, f), UnetConv(f, 2 * f)
        self.conv3 = ConvBlock(2 * f, 4 * f)
        for i, cin in zip(range(4, 9), (4 * f, 8 * f, 8 * f, 8 * f, 8 * f), strict=True):
            setattr(self, f"conv{i}", ConvBlock(cin, 8 * f))
        self.upconv1 = UpConv(16 * f, f, outermost=True)  # up_conv(self.filters, self.filters * 8), as coded
        self.upconv2 = UpConv(f + 8 * f, 8 * f)
        self.upconv3, self.upconv4 = UpConv(16 * f, 8 * f), UpConv(16 * f, 8 * f)
        self.upconv5, self.upconv6 = UpConv(16 * f, 4 * f), UpConv(8 * f, 2 * f)
        self.upconv7 = UnetUpconv(4 * f, f)
        self.upconv8 = UnetUpconv(2 * f, 2, outermost=True)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(WIN, periodic=True, dtype=audio.dtype, device=audio.device)
        spec = torch.stft(audio, N_FFT, HOP, WIN, window, center=True, pad_mode="reflect", return_complex=True)
        noisy = torch.stack((spec.real, spec.imag), 1).transpose(2, 3)  # (B, 2, F, 257)
        h, w = noisy.shape[2:]
        dh, dw = -h % 32, -w % 32
        x = F.pad(noisy, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))  # (B, 2, 256, 288)
        c1 = self.conv1(x)
        c2 = self.conv2(c1)
        skips, y = [], c2
        for i in range(3, 9):
            y = F.max_pool2d(getattr(self, f"conv{i}")(y), (2, 1))
            skips.append(y)  # c3 ... c8
        c3, c4, c5, c6, c7, c8 = skips
        v = F.interpolate(visual, size=c8.shape[2:], mode="bilinear", align_corners=False)  # (B, 512, 1, 72)
        u = self.upconv1(torch.cat((c8, v), 1))
        for up, skip in ((self.upconv2, c7), (self.upconv3, c6), (self.upconv4, c5), (self.upconv5, c4),
                         (self.upconv6, c3), (self.upconv7, c2), (self.upconv8, c1)):
            u = up(torch.cat((u, skip), 1))
        mask = torch.sigmoid(u)[:, :, dh // 2:dh // 2 + h, dw // 2:dw // 2 + w]  # (B, 2, F, 257)
        enhanced = mask * noisy
        return keras_istft(enhanced[:, 0], enhanced[:, 1])


class AVSEC3Baseline(nn.Module):
    """audio (B, L), video (B, 1, T, 88, 88) in [0, 1] -> enhanced (B, L).

    As `utils.get_enhanced`: the audio in 40,800-sample chunks (the last zero-padded), chunk k with video frames
    64 k to 64 k + 64 (zero frames past the video's end; 64 frames stand for 40,800 samples = 63.75 frames there, so
    the video runs 0.25 frame ahead per chunk, as in the official code), each chunk through the network, the outputs
    joined and cut to L. The peak normalisation of test.py is the `[inference] output = "peak"` rule."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.visual_feat_net = VisualFeatNet(dropout)
        self.u_net = UNet()

    def chunk(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """The official model on one chunk: (B, 40800), (B, 1, 64, 88, 88) -> (B, 40800)."""
        return self.u_net(audio, self.visual_feat_net(video))

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        length = audio.shape[-1]
        out = []
        for k in range(max(1, math.ceil(length / CHUNK))):
            a = audio[:, k * CHUNK:(k + 1) * CHUNK]
            v = video[:, :, k * CHUNK_FRAMES:(k + 1) * CHUNK_FRAMES]
            a = F.pad(a, (0, CHUNK - a.shape[-1]))
            v = F.pad(v, (0, 0, 0, 0, 0, CHUNK_FRAMES - v.shape[2]))
            out.append(self.chunk(a, v))
        return torch.cat(out, -1)[:, :length]


def build_model(config: dict) -> AVSEC3Baseline:
    """The AVSEC-3 baseline from `[model]` (dropout 0.2, the TCN's), with Keras's initialisers (`keras_init`)."""
    model = AVSEC3Baseline(float(config.get("dropout", 0.2)))
    keras_init(model)
    return model


HE_NORMAL = ("visual_feat_net.trunk.", "visual_feat_net.tcn.")  # model_utils/visual.py: kernel_initializer he_normal


def keras_init(model: nn.Module) -> None:
    """The official model's initialisers, in distribution (Keras's random stream is not PyTorch's): every kernel
    Glorot-uniform (Keras's default), except the ResNet's and the TCN's He-normal (Keras's: a normal truncated at 2
    standard deviations, std sqrt(2 / fan_in) / 0.87962566103423978); biases 0; BatchNorm weight 1, bias 0."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d):
            if name.startswith(HE_NORMAL):
                std = math.sqrt(2.0 / module.weight[0].numel()) / 0.87962566103423978  # fan_in = in x kernel
                nn.init.trunc_normal_(module.weight, 0.0, std, -2 * std, 2 * std)
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


# --- the official Keras weights (`best_dev.weights.h5`) in this model's names ---------------------------------------
KERAS_BN_VARS = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, moving_mean, moving_variance
BN_NAMES = ("batch_normalization", "bn_", "init_bn", "res_bn")


def _kernel(keras: torch.Tensor) -> torch.Tensor:
    """A Keras kernel (k..., in, out) -> PyTorch's (out, in, k...); Conv2DTranspose's (kh, kw, out, in) -> (in,
    out, kh, kw) by the same permutation."""
    n = keras.dim()
    return keras.permute(n - 1, n - 2, *range(n - 2)).contiguous()


def convert_state_dict(state: dict) -> dict:
    """A Keras 3 `.weights.h5` read as {variable path: array} (`avse_bench.weights`) -> this model's state dict; a
    state dict of ours is returned as it is.

    A path `layers/<a>/layers/<b>/.../vars/<i>` names module `a.b...` here (the `layers` groups of Keras's Sequentials
    dropped); a convolution's vars 0 and 1 are its kernel (transposed, `_kernel`) and bias, a BatchNormalization's 0-3
    gamma, beta, moving mean and variance. The TCN's BatchNormalizations are named by a global counter when the
    model is built (batch_normalization_21, ...: the number depends on the session that built it), so in each block
    the lower number is `bn_0` (after conv1D_0), the higher `bn_1`. Each BatchNorm gets num_batches_tracked = 0 (Keras
    keeps none; PyTorch uses it only when momentum is None)."""
    if not state or not all(k.startswith("layers/") for k in state):
        return state
    groups: dict[tuple[str, ...], dict[int, torch.Tensor]] = {}
    out: dict = {}
    for key, value in state.items():
        parts = key.split("/")
        if len(parts) < 3 or parts[-2] != "vars" or not parts[-1].isdigit():
            out[key] = value  # not a Keras variable: kept as it is, so that loading names it unexpected
            continue
        module = tuple(p for p in parts[:-2] if p != "layers")
        groups.setdefault(module, {})[int(parts[-1])] = value
    tcn_bn: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = {}
    for module in groups:
        if "tcn" in module and module[-1].startswith("batch_normalization"):
            suffix = module[-1].rsplit("_", 1)[-1]
            tcn_bn.setdefault(module[:-1], []).append((int(suffix) if suffix.isdigit() else 0, module))
    renamed = {m: m for m in groups}
    for block, found in tcn_bn.items():
        for i, (_, module) in enumerate(sorted(found)):
            renamed[module] = (*block, f"bn_{i}")
    for module, variables in groups.items():
        name = ".".join(renamed[module])
        if module[-1].startswith(BN_NAMES):
            for i, tensor in variables.items():
                out[f"{name}.{KERAS_BN_VARS[i] if i < len(KERAS_BN_VARS) else f'vars.{i}'}"] = tensor
            out[f"{name}.num_batches_tracked"] = torch.tensor(0)
        else:  # a convolution: SameConv keeps its weights in .conv, a transposed conv holds them itself
            prefix = name if module[-1].startswith("conv2d_transpose") else f"{name}.conv"
            for i, tensor in variables.items():  # 0 kernel, 1 bias; a missing one is named by the strict load
                label = {0: "weight", 1: "bias"}.get(i, f"vars.{i}")
                out[f"{prefix}.{label}"] = _kernel(tensor) if i == 0 and tensor.dim() >= 3 else tensor
    return out
