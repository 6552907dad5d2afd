"""The clipboard loader on a real (offscreen) Qt clipboard."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QMimeData  # noqa: E402

from miodesk.ui.clipboard import document_from_clipboard  # noqa: E402


@pytest.fixture
def clipboard(qapp):
    board = qapp.clipboard()
    yield board
    board.clear()


def test_html_is_preferred(clipboard) -> None:
    mime = QMimeData()
    mime.setHtml("<h1>見出し</h1><p>本文です。<script>x()</script></p>")
    mime.setText("見出し 本文です。")
    clipboard.setMimeData(mime)
    doc = document_from_clipboard(clipboard)
    assert doc is not None and doc.format == "html"
    assert [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks] == [
        ("heading", "見出し"),
        ("paragraph", "本文です。"),
    ]


def test_plain_text_and_empty(clipboard) -> None:
    clipboard.setText("First paragraph.\r\n\r\nSecond one.")
    doc = document_from_clipboard(clipboard)
    assert doc is not None and doc.format == "text" and doc.title == "Clipboard"
    assert doc.text == "First paragraph.\n\nSecond one."
    clipboard.setText("   ")
    assert document_from_clipboard(clipboard) is None
    clipboard.clear()
    assert document_from_clipboard(clipboard) is None


def test_html_without_text_falls_back_to_plain_text(clipboard) -> None:
    mime = QMimeData()
    mime.setHtml('<img src="x.png">')
    mime.setText("alt words")
    clipboard.setMimeData(mime)
    doc = document_from_clipboard(clipboard)
    assert doc is not None and doc.text == "alt words"
