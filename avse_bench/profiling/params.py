"""Parameter counts and their size at fp32, in both MB conventions so that nobody has to guess which was meant."""

from __future__ import annotations

from torch import nn

BYTES_FP32 = 4

SIZE_NOTE = ("size of all parameters at 4 bytes each (fp32), buffers such as BatchNorm statistics excluded; "
             "size_mb uses MB = 1e6 bytes, size_mib uses MiB = 2**20 bytes (what torchsummary prints as 'MB')")


def parameter_count(model: nn.Module) -> dict:
    """params_total, params_trainable (requires_grad), size_mb (1e6 B) and size_mib (2**20 B) at fp32."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable,
            "size_mb": round(total * BYTES_FP32 / 1e6, 3), "size_mib": round(total * BYTES_FP32 / 2**20, 3),
            "size_note": SIZE_NOTE, "params_by_module": params_by_module(model)}


def params_by_module(model: nn.Module) -> dict[str, dict[str, int]]:
    """{top-level module name: {"trainable", "frozen"}} parameter counts (a published model's "3.1 M" usually
    means its trainable part; a frozen lip encoder is counted apart); parameters held by the model itself, not by a
    child module, under "(own)"."""
    out: dict[str, dict[str, int]] = {}
    for name, p in model.named_parameters():
        top = name.split(".", 1)[0] if "." in name else "(own)"
        entry = out.setdefault(top, {"trainable": 0, "frozen": 0})
        entry["trainable" if p.requires_grad else "frozen"] += p.numel()
    return out
