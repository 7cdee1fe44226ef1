"""The AVSEC-4 baseline network (cogmhear/avse_challenge, baseline/avse4: `model.py`, `utils.py`), module for module.

A Conv-TasNet separator (Luo and Mesgarani 2019: encoder Conv1d, a TCN of R repeats of X dilated depthwise blocks,
a mask, a linear decoder with overlap-add) over 1 (mono) or 2 (binaural) channels, each repeat fed the visual
stream: frames -> `VisualFrontend` (a 3-D conv + ResNet-18, the lip-reading front end of Afouras et al. 2018) ->
five depthwise `VisualConv1D` blocks -> per repeat a 1x1 conv to B channels, linearly upsampled x 32 (encoder
frames per video frame: 640 samples / hop 20) and concatenated with the audio features.

Read top to bottom: the visual front end, the separator's blocks, the separator, `AVSEC4Baseline` (what the
official Lightning module's forward does), then the official names (`official_names`). Shapes: B batch, C audio
channels, L samples, T video frames, N = 256 encoder filters, K = (L - 40) / 20 + 1 encoder frames, H = 512.

Construction order and every module's default initialisation follow the official code, so that the random stream
is consumed alike: with the same seed a fresh model here equals a fresh official one, tensor for tensor. The
separator's parameters with more than one dimension are then drawn from `xavier_normal_` (the official
`avse4_separator.__init__`; this includes the gLN gains and biases, shaped (1, H, 1)); the visual front end keeps
PyTorch's defaults, its BatchNorms with momentum 0.01 and eps 0.001.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

NORM_MEAN, NORM_STD = 0.4161, 0.1688  # the front end's input normalisation (official utils.py normMean, normStd)
GLN_EPS = 1e-8  # official model.py EPS
UPSAMPLE = 32  # encoder frames per video frame: 640 samples / (L / 2 = 20)


# --- visual front end (official utils.py) -----------------------------------------------------------------------
def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.01, eps=0.001)


class ResNetLayer(nn.Module):
    """Two basic blocks, the first with stride `stride` and a 1x1 downsample (which stride 1 never uses: its weights
    exist, as in the official code, and count). Batch norms sit after each residual sum (`outbna`, `outbnb`)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1a = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1a = _bn2d(cout)
        self.conv2a = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.stride = stride
        self.downsample = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.outbna = _bn2d(cout)
        self.conv1b = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn1b = _bn2d(cout)
        self.conv2b = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.outbnb = _bn2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv2a(F.relu(self.bn1a(self.conv1a(x))))
        a = a + (x if self.stride == 1 else self.downsample(x))
        b = self.conv2b(F.relu(self.bn1b(self.conv1b(F.relu(self.outbna(a))))))
        return F.relu(self.outbnb(b + a))


class ResNet(nn.Module):
    """(B*T, 64, 28, 28) -> (B*T, 512, 1, 1): four layers (64, 128, 256, 512; strides 1, 2, 2, 2), AvgPool2d(4)."""

    def __init__(self):
        super().__init__()
        self.layer1 = ResNetLayer(64, 64, stride=1)
        self.layer2 = ResNetLayer(64, 128, stride=2)
        self.layer3 = ResNetLayer(128, 256, stride=2)
        self.layer4 = ResNetLayer(256, 512, stride=2)
        self.avgpool = nn.AvgPool2d(kernel_size=4, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.layer4(self.layer3(self.layer2(self.layer1(x)))))


