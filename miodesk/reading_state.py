"""Reading state without Qt: where the reader is in a document and what the transport is doing.

Two parts, both plain Python so they can be tested in milliseconds with fakes:

- `ReadingState` lives on one thread (the window's UI thread) and holds the document being read,
  the position, the transport state (idle, loading, playing, paused), saved positions and the
  time-left estimate. It tells a `ReadingListener` what changed.
- `SessionPipeline` owns the reading session and the audio player. It creates, replaces and
  closes both on its own serial control thread only, so a player opened while the owner is
  dropping the old one is always the one closed next (control operations join synthesis threads,
  which must never block the UI thread).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from miodesk.errors import MioDeskError
from miodesk.settings import VOICE_MODE_SINGLE, PositionStore, Settings
from miodesk.text.documents import Document
from miodesk.text.segment import Utterance

log = logging.getLogger(__name__)

# Seconds of speech per character before a reading has measured its own pace.
DEFAULT_PACE = {"ja": 0.14, "en": 0.065}
POSITION_SAVE_INTERVAL_S = 3.0


def default_voice_for_language(language: str) -> str:
    """The official preset that reads `language` ("ja" or anything else) when no voice was chosen."""
    return "jp_female" if language == "ja" else "en_female"


def choose_voice(chosen: str, installed: list[str], language: str) -> str | None:
    """The chosen voice if installed, else the preset for `language`, else any installed voice."""
    if chosen in installed:
        return chosen
    preferred = default_voice_for_language(language)
    if preferred in installed:
        return preferred
    return installed[0] if installed else None


# The languages that have a voice of their own in the per-language mode (Settings › Voices).
VOICE_LANGUAGES = ("ja", "en")
MAIN_LANGUAGE_SAMPLE = 20  # a document's main language is judged on its first sentences


def main_language(utterances: list[Utterance], fallback: str = "en") -> str:
    """"ja" when most of the first sentences are Japanese, else "en"; `fallback` for no sentences."""
    if not utterances:
        return fallback
    languages = [u.language for u in utterances[:MAIN_LANGUAGE_SAMPLE]]
    return "ja" if languages.count("ja") * 2 >= len(languages) else "en"


@dataclass(frozen=True)
class VoicePlan:
    """Which voice reads which sentence: `by_language[language]` for the sentences in that language,
    `main` for the others. In the single-voice mode `by_language` is empty and `main` reads them all.

    `main` is the voice of the document's main language: sentences of no language of their own
    (digits, symbols: "auto") take it, so a list number in a Japanese book is read by the voice around it,
    the same one wherever the reading starts.
    """

    main: str
    by_language: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every voice the plan uses, each once, `main` first."""
        return list(dict.fromkeys([self.main, *self.by_language.values()]))


def plan_voices(settings: Settings, installed: list[str], language: str) -> VoicePlan | None:
    """The voices a reading of a document whose main language is `language` uses (None: no voice installed).

    Single-voice mode: the chosen voice (or the preset for `language`). Per-language mode: each language
    its chosen voice, else its official female preset, else any installed voice.
    """
    if settings.voice_mode == VOICE_MODE_SINGLE:
        single = choose_voice(settings.voice, installed, language)
        return VoicePlan(single) if single is not None else None
    by_language: dict[str, str] = {}
    for each in VOICE_LANGUAGES:
        name = choose_voice(settings.language_voice(each), installed, each)
        if name is None:
            return None
        by_language[each] = name
    return VoicePlan(by_language["ja" if language == "ja" else "en"], by_language)


@dataclass
class LoadedDocument:
    document: Document
    utterances: list[Utterance]
    key: str | None  # where its reading position is stored (None: clipboard, not remembered)
    resume_offset: int | None
    # Segmented with `segment(split_quotes=True)`: quotes are utterances of their own (the dialogue voice).
    split_quotes: bool = False


# --- the pipeline: session and player on one thread ------------------------------------------------


@dataclass
class StartRequest:
    sid: int  # events of this session carry it, so the owner can ignore those of replaced sessions
    engine: Any  # SpeechEngine (anything with .sample_rate that the session factory understands)
    utterances: list[Utterance]
    text: str
    offset: int
    voice: Any  # the voice vector (of every sentence whose language is not in `voices`)
    voices: dict[str, Any] = field(default_factory=dict)  # a voice vector per sentence language ("ja", "en")
    dialogue_voice: Any = None  # the vector of quoted utterances (None: they take their language's voice)
    headings: list[tuple[int, int]] = field(default_factory=list)  # heading spans in `text` (longer pause after)


