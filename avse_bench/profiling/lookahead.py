"""Algorithmic latency, measured: how far ahead in time a system's output depends on its input (its look-ahead).

Method (no harness in the field measures this; entrants state it by hand): run the model on a reference input,
then again with the input changed from time t on (audio: samples >= t replaced by other noise; video: frames whose
interval starts at or after t replaced by other frames), and find the earliest output sample that changed. If it lies
before t, the output at that time depends on input up to (t - earliest) later: that is the look-ahead. Repeated
for several t (a quarter, half and three quarters of the input) and the largest is reported. A model whose output
changes from its first sample for every t depends on the whole utterance: its look-ahead is reported as "whole
utterance", with the largest measured figure (t itself). A model whose output never changes before t is causal
(look-ahead 0 ms). An output sample "changed" when it differs by more than `rtol` times the output's peak
(round-off of a changed computation path is not a dependence).
"""

from __future__ import annotations

import torch

from avse_bench.data.preprocessing import AUDIO_RATE, SAMPLES_PER_FRAME
from avse_bench.profiling.reference import Reference

CUT_FRACTIONS = (0.25, 0.5, 0.75)
RTOL = 1e-6
WHOLE = "whole utterance"  # as avse_bench.fmt.describe_lookahead writes it


def _earliest_change(a: torch.Tensor, b: torch.Tensor, rtol: float) -> int | None:
    """Index of the first sample where outputs a and b ((L,) or (channels, L)) differ by more than rtol * peak in
    any channel; None if nowhere."""
    tol = rtol * max(float(a.abs().max()), 1e-12)
    changed = torch.nonzero(((a - b).abs() > tol).reshape(-1, a.shape[-1]).any(dim=0))
    return int(changed[0, 0]) if len(changed) else None


@torch.no_grad()
def measure_lookahead(model, ref: Reference, device: str | torch.device = "cpu",
                      cuts: tuple[float, ...] = CUT_FRACTIONS, rtol: float = RTOL) -> dict:
    """{"audio": stream result, "video": stream result, "causal": bool, "method": str}, where a stream result is
    {"lookahead_ms": float (the largest over the cuts), "whole_utterance": bool, "per_cut_ms": {t_ms: ms or None}}
    (None: the perturbation changed nothing, not even after t). `model(audio (1, L), video (1, 1, T, H, W)) -> (1, L)`
    in eval mode (binaural: (1, 2, L) in and out); `ref` is the reference input (avse_bench.profiling.reference)."""
    model = model.eval()
    seconds = ref.seconds
    audio, video = ref.tensors(1, device, seed=0)
    other_audio, other_video = ref.tensors(1, device, seed=1)
    base = model(audio, video)[0].float().cpu()  # (L,) or (2, L)
    length = audio.shape[-1]
    result = {}
    for stream in ("audio", "video"):
        per_cut, whole = {}, True
        for fraction in cuts:
            frame = int(fraction * video.shape[2])
            t = frame * SAMPLES_PER_FRAME  # a frame boundary: the same time for both streams
            if stream == "audio":
                changed_audio = torch.cat([audio[..., :t], other_audio[..., t:]], dim=-1)
                out = model(changed_audio, video)
            else:
                changed_video = torch.cat([video[:, :, :frame], other_video[:, :, frame:]], dim=2)
                out = model(audio, changed_video)
            first = _earliest_change(base, out[0].float().cpu(), rtol)
            t_ms = round(1e3 * t / AUDIO_RATE, 3)
            per_cut[t_ms] = None if first is None else round(1e3 * max(t - first, 0) / AUDIO_RATE, 3)
            whole = whole and first == 0 and t > 0
        measured = [v for v in per_cut.values() if v is not None]
        result[stream] = {"lookahead_ms": max(measured) if measured else 0.0, "whole_utterance": whole,
                          "per_cut_ms": per_cut}
    result["causal"] = all(result[s]["lookahead_ms"] == 0.0 for s in ("audio", "video"))
    result["reference"] = {"seconds": seconds, "size": ref.size, "samples": length, "channels": ref.channels}
    result["method"] = (f"input changed from t on (t at {', '.join(f'{c:g}' for c in cuts)} of {seconds:g} s, on "
                        f"video-frame boundaries), audio and video separately; look-ahead = t minus the earliest "
                        f"output sample that changed by more than {rtol:g} x the output's peak, largest over t; "
                        f"'{WHOLE}' when every cut changed the first output sample")
    return result
