"""The embedded corpus: audio-visual scenes written in exactly the AVSEC layout, deterministic for a seed.

Per scene: a target utterance (espeak-ng, one of many voices, rates and pitches), a face video whose mouth follows
the target's phonemes, and one interferer: another voice (speech, -15..+5 dB SNR) or noise (coloured noise or a
babble of several voices, -10..+10 dB). The interferer is scaled to the SNR (powers over the whole scene), faded
in with a 0.5 s half-cosine ramp, added to the target, and target, interferer and mixture share one peak
normalisation. Every random choice of a scene comes from a generator seeded by (seed, split, index), so a scene
does not depend on the others and the corpus is bit-identical for one seed.

Written files: `OUT/<split>/scenes/S#####_{target,interferer,mixed}.wav` (16 kHz mono PCM16),
`S#####_silent.mp4` (224 x 224, 25 fps, mp4v), `OUT/metadata/scenes.<split>.json` (the AVSEC schema) and
`OUT/metadata/synth.<split>.json` (this generator's own record: voices, texts, and the mouth box per scene).

With `layout="avsec4"` the scenes are binaural and reverberant with 1-3 maskers (speech, noise, at most one music)
through a simple head and room model (`avse_bench.data.spatial`, which says what it does and does not model), in
AVSEC-4's files (`_mix`, `_target`, `_target_anechoic`, `_interferer`, their `_mono` versions, `_silent.mp4`) and
metadata fields (`interferers`, `room`, `listener`, `time_start`/`time_end`): `make_scene_avsec4`. Same seed, same
bytes, as for AVSEC-2.

With `layout="avsec3"` the scenes are AVSEC-2's, plus the AVSEC-3 lip crops `OUT/<split>/lips/S#####_silent.mp4`:
each frame's mouth region (a square on the centre of the generator's mouth box, as wide as the box's larger side)
resized to 96 x 96 with cv2.resize's default (bilinear), as cogmhear/avsec_preprocessing writes them from MediaPipe
landmarks (`lip_crops`).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

from avse_bench.data import face, spatial
from avse_bench.data.espeak import Espeak, get_espeak
from avse_bench.data.layout import AVSEC2, AVSEC4, MONO_PARTS
from avse_bench.data.preprocessing import AUDIO_RATE, LIPS_DIR, SAMPLES_PER_FRAME
from avse_bench.data.sentences import sentence
from avse_bench.errors import AvseBenchError
from avse_bench.io import writable_dir, write_json
from avse_bench.machine import available_cores, worker_context

GENERATOR_VERSION = "avse-bench-synth-1"
RAMP_SECONDS = 0.5
SPEECH_SNR_DB = (-15.0, 5.0)
NOISE_SNR_DB = (-10.0, 10.0)

_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
_OTHER_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt", "sv", "pl")
TARGET_VOICES = tuple(f"{a}+{v}" for a in _ACCENTS for v in _VARIANTS)
MASKER_VOICES = TARGET_VOICES + tuple(f"{lang}+{v}" for lang in _OTHER_LANGUAGES for v in _VARIANTS)


@dataclass(frozen=True)
class _Voice:
    name: str
    rate_wpm: int
    pitch: int
    pitch_range: int

    @classmethod
    def draw(cls, rng: np.random.Generator, voices: tuple[str, ...], exclude: str = "") -> _Voice:
        choices = [v for v in voices if v != exclude]
        return cls(choices[int(rng.integers(len(choices)))], int(rng.integers(130, 191)),
                   int(rng.integers(25, 76)), int(rng.integers(20, 81)))

    @property
    def label(self) -> str:
        """The voice as the metadata names it: espeak voice, rate and pitch."""
        return f"{self.name}/r{self.rate_wpm}p{self.pitch}"


def _speak(espeak: Espeak, voice: _Voice, text: str, seed: int):
    """(audio float32 at 16 kHz, phonemes [(onset s, name)])."""
    utt = espeak.speak(text, voice.name, voice.rate_wpm, voice.pitch, voice.pitch_range, seed)
    audio = resample_poly(utt.audio.astype(np.float32) / 32768.0, AUDIO_RATE, utt.rate).astype(np.float32)
    return audio, [(pos / utt.rate, name) for pos, name in utt.phonemes]


def _speech_stream(espeak: Espeak, rng: np.random.Generator, voice: _Voice, n: int) -> np.ndarray:
    """At least n samples of continuous speech: sentences separated by short pauses."""
    parts, total = [], 0
    while total < n:
        audio, _ = _speak(espeak, voice, sentence(rng, 1), int(rng.integers(2**31)))
        parts += [audio, np.zeros(int(rng.uniform(0.05, 0.25) * AUDIO_RATE), np.float32)]
        total += len(audio) + len(parts[-1])
    return np.concatenate(parts)


def _colored_noise(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """Gaussian noise with a 1/f^beta power spectrum (0 white, 1 pink, 2 brown)."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1 / AUDIO_RATE)
    spectrum *= 1 / np.maximum(f, 20.0) ** (beta / 2)
    return np.fft.irfft(spectrum, n).astype(np.float32)


