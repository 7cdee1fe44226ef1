"""AVSEC-4 data as distributed (binaural, reverberant, 1-3 maskers), read and scored as the official evaluation:
the layout and `data check`, the binaural track (MBSTOI of 2-channel files against `_target_anechoic`) and the mono
track (the mono metrics against `_target_mono_anechoic`), wrong channel counts as error rows (issue 19)."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import numpy as np
import pesq
import pystoi
import pytest
import soundfile as sf

from avse_bench.cli import main
from avse_bench.data import load_split
from avse_bench.data.check import check_split
from avse_bench.data.layout import MONO_PARTS
from avse_bench.errors import AvseBenchError
from avse_bench.metrics.dnsmos import dnsmos
from avse_bench.metrics.scoring import score_split

FS = 16000
MASKERS = {"S00005": [{"type": "speech"}], "S00006": [{"type": "noise"}, {"type": "music"}],
           "S00007": [{"type": "speech"}, {"type": "noise"}, {"type": "music"}]}


def _ears(x: np.ndarray, itd: int, ild_db: float) -> np.ndarray:
    """(L, 2): a source to one side: the far ear `itd` samples later and `ild_db` quieter (a crude head)."""
    far = np.r_[np.zeros(itd), x[: len(x) - itd]] * 10 ** (-ild_db / 20)
    return np.stack([x, far], axis=1)


def _room(x: np.ndarray, rng) -> np.ndarray:
    """x (L, 2) through a short exponentially decaying noise tail per ear (a stand-in for a room response)."""
    tail = rng.normal(0, 1, (800, 2)) * np.exp(-np.arange(800) / 160)[:, None]
    tail[0] = 1.0
    return np.stack([np.convolve(x[:, c], tail[:, c])[: len(x)] for c in range(2)], axis=1)


def _peak(x: np.ndarray, peak: float = 0.8) -> np.ndarray:
    return x * (peak / np.abs(x).max())


TRAIN_MASKERS = {"S00001": [{"type": "noise"}], "S00002": [{"type": "speech"}, {"type": "music"}],
                 "S00003": [{"type": "music"}], "S00004": [{"type": "speech"}, {"type": "noise"}]}


def lay_out_avsec4(src_root, root, split: str, maskers: dict, rng) -> None:
    """The embedded corpus's `split` scenes laid out by hand as AVSEC-4 scenes: the target to one side with a
    propagation delay (anechoic) and a room (reverberant), the interferer to the other, the mixture peak-normalised,
    each mono file (L+R)/2 normalised on its own, `maskers` (scene -> interferers) in the metadata."""
    scenes = root / split / "scenes"
    scenes.mkdir(parents=True)
    records = []
    for sid, kinds in maskers.items():
        src = src_root / split / "scenes"
        target, _ = sf.read(src / f"{sid}_target.wav")
        interferer, _ = sf.read(src / f"{sid}_interferer.wav")
        delay = 24  # 1.5 ms of propagation before the anechoic reference starts
        anechoic = _ears(np.r_[np.zeros(delay), target[:-delay]], itd=8, ild_db=4)
        reverberant = _room(anechoic, rng)
        noise = _room(_ears(interferer, itd=10, ild_db=6)[:, ::-1], rng)
        mix = reverberant + noise
        scale = 0.8 / np.abs(mix).max()
        files = {"mix": mix * scale, "target": reverberant * scale, "interferer": noise * scale,
                 "target_anechoic": _peak(anechoic)}
        files.update({MONO_PARTS[k]: _peak(v.mean(axis=1)) for k, v in list(files.items())})
        for part, audio in files.items():
            sf.write(scenes / f"{sid}_{part}.wav", audio, FS, subtype="PCM_16")
        shutil.copy(src / f"{sid}_silent.mp4", scenes / f"{sid}_silent.mp4")
        records.append({"scene": sid, "room": "R00001", "dataset": split, "SNR": float(rng.uniform(-10, 10)),
                        "target": {"name": "T1", "time_start": 0, "time_end": len(target)},
                        "duration": len(target), "interferers": [{**m, "name": f"I{i}", "position": i + 1,
                                                                  "time_start": 0, "time_end": len(target)}
                                                                 for i, m in enumerate(kinds)],
                        "listener": {"hrir_filename": ["VP_N1-ED"], "rotation": []}})
    (root / "metadata").mkdir(exist_ok=True)
    (root / "metadata" / f"scenes.{split}.json").write_text(json.dumps(records))


@pytest.fixture(scope="module")
def avsec4(tiny_corpus, tmp_path_factory):
    """An AVSEC-4 root laid out by hand (`lay_out_avsec4`) from the tiny corpus: 4 train and 3 dev scenes."""
    root = tmp_path_factory.mktemp("avsec4")
    rng = np.random.default_rng(4)
    lay_out_avsec4(tiny_corpus, root, "train", TRAIN_MASKERS, rng)
    lay_out_avsec4(tiny_corpus, root, "dev", MASKERS, rng)
    return root


def _rows(path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["scene"]: r for r in csv.DictReader(f)}


def official_mbstoi(ref_path, deg_path) -> float:
    """The official AVSEC-4 evaluation's call (evaluation/avse4/objective_evaluation.py: compute_mbstoi), on the
    files as its read_audio reads them (SoundFile(...).read())."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from clarity.evaluator.mbstoi import mbstoi
    clean, enhanced = sf.SoundFile(str(ref_path)).read(), sf.SoundFile(str(deg_path)).read()
    return mbstoi(clean[:, 0], clean[:, 1], enhanced[:, 0], enhanced[:, 1], sr_signal=FS)


