"""The AVSEC layout reader and `data check`: every scene is loaded or named as broken, with what is wrong."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from avse_bench.cli import main
from avse_bench.data import load_split
from avse_bench.data.check import check_split, run_check
from avse_bench.data.face import write_mp4
from avse_bench.errors import AvseBenchError


def test_load_split_reads_scenes_and_metadata(tiny_corpus):
    scenes = load_split(tiny_corpus, "train")
    assert [s.id for s in scenes] == ["S00001", "S00002", "S00003", "S00004"]
    records = {r["scene"]: r for r in json.loads((tiny_corpus / "metadata" / "scenes.train.json").read_text())}
    for s in scenes:
        assert s.split == "train" and s.mixed.name == f"{s.id}_mixed.wav" and s.video.name == f"{s.id}_silent.mp4"
        assert s.target.name == f"{s.id}_target.wav" and s.interferer.name == f"{s.id}_interferer.wav"
        assert s.meta == records[s.id]
        assert s.masker == records[s.id]["interferer"]["type"] and s.snr_db == records[s.id]["SNR"]
    assert [s.id for s in load_split(tiny_corpus, "dev")] == ["S00005", "S00006", "S00007"]


def copy_split(src_root, dst_root, split="train", with_metadata=True):
    shutil.copytree(src_root / split, dst_root / split)
    if with_metadata:
        (dst_root / "metadata").mkdir()
        shutil.copy(src_root / "metadata" / f"scenes.{split}.json", dst_root / "metadata")
    return dst_root / split / "scenes"


def test_eval_split_without_targets_or_metadata(tiny_corpus, tmp_path):
    scenes_dir = copy_split(tiny_corpus, tmp_path, "dev", with_metadata=False)
    for f in scenes_dir.glob("*_target.wav"):
        f.unlink()
    scenes = load_split(tmp_path, "dev")
    assert len(scenes) == 3 and all(s.target is None and s.masker is None and s.snr_db is None for s in scenes)
    report = check_split(tmp_path, "dev")
    assert report.ok and not report.has_targets
    assert "none (evaluation split)" in report.format()
    assert "audio-visual correlation: n/a (no targets)" in report.format()


def test_missing_split_folder_is_a_user_error(tmp_path):
    with pytest.raises(AvseBenchError, match="no scene folder"):
        load_split(tmp_path, "train")
    assert main(["data", "check", str(tmp_path), "--split", "train"]) == 2


@pytest.fixture()
def broken_root(tiny_corpus, tmp_path):
    """The tiny train split, with scenes copied to new ids and broken one way each; S00001 stays intact."""
    scenes = copy_split(tiny_corpus, tmp_path)
    records = json.loads((tmp_path / "metadata" / "scenes.train.json").read_text())

    def clone(new_id):
        for f in scenes.glob("S00001_*"):
            shutil.copy(f, scenes / f.name.replace("S00001", new_id))

    (scenes / "S00002_silent.mp4").unlink()  # missing video
    (scenes / "S00003_silent.mp4").write_bytes(b"\x00" * 2048)  # unreadable video
    audio, _ = sf.read(scenes / "S00004_mixed.wav")
    sf.write(scenes / "S00004_mixed.wav", audio[::2], 8000, subtype="PCM_16")  # wrong sample rate
    clone("S00010")
    sf.write(scenes / "S00010_target.wav", np.zeros(0), 16000, subtype="PCM_16")  # empty audio
    clone("S00011")
    audio, _ = sf.read(scenes / "S00011_mixed.wav")
    for part in ("mixed", "target", "interferer"):  # audio 0.5 s longer than the video
        sf.write(scenes / f"S00011_{part}.wav", np.r_[audio, np.zeros(8000)], 16000, subtype="PCM_16")
    clone("S00012")
    (scenes / "S00012_target.wav").unlink()  # missing target in a split that has targets
    clone("S00013")
    write_mp4(scenes / "S00013_silent.mp4", np.zeros((5, 224, 224, 3), np.uint8))  # video far too short
    records.append({**records[0], "scene": "S00014"})  # in the metadata, no files at all
    (tmp_path / "metadata" / "scenes.train.json").write_text(json.dumps(records))
    clone("S00015")  # intact copy
    return tmp_path


EXPECTED = {"S00002": "missing file S00002_silent.mp4", "S00003": "unreadable video",
            "S00004": "wrong sample rate 8000 Hz", "S00010": "empty audio S00010_target.wav",
            "S00011": "more than a frame apart", "S00012": "missing file S00012_target.wav",
            "S00013": "more than a frame apart",
            "S00014": "missing file S00014_mixed.wav, S00014_silent.mp4, S00014_target.wav"}


def test_check_names_every_broken_scene(broken_root, capsys):
    report = check_split(broken_root, "train")
    assert set(report.problems) == set(EXPECTED)
    for sid, words in EXPECTED.items():
        assert any(words in p for p in report.problems[sid]), (sid, report.problems[sid])
    assert run_check(broken_root, "train") == 1
    out = capsys.readouterr().out
    assert "BROKEN: 8 scene(s)" in out
    for sid in EXPECTED:
        assert f"  {sid}: " in out
    assert "S00001:" not in out and "S00015:" not in out
    assert "10 scenes" in out


def test_load_split_refuses_broken_scenes_by_name(broken_root):
    with pytest.raises(AvseBenchError) as err:
        load_split(broken_root, "train")
    for sid in ("S00002", "S00012", "S00014"):  # the missing-file ones
        assert sid in str(err.value)


def test_check_summary_of_a_sound_split(tiny_corpus, capsys):
    assert main(["data", "check", str(tiny_corpus), "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "4 scenes" in out and "16000 Hz (12)" in out and "25.0 fps (4)" in out and "224x224 (4)" in out
    assert "OK: no broken scene" in out
    assert "maskers by SNR band" in out
    assert "target:" in out and "mean r =" in out  # the embedded corpus's A/V figures