def _target(espeak: Espeak, rng: np.random.Generator, voice: _Voice, n: int):
    """The target track of n samples and its phonemes: speech from the start, cut at a phoneme boundary, silence.

    The speech starts with the scene (as an LRS3 clip does) rather than after a silence: a silent start would
    coincide with the interferer's fade-in and make a speech masker's envelope correlate with the mouth.
    """
    text = sentence(rng, 2)
    audio, phonemes = _speak(espeak, voice, text, int(rng.integers(2**31)))
    room = n - int(0.05 * AUDIO_RATE)
    if len(audio) > room:  # cut before the first phoneme that would not fit, with a 10 ms fade-out
        cut = max((int(t * AUDIO_RATE) for t, _ in phonemes if int(t * AUDIO_RATE) <= room), default=room)
        audio = audio[:cut].copy()
        fade = min(160, len(audio))
        audio[len(audio) - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        phonemes = [(t, p) for t, p in phonemes if int(t * AUDIO_RATE) < cut]
    track = np.zeros(n, np.float32)
    track[:len(audio)] = audio
    return track, phonemes, len(audio) / AUDIO_RATE, text


def _interferer(espeak: Espeak, rng: np.random.Generator, n: int, target_voice: str, masker: str | None = None):
    """(interferer n samples, metadata record, SNR range) for a speech, coloured-noise or babble masker (AVSEC-2's
    draw), or of the `masker` type asked for ("speech", "noise": coloured or babble, "music": `spatial.music`)."""
    if masker == "music":
        return spatial.music(rng, n), {"type": "music", "name": "synthetic_pentatonic", "offset": 0}, NOISE_SNR_DB
    if masker is None:
        kind = rng.choice(["speech", "speech", "colored", "babble"])  # AVSEC-2's draw (the corpus's bytes rest on it)
    else:
        kind = "speech" if masker == "speech" else rng.choice(["colored", "babble"])
    if kind == "speech":
        voice = _Voice.draw(rng, MASKER_VOICES, exclude=target_voice)
        stream = _speech_stream(espeak, rng, voice, n + 2 * AUDIO_RATE)
        offset = int(rng.integers(len(stream) - n))
        name = voice.label
        return stream[offset:offset + n], {"type": "speech", "name": name, "offset": offset}, SPEECH_SNR_DB
    if kind == "colored":
        beta = float(rng.uniform(0.0, 2.0))
        return _colored_noise(rng, n, beta), {"type": "noise", "name": f"colored_beta{beta:.2f}", "offset": 0}, \
            NOISE_SNR_DB
    talkers = int(rng.integers(3, 7))
    babble = np.zeros(n, np.float32)
    for _ in range(talkers):
        stream = _speech_stream(espeak, rng, _Voice.draw(rng, MASKER_VOICES, exclude=target_voice), n + AUDIO_RATE)
        start = int(rng.integers(len(stream) - n))
        part = stream[start:start + n]
        babble += part / (np.sqrt(np.mean(part**2)) + 1e-9)
    return babble, {"type": "noise", "name": f"babble_{talkers}talkers", "offset": 0}, NOISE_SNR_DB


def _mix(target: np.ndarray, interferer: np.ndarray, snr_db: float, peak: float):
    """Scale the interferer to the SNR (powers over the whole scene, both ears together when binaural), fade it in,
    mix; one peak normalisation for all three. Signals (n,) or (n, 2)."""
    gain = np.sqrt(np.mean(target**2) / (np.mean(interferer**2) * 10 ** (snr_db / 10) + 1e-12))
    ramp_n = int(RAMP_SECONDS * AUDIO_RATE)
    ramp = np.ones(len(interferer), np.float32)
    ramp[:ramp_n] = 0.5 * (1 - np.cos(np.pi * np.arange(min(ramp_n, len(ramp))) / ramp_n))
    interferer = interferer * gain * ramp.reshape(-1, *([1] * (interferer.ndim - 1)))  # (n,) or (n, 2)
    mixed = target + interferer
    scale = peak / max(np.abs(mixed).max(), np.abs(target).max(), np.abs(interferer).max())
    return target * scale, interferer * scale, mixed * scale


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode())


