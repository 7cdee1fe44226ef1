"""The Real-World AVSE Challenge 2026 (issue 28): its layout in both forms, landmark pickles read without running
them, the official scorer's computations per item, the model metrics around stand-in models, the ranking, Track 2's
degradations, and a compare run on the embedded corpus in this layout."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avse_bench.cli import main
from avse_bench.data import load_split
from avse_bench.data.realworld import read_landmarks
from avse_bench.data.realworld_check import check
from avse_bench.errors import AvseBenchError
from avse_bench.metrics import model_pass
from avse_bench.metrics.realworld import cer, normalise_text, speaker_similarity
from avse_bench.metrics.scoring import score_split
from avse_bench.metrics.stats import rank_systems


@pytest.fixture(scope="module")
def rw_corpus(tmp_path_factory):
    """The embedded corpus in the Real-World layout: 3 train and 4 dev clips of 1.2-1.5 s (why 1.2: profiles.py),
    both tracks."""
    from avse_bench.data.synth_realworld import synthesize_realworld

    root = tmp_path_factory.mktemp("rw") / "corpus"
    synthesize_realworld(root, n_train=3, n_dev=4, seed=0, min_seconds=1.2, max_seconds=1.5, progress=False)
    return root


def _items(root, split="dev", track="track1"):
    return load_split(root, split, track)


# --- the layout -------------------------------------------------------------------------------------------------------
def test_both_forms_of_the_tree_give_the_same_items_and_pass_data_check(rw_corpus, tmp_path, capsys):
    nested = _items(rw_corpus)
    assert [s.id for s in nested][:2] == ["mix/000001/s1", "mix/000001/s2"]
    assert {s.meta["scene"] for s in nested} == {"mix", "remix"} and len(nested) == 8  # 4 clips, 2 tags each
    remix = [s for s in nested if s.meta["scene"] == "remix"]
    assert all(s.reference is not None and s.reference.name == f"{s.meta['tag']}.wav" for s in remix)
    assert all(s.reference is None for s in nested if s.meta["scene"] == "mix")  # real recordings: no reference
    manifest = json.loads((rw_corpus / "track1" / "dev" / "remix_manifest.json").read_text())
    assert remix[0].meta["speaker"] == next(r for r in manifest if r["mix_id"] == remix[0].meta["clip"])["s1_speaker"]
    zipped = tmp_path / "unzipped"  # one track's zip as it unpacks: the split folder at the top
    shutil.copytree(rw_corpus / "track2" / "dev", zipped / "dev")
    flat = load_split(zipped, "dev", "track2")
    assert [s.id for s in flat] == [s.id for s in nested] and flat[0].track == "track2"
    assert flat[0].output("OUT") == Path("OUT/track2/dev/mix/000001/s1.wav")  # the submission layout
    for args in (["data", "check", str(rw_corpus), "--split", "dev"], ["data", "check", str(zipped), "--split", "dev",
                                                                       "--track", "track2"]):
        assert main(args) == 0
        assert "OK: no broken item" in capsys.readouterr().out
    report = check(rw_corpus, "dev", "track2")
    assert report.without_landmarks == 2  # one clip of track 2 ships without landmark files, as the 3 m clips do


def test_a_damaged_tree_names_each_broken_item(rw_corpus, tmp_path, capsys):
    root = tmp_path / "damaged"
    shutil.copytree(rw_corpus / "track1", root / "track1")
    dev = root / "track1" / "dev"
    (dev / "mix" / "000001" / "s2.mp4").unlink()
    clip = sorted(p.name for p in (dev / "remix").iterdir())[0]
    (dev / "remix" / clip / "s1.wav").unlink()
    sf.write(dev / "remix" / sorted(p.name for p in (dev / "remix").iterdir())[1] / "mix.wav",
             np.zeros(8000, np.float32), 8000)
    (dev / "mix" / "000002" / "s1.pkl").write_bytes(pickle.dumps({"not": "a list"}))
    (dev / "mix" / "000002" / "notes.doc").write_text("?")
    assert main(["data", "check", str(root), "--split", "dev"]) == 1
    out = capsys.readouterr().out
    assert "mix/000001/s2: missing s2.mp4" in out
    assert f"remix/{clip}/s1: missing s1.wav" in out
    assert "wrong sample rate 8000 Hz in mix.wav" in out
    assert "mix/000002/s1: " in out and "a landmark file holds a list" in out
    assert "UNRECOGNISED: 1 file(s)" in out and "mix/000002/notes.doc" in out
    with pytest.raises(AvseBenchError, match=r"broken item\(s\)"):
        load_split(root, "dev", "track1")


def test_a_test_split_as_released_holds_inputs_only_and_is_scored_blind(rw_corpus, tmp_path, capsys):
    """The test split of 12 July: only mix.wav, the videos and the landmarks per clip; no transcripts, no clean
    sources, no manifests. Its items load without references and score with DNSMOS alone, saying so."""
    root = tmp_path / "released"
    for clip in (rw_corpus / "track1" / "dev").glob("*/*"):
        if clip.is_dir():
            dest = root / "track1" / "test" / clip.relative_to(rw_corpus / "track1" / "dev")
            dest.mkdir(parents=True)
            for name in ("mix.wav", "s1.mp4", "s2.mp4", "s1.pkl", "s2.pkl"):
                shutil.copy(clip / name, dest / name)
    items = load_split(root, "test", "track1")
    assert len(items) == 8 and all(s.reference is None and s.meta["transcript"] is None for s in items)
    assert main(["data", "check", str(root), "--split", "test"]) == 0
    assert "clean sources (remix): none (inputs only: scored blind)" in capsys.readouterr().out
    csv = score_split(root, "test", tmp_path / "blind.csv", jobs=1, progress=False, track="track1",
                      metrics="rw_si_sdr,dnsmos")
    rows = pd.read_csv(csv, dtype={"error": str}, keep_default_na=False)
    assert (rows.rw_si_sdr == "").all() and (rows.dnsmos_ovrl != "").all()
    assert "scored blind" in capsys.readouterr().err


class _Payload:
    """A pickle that runs a shell command when loaded by a plain unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_landmark_pickle_with_a_code_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "s1.pkl"
    bad.write_bytes(pickle.dumps([np.zeros((68, 2), np.float32), _Payload(marker)]))
    with pytest.raises(AvseBenchError, match=r"s1.pkl: not a landmark file \(refused posix.system"):
        read_landmarks(bad)
    assert not marker.exists()
    evil = tmp_path / "s2.pkl"  # one more of the kind: a builtin called with data
    evil.write_bytes(b"cbuiltins\neval\n(S'__import__(\"os\").system(\"touch " + str(marker).encode() + b"\")'\ntR.")
    with pytest.raises(AvseBenchError, match="refused builtins.eval"):
        read_landmarks(evil)
    assert not marker.exists()
    frames = [np.arange(136, dtype=np.float32).reshape(68, 2), None]
    for protocol in (2, 4, 5):  # NumPy 2 pickles of every protocol read back exactly
        good = tmp_path / f"p{protocol}.pkl"
        good.write_bytes(pickle.dumps(frames, protocol=protocol))
        got = read_landmarks(good)
        assert got[1] is None and np.array_equal(got[0], frames[0]) and got[0].dtype == np.float32
    shaped = tmp_path / "shape.pkl"
    shaped.write_bytes(pickle.dumps([np.zeros((5, 2), np.float32)]))
    with pytest.raises(AvseBenchError, match=r"frame 0 is an array \(5, 2\) float32, not 68 x 2"):
        read_landmarks(shaped)


