"""The embedded corpus in the Real-World AVSE Challenge 2026 layout (`data.realworld`): two-talker clips.

Per clip: two speakers of one group (`<G>_L`, `<G>_R`, as the challenge labels them; the same label always gets the
same espeak voice and face, so each speaker has a voiceprint), each saying their own sentence with a face video whose
mouth follows their own speech (`face`, 256 x 256 as the challenge's videos, 25 fps); the mixture is their sum at an
SNR of s1 over s2 drawn from -5..+5 dB (the challenge's remix range), peak-normalised. Written for both tracks:
`track1` as made, `track2` with each target video degraded as Track 2 degrades it (`stress.rw_track2`, drawn per
item; `mix.wav` unchanged, as in the challenge). Per item a transcript (the synthesiser's own sentence) and a landmark
file (`sK.pkl`: 68 x 2 float32 points per frame from the face's geometry, about one frame in twenty None as when a
detector misses; every fifth clip of track 2 ships without landmark files, as the challenge's far-field clips).
The `mix` scene's clips ship without clean sources (the challenge's are real recordings), the `remix` scene's with
them (`s1.wav`, `s2.wav`, at their level in the mixture). Manifests as the challenge writes them.

Deterministic: every clip from a generator seeded by (seed, split, index), each made in a fresh worker process
(espeak-ng's output depends on what the process spoke before, see `synth.synthesize`).
"""

from __future__ import annotations

import os
import pickle
import zlib
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from avse_bench.data import face
from avse_bench.data.espeak import get_espeak
from avse_bench.data.preprocessing import SAMPLES_PER_FRAME
from avse_bench.data.realworld import TRACKS
from avse_bench.data.stress import rw_track2
from avse_bench.data.synth import TARGET_VOICES, _split_code, _target, _Voice, _write_wav
from avse_bench.errors import AvseBenchError
from avse_bench.io import writable_dir, write_json
from avse_bench.machine import available_cores, worker_context

VIDEO_SIZE = 256  # the challenge's face videos
SNR_DB = (-5.0, 5.0)  # s1 over s2, the remix range of the overview paper
GROUPS = {"train": ("T", "U"), "dev": ("A", "G", "R"), "test": ("B", "D", "E", "F")}  # dev and test share no one


def speaker_voice(label: str) -> _Voice:
    """The espeak voice of a speaker label: fixed per label."""
    return _Voice.draw(np.random.default_rng(zlib.crc32(label.encode())), TARGET_VOICES)


def landmarks(style: face.FaceStyle, track: np.ndarray, rng: np.random.Generator, scale: float) -> list:
    """68 x 2 float32 points per frame (iBUG order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips
    48-59, inner lips 60-67) from the face's geometry and each frame's mouth opening, in pixels of the written
    (scaled) frame; about one frame in twenty None (a missed detection)."""
    cx, cy = style.center
    ax, ay = style.axes
    out = []
    for opening, _ in track:
        jaw = [(cx + ax * np.cos(t), cy + (ay + 0.5 * style.max_opening * opening) * np.sin(t))
               for t in np.linspace(np.pi, 0, 17)]
        brows = [(cx + side * style.eye_dx + dx, style.eye_y - 14) for side in (-1, 1)
                 for dx in np.linspace(-12, 12, 5)]
        nose = [(cx, style.eye_y + k * (style.mouth_y - style.eye_y) / 5) for k in range(1, 5)]
        nose += [(cx + dx, style.mouth_y - 0.3 * (style.mouth_y - style.eye_y)) for dx in np.linspace(-8, 8, 5)]
        eyes = [(cx + side * style.eye_dx + 10 * np.cos(t), style.eye_y + 5 * np.sin(t))
                for side in (-1, 1) for t in np.linspace(np.pi, -np.pi, 6, endpoint=False)]
        half_w, inner = style.mouth_half_width, style.max_opening * opening
        outer = [(cx + (half_w + style.lip_thickness) * np.cos(t),
                  style.mouth_y + (inner + style.lip_thickness) * np.sin(t)) for t in np.linspace(np.pi, -np.pi, 12,
                                                                                                  endpoint=False)]
        lips = [(cx + 0.85 * half_w * np.cos(t), style.mouth_y + inner * np.sin(t))
                for t in np.linspace(np.pi, -np.pi, 8, endpoint=False)]
        points = np.asarray(jaw + brows + nose + eyes + outer + lips, np.float32) * scale  # (68, 2)
        out.append(None if rng.random() < 0.05 else points)
    return out


