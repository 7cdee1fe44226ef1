"""FLOPs with fvcore's `FlopCountAnalysis`, plus a handle for recurrent layers, which fvcore counts as zero.

Convention (fvcore's): one multiply-add is one "flop", so every count here is a number of multiply-accumulates
(GFLOPs here = GMACs; tools that count 2 per multiply-add report twice as much). Biases and element-wise ops are
not counted; those fvcore skips are listed in `flops_unsupported` with how often they occur.

The recurrent handle (`aten::lstm`, `aten::gru`) counts the matrix products of every gate, layer and direction at
every step: each weight matrix W (input-hidden W_ih, hidden-hidden W_hh, LSTM projection W_hr) is applied once per
input vector, so the count is (number of input vectors = steps x batch) x sum of numel(W). For an LSTM layer with
input I and hidden H that is 4H(I + H) per step and direction, as the gate equations give.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

FLOPS_NOTE = ("fvcore counts one multiply-add as one flop: flops are multiply-accumulates (GFLOPs here = GMACs). "
              "Biases and element-wise ops are not counted (fvcore skips the ops in flops_unsupported). "
              "aten::lstm and aten::gru count the input-hidden and hidden-hidden matrix products of every gate, "
              "layer and direction at every step (4H(I+H) multiply-adds per LSTM step and direction).")
RNN_OPS = ("aten::lstm", "aten::gru")


def _tensor_shape(value) -> list[int]:
    return list(value.type().sizes())


def rnn_flop_jit(inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
    """fvcore handle for aten::lstm / aten::gru (both overloads): steps x batch x sum of weight-matrix sizes.

    Traced inputs: (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first), with
    hx a list (LSTM) or a tensor (GRU); packed sequences: (data, batch_sizes, hx, params, ...). The flat params
    list, the last list among the inputs, holds per layer and direction W_ih, W_hh (2-D), the biases (1-D) and
    W_hr if projected.
    """
    params = [v for v in inputs[:4] if v.type().kind() == "ListType"][-1]
    weights = [_tensor_shape(w) for w in params.node().inputs()]
    vectors = math.prod(_tensor_shape(inputs[0])[:-1])  # (T, B, I), (B, T, I), (T, I) or packed (sum T, I)
    return vectors * sum(math.prod(shape) for shape in weights if len(shape) == 2)


def _fvcore_flop_count_analysis():
    with warnings.catch_warnings():  # fvcore's focal-loss module calls the deprecated torch.jit.script on import
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def _by_top_module(by_module: dict, total: int) -> dict[str, int]:
    """fvcore's per-module counts of the model's top-level children, and "(own)": what the model's own forward
    does outside them (a fusion, the mask's product); they add up to the total."""
    out = {name: int(n) for name, n in by_module.items() if name and "." not in name}
    own = total - sum(out.values())
    return {**out, "(own)": own} if own else out


def count_flops(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict:
    """Trace `model(*inputs)` once in eval mode (the caller's mode is restored) and count its multiply-adds.

    Returns flops (total), flops_by_op (op -> count, RNNs included), flops_by_module (top-level child module ->
    count: what a frozen encoder costs apart from the rest), flops_unsupported (op -> occurrences fvcore
    did not count), flops_uncalled_modules, flops_warnings (the tracer's messages) and flops_note. fvcore's own
    logger warnings are switched off: what they say is in these fields.
    """
    analysis = _fvcore_flop_count_analysis()(model, inputs)
    for op in RNN_OPS:
        analysis.set_op_handle(op, rnn_flop_jit)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("all")
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            total = analysis.total()
    finally:
        model.train(was_training)
    return {
        "flops": int(total),
        "flops_by_op": {op: int(n) for op, n in sorted(analysis.by_operator().items())},
        "flops_by_module": _by_top_module(analysis.by_module(), int(total)),
        "flops_unsupported": dict(sorted(analysis.unsupported_ops().items())),
        "flops_uncalled_modules": sorted(analysis.uncalled_modules()),
        "flops_warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "flops_note": FLOPS_NOTE,
    }
