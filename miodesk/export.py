"""Audiobook export: a document rendered to one audio file with chapter marks, tags and subtitles,
resumable after an interruption.

The export reads the document through the same pipeline as live reading (`ReadingSession`: the
model's and the codec's threads overlapping, `prepare_text`, a voice per language, a dialogue voice,
`priority`), with whole-sentence decodes (exact, and the same audio however it is cut into runs) and
the quality guard (miodesk.tts.quality). The audio goes chapter by chapter into a staging folder in
MioDesk's cache (`staging_root`), not next to the output:

    exports/<key>/chapter-0001.flac …   one FLAC per finished chapter, each written atomically
    exports/<key>/manifest.json         after each finished chapter (atomically): where every
                                        sentence lies in its chapter, what the guard did
    exports/<key>/lock                  held while an export runs (a second one of the same key waits not)

The key covers everything that changes the audio: the document's text and chapter bounds, the
voices (their vectors, not only their names), speed, the dialogue voice, the starting character, the
seed, the models, the decoding and whether the guard is on. Run again with the same arguments, an
export continues after the last finished chapter: at most the chapter in progress is redone. The
readings dictionary is not in the key: it is a living file that applies "from the next sentence"
everywhere in MioDesk, and a word fixed while a long export runs should not throw away the hours of
chapters already made; those keep the readings they were made with (`--restart` redoes them).

The book itself is encoded as the audio comes (by the codec thread, into the staging folder: a
crash leaves nothing beside OUT), with a chapter mark where each chapter's first sentence starts and
the title, author and cover as tags; a resumed export first encodes the chapters it reuses. The
finished file is then moved to OUT (copied through a temporary file beside OUT when OUT is on
another disk): OUT appears whole or not at all. Then the subtitles (one cue per sentence, at the
times it is heard) are written and the staging folder is removed. A cancel (the window's button,
Ctrl+C, SIGTERM), a crash or a power loss keeps the finished chapters; a full disk ends with a
one-line message and keeps them too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile

from miodesk.atomic import atomic_path, atomic_write_bytes, keep_mode_of
from miodesk.audio.output import (
    AudioFileWriter,
    BookTags,
    ChapterMark,
    OutputError,
    check_output_path,
    error_reason,
    writable_target,
)
from miodesk.audio.subtitles import Cue, check_subtitles_path, write_subtitles
from miodesk.errors import MioDeskError
from miodesk.paths import cache_dir
from miodesk.text.formats.base import Document
from miodesk.text.normalize import text_for_model
from miodesk.text.segment import Utterance, segment
from miodesk.tts.generation import Priority
from miodesk.tts.pauses import Pauses
from miodesk.tts.quality import GuardCounts, QualityGuard
from miodesk.tts.reader import (
    Marker,
    MarkersWhenWritten,
    ReaderEvent,
    ReaderEventKind,
    ReadingEngine,
    ReadingSession,
    ReadingStats,
)
from miodesk.tts.streaming import ChunkPlan

log = logging.getLogger(__name__)

STAGING_VERSION = 1  # bump when staged files would no longer fit a newer MioDesk
MANIFEST = "manifest.json"
LOCK = "lock"
_READ_BLOCK = 1 << 16  # frames per read when the chapters are encoded into the output


class ExportCancelled(MioDeskError):
    """The export was stopped (cancel, Ctrl+C, SIGTERM); its finished chapters are kept for a resume."""

    def __init__(self, chapters_kept: int, chapters: int, staging: Path) -> None:
        self.chapters_kept, self.chapters, self.staging = chapters_kept, chapters, staging
        kept = (f"the {chapters_kept} finished chapter{'s' if chapters_kept != 1 else ''} of {chapters} "
                f"{'are' if chapters_kept != 1 else 'is'} kept" if chapters_kept else "no chapter was finished yet")
        super().__init__(f"Export stopped: {kept}; export it again with the same settings to continue.")


@dataclass
class ExportRequest:
    document: Document
    output: Path  # its extension picks the format (miodesk.audio.output.output_format)
    voice: np.ndarray  # the main voice vector
    voices: Mapping[str, np.ndarray] | None = None  # a voice per utterance language ("ja", "en")
    dialogue_voice: np.ndarray | None = None  # text inside 「…」『…』"…" in this voice
    voice_key: str = ""  # the voice names (in the staging key, so a resume never mixes voices)
    speed: float = 1.0
    pauses: Pauses = field(default_factory=Pauses)  # after sentences, paragraphs and headings
    subtitles: Path | None = None  # .srt / .vtt / .lrc
    from_char: int = 0
    seed: int | None = None
    prepare_text: Callable[[str], str] = text_for_model  # the readings dictionary (LiveReadings.prepare_text)
    quality_guard: bool = True
    priority: Priority = Priority.INTERACTIVE  # the window passes Priority.BACKGROUND
    # Beyond the window's contract: `read -o` streams windows unless --full-decode (None: whole sentences,
    # exact and the same in every run), and a guard with other limits or an extra scorer (tests).
    plan: ChunkPlan | None = None
    guard: QualityGuard | None = None
    restart: bool = False  # throw away staged work of the same key first


@dataclass
class ExportProgress:
    stage: str  # "rendering" | "encoding"
    audio_s: float  # audio rendered so far (including chapters reused from a resume)
    done_chars: int  # of the text being exported
    total_chars: int
    chapter: int  # 1-based chapter in progress
    chapters: int
    speed_x: float  # audio seconds per wall second of this run (0 until known)
    eta_s: float | None  # time left, None until known


@dataclass
class ExportResult:
    output: Path
    subtitles: Path | None
    audio_s: float
    wall_s: float
    encode_s: float  # staging the chapters and encoding the output
    chapters: int
    chapters_reused: int  # finished chapters taken from a previous, interrupted run
    regenerated: int  # quality guard: sentences generated again
    dropped: int  # sentences left out (the model could not finish them)
    staging: Path  # removed after success
    guard: GuardCounts = field(default_factory=GuardCounts)  # all of it, reused chapters included
    staging_s: float = 0.0  # of encode_s: writing this run's chapters to the staging folder
    stats: ReadingStats | None = None  # this run's reading statistics (`read -o --stats`)
    warnings: list[str] = field(default_factory=list)  # what the writer left out (an unusable cover)


# --- checks and keys ---------------------------------------------------------------------------------


def check_export_paths(output: Path, subtitles: Path | None) -> None:
    """Fail before any model work when the audio or the subtitles cannot be written (OutputError)."""
    check_output_path(output)
    if subtitles is not None:
        check_subtitles_path(subtitles)
        if os.path.abspath(subtitles) == os.path.abspath(output):
            raise OutputError(f"Cannot write '{subtitles}': the subtitles and the audio must be two files.")


def staging_root() -> Path:
    return cache_dir() / "exports"


def _vector_digest(vector: np.ndarray | None) -> str:
    if vector is None:
        return ""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes()).hexdigest()[:16]


def _file_identity(path: Any) -> str:
    """A model file by path, size and modification time: replaced by another file, it is another model."""
    try:
        info = os.stat(path)
    except (OSError, TypeError, ValueError):
        return str(path)
    return f"{path}:{info.st_size}:{info.st_mtime_ns}"


def engine_identity(engine: ReadingEngine) -> dict[str, Any]:
    llm, codec = engine.llm, engine.codec
    server = getattr(llm, "config", None)
    return {
        "llm": type(llm).__name__,
        "model": _file_identity(getattr(llm, "model_path", "")) if server is None
        else f"{getattr(server, 'base_url', '')} {getattr(llm, 'model_name', '')}",
        "codec": _file_identity(getattr(codec, "onnx_path", "")),
        "rate": codec.sample_rate,
        "samples_per_token": codec.samples_per_token,
    }


def staging_key(request: ExportRequest, engine: ReadingEngine) -> str:
    document = request.document
    parts = {
        "version": STAGING_VERSION,
        "text": hashlib.sha256(document.text.encode("utf-8", "surrogatepass")).hexdigest(),
        "chapters": [[chapter.start, chapter.end] for chapter in document.chapters],
        "voice": _vector_digest(request.voice),
        "voices": {language: _vector_digest(vector) for language, vector in sorted((request.voices or {}).items())},
        "dialogue": _vector_digest(request.dialogue_voice),
        "voice_key": request.voice_key,
        "speed": round(float(request.speed), 6),
        "pauses": [request.pauses.sentence_s, request.pauses.paragraph_s, request.pauses.heading_s],
        "from_char": request.from_char,
        "seed": request.seed,
        "engine": engine_identity(engine),
        "plan": repr(request.plan or ChunkPlan(full=True)),
        "guard": repr(_guard_of(request)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def _guard_of(request: ExportRequest) -> QualityGuard | None:
    if request.guard is not None:
        return request.guard
    return QualityGuard() if request.quality_guard else None


def book_tags(document: Document) -> BookTags:
    """Title, author and cover; an Aozora title block's title ends with its author, left out here."""
    title, author = document.title, document.author
    if author and title.endswith(author) and title[: -len(author)].strip(" \u3000"):
        title = title[: -len(author)].strip(" \u3000")
    return BookTags(title=title, author=author, cover=document.cover, cover_mime=document.cover_mime)


