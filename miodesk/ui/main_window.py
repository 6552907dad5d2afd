"""The main window: the document with its outline, the transport bar and the status line.

It only builds widgets and connects them to the ReaderController; nothing here waits on a model,
a file or the audio device.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QBoxLayout,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from miodesk.formatting import format_duration
from miodesk.settings import Settings, save_settings
from miodesk.text.documents import SUPPORTED_EXTENSIONS
from miodesk.ui import accessibility
from miodesk.ui.assets import app_icon, icon
from miodesk.ui.controller import LoadedDocument, ReaderController
from miodesk.ui.reader_view import ReaderView
from miodesk.ui.sleep_timer import SleepTimer, SleepTimerButton, SleepTimerMenu
from miodesk.ui.theme import follow_palette, window_style
from miodesk.ui.voice_labels import PRESET_LABELS, voice_label
from miodesk.ui.widgets import ActivateOnEnter, EmptyPage, MessageBanner, TransportBar

if TYPE_CHECKING:
    from miodesk.ui.export_dialog import ExportDialog
    from miodesk.ui.global_shortcuts import GlobalReader

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    quitRequested = Signal()

    def __init__(self, controller: ReaderController, translations=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings: Settings = controller.settings
        self.translations = translations
        self.tray = None  # set by the app (tray.ReaderTray)
        self.global_reader: GlobalReader | None = None  # set by the app (global_shortcuts.GlobalReader)
        self._quitting = False
        self._utterance_count = 0
        self._transport_state = "idle"
        self._position: tuple[str, int] = ("", 0)  # what the position label shows (see _show_position)
        self._voice_shown = ""  # the voice the voice list shows (see _refresh_voices)
        self.export_dialog: ExportDialog | None = None  # File › Export audio…, made when first opened
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(QSize(560, 320))  # 1280×800 at 200 % is 640×400, less a title bar and a panel
        self.resize(1100, 720)

        self._build_actions()
        self._build_menus()
        self._build_body()
        self._build_status_bar()
        follow_palette(self, window_style)  # rebuilt when the system switches light/dark
        self._connect_controller()
        self.retranslate()
        self._refresh_voices()
        self._refresh_recent()
        self._apply_view_settings()
        self._update_transport("idle")
        if self.settings.window_geometry:
            try:
                self.restoreGeometry(QByteArray.fromHex(self.settings.window_geometry.encode("ascii")))
            except ValueError:
                pass

    # --- construction -------------------------------------------------------------------------------

    def _action(self, name: str, icon_name: str | None = None, shortcuts: list | None = None,
                slot=None, checkable: bool = False) -> QAction:
        action = QAction(self)
        action.setObjectName(f"action_{name}")
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcuts:
            sequences: list[QKeySequence] = []
            for shortcut in shortcuts:
                for sequence in QKeySequence.keyBindings(shortcut) if isinstance(shortcut, QKeySequence.StandardKey) \
                        else [QKeySequence(shortcut)]:
                    if not sequence.isEmpty() and sequence not in sequences:  # a key twice is ambiguous
                        sequences.append(sequence)
            action.setShortcuts(sequences)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(slot)
        self.addAction(action)  # window-wide shortcuts, also when the menu bar is hidden
        self.actions_by_name[name] = action
        return action

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        key = QKeySequence.StandardKey
        c = self.controller
        self._action("open", "open", [key.Open], self.open_file_dialog)
        self._action("paste", "paste", ["Ctrl+Shift+V"], self.paste_and_read)
        self._action("export", None, ["Ctrl+Shift+E"], self.open_export_dialog)
        self._action("quit", None, [key.Quit], self.quit)
        # Space, Enter and the bare arrows belong to the focused control (a button, the voice list, the
        # text's caret): Space plays only from the text and from controls that have no use for it
        # (ReaderView.playPauseRequested, keyPressEvent below); sentences are Alt+arrows.
        self._action("play", "play", [Qt.Key.Key_MediaPlay, Qt.Key.Key_MediaTogglePlayPause,
                                      Qt.Key.Key_MediaPause], self.toggle_play)
        self._action("stop", "stop", ["Escape", Qt.Key.Key_MediaStop], self.stop_reading)
        self._action("previous_sentence", "sentence-previous", ["Alt+Left", Qt.Key.Key_MediaPrevious],
                     c.previous_sentence)
        self._action("next_sentence", "sentence-next", ["Alt+Right", Qt.Key.Key_MediaNext], c.next_sentence)
        self._action("previous_chapter", "chapter-previous", ["Ctrl+Up", "Ctrl+PgUp"], c.previous_chapter)
        self._action("next_chapter", "chapter-next", ["Ctrl+Down", "Ctrl+PgDown"], c.next_chapter)
        self._action("read_from_cursor", None, ["Ctrl+Return"], self.read_from_cursor)
        self._action("preview", "preview", ["Ctrl+Shift+P"], self.preview_voice)
        self._action("record_voice", "microphone", None, self.record_voice)
        self._action("settings", "settings", [key.Preferences, "Ctrl+,"], self.open_settings)
        self._action("faster", None, ["Ctrl+]"], lambda: self._nudge_speed(+0.1))
        self._action("slower", None, ["Ctrl+["], lambda: self._nudge_speed(-0.1))
        self._action("outline", "outline", ["Ctrl+Shift+O"], self._toggle_outline, checkable=True)
        self._action("highlight", None, ["Ctrl+H"], self._toggle_highlight, checkable=True)
        self._action("auto_scroll", None, ["Ctrl+Shift+S"], self._toggle_auto_scroll, checkable=True)
        self._action("zoom_in", None, [key.ZoomIn, "Ctrl++", "Ctrl+="], lambda: self._zoom(+1))
        self._action("zoom_out", None, [key.ZoomOut, "Ctrl+-"], lambda: self._zoom(-1))
        self._action("zoom_reset", None, ["Ctrl+0"], lambda: self._zoom(0))
        self._action("about", None, None, self.show_about)
        self._action("show_logs", None, None, self.show_logs)
        self._action("system_info", None, None, self.copy_system_info)
        self._action("models", None, None, self.open_first_run)
        self._action("readings", None, None, lambda: self.open_readings())

    def _build_menus(self) -> None:
        bar = self.menuBar()
        a = self.actions_by_name
        self.file_menu = bar.addMenu("")
        self.file_menu.addAction(a["open"])
        self.recent_menu = self.file_menu.addMenu("")
        self.file_menu.addAction(a["paste"])
        self.file_menu.addSeparator()
        self.file_menu.addAction(a["export"])
        self.file_menu.addSeparator()
        self.file_menu.addAction(a["quit"])

        self.play_menu = bar.addMenu("")
        for name in ("play", "stop", "read_from_cursor"):
            self.play_menu.addAction(a[name])
        self.play_menu.addSeparator()
        for name in ("previous_sentence", "next_sentence", "previous_chapter", "next_chapter"):
            self.play_menu.addAction(a[name])
        self.play_menu.addSeparator()
        self.play_menu.addAction(a["faster"])
        self.play_menu.addAction(a["slower"])
        self.device_menu = self.play_menu.addMenu("")
        self.device_menu.aboutToShow.connect(self._fill_device_menu)
        self.play_menu.addSeparator()
        # Remembered for this run of the app only (never in the settings): see sleep_timer.
        self.sleep_timer = SleepTimer(self.controller, self)
        self.sleep_menu = SleepTimerMenu(self.sleep_timer, self.play_menu)
        self.play_menu.addMenu(self.sleep_menu)

        self.voice_menu = bar.addMenu("")
        self.voice_menu.addAction(a["preview"])
        self.voice_menu.addAction(a["record_voice"])

        self.view_menu = bar.addMenu("")
        for name in ("outline", "highlight", "auto_scroll"):
            self.view_menu.addAction(a[name])
        self.view_menu.addSeparator()
        for name in ("zoom_in", "zoom_out", "zoom_reset"):
            self.view_menu.addAction(a[name])

        self.tools_menu = bar.addMenu("")
        self.tools_menu.addAction(a["models"])
        self.tools_menu.addAction(a["readings"])
        self.tools_menu.addAction(a["settings"])

        self.help_menu = bar.addMenu("")
        for name in ("show_logs", "system_info"):
            self.help_menu.addAction(a[name])
        self.help_menu.addSeparator()
        self.help_menu.addAction(a["about"])

    def _build_body(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = MessageBanner(central)
        self.banner.actionTriggered.connect(self._banner_action)
        self._banner_handler = None
        layout.addWidget(self.banner)

        self.stack = QStackedWidget(central)
        self.empty_page = EmptyPage(self.actions_by_name["open"], self.actions_by_name["paste"], self.stack)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self.stack)
        self.outline = QTreeWidget(self.splitter)
        self.outline.setObjectName("outline")
        self.outline.setHeaderHidden(True)
        self.outline.setMinimumWidth(170)
        self.outline.setIndentation(14)
        self.outline.itemActivated.connect(self._outline_activated)
        self.outline.itemClicked.connect(self._outline_activated)
        self.reader = ReaderView(self.splitter)
        self.reader.setAcceptDrops(False)  # drops go to the window, which opens the file
        self.reader.readFromRequested.connect(self._read_from)
        self.reader.playPauseRequested.connect(self._play_pause_from_keyboard)
        self.reader.zoomRequested.connect(self._zoom)
        self.reader.addReadingRequested.connect(self.open_readings)
        self.splitter.addWidget(self.outline)
        self.splitter.addWidget(self.reader)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 860])
        self.stack.addWidget(self.empty_page)
        self.stack.addWidget(self.splitter)
        layout.addWidget(self.stack, 1)

        self.transport = TransportBar(self.actions_by_name, central)
        self.sleep_button = SleepTimerButton(self.sleep_timer, self.sleep_menu, self.transport.play_group)
        play_row = self.transport.play_group.layout()
        assert isinstance(play_row, QBoxLayout)  # the play buttons' row: the sleep timer goes after Stop
        play_row.insertWidget(len(self.transport.buttons), self.sleep_button)
        self.transport.voice_combo.activated.connect(self._voice_chosen)
        self.transport.speed_slider.setValue(round(self.settings.speed * 100))
        self.transport.volume_slider.setValue(round(self.settings.volume * 100))
        self._speed_timer = QTimer(self, singleShot=True, interval=250)
        self._speed_timer.timeout.connect(
            lambda: self.controller.set_speed(self.transport.speed_slider.value() / 100))
        self.transport.speed_slider.valueChanged.connect(lambda _: self._speed_timer.start())
        self.transport.volume_slider.valueChanged.connect(lambda v: self.controller.set_volume(v / 100))
        layout.addWidget(self.transport)
        self.setCentralWidget(central)
        # Tab goes the way the eye does: message, contents, text, playback, voice, speed, volume.
        chain = [self.banner.action, self.banner.close_button, self.empty_page.open_button,
                 self.empty_page.paste_button, self.outline, self.reader,
                 *self.transport.buttons.values(), self.sleep_button, self.transport.voice_combo,
                 self.transport.preview_button,
                 self.transport.speed_slider, self.transport.volume_slider]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)
        activate_on_enter = ActivateOnEnter(self)
        for button in central.findChildren(QAbstractButton):
            button.installEventFilter(activate_on_enter)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.busy = QProgressBar(bar)
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.model_label = QLabel(bar)
        self.ttfa_label = QLabel(bar)
        self.rtf_label = QLabel(bar)
        self.remaining_label = QLabel(bar)
        # "Serving on 127.0.0.1:8880" while MioDesk's speech server runs (Settings › Server); hidden otherwise.
        self.server_label = QLabel(bar)
        self.server_label.setObjectName("serverStatus")
        self.server_label.hide()
        for widget in (self.busy, self.server_label, self.model_label, self.ttfa_label, self.rtf_label,
                       self.remaining_label):
            bar.addPermanentWidget(widget)
        for label in (self.server_label, self.model_label, self.ttfa_label, self.rtf_label, self.remaining_label):
            # Their text width as preferred, but shrink (clip) in a narrow window rather than widen it
            # past the screen (a minimum width of their own overrides the text's).
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            label.setMinimumWidth(1)
        self.controller.serverChanged.connect(lambda _: self._update_server_label())

    def _update_server_label(self) -> None:
        """The speech server's address while it runs, named by its text for a screen reader."""
        address = self.controller.server_address
        text = self.tr("Serving on {0}").format(address) if address else ""
        self.server_label.setText(text)
        self.server_label.setAccessibleName(text)
        self.server_label.setAccessibleDescription(self.tr("MioDesk's speech server for other apps"))
        self.server_label.setToolTip(self.tr("Other apps on this computer can use MioDesk's voices at "
                                             "http://{0}/v1 (Settings › Server)").format(address) if address else "")
        self.server_label.setVisible(bool(address))

    def _connect_controller(self) -> None:
        c = self.controller
        c.stateChanged.connect(self._update_transport)
        c.engineStateChanged.connect(self._engine_state)
        c.engineInfoChanged.connect(lambda *_: self._update_model_label())
        c.documentLoading.connect(self._document_loading)
        c.documentLoaded.connect(self._document_loaded)
        c.documentFailed.connect(self.show_error)
        c.utteranceStarted.connect(self._utterance_started)
        c.cursorRequested.connect(lambda offset: self.reader.set_cursor_offset(offset))
        c.statsChanged.connect(self._stats_changed)
        c.errorOccurred.connect(self.show_error)
        c.warningOccurred.connect(lambda message: self.show_message("warning", message))
        c.readingFinished.connect(self._reading_finished)
        c.voiceChanged.connect(lambda _: self._refresh_voices())
        c.documentResegmented.connect(self._document_resegmented)
        self.sleep_timer.notice.connect(self.show_status)

    # --- texts --------------------------------------------------------------------------------------

    def retranslate(self) -> None:
        a = self.actions_by_name
        labels = {
            "open": (self.tr("&Open…"), self.tr("Open a document")),
            "paste": (self.tr("&Paste and Read"), self.tr("Read the text on the clipboard")),
            "export": (self.tr("&Export Audio…"), self.tr("Save the document as an audiobook file")),
            "quit": (self.tr("&Quit"), self.tr("Quit MioDesk")),
            "play": (self.tr("&Play"), self.tr("Play (Space)")),
            "stop": (self.tr("&Stop"), self.tr("Stop (Esc)")),
            "read_from_cursor": (self.tr("Read from &Cursor"), self.tr("Start reading at the cursor")),
            "previous_sentence": (self.tr("Previous S&entence"), self.tr("Previous sentence (Alt+←)")),
            "next_sentence": (self.tr("&Next Sentence"), self.tr("Next sentence (Alt+→)")),
            "previous_chapter": (self.tr("Previous C&hapter"), self.tr("Previous chapter (Ctrl+↑)")),
            "next_chapter": (self.tr("Next &Chapter"), self.tr("Next chapter (Ctrl+↓)")),
            "preview": (self.tr("&Preview Voice"), self.tr("Hear a short sample of this voice")),
            "record_voice": (self.tr("&Record Voice…"), self.tr("Make a voice from your microphone")),
            "settings": (self.tr("&Settings…"), self.tr("Settings")),
            "faster": (self.tr("&Faster"), self.tr("Read faster")),
            "slower": (self.tr("S&lower"), self.tr("Read slower")),
            "outline": (self.tr("&Contents"), self.tr("Show the chapters and headings")),
            "highlight": (self.tr("&Highlight Sentence"), self.tr("Highlight the sentence being read")),
            "auto_scroll": (self.tr("&Auto-scroll"), self.tr("Keep the sentence being read in view")),
            "about": (self.tr("&About MioDesk"), self.tr("Versions and licences")),
            "show_logs": (self.tr("Show &Logs"), self.tr("Show the log file")),
            "system_info": (self.tr("&Copy System Info"), self.tr("Copy details for a bug report")),
            "models": (self.tr("&Models…"), self.tr("Download or choose speech models")),
            "readings": (self.tr("Readings &Dictionary…"), self.tr("Words the speech model should say differently")),
            "zoom_in": (self.tr("&Larger Text"), self.tr("Make the text larger (Ctrl++)")),
            "zoom_out": (self.tr("S&maller Text"), self.tr("Make the text smaller (Ctrl+-)")),
            "zoom_reset": (self.tr("&Normal Text Size"), self.tr("The text at its normal size (Ctrl+0)")),
        }
        for name, (text, tip) in labels.items():
            a[name].setText(text)
            a[name].setToolTip(tip)
            a[name].setStatusTip(tip)
        self.file_menu.setTitle(self.tr("&File"))
        self.recent_menu.setTitle(self.tr("Open &Recent"))
        self.play_menu.setTitle(self.tr("&Playback"))
        self.device_menu.setTitle(self.tr("Output &Device"))
        self.voice_menu.setTitle(self.tr("&Voice"))
        self.view_menu.setTitle(self.tr("V&iew"))
        self.tools_menu.setTitle(self.tr("&Tools"))
        self.help_menu.setTitle(self.tr("&Help"))
        self.outline.setAccessibleName(self.tr("Contents"))
        self.reader.setAccessibleName(self.tr("Document"))
        self.reader.setAccessibleDescription(
            self.tr("The text being read. Double-click or press Enter to read from a sentence."))
        # A label's accessible name is its text (the value a screen reader should hear); what the
        # value means goes in the description.
        self.model_label.setAccessibleDescription(self.tr("Model and device"))
        self.ttfa_label.setAccessibleDescription(self.tr("Time to first audio"))
        self.rtf_label.setAccessibleDescription(self.tr("Real-time factor"))
        self.remaining_label.setAccessibleDescription(self.tr("Time remaining"))
        self.busy.setAccessibleName(self.tr("Loading"))
        for name, button in self.transport.buttons.items():
            button.setAccessibleName(a[name].text().replace("&", ""))
        self.transport.preview_button.setAccessibleName(a["preview"].text().replace("&", ""))
        self._update_transport(self.controller.state)
        self._update_model_label()
        self._update_server_label()
        self._show_position()
        self._stats_changed(self.controller.last_stats)
        self._refresh_voices()
        self._refresh_recent()
        self._update_title()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def _update_title(self) -> None:
        document = self.controller.document
        self.setWindowTitle(f"{document.title} — MioDesk" if document else "MioDesk")

    # --- messages -----------------------------------------------------------------------------------

    def show_message(self, kind: str, text: str, action: str | None = None, handler=None) -> None:
        self._banner_handler = handler
        self.banner.show_message(kind, text, action)

    def show_error(self, text: str) -> None:
        log.info("shown to the user: %s", text)
        self.show_message("error", text)

    def show_status(self, text: str, timeout_ms: int = 5000) -> None:
        """A passing note in the status bar, spoken by the screen reader too."""
        self.statusBar().showMessage(text, timeout_ms)
        accessibility.announce(self, text)

    def _banner_action(self) -> None:
        handler, self._banner_handler = self._banner_handler, None
        self.banner.hide()
        if handler is not None:
            handler()

    # --- controller events ------------------------------------------------------------------------

    def _update_transport(self, state: str) -> None:
        previous, self._transport_state = self._transport_state, state
        if previous == "playing" and state == "paused":
            self._announce_paused()
        a = self.actions_by_name
        playing = state == "playing"
        a["play"].setIcon(icon("pause" if playing else "play"))
        a["play"].setText(self.tr("&Pause") if playing else self.tr("&Play"))
        a["play"].setToolTip(self.tr("Pause (Space)") if playing else self.tr("Play (Space)"))
        self.transport.buttons["play"].setAccessibleName(a["play"].text().replace("&", ""))
        has_text = self.controller.loaded is not None and bool(self.controller.loaded.utterances)
        for name in ("play", "previous_sentence", "next_sentence", "previous_chapter", "next_chapter",
                     "read_from_cursor", "export"):
            a[name].setEnabled(has_text)
        if state == "idle" and self.transport.buttons["stop"].hasFocus() and a["play"].isEnabled():
            self.transport.buttons["play"].setFocus()  # Stop is disabled next: keep the keyboard on Play
        a["stop"].setEnabled(state != "idle")
        if state == "loading":
            self.busy.show()
        elif self.controller.engine_state != "loading":
            self.busy.hide()
        if self.tray is not None:
            self.tray.update_state(state)

    def _engine_state(self, state: str) -> None:
        if state == "loading":
            self.busy.show()
            self.show_message("loading", self.tr("Loading the speech models… The first time takes a little longer."))
            self.statusBar().showMessage(self.tr("Loading models…"))
        else:
            self.busy.setVisible(self.controller.state == "loading")
            if self.banner.kind == "loading":
                self.banner.hide()
            self.statusBar().clearMessage()
        self._update_model_label()

    def _update_model_label(self) -> None:
        c = self.controller
        if c.engine_state == "ready":
            self.model_label.setText(self.tr("{0} · {1}").format(c.model_name(), c.provider_label()))
        elif c.engine_state == "loading":
            self.model_label.setText(self.tr("Loading models…"))
        elif c.engine_state == "failed":
            self.model_label.setText(self.tr("Models not loaded"))
        elif c.server_label():
            # Not loaded yet, but where the speech model will run is known already.
            self.model_label.setText(self.tr("Speech model on {0} · loads on first Play").format(c.server_label()))
        else:
            self.model_label.setText(self.tr("Models load on first Play"))

    def _document_loading(self, name: str) -> None:
        self.busy.show()
        self.statusBar().showMessage(self.tr("Opening {0}…").format(name))

    def _document_loaded(self, loaded: LoadedDocument) -> None:
        self.busy.setVisible(self.controller.engine_state == "loading")
        self.statusBar().clearMessage()
        if self.banner.kind != "loading":
            self.banner.hide()
        document = loaded.document
        self._utterance_count = len(loaded.utterances)
        self.reader.set_document(document)
        self._fill_outline(loaded)
        focused = QApplication.focusWidget()
        if focused is not None and self.empty_page.isAncestorOf(focused):
            # Otherwise hiding the page walks the focus through the voice list and the contents on its
            # way to the text, and a screen reader speaks each stop.
            focused.clearFocus()
        self.stack.setCurrentWidget(self.splitter)
        self._update_title()
        self._refresh_recent()
        self._refresh_voices()
        self._update_transport(self.controller.state)
        self._show_position("count")
        for warning in document.warnings[:3]:
            self.show_message("warning", warning)
        if not loaded.utterances:
            self.show_message("warning", self.tr("This document has no text to read."))
        if loaded.resume_offset:
            self.reader.set_cursor_offset(loaded.resume_offset)
            self.show_message(
                "info",
                self.tr("Welcome back: Play continues where you stopped."),
                self.tr("Start from the beginning"),
                self._restart_from_beginning,
            )
        self.reader.setFocus()

    def _document_resegmented(self, loaded: LoadedDocument) -> None:
        """The dialogue voice was turned on or off: the same text in other sentences."""
        self._utterance_count = len(loaded.utterances)
        self._show_position("count")

    def _restart_from_beginning(self) -> None:
        self.controller.position = 0
        self.reader.set_cursor_offset(0)

    def _fill_outline(self, loaded: LoadedDocument) -> None:
        self.outline.clear()
        document = loaded.document
        headings = [b for b in document.blocks if b.kind == "heading"][:3000]
        parents: list[tuple[int, QTreeWidgetItem]] = []
        if len(document.chapters) > 1 and len(headings) < len(document.chapters):
            for chapter in document.chapters:
                item = QTreeWidgetItem([" ".join(chapter.title.split()) or "…"])
                item.setData(0, Qt.ItemDataRole.UserRole, chapter.start)
                self.outline.addTopLevelItem(item)
        else:
            for block in headings:
                title = " ".join(document.text[block.start:block.end].split())[:120]
                item = QTreeWidgetItem([title])
                item.setData(0, Qt.ItemDataRole.UserRole, block.start)
                while parents and parents[-1][0] >= block.level:
                    parents.pop()
                if parents:
                    parents[-1][1].addChild(item)
                else:
                    self.outline.addTopLevelItem(item)
                parents.append((block.level, item))
        self.outline.expandAll()
        has_outline = self.outline.topLevelItemCount() > 0
        self.outline.setVisible(has_outline and self.settings.show_outline)

    def _outline_activated(self, item: QTreeWidgetItem) -> None:
        offset = item.data(0, Qt.ItemDataRole.UserRole)
        if offset is not None:
            self.controller.seek(int(offset))
            if self.controller.state == "idle":
                self.reader.set_cursor_offset(int(offset))

    def _utterance_started(self, index: int, start: int, end: int) -> None:
        self.reader.highlight(start, end)
        self._show_position("sentence", index)
        self._select_outline_at(start)
        loaded = self.controller.loaded
        if self.settings.announce_sentences and loaded is not None and index < len(loaded.utterances):
            accessibility.announce(self.reader, loaded.utterances[index].text)

    def _show_position(self, kind: str | None = None, index: int = 0) -> None:
        """The position label: "12 sentences", "Sentence 3 of 12" or "Finished" (kept to retranslate)."""
        if kind is not None:
            self._position = (kind, index)
        kind, index = self._position
        texts = {"count": self.tr("{0} sentences").format(self._utterance_count),
                 "sentence": self.tr("Sentence {0} of {1}").format(index + 1, self._utterance_count),
                 "finished": self.tr("Finished")}
        self.transport.position_label.setText(texts.get(kind, ""))

    def _select_outline_at(self, offset: int) -> None:
        best = None
        iterator = [self.outline.topLevelItem(i) for i in range(self.outline.topLevelItemCount())]
        while iterator:
            item = iterator.pop(0)
            assert item is not None  # every index is below the count
            start = item.data(0, Qt.ItemDataRole.UserRole)
            if start is not None and start <= offset:
                best = item
            iterator[0:0] = [item.child(i) for i in range(item.childCount())]
        if best is not None and self.outline.currentItem() is not best:
            self.outline.blockSignals(True)
            self.outline.setCurrentItem(best)
            self.outline.blockSignals(False)

    def _stats_changed(self, stats: dict) -> None:
        ttfa, rtf, remaining = stats.get("ttfa_s"), stats.get("rtf"), stats.get("remaining_s")
        self.ttfa_label.setText(self.tr("First audio {0:.2f} s").format(ttfa) if ttfa is not None else "")
        self.ttfa_label.setToolTip(self.tr("Time from Play to the first sound of this reading"))
        self.rtf_label.setText(self.tr("RTF {0:.2f}").format(rtf) if rtf else "")
        self.rtf_label.setToolTip(self.tr("Real-time factor: compute time per second of speech (below 1 keeps up)"))
        self.remaining_label.setText(
            self.tr("About {0} left").format(format_duration(remaining)) if remaining else "")
        for label in (self.ttfa_label, self.rtf_label, self.remaining_label):
            label.setVisible(bool(label.text()))

    def _reading_finished(self) -> None:
        self.reader.clear_highlight()
        self._show_position("finished")
        self.show_status(self.tr("Finished reading."))

    # --- commands -----------------------------------------------------------------------------------

    def toggle_play(self) -> None:
        state = self.controller.state
        if state == "idle":
            offset = self._start_offset()
            self.reader.follow_reading()
            self.controller.play(offset)
            return
        if state == "paused":
            self.reader.follow_reading()
        self.controller.toggle_play()

    def stop_reading(self) -> None:
        was_reading = self.controller.state != "idle"
        self.controller.stop()
        if was_reading:
            index = self._heard_index()
            accessibility.announce(self, self.tr("Stopped at sentence {0} of {1}.").format(
                index + 1, self._utterance_count) if index is not None else self.tr("Stopped."))

    def _announce_paused(self) -> None:
        """Pause from anywhere (window, tray, media key): say where reading stopped, which is also
        where the caret now is (ReaderView.highlight put it at the sentence's start)."""
        index = self._heard_index()
        accessibility.announce(self, self.tr("Paused at sentence {0} of {1}.").format(
            index + 1, self._utterance_count) if index is not None else self.tr("Paused."))

    def _heard_index(self) -> int | None:
        """The index of the sentence highlighted as heard, if any."""
        highlighted, loaded = self.reader.highlighted(), self.controller.loaded
        if highlighted is None or loaded is None:
            return None
        return next((i for i, u in enumerate(loaded.utterances) if (u.start, u.end) == highlighted), None)

    def _play_pause_from_keyboard(self) -> None:
        if self.actions_by_name["play"].isEnabled():
            self.toggle_play()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Space that no focused control used (a label, the window itself): play or pause.
        plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
        if event.key() == Qt.Key.Key_Space and plain:
            self._play_pause_from_keyboard()
            event.accept()
            return
        super().keyPressEvent(event)

    def _read_from(self, offset: int) -> None:
        self.reader.follow_reading()
        self.controller.seek_or_play(offset)

    def _start_offset(self) -> int | None:
        """Where Play starts: the caret if the reader moved it, else the remembered position."""
        return self.reader.cursor_offset() if self.reader.user_moved_cursor else None

    def read_from_cursor(self) -> None:
        self._read_from(self.reader.cursor_offset())

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        start = str(Path(self.settings.recent_files[0]).parent) if self.settings.recent_files else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Open a document"), start,
            self.tr("Documents ({0});;All files (*)").format(patterns))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        self.controller.open_file(path)

    def paste_and_read(self) -> bool:
        from miodesk.ui.clipboard import document_from_clipboard

        document = document_from_clipboard(QGuiApplication.clipboard(), title=self.tr("Clipboard"))
        if document is None:
            self.show_message("warning", self.tr("The clipboard holds no text to read."))
            return False
        self.controller.set_document(document)
        self.controller.play(0)
        return True

    def preview_voice(self) -> None:
        name = self.transport.voice_combo.currentData()
        if name:
            self.controller.preview_voice(name)

    def _voice_chosen(self, index: int) -> None:
        name = self.transport.voice_combo.itemData(index)
        if name and name != self._voice_shown:
            self.controller.set_voice(name)

    def _refresh_voices(self) -> None:
        combo = self.transport.voice_combo
        names = self.controller.voice_names()
        try:
            current = self.controller.voice_name() if names else ""
        except Exception:  # noqa: BLE001 - no voice: the combo says so
            current = ""
        self._voice_shown = current
        japanese = self.translations is not None and self.translations.language == "ja"
        # Per language, the list is the voice of the open document's language (the UI's with none open).
        if not self.controller.per_language_voices():
            about = self.tr("The voice that reads; a change applies from the next sentence")
        elif self.controller.language() == "ja":
            about = self.tr("The voice of the Japanese sentences; a change applies from the next sentence. "
                            "Settings › Voices has the voice of each language.")
        else:
            about = self.tr("The voice of the English sentences; a change applies from the next sentence. "
                            "Settings › Voices has the voice of each language.")
        combo.setToolTip(about)
        combo.setAccessibleDescription(about)
        combo.blockSignals(True)
        combo.clear()
        for name in names:
            if name in PRESET_LABELS:
                combo.addItem(voice_label(name, japanese), name)
                combo.setItemData(combo.count() - 1, self.tr(
                    "Official preset voice: audio made with it may not be used commercially."),
                    Qt.ItemDataRole.ToolTipRole)
            else:
                combo.addItem(name, name)
        if not names:
            combo.addItem(self.tr("No voices installed"), None)
        index = combo.findData(current)
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)
        self.actions_by_name["preview"].setEnabled(bool(names))

    def _nudge_speed(self, delta: float) -> None:
        slider = self.transport.speed_slider
        slider.setValue(slider.value() + round(delta * 100))
        # From a menu key the focus is elsewhere: nothing would tell a screen reader user the new speed.
        accessibility.announce(self, self.tr("Speed {0}").format(self.transport.speed_value.text()))

    def _toggle_outline(self, checked: bool) -> None:
        self.settings.show_outline = checked
        self.outline.setVisible(checked and self.outline.topLevelItemCount() > 0)
        self._save_settings()

    def _toggle_highlight(self, checked: bool) -> None:
        self.settings.highlight = checked
        self.reader.set_highlight_enabled(checked)
        self._save_settings()

    def _zoom(self, direction: int) -> None:
        """Ctrl+plus/minus/0 and Ctrl+wheel: the reader's text size, remembered in the settings."""
        from miodesk.settings import MAX_TEXT_SCALE, MIN_TEXT_SCALE
        from miodesk.ui.reader_view import TEXT_SCALE_STEP

        scale = 100 if direction == 0 else self.settings.text_scale + direction * TEXT_SCALE_STEP
        scale = min(MAX_TEXT_SCALE, max(MIN_TEXT_SCALE, scale))
        if scale != self.settings.text_scale:
            self.settings.text_scale = scale
            self._save_settings()
        self.reader.set_text_scale(scale)
        self.statusBar().showMessage(self.tr("Text size {0} %").format(scale), 2000)

    def _toggle_auto_scroll(self, checked: bool) -> None:
        self.settings.auto_scroll = checked
        self.reader.auto_scroll = checked
        self._save_settings()

    def _apply_view_settings(self) -> None:
        a = self.actions_by_name
        a["outline"].setChecked(self.settings.show_outline)
        a["highlight"].setChecked(self.settings.highlight)
        a["auto_scroll"].setChecked(self.settings.auto_scroll)
        self.reader.set_highlight_enabled(self.settings.highlight)
        self.reader.auto_scroll = self.settings.auto_scroll
        self.reader.set_text_scale(self.settings.text_scale)

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as error:
            self.show_error(self.tr("Cannot save the settings: {0}").format(error))

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def _fill_device_menu(self) -> None:
        from miodesk.ui.settings_dialog import output_devices

        self.device_menu.clear()
        group = QActionGroup(self.device_menu)
        for label, value in [(self.tr("System default"), "")] + [(n, n) for n in output_devices()]:
            action = self.device_menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(value == self.settings.audio_device)
            action.triggered.connect(lambda _=False, v=value: self.controller.set_audio_device(v))
            group.addAction(action)

    def open_settings(self) -> None:
        from miodesk.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self, voices=self.controller.voice_names(),
                                language=self.controller.language())
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: Settings) -> None:
        old = self.settings
        engine_fields = ("model_path", "codec_variant", "codec_path", "provider", "llm_threads", "codec_threads",
                         "llm_on_server", "llm_base_url", "llm_api_key", "llm_model")
        engine_changed = any(getattr(old, f) != getattr(new, f) for f in engine_fields)
        # The speech server (Settings › Server) starts, restarts or stops below; an engine reload stops it
        # first and starts it again on the new engine.
        device_changed = old.audio_device != new.audio_device
        language_changed = old.ui_language != new.ui_language
        voice_fields = ("voice_mode", "voice", "voice_ja", "voice_en", "dialogue_voice")
        voices_changed = any(getattr(old, f) != getattr(new, f) for f in voice_fields)
        pauses_changed = old.pauses() != new.pauses()
        if device_changed:
            self.controller.set_audio_device(new.audio_device)
        for name, value in new.to_json().items():
            if name not in ("recent_files", "window_geometry"):
                setattr(old, name, value)
        self._save_settings()
        if engine_changed:
            self.controller.reload_engine()
        self.controller.apply_server_settings()
        if self.global_reader is not None:
            self.global_reader.apply_settings()  # Settings › Shortcuts
        if language_changed and self.translations is not None:
            self.translations.apply(old.ui_language)
        if voices_changed or language_changed:  # with no document open, the UI's language picks the voice
            self.controller.apply_voice_settings()
        if pauses_changed:  # a reading in progress takes them from its next sentence
            self.controller.pipeline.set_pauses(new.pauses())
        self._apply_view_settings()

    def open_readings(self, surface: str = "") -> None:
        """Tools › Readings Dictionary; from the reader's menu with the selected word in a new entry."""
        from miodesk.ui.readings_dialog import open_readings_dialog

        self.readings_dialog = open_readings_dialog(self, self.controller.speak_text, surface)

    def open_export_dialog(self) -> None:
        from miodesk.ui.export_dialog import open_export_dialog

        open_export_dialog(self)

    def record_voice(self) -> None:
        from miodesk.ui.record_voice import RecordVoiceDialog

        dialog = RecordVoiceDialog(self.controller.voice_store, self._voice_encoder_factory, self)
        dialog.voiceSaved.connect(self._voice_saved)
        dialog.exec()

    def _voice_encoder_factory(self):
        """The dialog calls this off the UI thread when it first needs the encoder."""
        from miodesk.tts.voice_encoder import VoiceEncoder

        codec = self.settings.codec_folder()
        return VoiceEncoder(codec_dir=codec if codec.is_dir() else None)

    def _voice_saved(self, name: str) -> None:
        self.controller.set_voice(name)
        self._refresh_voices()
        self.show_status(self.tr("Voice “{0}” saved.").format(name))

    def open_first_run(self) -> bool:
        from miodesk.ui.first_run import open_first_run

        return open_first_run(self)

    def show_about(self) -> None:
        from miodesk.ui.help import AboutDialog

        AboutDialog(self).exec()

    def show_logs(self) -> None:
        from miodesk.ui.help import LogDialog

        LogDialog(self).exec()

    def copy_system_info(self) -> None:
        from miodesk.ui.help import copy_system_info

        self.statusBar().showMessage(self.tr("Collecting system information…"))
        copy_system_info(self)

    # --- drag and drop ------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if any(url.isLocalFile() for url in mime.urls()) or mime.hasText():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
        if files:
            self.open_path(files[0])
        elif mime.hasText() and mime.text().strip():
            from miodesk.text.documents import document_from_text

            self.controller.set_document(document_from_text(mime.text(), self.tr("Dropped text")))
        event.acceptProposedAction()

    # --- closing ------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quitting and self.settings.close_to_tray and self.tray is not None and self.tray.available():
            # Keep reading from the tray; the tray's Quit really quits.
            event.ignore()
            self.hide()
            self.tray.notify_hidden()
            return
        if self.export_dialog is not None and not self.export_dialog.confirm_quit():
            self._quitting = False  # the export goes on, and so does the app
            event.ignore()
            return
        self._shutdown()
        event.accept()
        self.quitRequested.emit()

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def _shutdown(self) -> None:
        self.settings.window_geometry = bytes(self.saveGeometry().toHex().data()).decode("ascii")
        self._save_settings()
        # Gone from the screen at once, even when the controller must wait for a model load to end.
        self.hide()
        if self.tray is not None:
            self.tray.hide()
        if self.export_dialog is not None:
            self.export_dialog.shutdown()  # its thread uses the engine, which must outlive it
        self.controller.shutdown()

    def show_window(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()
