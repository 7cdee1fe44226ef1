"""The sheet's tables: the side-by-side items (rows for sheet.csv) and the quality tables, as DataFrames of text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avse_bench.fmt import METRIC_DIGITS, METRIC_LABELS, number, p_value, with_ci
from avse_bench.metrics.spec import SPECS, ranked_metrics
from avse_bench.metrics.stats import holm, rank_systems
from avse_bench.pipeline import AV, CONDITION_LABELS, MIXTURE, NOISY
from avse_bench.report import quality
from avse_bench.report.items import measured_items
from avse_bench.report.load import Run
from avse_bench.report.published import ITEMS, hardware_label, published_items

NOT_REPORTED = "not reported"
SHEET_COLUMNS = ["system", "item_no", "item", "value", "notes", "source"]


def published_column(run: Run, system: str) -> str:
    hardware = hardware_label(run.config(system).get("sheet", {}))
    return f"{system} (published sheet{', ' + hardware if hardware else ''})"


def sheet_rows(run: Run) -> pd.DataFrame:
    """sheet.csv: one row per (system, item) measured, then one per (system, item) of each non-empty published
    sheet (items it does not report read "not reported")."""
    out = []
    for system in run.systems:
        for no, (value, notes) in measured_items(run, system).items():
            out.append([system, no, ITEMS[no], value, notes, "measured"])
    for system in run.systems:
        placed, _ = published_items(run.config(system).get("sheet", {}))
        if placed:
            out += [[system, no, name, placed.get(no, NOT_REPORTED), "as printed in the published sheet",
                     "published sheet"] for no, name in ITEMS.items()]
    return pd.DataFrame(out, columns=SHEET_COLUMNS)


def side_by_side(rows: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Items 1-13 as rows; per system its measured column, then its published column where it has one."""
    table = pd.DataFrame({"No.": list(ITEMS), "Item": list(ITEMS.values())})
    for system in run.systems:
        for source, heading in (("measured", f"{system} (measured)"),
                                ("published sheet", published_column(run, system))):
            values = rows[(rows.system == system) & (rows.source == source)].set_index("item_no").value
            if len(values):
                table[heading] = table["No."].map(values)
    return table


def _label(system: str, condition: str) -> str:
    return "noisy (mixture)" if system == NOISY else f"{system} ({CONDITION_LABELS[condition]})"


def _ci_cells(stats: pd.DataFrame) -> dict[str, str]:
    """{metric label: "mean [lo, hi]"} from rows [metric, n, mean, ci_lo, ci_hi]; "(n=...)" added to a metric
    that rests on fewer scenes than the row's best-scored metric."""
    cells, most = {}, stats.n.max()
    for r in stats.itertuples():
        text = with_ci(r.mean, r.ci_lo, r.ci_hi, METRIC_DIGITS[r.metric])
        cells[METRIC_LABELS[r.metric]] = text if r.n == most else f"{text} (n={r.n})"
    return cells


def not_scored(scores: pd.DataFrame, metric: str) -> str:
    """"n/a (reason)" for a metric of the run that has no value in `scores`: the reason its rows give
    ("<metric>: n/a (...)" in the error column, the most frequent), else that it was not scored."""
    prefix = f"{metric}: n/a ("
    found = [p[len(metric) + 2:] for e in scores.error for p in str(e).split("; ") if p.startswith(prefix)]
    return pd.Series(found).mode().iloc[0] if found else "n/a (no item scored)"


