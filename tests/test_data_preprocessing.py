"""THE preprocessing: per-frame equalisation, frame-rate resampling of odd clips, audio resampling, the hash."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import soundfile as sf

from avse_bench.data import Preprocessing
from avse_bench.data.face import write_mp4
from avse_bench.data.preprocessing import output_frame_indices, read_frames
from avse_bench.errors import AvseBenchError

BITS = 8  # frame index coded as 8 vertical black/white bands


def coded_clip(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """(n, height, width, 3) uint8 frames: textured noise (different per frame) with the frame index in its top
    half as 8 bands (band b white when bit b of the index is set)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(40, 200, (n, height, width, 3), dtype=np.uint8)
    edges = np.linspace(0, width, BITS + 1).astype(int)
    for k in range(n):
        for b in range(BITS):
            frames[k, : height // 2, edges[b]:edges[b + 1]] = 255 if (k >> b) & 1 else 0
    return frames


def decode_index(frame: np.ndarray) -> int:
    """Read the band code back from a (size, size) frame in [0, 1] (not equalised)."""
    h, w = frame.shape
    edges = np.linspace(0, w, BITS + 1).astype(int)
    bits = [frame[h // 8: 3 * h // 8, edges[b] + 1:edges[b + 1] - 1].mean() > 0.5 for b in range(BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def buggy_dcnn_rnn_video(pre: Preprocessing, path) -> np.ndarray:
    """The published DCNN-RNN code's loop bug: the array is re-created inside the loop, so every frame but the
    last ends up zero."""
    frames, _ = read_frames(path)
    for frame in frames:
        out = np.zeros((len(frames), pre.size, pre.size), np.float32)
        out[-1] = pre.frame(frame) / 255.0
    return out


def matches_reference(video: np.ndarray, path, size: int) -> bool:
    """Every output frame equals cv2.equalizeHist(resize(gray(source frame))) / 255 (25 fps source)."""
    frames, _ = read_frames(path)
    if video.shape != (len(frames), size, size):
        return False
    for out, src in zip(video, frames, strict=True):
        gray = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY)
        ref = cv2.equalizeHist(cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA))
        if not np.array_equal(out, ref.astype(np.float32) / 255.0):
            return False
    return True


@pytest.fixture(scope="module")
def clip_25fps(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    frames = coded_clip(20, 96, 80)
    frames[:, :, :, :] //= 3  # dark and low-contrast: equalisation changes every frame
    write_mp4(path, frames)
    return path


def test_every_frame_is_equalised(clip_25fps):
    pre = Preprocessing(size=48)
    video = pre.video(clip_25fps)
    assert video.dtype == np.float32 and video.min() >= 0.0 and video.max() <= 1.0
    assert matches_reference(video, clip_25fps, 48)
    # equalised frames span the full range, each of them (a bug that skips frames would leave them dark)
    assert all(frame.max() == 1.0 and frame.min() == 0.0 for frame in video)


def test_reference_check_catches_the_published_loop_bug(clip_25fps):
    pre = Preprocessing(size=48)
    buggy = buggy_dcnn_rnn_video(pre, clip_25fps)
    assert np.array_equal(buggy[-1], pre.video(clip_25fps)[-1])  # the last frame alone is right
    assert not matches_reference(buggy, clip_25fps, 48)


def test_equalize_off_is_plain_resize(clip_25fps):
    video = Preprocessing(size=48, equalize=False).video(clip_25fps)
    assert not matches_reference(video, clip_25fps, 48)
    assert video.max() < 0.5  # the dark clip stays dark without equalisation


@pytest.mark.parametrize(("fps", "n_in", "width", "height", "n_out"), [
    (29.97, 90, 161, 97, 75),   # 3.003 s
    (30.0, 91, 99, 75, 76),     # 3.033 s: the 76th frame's centre (3.02 s) is inside the clip
    (24.0, 50, 127, 127, 52),
    (50.0, 40, 65, 33, 20),
    (25.0, 30, 224, 224, 30),
])
def test_any_frame_rate_and_size_becomes_25fps(tmp_path, fps, n_in, width, height, n_out):
    path = tmp_path / "clip.mp4"
    write_mp4(path, coded_clip(n_in, width, height), fps=fps)
    video = Preprocessing(size=64, equalize=False).video(path)
    assert video.shape == (n_out, 64, 64)
    shown = [decode_index(f) for f in video]
    # output frame j shows the source frame on screen at the centre of [j/25, (j+1)/25)
    expected = [int(np.floor((j + 0.5) * fps / 25)) for j in range(n_out)]
    assert shown == expected
    assert output_frame_indices(n_in, fps).tolist() == expected


def test_audio_resampled_to_16k_mono(tmp_path):
    rate, seconds = 44_100, 1.5
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a.wav", np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    audio = Preprocessing().audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(seconds * 16_000)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16_000 / len(audio) - 440) < 2
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=0.02)


def test_config_hash_tracks_settings():
    assert Preprocessing(128).config_hash() == Preprocessing(128, True).config_hash()
    hashes = {Preprocessing(128).config_hash(), Preprocessing(64).config_hash(),
              Preprocessing(128, equalize=False).config_hash()}
    assert len(hashes) == 3
    assert Preprocessing(64).config()["size"] == 64


def test_unreadable_video_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(AvseBenchError, match="bad.mp4"):
        Preprocessing().video(bad)


def write_h264(path, frames: np.ndarray, times_ms: list[int]) -> None:
    """An H.264 mp4 whose frame k is presented at times_ms[k] (a variable frame rate, as phones record), via PyAV."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for frame, t in zip(frames, times_ms, strict=True):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[..., ::-1]), format="rgb24")
            picture.pts, picture.time_base = t, Fraction(1, 1000)
            out.mux(stream.encode(picture))
        out.mux(stream.encode())


@pytest.mark.parametrize("first_ms", [0, 1000])
def test_a_variable_frame_rate_video_is_mapped_by_its_timestamps(tmp_path, first_ms):
    """Issue 18, item 6: frames 20 ms then 60 ms apart (25 fps on average, as phones record; opencv #24000) were
    mapped by index at the nominal rate, most output frames showing another source frame than the one on screen.
    One more of the kind: a stream whose first timestamp is 1 s, not 0."""
    from avse_bench.data.check import check_split

    n = 64
    times = [first_ms + 40 * (k // 2) * 2 + (20 if k % 2 else 0) for k in range(n)]  # 0, 20, 80, 100, 160, ...
    path = tmp_path / "clip.mp4"
    write_h264(path, coded_clip(n, 128, 128), times)
    video = Preprocessing(size=64, equalize=False).video(path)
    relative = np.asarray(times) - first_ms
    end = relative[-1] + relative[-1] / (n - 1)  # one mean interval after the last frame
    centres = [(j + 0.5) * 40 for j in range(int(end // 40) + 1) if (j + 0.5) * 40 < end]
    expected = [int(np.searchsorted(relative, c, side="right") - 1) for c in centres]
    assert [decode_index(f) for f in video] == expected
    nominal = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS)  # what the index rule used before
    by_index = [int(np.floor((j + 0.5) * nominal / 25)) for j in range(len(expected))]
    assert sum(a != b for a, b in zip(expected, by_index, strict=True)) > len(expected) // 2

    # data check: the rate is reported as variable, the durations agree by the timestamps
    scenes = tmp_path / "root" / "dev" / "scenes"
    scenes.mkdir(parents=True)
    path.rename(scenes / "S00001_silent.mp4")
    audio = np.random.default_rng(0).normal(0, 0.1, int(end * 16))
    for part in ("mixed", "target"):
        sf.write(scenes / f"S00001_{part}.wav", audio, 16000, subtype="PCM_16")
    report = check_split(tmp_path / "root", "dev", sync=False)
    assert report.ok and report.variable_rate == ["S00001"], report.format()
    assert "variable frame rate: 1 scene(s) (S00001)" in report.format()
