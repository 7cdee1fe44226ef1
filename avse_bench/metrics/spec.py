"""Every metric, declared once: what it is called, how it is printed, which way is better, what it needs.

A metric is one `register_metric(...)` call below, in the spirit of lm-evaluation-harness's `@register_metric(metric=
..., higher_is_better=..., aggregation=...)`. The score CSV's columns (`COLUMNS`), the `--metrics` families, every
table's label and digits, the sign of an improvement or a verdict, and which track a metric belongs to (mono
signals or binaural pairs of them) are all read from `SPECS`; nothing else lists metrics. A metric's computation
lives with its family (`functional` for the intrusive mono metrics, `dnsmos`, `binaural`); `family` says which.

No module here imports a metric library: the table is cheap to import anywhere (the report, the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One metric. `name`: its CSV column and `--metrics` name. `label`: as tables and plots print it (unit
    included). `unit`: "" or "dB". `digits`: decimals printed. `higher_is_better`: the sign of "better" (an
    improvement over the mixture is score minus mixture's; a lower-is-better metric would flip it). `needs_reference`:
    intrusive (needs the clean reference) or not. `channels`: 1 (mono signals) or 2 (a binaural pair: left and right
    ears). `family`: the `--metrics` family, which is also where its computation lives. `source`: where its
    definition comes from. `function`: "module:name" of its function (ref, deg) -> float where the scorer calls it
    on its own (the binaural family); the intrusive mono metrics are `functional.FUNCTIONS`, DNSMOS's four come
    from one call. `downmix`: a mono metric also reported on the binaural track, computed there on the (L + R) / 2
    downmix of the 2-channel file (DNSMOS: its models take one channel, and the challenge states no binaural use).
    `meaningful`: the smallest difference that means something (a visual contribution whose interval lies above it
    shows the video is used; our choices, stated in docs/SCORING.md). `headline`: views that show one metric lead
    with the run's metric of the lowest `headline` (SI-SDR, else MBSTOI, else DNSMOS-OVRL). `tracks`: the tracks
    (`--track`) whose metric set it belongs to, when not given by `channels` (the Real-World AVSE tracks track1
    and track2 have a set of their own). `ranked`: a ranking column of its tracks (`stats.rank_systems`)."""

    name: str
    label: str
    unit: str
    digits: int
    higher_is_better: bool
    needs_reference: bool
    channels: int
    family: str
    source: str
    function: str = ""  # "module:name" of the function (ref, deg) -> float, for a metric computed on its own
    downmix: bool = False  # a mono metric computed on the binaural track's (L + R) / 2 as well
    meaningful: float = 0.0  # the smallest difference that means something, in the metric's unit
    headline: int = 0  # the order in which views lead with a metric the run has (1 first); 0: never
    tracks: tuple[str, ...] = ()  # the tracks it is scored on; () : by `channels` and `downmix` (AVSEC's tracks)
    ranked: bool = False  # one of its tracks' ranking columns (the Real-World AVSE 2026 leaderboard's seven)


SPECS: dict[str, MetricSpec] = {}


def register_metric(**fields) -> MetricSpec:
    """Declare a metric (the fields of `MetricSpec`); its order of declaration is its column order."""
    spec = MetricSpec(**fields)
    if spec.name in SPECS:
        raise ValueError(f"metric {spec.name!r} declared twice")
    if spec.channels not in (1, 2):
        raise ValueError(f"metric {spec.name!r}: channels must be 1 or 2")
    SPECS[spec.name] = spec
    return spec


OFFICIAL_AVSEC1 = "the official AVSEC evaluation (evaluation/avse1/objective_evaluation.py, cogmhear/avse_challenge)"
register_metric(name="pesq_wb", label="PESQ-WB", unit="", digits=3, higher_is_better=True, needs_reference=True,
                channels=1, family="intrusive", meaningful=0.05,
                source=f"ITU-T P.862.2 via pesq.pesq(..., 'wb'), as {OFFICIAL_AVSEC1}")
register_metric(name="pesq_nb", label="PESQ-NB", unit="", digits=3, higher_is_better=True, needs_reference=True,
                channels=1, family="intrusive", meaningful=0.05,
                source="ITU-T P.862 via pesq.pesq(..., 'nb')")
register_metric(name="stoi", label="STOI", unit="", digits=3, higher_is_better=True, needs_reference=True,
                channels=1, family="intrusive", meaningful=0.01,
                source=f"Taal et al. 2011 via pystoi.stoi, as {OFFICIAL_AVSEC1}")
register_metric(name="estoi", label="ESTOI", unit="", digits=3, higher_is_better=True, needs_reference=True,
                channels=1, family="intrusive", meaningful=0.01,
                source="Jensen and Taal 2016 via pystoi.stoi(extended=True)")
register_metric(name="si_sdr", label="SI-SDR (dB)", unit="dB", digits=2, higher_is_better=True, needs_reference=True,
                channels=1, family="intrusive", meaningful=0.1, headline=1,
                source="Le Roux et al., ICASSP 2019, on zero-mean signals")
