"""A simple deterministic binaural scene model for the embedded AVSEC-4 corpus: a head, a room and synthetic music.

What it models. Head: a spherical head of radius 8.75 cm, the interaural time difference of Woodworth's formula, ITD
= (a / c) (sin(theta) + theta) for azimuth theta (0 ahead, positive to the right, sources in front), applied as a
fractional delay in the frequency domain, and a broadband interaural level difference of up to 10 dB, 10
|sin(theta)| dB, on the far ear. Propagation: a delay of distance / 343 m/s before the direct sound (so the anechoic
reference carries one, as AVSEC-4's does). Room: per ear an exponentially decaying Gaussian noise tail (RT60 drawn
per scene, 0.2-0.6 s), decorrelated between the ears, starting 2.5 ms after the direct sound, its level set by a
direct-to-reverberant ratio (drawn, 0-10 dB). Music: notes of a pentatonic scale, each a few harmonics under a
plucked envelope.

What it does not model: the pinnae and the head's frequency-dependent shadowing (HRTFs: AVSEC-4 uses OlHeaD's
measured ones of 19 heads), early reflections and room modes (CEC2's ambisonic room responses), source directivity,
moving sources, and the challenge's speech-weighted better-ear SNR (here the SNR is the ratio of the target's to the
maskers' power, both ears together). Figures on this corpus say nothing about real rooms.
"""

from __future__ import annotations

import numpy as np

from avse_bench.data.preprocessing import AUDIO_RATE

HEAD_RADIUS_M = 0.0875
SPEED_OF_SOUND = 343.0
MAX_ILD_DB = 10.0
REVERB_GAP_S = 0.0025
PENTATONIC = (0, 2, 4, 7, 9)


def delay(x: np.ndarray, seconds: float) -> np.ndarray:
    """x (n,) delayed by `seconds` (fractional: a linear phase in the frequency domain, zero-padded so nothing
    wraps around), same length."""
    n = len(x)
    pad = n + int(np.ceil(abs(seconds) * AUDIO_RATE)) + 1
    spectrum = np.fft.rfft(x, pad)
    f = np.fft.rfftfreq(pad, 1 / AUDIO_RATE)
    return np.fft.irfft(spectrum * np.exp(-2j * np.pi * f * seconds), pad)[:n].astype(np.float32)


def direct(x: np.ndarray, azimuth_deg: float, distance_m: float) -> np.ndarray:
    """(n, 2) left and right ears' direct sound of a source at `azimuth_deg` (0 ahead, +90 right) and
    `distance_m`: propagation delay to the near ear, Woodworth's ITD and the broadband ILD on the far ear."""
    if not -90 <= azimuth_deg <= 90:
        raise ValueError(f"azimuth {azimuth_deg} deg: the model places sources in front, -90..90")
    theta = abs(np.deg2rad(azimuth_deg))
    itd = HEAD_RADIUS_M / SPEED_OF_SOUND * (np.sin(theta) + theta)
    travel = distance_m / SPEED_OF_SOUND
    near = delay(x, travel)
    far = delay(x, travel + itd) * np.float32(10 ** (-MAX_ILD_DB * np.sin(theta) / 20))
    return np.stack([far, near] if azimuth_deg >= 0 else [near, far], axis=1)  # (n, 2): left, right


def reverberate(ears: np.ndarray, rng: np.random.Generator, rt60_s: float, drr_db: float) -> np.ndarray:
    """(n, 2) direct sound plus a decaying noise tail per ear (module docstring), same length."""
    n_tail = int(rt60_s * AUDIO_RATE)
    t = np.arange(n_tail) / AUDIO_RATE
    out = np.empty_like(ears)
    for ear in range(2):
        tail = rng.standard_normal(n_tail) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
        tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))  # tail energy = direct energy / DRR
        response = np.zeros(int(REVERB_GAP_S * AUDIO_RATE) + n_tail)
        response[0] = 1.0
        response[int(REVERB_GAP_S * AUDIO_RATE):] += tail
        out[:, ear] = np.convolve(ears[:, ear], response)[: len(ears)]
    return out


def music(rng: np.random.Generator, n: int) -> np.ndarray:
    """n samples of synthetic music: 3-8 notes a second from a pentatonic scale over two octaves, each 3-6
    harmonics with a plucked (fast attack, exponential decay) envelope, notes overlapping."""
    out = np.zeros(n + AUDIO_RATE, np.float64)
    base = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    rate = float(rng.uniform(3, 8))
    harmonics = int(rng.integers(3, 7))
    start = 0
    while start < n:
        step = PENTATONIC[int(rng.integers(len(PENTATONIC)))] + 12 * int(rng.integers(0, 2))
        f0 = base * 2 ** (step / 12)
        length = int(rng.uniform(0.3, 1.0) * AUDIO_RATE)
        t = np.arange(length) / AUDIO_RATE
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1))
        out[start:start + length] += note * np.exp(-t * rng.uniform(3, 8)) * np.minimum(1, t / 0.005)
        start += int(AUDIO_RATE / rate)
    return out[:n].astype(np.float32)
