"""The document as it is read: headings set apart, the audible sentence highlighted and kept in view.

A QPlainTextEdit (its layout is built for very long texts) shows `Document.text` unchanged, so a
character offset from the engine maps straight to a position in the view. The only translation is
UTF-16: Qt counts characters outside the BMP (emoji, rare kanji) twice, Python once.

Assistive technology follows text through the caret and the selection, not through paint: while
reading, the sentence being heard is the text cursor's selection with the caret at its start (what
braille displays and screen-reader review follow; after a pause the caret is where reading stopped).
That selection is drawn transparent so the visible highlight stays the extra selection, which the
user can switch off. A caret the user moves while reading detaches the selection until the next
Play, so reviewing text is never yanked back; auto-scroll only scrolls, it never moves the caret.
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
    QKeySequence,
    QMouseEvent,
    QPalette,
    QTextCharFormat,
    QTextCursor,
    QWheelEvent,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from miodesk.text.documents import Document
from miodesk.ui.theme import reading_highlight

log = logging.getLogger(__name__)

MAX_FORMATTED_HEADINGS = 5000  # beyond this, headings stay plain (formatting is not free on huge books)
HEADING_SCALE = {1: 1.6, 2: 1.35, 3: 1.2}
READING_COLUMN_PX = 760  # comfortable line length; wider windows get side margins
JAPANESE_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "Yu Gothic UI", "Meiryo UI", "Hiragino Sans", "IPAexGothic")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_KEY = QKeySequence.StandardKey
# The platform's own keys for moving through and selecting text (macOS: Option+Left is a word):
# the reader keeps them even when a window shortcut uses the same keys.
TEXT_NAVIGATION_KEYS = (
    _KEY.MoveToNextChar, _KEY.MoveToPreviousChar, _KEY.MoveToNextWord, _KEY.MoveToPreviousWord,
    _KEY.MoveToNextLine, _KEY.MoveToPreviousLine, _KEY.MoveToStartOfLine, _KEY.MoveToEndOfLine,
    _KEY.MoveToStartOfBlock, _KEY.MoveToEndOfBlock, _KEY.MoveToStartOfDocument, _KEY.MoveToEndOfDocument,
    _KEY.MoveToNextPage, _KEY.MoveToPreviousPage, _KEY.SelectNextChar, _KEY.SelectPreviousChar,
    _KEY.SelectNextWord, _KEY.SelectPreviousWord, _KEY.SelectNextLine, _KEY.SelectPreviousLine,
    _KEY.SelectStartOfLine, _KEY.SelectEndOfLine, _KEY.SelectStartOfBlock, _KEY.SelectEndOfBlock,
    _KEY.SelectStartOfDocument, _KEY.SelectEndOfDocument, _KEY.SelectAll, _KEY.Copy,
)
TEXT_SCALE_STEP = 10  # percent per Ctrl+plus / Ctrl+minus
MENU_WORD_CHARS = 24  # a longer selection is shortened in the context menu's "Add Reading for …"
BASE_FONT_SCALE = 1.3  # the reading text at 100 % is this much larger than the UI font


class ReaderView(QPlainTextEdit):
    readFromRequested = Signal(int)  # python character offset
    playPauseRequested = Signal()  # Space in the text (buttons and lists keep Space for themselves)
    zoomRequested = Signal(int)  # +1 larger, -1 smaller (Ctrl+wheel)
    addReadingRequested = Signal(str)  # the selected word, for the readings dictionary

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
        self._base_point_size = max(self.font().pointSizeF(), 10.0) * BASE_FONT_SCALE
        self.text_scale = 100
        self._apply_font()
        self.document().setDocumentMargin(28)
        self.highlight_enabled = True
        self.auto_scroll = True
        self._document: Document | None = None
        self._astral: np.ndarray | None = None  # python offsets of non-BMP characters, if any
        self._highlight: tuple[int, int] | None = None
        self._selection_follows_reading = True  # False once the user moves the caret while reading
        self._updating_palette = False
        self.setCursorWidth(2)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._programmatic = False
        self.user_moved_cursor = False  # the reader put the caret somewhere: Play starts there
        self.cursorPositionChanged.connect(self._cursor_moved)
        self.selectionChanged.connect(self._cursor_moved)

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
            # setPlainText gives the whole new text the caret's character format (Qt keeps it for
            # typing), and the caret usually sits on the last document's heading: every paragraph
            # would be large and bold. An empty document gives the caret the plain format first.
            self.document().clear()
            self.setPlainText(text)
            if document is not None:
                self._format_headings(document)
            self.moveCursor(QTextCursor.MoveOperation.Start)
        finally:
            self._programmatic = False
        self.user_moved_cursor = False

    def _cursor_moved(self) -> None:
        if not self._programmatic and not self.user_moved_cursor:
            self.user_moved_cursor = True
            self._selection_follows_reading = False
            self._update_selection_colours()  # the user's own selection is drawn as usual

    # --- text size ----------------------------------------------------------------------------------

    def _apply_font(self) -> None:
        font = QFont(self.font())
        font.setPointSizeF(self._base_point_size * self.text_scale / 100)
        # Japanese glyph forms for kanji whatever the system's first CJK fallback is.
        font.setFamilies([QFont().family(), *JAPANESE_FONTS])
        self.setFont(font)

    def set_text_scale(self, percent: int) -> None:
        """The reading text at `percent` of its default size; headings keep their proportions."""
        if percent == self.text_scale:
            return
        self.text_scale = percent
        self._apply_font()
        if self._document is not None:
            self._format_headings(self._document)
        self.ensureCursorVisible()  # the page reflows under the caret: keep its line in view

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
        cursor.setPosition(self._clamped(offset))
        self._set_cursor_quietly(cursor)
        if center:
            self.centerCursor()

    def _clamped(self, offset: int) -> int:
        return min(self.to_qt(offset), self.document().characterCount() - 1)

    def _set_cursor_quietly(self, cursor: QTextCursor) -> None:
        self._programmatic = True
        try:
            self.setTextCursor(cursor)
        finally:
            self._programmatic = False
        self.user_moved_cursor = False

    # --- highlight --------------------------------------------------------------------------------

    def highlight_colors(self) -> tuple[QColor, QColor]:
        """(background, text) of the sentence heard, chosen for contrast in this palette."""
        return reading_highlight(self.palette())

    def highlight(self, start: int, end: int) -> None:
        """Mark the sentence now audible; keep it in view if auto-scroll is on."""
        self._highlight = (start, end)
        self._apply_highlight()
        if self._selection_follows_reading:
            self._select_sentence(start, end)
        if self.auto_scroll:
            self._scroll_to(start)

    def follow_reading(self) -> None:
        """Play, resume or read-from: the selection follows the sentence being heard again."""
        self._selection_follows_reading = True
        self.user_moved_cursor = False

    def _select_sentence(self, start: int, end: int) -> None:
        """The sentence becomes the accessible selection, the caret at its start (where Play resumes)."""
        scroll = self.verticalScrollBar().value()
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._clamped(end))
        cursor.setPosition(self._clamped(start), QTextCursor.MoveMode.KeepAnchor)
        self._set_cursor_quietly(cursor)
        # setTextCursor scrolls the caret into view; only auto-scroll may move the page.
        self.verticalScrollBar().setValue(scroll)
        self._update_selection_colours()

    def clear_highlight(self) -> None:
        self._highlight = None
        self.setExtraSelections([])
        cursor = self.textCursor()
        if self._selection_follows_reading and cursor.hasSelection():
            cursor.clearSelection()  # the caret stays where the last sentence began
            scroll = self.verticalScrollBar().value()
            self._set_cursor_quietly(cursor)
            self.verticalScrollBar().setValue(scroll)
        self._update_selection_colours()

    def _reading_selection_shown(self) -> bool:
        return self._highlight is not None and self._selection_follows_reading and self.textCursor().hasSelection()

    def _update_selection_colours(self) -> None:
        """The sentence selection is for assistive technology: transparent, over the visible highlight.

        Any other selection (the user's own) is drawn in the palette's usual colours.
        """
        parent = self.parentWidget()
        inherited = parent.palette() if parent is not None else QPalette()
        palette = QPalette(self.palette())
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            if self._reading_selection_shown():
                # Drawn over the highlight: its text colour must be the highlight's (contrast).
                text = reading_highlight(inherited)[1] if self.highlight_enabled else \
                    inherited.color(group, QPalette.ColorRole.Text)
                palette.setColor(group, QPalette.ColorRole.Highlight, QColor(0, 0, 0, 0))
                palette.setColor(group, QPalette.ColorRole.HighlightedText, text)
            else:
                for role in (QPalette.ColorRole.Highlight, QPalette.ColorRole.HighlightedText):
                    palette.setColor(group, role, inherited.color(group, role))
        if palette != self.palette():
            self._updating_palette = True
            try:
                self.setPalette(palette)
            finally:
                self._updating_palette = False

    def highlighted(self) -> tuple[int, int] | None:
        return self._highlight

    def set_highlight_enabled(self, enabled: bool) -> None:
        self.highlight_enabled = enabled
        self._apply_highlight()
        self._update_selection_colours()

    def _apply_highlight(self) -> None:
        if self._highlight is None or not self.highlight_enabled:
            self.setExtraSelections([])
            return
        start, end = self._highlight
        selection = QTextEdit.ExtraSelection()
        background, text = self.highlight_colors()
        selection.format.setBackground(background)
        selection.format.setForeground(text)
        cursor = QTextCursor(self.document())
        cursor.setPosition(self.to_qt(start))
        cursor.setPosition(self.to_qt(end), QTextCursor.MoveMode.KeepAnchor)
        selection.cursor = cursor
        self.setExtraSelections([selection])

    def _scroll_to(self, offset: int) -> None:
        """Bring `offset` to the middle of the page by scrolling alone (the caret stays where it is)."""
        target = QTextCursor(self.document())
        target.setPosition(self._clamped(offset))
        rect = self.cursorRect(target)
        height = self.viewport().height()
        # Only scroll when the sentence leaves the comfortable band: a jumpy page is hard to read.
        if rect.top() < height * 0.12 or rect.bottom() > height * 0.7:
            bar = self.verticalScrollBar()
            line = max(1, self.fontMetrics().lineSpacing())
            # QPlainTextEdit scrolls by layout lines, not pixels; lines differ in height (headings),
            # so a few steps bring the target's line to the middle.
            for _ in range(4):
                step = round((self.cursorRect(target).center().y() - height / 2) / line)
                before = bar.value()
                bar.setValue(before + step)
                if step == 0 or bar.value() == before:
                    break

    # --- input ------------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if any(event.matches(key) for key in TEXT_NAVIGATION_KEYS):
                event.accept()  # the text's own navigation wins over a window shortcut on the same keys
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and plain:
            self.readFromRequested.emit(self.cursor_offset())
            return
        if event.key() == Qt.Key.Key_Space and plain:
            self.playPauseRequested.emit()
            return
        if self._reading_selection_shown() and not event.matches(QKeySequence.StandardKey.Copy):
            # Review starts at the caret (the sentence's start): Right is the next character, not the
            # far end of the sentence as it would be from a selection of the user's own.
            cursor = self.textCursor()
            cursor.clearSelection()
            self._set_cursor_quietly(cursor)
        super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            # The window's text size (saved, with the menu's Ctrl+plus/minus), not Qt's own zoom.
            delta = event.angleDelta().y()
            if delta:
                self.zoomRequested.emit(1 if delta > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._updating_palette:
            self._update_selection_colours()  # a new theme: the selection colours follow it
            self._apply_highlight()

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
        word = self.selected_word()
        if word:
            shown = word if len(word) <= MENU_WORD_CHARS else word[: MENU_WORD_CHARS - 1] + "…"
            add = menu.addAction(self.tr("Add Reading for “{0}”…").format(shown))
            add.triggered.connect(lambda: self.addReadingRequested.emit(word))
            menu.insertAction(menu.actions()[1], add)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def selected_word(self) -> str:
        """The user's own selection when it can be a dictionary word (one line, not too long), else "".

        The sentence selected while reading is for assistive technology, not the user's choice."""
        from miodesk.text.readings import MAX_SURFACE_CHARS

        cursor = self.textCursor()
        if not cursor.hasSelection() or self._reading_selection_shown():
            return ""
        text = cursor.selectedText().strip()
        if "\u2029" in text or "\n" in text or len(text) > MAX_SURFACE_CHARS:
            return ""
        return text

    def resizeEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        # A centred reading column on wide windows: set the margins first so the text is laid out
        # (wrapped) for the narrower viewport.
        side = max(0, (self.width() - READING_COLUMN_PX) // 2)
        self.setViewportMargins(side, 0, side, 0)
        super().resizeEvent(event)
