"""README figures are the committed report's: the generated blocks equal what `avse-bench report` gives from
reports/quick-cpu, and the statistics in the committed sheet agree with each other (issue 18, items 3 and 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avse_bench.report.readme import block_of, figures, update_readme

REPO = Path(__file__).resolve().parents[1]
RUN = "reports/quick-cpu"
READMES = ("README.md", "reports/quick-cpu/README.md")


@pytest.mark.parametrize("readme", READMES)
def test_readme_figures_are_the_committed_reports(readme, monkeypatch):
    monkeypatch.chdir(REPO)
    block = block_of((REPO / readme).read_text(), RUN)
    assert block is not None, f"{readme} has no figures block for {RUN}"
    assert block == figures(RUN), (f"{readme}'s figures differ from {RUN}'s files: run "
                                   f"`avse-bench report {RUN} --readme {readme}`")


def test_the_bench_time_in_the_readme_is_the_one_the_report_recorded():
    """The wall time and peak RSS are measured by /usr/bin/time around the bench, not by the run: the README's
    figures must be the ones the report's README records."""
    readme, recorded = (REPO / "README.md").read_text(), (REPO / RUN / "README.md").read_text()
    took = re.search(r"The whole command took \*\*(\d+ min \d+ s)\*\*.*?peak RSS ([\d.]+ GiB)", readme, re.S)
    assert took, "the README's bench time sentence"
    assert f"took {took[1]} of wall time" in recorded and f"peak RSS of {took[2]}" in recorded


def test_update_readme_writes_and_rewrites_the_block(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    readme = tmp_path / "README.md"
    readme.write_text("# Mine\n\nSome prose.\n")
    update_readme(readme, figures(RUN), RUN)
    first = readme.read_text()
    assert first.startswith("# Mine\n\nSome prose.\n") and block_of(first, RUN) == figures(RUN)
    readme.write_text(first.replace("| noisy (mixture) |", "| noisy (mixture) | 9.99 |") + "\nAfter.\n")
    update_readme(readme, figures(RUN), RUN)
    assert readme.read_text() == first + "\nAfter.\n"


def _table_rows(md: str):
    """Every Markdown table row of `md` that has a 'mean difference [95 % CI]' cell and a 'p' cell."""
    header = None
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None
        elif header is None:
            header = cells
        elif not set(line) <= set("|:- ") and "mean difference [95 % CI]" in header and "p" in header:
            yield dict(zip(header, cells, strict=True))


def test_every_interval_in_the_committed_sheet_agrees_with_its_test():
    md = (REPO / RUN / "sheet.md").read_text()
    checked = 0
    for row in _table_rows(md):
        found = re.match(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", row["mean difference [95 % CI]"])
        if not found or row["p"] == "n/a":
            continue
        lo, hi = float(found[2]), float(found[3])
        if lo == 0 or hi == 0:  # a bound that rounds to 0 cannot be read at this precision
            continue
        p = 0.0 if row["p"].startswith("<") else float(row["p"])
        assert (lo > 0 or hi < 0) == (p < 0.05), row
        checked += 1
    assert checked >= 20
    assert "Wilcoxon" not in md
