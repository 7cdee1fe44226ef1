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
    for f in [*scenes_dir.glob("*_target.wav"), *scenes_dir.glob("*_interferer.wav")]:  # as the challenge's eval
        f.unlink()
    scenes = load_split(tmp_path, "dev")
    assert len(scenes) == 3 and all(s.target is None and s.masker is None and s.snr_db is None for s in scenes)
    report = check_split(tmp_path, "dev")
    assert report.ok and not report.has_targets
    assert "none (evaluation split)" in report.format()
    assert "audio-visual correlation: n/a (no targets)" in report.format()


def test_split_that_lost_its_targets_is_broken_not_blind(tiny_corpus, tmp_path):
    """Every _target.wav gone but the interferers kept: the split has references (interferers are only in splits
    with targets), so each scene is broken, never an evaluation split scored blind."""
    scenes_dir = copy_split(tiny_corpus, tmp_path, "dev", with_metadata=False)
    for f in scenes_dir.glob("*_target.wav"):
        f.unlink()
    report = check_split(tmp_path, "dev", sync=False)
    assert report.has_targets and not report.ok
    assert report.problems["S00005"] == ["missing file S00005_target.wav"]
    with pytest.raises(AvseBenchError, match="3 broken scene"):
        load_split(tmp_path, "dev")


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


def _rename_scene(scenes_dir, old: str, new: str) -> None:
    for path in scenes_dir.glob(f"{old}_*"):
        path.rename(path.with_name(new + path.name[len(old):]))


@pytest.mark.parametrize("new_id", ["5535415699068794046_00001", "spk_01.take_2"])
@pytest.mark.parametrize("with_metadata", [False, True])
def test_scene_ids_with_underscores_and_dots_are_scenes(tiny_corpus, tmp_path, new_id, with_metadata):
    """Issue 18, item 7: an LRS2/VoxCeleb-style id with '_' was dropped silently (no metadata) or reported as
    missing files (metadata); one more of the kind: underscores and dots together."""
    scenes_dir = copy_split(tiny_corpus, tmp_path, with_metadata=with_metadata)
    _rename_scene(scenes_dir, "S00002", new_id)
    if with_metadata:
        path = tmp_path / "metadata" / "scenes.train.json"
        records = json.loads(path.read_text())
        for r in records:
            r["scene"] = new_id if r["scene"] == "S00002" else r["scene"]
        path.write_text(json.dumps(records))
    ids = [s.id for s in load_split(tmp_path, "train")]
    assert ids == sorted(["S00001", new_id, "S00003", "S00004"])
    scene = next(s for s in load_split(tmp_path, "train") if s.id == new_id)
    assert scene.target.name == f"{new_id}_target.wav" and scene.video.name == f"{new_id}_silent.mp4"
    assert (scene.masker is not None) == with_metadata
    report = check_split(tmp_path, "train", sync=False)
    assert report.ok and not report.unrecognised


@pytest.mark.parametrize("second, fields", [({"interferer": {"type": "noise"}, "SNR": 0.13}, "SNR, interferer"),
                                            ({"SNR": -12.5}, "SNR")])
def test_metadata_that_contradicts_itself_is_a_broken_scene(tiny_corpus, tmp_path, capsys, second, fields):
    """Issue 18, item 8: two records for one scene that disagree (speech -12.87 dB vs noise +0.13 dB) were 'no
    broken scene' and scoring kept the last; one more of the kind: records that differ in the SNR alone. An
    identical repeat is one record."""
    copy_split(tiny_corpus, tmp_path)
    path = tmp_path / "metadata" / "scenes.train.json"
    records = json.loads(path.read_text())
    first = next(r for r in records if r["scene"] == "S00004")
    first.update(interferer={**first["interferer"], "type": "speech"}, SNR=-12.87)
    path.write_text(json.dumps([*records, dict(first)]))
    assert [s.id for s in load_split(tmp_path, "train")][-1] == "S00004"  # an identical repeat is harmless
    path.write_text(json.dumps([*records, {**first, **second}]))
    with pytest.raises(AvseBenchError, match=f"S00004: 2 records in scenes.train.json that disagree on {fields}"):
        load_split(tmp_path, "train")
    report = check_split(tmp_path, "train", sync=False)
    assert not report.ok and list(report.problems) == ["S00004"]
    assert main(["data", "check", str(tmp_path), "--split", "train"]) == 1
    assert "disagree" in capsys.readouterr().out
