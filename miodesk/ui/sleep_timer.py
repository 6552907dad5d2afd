"""The sleep timer: stop reading after a listening time, or at the end of the chapter, with a fade-out.

Only listening counts: the countdown runs while the document is being read (not while paused, stopped,
loading the models or saying a voice preview), as in Voice Dream and Read Aloud. A reader who pauses to
answer the door has not listened, and a timer that ran on would stop the reading a moment after they come
back. The choice and the time left belong to this run of the app and are never saved: they survive Stop
and opening other documents (the time left shows on the button meanwhile), and a timer that has fired
stays chosen, counting from its full length again at the next Play.

Time up: the player fades out over FADE_SECONDS, then the reading stops with its place at the start of the
sentence heard when the fade began, so Play later repeats what faded instead of skipping it. Eight seconds
is long enough not to wake a listener (the level halves every second, `audio.player.FADE_FLOOR`) and short
enough that what Play repeats is a sentence or two. A pause, Stop, a seek or a new reading during the fade
means the reader is awake: the player is back at full gain and the countdown starts over.

End of chapter: the player is asked to fade out in CHAPTER_FADE_SECONDS where the chapter's last sentence
ends (the session's marker after each sentence's audio), ahead of time, so nothing of the next chapter is
heard however late the stop lands; the reading stops once that sentence and its pause have been heard,
its place at the next chapter's first sentence. Chapters are what Next Chapter jumps to
(`ReadingState.section_starts`); a document without them ends with its last sentence, where the reading
finishes as it always does.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from miodesk.audio.player import Fade
from miodesk.formatting import format_duration

SLEEP_MINUTES = (5, 10, 15, 30, 45, 60, 90)
FADE_SECONDS = 8.0
CHAPTER_FADE_SECONDS = 0.05  # the natural end of a sentence: only a click-free cut
LAST_MINUTE_S = 60.0  # "1 minute left" is announced when the countdown passes this
TICK_MS = 200
FADE_START_GRACE_S = 2.0  # a fade the player never began (no reading to fade): the stop comes anyway

OFF, TIME, CHAPTER = "off", "time", "chapter"


class Countdown:
    """Seconds left of a listening time that runs only while told to (plain Python, any clock)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.length = seconds
        self._clock = clock
        self._left = seconds
        self._since: float | None = None  # when it last started running; None while it stands

    @property
    def running(self) -> bool:
        return self._since is not None

    def run(self, running: bool) -> None:
        now = self._clock()
        if self._since is not None:
            self._left -= now - self._since
        self._since = now if running else None

    def left(self) -> float:
        elapsed = self._clock() - self._since if self._since is not None else 0.0
        return max(0.0, self._left - elapsed)

    def restart(self) -> None:
        self._left = self.length
        if self._since is not None:
            self._since = self._clock()