# --- the plan: chapters of utterances ---------------------------------------------------------------


@dataclass
class ChapterPlan:
    title: str
    first: int  # index of its first utterance
    stop: int  # index after its last


def plan_chapters(document: Document, utterances: list[Utterance], first: int) -> list[ChapterPlan]:
    """The document's chapters that hold utterances from index `first` on (empty chapters are left out)."""
    plans: list[ChapterPlan] = []
    index = first
    for chapter in document.chapters:
        start = index
        while index < len(utterances) and utterances[index].start < chapter.end:
            index += 1
        if index > start:
            plans.append(ChapterPlan(chapter.title, start, index))
    if index < len(utterances):  # text after the last chapter (a document built without chapters to the end)
        title = plans[-1].title if plans else document.title
        if plans:
            plans[-1].stop = len(utterances)
        else:
            plans.append(ChapterPlan(title, index, len(utterances)))
    return plans


# --- the staging folder -----------------------------------------------------------------------------


class _StagingLock:
    """An exclusive lock on the staging folder, released by the system when the process ends however it
    ends (a crash, SIGKILL): a second export of the same key refuses instead of writing the same files.
    POSIX record locks (os.lockf) belong to a process, so this process's own locks are also kept in a set."""

    _held: set[str] = set()
    _held_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        with self._held_lock:
            if str(self.path) in self._held:
                return False
            handle = open(self.path, "a+b")  # noqa: SIM115 - held open until release()
            try:
                handle.seek(0)
                if sys.platform == "win32":
                    import msvcrt

                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    os.lockf(handle.fileno(), os.F_TLOCK, 0)
            except OSError:
                handle.close()
                return False
            self._file = handle
            self._held.add(str(self.path))
            return True

    def release(self) -> None:
        with self._held_lock:
            if self._file is not None:
                self._file.close()  # closing releases the lock on every platform
                self._file = None
                self._held.discard(str(self.path))


