"""Document loading: every format and encoding, Japanese and English, with exact block spans."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_documents_samples import docx_paragraph, make_docx, make_epub, make_pdf

from miodesk.errors import MioDeskError
from miodesk.text.documents import (
    Document,
    DocumentError,
    document_from_html,
    document_from_text,
    load_document,
    outline_text,
)
from miodesk.text.segment import segment

JA = "吾輩は猫である。名前はまだ無い。\n\nどこで生れたかとんと見当がつかぬ。"
EN = "It was a bright cold day in April.\n\nThe clocks were striking thirteen."


def check_consistent(doc: Document) -> None:
    """The invariants every Document keeps, whatever its source."""
    assert doc.blocks, "a Document always has text"
    position = 0
    for index, block in enumerate(doc.blocks):
        expected_start = 0 if index == 0 else position + 2
        assert block.start == expected_start, (index, block)
        if index:
            assert doc.text[position : block.start] == "\n\n"
        piece = doc.text[block.start : block.end]
        assert piece and piece == piece.strip(), repr(piece)
        assert "\n\n" not in piece and "\n \n" not in piece
        position = block.end
    assert position == len(doc.text)
    assert doc.chapters[0].start == 0 and doc.chapters[-1].end == len(doc.text)
    for before, after in zip(doc.chapters, doc.chapters[1:], strict=False):
        assert before.end == after.start and before.start < before.end
    for block in doc.blocks:
        chapter = doc.chapters[block.chapter]
        assert chapter.start <= block.start < chapter.end
    # The segmenter never lets an utterance cross a block.
    starts = [block.start for block in doc.blocks]
    for utterance in segment(doc.text):
        block = max(i for i, start in enumerate(starts) if start <= utterance.start)
        assert utterance.end <= doc.blocks[block].end


def blocks_of(doc: Document) -> list[tuple[str, str]]:
    return [(block.kind, doc.text[block.start : block.end]) for block in doc.blocks]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_document_error_is_a_miodesk_error() -> None:
    from miodesk import errors

    assert errors.DocumentError is DocumentError and issubclass(DocumentError, MioDeskError)


# -- plain text and encodings ----------------------------------------------------------------------

ENCODED = [
    (JA, "utf-8", "utf-8"),
    (JA, "utf-8-sig", "utf-8 (BOM)"),
    (JA, "utf-16", "(BOM)"),
    (JA, "utf-16-le", "utf-16-le"),
    (JA, "utf-16-be", "utf-16-be"),
    (JA, "cp932", "shift_jis"),
    (JA, "euc_jp", "euc-jp"),
    (JA, "iso2022_jp", "iso-2022-jp"),
    ("こんにちは", "cp932", "shift_jis"),
    ("こんにちは", "euc_jp", "euc-jp"),
    ("東京都", "euc_jp", "euc-jp"),
    ("東京都", "cp932", "shift_jis"),
    ("今日はいい天気ですね。", "euc_jp", "euc-jp"),
    ("カタカナ①と～ひらがな", "cp932", "shift_jis"),
    (EN, "utf-16-le", "utf-16-le"),
    (EN, "ascii", "utf-8"),
    ("Café crème à la française, naïve résumé.", "cp1252", "cp1252"),
    ("“Smart quotes” — and a dash… déjà vu", "cp1252", "cp1252"),
    ("Ñandú, señor, pingüino y acción.", "latin-1", ""),
]


@pytest.mark.parametrize(("text", "encoding", "label"), ENCODED)
def test_text_encodings(tmp_path: Path, text: str, encoding: str, label: str) -> None:
    doc = load_document(write(tmp_path, "sample.txt", text.encode(encoding)))
    assert doc.text == text
    assert doc.format == "text" and label in (doc.encoding or "")
    assert doc.title == "sample" and [c.title for c in doc.chapters] == ["sample"]
    check_consistent(doc)


def test_text_paragraphs_and_newlines(tmp_path: Path) -> None:
    raw = "First line\r\nsecond line\r\n\r\n\r\nNext paragraph.\rOld Mac line.\n\n\n"
    doc = load_document(write(tmp_path, "a.txt", raw))
    assert blocks_of(doc) == [
        ("paragraph", "First line\nsecond line"),
        ("paragraph", "Next paragraph.\nOld Mac line."),
    ]
    check_consistent(doc)


def test_hard_wrapped_text_is_unwrapped(tmp_path: Path) -> None:
    raw = (
        "It is a truth universally acknowledged, that a single man in\n"
        "possession of a good fortune, must be in want of a wife. How-\n"
        "ever little known the feelings or views of such a man may be\n"
        "on his first entering a neighbourhood, this truth is so well\n"
        "fixed in the minds of the surrounding families.\n"
        "\n"
        "“My dear Mr. Bennet,” said his lady to him one day, “have you\n"
        "heard that Netherfield Park is let at last?”\n"
    )
    doc = load_document(write(tmp_path, "austen.txt", raw))
    assert blocks_of(doc) == [
        ("paragraph", "It is a truth universally acknowledged, that a single man in possession of a good "
         "fortune, must be in want of a wife. However little known the feelings or views of such a man "
         "may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
         "surrounding families."),
        ("paragraph", "“My dear Mr. Bennet,” said his lady to him one day, “have you heard that "
         "Netherfield Park is let at last?”"),
    ]


def test_aozora_style_lines_and_chapters(tmp_path: Path) -> None:
    raw = (
        "第一章\n"
        "　吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で泣いていた事だけは記憶している。\n"
        "「ニャー」\n"
        "第二章\n"
        "　吾輩は新年来多少有名になったので、猫ながらちょっと鼻が高く感ぜらるるのはありがたい。\n"
    )
    doc = load_document(write(tmp_path, "neko.txt", raw.encode("cp932")))
    assert blocks_of(doc) == [
        ("heading", "第一章"),
        ("paragraph", "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で泣いていた事だけは記憶している。"),
        ("paragraph", "「ニャー」"),
        ("heading", "第二章"),
        ("paragraph", "吾輩は新年来多少有名になったので、猫ながらちょっと鼻が高く感ぜらるるのはありがたい。"),
    ]
    assert [c.title for c in doc.chapters] == ["第一章", "第二章"]
    check_consistent(doc)


def test_mixed_encodings_are_best_effort(tmp_path: Path) -> None:
    data = "前半はUTF-8です。\n\n".encode() + "後半はシフトJISです。".encode("cp932")
    doc = load_document(write(tmp_path, "mixed.txt", data))
    assert "前半はUTF-8です。" in doc.text and doc.warnings
    check_consistent(doc)


def test_document_from_text() -> None:
    doc = document_from_text("Hello.\n\n  こんにちは。  \n")
    assert blocks_of(doc) == [("paragraph", "Hello."), ("paragraph", "こんにちは。")]
    assert doc.title == "Clipboard" and doc.source is None
    with pytest.raises(DocumentError):
        document_from_text(" \n\n\t")


# -- Markdown --------------------------------------------------------------------------------------

MARKDOWN = """---
title: front matter is not read
---
# The Book