# --- the official computations ------------------------------------------------------------------------------------
def _official(est: np.ndarray, ref: np.ndarray) -> dict:
    """eval_real's objective_scores: torchmetrics' metric objects on float32 tensors trimmed to the shorter."""
    import torch
    from torchmetrics.audio import (
        PerceptualEvaluationSpeechQuality,
        ScaleInvariantSignalDistortionRatio,
        ShortTimeObjectiveIntelligibility,
    )

    e, r = torch.from_numpy(est.astype(np.float32)), torch.from_numpy(ref.astype(np.float32))
    n = min(len(e), len(r))
    objects = {"rw_si_sdr": ScaleInvariantSignalDistortionRatio(),
               "rw_pesq_wb": PerceptualEvaluationSpeechQuality(16000, "wb"),
               "rw_stoi": ShortTimeObjectiveIntelligibility(16000, False)}
    return {k: float(m(e[:n], r[:n])) for k, m in objects.items()}


def _submission(rw_corpus: Path, out: Path) -> dict:
    """Hand-made outputs in the submission layout: the clean source plus noise, some float, some PCM16, one 16
    samples short, one missing. Returns {item id: estimate written or None}."""
    rng = np.random.default_rng(1)
    written = {}
    for i, s in enumerate(_items(rw_corpus)):
        mix, _ = sf.read(s.mixed, dtype="float32")
        base = sf.read(s.target, dtype="float32")[0] if s.target is not None else mix
        est = (base + 0.05 * rng.standard_normal(len(base))).astype(np.float32)
        if i == 5:
            est = est[:-16]
        path = s.output(out)
        if i == 6:
            written[s.id] = None
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, est, 16000, subtype="FLOAT" if i % 2 else "PCM_16")
        written[s.id] = sf.read(path, dtype="float32")[0]
    return written