# (request, sink, on_event) -> a started-not-yet session (ReadingSession or a test fake)
SessionFactory = Callable[[StartRequest, Any, Callable[[Any], None]], Any]
# (sample_rate, device, volume) -> an open player (AudioPlayer or a test fake)
PlayerFactory = Callable[[int, str | None, float], Any]
EventHandler = Callable[[int, Any, Any], None]  # sid, ReaderEvent, the session's ReadingStats


class SessionPipeline:
    """Runs reading sessions through one audio player; see the module docstring.

    Methods are called from the owner's thread and return at once; the work runs in order on the
    control thread, the only one that touches the session and the player. `on_event` and
    `on_failure` are called on worker threads: the owner moves them to its own thread.
    """

    def __init__(
        self,
        make_session: SessionFactory,
        make_player: PlayerFactory,
        on_event: EventHandler,
        on_failure: Callable[[str], None],
        device: str | None = None,
        volume: float = 1.0,
        executor: Executor | None = None,
    ) -> None:
        self._make_session = make_session
        self._make_player = make_player
        self._on_event = on_event
        self._on_failure = on_failure
        self._control = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader-control")
        # Written on the control thread only.
        self._session: Any = None
        self._player: Any = None
        self._device = device
        self._volume = volume
        # Written by the owner, read by the control thread: a start request that is no longer the
        # latest start or stop is skipped.
        self._latest_request = 0
        self._closed = False

    # --- owner thread ----------------------------------------------------------------------------------

    def start(self, request: StartRequest) -> None:
        """Replace the running session (if any) by one reading `request`."""
        self._latest_request += 1
        number = self._latest_request
        self._submit(lambda: self._start_on_control(number, request))

    def stop(self) -> None:
        self._latest_request += 1
        self._submit(self._stop_on_control)

    def seek(self, offset: int) -> None:
        self._submit_to_session(lambda session: session.seek_char(offset))

    def set_voices(self, voice: Any, voices: dict[str, Any]) -> None:
        """A voice per sentence language (`voice` for the other sentences; all of them when `voices` is
        empty), from the session's next sentence."""

        def apply(session: Any) -> None:
            if not session.finished:
                session.set_voices(voice, voices)

        self._submit_to_session(apply)

    def set_pauses(self, pauses: Any) -> None:
        """The pauses between sentences and paragraphs (Pauses), from the session's next sentence."""

        def apply(session: Any) -> None:
            if not session.finished:
                session.set_pauses(pauses)

        self._submit_to_session(apply)

    def set_dialogue_voice(self, voice: Any) -> None:
        """The voice of quoted utterances (None: their language's), from the session's next sentence."""

        def apply(session: Any) -> None:
            if not session.finished:
                session.set_dialogue_voice(voice)

        self._submit_to_session(apply)

    def set_output(self, device: str | None) -> None:
        """Close the player; the next reading opens one on `device`."""
        self._submit(lambda: self._set_output_on_control(device))

    def release_player(self) -> None:
        """Close the player (the engine changes; its sample rate may too)."""
        self._submit(self._close_player)

    def pause(self) -> None:
        self._submit_to_session(lambda session: session.pause())

    def resume(self) -> None:
        self._submit_to_session(lambda session: session.resume())

    def set_speed(self, speed: float) -> None:
        self._submit_to_session(lambda session: session.set_speed(speed))

    def set_volume(self, volume: float) -> None:
        self._submit(lambda: self._set_volume_on_control(volume))

    def fade_out(self, seconds: float, at_marker: Any = None) -> None:
        """Fade the reading out over `seconds`, now or at the player marker `at_marker` (AudioPlayer.fade_out);
        silent until it is stopped, resumed or sought."""

        def apply() -> None:
            if self._player is not None:
                self._player.fade_out(seconds, at_marker)

        self._submit(apply)

    def cancel_fade(self) -> None:
        """Full gain again (and no fade waiting for its marker)."""

        def apply() -> None:
            if self._player is not None:
                self._player.cancel_fade()

        self._submit(apply)

    def fade_state(self) -> str:
        """The player's fade (an audio.player.Fade: "none", "armed", "fading", "silent"); a snapshot, read on
        the owner's thread."""
        player = self._player
        return str(player.fade_state.value) if player is not None else "none"

    def close(self, timeout: float = 5.0) -> None:
        """Stop the session and close the player, waiting up to `timeout` seconds for it."""
        if self._closed:
            return
        self._closed = True
        self._latest_request += 1
        # Queued behind any start still running, so whatever player that start opens is closed too.
        future = self._control.submit(self._close_on_control)
        try:
            future.result(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - closing must finish whatever happens
            log.warning("closing the reader: %s", error)
        self._control.shutdown(wait=False)

    def _submit(self, work: Callable[[], None]) -> None:
        """Run `work` on the control thread; failures go to `on_failure` as messages."""

        def run() -> None:
            try:
                work()
            except MioDeskError as error:
                self._on_failure(str(error))
            except Exception as error:
                log.exception("reader control failed")
                self._on_failure(f"{type(error).__name__}: {error}")

        if not self._closed:
            self._control.submit(run)

    def _submit_to_session(self, action: Callable[[Any], Any]) -> None:
        """Run `action(session)` on the control thread, if a session is there by then."""

        def run() -> None:
            if self._session is not None:
                action(self._session)

        self._submit(run)

    # --- control thread --------------------------------------------------------------------------------

    def _start_on_control(self, number: int, request: StartRequest) -> None:
        if self._session is not None:
            self._session.stop()
        if number != self._latest_request:
            return  # superseded while waiting in the queue
        player = self._player_for(request.engine.sample_rate)
        player.resume()
        player.reset_first_audio()
        sid = request.sid
        session: Any = None

        def forward(event: Any) -> None:
            # The stats of the session that sent the event (None only before the session exists).
            self._on_event(sid, event, getattr(session, "stats", None))

        session = self._make_session(request, player, forward)
        self._session = session
        session.start_at_char(request.offset)

    def _player_for(self, sample_rate: int) -> Any:
        player = self._player
        if player is not None and player.source_rate == sample_rate:
            return player
        self._close_player()
        self._player = self._make_player(sample_rate, self._device, self._volume)
        return self._player

    def _stop_on_control(self) -> None:
        if self._session is not None:
            self._session.stop()

    def _set_volume_on_control(self, volume: float) -> None:
        self._volume = volume
        if self._player is not None:
            self._player.volume = volume

    def _set_output_on_control(self, device: str | None) -> None:
        self._device = device
        self._close_player()

    def _close_player(self) -> None:
        player, self._player = self._player, None
        if player is not None:
            player.close()

    def _close_on_control(self) -> None:
        try:
            self._stop_on_control()
        finally:
            self._close_player()


# --- the reading state: one thread, no threads of its own ------------------------------------------


class TransportState(str, Enum):
    """Where the reading of a document is (a str: the Qt signals carry the plain value)."""

    IDLE = "idle"
    LOADING = "loading"  # Play was pressed while the models load
    PLAYING = "playing"
    PAUSED = "paused"


class EngineState(str, Enum):
    """Where the speech models are."""

    NONE = "none"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ReadingListener(Protocol):
    """What `ReadingState` reports; the Qt controller turns each call into a signal."""

    def state_changed(self, state: str) -> None: ...
    def utterance_started(self, index: int, start: int, end: int) -> None: ...
    def utterance_finished(self, index: int) -> None: ...  # its audio and the pause after it were heard
    def cursor_requested(self, offset: int) -> None: ...
    def stats_changed(self, stats: dict[str, Any]) -> None: ...
    def reading_finished(self) -> None: ...
    def warning(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


class ReadingState:
    """Position, utterances, transport and time left of one document; see the module docstring.

    state: a TransportState
    """

    def __init__(
        self,
        pipeline: SessionPipeline,
        positions: PositionStore,
        listener: ReadingListener,
        speed: Callable[[], float] = lambda: 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.positions = positions
        self.listener = listener
        self.speed = speed  # the reading speed now, for the time-left estimate
        self._clock = clock
        self.state = TransportState.IDLE
        self.loaded: LoadedDocument | None = None
        self.position = 0  # start of the sentence last heard (what resume returns to)
        self.current_index: int | None = None
        self.last_stats: dict[str, Any] = {}
        self.session_id = 0  # the session whose events count; bumped whenever one is replaced or stopped
        self._preview_ids: set[int] = set()
        self._last_stats_source: Any = None  # the ReadingStats of the session last heard
        self._last_position_save = -POSITION_SAVE_INTERVAL_S
        self._chars_before: list[int] = [0]  # characters of the utterances before each index
        self._ends: list[int] = []

    def set_state(self, state: TransportState) -> None:
        if state != self.state:
            self.state = TransportState(state)
            self.listener.state_changed(self.state.value)

    def fail(self, message: str) -> None:
        self.set_state(TransportState.IDLE)
        self.save_position(force=True)  # the place survives a failure as it does an error event
        self.listener.error(message)

    # --- document ----------------------------------------------------------------------------------

    def install(self, loaded: LoadedDocument) -> None:
        """Show `loaded`, ready to read from its saved position."""
        self.stop()
        self.loaded = loaded
        self.position = loaded.resume_offset or 0
        self.current_index = None
        self._index_utterances()
        self._last_stats_source = None
        self.last_stats = {"ttfa_s": None, "rtf": None, "remaining_s": self.remaining_seconds(self.position)}

    def replace_utterances(self, utterances: list[Utterance], split_quotes: bool) -> None:
        """The same document segmented anew (the dialogue voice was turned on or off): the position stays,
        a session in progress no longer counts (the caller starts the next one)."""
        assert self.loaded is not None
        self.session_id += 1  # its utterance indices are the old segmentation's
        self.loaded.utterances = utterances
        self.loaded.split_quotes = split_quotes
        self._index_utterances()
        self.current_index = None

    def _index_utterances(self) -> None:
        assert self.loaded is not None
        cumulative = [0]
        for utterance in self.loaded.utterances:
            cumulative.append(cumulative[-1] + len(utterance.text))
        self._chars_before = cumulative
        self._ends = [utterance.end for utterance in self.loaded.utterances]

    def has_text(self) -> bool:
        return self.loaded is not None and bool(self.loaded.utterances)

    def language(self, fallback: str = "en") -> str:
        """The document's main language ("ja" or "en"); `fallback` without a document or sentences."""
        return main_language(self.loaded.utterances if self.loaded else [], fallback)

    def index_at(self, offset: int) -> int:
        """The sentence containing `offset`, else the first one after it (bisect: books are long)."""
        return bisect.bisect_right(self._ends, offset)

    def section_starts(self) -> list[int]:
        """Where chapters start (or headings, for a one-chapter document with headings)."""
        if self.loaded is None:
            return []
        document = self.loaded.document
        starts = [chapter.start for chapter in document.chapters]
        if len(starts) <= 1:
            starts = [block.start for block in document.blocks if block.kind == "heading"] or starts
        return sorted(set(starts)) or [0]

    # --- transport ---------------------------------------------------------------------------------

    def start_offset(self, offset: int | None) -> int:
        """Where a reading asked to start at `offset` starts (None: where the last one stopped)."""
        assert self.loaded is not None
        start_at = self.position if offset is None else max(0, offset)
        if start_at >= len(self.loaded.document.text):
            start_at = 0
        return start_at

    def start_reading(self, engine: Any, voice: Any, offset: int, voices: dict[str, Any] | None = None,
                      dialogue_voice: Any = None) -> None:
        """Read the document from the sentence at `offset` with `voice`, or with `voices[language]` for the
        sentences in a language that has one, and quotes in `dialogue_voice` when there is one."""
        assert self.loaded is not None
        self.position = offset
        self.session_id += 1
        self.set_state(TransportState.PLAYING)
        self.pipeline.start(StartRequest(self.session_id, engine, self.loaded.utterances,
                                         self.loaded.document.text, offset, voice, dict(voices or {}),
                                         dialogue_voice, self.loaded.document.heading_spans()))

    def start_preview(self, engine: Any, voice: Any, utterances: list[Utterance], text: str) -> None:
        """Say `text` without touching the document or its position."""
        self.session_id += 1
        self._preview_ids.add(self.session_id)
        self.set_state(TransportState.PLAYING)
        self.pipeline.start(StartRequest(self.session_id, engine, utterances, text, 0, voice))

    def pause(self) -> None:
        if self.state == TransportState.PLAYING:
            self.pipeline.pause()
            self.set_state(TransportState.PAUSED)
            self.save_position(force=True)

    def resume(self) -> None:
        if self.state == TransportState.PAUSED:
            self.pipeline.resume()
            self.set_state(TransportState.PLAYING)

    def stop(self) -> None:
        self.session_id += 1  # events of the old session no longer count
        self.pipeline.stop()
        if self.state != TransportState.IDLE:
            self.save_position(force=True)
        self.set_state(TransportState.IDLE)

    def reading(self) -> bool:
        """True while the document (not a preview) is being read or is paused."""
        reading = self.state in (TransportState.PLAYING, TransportState.PAUSED)
        return reading and self.session_id not in self._preview_ids

    def sentence_target(self, step: int) -> int | None:
        """The start of the sentence `step` sentences from the current one."""
        if self.loaded is None or not self.loaded.utterances:
            return None
        utterances = self.loaded.utterances
        current = self.current_index if self.current_index is not None else self.index_at(self.position)
        return utterances[min(max(0, current + step), len(utterances) - 1)].start

    def section_target(self, step: int) -> int | None:
        """The start of the next chapter (step > 0) or, like a CD player, of this or the previous one."""
        starts = self.section_starts()
        if not starts:
            return None
        here = self.position
        if step > 0:
            return next((s for s in starts if s > here), None)
        before = [s for s in starts if s < here]
        if not before:
            return starts[0]
        # Back to this chapter's start, or to the previous one when already near it.
        if here - before[-1] < 2 and len(before) > 1:
            return before[-2]
        return before[-1]

    def seek(self, offset: int) -> None:
        """Read from the sentence at `offset` when reading; else put the cursor there."""
        if self.loaded is None:
            return
        index = self.index_at(offset)
        if index >= len(self.loaded.utterances):
            return
        start = self.loaded.utterances[index].start
        self.position = start
        if self.reading():
            self.set_state(TransportState.PLAYING)
            self.pipeline.seek(start)
        elif self.state == TransportState.IDLE:
            self.current_index = index
            self.listener.cursor_requested(start)
            self.listener.stats_changed(self.update_stats(None))

    # --- engine events -----------------------------------------------------------------------------

    def on_event(self, sid: int, event: Any, stats: Any) -> None:
        """An event of session `sid` (a ReaderEvent), with that session's ReadingStats."""
        if sid != self.session_id:
            return
        preview = sid in self._preview_ids
        kind = event.kind  # a str, or a str-valued enum that compares equal to it
        if kind == "utterance_started":
            if preview:
                return
            self.current_index = event.index
            self.position = event.start
            self.listener.utterance_started(event.index, event.start, event.end)
            self.listener.stats_changed(self.update_stats(stats))
            # After an error the audio already made still plays out: each sentence heard then is the
            # place to keep, as nothing later will save it.
            self.save_position(force=self.state == TransportState.IDLE)
        elif kind == "utterance_finished":
            if not preview and event.index is not None:
                self.listener.utterance_finished(event.index)
        elif kind == "finished":
            self.set_state(TransportState.IDLE)
            if not preview:
                self.position = 0
                self.current_index = None
                self.save_position(force=True)
                self.listener.stats_changed(self.update_stats(stats))
                self.listener.reading_finished()
        elif kind == "warning":
            self.listener.warning(event.message)
        elif kind == "error":
            self.set_state(TransportState.IDLE)
            self.save_position(force=True)
            self.listener.error(event.message)

    # --- time left ---------------------------------------------------------------------------------

    def remaining_seconds(self, offset: int, pace: float | None = None) -> float | None:
        """Seconds of speech from the sentence at `offset` to the end, at `pace` seconds per character."""
        if self.loaded is None or not self.loaded.utterances:
            return None
        index = self.index_at(offset)
        chars = self._chars_before[-1] - self._chars_before[min(index, len(self._chars_before) - 1)]
        if pace is None:
            pace = DEFAULT_PACE.get(self.language(), DEFAULT_PACE["en"]) / self.speed()
        return chars * pace

    def update_stats(self, stats: Any) -> dict[str, Any]:
        """Time to first audio, real-time factor and time left, from a session's ReadingStats (or None)."""
        pace = None
        if stats is not None and stats.utterance_codes and self.loaded is not None:
            spoken = sum(len(self.loaded.utterances[i].text) for i in stats.utterance_codes
                         if i < len(self.loaded.utterances))
            if spoken and stats.audio_seconds:
                pace = stats.audio_seconds / spoken  # this reading's measured pace
        self.last_stats = {
            "ttfa_s": getattr(stats, "first_audio_s", None),
            "rtf": stats.rtf if stats is not None and stats.audio_seconds else None,
            "remaining_s": self.remaining_seconds(self.position, pace),
        }
        return dict(self.last_stats)

    # --- saved positions ---------------------------------------------------------------------------

    def save_position(self, force: bool = False) -> None:
        """Remember the position (at most every few seconds unless `force`)."""
        if self.loaded is None or self.loaded.key is None:
            return
        now = self._clock()
        if not force and now - self._last_position_save < POSITION_SAVE_INTERVAL_S:
            return
        self._last_position_save = now
        self.positions.set(self.loaded.key, self.position)