Intro with *emphasis*, **strong** and a [link](https://example.com) and `code`.
A soft break.

## Chapter One

- first item
- second item
  1. nested

> A quoted line.

```python
print("not read")
```

![an image](pic.png)

| a | b |
|---|---|
| 1 | 2 |

## Chapter Two

Hard break\\
after.
"""


def test_markdown(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "book.md", MARKDOWN))
    assert blocks_of(doc) == [
        ("heading", "The Book"),
        ("paragraph", "Intro with emphasis, strong and a link and code. A soft break."),
        ("heading", "Chapter One"),
        ("list_item", "first item"),
        ("list_item", "second item"),
        ("list_item", "nested"),
        ("quote", "A quoted line."),
        ("code", "(Code block skipped.)"),
        ("table", "a b"),
        ("table", "1 2"),
        ("heading", "Chapter Two"),
        ("paragraph", "Hard break\nafter."),
    ]
    assert doc.title == "The Book" and doc.format == "markdown"
    assert [c.title for c in doc.chapters] == ["The Book", "Chapter One", "Chapter Two"]
    assert [b.level for b in doc.blocks if b.kind == "heading"] == [1, 2, 2]
    check_consistent(doc)


def test_markdown_japanese(tmp_path: Path) -> None:
    source = "# 第一章\n\n吾輩は**猫**である。\n名前はまだ無い。\n\n    code\n\n# 第二章\n\n終わり。\n"
    doc = load_document(write(tmp_path, "猫.markdown", source.encode("euc_jp")))
    assert blocks_of(doc) == [
        ("heading", "第一章"),
        ("paragraph", "吾輩は猫である。名前はまだ無い。"),
        ("code", "（コードは省略）"),
        ("heading", "第二章"),
        ("paragraph", "終わり。"),
    ]
    assert [c.title for c in doc.chapters] == ["第一章", "第二章"]
    check_consistent(doc)


# -- HTML ------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head><title>The Page</title><style>p {color: red}</style>
<script>var x = "<p>not read</p>";</script></head>
<body><header><a href="/">Home</a> <h1>Main Title</h1></header>
<nav><ul><li>Menu</li></ul></nav>
<main><article>
<h2>Section&nbsp;A</h2>
<p>First   paragraph
spans lines &amp; entities.</p>
<p>日本語の
文章です。<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>と<ruby><rb>東</rb><rt>ひがし</rt></ruby>。</p>
<div>Loose text<br>after a break</div>
<p hidden>Hidden</p><p style="display: none">Also hidden</p>
<span epub:type="pagebreak" id="p12">12</span>
<ul><li>One</li><li>Two</li></ul>
<blockquote><p>Quoted.</p></blockquote>
<pre>line one
  line two</pre>
<pre><code>int main() {}</code></pre>
<table><tr><td>Cell 1</td><td>Cell 2</td></tr></table>
</article></main>
<aside>Related links</aside><footer>Copyright</footer><noscript>Enable JS</noscript>
</body></html>"""


def test_html(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "page.html", PAGE))
    assert blocks_of(doc) == [
        ("heading", "Main Title"),
        ("heading", "Section A"),
        ("paragraph", "First paragraph spans lines & entities."),
        ("paragraph", "日本語の文章です。かんじとひがし。"),
        ("paragraph", "Loose text\nafter a break"),
        ("list_item", "One"),
        ("list_item", "Two"),
        ("quote", "Quoted."),
        ("preformatted", "line one\nline two"),
        ("code", "(Code block skipped.)"),
        ("table", "Cell 1 Cell 2"),
    ]
    assert doc.title == "The Page"
    check_consistent(doc)


