"""Formatting of figures for the sheet: numbers with their units, "n/a (reason)" kept verbatim, nested facts as text.

A figure that could not be measured arrives as the string "n/a (reason)" and leaves as that same string: nothing
here ever turns a missing figure into 0 or into an empty cell.
"""

from __future__ import annotations

import math

from avse_bench.metrics.spec import SPECS

METRIC_LABELS = {name: spec.label for name, spec in SPECS.items()}  # declared in avse_bench/metrics/spec.py
METRIC_DIGITS = {name: spec.digits for name, spec in SPECS.items()}
NOT_RECORDED = "n/a (not recorded)"


def is_na(value) -> bool:
    """True for a figure that is not a number: an "n/a (reason)" string, None, or NaN."""
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, float) and math.isnan(value)


def na_text(value, missing: str = NOT_RECORDED) -> str:
    """The text of a non-number: an "n/a (reason)" string as it is, anything else empty as `missing`."""
    return value if isinstance(value, str) and value.strip() else missing


def number(value, digits: int = 2, unit: str = "") -> str:
    """`value` with `digits` decimals and a thousands separator, then the unit; a non-number as its n/a text."""
    if is_na(value):
        return na_text(value)
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return f"{text} {unit}".rstrip()


def duration(seconds) -> str:
    """Seconds as the sheet writes them: "1 min 43 s" or "12.3 s"."""
    if is_na(seconds):
        return na_text(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {rest} s"


def describe(obj) -> str:
    """Nested facts (dicts, lists) as one line of text: "key: value; key: value"."""
    if isinstance(obj, dict):
        return "; ".join(f"{k}: {_inner(v)}" for k, v in obj.items()) or "none"
    if isinstance(obj, list | tuple):
        return ", ".join(_inner(v) for v in obj) or "none"
    if isinstance(obj, float):
        return f"{obj:,.0f}" if obj.is_integer() and abs(obj) >= 1e4 else f"{obj:g}"
    return NOT_RECORDED if obj is None else str(obj)


def _inner(obj) -> str:
    return f"({describe(obj)})" if isinstance(obj, dict) else describe(obj)


def with_ci(mean, lo, hi, digits: int) -> str:
    """"mean [lo, hi]"; a mean that could not be computed (no scored scene) reads n/a."""
    if is_na(mean):
        return "n/a (no scored scene)"
    if is_na(lo) or is_na(hi):
        return _fixed(mean, digits)
    return f"{_fixed(mean, digits)} [{_fixed(lo, digits)}, {_fixed(hi, digits)}]"


def _fixed(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:.{digits}f}"  # + 0.0: a value that rounds to zero prints "0.00", not "-0.00"


def p_value(p) -> str:
    """"0.012", "< 0.001", or "n/a" where no test was made (fewer scenes than stats.MIN_SCENES_FOR_CI)."""
    if is_na(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_relation(p: float) -> str:
    """"= 0.012" or "< 0.001", to follow "p" in a sentence."""
    text = p_value(p)
    return text if text.startswith("<") or text.startswith("n/a") else f"= {text}"


def describe_lookahead(stream: dict) -> str:
    """A measured look-ahead (avse_bench.profiling.lookahead) in words: "whole utterance (2250 ms measured)",
    "40 ms" or "0 ms (causal)"."""
    ms = stream["lookahead_ms"]
    if stream["whole_utterance"]:
        return f"whole utterance ({ms:g} ms measured)"
    return f"{ms:g} ms" + (" (causal)" if ms == 0 else "")
