"""What an export takes from the text: sentences cut at quote boundaries for the dialogue voice
(`segment(split_quotes=True)`), and the author and cover the loaders find in each document format."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from test_audio_output import png_image
from test_documents_samples import docx_paragraph, make_docx, make_pdf

from miodesk.export import book_tags
from miodesk.text.documents import load_document
from miodesk.text.segment import quote_spans, segment


def pieces(text: str) -> list[tuple[str, bool]]:
    return [(u.text, u.quoted) for u in segment(text, split_quotes=True)]


@pytest.mark.parametrize(("source", "expected"), [
    ("「行こう。」と彼は言った。『はい！』", [("「行こう。」", True), ("と彼は言った。", False), ("『はい！』", True)]),
    ("彼は「行こう」と言った。", [("彼は", False), ("「行こう」", True), ("と言った。", False)]),
    # A quote of several sentences: each is an utterance, all of them quoted; the narration after it is not.
    ("「今日は晴れ。明日は雨。」と天気予報。", [("「今日は晴れ。", True), ("明日は雨。」", True), ("と天気予報。", False)]),
    # 『』 inside 「」 stays in the outer quote, and so in the dialogue voice.
    ("「彼は『はい』と言った。それから」帰った。",
     [("「彼は『はい』と言った。", True), ("それから」", True), ("帰った。", False)]),
    ('He said "Stop." Then he left.', [("He said", False), ('"Stop."', True), ("Then he left.", False)]),
    ("“Hello,” he said. “Bye.”", [("“Hello,”", True), ("he said.", False), ("“Bye.”", True)]),
    # An inch mark is not a quote; the real quotes after it are.
    ('He is 6\' 2" tall. "Yes," she said, "he is."',
     [('He is 6\' 2" tall.', False), ('"Yes,"', True), ("she said,", False), ('"he is."', True)]),
    # A quote left open ends with its paragraph: the next paragraph is narration again.
    ("「開いたまま。ずっと。\n\n次の段落。", [("「開いたまま。", True), ("ずっと。", True), ("次の段落。", False)]),
    ('He said "never closed.\n\nNext paragraph.', [("He said", False), ('"never closed.', True),
                                                   ("Next paragraph.", False)]),
    # A stray closing mark opens nothing.
    ("終わり」の後。次の文。", [("終わり」の後。", False), ("次の文。", False)]),
    ("No quotes here. None at all.", [("No quotes here.", False), ("None at all.", False)]),
])
def test_sentences_are_cut_at_quote_boundaries(source, expected):
    assert pieces(source) == expected


def test_without_split_quotes_nothing_changes():
    text = "「行こう。」と彼は言った。He said \"Stop.\" Then he left."
    assert [u.text for u in segment(text)] == ["「行こう。」", "と彼は言った。", 'He said "Stop."', "Then he left."]
    assert not any(u.quoted for u in segment(text))


def test_no_utterance_straddles_a_quote_and_spans_map_back():
    paragraph = ("吾輩は猫である。「名前はまだ無い。どこで生れたか、とんと見当がつかぬ」と猫は言った。"
                 "\"It was the best of times,\" he wrote, \"it was the worst of times.\" 『本当に？』そうだ。\n\n")
    text = paragraph * 20 + "「最後の段落は閉じない。"
    spans = quote_spans(text)
    for utterance in segment(text, split_quotes=True):
        assert text[utterance.start:utterance.end] == utterance.text
        inside = any(start <= utterance.start and utterance.end <= end for start, end in spans)
        outside = all(utterance.end <= start or utterance.start >= end for start, end in spans)
        assert inside or outside, utterance
        assert utterance.quoted == inside, utterance


def test_a_long_quote_is_still_cut_to_the_model_limit():
    quote = "「" + "とても長い台詞が続く、" * 30 + "」"
    utterances = segment(quote, split_quotes=True)
    assert len(utterances) > 1 and all(u.quoted for u in utterances)
    assert all(len(u.text) <= 100 for u in utterances)
    assert "".join(u.text for u in utterances) == quote


def test_a_megabyte_with_quotes_is_split_in_linear_time():
    paragraph = "「行こう」と彼は言った。\"Yes,\" she said. 『本』を読んだ。「閉じない\n\n"
    small, large = paragraph * 1000, paragraph * 10000
    started = time.perf_counter()
    small_count = len(segment(small, split_quotes=True))
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    large_count = len(segment(large, split_quotes=True))
    large_time = time.perf_counter() - started
    assert large_count == 10 * small_count
    assert large_time < 30 * max(small_time, 0.01)


# --- author and cover ------------------------------------------------------------------------------------

COVER = png_image(4, 4)


def epub(path: Path, metadata: str, manifest: str, files: dict[str, bytes], version: str = "3.0") -> Path:
    opf = ('<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
           f'xmlns:opf="http://www.idpf.org/2007/opf" version="{version}" unique-identifier="id">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>'
           f'<dc:title>本</dc:title>{metadata}</metadata><manifest>'
           '<item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/>'
           f'{manifest}</manifest><spine><itemref idref="c1"/></spine></package>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml",
                         '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                         'container"><rootfiles><rootfile full-path="OEBPS/p.opf" '
                         'media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("OEBPS/p.opf", opf)
        archive.writestr("OEBPS/c1.xhtml", '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>本文です。</p></body></html>')
        for name, data in files.items():
            archive.writestr(f"OEBPS/{name}", data)
    return path


def test_epub3_author_is_the_creator_with_no_role_or_the_author_role_and_the_cover_image(tmp_path):
    path = epub(tmp_path / "b.epub",
                '<dc:creator id="a">夏目 漱石</dc:creator><dc:creator id="t">Translator Person</dc:creator>'
                '<meta refines="#t" property="role" scheme="marc:relators">trl</meta>'
                '<dc:creator id="b">Second  Author</dc:creator>'
                '<meta refines="#b" property="role" scheme="marc:relators">aut</meta>',
                '<item id="img" href="images/cover.png" media-type="image/png" properties="cover-image"/>',
                {"images/cover.png": COVER})
    document = load_document(path)
    assert document.author == "夏目 漱石, Second Author"
    assert (document.cover, document.cover_mime) == (COVER, "image/png")
    tags = book_tags(document)
    assert (tags.title, tags.author, tags.cover) == ("本", "夏目 漱石, Second Author", COVER)


def test_epub2_cover_meta_and_opf_role(tmp_path):
    jpeg = b"\xff\xd8\xff\xe0" + bytes(100)
    path = epub(tmp_path / "b.epub",
                '<dc:creator opf:role="ill">An Illustrator</dc:creator><dc:creator opf:role="aut">Jane Doe</dc:creator>'
                '<meta name="cover" content="cover-id"/>',
                '<item id="cover-id" href="cover.jpg" media-type="image/jpeg"/>', {"cover.jpg": jpeg}, version="2.0")
    document = load_document(path)
    assert document.author == "Jane Doe"
    assert (document.cover, document.cover_mime) == (jpeg, "image/jpeg")


def test_an_epub_whose_cover_is_missing_still_opens(tmp_path):
    path = epub(tmp_path / "b.epub", "",
                '<item id="img" href="nowhere.png" media-type="image/png" properties="cover-image"/>', {})
    document = load_document(path)
    assert document.cover is None and document.author == "" and "本文です。" in document.text


def test_docx_author_from_the_core_properties(tmp_path):
    path = make_docx(tmp_path / "d.docx", docx_paragraph("Hello there."))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("docProps/core.xml",
                         '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/'
                         '2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                         "<dc:title>A Report</dc:title><dc:creator>Ada Lovelace</dc:creator></cp:coreProperties>")
    document = load_document(path)
    assert (document.title, document.author) == ("A Report", "Ada Lovelace")


def test_pdf_author_from_its_information(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["First line of the page."]], title="Paper"))))
    writer.add_metadata({"/Author": "宮沢 賢治"})
    path = tmp_path / "p.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    assert load_document(path).author == "宮沢 賢治"


def test_html_author_from_its_meta(tmp_path):
    path = tmp_path / "page.html"
    path.write_text('<html><head><title>Page</title><meta name="Author" content="  Jane   Doe "></head>'
                    "<body><p>Text.</p></body></html>", encoding="utf-8")
    assert load_document(path).author == "Jane Doe"


AOZORA = """走れメロス
太宰治