REALWORLD_TRACKS = ("track1", "track2")
OFFICIAL_RW = "the Real-World AVSE 2026 official scorer (eval_real.py, look2hear/metrics/real_metrics.py)"
for _name, _label, _digits, _meaningful, _what in (
        ("rw_si_sdr", "SI-SDR (dB)", 2, 0.1, "torchmetrics scale_invariant_signal_distortion_ratio(zero_mean=False)"),
        ("rw_pesq_wb", "PESQ-WB", 3, 0.05, "torchmetrics perceptual_evaluation_speech_quality(16000, 'wb')"),
        ("rw_stoi", "STOI", 3, 0.01, "torchmetrics short_time_objective_intelligibility(16000, extended=False)")):
    register_metric(name=_name, label=_label, unit="dB" if "dB" in _label else "", digits=_digits,
                    higher_is_better=True, needs_reference=True, channels=1, family="realworld",
                    meaningful=_meaningful, headline=1 if _name == "rw_si_sdr" else 0, tracks=REALWORLD_TRACKS,
                    ranked=True, function=f"avse_bench.metrics.realworld:{_name.removeprefix('rw_')}",
                    source=f"{_what} on the float32 pair trimmed to the shorter length, remix items only, as "
                           f"{OFFICIAL_RW}")
register_metric(name="utmos", label="UTMOS", unit="", digits=3, higher_is_better=True, needs_reference=False,
                channels=1, family="model", meaningful=0.05, tracks=REALWORLD_TRACKS, ranked=True,
                source=f"UTMOSv2 (Baba et al. 2024), its predict() defaults, as {OFFICIAL_RW}; model held locally")
for _name, _label in (("dnsmos_ovrl", "DNSMOS-OVRL"), ("dnsmos_sig", "DNSMOS-SIG"), ("dnsmos_bak", "DNSMOS-BAK"),
                      ("dnsmos_p808", "DNSMOS-P.808")):
    register_metric(name=_name, label=_label, unit="", digits=3, higher_is_better=True, needs_reference=False,
                    channels=1, family="dnsmos", downmix=True, meaningful=0.05,
                    headline=3 if _name == "dnsmos_ovrl" else 0, ranked=_name == "dnsmos_ovrl",
                    tracks=("mono", "binaural", *REALWORLD_TRACKS),
                    source="DNSMOS P.835 / P.808 (Reddy et al. 2021) via speechmos; on the binaural track of the "
                           "(L + R) / 2 downmix")
register_metric(name="mbstoi", label="MBSTOI", unit="", digits=3, higher_is_better=True, needs_reference=True,
                channels=2, family="binaural", meaningful=0.01, headline=2,
                source="Andersen et al., Speech Communication 102, 2018, via pyclarity's mbstoi (the code of the "
                       "official AVSEC-4 evaluation, evaluation/avse4/mbstoi), its function's default parameters",
                function="avse_bench.metrics.binaural:mbstoi")
register_metric(name="cer", label="CER", unit="", digits=3, higher_is_better=False, needs_reference=False,
                channels=1, family="model", meaningful=0.01, tracks=REALWORLD_TRACKS, ranked=True,
                source=f"Fun-ASR-Nano transcript against sK.txt, both stripped of whitespace and punctuation, "
                       f"character Levenshtein distance / reference length, as {OFFICIAL_RW}; model held locally")
register_metric(name="spk_sim", label="Spk-Sim", unit="", digits=3, higher_is_better=True, needs_reference=False,
                channels=1, family="model", meaningful=0.01, tracks=REALWORLD_TRACKS, ranked=True,
                source=f"cosine of the WeSpeaker ResNet34 embedding against the speaker's voiceprint (mean embedding "
                       f"of their clean remix sources), as {OFFICIAL_RW}; model held locally")


def signed(metric: str, difference):
    """`difference` (a number, an array or a Series of score differences, e.g. a system minus the mixture) as
    "better by": unchanged where higher is better, negated where lower is (an error rate), so that a positive value
    always means better. Every view's difference goes through here."""
    return difference if SPECS[metric].higher_is_better else -difference


def headline_metric(present) -> str | None:
    """Of the metrics `present` (names), the one views lead with (lowest declared `headline`), or None."""
    ranked = sorted((SPECS[m].headline, m) for m in present if m in SPECS and SPECS[m].headline)
    return ranked[0][1] if ranked else None


def function(name: str):
    """The function a metric declares (`MetricSpec.function`), imported."""
    import importlib

    module, attr = SPECS[name].function.split(":")
    return getattr(importlib.import_module(module), attr)


TRACK_CHANNELS = {"mono": 1, "binaural": 2}


def applies(name: str, track: str) -> bool:
    """Whether metric `name` is scored on `track` ("mono", "binaural", "track1", "track2"): its declared `tracks`,
    else by channels (a metric of 1 channel on mono, of 2 on binaural, a mono one declared with `downmix` on
    binaural too)."""
    spec = SPECS[name]
    if spec.tracks:
        return track in spec.tracks
    channels = TRACK_CHANNELS.get(track)
    return spec.channels == channels or (spec.downmix and channels == 2)


def ranked_metrics(track: str) -> tuple[str, ...]:
    """The ranking columns of `track` (declared `ranked`), in column order; () where the track ranks none."""
    return tuple(m for m in SPECS if SPECS[m].ranked and applies(m, track))


def names(*, family: str | None = None) -> tuple[str, ...]:
    """Metric names in declaration order, optionally of one family."""
    return tuple(s.name for s in SPECS.values() if family is None or s.family == family)


ALL_METRICS = names()
FAMILIES = {**{f: names(family=f) for f in dict.fromkeys(s.family for s in SPECS.values())}, "all": ALL_METRICS}
