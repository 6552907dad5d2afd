"""DOCX (Word): body paragraphs in order, with headings, list items and quotes told apart.

The WordprocessingML is parsed directly from the zip with defusedxml. Headings are paragraphs whose
style (or a style it is based on) is named "heading N" or carries an outline level; the "Title"
style gives the document's title. Deleted tracked changes, field codes and the fallback copies of
text boxes are not read; ruby keeps its reading (`w:rt`), as in EPUB and HTML. Headers, footers and
footnotes live in other parts and are not read.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element

from miodesk.text.formats.base import Document, DocumentBuilder, DocumentError, add_with_heading_chapters
from miodesk.text.formats.safezip import SafeZip, attribute, join_href, local

_HEADING_NAME = re.compile(r"^heading\s*([1-9])$")
# Subtrees whose text is not part of the paragraph as displayed.
_SKIP = frozenset({"Fallback", "del", "delText", "instrText", "pPr", "rPr", "rubyBase", "moveFrom", "p"})


class _Style:
    def __init__(self, name: str, based_on: str, outline: int | None, numbered: bool) -> None:
        self.name, self.based_on, self.outline, self.numbered = name, based_on, outline, numbered


def _styles(docx: SafeZip, styles_path: str) -> dict[str, _Style]:
    if not docx.resolve(styles_path):
        return {}
    styles: dict[str, _Style] = {}
    for style in docx.read_xml(styles_path).iter():
        if local(style.tag) != "style":
            continue
        name, based_on, outline, numbered = "", "", None, False
        for element in style.iter():
            tag = local(element.tag)
            if tag == "name":
                name = attribute(element, "val").lower()
            elif tag == "basedOn":
                based_on = attribute(element, "val")
            elif tag == "outlineLvl" and attribute(element, "val").isdigit():
                outline = int(attribute(element, "val"))
            elif tag == "numPr":
                numbered = True
        styles[attribute(style, "styleId")] = _Style(name, based_on, outline, numbered)
    return styles


def _classify(
    style_id: str, styles: dict[str, _Style], outline: int | None, numbered: bool
) -> tuple[str, int]:
    seen: set[str] = set()
    current = style_id
    while current and current in styles and current not in seen and len(seen) < 16:
        seen.add(current)
        style = styles[current]
        if style.name == "title":
            return "title", 0
        match = _HEADING_NAME.match(style.name)
        if match:
            return "heading", int(match.group(1))
        if outline is None and style.outline is not None:
            outline = style.outline
        if "quote" in style.name:
            return "quote", 0
        numbered = numbered or style.numbered or style.name.startswith("list")
        current = style.based_on
    if outline is not None and outline < 9:
        return "heading", outline + 1
    if numbered:
        return "list_item", 1
    return "paragraph", 0


def _paragraph_text(paragraph: Element) -> str:
    parts: list[str] = []
    stack = list(reversed(list(paragraph)))
    while stack:
        element = stack.pop()
        tag = local(element.tag)
        if tag in _SKIP:
            continue
        if tag == "t":
            parts.append(element.text or "")
        elif tag == "tab":
            parts.append(" ")
        elif tag in ("br", "cr"):
            parts.append("\n" if attribute(element, "type") in ("", "textWrapping") else " ")
        elif tag == "noBreakHyphen":
            parts.append("-")
        stack.extend(reversed(list(element)))
    return "".join(parts)


def _paragraphs(body: Element) -> list[Element]:
    """Every w:p in document order (nested ones in text boxes after their host), no fallbacks."""
    found: list[Element] = []
    stack = [body]
    while stack:
        element = stack.pop()
        tag = local(element.tag)
        if tag == "Fallback":
            continue
        if tag == "p":
            found.append(element)
        stack.extend(reversed(list(element)))
    return found


def load_docx(path: Path) -> Document:
    with SafeZip(path, "Word document") as docx:
        document_path = "word/document.xml"
        if docx.resolve("_rels/.rels"):
            for relation in docx.read_xml("_rels/.rels").iter():
                if attribute(relation, "Type").endswith("/officeDocument"):
                    document_path = join_href("", attribute(relation, "Target"))[0]
                    break
        if not docx.resolve(document_path):
            raise DocumentError(f"{path.name} is not a valid Word document (no {document_path})")
        styles_path = join_href(document_path, "styles.xml")[0]
        styles = _styles(docx, styles_path)
        root = docx.read_xml(document_path)
        core_title = core_creator = ""
        if docx.resolve("docProps/core.xml"):
            try:
                core = docx.read_xml("docProps/core.xml")
                core_title = next(("".join(e.itertext()) for e in core.iter() if local(e.tag) == "title"), "")
                core_creator = next(("".join(e.itertext()) for e in core.iter() if local(e.tag) == "creator"), "")
            except DocumentError:
                pass  # metadata only: the text is still readable
    items: list[tuple[str, str, int]] = []
    style_title = ""
    for paragraph in _paragraphs(root):
        style_id, outline, numbered, level = "", None, False, 1
        for properties in paragraph:
            if local(properties.tag) != "pPr":
                continue
            for element in properties.iter():
                tag = local(element.tag)
                if tag == "pStyle":
                    style_id = attribute(element, "val")
                elif tag == "outlineLvl" and attribute(element, "val").isdigit():
                    outline = int(attribute(element, "val"))
                elif tag == "numPr":
                    numbered = True
                elif tag == "ilvl" and attribute(element, "val").isdigit():
                    level = int(attribute(element, "val")) + 1
        kind, heading_level = _classify(style_id, styles, outline, numbered)
        text = _paragraph_text(paragraph)
        if kind == "title" and not style_title:
            style_title = " ".join(text.split())
        items.append((kind, text, level if kind == "list_item" else heading_level))
    builder = DocumentBuilder(path.name)
    heading_title = add_with_heading_chapters(builder, items)
    title = " ".join(core_title.split()) or style_title or heading_title or path.stem
    return builder.build(title, path, "docx", author=core_creator)
