"""The one writer of audio files: every command that writes speech to a file goes through it.

The extension picks the format (`FORMATS`): .m4b (AAC audiobook), .m4a, .mp3, .opus and .ogg (Ogg
Opus), .flac, .wav (16-bit) and .npy (the float32 samples as made). `check_output_path` finds what
would stop a render before any synthesis; `AudioFileWriter` encodes the audio as it comes (flat
memory on a whole book), writes title, author, cover and chapter marks at the end (see
`miodesk.audio.metadata`), and only then puts the file at its path, atomically:

- The render goes to a temporary file of its own in the output's folder, created exclusively under
  a unique name, so two renders of one path at once each make a whole file and the file left at
  the path is one of them, never a mix. Every failure, and `discard`, removes it.
- The file gets the user's normal permissions: a new one 0666 less the umask, a replaced one keeps
  its mode (see `miodesk.atomic`).
- A write that fails (disk full, a folder made read-only meanwhile) ends the render with an
  OutputError that names the real cause ("No space left on device"); nothing is left at the path.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from miodesk.atomic import create_temp_beside, fsync_file, keep_mode_of
from miodesk.audio.encoding import AAC_EXTRA, Encoder, OutputFile, aac_available
from miodesk.audio.metadata import (
    MAX_VORBIS_CHAPTERS,
    BookTags,
    ChapterMark,
    ChapterSpan,
    append_wav_info,
    chapter_spans,
    cover_problem,
    mux_mp4,
    tag_mp3,
    tag_mp4,
    tag_vorbis,
)
from miodesk.errors import MioDeskError
from miodesk.filenames import extended_path

__all__ = ["FORMATS", "OUTPUT_EXTENSIONS", "AudioFileWriter", "BookTags", "ChapterMark", "OutputError",
           "OutputFormat", "check_output_path", "output_format", "writable_target"]


class OutputError(MioDeskError):
    """An output that cannot be written; the message is one line that names the file and the cause."""


@dataclass(frozen=True)
class OutputFormat:
    suffix: str
    label: str  # what the user calls it, for messages
    codec: str  # miodesk.audio.encoding's
    chapters: bool  # chapter marks are written
    compression_level: float | None = None  # libsndfile's, MP3 and Opus (when PyAV is not installed)
    bit_rate: int | None = None  # FFmpeg's, bit/s: AAC, and MP3/Opus where PyAV is installed

    @property
    def needs_pyav(self) -> bool:
        return self.codec == "aac"


# Speech is mono: 64 kbit/s is what audiobook shops sell in MP3 and AAC (about 29 MB an hour). MP3 at
# a constant rate seeks exactly in a long book. Opus varies its rate around its target: at libsndfile's
# level 0.8 speech takes about 57 kbit/s; from 0.83 on (below ~47 kbit/s) libopus switches to its
# speech mode, which costs twice the time to encode (measured: 3.7 % of the audio's duration against
# 1.6 %). MP3 and Opus go through FFmpeg where PyAV is installed (faster; see miodesk.audio.encoding).
_SPEECH_BIT_RATE = 64000
_MP3_64K = 0.86  # libsndfile's compression level → 64 kbit/s constant, mono 44.1 kHz
_OPUS_LEVEL = 0.8
FORMATS: dict[str, OutputFormat] = {
    ".m4b": OutputFormat(".m4b", "M4B (AAC audiobook)", "aac", chapters=True, bit_rate=_SPEECH_BIT_RATE),
    ".m4a": OutputFormat(".m4a", "M4A (AAC)", "aac", chapters=True, bit_rate=_SPEECH_BIT_RATE),
    ".mp3": OutputFormat(".mp3", "MP3", "mp3", chapters=True, compression_level=_MP3_64K,
                         bit_rate=_SPEECH_BIT_RATE),
    ".opus": OutputFormat(".opus", "Ogg Opus", "opus", chapters=True, compression_level=_OPUS_LEVEL,
                          bit_rate=_SPEECH_BIT_RATE),
    ".ogg": OutputFormat(".ogg", "Ogg Opus", "opus", chapters=True, compression_level=_OPUS_LEVEL,
                         bit_rate=_SPEECH_BIT_RATE),
    ".flac": OutputFormat(".flac", "FLAC", "flac", chapters=True),
    ".wav": OutputFormat(".wav", "WAV", "wav", chapters=False),
    ".npy": OutputFormat(".npy", "NumPy array", "npy", chapters=False),
}
OUTPUT_EXTENSIONS = tuple(FORMATS)


def error_reason(error: BaseException) -> str:
    """The cause to show: the strerror of the OSError behind `error` (libraries wrap it), else its text."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending += [current.__cause__, current.__context__, *current.args]
    return str(error) or type(error).__name__