class SleepTimer(QObject):
    """The countdown and what it does to the controller's reading; no widgets (see the module docstring)."""

    changed = Signal()  # the text, the accessible name or the choice changed
    notice = Signal(str)  # a message for the status bar and the screen reader (translated)

    def __init__(self, controller: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.mode = OFF
        self.fade_seconds = FADE_SECONDS
        self.warning_s = LAST_MINUTE_S  # the time left at which "1 minute left" is announced
        self._clock = time.monotonic
        self._countdown = Countdown(0.0)
        self._fading_from: int | None = None  # while fading: the place the stop keeps
        self._fade_asked_at = 0.0
        self._fade_seen = False  # the player was seen fading (so its full gain later means a reader's action)
        self._last_left = 0.0  # the time left at the last tick (to see it pass the last minute)
        self._shown: tuple[str, str, str] = ("", "", "")
        self._utterance_starts: tuple[Any, list[int]] = (None, [])  # (the utterance list, their starts)
        self._ticker = QTimer(self)
        self._ticker.setInterval(TICK_MS)
        self._ticker.timeout.connect(self._tick)
        controller.stateChanged.connect(self._state_changed)
        controller.utteranceStarted.connect(self._utterance_started)
        controller.utteranceFinished.connect(self._utterance_finished)

    # --- choosing -------------------------------------------------------------------------------------

    def set_off(self) -> None:
        self._choose(OFF)
        self.notice.emit(self.tr("Sleep timer off."))

    def set_minutes(self, minutes: int) -> None:
        self.set_seconds(minutes * 60.0)

    def set_seconds(self, seconds: float) -> None:
        """A listening time of `seconds` (the menu offers minutes; tests use seconds)."""
        self._choose(TIME, seconds)
        self.notice.emit(self.tr("Sleep timer: reading stops after {0} of listening.").format(
            self._duration_words(seconds)))

    def set_end_of_chapter(self) -> None:
        self._choose(CHAPTER)
        self.notice.emit(self.tr("Sleep timer: reading stops at the end of this chapter."))
        index = self.controller.current_index
        if self._reading() and index is not None:
            self._arm_chapter_end(index)

    def _choose(self, mode: str, seconds: float = 0.0) -> None:
        if self.mode != OFF and self.controller.state != "idle":
            self.controller.pipeline.cancel_fade()  # a fade under way or waiting at the chapter's end
        self.mode = mode
        self._fading_from = None
        self._countdown = Countdown(seconds, self._clock)
        self._countdown.run(self._listening())
        self._last_left = seconds
        self._refresh()

    # --- what it shows ---------------------------------------------------------------------------------

    @property
    def length(self) -> float:
        """The listening time chosen, in seconds (0 unless a time is set)."""
        return self._countdown.length if self.mode == TIME else 0.0

    def time_left(self) -> float | None:
        """Listening seconds left before the fade-out begins (None: no time is set)."""
        return self._countdown.left() if self.mode == TIME else None

    @property
    def fading(self) -> bool:
        return self._fading_from is not None

    def text(self) -> str:
        """The button's text: "Sleep 14:32", "Sleep: end of chapter"."""
        if self.mode == CHAPTER:
            return self.tr("Sleep: end of chapter")
        if self.mode == TIME:
            if self.fading:
                return self.tr("Sleep: fading out")
            return self.tr("Sleep {0}").format(format_duration(math.ceil(self._countdown.left())))
        return self.tr("Sleep timer")

    def accessible_name(self) -> str:
        """The button's name for a screen reader: the state, the time left in whole minutes (so that it
        changes once a minute, not every second)."""
        if self.mode == CHAPTER:
            return self.tr("Sleep timer: end of chapter")
        if self.mode == TIME:
            if self.fading:
                return self.tr("Sleep timer: fading out")
            minutes = math.ceil(self._countdown.left() / 60)
            if minutes >= 2:
                return self.tr("Sleep timer: {0} minutes left").format(minutes)
            return self.tr("Sleep timer: 1 minute left")
        return self.tr("Sleep timer: off")

    def _duration_words(self, seconds: float) -> str:
        if seconds < 60:
            return self.tr("{0} seconds").format(round(seconds))
        minutes = round(seconds / 60)
        return self.tr("1 minute") if minutes == 1 else self.tr("{0} minutes").format(minutes)

    def _refresh(self) -> None:
        if self.mode == TIME and (self._countdown.running or self.fading):
            if not self._ticker.isActive():
                self._ticker.start()
        else:
            self._ticker.stop()
        shown = (self.mode, self.text(), self.accessible_name())
        if shown != self._shown:
            self._shown = shown
            self.changed.emit()

    def retranslate(self) -> None:
        self._shown = ("", "", "")
        self._refresh()

    # --- the reading -------------------------------------------------------------------------------------

    def _reading(self) -> bool:
        """The document (not a preview) is being read or is paused."""
        return bool(self.controller.reading.reading())

    def _listening(self) -> bool:
        return self.controller.state == "playing" and self._reading()

    def _state_changed(self, state: str) -> None:
        if self.mode == TIME:
            if self.fading and state != "playing":
                self._awake()  # paused or stopped during the fade; or the reading came to its end
            self._countdown.run(self._listening())
        elif self.mode == CHAPTER and state == "playing" and self._reading():
            index = self.controller.current_index  # resume() dropped the fade waiting at the chapter's end
            if index is not None:
                self._arm_chapter_end(index)
        self._refresh()

    def _tick(self) -> None:
        if self.mode != TIME:
            return
        if self.fading:
            self._follow_fade()
        else:
            before, left = self._last_left, self._countdown.left()
            self._last_left = left
            if left <= self.warning_s < before:
                self.notice.emit(self.tr("Sleep timer: 1 minute left."))
            if left <= 0 and self._listening():
                self._begin_fade()
        self._refresh()

    def _begin_fade(self) -> None:
        self._fading_from = self.controller.position  # the start of the sentence being heard
        self._fade_asked_at = self._clock()
        self._fade_seen = False
        self.controller.pipeline.fade_out(self.fade_seconds)

    def _follow_fade(self) -> None:
        state = self.controller.pipeline.fade_state()
        if state == Fade.SILENT:
            self._stop_faded()
        elif state in (Fade.FADING, Fade.ARMED):
            self._fade_seen = True
        elif self._fade_seen:
            self._awake()  # full gain again: a seek or a new reading (their flush ends the fade)
        elif self._clock() - self._fade_asked_at > self.fade_seconds + FADE_START_GRACE_S:
            self._stop_faded()  # no player took the fade (nothing is audible): stop all the same

    def _stop_faded(self) -> None:
        position, self._fading_from = self._fading_from, None
        if position is not None:
            self.controller.position = position
        self.controller.stop()
        self._countdown.restart()
        self._countdown.run(False)
        self._last_left = self._countdown.length
        self.notice.emit(self.tr("Sleep timer: reading stopped. Play goes on from the sentence that faded out."))

    def _awake(self) -> None:
        """The reader acted during the fade: full gain, and the whole time again."""
        self._fading_from = None
        self.controller.pipeline.cancel_fade()
        self._countdown.restart()
        self._last_left = self._countdown.length

    # --- end of chapter -------------------------------------------------------------------------------------

    def _chapter_last_sentence(self, index: int) -> int | None:
        """The last sentence of the chapter holding sentence `index`; None in the last chapter (the reading's
        own end) or for an index that is not the document's."""
        loaded = self.controller.loaded
        if loaded is None or not 0 <= index < len(loaded.utterances):
            return None
        utterances = loaded.utterances
        if self._utterance_starts[0] is not utterances:
            self._utterance_starts = (utterances, [u.start for u in utterances])
        starts = self._utterance_starts[1]
        sections = self.controller.section_starts()
        following = bisect.bisect_right(sections, utterances[index].start)
        if following >= len(sections):
            return None
        last = bisect.bisect_left(starts, sections[following]) - 1
        return last if last + 1 < len(utterances) else None

    def _arm_chapter_end(self, index: int) -> None:
        from miodesk.tts.reader import Marker

        last = self._chapter_last_sentence(index)
        if last is not None:
            self.controller.pipeline.fade_out(CHAPTER_FADE_SECONDS, at_marker=(Marker.SPOKEN, last))

    def _utterance_started(self, index: int, start: int, end: int) -> None:  # noqa: ARG002 - the signal's
        if self.mode == CHAPTER and self._reading():
            self._arm_chapter_end(index)

    def _utterance_finished(self, index: int) -> None:
        if self.mode != CHAPTER or not self._reading() or self._chapter_last_sentence(index) != index:
            return
        self.controller.position = self.controller.loaded.utterances[index + 1].start  # the next chapter's first
        self.controller.stop()
        self.notice.emit(self.tr("Sleep timer: reading stopped at the end of the chapter."))


class SleepTimerMenu(QMenu):
    """Off, the listening times and End of Chapter: checkable, one at a time. Playback › Sleep Timer, and the
    transport bar's button."""

    def __init__(self, timer: SleepTimer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sleepTimerMenu")
        self.timer = timer
        group = QActionGroup(self)
        group.setExclusive(True)
        self.choices: dict[str | int, QAction] = {}
        for choice in (OFF, *SLEEP_MINUTES, CHAPTER):
            action = QAction(self)
            action.setObjectName(f"action_sleep_{choice}")
            action.setCheckable(True)
            group.addAction(action)
            if choice == CHAPTER:
                self.addSeparator()
            self.addAction(action)
            if choice == OFF:
                self.addSeparator()
            action.triggered.connect(lambda _=False, c=choice: self._chosen(c))
            self.choices[choice] = action
        timer.changed.connect(self._show_choice)
        self.retranslate()
        self._show_choice()

    def _chosen(self, choice: str | int) -> None:
        if choice == OFF:
            self.timer.set_off()
        elif choice == CHAPTER:
            self.timer.set_end_of_chapter()
        else:
            self.timer.set_minutes(int(choice))

    def _show_choice(self) -> None:
        timer = self.timer
        chosen: str | int | None = timer.mode
        if timer.mode == TIME:
            minutes = timer.length / 60
            chosen = int(minutes) if minutes in SLEEP_MINUTES else None
        for choice, action in self.choices.items():
            action.setChecked(choice == chosen)

    def retranslate(self) -> None:
        self.setTitle(self.tr("Sleep &Timer"))
        labels: dict[str | int, tuple[str, str]] = {
            OFF: (self.tr("&Off"), self.tr("Read on until you stop")),
            CHAPTER: (self.tr("&End of Chapter"),
                      self.tr("Stop when the chapter being read ends (a document without chapters: at its end)")),
        }
        for minutes in SLEEP_MINUTES:
            labels[minutes] = (self.tr("{0} minutes").format(minutes),
                               self.tr("Stop after {0} minutes of listening, fading out (paused time does not count)")
                               .format(minutes))
        for choice, (text, tip) in labels.items():
            self.choices[choice].setText(text)
            self.choices[choice].setToolTip(tip)
            self.choices[choice].setStatusTip(tip)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


class SleepTimerButton(QToolButton):
    """The transport bar's sleep timer: its text is the time left; it opens the sleep timer menu."""

    def __init__(self, timer: SleepTimer, menu: SleepTimerMenu, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sleepTimerButton")
        self.timer = timer
        self.setMenu(menu)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setAutoRaise(True)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setStyleSheet("#sleepTimerButton { padding-right: 14px; }")  # room for the menu's arrow
        timer.changed.connect(self._show)
        self.retranslate()

    def _show(self) -> None:
        self.setText(self.timer.text())
        name = self.timer.accessible_name()
        if name != self.accessibleName():
            self.setAccessibleName(name)

    def retranslate(self) -> None:
        tip = self.tr("Stop reading after a while, fading out, or at the end of the chapter")
        self.setToolTip(tip)
        self.setAccessibleDescription(tip)
        self.timer.retranslate()
        self._show()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