def make_clip(seed: int, split: str, index: int, min_seconds: float, max_seconds: float) -> dict:
    """One clip's signals, frames, landmarks and records from (seed, split, index)."""
    espeak = get_espeak()
    rng = np.random.default_rng([seed, _split_code(split), index, 2026])
    groups = GROUPS.get(split, GROUPS["train"])
    group = groups[index % len(groups)]
    n_frames = int(round(rng.uniform(min_seconds, max_seconds) * face.FPS))
    n = n_frames * SAMPLES_PER_FRAME
    scale = VIDEO_SIZE / face.FRAME_SIZE
    sources, talkers = [], []
    for side in ("L", "R"):
        label = f"{group}_{side}"
        voice = speaker_voice(label)
        audio, phonemes, end_s, text = _target(espeak, rng, voice, n)
        style = face.FaceStyle.for_speaker(label)
        track = face.mouth_track(phonemes, end_s, n_frames, face.loudness_ms(audio, 16000))  # (T, 2)
        frames = np.stack([cv2.resize(f, (VIDEO_SIZE, VIDEO_SIZE), interpolation=cv2.INTER_LINEAR)
                           for f in face.render(style, track, rng)])  # (T, 256, 256, 3)
        sources.append(audio)
        talkers.append({"speaker": label, "text": text, "frames": frames,
                        "landmarks": landmarks(style, track, rng, scale)})
    snr = float(rng.uniform(*SNR_DB))
    s1, s2 = sources
    s2 = s2 * np.sqrt(np.mean(s1**2) / (np.mean(s2**2) * 10 ** (snr / 10) + 1e-12))
    peak = float(rng.uniform(0.5, 0.9)) / max(float(np.abs(s1 + s2).max()), 1e-9)
    return {"sources": [s1 * peak, s2 * peak], "mix": (s1 + s2) * peak, "talkers": talkers, "snr": round(snr, 2),
            "index": index}


def _degraded(frames: np.ndarray, item: str, seed: int) -> np.ndarray:
    """Track 2's target video: `rw_track2` with the same draws on each colour plane (seeded by the item)."""
    planes = [rw_track2(frames[..., c], 1, np.random.default_rng([seed, zlib.crc32(item.encode())]))
              for c in range(3)]
    return np.stack(planes, axis=-1)


def _write_clip(job: tuple) -> list[dict]:
    """Make one clip and write it into both tracks; returns its manifest records [(track, split, scene, record)]."""
    out, seed, split, index, clip_id, scene, min_seconds, max_seconds = job
    c = make_clip(seed, split, index, min_seconds, max_seconds)
    records = []
    for track in TRACKS:
        folder = Path(out) / track / split / scene / clip_id
        folder.mkdir(parents=True, exist_ok=True)
        _write_wav(folder / "mix.wav", c["mix"])
        for k, talker in enumerate(c["talkers"]):
            tag = f"s{k + 1}"
            frames = talker["frames"]
            if track == "track2":
                frames = _degraded(frames, f"{scene}/{clip_id}/{tag}", seed)
            tmp = folder / f".{tag}.partial.mp4"
            face.write_mp4(tmp, frames)
            os.replace(tmp, folder / f"{tag}.mp4")
            if not (track == "track2" and index % 5 == 3):  # Track 2's far-field clips: no landmarks
                with open(folder / f"{tag}.pkl", "wb") as f:
                    pickle.dump(talker["landmarks"], f)
            (folder / f"{tag}.txt").write_text(talker["text"] + "\n", encoding="utf-8")
            if scene == "remix":
                _write_wav(folder / f"{tag}.wav", c["sources"][k])
        record = {"mix_id": clip_id, "s1_speaker": c["talkers"][0]["speaker"],
                  "s2_speaker": c["talkers"][1]["speaker"]}
        if scene == "remix":
            record.update(s1_id=clip_id.split("_")[0], s2_id=clip_id.split("_")[1])
        records.append((track, split, scene, record))
    return records


def synthesize_realworld(out, n_train: int, n_dev: int, seed: int = 0, min_seconds: float = 2.0,
                         max_seconds: float = 4.0, progress: bool = True) -> Path:
    """Write `out/track{1,2}/{train,dev}/{mix,remix}/...` (module docstring): per split, `n` clips, about 2/5 of them
    mix and the rest remix (at least one of each when n >= 2); returns `out`."""
    out = writable_dir(out, "the embedded corpus", "choose another output folder")
    if any((out / t).exists() for t in TRACKS):
        raise AvseBenchError(f"{out} already holds a Real-World corpus: write to a new folder")
    jobs = []
    for split, count in (("train", n_train), ("dev", n_dev)):
        n_mix = min(count - 1, max(1, round(count * 0.4))) if count >= 2 else 0
        for i in range(count):
            scene = "mix" if i < n_mix else "remix"
            clip_id = f"{i + 1:06d}" if scene == "mix" else f"{2 * i + 101:06d}_{2 * i + 102:06d}"
            jobs.append((str(out), seed, split, i, clip_id, scene, min_seconds, max_seconds))
    manifests: dict = {}
    with worker_context(__name__).Pool(processes=available_cores(), maxtasksperchild=1) as pool:
        for records in tqdm(pool.imap(_write_clip, jobs), total=len(jobs), desc="synth realworld", unit="clip",
                            disable=not progress):
            for track, split, scene, record in records:
                manifests.setdefault((track, split, scene), []).append(record)
    for (track, split, scene), records in manifests.items():
        write_json(out / track / split / f"{scene}_manifest.json", records, indent=1)
    return out
