"""What `miodesk export` and `miodesk read -o` show in a terminal: the progress line, the summary and
the message of a stopped export. (The command's arguments and voices are miodesk.cli's.)"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from miodesk.export import ExportCancelled, ExportProgress, ExportResult

PLAIN_EVERY_S = 5.0  # without a terminal (a log, a pipe): one progress line this often
TERMINAL_EVERY_S = 0.25


def clock(seconds: float) -> str:
    """H:MM:SS (hours may pass 99)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def progress_text(progress: ExportProgress) -> str:
    parts = []
    if progress.stage == "encoding":
        parts.append(f"encoding {clock(progress.audio_s)} of audio")
    else:
        parts.append(f"{clock(progress.audio_s)} of audio")
    if progress.speed_x > 0:
        parts.append(f"{progress.speed_x:.1f}× real time")
    if progress.eta_s is not None:
        parts.append(f"{clock(progress.eta_s)} left")
    if progress.stage != "encoding":
        parts.append(f"chapter {progress.chapter}/{progress.chapters}")
    return " · ".join(parts)


class ProgressLine:
    """The export's progress on `stream` (stderr): one line rewritten in place on a terminal, a new line
    every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self._last = 0.0 if self.terminal else time.monotonic()  # a log gets no line for a short export
        self._width = 0
        self._stage = ""

    def update(self, progress: ExportProgress) -> None:
        now = time.monotonic()
        every = TERMINAL_EVERY_S if self.terminal else PLAIN_EVERY_S
        if now - self._last < every and (progress.stage == self._stage or not self.terminal):
            return
        self._last, self._stage = now, progress.stage
        text = progress_text(progress)
        if self.terminal:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(f"miodesk: {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        """End the rewritten line before other output."""
        if self.terminal and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def guard_text(result: ExportResult, guard_on: bool) -> str:
    if not guard_on:
        return "quality guard off"
    counts = result.guard
    if not counts.flagged:
        return f"quality guard: all {counts.checked} sentences passed" if counts.checked else "quality guard on"
    details = [f"{counts.fixed} fixed"]
    if counts.kept_flawed:
        details.append(f"{counts.kept_flawed} kept as the best of the tries")
    return (f"quality guard: {counts.flagged} sentence{'s' if counts.flagged != 1 else ''} regenerated "
            f"({', '.join(details)}; {counts.regenerations} extra generations)")


def summary_line(result: ExportResult, guard_on: bool) -> str:
    chapters = f"{result.chapters} chapter{'s' if result.chapters != 1 else ''}"
    if result.chapters_reused:
        chapters += f" ({result.chapters_reused} from the interrupted run)"
    parts = [f"{clock(result.audio_s)} of audio", chapters, guard_text(result, guard_on)]
    if result.dropped:
        parts.append(f"{result.dropped} sentence{'s' if result.dropped != 1 else ''} left out (the model could "
                     "not finish them)")
    if result.subtitles is not None:
        parts.append(f"subtitles in {result.subtitles}")
    took = clock(result.wall_s) if result.wall_s >= 60 else f"{result.wall_s:.1f} s"
    return f"{result.output}: {', '.join(parts)}; done in {took} (encoding {result.encode_s:.1f} s)"


def stopped_message(stopped: ExportCancelled) -> str:
    """Ctrl+C or SIGTERM in a terminal: what is kept and how to go on (the same command continues)."""
    if not stopped.chapters_kept:
        return "stopped before the first chapter was finished; nothing was kept."
    return (f"stopped; {stopped.chapters_kept} of {stopped.chapters} chapters are kept in '{stopped.staging}': "
            "run the same command again to continue (--restart starts over).")
