"""Every challenge edition the harness reads, declared once: its data layout's name, tracks, the breakdowns its
sheet shows, whether its leaderboard ranks systems, and how its official scorer computes the reference metrics.

One `register_edition(...)` call per edition, as lm-evaluation-harness declares a task in one file. The metrics of a
track are declared with the metrics (`metrics.spec`: `tracks`, `ranked`), the files of a layout with its reader
(`data.layout` for AVSEC-1/2/3 and AVSEC-4, `data.realworld`); the report, the track option's check and the data
summary read this table. Imports nothing else of the harness.
"""

from __future__ import annotations

from dataclasses import dataclass

MASKER_BREAKDOWNS = (("masker", "By masker type"), ("n_maskers", "By number of maskers"), ("snr_band", "By SNR band"))


@dataclass(frozen=True)
class Edition:
    """`name`: the layout's name in a run's manifest (`data.layout`). `label`: as printed. `tracks`: its `--track`
    values, the default first. `breakdowns`: (scores column or derived group, title) of the sheet's breakdown
    tables (`metrics.stats.breakdown`). `ranked`: its leaderboard ranks systems by the mean of their ranks over the
    metrics declared `ranked` (`metrics.stats.rank_systems`). `scoring`: how its official scorer computes the
    reference metrics, in one sentence for the sheet."""

    name: str
    label: str
    tracks: tuple[str, ...]
    breakdowns: tuple[tuple[str, str], ...]
    scoring: str
    ranked: bool = False

    @property
    def default_track(self) -> str:
        return self.tracks[0]


EDITIONS: dict[str, Edition] = {}


def register_edition(**fields) -> Edition:
    """Declare an edition (the fields of `Edition`)."""
    edition = Edition(**fields)
    if edition.name in EDITIONS:
        raise ValueError(f"edition {edition.name!r} declared twice")
    EDITIONS[edition.name] = edition
    return edition


register_edition(name="avsec2", label="AVSEC-1/2/3", tracks=("mono",), breakdowns=MASKER_BREAKDOWNS,
                 scoring="PESQ-WB as the official AVSEC script, STOI classic; SI-SDR on zero-mean signals")
register_edition(name="avsec4", label="AVSEC-4", tracks=("binaural", "mono"), breakdowns=MASKER_BREAKDOWNS,
                 scoring="MBSTOI as the official AVSEC-4 evaluation (pyclarity); on the mono track PESQ-WB as the "
                         "official AVSEC script, STOI classic")
register_edition(name="realworld", label="Real-World AVSE 2026 (ISCSLP)", tracks=("track1", "track2"),
                 breakdowns=(("part", "By scene: mix (real two-talker recordings) and remix (summed clips)"),),
                 ranked=True,
                 scoring="SI-SDR (not zero-mean), PESQ-WB and STOI as the official Real-World scorer computes them "
                         "(torchmetrics on the float32 pair trimmed to the shorter length), on the remix items only; "
                         "DNSMOS, UTMOS, CER and speaker similarity on every item")


def edition(name: str | None) -> Edition:
    """The edition of a layout name (a run's `data.layout`); AVSEC-1/2/3 for runs that did not record one."""
    return EDITIONS.get(name or "avsec2", EDITIONS["avsec2"])