def output_format(path: Path) -> OutputFormat:
    """The format `path`'s extension asks for; OutputError if unknown or its encoder is not installed."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        listed = ", ".join(OUTPUT_EXTENSIONS[:-1]) + " or " + OUTPUT_EXTENSIONS[-1]
        raise OutputError(f"Cannot write '{path.name}': the output must end in {listed}.")
    if fmt.needs_pyav and not aac_available():
        raise OutputError(
            f"Cannot write '{path.name}': {fmt.label} needs PyAV, the optional extra {AAC_EXTRA}: "
            f"pip install '{AAC_EXTRA}'. .mp3, .opus, .flac and .wav need nothing more."
        )
    return fmt


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of `folder` (or itself) when it is not a folder."""
    for candidate in (folder, *folder.parents):
        try:
            mode = os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None
        return None if stat.S_ISDIR(mode) else candidate
    return None


def writable_target(path: Path) -> Path:
    """Where a file the user asked for will be written, checked before any work: the path in the form
    the system opens (extended on Windows, a symbolic link followed so the link keeps pointing at the
    new file), in an existing folder that takes new files. OutputError says what is in the way."""
    path = Path(path)
    on_disk = Path(extended_path(path))
    if on_disk.is_symlink():
        on_disk = Path(os.path.realpath(on_disk))
    try:
        mode: int | None = os.stat(on_disk).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a file stands where a folder should: found below
    except OSError as error:
        raise OutputError(f"Cannot write '{path}': {error_reason(error)}.") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"Cannot write '{path}': it is a folder.")
    if mode is not None and not stat.S_ISREG(mode):
        # A device or a pipe: renaming over it would replace it, not write to it.
        raise OutputError(f"Cannot write '{path}': it is not a regular file.")
    blocker = _file_in_the_way(on_disk.parent)
    if blocker is not None:
        shown = path.parent if blocker == on_disk.parent else blocker
        raise OutputError(f"Cannot write '{path}': Not a directory ('{shown}' is a file).")
    if not on_disk.parent.is_dir():
        raise OutputError(f"Cannot write '{path}': the folder '{path.parent}' does not exist.")
    try:  # the only sure test of permissions (ACLs, read-only mounts, Windows attributes)
        fd, probe = create_temp_beside(on_disk)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"Cannot write '{path}': {error_reason(error)}.") from None
    return on_disk


def check_output_path(path: Path) -> Path:
    """Fail before any synthesis when the output cannot be written as asked; returns `path`."""
    path = Path(path)
    output_format(path)
    writable_target(path)
    return path


