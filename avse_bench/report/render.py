"""`render_report(run_dir)`: sheet.md, sheet.csv, quality.csv, the PNG plots and report.html of a compare run, from
its stored files alone (the same files give the same bytes; report.html takes the listening material in listen/
as it is)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from avse_bench.editions import edition
from avse_bench.fmt import METRIC_LABELS, describe, p_relation, with_ci
from avse_bench.metrics.spec import SPECS
from avse_bench.metrics.stats import CI_METHOD, MIN_SCENES_FOR_CI, TEST_EXPLAINED, holm
from avse_bench.pipeline import AUDIO_ONLY, AV
from avse_bench.report import plots, quality, tables
from avse_bench.report.html import write_report_html
from avse_bench.report.items import measured_items
from avse_bench.report.load import Run, load_run
from avse_bench.report.published import ITEMS, published_items

PLOTS = {"quality.png": "Quality with 95 % CIs", "snr_bands.png": "Quality against SNR band",
         "latency.png": "Latency distribution", "memory.png": "Memory per phase"}


def _md(df: pd.DataFrame) -> str:
    """A Markdown table; cells are text already formatted (tabulate must not re-parse numbers), pipes escaped."""
    if df.empty:
        return "_(no rows)_"
    text = df.map(lambda v: str(v).replace("|", "\\|").replace("\n", " "))
    return text.to_markdown(index=False, disable_numparse=True)


def provenance(run: Run) -> list[str]:
    m = run.manifest
    data = m.get("data", {})
    pre = m.get("preprocessing", {})
    command = m.get("command_line")
    facts = {
        "Commit": describe(m.get("git_commit")),
        "Command line (item 11)": f"`{shlex.join(command)}`" if command else "n/a (not recorded)",
        "Profile": describe(m.get("profile")),
        "Seed": describe(m.get("seed")),
        "Data": describe(data),
        "Preprocessing (every system)": describe(pre.get("config")),
        "Preprocessing hash": describe(pre.get("hash")),
        "Preprocessing chosen by": describe(pre.get("chosen_by", "n/a (not recorded: a run made before the rule)")),
        "Hardware": describe(m.get("hardware")),
        "Software": describe(m.get("software")),
        "Created": describe(m.get("created")),
        "Stages made by": stage_provenance(run.root),
    }
    return ["## Provenance", "", _md(pd.DataFrame({"": list(facts), "value": list(facts.values())}))]


def stage_provenance(run_dir: Path) -> str:
    """Which commit, packages and machine made the run's stages (their `stages/*.done.json` stamps): one line when
    every stage was made by the same, else one group of stages per distinct maker, so a figure made by an older
    commit or another machine than the manifest names is said so."""
    stamps = {p.name.removesuffix(".done.json"): json.loads(p.read_text())
              for p in sorted((run_dir / "stages").glob("*.done.json"))}
    made = {name: (s.get("git_commit"), describe((s.get("machine") or {}).get("cpu")),
                   describe((s.get("made_by") or {}).get("packages"))) for name, s in stamps.items()
            if s.get("git_commit")}
    if not made:
        return ("n/a (no stage stamps in this folder: stages/ is not kept with a committed report)" if not stamps
                else "n/a (the stage stamps record no maker: a run made before they did)")
    groups: dict[tuple, list[str]] = {}
    for name, maker in made.items():
        groups.setdefault(maker[:2], []).append(name)
    if len(groups) == 1:
        (commit, cpu), = groups
        return f"every stage: commit {commit} on {cpu}"
    return "; ".join(f"{', '.join(names)}: commit {commit} on {cpu}" for (commit, cpu), names in groups.items())


def sheet_section(run: Run, rows: pd.DataFrame) -> list[str]:
    out = ["## The system-description sheet (AVSEC-2 items 1-13)", "",
           "Measured columns come from this run's records. A *published sheet* column is a reference: the values the "
           "system's own published sheet reports (`[sheet]` in its `system.toml`), copied as printed, measured on "
           "the hardware named in its heading, not by this harness.", "", _md(tables.side_by_side(rows, run)), ""]
    empty = [s for s in run.systems if not published_items(run.config(s).get("sheet", {}))[0]]
    if empty:
        out += [f"No published sheet values for: {', '.join(empty)}.", ""]
    out += ["### How each item was measured", ""]
    notes = {s: measured_items(run, s) for s in run.systems}
    for no, name in ITEMS.items():
        out.append(f"**{no}. {name}**")
        texts = {s: notes[s][no][1] for s in run.systems if notes[s][no][1]}
        if len(texts) > 1 and len(set(texts.values())) == 1:
            texts = {"every system": next(iter(texts.values()))}
        out += [f"- {who}: {text}" for who, text in texts.items()]
        out.append("")
    for system in run.systems:
        config = run.config(system)
        unplaced = published_items(config.get("sheet", {}))[1]
        if unplaced:
            out += [f"Published values of {system} that fit no item: "
                    + "; ".join(f"{k}: {v}" for k, v in unplaced.items()), ""]
        if config.get("sheet_mapping"):
            out += [f"### How {system}'s published sheet maps onto its code", "",
                    *(f"- **{k}**: {describe(v)}" for k, v in config["sheet_mapping"].items()), ""]
    return out


def quality_section(run: Run, summary: pd.DataFrame, improvements: pd.DataFrame) -> list[str]:
    scores, systems = run.scores, run.systems
    data = run.manifest.get("data", {})
    out = ["## Quality", "",
           *(track_lines(data)),
           f"Per scene of the `{data.get('eval_split', '?')}` split, then the mean over scenes and its 95 % "
           f"confidence interval as `mean [low, high]` ({CI_METHOD}: a mean over fewer than {MIN_SCENES_FOR_CI} "
           f"scenes is printed alone, beside its n). Differences (improvement, paired comparisons, visual "
           f"contribution) are means of per-scene differences with the same interval, signed so that a positive value "
           f"is better (for every metric, whichever its direction); their p-value is the "
           f"{TEST_EXPLAINED}. Interval and test are about the same mean. Multiplicity: each table of tests "
           f"also gives *p, Holm over the table*, the same p adjusted by Holm's step-down method over every test of "
           f"that table (family-wise error rate 5 % per table); the column *p* and the intervals are unadjusted, "
           f"and the graceful-degradation verdict reads the adjusted p. A bootstrap interval from few scenes (10 to "
           f"about 20) covers the mean less often than 95 %: read such intervals as approximate. "
           f"{edition(data.get('layout')).scoring}. A metric that could not be scored on a scene is left out of "
           "its mean and the scene counted under *scenes with an error*, with the reason (a model metric whose "
           "model is not held here reads n/a with its reason instead); `(n=...)` marks a metric that rests on "
           "fewer scenes than the other metrics of its row (the official Real-World scorer likewise averages over "
           "the items that have a value; it skips a missing output file, which here is an error row and counted).",
           "",
           _md(tables.scores_table(run, summary, (AV,))), "",
           *clipping_lines(run),
           "### Improvement over the mixture (audio-visual minus noisy, per scene)", "",
           _md(tables.improvement_table(improvements)), ""]
    if len(systems) > 1:
        out += ["### Paired comparison between systems (same scenes, audio-visual)", "",
                _md(tables.paired_table(quality.pairs(scores, systems), "a", "b")), ""]
    out += ["### Visual contribution (audio-visual minus audio-only with a blank video, paired over scenes)", "",
            "A system that uses the lips should gain most with speech maskers, where only the video tells which "
            "voice is the target.", "",
            _md(tables.visual_table(quality.visual_contribution(scores, systems))), "",
            _md(tables.scores_table(run, summary, (AUDIO_ONLY,))), ""]
    if edition(data.get("layout")).ranked:
        out += ranking_lines(run, tables.ranking_table(run, summary))
    for by, title in edition(data.get("layout")).breakdowns:
        parts = quality.breakdowns(scores, systems, by)
        if by == "n_maskers" and parts[by].nunique() < 2:
            continue  # every scene has as many maskers (AVSEC-1/2/3: one): the table would repeat the quality table
        out += [f"### {title}", "", _md(tables.breakdown_table(parts, by, quality.group_order(parts, by))), ""]
    return out


def ranking_lines(run: Run, table: pd.DataFrame) -> list[str]:
    """The leaderboard's ranking of the run's systems (`tables.ranking_table`), for an edition that ranks."""
    from avse_bench.metrics.spec import ranked_metrics

    metrics = ranked_metrics(run.manifest.get("data", {}).get("track", ""))
    missing = [SPECS[m].label for m in metrics if table[METRIC_LABELS[m]].str.startswith("n/a").any()]
    note = (f" Not ranked here, for want of a value for every system: {', '.join(missing)}; the mean rank is over "
            "the others, so it is not the leaderboard's seven-metric mean." if missing else "")
    return ["### Ranking (as the Real-World AVSE 2026 leaderboard ranks)", "",
            "Per metric, each system's rank by its mean over the items (1 best; CER ascending, as it is declared "
            "lower-is-better; tied means share the average rank: the leaderboard's tie rule is unpublished), the "
            "mean in brackets; *mean rank*: the mean of a system's ranks, lower is better, over "
            f"{', '.join(SPECS[m].label for m in metrics)}.{note} `ranking.csv` holds the same table.", "",
            _md(table), ""]


def track_lines(data: dict) -> list[str]:
    """For an AVSEC-4 or Real-World run: which track, what the systems read and what they are scored against."""
    if data.get("layout") == "realworld":
        return [f"Real-World AVSE 2026 data, **{data['track']}**: each clip gives two items, one per target tag "
                "(`s1`, `s2`: that speaker's face video, landmarks and transcript, the same `mix.wav`); systems "
                "are trained on the remix items of the train split (the mix clips have no clean source), "
                "enhanced files are written in the submission layout (`<track>/<split>/<scene>/<clip>/sK.wav`), "
                "and reference metrics are computed on remix items only.", ""]
    if data.get("layout") != "avsec4":
        return []
    from avse_bench.data.layout import AVSEC4, PARTS, TRACK_FILES

    roles = TRACK_FILES[AVSEC4, data["track"]]
    return [f"AVSEC-4 data, **{data['track']} track**: the systems read `{PARTS[AVSEC4][roles['mixed']]}`, were "
            f"trained against `{PARTS[AVSEC4][roles['target']]}`"
            + (" downmixed to (L+R)/2" if data["track"] == "mono" else "")
            + f" and are scored against `{PARTS[AVSEC4][roles['reference']]}`.", ""]


def clipping_lines(run: Run) -> list[str]:
    """How many enhanced outputs peaked above full scale, when any did (nothing for a run without peaks.csv)."""
    if run.peaks is None:
        return []
    clipped = quality.clipping(run.peaks)
    if not clipped.clipped.any():
        return []
    return ["Enhanced files are 16-bit PCM wavs, as the official `test.py` writes them, and are scored as written: "
            "an output that peaked above full scale was clipped there, as it would have been in the challenge "
            "(and DNSMOS reads the clipped file).", "", _md(tables.clipping_table(clipped)), ""]


def stress_section(run: Run, table: pd.DataFrame) -> list[str]:
    """The robustness table under visual stress and the sentence on which system degrades more gracefully."""
    from avse_bench.report.stress import graceful

    conditions = ", ".join(run.manifest["stress"]["conditions"])
    out = ["## Robustness to degraded video (visual stress)", "",
           f"The dev split enhanced again with its video degraded after the shared preprocessing, identically for "
           f"every system (seed {run.manifest['stress']['seed']}): {conditions}. Definitions and severity units: "
           "`avse_bench/data/stress.py`. *gain*: score minus the mixture's on the same scene, mean [95 % CI] over "
           "scenes; *kept*: mean gain under the condition / mean clean-video gain (n/a unless the clean-video "
           "gain's 95 % CI lies above 0). The blank video is the audio-only run above.", "",
           _md(tables.robustness_table(table)), ""]
    metric = run.stress_metrics[0]  # SI-SDR on a mono track, MBSTOI on the binaural one
    label, unit, digits = SPECS[metric].label.split(" (")[0], SPECS[metric].unit, SPECS[metric].digits
    tests = graceful(run.scores, run.stress, run.systems, metric)
    for test, adjusted in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
        test["p_holm"] = adjusted  # over the pairs of systems: the verdict reads it
    n_conditions = len(table.condition.unique()) - 2
    flagged = []
    for test in tests:
        a, b = test["a"], test["b"]
        better = a if test["mean_diff"] > 0 else b  # signed paired losses (`spec.signed`): above 0, a loses less
        worse = b if better == a else a
        significant = test["p_holm"] < 0.05
        out += [f"**Which degrades more gracefully ({label}), {a} or {b}.** Averaged over the {n_conditions} "
                f"conditions, {a}'s score per scene changes by {_signed(test['loss_a'])}{unit and ' ' + unit} from "
                f"its clean-video score and {b}'s by {_signed(test['loss_b'])}{unit and ' ' + unit}; {a} minus {b} "
                f"(mean over the scenes both have): "
                f"{with_ci(test['mean_diff'], test['ci_lo'], test['ci_hi'], 2)}{unit and ' ' + unit}, {test['test']}, "
                f"p {p_relation(test['p_value'])}"
                + (f" (Holm over the {len(tests)} pairs: p {p_relation(test['p_holm'])})" if len(tests) > 1 else "")
                + f", n = {test['n']} scenes. "
                + (f"{better} degrades more gracefully than {worse}." if significant else
                   "The difference is not significant at 5 %: neither degrades more gracefully on this evidence."), ""]
        for s in (a, b):
            c = test["contribution"][s]
            if s not in flagged and c and not quality.uses_video(c):
                flagged.append(s)
                out += [f"A loss near zero can mean the video is not used: {s}'s visual contribution (AV better "
                        f"than audio-only, {label}) is {with_ci(c['mean_diff'], c['ci_lo'], c['ci_hi'], digits)}"
                        f"{unit and ' ' + unit} (p {p_relation(c['p_value'])}, n = {c['n']}), not shown to exceed "
                        f"{quality.meaningful_text(metric)}.", ""]
    out += [f"![{METRIC_LABELS[m]} under visual stress](stress_{m}.png)" for m in run.stress_metrics] + [""]
    return out


def _signed(value: float) -> str:
    """+1.23 / -1.23, and +0.00 for anything that rounds to zero (never "-0.00")."""
    return f"{value + 0.0 if round(value, 2) else 0.0:+.2f}"


def blind_section(run: Run) -> list[str]:
    """The eval split without targets: non-intrusive scores (DNSMOS) of the mixture and each system's output."""
    split = run.manifest["data"]["blind_split"]
    table = tables.scores_table(run, quality.summary(run.blind), (AV,), run.blind)
    return ["## Blind evaluation (no clean reference)", "",
            f"The `{split}` split has no clean targets: each system enhanced it (audio-visual) and the outputs and "
            "the mixture were scored with the non-intrusive DNSMOS alone (speechmos; see avse_bench/metrics/"
            "dnsmos.py). Mean [95 % CI] over scenes.", "", _md(table), ""]


