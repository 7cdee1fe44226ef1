"""espeak-ng speech with phoneme timings, through the library that the PyPI package `espeakng-loader` ships.

espeak-ng is driven through ctypes in synchronous mode: each call to `speak` returns the waveform at the
library's rate (22,050 Hz) and the phoneme events with their sample positions, which the face renderer uses to
move the mouth. The library keeps global state, so one `Espeak` object per process is enough (`get_espeak()`).

Determinism: espeak-ng carries hidden state from one utterance to the next (libc `rand()` for breath noise and
wave-generator state that neither `espeak_ng_SetRandSeed` nor re-initialising resets), so an utterance depends on
what the process spoke before. The same sequence of calls in a fresh process gives the same samples; the corpus
generator therefore synthesises each scene in a fresh worker process.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from avse_bench.errors import AvseBenchError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4


class _Event(ctypes.Structure):
    """espeak_EVENT from speak_lib.h (the `id` union is read as its 8-byte phoneme-name member)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Utterance:
    """Synthesised speech: int16 samples at `rate` Hz and the phonemes as (start sample, espeak mnemonic)."""

    audio: np.ndarray  # (L,) int16
    rate: int
    phonemes: tuple[tuple[int, str], ...]


class Espeak:
    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise AvseBenchError("the embedded corpus needs the package espeakng-loader (pip install "
                                 "espeakng-loader)") from err
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self.rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                espeakng_loader.get_data_path().encode(),
                                                _INITIALIZE_PHONEME_EVENTS)
        if self.rate <= 0:
            raise AvseBenchError(f"espeak-ng failed to initialise from {espeakng_loader.get_data_path()}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _Callback(self._collect)  # keep a reference: the library holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((int(events[i].sample), events[i].id.decode("utf-8", "replace")))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int, seed: int) -> Utterance:
        """Synthesise `text` with espeak voice `voice` (e.g. "en-us+f3"); pitch and range in espeak's 0-100."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise AvseBenchError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((_PARAM_RATE, rate_wpm), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                self._lib.espeak_SetParameter(param, int(value), 0)
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed & 0x7FFFFFFF))
            self._chunks, self._events = [], []
            data = text.encode("utf-8")
            status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if status != 0 or not self._chunks:
                raise AvseBenchError(f"espeak-ng could not synthesise {text!r} with voice {voice!r}")
            audio = np.concatenate(self._chunks)
            return Utterance(audio=audio, rate=self.rate, phonemes=tuple(self._events))


_INSTANCE: Espeak | None = None


def get_espeak() -> Espeak:
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = Espeak()
    return _INSTANCE