def test_html_declared_charset_and_sniffing(tmp_path: Path) -> None:
    page = '<html><head><meta charset="shift_jis"><title>題名</title></head><body><p>本文です。</p></body></html>'
    doc = load_document(write(tmp_path, "page.htm", page.encode("cp932")))
    assert doc.title == "題名" and doc.text == "本文です。"
    # No extension: the content says HTML.
    doc = load_document(write(tmp_path, "download", "<!DOCTYPE html><p>Sniffed.</p>"))
    assert doc.format == "html" and doc.text == "Sniffed."


def test_document_from_html() -> None:
    doc = document_from_html("<h1>Copied</h1><p>From a <b>browser</b>.</p>")
    assert blocks_of(doc) == [("heading", "Copied"), ("paragraph", "From a browser.")]
    assert doc.title == "Clipboard"


# -- EPUB ------------------------------------------------------------------------------------------

CHAPTERS = [
    ("第一章　猫", "<h1>第一章</h1><p>吾輩は<ruby>猫<rt>ねこ</rt></ruby>である。</p><p>名前はまだ無い。</p>"),
    ("Chapter Two", '<h1>Two</h1><p>Hello <em>world</em>.</p><p class="x">Bye.</p>'),
]
EXPECTED_EPUB = [
    ("paragraph", "Cover"),
    ("heading", "第一章"),
    ("paragraph", "吾輩はねこである。"),
    ("paragraph", "名前はまだ無い。"),
    ("heading", "Two"),
    ("paragraph", "Hello world."),
    ("paragraph", "Bye."),
]