def scores_table(run: Run, summary: pd.DataFrame, conditions: tuple[str, ...], scores: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """The quality table: the mixture, then each system in `conditions`; mean [95 % CI] per metric. `scores`: the
    per-scene rows the summary came from (default: the run's scores.csv)."""
    out = []
    scores = run.scores if scores is None else scores
    for system, condition in [(NOISY, MIXTURE), *((s, c) for s in run.systems for c in conditions)]:
        scenes, failed, reasons = quality.errors(scores, system, condition)
        if not scenes:
            continue
        stats = summary[(summary.system == system) & (summary.condition == condition)]
        cells = _ci_cells(stats)
        for metric in run.metrics:  # the run's metrics without a value read n/a (reason), never blank
            cells.setdefault(METRIC_LABELS[metric], not_scored(quality.rows(scores, system, condition), metric))
        order = [m for m in SPECS if m in set(stats.metric) | set(run.metrics)]  # labels are unique per track
        cells = {METRIC_LABELS[m]: cells[METRIC_LABELS[m]] for m in order}
        out.append({"": _label(system, condition), **cells, "scenes": scenes,
                    "scenes with an error": f"{failed} ({reasons})" if failed else "0"})
    return pd.DataFrame(out)


def improvement_table(improvements: pd.DataFrame) -> pd.DataFrame:
    out = []
    for system, stats in improvements.groupby("system", sort=False):
        out.append({"": f"{system} (audio-visual) - noisy", "n": int(stats.n.max()), **_ci_cells(stats)})
    return pd.DataFrame(out)


HOLM_COLUMN = "p, Holm over the table"


def paired_table(paired: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """Rows of paired comparisons: which difference (first better than second, `quality._paired`), metric, n, mean
    difference [95 % CI], the p-value of that row's test (the interval's: it excludes 0 exactly when p < 0.05), the
    same p adjusted by Holm's method over every test of the table (`stats.holm`: the family-wise error rate of the
    table at 5 %), and the test."""
    out = []
    adjusted = holm(paired["p_value"]) if len(paired) else []
    for r, p_holm in zip(paired.to_dict("records"), adjusted, strict=True):
        out.append({"difference": f"{r[first]} better than {r[second]}", "metric": METRIC_LABELS[r["metric"]],
                    "n": r["n"], "mean difference [95 % CI]": with_ci(r["mean_diff"], r["ci_lo"], r["ci_hi"],
                                                                      METRIC_DIGITS[r["metric"]]),
                    "p": p_value(r["p_value"]), HOLM_COLUMN: p_value(p_holm), "test": r["test"]})
    return pd.DataFrame(out)


def visual_table(visual: pd.DataFrame) -> pd.DataFrame:
    if visual.empty:
        return visual
    table = paired_table(visual.assign(av="audio-visual", blank="audio-only"), "av", "blank")
    table.insert(0, "maskers", list(visual.maskers))
    table.insert(0, "system", list(visual.system))
    return table.drop(columns="difference")


def breakdown_table(parts: pd.DataFrame, by: str, order: list[str]) -> pd.DataFrame:
    """One row per (group, mixture or system) in the groups' `order`; n is the most scenes any metric scored."""
    out = []
    for group in order:
        for (system, condition), stats in parts[parts[by] == group].groupby(["system", "condition"], sort=False):
            out.append({by: group, "": _label(system, condition), "n": int(stats.n.max()), **_ci_cells(stats)})
    return pd.DataFrame(out)


def clipping_table(clipped: pd.DataFrame) -> pd.DataFrame:
    """One row per (system, condition) of `quality.clipping`: outputs above full scale, of all, and the highest peak."""
    return pd.DataFrame({"": [_label(r.system, r.condition) for r in clipped.itertuples()],
                         "outputs above full scale": [f"{r.clipped} of {r.outputs}" for r in clipped.itertuples()],
                         "highest peak": [f"{r.max_peak:.2f}" for r in clipped.itertuples()]})


def quality_csv(summary: pd.DataFrame, improvements: pd.DataFrame) -> pd.DataFrame:
    """quality.csv: the numbers behind the quality and improvement tables, unrounded."""
    gain = improvements.assign(condition="av - mixture")
    cols = ["system", "condition", "metric", "n", "mean", "ci_lo", "ci_hi"]
    return pd.concat([summary[cols], gain[cols]], ignore_index=True)



def robustness_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (system, condition): improvement over the mixture [95 % CI] per metric and the share of the
    clean-video gain kept (`report.stress.robustness`)."""
    out = []
    for (system, condition), stats in table.groupby(["system", "condition"], sort=False):
        row = {"system": system, "condition": condition, "n": int(stats.n.max())}
        for r in stats.itertuples():
            row[f"{METRIC_LABELS[r.metric]} gain"] = with_ci(r.mean, r.ci_lo, r.ci_hi, METRIC_DIGITS[r.metric])
            row[f"{METRIC_LABELS[r.metric]} kept"] = "n/a" if pd.isna(r.kept) else f"{100 * r.kept:.0f} %"
        out.append(row)
    return pd.DataFrame(out)


def ranking_table(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """The systems' audio-visual means ranked on the track's ranked metrics (`stats.rank_systems`): one row per
    system, best mean rank first; each metric's cell "rank (mean)", or "n/a (reason)" where a system lacks it."""
    track = run.manifest.get("data", {}).get("track", "")
    metrics = ranked_metrics(track)
    av = summary[summary.condition == AV]
    means = pd.DataFrame({"system": run.systems})
    for metric in metrics:
        values = av[av.metric == metric].set_index("system")["mean"]
        means[metric] = [values.get(s, np.nan) for s in run.systems]
    ranks = rank_systems(means, metrics)
    out = []
    for r in ranks.to_dict("records"):
        row = {"system": r["system"]}
        for metric in metrics:
            mean = means.loc[means.system == r["system"], metric].iloc[0]
            if pd.isna(mean):
                row[METRIC_LABELS[metric]] = not_scored(quality.rows(run.scores, r["system"], AV), metric)
            elif pd.isna(r[metric]):
                row[METRIC_LABELS[metric]] = f"not ranked ({number(mean, METRIC_DIGITS[metric])})"
            else:
                row[METRIC_LABELS[metric]] = f"{r[metric]:g} ({number(mean, METRIC_DIGITS[metric])})"
        row["mean rank"] = "n/a (no metric ranked)" if pd.isna(r["mean rank"]) else f"{r['mean rank']:.2f}"
        row["metrics ranked"] = r["metrics ranked"]
        out.append(row)
    return pd.DataFrame(out)
