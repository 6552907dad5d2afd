"""Sample documents built in code for the document loader tests (and the fuzz test).

EPUB and DOCX are zips written here; PDFs are written by hand: one Type0 font with Identity-H
encoding whose character ids are the Unicode code points, plus a ToUnicode map, which is all a text
extractor needs for Japanese and English alike (no font program is embedded: nothing is drawn).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

XHTML_NS = "http://www.w3.org/1999/xhtml"


def xhtml(body: str, title: str = "", lang: str = "en") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="{XHTML_NS}" xmlns:epub="http://www.idpf.org/2007/ops" xml:lang="{lang}">'
        f"<head><title>{escape(title)}</title></head><body>{body}</body></html>"
    )


def make_epub(
    path: Path,
    chapters: list[tuple[str, str]],
    *,
    title: str = "Sample Book",
    toc: str = "nav",  # "nav" (EPUB 3), "ncx" (EPUB 2) or "none"
    encryption: str | None = None,
    extra: dict[str, bytes | str] | None = None,
    front: str | None = None,
    nav: str | None = None,
) -> Path:
    """An EPUB with one XHTML file per (chapter title, body markup); `front` adds an untitled
    cover page first (in the spine, not in the table of contents)."""
    files: list[tuple[str, str, str]] = []  # (id, href, body)
    if front is not None:
        files.append(("front", "Text/front.xhtml", front))
    for number, (_title, body) in enumerate(chapters, 1):
        files.append((f"c{number}", f"Text/chapter{number}.xhtml", body))
    manifest = "".join(
        f'<item id="{item_id}" href="{href}" media-type="application/xhtml+xml"/>' for item_id, href, _ in files
    )
    spine_attr = ""
    if toc == "nav":
        manifest += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    elif toc == "ncx":
        manifest += '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        spine_attr = ' toc="ncx"'
    spine = "".join(f'<itemref idref="{item_id}"/>' for item_id, _h, _b in files)
    version = "2.0" if toc == "ncx" else "3.0"
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="{version}" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>{escape(title)}</dc:title>'
        "<dc:language>en</dc:language></metadata>"
        f"<manifest>{manifest}</manifest><spine{spine_attr}>{spine}</spine></package>"
    )
    chapter_files = [f for f in files if f[0] != "front"]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        archive.writestr("OEBPS/content.opf", opf)
        if toc == "nav":
            links = "".join(
                f'<li><a href="{href}">{escape(chapter_title)}</a></li>'
                for (chapter_title, _b), (_i, href, _bb) in zip(chapters, chapter_files, strict=True)
            )
            archive.writestr(
                "OEBPS/nav.xhtml",
                nav or xhtml(f'<nav epub:type="toc"><h1>Contents</h1><ol>{links}</ol></nav>'
                      '<nav epub:type="landmarks"><ol><li><a href="Text/chapter1.xhtml">Start</a></li></ol></nav>'),
            )
        elif toc == "ncx":
            points = "".join(
                f'<navPoint id="p{n}" playOrder="{n}"><navLabel><text>{escape(chapter_title)}</text></navLabel>'
                f'<content src="{href}"/></navPoint>'
                for n, ((chapter_title, _b), (_i, href, _bb)) in enumerate(zip(chapters, chapter_files, strict=True), 1)
            )
            archive.writestr(
                "OEBPS/toc.ncx",
                '<?xml version="1.0" encoding="utf-8"?>'
                '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
                f"<head/><docTitle><text>{escape(title)}</text></docTitle><navMap>{points}</navMap></ncx>",
            )
        for _item_id, href, body in files:
            archive.writestr(f"OEBPS/{href}", xhtml(body, lang="ja"), compress_type=zipfile.ZIP_DEFLATED)
        if encryption is not None:
            archive.writestr("META-INF/encryption.xml", encryption)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_paragraph(text: str, style: str | None = None, numbered: bool = False) -> str:
    properties = ""
    if style or numbered:
        properties = "<w:pPr>"
        if style:
            properties += f'<w:pStyle w:val="{style}"/>'
        if numbered:
            properties += '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>'
        properties += "</w:pPr>"
    runs = "".join(
        (f'<w:r><w:t xml:space="preserve">{escape(part)}</w:t></w:r>' if part else "")
        + ("<w:r><w:br/></w:r>" if index < text.count("\n") else "")
        for index, part in enumerate(text.split("\n"))
    )
    return f"<w:p>{properties}{runs}</w:p>"


def make_docx(
    path: Path, body_xml: str, *, title: str | None = None, styles: bool = True
) -> Path:
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f"<w:body>{body_xml}<w:sectPr/></w:body></w:document>"
    )
    style_defs = "".join(
        f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/>'
        + (f'<w:basedOn w:val="{based}"/>' if based else "")
        + "</w:style>"
        for style_id, name, based in [
            ("Normal", "Normal", ""),
            ("Title", "Title", "Normal"),
            ("Heading1", "heading 1", "Normal"),
            ("Heading2", "heading 2", "Normal"),
            ("MyChapter", "My Chapter", "Heading1"),
            ("Quote", "Quote", "Normal"),
            ("ListParagraph", "List Paragraph", "Normal"),
        ]
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        archive.writestr("word/document.xml", document)
        if styles:
            archive.writestr("word/styles.xml", f'<?xml version="1.0"?><w:styles xmlns:w="{W_NS}">{style_defs}</w:styles>')
        if title is not None:
            archive.writestr(
                "docProps/core.xml",
                '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
                'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f"<dc:title>{escape(title)}</dc:title></cp:coreProperties>",
            )
    return path


def _pdf_string(text: str) -> str:
    """Character ids for the Identity-H font: the code points, two bytes each."""
    return "<" + "".join(f"{ord(char):04X}" for char in text) + ">"


def _pdf_text_string(text: str) -> str:
    """A PDF text string (titles, bookmarks): UTF-16BE with its byte-order mark."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def make_pdf(
    pages: list[list[str]],
    *,
    outline: list[tuple[str, int]] | None = None,
    title: str | None = None,
    empty_pages: bool = False,
) -> bytes:
    """A PDF whose pages hold the given lines, top to bottom (BMP characters only).
    `outline` adds top-level bookmarks (title, page index); `empty_pages` draws no text (a scan)."""
    high_bytes = sorted({ord(char) >> 8 for lines in pages for line in lines for char in line} | {0})
    ranges = "\n".join(f"<{high:02X}00> <{high:02X}FF> <{high:02X}00>" for high in high_bytes)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(high_bytes)} beginbfrange\n{ranges}\nendbfrange\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    objects: dict[int, bytes] = {}

    def stream(data: str) -> bytes:
        raw = data.encode("latin-1")
        return b"<< /Length %d >>\nstream\n" % len(raw) + raw + b"\nendstream"

    objects[3] = (b"<< /Type /Font /Subtype /Type0 /BaseFont /Sample /Encoding /Identity-H "
                  b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>")
    objects[4] = (b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Sample "
                  b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                  b"/FontDescriptor 6 0 R /DW 500 /CIDToGIDMap /Identity >>")
    objects[5] = stream(cmap)
    objects[6] = (b"<< /Type /FontDescriptor /FontName /Sample /Flags 4 /FontBBox [0 -200 1000 800] "
                  b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>")
    page_ids = []
    next_id = 7
    for lines in pages:
        page_id, content_id = next_id, next_id + 1
        next_id += 2
        page_ids.append(page_id)
        commands = []
        if not empty_pages:
            for index, line in enumerate(lines):
                commands.append(f"BT /F1 10 Tf 1 0 0 1 72 {760 - 14 * index} Tm {_pdf_string(line)} Tj ET")
        objects[content_id] = stream("\n".join(commands))
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {content_id} 0 R >>"
        ).encode()
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()
    catalog = "<< /Type /Catalog /Pages 2 0 R"
    if outline:
        outline_id = next_id
        item_ids = list(range(outline_id + 1, outline_id + 1 + len(outline)))
        next_id = item_ids[-1] + 1
        objects[outline_id] = (
            f"<< /Type /Outlines /First {item_ids[0]} 0 R /Last {item_ids[-1]} 0 R /Count {len(item_ids)} >>"
        ).encode()
        for number, ((mark_title, page_index), item_id) in enumerate(zip(outline, item_ids, strict=True)):
            links = ""
            if number:
                links += f" /Prev {item_ids[number - 1]} 0 R"
            if number + 1 < len(item_ids):
                links += f" /Next {item_ids[number + 1]} 0 R"
            objects[item_id] = (
                f"<< /Title {_pdf_text_string(mark_title)} /Parent {outline_id} 0 R{links} "
                f"/Dest [{page_ids[page_index]} 0 R /XYZ 0 792 0] >>"
            ).encode()
        catalog += f" /Outlines {outline_id} 0 R"
    objects[1] = (catalog + " >>").encode()
    info_id = None
    if title is not None:
        info_id = next_id
        objects[info_id] = f"<< /Title {_pdf_text_string(title)} >>".encode()
        next_id += 1
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for object_id in sorted(objects):
        offsets[object_id] = len(out)
        out += b"%d 0 obj\n" % object_id + objects[object_id] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for object_id in range(1, size):
        out += b"%010d 00000 n \n" % offsets[object_id] if object_id in offsets else b"0000000000 65535 f \n"
    trailer = f"trailer\n<< /Size {size} /Root 1 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>\n"
    out += trailer.encode() + b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