def test_scores_of_a_submission_equal_the_official_computations(rw_corpus, tmp_path, capsys):
    out = tmp_path / "submission"
    written = _submission(rw_corpus, out)
    csv = score_split(rw_corpus, "dev", tmp_path / "scores.csv", enhanced_dir=out, jobs=1, progress=False,
                      track="track1", metrics="rw_si_sdr,rw_pesq_wb,rw_stoi,cer")
    rows = pd.read_csv(csv, dtype={"error": str}, keep_default_na=False).set_index("scene")
    items = {s.id: s for s in _items(rw_corpus)}
    checked = 0
    for item, est in written.items():
        row = rows.loc[item]
        if est is None:
            assert row.error.startswith("missing enhanced file") and row.rw_si_sdr == ""  # an error row, named
            continue
        if items[item].reference is None:  # mix: a real recording, no reference metric
            assert row.rw_si_sdr == row.rw_pesq_wb == row.rw_stoi == ""
            continue
        ref = sf.read(items[item].reference, dtype="float32")[0]
        for metric, value in _official(est, ref).items():
            assert float(row[metric]) == pytest.approx(value, abs=1e-6), (item, metric)
        checked += 1
    assert checked == 3  # of the 4 remix items one is missing; the one 16 samples short is among these
    assert "cer: n/a (no model here: set AVSE_BENCH_ASR_MODEL)" in rows.error.iloc[0]


def test_dnsmos_equals_the_official_torchmetrics_call_on_the_same_model_files(rw_corpus, tmp_path, monkeypatch):
    """The official scorer calls torchmetrics' deep_noise_suppression_mean_opinion_score(personalized=False), which
    reads ~/.torchmetrics/DNSMOS/DNSMOS/{sig_bak_ovr,model_v8}.onnx; speechmos ships the same two files. Given
    them, torchmetrics computes the four values this harness computes (ovr, sig, bak, p808)."""
    import speechmos
    import torch
    from torchmetrics.functional.audio.dnsmos import deep_noise_suppression_mean_opinion_score

    from avse_bench.metrics.dnsmos import dnsmos

    models = tmp_path / "home" / ".torchmetrics" / "DNSMOS" / "DNSMOS"
    models.mkdir(parents=True)
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        shutil.copy(Path(speechmos.__file__).parent / "dnsmos_models" / name, models / name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    item = _items(rw_corpus)[4]
    wav = sf.read(item.mixed, dtype="float32")[0]
    p808, sig, bak, ovr = (float(v) for v in deep_noise_suppression_mean_opinion_score(
        torch.from_numpy(wav), 16000, personalized=False, device="cpu"))
    ours = dnsmos(wav.astype(np.float64))
    assert ours["dnsmos_ovrl"] == pytest.approx(ovr, abs=1e-4)
    assert ours["dnsmos_sig"] == pytest.approx(sig, abs=1e-4)
    assert ours["dnsmos_bak"] == pytest.approx(bak, abs=1e-4)
    assert ours["dnsmos_p808"] == pytest.approx(p808, abs=1e-4)


# --- the model metrics, around stand-in models ------------------------------------------------------------------------
def _levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programming, the reference for the library's distance."""
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def test_cer_normalises_and_counts_characters_as_the_official_scorer():
    assert normalise_text("你好，世界！ (test) “ok” — a-b…") == "你好世界testokab"
    assert cer("你好，世界！", "你好世届") == 0.25
    assert cer("", "ab") == 2.0  # an empty reference counts over 1 character
    assert cer("abc", "xyzw") == pytest.approx(4 / 3)  # it can exceed 1
    assert cer("AbC", "abc") == 2 / 3  # no case folding, as the official normalisation


class StandInAsr:
    """Says the same words whatever it hears."""

    def transcribe(self, wav: np.ndarray) -> str:
        return "the same words"


class StandInSpeaker:
    """A 4-band log-energy envelope: a small, deterministic speaker 'embedding'."""

    def embed(self, wav: np.ndarray) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(wav.astype(np.float64)))
        return np.log1p(np.array([b.mean() for b in np.array_split(spectrum, 4)]))