def make_scene(espeak: Espeak, seed: int, split: str, index: int, min_seconds: float, max_seconds: float):
    """One scene's signals, frames and records from (seed, split, index), given an espeak that has spoken
    nothing yet in this process (see `synthesize`)."""
    rng = np.random.default_rng([seed, _split_code(split), index])
    n_frames = int(round(rng.uniform(min_seconds, max_seconds) * face.FPS))
    n = n_frames * SAMPLES_PER_FRAME
    voice = _Voice.draw(rng, TARGET_VOICES)
    target, phonemes, end_s, text = _target(espeak, rng, voice, n)
    interferer, inter_meta, (lo, hi) = _interferer(espeak, rng, n, voice.name)
    snr = round(float(rng.uniform(lo, hi)), 2)
    target, interferer, mixed = _mix(target, interferer, snr, float(rng.uniform(0.5, 0.95)))
    style = face.FaceStyle.for_speaker(voice.name)
    track = face.mouth_track(phonemes, end_s, n_frames, face.loudness_ms(target, AUDIO_RATE))  # (n_frames, 2)
    frames = face.render(style, track, rng)
    return {"target": target, "interferer": interferer, "mixed": mixed, "frames": frames, "snr": snr,
            "interferer_meta": inter_meta, "voice": voice, "text": text, "mouth_box": face.mouth_box(style)}


AVSEC4_SNR_DB = (-10.0, 10.0)  # AVSEC-4's range (scene_builder_cec2: SNR -10..+10 dB)


def make_scene_avsec4(espeak: Espeak, seed: int, split: str, index: int, min_seconds: float, max_seconds: float):
    """One AVSEC-4-like scene from (seed, split, index): the target ahead or to a side, 1-3 maskers (speech, noise,
    at most one music) elsewhere, each through the head model and one room (`spatial`); the maskers together at the
    drawn SNR (-10..+10 dB, both ears' power); `mix`, `target` (reverberant) and `interferer` share one peak
    normalisation, `target_anechoic` (the direct sound, with its propagation delay) has its own, and each mono file
    is (L+R)/2 normalised on its own, as AVSEC-4's files are. The face follows the target as in `make_scene`."""
    rng = np.random.default_rng([seed, _split_code(split), index, 4])
    n_frames = int(round(rng.uniform(min_seconds, max_seconds) * face.FPS))
    n = n_frames * SAMPLES_PER_FRAME
    voice = _Voice.draw(rng, TARGET_VOICES)
    dry, phonemes, end_s, text = _target(espeak, rng, voice, n)
    rt60, drr = float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.0, 10.0))
    target_az, distance = float(rng.uniform(-30, 30)), float(rng.uniform(1.0, 2.0))
    anechoic = spatial.direct(dry, target_az, distance)
    target = spatial.reverberate(anechoic, rng, rt60, drr)
    kinds = list(rng.choice(["speech", "noise", "music"], size=int(rng.integers(1, 4))))
    while kinds.count("music") > 1:
        kinds[kinds.index("music")] = "noise"
    interferers, records = np.zeros((n, 2), np.float32), []
    for i, kind in enumerate(kinds):
        signal, meta, _ = _interferer(espeak, rng, n, voice.name, str(kind))
        signal = signal / (np.sqrt(np.mean(signal**2)) + 1e-9)
        azimuth = float(rng.uniform(-90, 90))
        interferers += spatial.reverberate(spatial.direct(signal, azimuth, float(rng.uniform(1.0, 3.0))), rng,
                                           rt60, drr)
        records.append({**meta, "position": i + 1, "azimuth": round(azimuth, 1), "time_start": 0, "time_end": n})
    snr = round(float(rng.uniform(*AVSEC4_SNR_DB)), 2)
    target, interferer, mix = _mix(target, interferers, snr, float(rng.uniform(0.5, 0.95)))
    style = face.FaceStyle.for_speaker(voice.name)
    track = face.mouth_track(phonemes, end_s, n_frames, face.loudness_ms(dry, AUDIO_RATE))
    audio = {"mix": mix, "target": target, "interferer": interferer,
             "target_anechoic": _peak_normalised(anechoic)}
    audio.update({MONO_PARTS[part]: _peak_normalised(x.mean(axis=1)) for part, x in list(audio.items())})
    room = {"rt60_s": round(rt60, 3), "drr_db": round(drr, 2), "model": "avse_bench.data.spatial"}
    return {"audio": audio, "frames": face.render(style, track, rng), "snr": snr, "interferers": records,
            "voice": voice, "text": text, "mouth_box": face.mouth_box(style), "room": room,
            "target_azimuth": round(target_az, 1), "n": n}