def test_the_layout_and_data_check(avsec4, capsys):
    report = check_split(avsec4, "dev", sync=False)
    assert report.ok, report.format()
    assert report.layout == "avsec4" and "layout: AVSEC-4" in report.format()
    binaural = load_split(avsec4, "dev")  # AVSEC-4's default track
    assert [s.track for s in binaural] == ["binaural"] * 3 and binaural[0].mixed.name == "S00005_mix.wav"
    assert binaural[0].reference.name == "S00005_target_anechoic.wav" and binaural[0].channels == 2
    mono = load_split(avsec4, "dev", "mono")
    assert mono[0].mixed.name == "S00005_mono_mix.wav" and mono[0].reference.name == "S00005_target_mono_anechoic.wav"
    assert mono[0].target.name == "S00005_target_anechoic.wav"  # trained against it, downmixed, as the official code
    assert [s.masker for s in mono] == ["speech", "noise+music", "speech+noise+music"]
    assert [s.n_maskers for s in mono] == [1, 2, 3]


def test_a_wrong_channel_count_or_length_in_the_data_is_a_broken_scene(avsec4, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(avsec4, root)
    scenes = root / "dev" / "scenes"
    mono, _ = sf.read(scenes / "S00005_mono_mix.wav")
    sf.write(scenes / "S00005_mix.wav", mono, FS, subtype="PCM_16")  # a binaural file with one channel
    both, _ = sf.read(scenes / "S00006_target_anechoic.wav")
    sf.write(scenes / "S00006_target_anechoic.wav", both[:-100], FS, subtype="PCM_16")
    report = check_split(root, "dev", sync=False)
    assert "1 channel(s) in S00005_mix.wav (expected 2: left and right ear)" in report.problems["S00005"][0]
    assert any("target_anechoic has" in p for p in report.problems["S00006"])


def test_the_binaural_track_scores_mbstoi_as_the_official_evaluation(avsec4, tmp_path):
    rows = _rows(score_split(avsec4, "dev", tmp_path / "noisy.csv", jobs=2, progress=False))
    scenes = avsec4 / "dev" / "scenes"
    for sid, row in rows.items():
        assert row["error"] == "" and row["stoi"] == ""
        expected = official_mbstoi(scenes / f"{sid}_target_anechoic.wav", scenes / f"{sid}_mix.wav")
        assert float(row["mbstoi"]) == pytest.approx(expected, abs=1e-6)
        assert 0 < float(row["mbstoi"]) < 1
    assert rows["S00006"]["masker"] == "noise+music"


def test_the_mono_track_scores_the_mono_metrics_against_the_mono_reference(avsec4, tmp_path):
    rows = _rows(score_split(avsec4, "dev", tmp_path / "noisy.csv", jobs=1, progress=False, track="mono",
                             metrics="intrusive"))
    scenes = avsec4 / "dev" / "scenes"
    for sid, row in rows.items():
        ref = sf.SoundFile(str(scenes / f"{sid}_target_mono_anechoic.wav")).read()
        mix = sf.SoundFile(str(scenes / f"{sid}_mono_mix.wav")).read()
        assert row["mbstoi"] == "" and row["error"] == ""
        assert float(row["pesq_wb"]) == pytest.approx(pesq.pesq(FS, ref, mix, "wb"), abs=1e-9)
        assert float(row["stoi"]) == pytest.approx(pystoi.stoi(ref, mix, FS), abs=1e-9)


def test_enhanced_files_are_scored_on_their_track_and_a_wrong_channel_count_is_an_error_row(avsec4, tmp_path):
    scenes = avsec4 / "dev" / "scenes"
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    for sid in MASKERS:
        clean, _ = sf.read(scenes / f"{sid}_target_anechoic.wav")
        noisy, _ = sf.read(scenes / f"{sid}_mix.wav")
        sf.write(two / f"{sid}.wav", 0.7 * clean + 0.3 * noisy, FS, subtype="PCM_16")  # a binaural "system"
        sf.write(one / f"{sid}.wav", (0.7 * clean + 0.3 * noisy).mean(axis=1), FS, subtype="PCM_16")
    binaural = _rows(score_split(avsec4, "dev", tmp_path / "b.csv", enhanced_dir=two, jobs=1, progress=False))
    noisy = _rows(score_split(avsec4, "dev", tmp_path / "n.csv", jobs=1, progress=False))
    for sid in MASKERS:
        assert float(binaural[sid]["mbstoi"]) == pytest.approx(
            official_mbstoi(scenes / f"{sid}_target_anechoic.wav", two / f"{sid}.wav"), abs=1e-6)
        assert float(binaural[sid]["mbstoi"]) > float(noisy[sid]["mbstoi"])
    mono = _rows(score_split(avsec4, "dev", tmp_path / "m.csv", enhanced_dir=one, jobs=1, progress=False,
                             track="mono", metrics="stoi"))
    assert all(r["stoi"] != "" and r["error"] == "" for r in mono.values())
    wrong = _rows(score_split(avsec4, "dev", tmp_path / "w.csv", enhanced_dir=one, jobs=1, progress=False))
    assert all(r["mbstoi"] == "" and r["error"] == f"{s}.wav has 1 channel(s); the binaural track needs 2"
               for s, r in wrong.items())
    wrong = _rows(score_split(avsec4, "dev", tmp_path / "w2.csv", enhanced_dir=two, jobs=1, progress=False,
                              track="mono", metrics="stoi"))
    assert all(r["error"] == f"{s}.wav has 2 channel(s); the mono track needs 1" for s, r in wrong.items())


def test_avsec2_data_has_no_binaural_track(tiny_corpus, tmp_path, capsys):
    with pytest.raises(AvseBenchError, match="AVSEC-1/2/3 data, which has no binaural track"):
        load_split(tiny_corpus, "dev", "binaural")
    assert main(["score", "--data", str(tiny_corpus), "--split", "dev", "--out", str(tmp_path / "s.csv"),
                 "--track", "binaural"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_compare_a_mono_system_on_the_mono_track(avsec4, tmp_path, capsys):
    """`compare dcnn_rnn --data AVSEC4 --track mono --profile smoke`: the mono system reads _mono_mix, trains
    against _target_anechoic downmixed, is scored against _target_mono_anechoic; the masker combinations show in the
    breakdown. Without --track it is one line: the default track is binaural."""
    out = tmp_path / "run"
    args = ["compare", "dcnn_rnn", "--data", str(avsec4), "--profile", "smoke", "--device", "cpu", "--workers", "0",
            "--out", str(out)]
    assert main(args) == 2
    assert "pass --track mono" in capsys.readouterr().err
    assert main([*args, "--track", "mono"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["layout"] == "avsec4" and manifest["data"]["track"] == "mono"
    summary = json.loads((out / "runs" / "dcnn_rnn" / "train_summary.json").read_text())
    assert summary["track"] == "mono"
    with open(out / "scores.csv", newline="") as f:
        scores = {(r["system"], r["condition"], r["scene"]): r for r in csv.DictReader(f)}
    scenes = avsec4 / "dev" / "scenes"
    ref = sf.SoundFile(str(scenes / "S00006_target_mono_anechoic.wav")).read()
    mix = sf.SoundFile(str(scenes / "S00006_mono_mix.wav")).read()
    assert float(scores["noisy", "mixture", "S00006"]["stoi"]) == pytest.approx(pystoi.stoi(ref, mix, FS), abs=1e-9)
    assert scores["dcnn_rnn", "av", "S00007"]["masker"] == "speech+noise+music"
    sheet = (out / "sheet.md").read_text()
    assert "AVSEC-4 data, **mono track**: the systems read `_mono_mix.wav`" in sheet
    by_masker = sheet[sheet.index("### By masker type"):]
    assert "| noise+music " in by_masker and "| speech+noise+music " in by_masker
    by_count = sheet[sheet.index("### By number of maskers"):sheet.index("### By SNR band")]
    assert all(f"| {n} " in by_count for n in ("1", "2", "3"))


@pytest.mark.slow
def test_the_embedded_corpus_in_the_avsec4_layout(tmp_path):
    """`data synth --layout avsec4`: binaural, reverberant scenes with 1-3 maskers that data check passes, in the
    AVSEC-4 files and metadata; the same seed gives the same bytes; the binaural track scores it."""
    import hashlib

    from avse_bench.data.synth import synthesize

    roots = [synthesize(tmp_path / f"c{i}", n_train=0, n_dev=4, seed=3, min_seconds=1.0, max_seconds=1.5,
                        progress=False, layout="avsec4") for i in range(2)]
    digests = [{p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (r / "dev" / "scenes").iterdir()}
               for r in roots]
    assert digests[0] == digests[1] and len(digests[0]) == 4 * 9
    report = check_split(roots[0], "dev", sync=False)
    assert report.ok and report.layout == "avsec4", report.format()
    records = json.loads((roots[0] / "metadata" / "scenes.dev.json").read_text())
    assert all(1 <= len(r["interferers"]) <= 3 and {"room", "listener", "target", "SNR"} <= set(r) for r in records)
    assert all(sum(i["type"] == "music" for i in r["interferers"]) <= 1 for r in records)
    mix, _ = sf.read(roots[0] / "dev" / "scenes" / "S00001_mix.wav")
    assert mix.shape[1] == 2 and not np.allclose(mix[:, 0], mix[:, 1])  # two ears that differ
    rows = _rows(score_split(roots[0], "dev", tmp_path / "s.csv", jobs=1, progress=False))
    assert all(r["error"] == "" and 0 < float(r["mbstoi"]) < 1 for r in rows.values())


def test_an_avsec4_eval_split_is_read_and_scored_blind(avsec4, tmp_path):
    """AVSEC-4's eval split holds only _silent.mp4, _mono_mix.wav and _mix.wav: data check passes it as an
    evaluation split, the mono track scores it with DNSMOS alone, and so does the binaural track, on the (L + R) / 2
    downmix of _mix.wav (checked against DNSMOS of that downmix computed here)."""
    root = tmp_path / "root"
    (root / "eval" / "scenes").mkdir(parents=True)
    for f in (avsec4 / "dev" / "scenes").iterdir():
        if f.name.endswith(("_silent.mp4", "_mono_mix.wav")) or f.name.endswith("_mix.wav"):
            shutil.copy(f, root / "eval" / "scenes" / f.name)
    report = check_split(root, "eval", sync=False)
    assert report.ok and not report.has_targets and report.layout == "avsec4", report.format()
    scenes = load_split(root, "eval", "mono")
    assert all(s.reference is None and s.target is None and s.mixed.name.endswith("_mono_mix.wav") for s in scenes)
    rows = _rows(score_split(root, "eval", tmp_path / "blind.csv", jobs=1, progress=False, track="mono"))
    assert all(r["dnsmos_ovrl"] != "" and r["stoi"] == "" and r["error"] == "" for r in rows.values())
    assert main(["score", "--data", str(root), "--split", "eval", "--out", str(tmp_path / "b.csv")]) == 0
    binaural = _rows(tmp_path / "b.csv")
    assert binaural.keys() == rows.keys() and all(r["error"] == "" and r["mbstoi"] == "" for r in binaural.values())
    for scene, r in binaural.items():
        mix, _ = sf.read(root / "eval" / "scenes" / f"{scene}_mix.wav")  # (L, 2) float64, as the scorer reads it
        assert float(r["dnsmos_ovrl"]) == pytest.approx(dnsmos(mix.mean(axis=1))["dnsmos_ovrl"], abs=1e-6)