@pytest.mark.parametrize("toc", ["nav", "ncx"])
def test_epub(tmp_path: Path, toc: str) -> None:
    path = make_epub(tmp_path / "book.epub", CHAPTERS, toc=toc, front="<p>Cover</p>", title="猫の本")
    doc = load_document(path)
    assert blocks_of(doc) == EXPECTED_EPUB
    assert doc.title == "猫の本" and doc.format == "epub"
    assert [c.title for c in doc.chapters] == ["猫の本", "第一章　猫", "Chapter Two"]
    assert doc.text[doc.chapters[1].start : doc.chapters[1].end].startswith("第一章")
    check_consistent(doc)
    text = outline_text(doc)
    assert "=== Chapter 2: 第一章　猫 ===\n第一章\n\n吾輩はねこである。" in text
    assert text.startswith("=== Chapter 1: 猫の本 ===\nCover\n")


def test_epub_without_toc_and_with_anchors(tmp_path: Path) -> None:
    doc = load_document(make_epub(tmp_path / "plain.epub", CHAPTERS, toc="none"))
    assert [c.title for c in doc.chapters] == ["第一章", "Two"]
    # Two chapters inside one file, found by their anchors.
    body = '<h2 id="a">Alpha</h2><p>One.</p><p>Two <a id="b"/>three.</p><h2 id="c">Gamma</h2><p>Four.</p>'
    nav = (
        '<html xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>'
        '<li><a href="Text/chapter1.xhtml#a">Alpha</a></li>'
        '<li><a href="Text/chapter1.xhtml#c">Gamma</a><ol><li><a href="Text/chapter1.xhtml#c">Dup</a></li></ol>'
        "</li></ol></nav></body></html>"
    )
    doc = load_document(make_epub(tmp_path / "one.epub", [("Alpha", body)], nav=nav))
    assert [(c.title, doc.text[c.start : c.end].split("\n")[0]) for c in doc.chapters] == [
        ("Alpha", "Alpha"),
        ("Gamma", "Gamma"),
    ]
    check_consistent(doc)


def test_epub_many_chapters(tmp_path: Path) -> None:
    chapters = [(f"Chapter {n}", f"<h1>Chapter {n}</h1><p>Text of chapter {n}.</p>") for n in range(1, 1001)]
    doc = load_document(make_epub(tmp_path / "long.epub", chapters))
    assert len(doc.chapters) == 1000 and doc.chapters[-1].title == "Chapter 1000"
    assert doc.text.endswith("Text of chapter 1000.")


# -- DOCX ------------------------------------------------------------------------------------------