class StandInUtmos:
    def predict(self, wav: np.ndarray) -> float:
        return 1.0 + float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))


def test_model_metrics_through_stand_in_models(rw_corpus, tmp_path, monkeypatch):
    models = {"cer": StandInAsr(), "spk_sim": StandInSpeaker(), "utmos": StandInUtmos()}
    monkeypatch.setattr(model_pass, "load_model", lambda metric: models[metric])
    csv = score_split(rw_corpus, "dev", tmp_path / "mixture.csv", jobs=1, progress=False, track="track1",
                      metrics="cer,spk_sim,utmos")
    rows = pd.read_csv(csv, dtype={"error": str}, keep_default_na=False).set_index("scene")
    items = _items(rw_corpus)
    prints = {}
    for s in items:  # the voiceprint: the mean of the normalised embeddings of each speaker's clean sources
        if s.target is not None:
            e = StandInSpeaker().embed(sf.read(s.target, dtype="float32")[0])
            prints.setdefault(s.meta["speaker"], []).append(e / np.linalg.norm(e))
    for s in items:
        wav = sf.read(s.mixed, dtype="float32")[0]
        text = Path(s.meta["transcript"]).read_text().strip()
        want_cer = _levenshtein(normalise_text(text), "thesamewords") / max(len(normalise_text(text)), 1)
        assert float(rows.loc[s.id, "cer"]) == pytest.approx(want_cer, abs=1e-12)
        assert float(rows.loc[s.id, "utmos"]) == pytest.approx(StandInUtmos().predict(wav), abs=1e-9)
        if s.meta["speaker"] not in prints:  # a speaker heard only in mix clips has no clean source: no voiceprint
            assert rows.loc[s.id, "spk_sim"] == ""
            assert rows.loc[s.id, "error"] == (f"spk_sim: n/a (no voiceprint for speaker {s.meta['speaker']}: no "
                                               "clean remix source of theirs in this split)")
            continue
        e, v = StandInSpeaker().embed(wav), np.mean(prints[s.meta["speaker"]], axis=0)
        assert float(rows.loc[s.id, "spk_sim"]) == pytest.approx(
            np.dot(e, v) / (np.linalg.norm(e) * np.linalg.norm(v) + 1e-8), abs=1e-9)
        assert rows.loc[s.id, "error"] == ""
    assert rows.spk_sim.ne("").sum() >= 4  # the remix speakers' items have it
    assert speaker_similarity(np.ones(3), np.ones(3)) == pytest.approx(1.0)


def test_a_model_named_by_the_environment_is_loaded_and_a_missing_one_is_one_line(monkeypatch, tmp_path):
    from avse_bench.metrics.realworld import ModelUnavailable, load_model

    monkeypatch.setenv("AVSE_BENCH_UTMOS_MODEL", "test_realworld:StandInUtmos")
    assert isinstance(load_model("utmos"), StandInUtmos)
    monkeypatch.setenv("AVSE_BENCH_ASR_MODEL", str(tmp_path / "nowhere"))
    with pytest.raises(ModelUnavailable, match="AVSE_BENCH_ASR_MODEL=.*nowhere: no such folder"):
        load_model("cer")
    monkeypatch.delenv("AVSE_BENCH_SPEAKER_MODEL", raising=False)
    with pytest.raises(ModelUnavailable, match="set AVSE_BENCH_SPEAKER_MODEL to a local copy"):
        load_model("spk_sim")