@dataclass
class StagedChapter:
    file: str
    frames: int
    utterances: list[tuple[int, int, int]]  # (utterance index, start frame, end frame) in the chapter
    guard: dict[str, int]
    skipped: int

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "frames": self.frames, "utterances": [list(u) for u in self.utterances],
                "guard": self.guard, "skipped": self.skipped}

    @staticmethod
    def from_json(data: dict[str, Any]) -> StagedChapter:
        return StagedChapter(str(data["file"]), int(data["frames"]),
                             [(int(a), int(b), int(c)) for a, b, c in data["utterances"]],
                             {str(k): int(v) for k, v in dict(data.get("guard", {})).items()},
                             int(data.get("skipped", 0)))


class Staging:
    """The staging folder of one export key: its finished chapters and their manifest."""

    def __init__(self, folder: Path, key: str, sample_rate: int, about: dict[str, Any]) -> None:
        self.folder, self.key, self.sample_rate, self.about = folder, key, sample_rate, about
        self.chapters: list[StagedChapter] = []

    def chapter_path(self, number: int) -> Path:
        return self.folder / f"chapter-{number + 1:04d}.flac"

    def book_path(self, output: Path) -> Path:
        """Where the book is encoded before it goes to `output` (in its format)."""
        return self.folder / f"book{Path(output).suffix.lower()}"

    def load(self, plans: list[ChapterPlan]) -> None:
        """The finished chapters of an earlier run: the longest run from the first whose files are whole."""
        try:
            data = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
            if data.get("key") != self.key or data.get("sample_rate") != self.sample_rate:
                return
            staged = [StagedChapter.from_json(item) for item in data.get("chapters", [])]
        except (OSError, ValueError, KeyError, TypeError) as error:
            if (self.folder / MANIFEST).exists():
                log.warning("export: the staging manifest in %s is unreadable (%s); starting over", self.folder, error)
            return
        for number, chapter in enumerate(staged[: len(plans)]):
            if chapter.file == "" and chapter.frames == 0:  # every sentence of it was left out
                self.chapters.append(chapter)
                continue
            try:
                whole = (chapter.file == self.chapter_path(number).name
                         and soundfile.info(str(self.folder / chapter.file)).frames == chapter.frames)
            except (OSError, RuntimeError):  # missing or damaged (LibsndfileError is a RuntimeError)
                whole = False
            if not whole:
                break
            self.chapters.append(chapter)

    def tidy(self) -> None:
        """Remove what is not a finished chapter: temporary files of a killed run, chapters past the last
        finished one."""
        keep = {MANIFEST, LOCK, *(chapter.file for chapter in self.chapters)}
        for path in self.folder.iterdir():
            if path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()

    def save(self) -> None:
        data = {"version": STAGING_VERSION, "key": self.key, "sample_rate": self.sample_rate, "about": self.about,
                "chapters": [chapter.as_json() for chapter in self.chapters]}
        atomic_write_bytes(self.folder / MANIFEST, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    @property
    def frames(self) -> int:
        return sum(chapter.frames for chapter in self.chapters)


class ChapterSink(MarkersWhenWritten):
    """The export's sink: the reading's audio into one staged FLAC per chapter, and into the book's
    encoder. The session's markers (written in order with the audio, on the codec thread) say where each
    utterance starts and ends; a chapter's file is finished, and the manifest saved, when the next
    chapter's first utterance starts."""

    def __init__(self, staging: Staging, plans: list[ChapterPlan], sample_rate: int,
                 session_stats: Callable[[], ReadingStats], book: AudioFileWriter | None = None) -> None:
        self.staging, self.plans, self.sample_rate = staging, plans, sample_rate
        self.book = book  # the output's encoder, fed as the audio comes (see run_export)
        self._stats = session_stats
        self._chapter_of = {index: number for number, plan in enumerate(plans)
                            for index in range(plan.first, plan.stop)}
        self._writer: AudioFileWriter | None = None
        self._number = -1
        self._frames = 0  # in the open chapter
        self._utterances: list[tuple[int, int, int]] = []
        self._guard_before: dict[str, int] = {}
        self._skipped_before = 0
        self.frames_this_run = 0
        self.first_audio_time: float | None = None
        self.encode_s = 0.0
        self.done_index: int | None = None  # the last utterance whose audio is written
        self.failure: OutputError | None = None

    @property
    def chapter(self) -> int:
        """The chapter being written (0-based), -1 before the first."""
        return self._number

    @property
    def buffered_seconds(self) -> float:
        return math.inf  # a file never runs dry

    def end_of_audio(self) -> None:
        pass

    def add_marker(self, payload: Any) -> None:
        kind, index = payload
        if kind == Marker.START:
            number = self._chapter_of[index]
            if number != self._number:
                self._finish_chapter()
                self._open_chapter(number)
            self._utterances.append((index, self._frames, self._frames))
        elif kind == Marker.SPOKEN and self._utterances and self._utterances[-1][0] == index:
            self._utterances[-1] = (index, self._utterances[-1][1], self._frames)
            self.done_index = index
        super().add_marker(payload)

    def _open_chapter(self, number: int) -> None:
        stats = self._stats()
        self._guard_before, self._skipped_before = stats.guard.as_dict(), stats.skipped
        self._number, self._frames, self._utterances = number, 0, []
        self._writer = self._guarded_call(lambda: AudioFileWriter(self.staging.chapter_path(number), self.sample_rate))

    def _finish_chapter(self) -> None:
        """The open chapter's file put in place and recorded in the manifest."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        started = time.perf_counter()
        self._guarded_call(lambda: writer.finish() if self._frames else writer.discard())
        stats = self._stats()
        guard = {key: value - self._guard_before.get(key, 0) for key, value in stats.guard.as_dict().items()}
        chapter = StagedChapter(self.staging.chapter_path(self._number).name, self._frames, list(self._utterances),
                                guard, stats.skipped - self._skipped_before)
        if not self._frames:  # every sentence was left out: an empty chapter, no file (FLAC has none)
            chapter.file = ""
        self.staging.chapters.append(chapter)
        self._guarded_call(self.staging.save)
        self.encode_s += time.perf_counter() - started
        log.info("export: chapter %d of %d staged, %.1f s of audio", self._number + 1, len(self.plans),
                 self._frames / self.sample_rate)

    def _guarded_call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except OutputError as error:
            self.failure = error
            raise
        except OSError as error:  # the manifest: the same one line as an audio write
            self.failure = OutputError(f"Cannot write '{self.staging.folder}': {error_reason(error)}.")
            raise self.failure from error

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        if cancel is not None and cancel.is_set():
            return False
        assert self._writer is not None, "audio before the first utterance's marker"
        if self.first_audio_time is None and np.any(samples):
            self.first_audio_time = time.perf_counter()
        started = time.perf_counter()
        writer, book = self._writer, self.book
        self._guarded_call(lambda: writer.write(samples))
        if book is not None:
            self._guarded_call(lambda: book.write(samples))
        self.encode_s += time.perf_counter() - started
        self._frames += len(samples)
        self.frames_this_run += len(samples)
        return True

    def finish(self) -> None:
        """After the last utterance: its chapter finished too."""
        self._finish_chapter()

    def discard(self) -> None:
        """Stopped: the chapter in progress is thrown away (the finished ones stay)."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


# --- the export ---------------------------------------------------------------------------------------


def chapter_marks(plans: list[ChapterPlan], staging: Staging) -> list[ChapterMark]:
    """A mark at the start of each chapter's audio (its first utterance starts at its first sample)."""
    marks, position = [], 0
    for plan, chapter in zip(plans, staging.chapters, strict=True):
        if chapter.file:
            marks.append(ChapterMark(plan.title, position / staging.sample_rate))
        position += chapter.frames
    return marks


def subtitle_cues(utterances: list[Utterance], staging: Staging) -> list[Cue]:
    """One cue per utterance heard, from its first to its last sample in the file."""
    cues, position, rate = [], 0, staging.sample_rate
    for chapter in staging.chapters:
        for index, start, end in chapter.utterances:
            if end > start:
                cues.append(Cue((position + start) / rate, (position + end) / rate, utterances[index].text))
        position += chapter.frames
    return cues


def _totals(staging: Staging) -> GuardCounts:
    totals = GuardCounts()
    for chapter in staging.chapters:
        for key, value in chapter.guard.items():
            if hasattr(totals, key):
                setattr(totals, key, getattr(totals, key) + value)
    return totals


def run_export(engine: ReadingEngine, request: ExportRequest,
               on_progress: Callable[[ExportProgress], None] | None = None,
               cancel: threading.Event | None = None,
               on_event: Callable[[ReaderEvent], None] | None = None) -> ExportResult:
    """Render `request` (blocking: call it on a worker thread in a window). `cancel`, or Ctrl+C in the
    thread that runs it, stops it with ExportCancelled, keeping the finished chapters. `on_event` gets
    the reading's events (each sentence as it starts, warnings). Failures: OutputError (the output,
    the staging folder), MioDeskError (the reading).

    The book is encoded while it is rendered (by the codec thread, into the staging folder): MP3, Opus
    and AAC cost 1-2 % of the audio's length to encode, which done afterwards would add 6-7 % to the
    synthesis time of a 0.1B model on two cores; alongside, it mostly fills the codec thread's waits
    for the model. A resumed export first encodes the chapters it reuses. The finished book is then
    moved to OUT (copied through a temporary file beside it when OUT is on another disk)."""
    started = time.perf_counter()
    cancel = cancel or threading.Event()
    check_export_paths(request.output, request.subtitles)
    document = request.document
    utterances = segment(document.text, split_quotes=request.dialogue_voice is not None)
    first = next((index for index, u in enumerate(utterances) if request.from_char < u.end), len(utterances))
    if first >= len(utterances):
        raise MioDeskError("There is nothing to read aloud from that point on.")
    plans = plan_chapters(document, utterances, first)
    rate = engine.codec.sample_rate
    key = staging_key(request, engine)
    folder = staging_root() / key
    if request.restart:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot write '{folder}': {error.strerror or error}.") from None
    lock = _StagingLock(folder / LOCK)
    if not lock.acquire():
        raise MioDeskError("Another export of the same document with the same settings is running "
                           f"(it keeps its work in '{folder}'); wait for it to finish.")
    staging = Staging(folder, key, rate, {"output": str(request.output), "title": document.title,
                                           "voices": request.voice_key, "from_char": request.from_char})
    book: AudioFileWriter | None = None
    try:
        staging.load(plans)
        staging.tidy()
        reused = len(staging.chapters)
        log.info("export %s to %s: %d chapters, %d reused from %s", document.title, request.output, len(plans),
                 reused, folder)
        book = AudioFileWriter(staging.book_path(request.output), rate, book_tags(document))
        total_chars = sum(len(u.text) for u in utterances[first:])
        reused_chars = sum(len(u.text) for u in utterances[first:plans[reused].first]) if reused < len(plans) \
            else total_chars
        encode_s = _encode_staged(book, staging, len(plans), (reused_chars, total_chars), on_progress, cancel)
        stats, staging_s = None, 0.0
        if reused < len(plans):
            stats, staging_s = _render(engine, request, utterances, plans, staging, on_progress, cancel, on_event,
                                       book)
        finishing = time.perf_counter()
        if not staging.frames:
            raise MioDeskError("The speech model could not say any sentence of it, so there is no audio to write.")
        book.finish(chapter_marks(plans, staging))
        warnings = list(book.warnings)
        try:
            deliver(staging.book_path(request.output), request.output)
            if request.subtitles is not None:
                write_subtitles(request.subtitles, subtitle_cues(utterances, staging))
        except OutputError as error:  # the output's disk is full: the rendered audio stays staged
            raise OutputError(f"{error} {_kept_note(len(staging.chapters), 'finish it')}") from error
        encode_s += staging_s + time.perf_counter() - finishing
    except KeyboardInterrupt:  # Ctrl+C (or the CLI's SIGTERM) in this thread: a cancel like any other
        raise ExportCancelled(len(staging.chapters), len(plans), folder) from None
    finally:
        if book is not None:
            book.discard()  # nothing when it was finished
        lock.release()
        if not staging.chapters:  # stopped before anything was kept: no empty folder left behind
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    guard = _totals(staging)
    return ExportResult(
        output=request.output, subtitles=request.subtitles, audio_s=staging.frames / rate,
        wall_s=time.perf_counter() - started, encode_s=encode_s, chapters=len(plans), chapters_reused=reused,
        regenerated=guard.flagged, dropped=sum(chapter.skipped for chapter in staging.chapters), staging=folder,
        guard=guard, stats=stats, warnings=warnings, staging_s=staging_s,
    )


def deliver(staged: Path, output: Path) -> None:
    """Put the finished `staged` file at `output` whole: renamed when both are on one disk, else copied to a
    temporary file beside `output` first. A replaced file keeps its mode (see miodesk.atomic)."""
    target = writable_target(output)
    keep_mode_of(target, staged)
    try:
        os.replace(staged, target)
        return
    except OSError:
        pass  # another disk (or a rename the system refuses): copy
    try:
        with atomic_path(target, private=False) as temporary:
            shutil.copyfile(staged, temporary)
    except OSError as error:
        raise OutputError(f"Cannot write '{output}': {error_reason(error)}.") from error


def _encode_staged(book: AudioFileWriter, staging: Staging, chapters: int, chars: tuple[int, int],
                   on_progress: Callable[[ExportProgress], None] | None, cancel: threading.Event) -> float:
    """The chapters reused from an interrupted run, into the book's encoder first; returns the time taken."""
    started = time.perf_counter()
    rate, total = staging.sample_rate, staging.frames
    encoded = 0
    last_report = 0.0
    for number, chapter in enumerate(staging.chapters):
        if not chapter.file:
            continue
        with soundfile.SoundFile(str(staging.folder / chapter.file)) as source:
            for block in source.blocks(_READ_BLOCK, dtype="float32"):
                if cancel.is_set():
                    raise ExportCancelled(len(staging.chapters), chapters, staging.folder)
                book.write(block)
                encoded += len(block)
                now = time.perf_counter()
                if on_progress is not None and now - last_report >= 0.25:
                    last_report = now
                    speed = encoded / rate / max(now - started, 1e-9)
                    on_progress(ExportProgress("encoding", encoded / rate, *chars, number + 1, chapters, speed,
                                               (total - encoded) / rate / speed))
    return time.perf_counter() - started


def _kept_note(kept: int, goal: str, make_room: bool = True) -> str:
    if not kept:
        return "Nothing was kept."
    return (f"The {kept} finished chapter{'s are' if kept != 1 else ' is'} kept: "
            f"{'make room and ' if make_room else ''}export again with the same settings to {goal}.")


def _render(engine: ReadingEngine, request: ExportRequest, utterances: list[Utterance], plans: list[ChapterPlan],
            staging: Staging, on_progress: Callable[[ExportProgress], None] | None, cancel: threading.Event,
            on_event: Callable[[ReaderEvent], None] | None, book: AudioFileWriter) -> tuple[ReadingStats, float]:
    """The chapters not staged yet, in one reading from the first of them, into their staged files and
    `book`; (its stats, the time spent writing them)."""
    rate = engine.codec.sample_rate
    resume_at = plans[len(staging.chapters)].first
    errors: list[str] = []

    def events(event: ReaderEvent) -> None:
        if event.kind == ReaderEventKind.ERROR:
            errors.append(event.message)
        if on_event is not None:
            on_event(event)

    holder: list[ReadingSession] = []
    sink = ChapterSink(staging, plans, rate, lambda: holder[0].stats, book)
    session = ReadingSession(
        engine, utterances, request.voice, sink, source_text=request.document.text, speed=request.speed,
        plan=request.plan or ChunkPlan(full=True), on_event=events, seed=request.seed, priority=request.priority,
        prepare_text=request.prepare_text, voices=request.voices, dialogue_voice=request.dialogue_voice,
        quality_guard=_guard_of(request), pauses=request.pauses, headings=request.document.heading_spans(),
    )
    holder.append(session)
    chars_before = [0]
    for utterance in utterances[plans[0].first:]:
        chars_before.append(chars_before[-1] + len(utterance.text))
    total_chars = chars_before[-1]
    reused_frames = staging.frames
    done_at_start = chars_before[resume_at - plans[0].first]
    render_started = time.perf_counter()

    def progress() -> ExportProgress:
        done_index = sink.done_index
        done = chars_before[done_index + 1 - plans[0].first] if done_index is not None else done_at_start
        elapsed = time.perf_counter() - render_started
        audio_run = sink.frames_this_run / rate
        chars_run = done - done_at_start
        eta = (total_chars - done) * elapsed / chars_run if chars_run > 0 and elapsed > 0 else None
        return ExportProgress("rendering", (reused_frames + sink.frames_this_run) / rate, done, total_chars,
                              min(max(sink.chapter, len(staging.chapters)) + 1, len(plans)), len(plans),
                              audio_run / elapsed if elapsed > 0 else 0.0, eta)

    finished = False
    try:
        session.start(resume_at)
        while not session.wait(0.1):
            if cancel.is_set():
                break
            if on_progress is not None:
                on_progress(progress())
        finished = session.finished and not cancel.is_set() and not errors
    finally:
        session.stop()
        if not finished:
            sink.discard()
    if errors:
        if sink.failure is not None:
            raise OutputError(f"{sink.failure} {_kept_note(len(staging.chapters), 'continue')}")
        raise MioDeskError(f"{errors[0].rstrip('.')}. {_kept_note(len(staging.chapters), 'continue', False)}")
    if not finished:
        raise ExportCancelled(len(staging.chapters), len(plans), staging.folder)
    sink.finish()
    if on_progress is not None:
        on_progress(progress())
    return session.stats, sink.encode_s
