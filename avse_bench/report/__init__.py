"""avse_bench.report: the system-description sheets of a compare run, side by side, with tables and plots."""

__all__ = ["render_report"]


def __getattr__(name: str):
    # render pulls pandas and matplotlib (a second, ~120 MiB): only code that renders pays, not the profiler's
    # memory phases, whose processes import avse_bench.fmt and would otherwise count them as the model's.
    if name == "render_report":
        from avse_bench.report.render import render_report

        return render_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
