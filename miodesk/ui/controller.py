"""The one object between the window and the engine.

It lives on the UI thread and owns the SpeechEngine, the AudioPlayer and the ReadingSession. Work
that can take longer than a frame runs elsewhere:

- model loading and document loading: a short-lived background thread each, whose result comes
  back through `_taskDone` (a queued signal, so the callback runs on the UI thread);
- session controls that join the synthesis threads (start, stop, seek, next, previous): one serial
  "reader-control" thread, so they keep their order and never block the UI;
- engine events (utterance_started …) arrive on the session's worker threads and are re-emitted
  through `_engineEvent`, a queued connection: the UI only ever sees them on its own thread.

The highlight follows `utteranceStarted`, which is emitted only for the session's
`utterance_started` events, i.e. when the sentence becomes audible.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from miodesk.errors import MioDeskError, ModelError, VoiceError
from miodesk.settings import PositionStore, Settings, content_hash, document_key, save_settings
from miodesk.text.documents import Document, DocumentError, load_document
from miodesk.text.segment import Utterance, segment

log = logging.getLogger(__name__)

PROVIDER_LABELS = {"cpu": "CPU", "cuda": "CUDA", "directml": "DirectML"}
# Seconds of speech per character before a reading has measured its own pace.
DEFAULT_PACE = {"ja": 0.14, "en": 0.065}
POSITION_SAVE_INTERVAL_S = 3.0

EngineFactory = Callable[[Settings], Any]


def default_engine_factory(settings: Settings) -> Any:
    """Build the SpeechEngine the settings describe (slow: call it off the UI thread)."""
    from miodesk.tts.engine import SpeechEngine, default_model_path, split_threads

    model = Path(settings.model_path) if settings.model_path else default_model_path()
    codec = settings.codec_folder()
    if not codec.exists():
        raise ModelError(f"No MioCodec in {codec}. Download the models from the welcome dialog or choose a codec "
                         "folder in Settings.")
    llm_threads, codec_threads = split_threads()
    return SpeechEngine(
        model,
        codec,
        provider=settings.provider,
        llm_threads=settings.llm_threads or llm_threads,
        codec_threads=settings.codec_threads or codec_threads,
    )


def models_installed(settings: Settings) -> str | None:
    """None when a model and a codec are where the settings say; else why not (for first run)."""
    from miodesk.tts.engine import default_model_path

    try:
        if settings.model_path:
            if not Path(settings.model_path).is_file():
                return f"The model file {settings.model_path} does not exist."
        else:
            default_model_path()
    except ModelError as error:
        return str(error)
    if not settings.codec_folder().exists():
        return f"No MioCodec in {settings.codec_folder()}."
    return None


@dataclass
class LoadedDocument:
    document: Document
    utterances: list[Utterance]
    key: str | None  # where its reading position is stored (None: clipboard, not remembered)
    resume_offset: int | None


class ReaderController(QObject):
    # state: "idle" | "loading" (waiting for models) | "playing" | "paused"
    stateChanged = Signal(str)
    # engine: "none" | "loading" | "ready" | "failed"
    engineStateChanged = Signal(str)
    engineInfoChanged = Signal(str, str)  # model name, compute device label
    documentLoading = Signal(str)
    documentLoaded = Signal(object)  # LoadedDocument
    documentFailed = Signal(str)
    utteranceStarted = Signal(int, int, int)  # index, start, end: the sentence now audible
    cursorRequested = Signal(int)  # move the caret here (navigation while not reading)
    statsChanged = Signal(object)  # dict: ttfa_s, rtf, remaining_s
    errorOccurred = Signal(str)
    warningOccurred = Signal(str)
    readingFinished = Signal()
    voiceChanged = Signal(str)

    _engineEvent = Signal(int, object)  # session id, ReaderEvent (emitted on worker threads)
    _taskDone = Signal(object, object)  # callback, value (emitted on worker threads)

    def __init__(
        self,
        settings: Settings,
        engine_factory: EngineFactory | None = None,
        voice_store: Any = None,
        positions: PositionStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        from miodesk.tts.voices import VoiceStore

        self.settings = settings
        self.engine_factory = engine_factory or default_engine_factory
        self.voice_store = voice_store if voice_store is not None else VoiceStore()
        self.positions = positions if positions is not None else PositionStore()
        self.seed: int | None = None  # tests fix it for repeatable speech

        self.engine: Any = None
        self.engine_state = "none"
        self.state = "idle"
        self.loaded: LoadedDocument | None = None
        self.position = 0  # start of the sentence last heard (what resume returns to)
        self.current_index: int | None = None
        self.last_stats: dict[str, Any] = {}

        self._player: Any = None
        self._session: Any = None
        self._session_id = 0
        self._preview_ids: set[int] = set()
        self._engine_generation = 0
        self._engine_loader: threading.Thread | None = None
        self._document_generation = 0
        self._pending: Callable[[], None] | None = None  # what to do once the engine is ready
        self._last_position_save = 0.0
        self._lengths_cum: list[int] = [0]
        self._ends: list[int] = []
        self._control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader-control")
        self._closed = False

        self._engineEvent.connect(self._on_engine_event, Qt.ConnectionType.QueuedConnection)
        self._taskDone.connect(self._on_task_done, Qt.ConnectionType.QueuedConnection)

    # --- background helpers ------------------------------------------------------------------------

    def _background(self, name: str, work: Callable[[], Any], done: Callable[[Any], None],
                    failed: Callable[[BaseException], None]) -> threading.Thread:
        def run() -> None:
            try:
                value = work()
            except BaseException as error:  # noqa: BLE001 - every failure must reach the UI
                if not isinstance(error, MioDeskError):
                    log.exception("%s failed", name)
                self._taskDone.emit(failed, error)
                return
            self._taskDone.emit(done, value)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    @Slot(object, object)
    def _on_task_done(self, callback: Callable[[Any], None], value: Any) -> None:
        if not self._closed:
            callback(value)

    def _on_control(self, work: Callable[[], None]) -> None:
        """Run a session operation on the serial control thread; failures become error messages."""

        def run() -> None:
            try:
                work()
            except MioDeskError as error:
                self._taskDone.emit(self._fail_reading, str(error))
            except Exception as error:
                log.exception("reader control failed")
                self._taskDone.emit(self._fail_reading, f"{type(error).__name__}: {error}")

        if not self._closed:
            self._control.submit(run)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _fail_reading(self, message: str) -> None:
        self._set_state("idle")
        self.errorOccurred.emit(message)

    # --- engine --------------------------------------------------------------------------------------

    def ensure_engine(self) -> None:
        """Start loading the models in the background unless they are loaded or loading."""
        if self.engine is not None or self.engine_state == "loading":
            return
        self._engine_generation += 1
        generation = self._engine_generation
        settings = Settings(**{k: v for k, v in self.settings.to_json().items()})
        self.engine_state = "loading"
        self.engineStateChanged.emit("loading")

        def done(engine: Any) -> None:
            if generation != self._engine_generation:
                return
            self.engine = engine
            self.engine_state = "ready"
            self.engineStateChanged.emit("ready")
            self.engineInfoChanged.emit(self.model_name(), self.provider_label())
            pending, self._pending = self._pending, None
            if pending is not None:
                pending()

        def failed(error: BaseException) -> None:
            if generation != self._engine_generation:
                return
            self.engine_state = "failed"
            self._pending = None
            self.engineStateChanged.emit("failed")
            self._set_state("idle")
            message = str(error) if isinstance(error, MioDeskError) else f"{type(error).__name__}: {error}"
            self.errorOccurred.emit(self.tr("The speech models could not be loaded: {0}").format(message))

        self._engine_loader = self._background("engine-load", lambda: self.engine_factory(settings), done, failed)

    def model_name(self) -> str:
        llm = getattr(self.engine, "llm", None)
        path = getattr(llm, "path", None) or getattr(llm, "model_path", None)
        if path:
            return Path(path).stem
        return Path(self.settings.model_path).stem if self.settings.model_path else "MioTTS"

    def provider_label(self) -> str:
        provider = str(getattr(getattr(self.engine, "codec", None), "provider", "") or "")
        return PROVIDER_LABELS.get(provider.lower(), provider.upper() or "?")

    def reload_engine(self) -> None:
        """Forget the engine (settings changed); the next reading loads the new one."""
        self.stop()
        engine_was_loaded = self.engine is not None or self.engine_state == "loading"
        self._engine_generation += 1
        player, self._player, self.engine = self._player, None, None
        self.engine_state = "none"
        self.engineStateChanged.emit("none")
        if player is not None:
            self._on_control(player.close)
        if engine_was_loaded:
            self.ensure_engine()

    def _when_engine_ready(self, action: Callable[[], None]) -> None:
        if self.engine is not None:
            action()
            return
        self._pending = action
        self._set_state("loading")
        if self.engine_state == "failed":
            self.engine_state = "none"
        self.ensure_engine()

    # --- documents ----------------------------------------------------------------------------------

    def open_file(self, path: str | Path) -> None:
        path = Path(path)
        self._document_generation += 1
        generation = self._document_generation
        self.documentLoading.emit(path.name)

        def work() -> LoadedDocument:
            document = load_document(path)
            try:
                digest = content_hash(path.read_bytes())
            except OSError:
                digest = content_hash(document.text)
            key = document_key(path, digest)
            return LoadedDocument(document, segment(document.text), key, self.positions.get(key))

        def done(loaded: LoadedDocument) -> None:
            if generation == self._document_generation:
                self.settings.add_recent(str(path))
                self._persist_settings()
                self._install_document(loaded)

        def failed(error: BaseException) -> None:
            if generation != self._document_generation:
                return
            message = str(error) if isinstance(error, DocumentError | MioDeskError) else f"{error}"
            self.documentFailed.emit(self.tr("Cannot open {0}: {1}").format(path.name, message))

        self._background("document-load", work, done, failed)

    def set_document(self, document: Document, remember: bool = False) -> LoadedDocument:
        """Show an in-memory document (clipboard); `segment` is quick for clipboard-sized text."""
        self._document_generation += 1
        key = document_key(document.title, content_hash(document.text)) if remember else None
        loaded = LoadedDocument(document, segment(document.text), key, None)
        self._install_document(loaded)
        return loaded

    def _install_document(self, loaded: LoadedDocument) -> None:
        self.stop()
        self.loaded = loaded
        self.position = loaded.resume_offset or 0
        self.current_index = None
        cumulative = [0]
        for utterance in loaded.utterances:
            cumulative.append(cumulative[-1] + len(utterance.text))
        self._lengths_cum = cumulative
        self._ends = [utterance.end for utterance in loaded.utterances]
        self.last_stats = {"ttfa_s": None, "rtf": None, "remaining_s": self._remaining_seconds(self.position)}
        self.documentLoaded.emit(loaded)
        self.statsChanged.emit(dict(self.last_stats))

    @property
    def document(self) -> Document | None:
        return self.loaded.document if self.loaded else None

    def language(self) -> str:
        if not self.loaded or not self.loaded.utterances:
            return "en"
        languages = [u.language for u in self.loaded.utterances[:20]]
        return "ja" if languages.count("ja") * 2 >= len(languages) else "en"

    # --- voices -----------------------------------------------------------------------------------

    def voice_names(self) -> list[str]:
        try:
            return self.voice_store.names()
        except OSError as error:
            log.warning("cannot list voices: %s", error)
            return []

    def voice_name(self) -> str:
        """The chosen voice, else the preset for the document's language, else any voice."""
        names = self.voice_names()
        if self.settings.voice in names:
            return self.settings.voice
        preferred = "jp_female" if self.language() == "ja" else "en_female"
        if preferred in names:
            return preferred
        if names:
            return names[0]
        raise VoiceError(self.tr("No voice is installed. Download the preset voices or record your own voice."))

    def set_voice(self, name: str) -> None:
        """Choose a voice; a reading in progress switches from its next sentence."""
        self.settings.voice = name
        self._persist_settings()
        session = self._session
        if session is not None and not session.finished:
            try:
                session.set_voice(self.voice_store.get(name).vector)
            except VoiceError as error:
                self.errorOccurred.emit(str(error))
        self.voiceChanged.emit(name)

    def preview_voice(self, name: str) -> None:
        """Say a short sentence in `name`; while reading, the reading itself switches voice."""
        if self.state in ("playing", "paused", "loading"):
            self.set_voice(name)
            return
        self.settings.voice = name
        self._persist_settings()
        japanese = name.startswith("jp") or self.language() == "ja"
        text = "こんにちは。この声で読み上げます。" if japanese else "Hello. This is how I will read to you."
        self.speak_text(text, voice=name)

    def speak_text(self, text: str, voice: str | None = None) -> None:
        """Say `text` without touching the document or its position (preview, welcome sentence)."""
        utterances = segment(text)
        if not utterances:
            return

        def start() -> None:
            try:
                vector = self.voice_store.get(voice or self.voice_name()).vector
            except VoiceError as error:
                self._fail_reading(str(error))
                return
            self._session_id += 1
            sid = self._session_id
            self._preview_ids.add(sid)
            self._set_state("playing")
            self._on_control(lambda: self._start_session(sid, utterances, text, 0, vector))

        self._when_engine_ready(start)

    # --- transport ----------------------------------------------------------------------------------

    def play(self, offset: int | None = None) -> None:
        """Start reading at `offset` (default: where the last reading stopped), or resume if paused."""
        if self.state == "paused" and offset is None:
            self.resume()
            return
        if self.loaded is None or not self.loaded.utterances:
            self.errorOccurred.emit(self.tr("Open a document or paste some text first."))
            return
        start_at = self.position if offset is None else max(0, offset)
        if start_at >= len(self.loaded.document.text):
            start_at = 0
        self.position = start_at
        loaded = self.loaded

        def start() -> None:
            if loaded is not self.loaded:
                return
            try:
                vector = self.voice_store.get(self.voice_name()).vector
            except VoiceError as error:
                self._fail_reading(str(error))
                return
            self._session_id += 1
            sid = self._session_id
            self._set_state("playing")
            self._on_control(
                lambda: self._start_session(sid, loaded.utterances, loaded.document.text, start_at, vector)
            )

        self._when_engine_ready(start)

    def _start_session(self, sid: int, utterances: list[Utterance], text: str, offset: int, vector: Any) -> None:
        """On the control thread: replace the running session by a new one."""
        from miodesk.tts.reader import ReadingSession
        from miodesk.tts.streaming import ChunkPlan

        if self._session is not None:
            self._session.stop()
        if sid != self._session_id:
            return  # superseded while waiting in the queue
        engine = self.engine
        if engine is None:
            return
        player = self._ensure_player(engine)
        player.resume()
        player.reset_first_audio()
        session = ReadingSession(
            engine,
            utterances,
            vector,
            player,
            source_text=text,
            speed=self.settings.speed,
            plan=ChunkPlan(full=self.settings.full_decode),
            on_event=lambda event: self._engineEvent.emit(sid, event),
            seed=self.seed,
        )
        self._session = session
        session.start_at_char(offset)

    def _ensure_player(self, engine: Any) -> Any:
        from miodesk.audio.player import AudioPlayer

        player = self._player
        if player is not None and player.source_rate == engine.sample_rate:
            return player
        if player is not None:
            player.close()
        self._player = AudioPlayer(engine.sample_rate, device=self.settings.audio_device or None,
                                   volume=self.settings.volume)
        return self._player

    def pause(self) -> None:
        if self.state == "playing" and self._session is not None:
            self._session.pause()
            self._set_state("paused")
            self._save_position(force=True)

    def resume(self) -> None:
        if self.state == "paused" and self._session is not None:
            self._session.resume()
            self._set_state("playing")

    def toggle_play(self, offset: int | None = None) -> None:
        if self.state == "playing":
            self.pause()
        elif self.state == "paused":
            self.resume()
        elif self.state == "idle":
            self.play(offset)

    def stop(self) -> None:
        self._pending = None
        self._session_id += 1  # events of the old session no longer count
        session = self._session
        if session is not None:
            self._on_control(session.stop)
        if self.state != "idle":
            self._save_position(force=True)
        self._set_state("idle")

    def _reading(self) -> bool:
        return (self.state in ("playing", "paused") and self._session is not None
                and self._session_id not in self._preview_ids)

    def next_sentence(self) -> None:
        self._step_sentence(+1)

    def previous_sentence(self) -> None:
        self._step_sentence(-1)

    def _step_sentence(self, step: int) -> None:
        if self.loaded is None or not self.loaded.utterances:
            return
        utterances = self.loaded.utterances
        current = self.current_index if self.current_index is not None else self._index_at(self.position)
        target = min(max(0, current + step), len(utterances) - 1)
        self.seek(utterances[target].start)

    def next_chapter(self) -> None:
        self._step_section(+1)

    def previous_chapter(self) -> None:
        self._step_section(-1)

    def section_starts(self) -> list[int]:
        """Where chapters start (or headings, for a one-chapter document with headings)."""
        if self.loaded is None:
            return []
        document = self.loaded.document
        starts = [chapter.start for chapter in document.chapters]
        if len(starts) <= 1:
            starts = [block.start for block in document.blocks if block.kind == "heading"] or starts
        return sorted(set(starts)) or [0]

    def _step_section(self, step: int) -> None:
        starts = self.section_starts()
        if not starts:
            return
        here = self.position
        if step > 0:
            target = next((s for s in starts if s > here), None)
            if target is None:
                return
        else:
            # Like a CD player: back to this chapter's start, or to the previous one when already near it.
            before = [s for s in starts if s < here]
            if not before:
                target = starts[0]
            else:
                target = before[-1]
                if self.loaded and here - target < 2 and len(before) > 1:
                    target = before[-2]
        self.seek(target)

    def seek(self, offset: int) -> None:
        """Read from the sentence at `offset` (double-click, navigation)."""
        if self.loaded is None:
            return
        index = self._index_at(offset)
        if index >= len(self.loaded.utterances):
            return
        start = self.loaded.utterances[index].start
        self.position = start
        if self._reading():
            session = self._session
            self._set_state("playing")
            self._on_control(lambda: session.seek_char(start))
        elif self.state == "idle":
            self.current_index = index
            self.cursorRequested.emit(start)
            self.statsChanged.emit(self._stats_update(None))

    def seek_or_play(self, offset: int) -> None:
        """Double-click, Enter, "Read from here": read from that sentence whatever the state."""
        if self._reading():
            self.seek(offset)
        else:
            self.play(offset)

    def _index_at(self, offset: int) -> int:
        """The sentence containing `offset`, else the first one after it (bisect: books are long)."""
        if self.loaded is None:
            return 0
        return bisect.bisect_right(self._ends, offset)

    def set_speed(self, speed: float) -> None:
        self.settings.speed = min(2.0, max(0.5, speed))
        session = self._session
        if session is not None:
            session.set_speed(self.settings.speed)
        self._persist_settings()

    def set_volume(self, volume: float) -> None:
        self.settings.volume = min(1.0, max(0.0, volume))
        player = self._player
        if player is not None:
            player.volume = self.settings.volume
        self._persist_settings()

    def set_audio_device(self, device: str) -> None:
        """Switch the output; a reading in progress continues there from the current sentence."""
        if device == self.settings.audio_device:
            return
        self.settings.audio_device = device
        self._persist_settings()
        was_reading = self.state in ("playing", "paused") and self._reading()
        self.stop()
        player, self._player = self._player, None
        if player is not None:
            self._on_control(player.close)
        if was_reading:
            self.play(self.position)

    # --- engine events (UI thread) ------------------------------------------------------------------------

    @Slot(int, object)
    def _on_engine_event(self, sid: int, event: Any) -> None:
        if sid != self._session_id or self._closed:
            return
        preview = sid in self._preview_ids
        if event.kind == "utterance_started":
            if preview:
                return
            self.current_index = event.index
            self.position = event.start
            self.utteranceStarted.emit(event.index, event.start, event.end)
            self.statsChanged.emit(self._stats_update(self._session))
            self._save_position()
        elif event.kind == "finished":
            self._set_state("idle")
            if not preview:
                self.position = 0
                self.current_index = None
                self._save_position(force=True)
                self.statsChanged.emit(self._stats_update(self._session))
                self.readingFinished.emit()
        elif event.kind == "warning":
            self.warningOccurred.emit(event.message)
        elif event.kind == "error":
            self._set_state("idle")
            self._save_position(force=True)
            self.errorOccurred.emit(event.message)

    def _remaining_seconds(self, offset: int, pace: float | None = None) -> float | None:
        if self.loaded is None or not self.loaded.utterances:
            return None
        index = self._index_at(offset)
        chars = self._lengths_cum[-1] - self._lengths_cum[min(index, len(self._lengths_cum) - 1)]
        if pace is None:
            pace = DEFAULT_PACE.get(self.language(), DEFAULT_PACE["en"]) / self.settings.speed
        return chars * pace

    def _stats_update(self, session: Any) -> dict[str, Any]:
        stats = getattr(session, "stats", None)
        pace = None
        if stats is not None and stats.utterance_codes and self.loaded is not None:
            spoken = sum(len(self.loaded.utterances[i].text) for i in stats.utterance_codes
                         if i < len(self.loaded.utterances))
            if spoken and stats.audio_seconds:
                pace = stats.audio_seconds / spoken
        self.last_stats = {
            "ttfa_s": getattr(stats, "first_audio_s", None),
            "rtf": stats.rtf if stats is not None and stats.audio_seconds else None,
            "remaining_s": self._remaining_seconds(self.position, pace),
        }
        return dict(self.last_stats)

    # --- persistence --------------------------------------------------------------------------------

    def _save_position(self, force: bool = False) -> None:
        if self.loaded is None or self.loaded.key is None:
            return
        now = time.monotonic()
        if not force and now - self._last_position_save < POSITION_SAVE_INTERVAL_S:
            return
        self._last_position_save = now
        self.positions.set(self.loaded.key, self.position)

    def _persist_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as error:
            log.warning("cannot save settings: %s", error)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop reading, remember the position and release the audio device."""
        if self._closed:
            return
        self._save_position(force=True)
        self._session_id += 1
        session, player = self._session, self._player
        self._closed = True

        def close() -> None:
            if session is not None:
                session.stop()
            if player is not None:
                player.close()

        future = self._control.submit(close)
        try:
            future.result(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - closing must finish whatever happens
            log.warning("closing the reader: %s", error)
        self._control.shutdown(wait=False)
        loader = self._engine_loader
        if loader is not None and loader.is_alive():
            # Exiting while llama.cpp/onnxruntime are still loading aborts the process (their threads and
            # static objects are torn down under them): let the load finish first.
            log.info("waiting for the models to finish loading before exit")
            loader.join(timeout=120)

