"""Small widgets the window is built from: the message banner, the empty page, the transport bar."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from miodesk.ui import accessibility
from miodesk.ui.assets import app_icon, icon, set_label_icon
from miodesk.ui.layouts import WrapLayout
from miodesk.ui.theme import banner_style, follow_palette

# The hue of each kind of message; theme.banner_style derives a tint, a stripe and readable text from
# it for the current palette (light or dark).
_BANNER_STYLES = {
    "info": QColor("#2f5bd3"),
    "loading": QColor("#2f5bd3"),
    "warning": QColor("#c98a00"),
    "error": QColor("#c62828"),
}


class MessageBanner(QFrame):
    """A strip above the text for errors, notices and the model-loading state; never a popup."""

    actionTriggered = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.kind = "info"
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 8, 8)
        layout.setSpacing(10)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(90)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.action = QPushButton(self)
        self.action.clicked.connect(self.actionTriggered)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.busy)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(self.close_button)
        self.retranslate()
        self.hide()

    def retranslate(self) -> None:
        self.close_button.setToolTip(self.tr("Dismiss"))
        self.close_button.setAccessibleName(self.tr("Dismiss message"))
        self.setAccessibleName(self.tr("Message"))

    def show_message(self, kind: str, text: str, action: str | None = None) -> None:
        self.kind = kind
        hue = _BANNER_STYLES.get(kind, _BANNER_STYLES["info"])
        follow_palette(self, lambda palette: banner_style(hue, palette))
        self.label.setText(text)  # its accessible name is this text
        self.busy.setVisible(kind == "loading")
        self.close_button.setVisible(kind != "loading")
        self.action.setVisible(action is not None)
        if action:
            self.action.setText(action)
        self.show()
        # A banner does not take focus, so a screen reader would not notice it: say it.
        accessibility.announce(self, f"{text} {action}" if action else text, urgent=kind == "error")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


EMPTY_PAGE_LOGO_MIN_HEIGHT = 400


class EmptyPage(QWidget):
    """What the window shows before a document is open: what to do, with two big buttons."""

    def __init__(self, open_action: QAction, paste_action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyPage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(self)
        layout.addStretch(3)
        self.logo = logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(QSize(96, 96), self.devicePixelRatioF()))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(self)
        self.title.setObjectName("emptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle = QLabel(self)
        self.subtitle.setObjectName("emptySubtitle")
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.open_button = QPushButton(self)
        self.open_button.setObjectName("primaryButton")
        self.open_button.setIcon(icon("open"))
        self.open_button.clicked.connect(open_action.trigger)
        self.paste_button = QPushButton(self)
        self.paste_button.setIcon(icon("paste"))
        self.paste_button.clicked.connect(paste_action.trigger)
        for button in (self.open_button, self.paste_button):
            button.setMinimumHeight(40)
            button.setMinimumWidth(180)
            button.setIconSize(QSize(20, 20))
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.hint = QLabel(self)
        self.hint.setObjectName("emptyHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        layout.addWidget(logo)
        layout.addSpacing(12)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(20)
        layout.addLayout(buttons)
        layout.addSpacing(16)
        layout.addWidget(self.hint)
        layout.addStretch(4)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.tr("Read anything aloud"))
        self.subtitle.setText(
            self.tr("Open a document or paste text, press Play, and follow the highlighted sentence."))
        self.open_button.setText(self.tr("Open a file…"))
        self.paste_button.setText(self.tr("Paste and read"))
        self.hint.setText(
            self.tr("Text, Markdown, HTML, EPUB, PDF and Word files. You can also drop a file on this window.")
        )

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        # A short window (200 % scale on a laptop) keeps the words and buttons; the logo goes first.
        self.logo.setVisible(event.size().height() >= EMPTY_PAGE_LOGO_MIN_HEIGHT)
        super().resizeEvent(event)


class ActivateOnEnter(QObject):
    """Enter and Return press a focused button, as Space does (Qt buttons outside dialogs ignore them)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and isinstance(watched, QAbstractButton)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            watched.animateClick()
            return True
        return False


def transport_button(action: QAction, size: int = 20, parent: QWidget | None = None) -> QToolButton:
    button = QToolButton(parent)
    button.setDefaultAction(action)
    button.setIconSize(QSize(size, size))
    button.setAutoRaise(True)
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    return button


