"""avse_bench.report: the system-description sheets of a compare run, side by side, with tables and plots."""

from avse_bench.report.render import render_report

__all__ = ["render_report"]