# --- ranking ----------------------------------------------------------------------------------------------------------
def test_ranking_is_ascending_for_cer_and_the_mean_of_ranks():
    means = pd.DataFrame({"system": ["a", "b", "c"], "rw_si_sdr": [10.0, 12.0, 9.0], "cer": [0.12, 0.15, 0.10],
                          "spk_sim": [0.7, 0.7, 0.6], "utmos": [2.0, np.nan, 2.1]})
    ranked = rank_systems(means, ["rw_si_sdr", "cer", "spk_sim", "utmos"]).set_index("system")
    assert ranked.loc["c", "cer"] == 1 and ranked.loc["b", "cer"] == 3  # lower CER is better
    assert ranked.loc["a", "spk_sim"] == ranked.loc["b", "spk_sim"] == 1.5  # a tie shares the average rank
    assert ranked["utmos"].isna().all()  # not every system has it: not ranked
    assert ranked.loc["a", "mean rank"] == pytest.approx((2 + 2 + 1.5) / 3)
    assert list(ranked.index) == ["a", "b", "c"] and (ranked["metrics ranked"] == 3).all()


# --- Track 2's degradations ------------------------------------------------------------------------------------------
def test_track2_degradations_follow_the_official_distributions():
    from avse_bench.data.stress import Stress

    frames = np.random.default_rng(0).integers(1, 255, (50, 24, 24)).astype(np.uint8)
    for item in (f"remix/{i:06d}/s1" for i in range(40)):
        black = Stress("rw_blackout", 1).apply(frames, item)
        n_black = int((black.reshape(50, -1).max(axis=1) == 0).sum())
        assert int(0.2 * 50) <= n_black <= int(0.8 * 50)
        frozen = Stress("rw_freeze", 1).apply(frames, item)
        repeated = int((frozen.reshape(50, -1) != frames.reshape(50, -1)).any(axis=1).sum())
        assert 2 <= repeated <= int(0.3 * 50) - 1  # a run of 3..15 frames showing its first: 2..14 changed
        shifted = Stress("rw_desync", 1).apply(frames, item)
        assert shifted.shape == frames.shape and not np.array_equal(shifted, frames)  # a shift of 0 becomes +-3
        assert np.array_equal(Stress("rw_track2", 1).apply(frames, item), Stress("rw_track2", 1).apply(frames, item))


# --- the whole harness ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_compare_on_the_embedded_realworld_corpus_ranks_two_systems_and_stresses_as_track2(rw_corpus, tmp_path,
                                                                                           capsys):
    out = tmp_path / "run"
    code = main(["compare", "dcnn_rnn", "dcnn_rnn_code", "--data", str(rw_corpus), "--track", "track1", "--profile",
                 "smoke", "--out", str(out), "--stress", "rw_track2", "rw_blackout"])
    assert code == 0, capsys.readouterr().err[-2000:]
    sheet = (out / "sheet.md").read_text()
    assert "### Ranking (as the Real-World AVSE 2026 leaderboard ranks)" in sheet
    assert "### By scene: mix" in sheet and "Real-World AVSE 2026 data, **track1**" in sheet
    ranking = pd.read_csv(out / "ranking.csv")
    assert sorted(ranking.system) == ["dcnn_rnn", "dcnn_rnn_code"] and ranking["metrics ranked"].iloc[0] == 4
    assert ranking["CER"].str.startswith("n/a (no model here").all()
    assert all(f"| {i} " in sheet for i in range(1, 14))  # the 13 items
    assert (out / "enhanced" / "dcnn_rnn" / "av" / "track1" / "dev" / "mix" / "000001" / "s1.wav").is_file()
    import re

    html = (out / "report.html").read_text()
    linked = re.findall(r'src="([^"]+)"', html)
    assert any("listen/dev/remix/" in src for src in linked)  # the cards of nested item ids
    assert [src for src in linked if not (out / src).is_file()] == []  # every player, spectrogram and strip is there
    robustness = pd.read_csv(out / "robustness.csv")
    assert {"rw_track2", "rw_blackout"} <= set(robustness.condition)