def _peak_normalised(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    return x * (peak / max(float(np.abs(x).max()), 1e-9))


def _write_wav(path: Path, audio: np.ndarray) -> None:
    sf.write(str(path), np.clip(audio, -1.0, 32767 / 32768), AUDIO_RATE, subtype="PCM_16")


AVSEC3 = "avsec3"  # a synth layout: AVSEC-2's files plus lips/ (the data layout stays AVSEC-2's)
LIP_SIZE = 96  # px, the AVSEC-3 lip crops' size


def lip_crops(frames: np.ndarray, mouth_box) -> np.ndarray:
    """(T, 96, 96, 3) uint8 lip crops of (T, H, W, 3) face frames: the square of side max(w, h) of `mouth_box`
    (x0, y0, x1, y1) on its centre, clamped to the frame, each frame resized with cv2.resize's default (bilinear)."""
    import cv2

    x0, y0, x1, y1 = mouth_box
    side = max(x1 - x0, y1 - y0)
    h, w = frames.shape[1:3]
    left = int(np.clip((x0 + x1) // 2 - side // 2, 0, w - side))
    top = int(np.clip((y0 + y1) // 2 - side // 2, 0, h - side))
    return np.stack([cv2.resize(f[top:top + side, left:left + side], (LIP_SIZE, LIP_SIZE)) for f in frames])


def _write_video(scenes_dir: Path, scene_id: str, s: dict, lips: bool = False) -> dict:
    """Write the scene's face video (and, with `lips`, its lip crops in the split's lips/: the AVSEC-3 layout)
    atomically; return this generator's own record of it: mouth box, text, voice."""
    tmp = scenes_dir / f".{scene_id}_silent.partial.mp4"
    face.write_mp4(tmp, s["frames"])
    os.replace(tmp, scenes_dir / f"{scene_id}_silent.mp4")
    if lips:
        lips_dir = scenes_dir.parent / LIPS_DIR
        lips_dir.mkdir(exist_ok=True)
        tmp = lips_dir / f".{scene_id}_silent.partial.mp4"
        face.write_mp4(tmp, lip_crops(s["frames"], s["mouth_box"]))
        os.replace(tmp, lips_dir / f"{scene_id}_silent.mp4")
    return {"mouth_box": list(s["mouth_box"]), "text": s["text"], "voice": s["voice"].name}


def _scene_job(job: tuple) -> tuple[dict, dict]:
    """Make and write one scene; runs in a fresh worker process (see `synthesize`). Returns its metadata
    record and this generator's own record."""
    scenes_dir, scene_id, seed, split, index, min_seconds, max_seconds, layout = job
    if layout == AVSEC4:
        return _avsec4_scene_job(scenes_dir, scene_id, seed, split, index, min_seconds, max_seconds)
    s = make_scene(get_espeak(), seed, split, index, min_seconds, max_seconds)
    for part in ("target", "interferer", "mixed"):
        _write_wav(scenes_dir / f"{scene_id}_{part}.wav", s[part])
    record = {"scene": scene_id, "dataset": split, "target": {"name": s["voice"].label},
              "interferer": s["interferer_meta"], "SNR": s["snr"], "duration": len(s["mixed"])}
    return record, _write_video(scenes_dir, scene_id, s, lips=layout == AVSEC3)


def _avsec4_scene_job(scenes_dir: Path, scene_id: str, seed: int, split: str, index: int, min_seconds: float,
                      max_seconds: float) -> tuple[dict, dict]:
    """`_scene_job` for the AVSEC-4 layout: the files and the metadata record as the challenge distributes them."""
    s = make_scene_avsec4(get_espeak(), seed, split, index, min_seconds, max_seconds)
    for part, audio in s["audio"].items():
        _write_wav(scenes_dir / f"{scene_id}_{part}.wav", audio)
    record = {"scene": scene_id, "dataset": split, "room": s["room"],
              "target": {"name": s["voice"].label, "time_start": 0,
                         "time_end": s["n"], "azimuth": s["target_azimuth"]},
              "duration": s["n"], "SNR": s["snr"], "interferers": s["interferers"],
              "listener": {"hrir_filename": ["spherical head, avse_bench.data.spatial"], "rotation": []}}
    return record, _write_video(scenes_dir, scene_id, s)


def synthesize(out, n_train: int = 200, n_dev: int = 40, seed: int = 0, min_seconds: float = 2.0,
               max_seconds: float = 4.0, progress: bool = True, layout: str = AVSEC2) -> Path:
    """Write the embedded corpus (train and dev splits) under `out` in the AVSEC layout; returns `out`.

    `layout`: "avsec2" (the AVSEC-1/2/3 files, mono, one masker), "avsec3" (the same with the lip crops in lips/)
    or "avsec4" (binaural and reverberant, 1-3 maskers including music, the AVSEC-4 files and metadata fields:
    `make_scene_avsec4`).

    Scene ids run on from train to dev (S00001... as in AVSEC). Each scene is made in a fresh worker process
    (forked from a clean fork server, one process per scene, as many at once as there are cores), because
    espeak-ng's output depends on what the process synthesised before: so a scene depends on (seed, split,
    index) alone, and the bytes do not depend on the scene count, the order or the number of workers.
    """
    if layout not in (AVSEC2, AVSEC3, AVSEC4):
        raise AvseBenchError(f"--layout {layout!r}: choose {AVSEC2}, {AVSEC3} or {AVSEC4}")
    out = writable_dir(out, "the embedded corpus", "choose another output folder")
    if n_train < 0 or n_dev < 0:
        raise AvseBenchError(f"scene counts must be >= 0 (got train {n_train}, dev {n_dev})")
    if not 0.5 <= min_seconds <= max_seconds:
        raise AvseBenchError(f"need 0.5 <= min_seconds <= max_seconds (got {min_seconds}, {max_seconds})")
    for split in ("train", "dev"):
        scenes_dir = out / split / "scenes"
        if scenes_dir.is_dir() and any(scenes_dir.iterdir()):
            raise AvseBenchError(f"{scenes_dir} already holds scenes: write the corpus to a new folder (or delete "
                                 "this one) so that no scene of another corpus is mixed in")
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    ctx = worker_context(__name__)
    first_id = 1
    with ctx.Pool(processes=available_cores(), maxtasksperchild=1) as pool:
        for split, count in (("train", n_train), ("dev", n_dev)):
            scenes_dir = out / split / "scenes"
            scenes_dir.mkdir(parents=True, exist_ok=True)
            jobs = [(scenes_dir, f"S{first_id + i:05d}", seed, split, i, min_seconds, max_seconds, layout)
                    for i in range(count)]
            results = list(tqdm(pool.imap(_scene_job, jobs), total=count, desc=f"synth {split}", unit="scene",
                                disable=not progress))
            first_id += count
            write_json(out / "metadata" / f"scenes.{split}.json", [record for record, _ in results], indent=1)
            write_json(out / "metadata" / f"synth.{split}.json",
                       {"generator": GENERATOR_VERSION, "layout": layout, "seed": seed, "min_seconds": min_seconds,
                        "max_seconds": max_seconds, "scenes": {r["scene"]: extra for r, extra in results}}, indent=1)
    return out