def test_docx(tmp_path: Path) -> None:
    body = (
        docx_paragraph("報告書", "Title")
        + docx_paragraph("はじめに", "Heading1")
        + docx_paragraph("本文の一行目\n二行目")
        + docx_paragraph("First item", numbered=True)
        + docx_paragraph("Second item", "ListParagraph")
        + docx_paragraph("Custom chapter style", "MyChapter")
        + docx_paragraph("A quotation.", "Quote")
        + docx_paragraph("Sub heading", "Heading2")
        # Ruby keeps the reading; a deleted tracked change and a field code are not read.
        + '<w:p><w:r><w:t>私の</w:t></w:r><w:r><w:ruby><w:rt><w:r><w:t>なまえ</w:t></w:r></w:rt>'
        '<w:rubyBase><w:r><w:t>名前</w:t></w:r></w:rubyBase></w:ruby></w:r>'
        '<w:del><w:r><w:delText>消した</w:delText></w:r></w:del>'
        '<w:r><w:instrText>PAGE</w:instrText></w:r><w:r><w:tab/><w:t>です</w:t></w:r></w:p>'
        # A text box: read once (its VML fallback copy is skipped).
        + '<w:p><w:r><mc:AlternateContent><mc:Choice><w:txbxContent><w:p><w:r><w:t>Box</w:t></w:r></w:p>'
        '</w:txbxContent></mc:Choice><mc:Fallback><w:p><w:r><w:t>Box</w:t></w:r></w:p></mc:Fallback>'
        "</mc:AlternateContent></w:r></w:p>"
        + "<w:tbl><w:tr><w:tc>" + docx_paragraph("In a table") + "</w:tc></w:tr></w:tbl>"
    )
    doc = load_document(make_docx(tmp_path / "report.docx", body))
    assert blocks_of(doc) == [
        ("title", "報告書"),
        ("heading", "はじめに"),
        ("paragraph", "本文の一行目\n二行目"),
        ("list_item", "First item"),
        ("list_item", "Second item"),
        ("heading", "Custom chapter style"),
        ("quote", "A quotation."),
        ("heading", "Sub heading"),
        ("paragraph", "私のなまえ です"),
        ("paragraph", "Box"),
        ("paragraph", "In a table"),
    ]
    assert doc.title == "報告書" and doc.format == "docx"
    assert [c.title for c in doc.chapters] == ["報告書", "はじめに", "Custom chapter style"]
    check_consistent(doc)


def test_docx_core_title_and_no_styles(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "d.docx", docx_paragraph("Just text."), title="Core", styles=False))
    assert doc.title == "Core" and doc.text == "Just text."


# -- PDF -------------------------------------------------------------------------------------------

PDF_PAGES = [
    ["Running Header", "This is the first line of a long para-", "graph that continues on this line",
     "and ends here.", "Another paragraph starts and is", "short.", "- 1 -"],
    ["Running Header", "第二章", "吾輩は猫である。名前はまだ無い。どこで", "生れたかとんと見当がつかぬ。", "- 2 -"],
    ["Running Header", "The last page has one line.", "- 3 -"],
]


def test_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "paper.pdf", make_pdf(PDF_PAGES, outline=[("Part 1", 0), ("第二章", 1)], title="A Paper"))
    doc = load_document(path)
    assert blocks_of(doc) == [
        ("paragraph", "This is the first line of a long paragraph that continues on this line and ends here."),
        ("paragraph", "Another paragraph starts and is short."),
        ("paragraph", "第二章"),
        ("paragraph", "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"),
        ("paragraph", "The last page has one line."),
    ]
    assert doc.title == "A Paper" and doc.format == "pdf"
    assert [c.title for c in doc.chapters] == ["Part 1", "第二章"]
    assert doc.text[doc.chapters[1].start :].startswith("第二章")
    check_consistent(doc)


def test_pdf_scanned_and_encrypted(tmp_path: Path) -> None:
    scanned = write(tmp_path, "scan.pdf", make_pdf([["x"], ["y"]], empty_pages=True))
    with pytest.raises(DocumentError, match="no text layer"):
        load_document(scanned)

    from pypdf import PdfReader, PdfWriter

    source = write(tmp_path, "plain.pdf", make_pdf([["Secret text here."]]))
    for user_password, expect_error in (("secret", True), ("", False)):
        writer = PdfWriter()
        writer.append(PdfReader(source))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
        target = tmp_path / f"locked{user_password}.pdf"
        with target.open("wb") as handle:
            writer.write(handle)
        if expect_error:
            with pytest.raises(DocumentError, match="password"):
                load_document(target)
        else:  # only an owner password: readable, like every viewer does
            assert load_document(target).text == "Secret text here."


# -- outline -----------------------------------------------------------------------------------------


def test_outline_text_single_chapter(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "note.txt", EN))
    assert outline_text(doc) == f"=== Chapter 1: note ===\n{EN}\n"
