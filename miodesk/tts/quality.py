"""A quality guard for long renders: find sentences the speech model got badly wrong, without a second model.

The 0.1B model's best sentences are very good and its worst are not. The official server's Best-of-N
scores candidates by ASR error plus length, silence and repetition penalties; an export (where time
matters less than in live reading) applies the part that needs no extra model to every sentence:

- length: codes per spoken character far outside the language's usual range (the model stopped after
  a syllable, or rambled on). MioCodec makes 25 codes a second; Japanese is read at about 7-9
  characters a second (3 codes a character), English at about 14-15 (1.7). Speed does not enter: the
  codec stretches time, the model's codes are the same.
- long internal silence: a pause inside the sentence far longer than any comma's.
- repetition: a stretch of codes said over and over. Runaways that never end are already cut by the
  retry policy (miodesk.tts.generation); this finds loops that did end.

A sentence with a problem is generated again with other seeds (`extra_tries`, bounded) and the best
candidate is kept (the first without problems, else the one with the smallest penalty).

`scorers` is the seam for a scorer that needs its own model (ASR: the text heard against the text
given). None ships: it could not be tested here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

CODES_PER_SECOND = 25

# Typical codes per spoken character (letters and digits; punctuation and spaces are not counted).
TYPICAL_CODES_PER_CHAR = {"ja": 3.2, "en": 1.7}
DEFAULT_CODES_PER_CHAR = 1.7  # other languages: read like English (MioTTS is trained on ja and en)

# An extra-model scorer: (the text the model was given, the audio, its rate) → a penalty, 0 when the
# candidate is fine; more than 0 counts as a problem and adds to the candidate's penalty.
Scorer = Callable[[str, np.ndarray, int], float]


@dataclass(frozen=True)
class Verdict:
    problems: tuple[str, ...] = ()  # in words, for the log
    penalty: float = 0.0  # lower is better; 0 without problems

    @property
    def ok(self) -> bool:
        return not self.problems


REJECTED = Verdict(("no speech",), float("inf"))  # a candidate that did not end or said nothing


def spoken_chars(text: str) -> int:
    """Letters and digits: what takes time to say."""
    return sum(1 for char in text if unicodedata.category(char)[0] in "LN")


def longest_repeat_s(codes: Sequence[int], min_period: int = 2, max_period: int = 50) -> float:
    """Seconds of the longest back-to-back repetition of a block of codes (a loop), at least three times
    over, of a block that is not one code held (that is silence, judged by the audio)."""
    array = np.asarray(codes, dtype=np.int64)
    longest = 0
    for period in range(min_period, min(max_period, len(array) // 3) + 1):
        same = array[period:] == array[:-period]
        if not same.any():
            continue
        # Runs of True: a run of length r means r + period codes repeat with this period.
        padded = np.concatenate(([False], same, [False]))
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            covered = end - start + period
            if covered >= 3 * period and covered > longest:
                if len(set(array[start:start + period].tolist())) >= min(4, period):
                    longest = covered
    return longest / CODES_PER_SECOND


def longest_inner_silence_s(samples: np.ndarray, sample_rate: int, frame_s: float = 0.02,
                            below_db: float = 40.0) -> float:
    """Seconds of the longest quiet stretch between the first and the last sound: frames whose level is
    `below_db` under the sentence's speech level (its 95th percentile frame level)."""
    frame = max(1, int(frame_s * sample_rate))
    count = len(samples) // frame
    if count < 3:
        return 0.0
    frames = np.asarray(samples[:count * frame], dtype=np.float32).reshape(count, frame)
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    speech = float(np.percentile(level, 95))
    if speech <= 1e-6:
        return 0.0  # all quiet: the length check speaks for it
    quiet = level < speech * 10 ** (-below_db / 20)
    loud = np.flatnonzero(~quiet)
    inner = quiet[loud[0]:loud[-1] + 1]
    padded = np.concatenate(([False], inner, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    runs = edges[1::2] - edges[::2]
    return float(runs.max()) * frame / sample_rate if len(runs) else 0.0


@dataclass
class QualityGuard:
    """Judges a sentence's candidate; see the module docstring. The limits are "far outside": a real
    sentence read normally passes them (see the README's figures)."""

    extra_tries: int = 2  # generations after the first, per flagged sentence
    too_short: float = 0.4  # fewer codes than this times the typical count …
    min_expected_codes: int = 10  # … for texts long enough to judge (short ones vary too much)
    too_long: float = 2.5  # more codes than this times the typical count, plus …
    long_slack_codes: int = 25  # … a second for short sentences ("はい。" may take a second)
    max_silence_s: float = 1.5  # at speed 1.0; a comma's pause is 0.2-0.7 s
    max_repeat_s: float = 1.2
    scorers: Sequence[Scorer] = field(default_factory=tuple)

    def expected_codes(self, text: str, language: str) -> float:
        return spoken_chars(text) * TYPICAL_CODES_PER_CHAR.get(language, DEFAULT_CODES_PER_CHAR)

    def judge(self, text: str, language: str, codes: Sequence[int], samples: np.ndarray, sample_rate: int,
              speed: float = 1.0) -> Verdict:
        """The verdict on one candidate: `text` as the model was given it, its `codes` and decoded audio."""
        if not codes or not len(samples):
            return REJECTED
        problems: list[str] = []
        penalty = 0.0
        expected = self.expected_codes(text, language)
        if expected >= self.min_expected_codes and len(codes) < self.too_short * expected:
            problems.append(f"too short: {len(codes)} codes for about {expected:.0f}")
            penalty += self.too_short * expected / len(codes) - 1.0
        limit = self.too_long * expected + self.long_slack_codes
        if len(codes) > limit:
            problems.append(f"too long: {len(codes)} codes for about {expected:.0f}")
            penalty += len(codes) / limit - 1.0
        silence = longest_inner_silence_s(samples, sample_rate) * speed  # as at speed 1.0
        if silence > self.max_silence_s:
            problems.append(f"a silence of {silence:.1f} s")
            penalty += silence - self.max_silence_s
        repeat = longest_repeat_s(codes)
        if repeat > self.max_repeat_s:
            problems.append(f"{repeat:.1f} s repeated")
            penalty += repeat - self.max_repeat_s
        for scorer in self.scorers:
            extra = float(scorer(text, samples, sample_rate))
            if extra > 0:
                problems.append(f"{getattr(scorer, '__name__', 'scorer')}: {extra:.2f}")
                penalty += extra
        return Verdict(tuple(problems), penalty)


@dataclass
class GuardCounts:
    """What the guard did in a render, for the summary."""

    checked: int = 0  # sentences judged
    flagged: int = 0  # sentences whose first candidate had a problem
    regenerations: int = 0  # extra generations made
    fixed: int = 0  # flagged sentences for which a candidate without problems was found
    kept_flawed: int = 0  # flagged sentences where every candidate had a problem: the best was kept
    rescued: int = 0  # sentences the model could not finish (skipped without the guard) that got speech

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)
