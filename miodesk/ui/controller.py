"""The one object between the window and the engine: a thin Qt adapter over `ReadingState`.

It lives on the UI thread. The reading state (position, transport, saved positions, time left)
is plain Python in `miodesk.reading_state`; this class loads engines and documents, picks voices,
and turns the state's reports into Qt signals. Work that can take longer than a frame runs
elsewhere:

- model loading and document loading: a short-lived background thread each, whose result comes
  back on the UI thread through `miodesk.ui.background`;
- session controls that join the synthesis threads (start, stop, seek): the `SessionPipeline`'s
  serial control thread, the only thread that creates, replaces and closes the session and player;
- engine events (utterance_started …) arrive on the session's worker threads and are posted to
  the UI thread before the reading state sees them.

The highlight follows `utteranceStarted`, which is emitted only for the session's
`utterance_started` events, i.e. when the sentence becomes audible.

MioDesk's own speech server (Settings › Server, issue 19) runs inside the app on this controller's
engine, so reading and serving share one loaded model. Its starts and stops run in order on a
serial thread of their own (`_SerialThread`): starting imports the HTTP stack and binds the port,
stopping waits for requests to end. The server asks for the engine on its worker threads through a
`WindowEngine`, which hands over the loaded engine or has the UI thread load it the way Play does
and waits. The server stops before the engine is reloaded (it restarts on the new one) and when the
app quits; a start that fails (the port in use) is one line in the window's banner.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from miodesk.errors import MioDeskError, ModelError, VoiceError
from miodesk.reading_state import (
    EngineState,
    LoadedDocument,
    ReadingState,
    SessionPipeline,
    StartRequest,
    TransportState,
    VoicePlan,
    plan_voices,
)
from miodesk.settings import (
    VOICE_MODE_LANGUAGE,
    PositionStore,
    Settings,
    content_hash,
    document_key,
    save_settings,
)
from miodesk.text.documents import Document, DocumentError, load_document
from miodesk.text.segment import segment
from miodesk.ui.background import UiDispatcher, deliver, run_in_background

if TYPE_CHECKING:
    from miodesk.speech_server.app import RunningServer
    from miodesk.speech_server.service import SpeechService
    from miodesk.tts.llm_server import ServerConfig

log = logging.getLogger(__name__)

PROVIDER_LABELS = {"cpu": "CPU", "cuda": "CUDA", "directml": "DirectML"}

EngineFactory = Callable[[Settings], Any]

SPEECH_SERVER_HOST = "127.0.0.1"  # the in-app speech server is for this computer only
ENGINE_WAIT_S = 600.0  # how long a server request waits for the window to load the models
SERVER_STOP_WAIT_S = 15.0  # how long quitting waits for the speech server to stop


def server_config(settings: Settings) -> ServerConfig | None:
    """The LLM server the settings choose for the speech model, or None (the model runs here).

    Only the settings count: the window does not read MIODESK_LLM_BASE_URL, which is for the CLI.
    """
    if not settings.llm_on_server:
        return None
    from miodesk.tts.llm_server import ServerConfig

    url = settings.llm_base_url.strip()
    if not url:
        raise ModelError("The speech model is set to run on a server, but no server URL is set. Enter one in "
                         "Settings › Speech model.")
    return ServerConfig(base_url=url, api_key=settings.llm_api_key.strip(), model=settings.llm_model.strip())


def default_engine_factory(settings: Settings) -> Any:
    """Build the SpeechEngine the settings describe (slow: call it off the UI thread).

    With the speech model on a server, no local model is needed or loaded: only the codec.
    """
    from miodesk.runtime import ThreadPlan
    from miodesk.tts.engine import SpeechEngine, default_model_path

    server = server_config(settings)
    model: Path | None = None
    if server is None:
        model = Path(settings.model_path) if settings.model_path else default_model_path()
    codec = settings.codec_folder()
    if not codec.exists():
        raise ModelError(f"No MioCodec in {codec}. Download the models from the welcome dialog or choose a codec "
                         "folder in Settings.")
    # 0 in the settings means automatic; the plan clamps what the machine cannot give.
    plan = ThreadPlan.for_reading(llm_threads=settings.llm_threads or None,
                                  codec_threads=settings.codec_threads or None)
    return SpeechEngine(model, codec, provider=settings.provider, thread_plan=plan, llm_server=server)


def models_installed(settings: Settings) -> str | None:
    """None when a model and a codec are where the settings say; else why not (for first run).

    With the speech model on a server only the codec has to be here (the server is not asked: it may
    be asleep at start-up, and the first Play says so in one line if it does not answer).
    """
    from miodesk.tts.engine import default_model_path

    if settings.llm_on_server:
        if not settings.codec_folder().exists():
            return f"No MioCodec in {settings.codec_folder()}."
        return None
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


class ReaderController(QObject):
    # state: a TransportState
    stateChanged = Signal(str)
    # engine: an EngineState
    engineStateChanged = Signal(str)
    engineInfoChanged = Signal(str, str)  # model name, compute device label
    documentLoading = Signal(str)
    documentLoaded = Signal(object)  # LoadedDocument
    documentFailed = Signal(str)
    utteranceStarted = Signal(int, int, int)  # index, start, end: the sentence now audible
    utteranceFinished = Signal(int)  # index: the sentence and the pause after it have been heard
    cursorRequested = Signal(int)  # move the caret here (navigation while not reading)
    statsChanged = Signal(object)  # dict: ttfa_s, rtf, remaining_s
    errorOccurred = Signal(str)
    warningOccurred = Signal(str)
    readingFinished = Signal()
    voiceChanged = Signal(str)
    # "127.0.0.1:8880" once the in-app speech server listens there; "" when it stops
    serverChanged = Signal(str)
    # The open document was segmented anew (the dialogue voice turned on or off): its LoadedDocument
    documentResegmented = Signal(object)

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
        from miodesk.text.readings import LiveReadings

        # The readings dictionary (Tools › Readings dictionary, `miodesk dict`): one file for the reading,
        # previews and the speech server, reloaded when it changes.
        self.readings = LiveReadings()

        self.engine: Any = None
        self.engine_state = EngineState.NONE
        self._engine_generation = 0
        self._engine_loader: threading.Thread | None = None
        self._document_generation = 0
        self._pending: Callable[[], None] | None = None  # what to do once the engine is ready
        # Others waiting for the engine without touching the reading (an export): (ready, failed)
        self._engine_waiters: list[tuple[Callable[[Any], None], Callable[[str], None]]] = []
        self._closed = False
        self._ui = UiDispatcher(self)
        self.pipeline = SessionPipeline(
            self._make_session,
            self._make_player,
            on_event=deliver(self._ui, self._on_engine_event),
            on_failure=deliver(self._ui, self._fail_reading),
            device=settings.audio_device or None,
            volume=settings.volume,
        )
        self.reading = ReadingState(self.pipeline, self.positions, _SignalListener(self),
                                    speed=lambda: self.settings.speed)

        # The in-app speech server. UI thread: what the settings asked for and what listens; the
        # serial thread: the running server and its service.
        self.server_address = ""  # "127.0.0.1:8880" while it listens
        self._server_target: tuple[int, str] | None = None  # (port, key) applied last; None: off
        self._server_generation = 0
        self._server_thread = _SerialThread("speech-server-control")
        self._running_server: RunningServer | None = None
        self._service: SpeechService | None = None
        self._engine_sources: list[WindowEngine] = []  # each running service's engine callable
        self._sources_lock = threading.Lock()
        if settings.server_enabled:
            self.apply_server_settings()

    # --- the reading state, read through the controller as before it had its own class -------------------

    @property
    def state(self) -> TransportState:
        return self.reading.state

    @property
    def loaded(self) -> LoadedDocument | None:
        return self.reading.loaded

    @property
    def position(self) -> int:
        return self.reading.position

    @position.setter
    def position(self, offset: int) -> None:  # "Start from the beginning" sets it
        self.reading.position = offset

    @property
    def current_index(self) -> int | None:
        return self.reading.current_index

    @property
    def last_stats(self) -> dict[str, Any]:
        return self.reading.last_stats

    def _fail_reading(self, message: str) -> None:
        self.reading.fail(message)

    # --- engine --------------------------------------------------------------------------------------

    def ensure_engine(self) -> None:
        """Start loading the models in the background unless they are loaded or loading."""
        if self.engine is not None or self.engine_state == EngineState.LOADING:
            return
        self._engine_generation += 1
        generation = self._engine_generation
        settings = Settings(**{k: v for k, v in self.settings.to_json().items()})
        self.engine_state = EngineState.LOADING
        self.engineStateChanged.emit(EngineState.LOADING.value)

        def done(engine: Any) -> None:
            if generation != self._engine_generation:
                return
            self.engine = engine
            self.engine_state = EngineState.READY
            self.engineStateChanged.emit(EngineState.READY.value)
            self.engineInfoChanged.emit(self.model_name(), self.provider_label())
            self._engine_for_server(engine)
            waiters, self._engine_waiters = self._engine_waiters, []
            for ready, _ in waiters:
                ready(engine)
            pending, self._pending = self._pending, None
            if pending is not None:
                pending()

        def failed(error: BaseException) -> None:
            if generation != self._engine_generation:
                return
            self.engine_state = EngineState.FAILED
            self._pending = None
            self.engineStateChanged.emit(EngineState.FAILED.value)
            self.reading.set_state(TransportState.IDLE)
            message = str(error) if isinstance(error, MioDeskError) else f"{type(error).__name__}: {error}"
            self._engine_for_server(None, message)
            waiters, self._engine_waiters = self._engine_waiters, []
            for _, not_loaded in waiters:
                not_loaded(message)
            self.errorOccurred.emit(self.tr("The speech models could not be loaded: {0}").format(message))

        self._engine_loader = run_in_background(self._ui, "engine-load", lambda: self.engine_factory(settings),
                                                done, failed)

    def model_name(self) -> str:
        """The speech model and, when a server runs it, where: "MioTTS-0.1B on gpu-box:8000"."""
        server = getattr(self.engine, "llm_server", None)
        llm = getattr(self.engine, "llm", None)
        if server is not None:
            name = getattr(llm, "display_name", None) or getattr(self.engine, "model_name", None) or "MioTTS"
            return self.tr("{0} on {1}").format(name, server.label())
        path = getattr(llm, "path", None) or getattr(llm, "model_path", None)
        if path:
            return Path(path).stem
        return Path(self.settings.model_path).stem if self.settings.model_path else "MioTTS"

    def server_label(self) -> str:
        """Where the server that runs the speech model is ("gpu-box:8000"), or "" when it runs here."""
        server = getattr(self.engine, "llm_server", None)
        if server is not None:
            return str(server.label())
        if self.engine is not None or not self.settings.llm_on_server:
            return ""
        try:
            config = server_config(self.settings)
        except MioDeskError:
            return ""
        return config.label() if config is not None else ""

    def provider_label(self) -> str:
        provider = str(getattr(getattr(self.engine, "codec", None), "provider", "") or "")
        return PROVIDER_LABELS.get(provider.lower(), provider.upper() or "?")

    def reload_engine(self) -> None:
        """Forget the engine (settings changed); the next reading loads the new one.

        The speech server stops first (its requests end on the old engine) and starts again once it
        has stopped, on the new engine; the new one starts loading only then, so the two are never
        both at work.
        """
        self.stop()
        engine_was_loaded = self.engine is not None or self.engine_state == EngineState.LOADING
        self._engine_generation += 1
        generation = self._engine_generation
        self.engine = None
        self.pipeline.release_player()
        self.engine_state = EngineState.NONE
        self.engineStateChanged.emit(EngineState.NONE.value)
        if self._server_target is None and not self.server_address:
            if engine_was_loaded:
                self.ensure_engine()
            return

        def stopped() -> None:
            if generation == self._engine_generation and engine_was_loaded:
                self.ensure_engine()
            self.apply_server_settings()

        self._stop_server(then=stopped)

    def _when_engine_ready(self, action: Callable[[], None]) -> None:
        if self.engine is not None:
            action()
            return
        self._pending = action
        self.reading.set_state(TransportState.LOADING)
        if self.engine_state == EngineState.FAILED:
            self.engine_state = EngineState.NONE
        self.ensure_engine()

    def when_engine_ready(self, ready: Callable[[Any], None], failed: Callable[[str], None]) -> None:
        """`ready(engine)` on the UI thread once the models are loaded (loading them now if need be), or
        `failed(message)` when they cannot load; unlike Play, the reading's state is left alone (an export)."""
        if self.engine is not None:
            ready(self.engine)
            return
        self._engine_waiters.append((ready, failed))
        if self.engine_state == EngineState.FAILED:
            self.engine_state = EngineState.NONE  # asking again tries again, as Play does
        self.ensure_engine()

    # --- the in-app speech server --------------------------------------------------------------------

    def apply_server_settings(self) -> None:
        """Start, restart or stop the speech server as the settings say (UI thread; returns at once).

        "serverChanged" says when it listens; a start that fails is one line in "errorOccurred".
        """
        if self._closed:
            return
        settings = self.settings
        target = (settings.server_port, settings.server_api_key.strip()) if settings.server_enabled else None
        if target == self._server_target:
            return
        if target is None:
            self._stop_server()
            return
        self._server_target = target
        self._server_generation += 1
        generation = self._server_generation
        self._set_server_address("")
        port, key = target
        self._server_thread.submit(lambda: self._start_running(port, key, generation))

    def _stop_server(self, then: Callable[[], None] | None = None) -> threading.Event:
        """Stop the speech server; `then()` runs on the UI thread once it has stopped. Set when stopped."""
        self._server_target = None
        self._server_generation += 1
        self._set_server_address("")

        def stop() -> None:
            self._stop_running()
            if then is not None:
                self._ui.post(then)

        return self._server_thread.submit(stop)

    def _set_server_address(self, address: str) -> None:
        if address != self.server_address:
            self.server_address = address
            self.serverChanged.emit(address)

    def _start_running(self, port: int, key: str, generation: int) -> None:
        """On the serial thread: (re)start the server; its address, or why it failed, goes to the UI."""
        self._stop_running()
        if generation != self._server_generation:
            return  # asked for something else meanwhile: that request comes next on this thread
        source = WindowEngine(self)
        try:
            from miodesk.speech_server.app import start_server
            from miodesk.speech_server.options import ServerOptions, check_options
            from miodesk.speech_server.service import SpeechService

            options = ServerOptions(host=SPEECH_SERVER_HOST, port=port, api_key=key)
            check_options(options)
            with self._sources_lock:
                self._engine_sources.append(source)
            service = SpeechService(source, self.voice_store, prepare_text=self.readings.prepare_text)
            try:
                running = start_server(service, options)
            except BaseException:
                service.close()
                raise
        except BaseException as error:  # noqa: BLE001 - a server that does not start must not end the app
            self._forget_source(source)
            if not isinstance(error, MioDeskError):
                log.exception("the speech server did not start")
            message = " ".join((str(error) if isinstance(error, MioDeskError)
                                else f"{type(error).__name__}: {error}").split())
            self._ui.post(lambda: self._server_failed(generation, message))
            return
        self._running_server, self._service = running, service
        log.info("speech server listening on %s", running.url)
        address = f"{SPEECH_SERVER_HOST}:{port}"
        self._ui.post(lambda: self._server_started(generation, address))

    def _stop_running(self) -> None:
        """On the serial thread: stop the running server, if any, and let its requests go."""
        with self._sources_lock:
            sources, self._engine_sources = self._engine_sources, []
        for source in sources:
            source.close()  # a request waiting for the models gives up now
        running, self._running_server = self._running_server, None
        service, self._service = self._service, None
        if running is not None:
            running.stop()
            log.info("speech server stopped")
        if service is not None:
            service.close()

    def _forget_source(self, source: WindowEngine) -> None:
        source.close()
        with self._sources_lock:
            if source in self._engine_sources:
                self._engine_sources.remove(source)

    def _server_started(self, generation: int, address: str) -> None:
        if generation == self._server_generation:
            self._set_server_address(address)

    def _server_failed(self, generation: int, message: str) -> None:
        if generation != self._server_generation:
            return
        self._server_target = None  # the next settings change tries again
        self.errorOccurred.emit(self.tr("MioDesk's speech server did not start: {0}").format(message))

    def _load_engine_for_server(self) -> None:
        """UI thread, for a server request: hand over the engine, or load it the way Play does."""
        if self.engine is not None:
            self._engine_for_server(self.engine)
            return
        if self._server_target is None:
            # The server is stopping (quitting, or an engine reload): it loads nothing on its way out.
            self._engine_for_server(None, "MioDesk's speech server is stopping.")
            return
        if self.engine_state == EngineState.FAILED:
            self.engine_state = EngineState.NONE  # a new request tries again, as Play does
        self.ensure_engine()

    def _engine_for_server(self, engine: Any, error: str = "") -> None:
        """The models loaded (or not): wake the server requests waiting for them."""
        with self._sources_lock:
            sources = list(self._engine_sources)
        for source in sources:
            source.resolve(engine, error)

    # --- session and player: called on the pipeline's control thread ----------------------------------

    def _make_session(self, request: StartRequest, sink: Any, on_event: Callable[[Any], None]) -> Any:
        from miodesk.tts.reader import ReadingSession
        from miodesk.tts.streaming import ChunkPlan

        return ReadingSession(
            request.engine,
            request.utterances,
            request.voice,
            sink,
            source_text=request.text,
            speed=self.settings.speed,
            plan=ChunkPlan(full=self.settings.full_decode),
            on_event=on_event,
            seed=self.seed,
            prepare_text=self.readings.prepare_text,
            voices=request.voices,
            dialogue_voice=request.dialogue_voice,
            pauses=self.settings.pauses(),
            headings=request.headings,
        )

    @staticmethod
    def _make_player(sample_rate: int, device: str | None, volume: float) -> Any:
        from miodesk.audio.player import AudioPlayer

        return AudioPlayer(sample_rate, device=device, volume=volume)

    # --- documents ----------------------------------------------------------------------------------

    def open_file(self, path: str | Path) -> None:
        path = Path(path)
        self._document_generation += 1
        generation = self._document_generation
        self.documentLoading.emit(path.name)
        split = self.split_quotes()

        def work() -> LoadedDocument:
            document = load_document(path)
            try:
                digest = content_hash(path.read_bytes())
            except OSError:
                digest = content_hash(document.text)
            key = document_key(path, digest)
            return LoadedDocument(document, segment(document.text, split_quotes=split), key, self.positions.get(key),
                                  split)

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

        run_in_background(self._ui, "document-load", work, done, failed)

    def set_document(self, document: Document, remember: bool = False) -> LoadedDocument:
        """Show an in-memory document (clipboard); `segment` is quick for clipboard-sized text."""
        self._document_generation += 1
        key = document_key(document.title, content_hash(document.text)) if remember else None
        split = self.split_quotes()
        loaded = LoadedDocument(document, segment(document.text, split_quotes=split), key, None, split)
        self._install_document(loaded)
        return loaded

    def _install_document(self, loaded: LoadedDocument) -> None:
        self._pending = None
        if loaded.split_quotes != self.split_quotes():  # the dialogue voice changed while it loaded
            loaded.utterances = segment(loaded.document.text, split_quotes=self.split_quotes())
            loaded.split_quotes = self.split_quotes()
        self.reading.install(loaded)
        self.documentLoaded.emit(loaded)
        self.statsChanged.emit(dict(self.reading.last_stats))

    @property
    def document(self) -> Document | None:
        return self.loaded.document if self.loaded else None

    def language(self) -> str:
        """The open document's main language; with none, the UI's (a Japanese UI starts on a Japanese voice)."""
        from miodesk.ui.i18n import effective_language

        return self.reading.language(fallback=effective_language(self.settings.ui_language))

    # --- voices -----------------------------------------------------------------------------------

    def voice_names(self) -> list[str]:
        try:
            return self.voice_store.names()
        except OSError as error:
            log.warning("cannot list voices: %s", error)
            return []

    def per_language_voices(self) -> bool:
        """Whether each sentence is read in the voice of its language (Settings › Voices)."""
        return self.settings.voice_mode == VOICE_MODE_LANGUAGE

    def voice_plan(self) -> VoicePlan:
        """Which voice reads which sentences of the open document (VoiceError: no voice installed)."""
        plan = plan_voices(self.settings, self.voice_names(), self.language())
        if plan is None:
            raise VoiceError(self.tr("No voice is installed. Download the preset voices or record your own voice."))
        return plan

    def voice_name(self) -> str:
        """The voice the window shows: the one voice, or the voice of the document's main language."""
        return self.voice_plan().main

    def voice_vectors(self, plan: VoicePlan) -> tuple[Any, dict[str, Any]]:
        """The plan's voice vectors: (main, {language: vector}); VoiceError when one cannot be read."""
        vectors = {name: self.voice_store.get(name).vector for name in plan.names()}
        return vectors[plan.main], {language: vectors[name] for language, name in plan.by_language.items()}

    def split_quotes(self) -> bool:
        """Whether documents are segmented at quotes: only for a dialogue voice (a quote of its own is a
        sentence of its own, with the pauses around it)."""
        return bool(self.settings.dialogue_voice)

    def dialogue_vector(self) -> Any:
        """The dialogue voice's vector (Settings › Voices), or None: none chosen, or no longer installed."""
        name = self.settings.dialogue_voice
        if not name or name not in self.voice_names():
            return None
        return self.voice_store.get(name).vector

    def set_voice(self, name: str) -> None:
        """Choose the voice the window shows (the one voice, or the voice of the document's main language);
        a reading in progress switches from its next sentence."""
        if self.per_language_voices():
            self.settings.set_language_voice(self.language(), name)
        else:
            self.settings.voice = name
        self._persist_settings()
        self.apply_voice_settings()

    def apply_voice_settings(self) -> None:
        """The voice settings changed (the voice list, Settings › Voices): a reading in progress reads with
        the new voices from its next sentence, and the window shows them. Turning the dialogue voice on or
        off segments the document anew (quotes become sentences of their own, or stop being): a reading in
        progress goes on from the start of the sentence being heard."""
        loaded = self.loaded
        if loaded is not None and loaded.split_quotes != self.split_quotes():
            self._resegment(loaded)
        elif self.state in (TransportState.PLAYING, TransportState.PAUSED):
            try:
                self.pipeline.set_voices(*self.voice_vectors(self.voice_plan()))
                self.pipeline.set_dialogue_voice(self.dialogue_vector())
            except VoiceError as error:
                self.errorOccurred.emit(str(error))
        try:
            self.voiceChanged.emit(self.voice_name())
        except VoiceError:
            self.voiceChanged.emit("")

    def _resegment(self, loaded: LoadedDocument) -> None:
        was_reading, paused = self.reading.reading(), self.state == TransportState.PAUSED
        if paused:
            self.stop()
        self.reading.replace_utterances(segment(loaded.document.text, split_quotes=self.split_quotes()),
                                        self.split_quotes())
        self.documentResegmented.emit(loaded)
        if was_reading and not paused:
            self.play(self.reading.sentence_target(0))

    def preview_voice(self, name: str) -> None:
        """Choose `name` and say a short sentence in it; while reading, the reading itself switches voice."""
        self.set_voice(name)
        if self.state in (TransportState.PLAYING, TransportState.PAUSED, TransportState.LOADING):
            return
        # The sample is in the language the voice reads: per language, the document's main language.
        japanese = self.language() == "ja" or (not self.per_language_voices() and name.startswith("jp"))
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
            self.reading.start_preview(self.engine, vector, utterances, text)

        self._when_engine_ready(start)

    # --- transport ----------------------------------------------------------------------------------

    def play(self, offset: int | None = None) -> None:
        """Start reading at `offset` (default: where the last reading stopped), or resume if paused."""
        if self.state == TransportState.PAUSED and offset is None:
            self.resume()
            return
        if not self.reading.has_text():
            self.errorOccurred.emit(self.tr("Open a document or paste some text first."))
            return
        start_at = self.reading.start_offset(offset)
        self.reading.position = start_at
        loaded = self.loaded

        def start() -> None:
            if loaded is not self.loaded:
                return
            try:
                voice, voices = self.voice_vectors(self.voice_plan())
                dialogue = self.dialogue_vector()
            except VoiceError as error:
                self._fail_reading(str(error))
                return
            self.reading.start_reading(self.engine, voice, start_at, voices, dialogue)

        self._when_engine_ready(start)

    def pause(self) -> None:
        self.reading.pause()

    def resume(self) -> None:
        self.reading.resume()

    def toggle_play(self, offset: int | None = None) -> None:
        if self.state == TransportState.PLAYING:
            self.pause()
        elif self.state == TransportState.PAUSED:
            self.resume()
        elif self.state == TransportState.IDLE:
            self.play(offset)

    def stop(self) -> None:
        self._pending = None
        self.reading.stop()

    def next_sentence(self) -> None:
        self._seek_to(self.reading.sentence_target(+1))

    def previous_sentence(self) -> None:
        self._seek_to(self.reading.sentence_target(-1))

    def next_chapter(self) -> None:
        self._seek_to(self.reading.section_target(+1))

    def previous_chapter(self) -> None:
        self._seek_to(self.reading.section_target(-1))

    def _seek_to(self, offset: int | None) -> None:
        if offset is not None:
            self.seek(offset)

    def section_starts(self) -> list[int]:
        """Where chapters start (or headings, for a one-chapter document with headings)."""
        return self.reading.section_starts()

    def seek(self, offset: int) -> None:
        """Read from the sentence at `offset` (double-click, navigation)."""
        self.reading.seek(offset)

    def seek_or_play(self, offset: int) -> None:
        """Double-click, Enter, "Read from here": read from that sentence whatever the state."""
        if self.reading.reading():
            self.seek(offset)
        else:
            self.play(offset)

    def set_speed(self, speed: float) -> None:
        self.settings.speed = min(2.0, max(0.5, speed))
        self.pipeline.set_speed(self.settings.speed)
        self._persist_settings()

    def set_volume(self, volume: float) -> None:
        self.settings.volume = min(1.0, max(0.0, volume))
        self.pipeline.set_volume(self.settings.volume)
        self._persist_settings()

    def set_audio_device(self, device: str) -> None:
        """Switch the output; a reading in progress continues there from the current sentence."""
        if device == self.settings.audio_device:
            return
        self.settings.audio_device = device
        self._persist_settings()
        was_reading = self.reading.reading()
        self.stop()
        self.pipeline.set_output(device or None)
        if was_reading:
            self.play(self.position)

    # --- engine events (UI thread) ------------------------------------------------------------------------

    def _on_engine_event(self, sid: int, event: Any, stats: Any) -> None:
        if not self._closed:
            self.reading.on_event(sid, event, stats)

    # --- persistence --------------------------------------------------------------------------------

    def _persist_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as error:
            log.warning("cannot save settings: %s", error)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop reading, remember the position and release the audio device."""
        if self._closed:
            return
        self.reading.save_position(force=True)
        self.reading.session_id += 1  # events still on their way no longer count
        # The speech server first: its requests use the engine, which must outlive them.
        server_stopped = self._stop_server()
        self._server_thread.close()
        self._closed = True
        self._ui.close()
        if not server_stopped.wait(SERVER_STOP_WAIT_S):
            log.warning("the speech server did not stop within %.0f s", SERVER_STOP_WAIT_S)
        self.pipeline.close(timeout)
        loader = self._engine_loader
        if loader is not None and loader.is_alive():
            # Exiting while llama.cpp/onnxruntime are still loading aborts the process (their threads and
            # static objects are torn down under them): let the load finish first.
            log.info("waiting for the models to finish loading before exit")
            loader.join(timeout=120)


class WindowEngine:
    """The engine callable the in-app speech server gets: the window's engine.

    Called on a server worker thread. With the models loaded it returns them at once; otherwise it
    asks the UI thread to load them the way Play does and waits (ModelError when they fail to load,
    when the server stops meanwhile, or after ENGINE_WAIT_S).
    """

    def __init__(self, controller: ReaderController) -> None:
        self._controller = controller
        self._lock = threading.Lock()
        self._waiters: list[_EngineWaiter] = []
        self._closed = False

    def __call__(self) -> Any:
        engine = self._controller.engine
        if engine is not None:
            return engine
        waiter = _EngineWaiter()
        with self._lock:
            if self._closed:
                raise ModelError("MioDesk's speech server is stopping.")
            self._waiters.append(waiter)
        try:
            self._controller._ui.post(self._controller._load_engine_for_server)
            return waiter.wait(ENGINE_WAIT_S)
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def resolve(self, engine: Any, error: str = "") -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set(engine, error)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.resolve(None, "MioDesk's speech server is stopping.")


class _EngineWaiter:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._engine: Any = None
        self._error = ""

    def set(self, engine: Any, error: str) -> None:
        self._engine, self._error = engine, error
        self._event.set()

    def wait(self, timeout: float) -> Any:
        if not self._event.wait(timeout):
            raise ModelError(f"The speech models did not load within {timeout:.0f} s.")
        if self._engine is None:
            raise ModelError(self._error or "The speech models are not loaded.")
        return self._engine


class _SerialThread:
    """One daemon thread that runs the calls given to it in order (the speech server's starts and stops)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Callable[[], None], threading.Event] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, call: Callable[[], None]) -> threading.Event:
        """Queue `call`; the event is set once it has run (or failed, which is logged). After `close()`
        nothing runs any more (the event is set at once)."""
        done = threading.Event()
        with self._lock:
            if self._closed:
                done.set()
                return done
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put((call, done))
        return done

    def close(self) -> None:
        """End the thread once what is queued has run."""
        with self._lock:
            self._closed = True
            if self._thread is not None:
                self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            call, done = item
            try:
                call()
            except Exception:
                log.exception("%s failed", self._name)
            finally:
                done.set()


class _SignalListener:
    """Turns the reading state's reports into the controller's signals."""

    def __init__(self, controller: ReaderController) -> None:
        self.controller = controller

    def state_changed(self, state: str) -> None:
        self.controller.stateChanged.emit(state)

    def utterance_started(self, index: int, start: int, end: int) -> None:
        self.controller.utteranceStarted.emit(index, start, end)

    def utterance_finished(self, index: int) -> None:
        self.controller.utteranceFinished.emit(index)

    def cursor_requested(self, offset: int) -> None:
        self.controller.cursorRequested.emit(offset)

    def stats_changed(self, stats: dict[str, Any]) -> None:
        self.controller.statsChanged.emit(stats)

    def reading_finished(self) -> None:
        self.controller.readingFinished.emit()

    def warning(self, message: str) -> None:
        self.controller.warningOccurred.emit(message)

    def error(self, message: str) -> None:
        self.controller.errorOccurred.emit(message)