class TransportBar(QFrame):
    """Play controls in the middle, voice/speed/volume on the right: the bottom of the window."""

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transportBar")
        # Three groups in one row when the window is wide; voice and then speed/volume wrap onto further
        # rows when the bar is narrower (a 1280×800 screen at 200 % is 640×400).
        layout = WrapLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(6)
        self.play_group = QWidget(self)
        play_row = QHBoxLayout(self.play_group)
        play_row.setContentsMargins(0, 0, 0, 0)
        play_row.setSpacing(4)
        self.buttons: dict[str, QToolButton] = {}
        for name in ("previous_chapter", "previous_sentence", "play", "next_sentence", "next_chapter", "stop"):
            button = transport_button(actions[name], 34 if name == "play" else 20, self.play_group)
            if name == "play":
                button.setObjectName("playButton")
                button.setFixedSize(QSize(52, 52))
            self.buttons[name] = button
            play_row.addWidget(button)
        play_row.addSpacing(12)
        self.position_label = QLabel(self.play_group)
        self.position_label.setObjectName("positionLabel")
        play_row.addWidget(self.position_label)
        play_row.addStretch(1)
        layout.addWidget(self.play_group)

        self.voice_group = QWidget(self)
        voice_row = QHBoxLayout(self.voice_group)
        voice_row.setContentsMargins(0, 0, 0, 0)
        voice_row.setSpacing(6)
        self.voice_label = QLabel(self.voice_group)
        self.voice_combo = QComboBox(self.voice_group)
        self.voice_combo.setObjectName("voiceCombo")
        self.voice_combo.setMinimumWidth(150)
        self.voice_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.voice_label.setBuddy(self.voice_combo)
        self.preview_button = transport_button(actions["preview"], 20, self.voice_group)
        voice_row.addWidget(self.voice_label)
        voice_row.addWidget(self.voice_combo)
        voice_row.addWidget(self.preview_button)
        layout.addWidget(self.voice_group)

        self.speed_group = QWidget(self)
        speed_row = QHBoxLayout(self.speed_group)
        speed_row.setContentsMargins(0, 0, 0, 0)
        speed_row.setSpacing(6)
        self.speed_label = QLabel(self.speed_group)
        self.speed_slider = QSlider(Qt.Orientation.Horizontal, self.speed_group)
        self.speed_slider.setObjectName("speedSlider")
        self.speed_slider.setRange(50, 200)
        self.speed_slider.setSingleStep(5)
        self.speed_slider.setPageStep(25)
        self.speed_slider.setFixedWidth(100)
        self.speed_label.setBuddy(self.speed_slider)
        self.speed_value = QLabel("1.00×", self.speed_group)
        self.speed_value.setMinimumWidth(42)
        speed_row.addWidget(self.speed_label)
        speed_row.addWidget(self.speed_slider)
        speed_row.addWidget(self.speed_value)
        speed_row.addSpacing(10)

        self.volume_icon = QLabel(self.speed_group)
        set_label_icon(self.volume_icon, "volume", 18)  # re-coloured with the palette
        self.volume_slider = QSlider(Qt.Orientation.Horizontal, self.speed_group)
        self.volume_slider.setObjectName("volumeSlider")
        self.volume_slider.setRange(0, 100)
        self.volume_slider.setSingleStep(5)
        self.volume_slider.setFixedWidth(90)
        speed_row.addWidget(self.volume_icon)
        speed_row.addWidget(self.volume_slider)
        layout.addWidget(self.speed_group)
        self.speed_slider.valueChanged.connect(lambda value: self.speed_value.setText(f"{value / 100:.2f}×"))
        self.retranslate()

    def retranslate(self) -> None:
        # Alt+V is the Voice menu: the label takes C. Names are the visible labels: the slider gets its
        # label's (buddy), a combo box would be named by its current item instead.
        self.voice_label.setText(self.tr("Voi&ce"))
        self.voice_combo.setAccessibleName(self.voice_label.text().replace("&", ""))
        self.voice_combo.setToolTip(self.tr("The voice that reads; a change applies from the next sentence"))
        self.speed_label.setText(self.tr("&Speed"))
        self.speed_slider.setToolTip(self.tr("Speaking rate (the pitch stays the same)"))
        self.speed_value.setAccessibleDescription(self.tr("Speed"))
        self.volume_slider.setAccessibleName(self.tr("Volume"))  # its label is an icon
        self.volume_slider.setToolTip(self.tr("Volume"))
        self.position_label.setAccessibleDescription(self.tr("Position"))
        self.setAccessibleName(self.tr("Playback controls"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


def open_window_modal(dialog: QDialog) -> None:
    """What QDialog.open() does (window-modal, returns at once; `finished` brings the answer), under a
    name that cannot be mistaken for opening a file."""
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.show()
