"""Subtitles for exported speech: one cue per sentence, with the times at which it is heard.

The suffix picks the format:
- .srt (SubRip): numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the text on one line.
- .vtt (WebVTT): `WEBVTT`, then cues with `HH:MM:SS.mmm`; the text escapes &, < and > (WebVTT
  reads them as markup).
- .lrc (lyrics, what music players show line by line): `[mm:ss.xx]text`; LRC has no end times, so an
  empty line clears the text where a pause follows a cue.

Files are UTF-8 without a byte-order mark and LF line ends on every platform, written atomically
with the user's normal permissions. Cue text is one line: line breaks would end an SRT or VTT cue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from miodesk.atomic import atomic_write_bytes
from miodesk.audio.metadata import clean_text
from miodesk.audio.output import OutputError, error_reason, writable_target

SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".lrc")
_LRC_GAP_S = 0.5  # a pause at least this long after a cue clears the line


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def _millis(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _clock(seconds: float, separator: str) -> str:
    millis = _millis(seconds)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _lrc_clock(seconds: float) -> str:
    """[mm:ss.xx]: minutes go past 59 (LRC has no hours)."""
    centis = max(0, round(seconds * 100))
    minutes, rest = divmod(centis, 6000)
    return f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]"


def _ordered(cues: Sequence[Cue]) -> list[Cue]:
    """Cues with text, in time order, none ending before it starts."""
    kept = [Cue(cue.start_s, max(cue.start_s, cue.end_s), clean_text(cue.text)) for cue in cues]
    return sorted((cue for cue in kept if cue.text), key=lambda cue: cue.start_s)


def srt_text(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{number}\n{_clock(cue.start_s, ',')} --> {_clock(cue.end_s, ',')}\n{cue.text.replace('-->', '->')}\n"
        for number, cue in enumerate(_ordered(cues), start=1)
    ]
    return "\n".join(blocks)


def vtt_text(cues: Sequence[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in _ordered(cues):
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_clock(cue.start_s, '.')} --> {_clock(cue.end_s, '.')}\n{text}\n")
    return "\n".join(blocks)


def lrc_text(cues: Sequence[Cue]) -> str:
    lines: list[str] = []
    ordered = _ordered(cues)
    for index, cue in enumerate(ordered):
        lines.append(f"{_lrc_clock(cue.start_s)}{cue.text}")
        next_start = ordered[index + 1].start_s if index + 1 < len(ordered) else None
        if next_start is None or next_start - cue.end_s >= _LRC_GAP_S:
            lines.append(_lrc_clock(cue.end_s))
    return "".join(line + "\n" for line in lines)


_WRITERS = {".srt": srt_text, ".vtt": vtt_text, ".lrc": lrc_text}


def _subtitles_target(path: Path) -> Path:
    if path.suffix.lower() not in _WRITERS:
        raise OutputError(f"Cannot write '{path.name}': subtitles must end in .srt, .vtt or .lrc.")
    return writable_target(path)


def check_subtitles_path(path: Path) -> Path:
    """Fail before any synthesis when the subtitles cannot be written as asked; returns `path`."""
    path = Path(path)
    _subtitles_target(path)
    return path


def write_subtitles(path: Path, cues: Sequence[Cue]) -> Path:
    """Write `cues` in the format of `path`'s suffix, atomically; returns `path`."""
    path = Path(path)
    target = _subtitles_target(path)
    text = _WRITERS[path.suffix.lower()](cues)
    try:
        atomic_write_bytes(target, text.encode("utf-8"), private=False)
    except OSError as error:
        raise OutputError(f"Cannot write '{path}': {error_reason(error)}.") from error
    return path
