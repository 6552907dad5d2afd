"""The silence between utterances: after a sentence, after a paragraph, and after a heading.

Readers ask for these to be adjustable (a slower, more deliberate reading; or tighter for skimming),
and a heading read with only a paragraph's pause runs into the text it announces, so the pause after
a heading is longer: half again the paragraph pause, so it follows the user's choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SENTENCE_PAUSE_S = 0.25
DEFAULT_PARAGRAPH_PAUSE_S = 0.6
MAX_SENTENCE_PAUSE_S = 2.0
MAX_PARAGRAPH_PAUSE_S = 5.0
HEADING_FACTOR = 1.5  # the pause after a heading, against the paragraph pause


def clamp_pause(seconds: float, longest: float) -> float:
    """A pause within 0…`longest` seconds, rounded to milliseconds (hand-edited settings, CLI values)."""
    return round(min(longest, max(0.0, float(seconds))), 3)


@dataclass(frozen=True)
class Pauses:
    sentence_s: float = DEFAULT_SENTENCE_PAUSE_S
    paragraph_s: float = DEFAULT_PARAGRAPH_PAUSE_S

    @classmethod
    def clamped(cls, sentence_s: float, paragraph_s: float) -> Pauses:
        return cls(clamp_pause(sentence_s, MAX_SENTENCE_PAUSE_S), clamp_pause(paragraph_s, MAX_PARAGRAPH_PAUSE_S))

    @property
    def heading_s(self) -> float:
        return round(self.paragraph_s * HEADING_FACTOR, 3)

    def between(self, gap: str, after_heading: bool) -> float:
        """The pause before the next utterance: `gap` is the source text between the two utterances."""
        if after_heading:
            return self.heading_s
        return self.paragraph_s if gap.count("\n") >= 2 else self.sentence_s


def heading_ends(utterance_spans: Sequence[tuple[int, int]], headings: Sequence[tuple[int, int]]) -> set[int]:
    """Indexes of the utterances that end a heading: the last utterance inside each heading span.

    Both lists are (start, end) character offsets in the same text, in order.
    """
    ends: set[int] = set()
    heading = 0
    for index, (start, end) in enumerate(utterance_spans):
        while heading < len(headings) and headings[heading][1] <= start:
            heading += 1
        if heading == len(headings):
            break
        head_start, head_end = headings[heading]
        inside = head_start <= start and end <= head_end
        next_inside = index + 1 < len(utterance_spans) and utterance_spans[index + 1][1] <= head_end
        if inside and not next_inside:
            ends.add(index)
    return ends
