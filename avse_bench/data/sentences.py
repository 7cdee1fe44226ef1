"""Random English sentences for the embedded corpus: a small grammar over common words, driven by a seeded RNG."""

from __future__ import annotations

import numpy as np

_ADJECTIVES = ("old", "small", "bright", "quiet", "heavy", "green", "cold", "busy", "strange", "gentle", "broken",
               "early", "happy", "narrow", "purple", "warm", "empty", "famous", "lazy", "modern", "sharp", "tired")
_NOUNS = ("teacher", "garden", "river", "window", "doctor", "bottle", "market", "engine", "letter", "island",
          "pocket", "village", "farmer", "camera", "ladder", "blanket", "rabbit", "kitchen", "captain", "mountain",
          "violin", "parcel", "museum", "dragon", "pilot", "basket", "harbour", "student", "lamp", "bridge")
_VERBS = ("found", "painted", "opened", "carried", "watched", "pushed", "followed", "cleaned", "borrowed",
          "noticed", "repaired", "visited", "dropped", "checked", "described", "lifted", "remembered", "moved")
_PLACES = ("near the station", "after the storm", "in the morning", "behind the wall", "under a blue sky",
           "before the meeting", "across the road", "at the end of the day", "beside the fire", "on the way home",
           "during the holiday", "over the hill")
_ADVERBS = ("slowly", "quickly", "carefully", "again", "yesterday", "suddenly", "twice", "finally", "quietly")
_OPENERS = ("", "", "", "well, ", "then ", "so ", "I think ", "maybe ", "look, ")


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def clause(rng: np.random.Generator) -> str:
    """One clause of 5-12 words, e.g. 'the busy farmer carefully opened a green bottle near the station'."""
    parts = [_pick(rng, _OPENERS) + "the", _pick(rng, _ADJECTIVES), _pick(rng, _NOUNS)]
    if rng.random() < 0.4:
        parts.append(_pick(rng, _ADVERBS))
    parts += [_pick(rng, _VERBS), "a" if rng.random() < 0.5 else "the", _pick(rng, _NOUNS)]
    if rng.random() < 0.5:
        parts.append(_pick(rng, _PLACES))
    return " ".join(parts)


def sentence(rng: np.random.Generator, n_clauses: int) -> str:
    """`n_clauses` clauses joined into one sentence with commas and conjunctions."""
    text = clause(rng)
    for _ in range(n_clauses - 1):
        text += _pick(rng, (", and ", ", but ", " while ", ", then ")) + clause(rng)
    return text + "."