class VisualFrontend(nn.Module):
    """(B, 1, T, 112, 112) grey frames in [0, 1] -> (B, T, 512). Normalised by (x - 0.4161) / 0.1688 inside.

    Raises ValueError for frames whose ResNet map does not pool to 1 x 1 (112 px; the official reshape would
    silently turn the extra positions into extra frames)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(  # official `frontend3D`
            nn.Conv3d(1, 64, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64, momentum=0.01, eps=0.001),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.resnet = ResNet()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        batch = video.shape[0]
        x = self.stem((video - NORM_MEAN) / NORM_STD)  # (B, 64, T, 28, 28)
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T, 64, 28, 28)
        x = self.resnet(x)  # (B*T, 512, 1, 1)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"the AVSEC-4 visual front end needs 112 px frames (its ResNet map pools to 1 x 1); "
                             f"{video.shape[-1]} px frames pool to {tuple(x.shape[-2:])}")
        return x.reshape(batch, -1, 512)  # (B, T, 512)


# --- separator blocks (official model.py) -------------------------------------------------------------------------
class ChannelWiseLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of (B, N, K) at every frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GlobalLayerNorm(nn.Module):
    """gLN (Conv-TasNet): (B, N, K) normalised by the mean and variance over channels and frames together; gain
    and bias shaped (1, N, 1) (so the separator's xavier_normal_ draws them)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mean = y.mean(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        var = (y - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.gamma * (y - mean) / torch.sqrt(var + GLN_EPS) + self.beta


class TemporalBlock(nn.Module):
    """(B, Bc, K) -> (B, Bc, K), residual: 1x1 conv to H, PReLU, gLN, depthwise conv (P taps, `dilation`), PReLU,
    gLN, 1x1 conv back to Bc."""

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.expand = nn.Conv1d(channels, hidden, 1, bias=False)
        self.act1 = nn.PReLU()
        self.norm1 = GlobalLayerNorm(hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, padding=(kernel - 1) * dilation // 2, dilation=dilation,
                                   groups=hidden, bias=False)
        self.act2 = nn.PReLU()
        self.norm2 = GlobalLayerNorm(hidden)
        self.project = nn.Conv1d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(self.act1(self.expand(x)))  # (B, H, K)
        y = self.norm2(self.act2(self.depthwise(y)))
        return x + self.project(y)


class Repeat(nn.Module):
    """One of the R repeats: (B, 2 Bc, K) audio + visual -> 1x1 conv to Bc -> X temporal blocks (dilations 1, 2,
    ..., 2^(X-1))."""

    def __init__(self, channels: int, hidden: int, kernel: int, blocks: int):
        super().__init__()
        self.fuse = nn.Conv1d(2 * channels, channels, 1, bias=False)
        self.blocks = nn.Sequential(*[TemporalBlock(channels, hidden, kernel, 2 ** x) for x in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.fuse(x))


class VisualConv1D(nn.Module):
    """(B, 512, T) -> (B, 512, T), residual: ReLU, BatchNorm, depthwise conv (3 taps), PReLU, BatchNorm, 1x1 conv."""

    def __init__(self, channels: int = 512):
        super().__init__()
        self.norm1 = nn.BatchNorm1d(channels)
        self.depthwise = nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.act = nn.PReLU()
        self.norm2 = nn.BatchNorm1d(channels)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(self.norm2(self.act(self.depthwise(self.norm1(F.relu(x))))))


def overlap_and_add(frames: torch.Tensor, step: int) -> torch.Tensor:
    """(..., K, L) frames -> (..., (K - 1) * step + L): frame k added in at sample k * step (torch's `fold`; the
    official code's `overlap_and_add`, from Conv-TasNet, computes the same sum)."""
    *outer, k, length = frames.shape
    columns = frames.reshape(-1, k, length).transpose(1, 2)  # (M, L, K)
    out = F.fold(columns, output_size=(1, (k - 1) * step + length), kernel_size=(1, length), stride=(1, step))
    return out.reshape(*outer, -1)


class Separator(nn.Module):
    """The official `avse4_separator`: (B, C, L) mixture and (B, T, 512) visual features -> (B, C, L) estimate.

    Defaults are the official N=256, L=40, B=256, H=512, P=3, X=8, R=4 (its C=2 argument is unused there)."""

    def __init__(self, channels: int = 2, n: int = 256, length: int = 40, bottleneck: int = 256, hidden: int = 512,
                 kernel: int = 3, blocks: int = 8, repeats: int = 4, visual: int = 512, visual_blocks: int = 5):
        super().__init__()
        if n != bottleneck:  # the official mask reshape (batch, C, B, K) is (batch, C, N, K) only when B == N
            raise ValueError(f"the AVSEC-4 separator needs N == B (got N={n}, B={bottleneck})")
        self.channels, self.n, self.length = channels, n, length
        # construction order = the official one (encoder, TCN, decoder): the random stream is consumed alike
        self.encoder = nn.Conv1d(channels, n, length, stride=length // 2, bias=False)
        self.norm = ChannelWiseLayerNorm(n)
        self.bottleneck = nn.Conv1d(n, bottleneck, 1, bias=False)
        repeat = Repeat(bottleneck, hidden, kernel, blocks)  # built once and copied, as the official `_clones`
        self.repeats = nn.ModuleList([copy.deepcopy(repeat) for _ in range(repeats)])
        self.visual_blocks = nn.Sequential(*[VisualConv1D(visual) for _ in range(visual_blocks)])
        projection = nn.Conv1d(visual, bottleneck, 1, bias=False)
        self.visual_proj = nn.ModuleList([copy.deepcopy(projection) for _ in range(repeats)])
        self.mask = nn.Conv1d(bottleneck, n * channels, 1, bias=False)
        self.decoder = nn.Linear(n, length, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def forward(self, mixture: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        batch, samples = mixture.shape[0], mixture.shape[-1]
        w = F.relu(self.encoder(mixture))  # (B, N, K)
        v_all = self.visual_blocks(visual.transpose(1, 2))  # (B, 512, T)
        x = self.bottleneck(self.norm(w))  # (B, Bc, K)
        k = x.shape[-1]
        for projection, repeat in zip(self.visual_proj, self.repeats, strict=True):
            v = projection(v_all)  # (B, Bc, T)
            v = F.interpolate(v, UPSAMPLE * v.shape[-1], mode="linear")  # (B, Bc, 32 T)
            v = F.pad(v, (0, k - v.shape[-1]))  # cut or zero-padded to K
            x = repeat(torch.cat((x, v), dim=1))
        mask = F.relu(self.mask(x)).reshape(batch, self.channels, self.n, k)  # (B, C, N, K)
        frames = self.decoder((w.unsqueeze(1) * mask).transpose(2, 3))  # (B, C, K, L)
        out = overlap_and_add(frames, self.length // 2)  # (B, C, (K - 1) * 20 + 40)
        return F.pad(out, (0, samples - out.shape[-1]))  # (B, C, L)


class AVSEC4Baseline(nn.Module):
    """What the official `AVSE4BaselineModule.forward` computes: `separator(mixture, visual_frontend(video))`.

    mixture (B, C, L) with C = `channels` (a mono model also takes (B, L) and then returns (B, L)); video
    (B, 1, T, 112, 112) in [0, 1] -> estimate (B, C, L), not normalised (the official `enhance` divides the output
    by its peak: the system declares it, `[inference] output = "peak"`). Raises ValueError for a mixture with
    another number of channels."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.channels = channels
        self.separator = Separator(channels)  # official `model`, built first as there
        self.visual_frontend = VisualFrontend()

    def forward(self, mixture: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        mono_io = mixture.dim() == 2
        x = mixture.unsqueeze(1) if mono_io else mixture  # (B, C, L)
        if x.shape[1] != self.channels:
            raise ValueError(f"this model reads {self.channels} channel(s); the mixture has {x.shape[1]}")
        out = self.separator(x, self.visual_frontend(video))
        return out.squeeze(1) if mono_io else out


# --- the official names -------------------------------------------------------------------------------------------
_TEMPORAL_BLOCK = {"expand": "net.0", "act1": "net.1", "norm1": "net.2", "depthwise": "net.3.net.0",
                   "act2": "net.3.net.1", "norm2": "net.3.net.2", "project": "net.3.net.3"}
_VISUAL_BLOCK = {"norm1": "net.1", "depthwise": "net.2", "act": "net.3", "norm2": "net.4", "pointwise": "net.5"}


def official_name(name: str) -> str:
    """One state-dict key of `AVSEC4Baseline` -> the official Lightning checkpoint's key (`AVSE4BaselineModule`:
    the separator under `model.`, the front end under `visual_frontend.`). Raises KeyError for a name it does not
    know."""
    parts = name.split(".")
    head, rest = parts[0], parts[1:]
    if head == "visual_frontend":
        if rest[0] == "stem":
            return ".".join(["visual_frontend", "frontend3D", *rest[1:]])
        return name
    if head != "separator":
        raise KeyError(name)
    what, tail = rest[0], rest[1:]
    simple = {"encoder": "model.encoder.conv1d_U", "norm": "model.separator.layer_norm",
              "bottleneck": "model.separator.bottleneck_conv1x1", "mask": "model.separator.mask_conv1x1",
              "decoder": "model.decoder.basis_signals"}
    if what in simple:
        return ".".join([simple[what], *tail])
    if what == "visual_proj":  # visual_proj.r.weight
        return ".".join(["model.separator.ve_conv1x1", *tail])
    if what == "visual_blocks":  # visual_blocks.k.<module>.<param>
        k, module, *param = tail
        return ".".join(["model.separator.visual_conv", k, _VISUAL_BLOCK[module], *param])
    if what == "repeats":  # repeats.r.fuse.weight | repeats.r.blocks.x.<module>.<param>
        r, *sub = tail
        if sub[0] == "fuse":
            return ".".join(["model.separator.tcn", r, "0", *sub[1:]])
        x, module, *param = sub[1:]
        return ".".join(["model.separator.tcn", r, str(int(x) + 1), _TEMPORAL_BLOCK[module], *param])
    raise KeyError(name)


def official_names(model: nn.Module) -> dict[str, str]:
    """{our key: official key} for every entry of `model.state_dict()` (a bijection; tests check it)."""
    return {k: official_name(k) for k in model.state_dict()}


def convert_state_dict(state: dict) -> dict:
    """A state dict in the official names (recognised by its `model.encoder.conv1d_U.weight`, shaped (N, C, L): C
    tells the variant; a Lightning checkpoint's `state_dict`) mapped onto `AVSEC4Baseline(C)`'s names; one already
    in these names is returned as is. Keys the mapping does not know are kept under their own names, so that
    loading reports them."""
    encoder = state.get("model.encoder.conv1d_U.weight")
    if encoder is None or encoder.dim() != 3:
        return state
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # names only: no memory, no draw from the RNG
        model = AVSEC4Baseline(int(encoder.shape[1]))
    ours = {official: mine for mine, official in official_names(model).items()}
    return {ours.get(k, k): v for k, v in state.items()}


def build_model(config: dict) -> AVSEC4Baseline:
    """The systems' `build_model`: config is the [model] table of system.toml (`channels`: 2 binaural, 1 mono)."""
    return AVSEC4Baseline(channels=int(config["channels"]))
