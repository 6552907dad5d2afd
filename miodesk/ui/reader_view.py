"""The document as it is read: headings set apart, the audible sentence highlighted and kept in view.

A QPlainTextEdit (its layout is built for very long texts) shows `Document.text` unchanged, so a
character offset from the engine maps straight to a position in the view. The only translation is
UTF-16: Qt counts characters outside the BMP (emoji, rare kanji) twice, Python once.
"""

from __future__ import annotations

import logging
import re

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPalette,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from miodesk.text.documents import Document

log = logging.getLogger(__name__)

MAX_FORMATTED_HEADINGS = 5000  # beyond this, headings stay plain (formatting is not free on huge books)
HEADING_SCALE = {1: 1.6, 2: 1.35, 3: 1.2}
READING_COLUMN_PX = 760  # comfortable line length; wider windows get side margins
JAPANESE_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "Yu Gothic UI", "Meiryo UI", "Hiragino Sans", "IPAexGothic")
HIGHLIGHT_LIGHT = "#ffe08a"
HIGHLIGHT_DARK = "#6b5a1e"
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Keys the window's transport shortcuts own even while the text has focus.
_TRANSPORT_KEYS = {Qt.Key.Key_Space, Qt.Key.Key_Left, Qt.Key.Key_Right}


class ReaderView(QPlainTextEdit):
    readFromRequested = Signal(int)  # python character offset

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readerView")
        self.setReadOnly(True)
        # Read-only but navigable: the caret marks where Play starts.
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF(), 10.0) * 1.3)
        # Japanese glyph forms for kanji whatever the system's first CJK fallback is.
        font.setFamilies([font.family(), *JAPANESE_FONTS])
        self.setFont(font)
        self.document().setDocumentMargin(28)
        self.highlight_enabled = True
        self.auto_scroll = True
        self._document: Document | None = None
        self._astral: np.ndarray | None = None  # python offsets of non-BMP characters, if any
        self._highlight: tuple[int, int] | None = None
        self.setCursorWidth(2)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._programmatic = False
        self.user_moved_cursor = False  # the reader put the caret somewhere: Play starts there
        self.cursorPositionChanged.connect(self._cursor_moved)

    # --- content ----------------------------------------------------------------------------------

    def set_document(self, document: Document | None) -> None:
        self._document = document
        self._highlight = None
        self.setExtraSelections([])
        text = document.text if document else ""
        astral = [match.start() for match in _ASTRAL.finditer(text)]
        self._astral = np.asarray(astral, dtype=np.int64) if astral else None
        self._programmatic = True
        try:
            self.setPlainText(text)
            if document is not None:
                self._format_headings(document)
            self.moveCursor(QTextCursor.MoveOperation.Start)
        finally:
            self._programmatic = False
        self.user_moved_cursor = False

    def _cursor_moved(self) -> None:
        if not self._programmatic:
            self.user_moved_cursor = True

    def _format_headings(self, document: Document) -> None:
        headings = [block for block in document.blocks if block.kind == "heading"][:MAX_FORMATTED_HEADINGS]
        if not headings:
            return
        base = self.font().pointSizeF()
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        for block in headings:
            fmt = QTextCharFormat()
            fmt.setFontWeight(QFont.Weight.Bold)
            fmt.setFontPointSize(base * HEADING_SCALE.get(block.level, 1.1))
            cursor.setPosition(self.to_qt(block.start))
            cursor.setPosition(self.to_qt(block.end), QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(fmt)
        cursor.endEditBlock()

    # --- offsets ----------------------------------------------------------------------------------

    def to_qt(self, offset: int) -> int:
        if self._astral is None:
            return offset
        return offset + int(np.searchsorted(self._astral, offset))

    def from_qt(self, position: int) -> int:
        if self._astral is None:
            return position
        # Python offset p maps to p + (#astral < p); invert by searching the mapped values.
        mapped = self._astral + np.arange(len(self._astral))
        return position - int(np.searchsorted(mapped, position, side="left"))

    def cursor_offset(self) -> int:
        return self.from_qt(self.textCursor().position())

    def set_cursor_offset(self, offset: int, center: bool = True) -> None:
        cursor = self.textCursor()
        cursor.setPosition(min(self.to_qt(offset), self.document().characterCount() - 1))
        self._set_cursor_quietly(cursor)
        if center:
            self.centerCursor()

    def _set_cursor_quietly(self, cursor: QTextCursor) -> None:
        self._programmatic = True
        try:
            self.setTextCursor(cursor)
        finally:
            self._programmatic = False
        self.user_moved_cursor = False

    # --- highlight --------------------------------------------------------------------------------

    def highlight_color(self) -> QColor:
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        return QColor(HIGHLIGHT_DARK if dark else HIGHLIGHT_LIGHT)

    def highlight(self, start: int, end: int) -> None:
        """Mark the sentence now audible; keep it in view if auto-scroll is on."""
        self._highlight = (start, end)
        self._apply_highlight()
        if self.auto_scroll:
            self._scroll_to(start)

    def clear_highlight(self) -> None:
        self._highlight = None
        self.setExtraSelections([])

    def highlighted(self) -> tuple[int, int] | None:
        return self._highlight

    def set_highlight_enabled(self, enabled: bool) -> None:
        self.highlight_enabled = enabled
        self._apply_highlight()

    def _apply_highlight(self) -> None:
        if self._highlight is None or not self.highlight_enabled:
            self.setExtraSelections([])
            return
        start, end = self._highlight
        selection = QTextEdit.ExtraSelection()
        selection.format.setBackground(self.highlight_color())
        cursor = QTextCursor(self.document())
        cursor.setPosition(self.to_qt(start))
        cursor.setPosition(self.to_qt(end), QTextCursor.MoveMode.KeepAnchor)
        selection.cursor = cursor
        self.setExtraSelections([selection])

    def _scroll_to(self, offset: int) -> None:
        target = QTextCursor(self.document())
        target.setPosition(self.to_qt(offset))
        rect = self.cursorRect(target)
        height = self.viewport().height()
        # Only scroll when the sentence leaves the comfortable band: a jumpy page is hard to read.
        if rect.top() < height * 0.12 or rect.bottom() > height * 0.7:
            self._set_cursor_quietly(target)
            self.centerCursor()

    # --- input ------------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if event.key() in _TRANSPORT_KEYS and event.modifiers() in (
                Qt.KeyboardModifier.NoModifier,
                Qt.KeyboardModifier.KeypadModifier,
            ):
                event.ignore()  # let the window's Play/Pause and sentence shortcuts have them
                return False
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            self.readFromRequested.emit(self.cursor_offset())
            return
        super().keyPressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        cursor = self.cursorForPosition(event.position().toPoint())
        self.setTextCursor(cursor)
        self.readFromRequested.emit(self.from_qt(cursor.position()))

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.createStandardContextMenu(event.pos())
        position = self.from_qt(self.cursorForPosition(event.pos()).position())
        read = menu.addAction(self.tr("Read from here"))
        read.triggered.connect(lambda: self.readFromRequested.emit(position))
        menu.insertAction(menu.actions()[0], read)
        menu.insertSeparator(menu.actions()[1])
        menu.exec(event.globalPos())
        menu.deleteLater()

    def resizeEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        # A centred reading column on wide windows: set the margins first so the text is laid out
        # (wrapped) for the narrower viewport.
        side = max(0, (self.width() - READING_COLUMN_PX) // 2)
        self.setViewportMargins(side, 0, side, 0)
        super().resizeEvent(event)