def render_report(run_dir) -> None:
    """Write sheet.md, sheet.csv, quality.csv and the plots into `run_dir` from the run's stored files."""
    run = load_run(Path(run_dir))
    out = run.root
    rows = tables.sheet_rows(run)
    summary = quality.summary(run.scores)
    improvements = quality.improvements(run.scores, run.systems)

    plots.quality_plot(run, summary, out / "quality.png")
    bands = quality.breakdowns(run.scores, run.systems, "snr_band")
    plots.snr_plot(run, bands, quality.group_order(bands, "snr_band"), out / "snr_bands.png")
    plots.latency_plot(run, out / "latency.png")
    plots.memory_plot(run, out / "memory.png")
    extra = []
    for stale in out.glob("stress_*.png"):  # plots of metrics this run's stress section no longer has
        if run.stress is None or stale.stem.removeprefix("stress_") not in run.stress_metrics:
            stale.unlink()
    if run.stress is not None:
        from avse_bench.report.stress import robustness

        table = robustness(run.scores, run.stress, run.systems, run.stress_metrics)
        for metric in run.stress_metrics:
            plots.stress_plot(run, table, metric, out / f"stress_{metric}.png")
        extra += stress_section(run, table)
        table.to_csv(out / "robustness.csv", index=False)
    if run.blind is not None:
        extra += blind_section(run)

    title = f"# System-description sheets: {', '.join(run.systems)}"
    run_name = out.resolve().name  # `report .` names the folder too
    lines = [title, "", f"Compare run `{run_name}`, `{run.manifest.get('profile')}` profile. Files: `sheet.csv` "
             "(the items below, one row per system and item), `quality.csv` (the quality numbers, unrounded), "
             "`scores.csv` (per scene), `profile.json`, `manifest.json`.", "",
             *provenance(run), "", *sheet_section(run, rows), *quality_section(run, summary, improvements), *extra,
             "## Plots", "", *(f"![{caption}]({name})" for name, caption in PLOTS.items()), ""]
    (out / "sheet.md").write_text("\n".join(lines))
    write_report_html(out, f"avse-bench report: {', '.join(run.systems)} ({run_name})")
    rows.to_csv(out / "sheet.csv", index=False)
    tables.quality_csv(summary, improvements).to_csv(out / "quality.csv", index=False)
    if edition(run.manifest.get("data", {}).get("layout")).ranked:
        tables.ranking_table(run, summary).to_csv(out / "ranking.csv", index=False)
