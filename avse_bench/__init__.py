"""avse-bench: a benchmarking and evaluation harness for audio-visual speech enhancement (AVSEC-2 systems)."""

__version__ = "0.1.0"