-------------------------------------------------------
【テキスト中に現れる記号について】

《》：ルビ
-------------------------------------------------------

　メロスは激怒《げきど》した。

底本：「太宰治全集3」筑摩書房
"""


def test_aozora_text_author_from_the_title_block(tmp_path):
    path = tmp_path / "merosu.txt"
    path.write_bytes(AOZORA.encode("cp932"))
    document = load_document(path)
    assert document.author == "太宰治"
    assert book_tags(document).title == "走れメロス"  # the title block's title, without the author


def test_aozora_translator_is_not_the_author():
    from miodesk.text.formats.aozora import author_of_title_block

    assert author_of_title_block(["変身", "フランツ・カフカ", "原田義人訳"]) == "フランツ・カフカ"
    assert author_of_title_block(["題", "副題", "著者", "編者名　編"]) == "著者"
    assert author_of_title_block(["題だけ"]) == ""


def test_aozora_xhtml_author_from_its_title_block(tmp_path):
    page = ('<?xml version="1.0" encoding="Shift_JIS"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
            '<title>太宰治 走れメロス</title></head><body><div class="metadata"><h1 class="title">走れメロス</h1>'
            '<h2 class="author">太宰治</h2></div><div class="main_text">メロスは激怒した。</div>'
            '<div class="bibliographical_information">底本：「太宰治全集3」</div></body></html>')
    path = tmp_path / "merosu.html"
    path.write_bytes(page.encode("cp932"))
    document = load_document(path)
    assert document.author == "太宰治"
    assert book_tags(document).title == "走れメロス"


def test_no_author_where_the_format_has_none(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nSome text.\n", encoding="utf-8")
    document = load_document(path)
    assert (document.author, document.cover, document.cover_mime) == ("", None, "")
