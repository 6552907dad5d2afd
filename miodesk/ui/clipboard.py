"""Turn what is on the system clipboard into a Document (the GUI's "Paste" button calls this)."""

from __future__ import annotations

from PySide6.QtGui import QClipboard

from miodesk.text.documents import Document, DocumentError, document_from_html, document_from_text


def document_from_clipboard(clipboard: QClipboard, title: str = "Clipboard") -> Document | None:
    """The clipboard's HTML when it has some (headings and paragraphs survive), else its plain
    text; None when it holds nothing readable."""
    mime = clipboard.mimeData()
    if mime is None:
        return None
    if mime.hasHtml() and mime.html().strip():
        try:
            return document_from_html(mime.html(), title)
        except DocumentError:
            pass  # HTML with no text (an image, say): the plain text may still have some
    if mime.hasText() and mime.text().strip():
        try:
            return document_from_text(mime.text(), title)
        except DocumentError:
            return None
    return None
