"""A document opened in a window that already shows one looks as it does in a fresh window (Xvfb).

Headings are large and bold, paragraphs plain, whatever the window showed before: another Markdown
file, the same file again, then pasted text or a plain-text file.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_fixtures import SAMPLE_EN, SAMPLE_JA, write_sample
from PySide6.QtGui import QFont, QGuiApplication, QImage, QTextCursor
from PySide6.QtWidgets import QApplication

from miodesk.text.documents import Document
from miodesk.ui.reader_view import ReaderView

PLAIN_TEXT = """Notes for the trip

Pack a warm coat. The evening wind by the sea is cold.

Buy bread at the bakery near the station before it closes at six.
"""


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded.document


def block_looks(view: ReaderView, document: Document) -> list[tuple[str, int, float]]:
    """(kind, weight, size relative to the view's font) of each block's first and last character."""
    base = view.font().pointSizeF()
    looks = []
    for block in document.blocks:
        for position in (view.to_qt(block.start) + 1, view.to_qt(block.end)):
            cursor = QTextCursor(view.document())
            cursor.setPosition(position)  # the format of the character before the caret
            char = cursor.charFormat()
            size = char.fontPointSize() or base  # no size of its own: the view's font
            looks.append((block.kind, char.fontWeight(), round(size / base, 2)))
    return looks


def fresh_looks(document: Document, text_scale: int) -> list[tuple[str, int, float]]:
    fresh = ReaderView()
    try:
        fresh.set_text_scale(text_scale)
        fresh.set_document(document)
        return block_looks(fresh, document)
    finally:
        fresh.deleteLater()


def assert_looks_fresh(view: ReaderView, document: Document) -> None:
    looks = block_looks(view, document)
    assert looks == fresh_looks(document, view.text_scale)
    plain = {(weight, size) for kind, weight, size in looks if kind != "heading"}
    assert plain == {(QFont.Weight.Normal, 1.0)}, plain  # body text: the view's own font, not bold
    heading_sizes = [size for kind, weight, size in looks if kind == "heading"]
    assert all(size > 1.0 for size in heading_sizes)


def reader_image(view: ReaderView) -> np.ndarray:
    QApplication.processEvents()
    image = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return pixels.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 4].copy()


@pytest.mark.parametrize("first", [SAMPLE_EN, SAMPLE_JA], ids=["after-another-markdown", "same-file-again"])
def test_second_markdown_document_looks_as_in_a_fresh_window(app, qtbot, tmp_path, first):
    window = app.window
    first_path = write_sample(tmp_path / "first.md", first)
    open_document(qtbot, app, first_path)
    first_look = reader_image(window.reader)
    second_path = first_path if first == SAMPLE_JA else write_sample(tmp_path / "second.md", SAMPLE_JA)
    japanese = open_document(qtbot, app, second_path)  # File › Open (or Recent) again
    window.grab().save(str(tmp_path / "second.png"))
    assert_looks_fresh(window.reader, japanese)
    if first == SAMPLE_JA:
        # The same text shown again: the same picture (the blinking caret aside).
        again = reader_image(window.reader)
        assert again.shape == first_look.shape  # a taller text would bring a scroll bar
        differs = np.any(again != first_look, axis=-1)
        assert differs.mean() < 0.002, differs.mean()


def test_plain_text_file_after_markdown_is_plain(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    notes = open_document(qtbot, app, write_sample(tmp_path / "notes.txt", PLAIN_TEXT))
    window.grab().save(str(tmp_path / "second.png"))
    assert not any(block.kind == "heading" for block in notes.blocks)
    assert_looks_fresh(window.reader, notes)


def test_pasted_text_after_markdown_is_plain(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    QGuiApplication.clipboard().setText(PLAIN_TEXT)
    with qtbot.waitSignal(controller.documentLoaded, timeout=20000):
        window.actions_by_name["paste"].trigger()  # Paste and Read: shows the text and starts reading
    window.actions_by_name["stop"].trigger()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=20000)
    pasted = controller.loaded.document
    window.grab().save(str(tmp_path / "second.png"))
    assert pasted.source is None and pasted.text.startswith("Notes for the trip")
    assert_looks_fresh(window.reader, pasted)
