"""The pipeline's shared names, in one base module that imports nothing of avse-bench but the layout's track names:
the rows of a score table (the mixture, the conditions), the splits a compare run uses, the metrics stress
conditions are scored with, a run's status, and the run folder's file names. compare, the report's loader and its
views (quality, stress, listen, readme) all read them from here, so none of them imports another to learn a name.
"""

from __future__ import annotations

NOISY = "noisy"  # the `system` of the unprocessed mixture's rows
MIXTURE, AV, AUDIO_ONLY = "mixture", "av", "audio_only"  # the `condition` of a row: the mixture, video, blank video
CONDITION_LABELS = {MIXTURE: "mixture", AV: "audio-visual", AUDIO_ONLY: "audio only, blank video"}
CONDITIONS = {AV: False, AUDIO_ONLY: True}  # a system's condition -> whether its video is blanked

TRAIN_SPLIT, EVAL_SPLIT, BLIND_SPLIT = "train", "dev", "eval"

REALWORLD_TRACKS = ("track1", "track2")  # data.realworld.TRACKS (this module imports nothing heavy)
STRESS_METRICS = ("si_sdr", "pesq_wb", "stoi")  # a mono track's; the binaural track's is MBSTOI (`stress_metrics`)

RUNNING, FINISHED = "running", "finished"  # manifest["status"]

MANIFEST, SCORES, STRESS_CSV, BLIND_CSV, PROFILE = "manifest.json", "scores.csv", "stress.csv", "blind.csv", \
    "profile.json"


def stress_metrics(track: str) -> tuple[str, ...]:
    """The metrics stress conditions are scored with: SI-SDR, PESQ-WB and STOI on a mono track, MBSTOI (the
    challenge's metric there) on the binaural one, the official SI-SDR, PESQ-WB and STOI on a Real-World track."""
    if track in REALWORLD_TRACKS:  # the official reference metrics (remix items)
        return ("rw_si_sdr", "rw_pesq_wb", "rw_stoi")
    return ("mbstoi",) if track == "binaural" else STRESS_METRICS