class AudioFileWriter:
    """Writes float32 mono speech at `sample_rate` to `path` in the format of its extension.

    `write` the audio as it comes, then `finish` with the chapter marks: the file appears at `path`
    whole, or not at all. `discard` (or an exception inside `with`) removes every trace; leaving a
    `with` block without `finish` discards too. Not thread-safe: one writer is used by one thread.
    """

    def __init__(self, path: Path, sample_rate: int, tags: BookTags | None = None) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.sample_rate = sample_rate
        self.tags = tags or BookTags()
        self.warnings: list[str] = []  # what was left out, for the caller to show
        problem = cover_problem(self.tags)
        if problem is not None and self.format.codec not in ("wav", "npy"):
            self.warnings.append(problem)
        self._target = writable_target(self.path)
        self._temps: list[Path] = []
        self._handle: BinaryIO | None = None
        self._encoder: Encoder | None = None
        self._frames = 0
        self._state = "open"  # then "finished" or "discarded"
        try:
            self._handle = self._open_temp(private=self.format.needs_pyav)  # M4B/M4A: muxed again at the end
            self._file = OutputFile(self._handle)
            self._encoder = Encoder(self.format.codec, sample_rate, self._file,
                                    compression_level=self.format.compression_level, bit_rate=self.format.bit_rate,
                                    aac_container="mp4", prefer_ffmpeg=True)
        except BaseException as error:
            self.discard()
            if isinstance(error, Exception):
                raise OutputError(f"Cannot write '{self.path}': {error_reason(error)}.") from error
            raise

    def _open_temp(self, private: bool) -> BinaryIO:
        try:
            fd, temp = create_temp_beside(self._target, private=private)
        except OSError as error:
            raise OutputError(f"Cannot write '{self.path}': {error_reason(error)}.") from None
        self._temps.append(temp)
        try:
            return os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            raise

    @property
    def encoder_name(self) -> str:
        """The library that encodes this file ("ffmpeg", "libsndfile" or "miodesk")."""
        assert self._encoder is not None
        return self._encoder.encoder_name

    @property
    def seconds_written(self) -> float:
        """Seconds of audio given to `write` so far."""
        return self._frames / self.sample_rate

    def _fail(self, error: BaseException) -> OutputError:
        """Discard the render and say why, preferring the write error the target recorded."""
        recorded = self._file.error if self._encoder is not None else None
        self.discard()
        return OutputError(f"Cannot write '{self.path}': {error_reason(recorded or error)}.")

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the writer of '{self.path}' is {self._state}")

    def write(self, samples: np.ndarray) -> None:
        """Encode a piece of float32 mono audio at `sample_rate` (resampled where the format needs)."""
        self._check_open()
        assert self._encoder is not None
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        try:
            self._encoder.write(samples)
        except Exception as error:
            raise self._fail(error) from error
        if self._file.error is not None:
            raise self._fail(self._file.error) from self._file.error
        self._frames += len(samples)

    def finish(self, chapters: Sequence[ChapterMark] = ()) -> Path:
        """Write the rest, the tags and the chapter marks, then put the file at `path`; returns `path`.
        Formats without chapter marks (WAV, .npy) ignore `chapters`."""
        self._check_open()
        assert self._encoder is not None and self._handle is not None
        if self._frames == 0:  # FLAC and MP4 have no valid empty file, and none would be of use
            self.discard()
            raise OutputError(f"Cannot write '{self.path}': there is no audio to write.")
        spans = chapter_spans(chapters, self.seconds_written) if self.format.chapters else []
        if self.format.codec in ("flac", "opus") and len(spans) > MAX_VORBIS_CHAPTERS:
            self.warnings.append(f"only the first {MAX_VORBIS_CHAPTERS:,} of {len(spans):,} chapters were "
                                 f"marked: {self.format.label} chapter comments hold no more")
        try:
            self._encoder.finish()
            if self._file.error is not None:
                raise self._file.error
            if self.format.codec == "wav":
                append_wav_info(self._handle, self.tags)
            self._handle.close()
            final = self._temps[-1]
            if self.format.needs_pyav:
                final = self._mux_mp4(spans)
            elif self.format.codec == "mp3":
                tag_mp3(final, self.tags, spans)
            elif self.format.codec in ("flac", "opus"):
                tag_vorbis(final, self.format.codec, self.tags, spans)
            fsync_file(final)
            keep_mode_of(self._target, final)
            os.replace(final, self._target)
        except BaseException as error:
            failure = self._fail(error)
            if isinstance(error, Exception):
                raise failure from error
            raise
        self._state = "finished"
        self._temps.clear()
        return self.path

    def _mux_mp4(self, spans: Sequence[ChapterSpan]) -> Path:
        """The AAC of the first temporary file copied into a second with chapters and tags."""
        encoded = self._temps[0]
        with self._open_temp(private=False) as muxed, open(encoded, "rb") as source:
            assert self._encoder is not None
            mux_mp4(source, muxed, spans, self.tags, audiobook=self.format.suffix == ".m4b",
                    priming=self._encoder.aac_priming)
        final = self._temps[-1]
        os.unlink(encoded)
        self._temps.remove(encoded)
        tag_mp4(final, self.tags, audiobook=self.format.suffix == ".m4b")
        return final

    def discard(self) -> None:
        """Stop and remove everything written; nothing is left behind. Safe to call more than once."""
        if self._state == "finished":
            return
        self._state = "discarded"
        if self._encoder is not None:
            self._encoder.close()
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()  # a failed flush of a full disk: the file goes anyway
        for temp in self._temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        self._temps.clear()

    def __enter__(self) -> AudioFileWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._state == "open":
            self.discard()
