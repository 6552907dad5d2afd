"""Aozora Bunko texts as readers download them: the story only, every word once, headings as chapters.

The samples are the opening of 『吾輩は猫である』 (public domain) written the way Aozora Bunko writes
its files: the plain-text edition in Aozora notation (Shift_JIS, CRLF, zipped with an illustration)
and the XHTML edition aozora2html makes of it, each with the title block, the notation legend,
headings in three forms, ruby with and without ｜, emphasis, indentation, page breaks, gaiji of both
JIS X 0213 planes and in U+ form, an unknown gaiji and the colophon. A few words were added to the
novel's text so that every construct appears.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from test_documents import check_consistent
from test_documents_samples import make_epub

from miodesk.text.documents import (
    DocumentError,
    document_from_html,
    document_from_text,
    load_document,
)
from miodesk.text.formats.aozora import gaiji_char, jis_x0213_char, looks_like_aozora, ruby_reading
from miodesk.text.normalize import text_for_model
from miodesk.text.segment import segment

TITLE = "吾輩は猫である\u3000夏目漱石"

LEGEND = """\
-------------------------------------------------------
【テキスト中に現れる記号について】

《》：ルビ
（例）吾輩《わがはい》

｜：ルビの付く文字列の始まりを特定する記号
（例）一番｜獰悪《どうあく》

［＃］：入力者注　主に外字の説明や、傍点の位置の指定
　　　（数字は、JIS X 0213の面区点番号、または底本のページと行数）
（例）※［＃「言＋墟のつくり」、第4水準2-88-74］

〔〕：アクセント分解された欧文をかこむ
（例）〔e'tiquette〕

／＼：二倍の踊り字（「く」を縦に長くしたような形の繰り返し記号）
（例）いろ／＼
＊濁点付きの二倍の踊り字は、「／″＼」
-------------------------------------------------------
"""

COLOPHON = """\
底本：「夏目漱石全集1」ちくま文庫、筑摩書房
　　　1987（昭和62）年9月29日第1刷発行
底本の親本：「筑摩全集類聚版　夏目漱石全集」筑摩書房
　　　1971（昭和46）年4月
入力：青空一郎
校正：文庫花子
1999年9月17日公開
2005年11月1日修正
青空文庫作成ファイル：
このファイルは、インターネットの図書館、青空文庫（http://www.aozora.gr.jp/）で作られました。入力、校正、制作にあたったのは、ボランティアの皆さんです。
"""

NEKO = (
    "吾輩は猫である\n夏目漱石\n\n"
    + LEGEND
    + """
［＃８字下げ］一［＃「一」は中見出し］

　吾輩《わがはい》は猫である。名前はまだ無い。
　どこで生れたかとんと見当《けんとう》がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番｜獰悪《どうあく》な種族であったそうだ。この書生というのは時々我々を捕《つかま》えて煮《に》て食うという話である。
　ただ彼の掌《てのひら》に載せられてスーと持ち上げられた時何だかフワフワ［＃「フワフワ」に傍点］した感じがあったばかりである。掌の上で少し落ちついて書生の顔を見たのがいわゆる人間というものの見始《みはじめ》であろう。
［＃ここから２字下げ］
この時妙なものだと思った感じが今でも残っている。
［＃ここで字下げ終わり］
　第一毛をもって装飾されべきはずの顔がつるつるしてまるで薬缶《やかん》だ。その後《ご》猫にもだいぶ逢《あ》ったがこんな片輪には一度も出会《でく》わした事がない。
　書生と主人とは円鑿方※［＃「木＋内」、第3水準1-85-54］で、主人は書生の話を※［＃「言＋墟のつくり」、第4水準2-88-74］だと言う。
　台所には※［＃「魚＋某」、U+2B782、12-3］が一尾と、※［＃「口＋奄」、12-7］という妙な字の札があった。
［＃挿絵（fig789_01.png、横320×縦480）入る］
　吾輩は波斯《ペルシャ》産の猫［＃「猫」は底本では「描」］のごとく、いろ／＼の事をしみ／″＼と考えた。明治３７［＃「３７」は縦中横］年の事である。
［＃改ページ］

［＃８字下げ］［＃中見出し］二［＃中見出し終わり］

　吾輩は新年来多少有名になったので、猫ながらちょっと鼻が高く感ぜらるるのはありがたい。
　元朝早々主人の許《もと》へ一枚の絵端書《えはがき》が来た。〔e'tiquette〕を知らぬ書生の年賀状である。
［＃改ページ］

［＃ここから中見出し］
三
［＃ここで中見出し終わり］

　吾輩は猫ながら時々考える事がある。
［＃地付き］（未完）



"""
    + COLOPHON
)

# What is read, written out by hand: the title once, then the story, every word once, in order.
STORY = [
    ("heading", "吾輩は猫である\n夏目漱石"),
    ("heading", "一"),
    ("paragraph", "わがはいは猫である。名前はまだ無い。"),
    ("paragraph",
     "どこで生れたかとんとけんとうがつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは"
     "記憶している。吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で"
     "一番どうあくな種族であったそうだ。この書生というのは時々我々をつかまえてにて食うという話である。"),
    ("paragraph",
     "ただ彼のてのひらに載せられてスーと持ち上げられた時何だかフワフワした感じがあったばかりである。"
     "掌の上で少し落ちついて書生の顔を見たのがいわゆる人間というもののみはじめであろう。"),
    ("paragraph", "この時妙なものだと思った感じが今でも残っている。"),
    ("paragraph",
     "第一毛をもって装飾されべきはずの顔がつるつるしてまるでやかんだ。そのご猫にもだいぶあったがこんな"
     "片輪には一度もでくわした事がない。"),
    ("paragraph", "書生と主人とは円鑿方枘で、主人は書生の話を譃だと言う。"),
    ("paragraph", "台所には\U0002b782が一尾と、という妙な字の札があった。"),
    ("paragraph", "吾輩はペルシャ産の猫のごとく、いろ〳〵の事をしみ〴〵と考えた。明治３７年の事である。"),
    ("heading", "二"),
    ("paragraph", "吾輩は新年来多少有名になったので、猫ながらちょっと鼻が高く感ぜらるるのはありがたい。"),
    ("paragraph", "元朝早々主人のもとへ一枚のえはがきが来た。étiquetteを知らぬ書生の年賀状である。"),
    ("heading", "三"),
    ("paragraph", "吾輩は猫ながら時々考える事がある。"),
    ("paragraph", "（未完）"),
]
CHAPTERS = [TITLE, "一", "二", "三"]

# The XHTML edition of the same text, as aozora2html writes it (Shift_JIS, CRLF).
NEKO_XHTML = """\
<?xml version="1.0" encoding="Shift_JIS"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN"
    "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="ja" >
<head>
	<meta http-equiv="Content-Type" content="text/html;charset=Shift_JIS" />
	<meta http-equiv="content-style-type" content="text/css" />
	<link rel="stylesheet" type="text/css" href="../../aozora.css" />
	<title>夏目漱石 吾輩は猫である</title>
	<script type="text/javascript" src="../../jquery-1.4.2.min.js"></script>
  <link rel="Schema.DC" href="http://purl.org/dc/elements/1.1/" />
	<meta name="DC.Title" content="吾輩は猫である" />
	<meta name="DC.Creator" content="夏目漱石" />
	<meta name="DC.Publisher" content="青空文庫" />
</head>
<body>
<div class="metadata">
<h1 class="title">吾輩は猫である</h1>
<h2 class="author">夏目漱石</h2>
<br />
<br />
</div>
<div id="contents" style="display:none"></div><div class="main_text"><br />
<div class="jisage_8" style="margin-left: 8em"><h4 class="naka-midashi"><a class="midashi_anchor" id="midashi10">一</a></h4></div>
<br />
　<ruby><rb>吾輩</rb><rp>（</rp><rt>わがはい</rt><rp>）</rp></ruby>は猫である。名前はまだ無い。<br />
　どこで生れたかとんと<ruby><rb>見当</rb><rp>（</rp><rt>けんとう</rt><rp>）</rp></ruby>がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番<ruby><rb>獰悪</rb><rp>（</rp><rt>どうあく</rt><rp>）</rp></ruby>な種族であったそうだ。この書生というのは時々我々を<ruby><rb>捕</rb><rp>（</rp><rt>つかま</rt><rp>）</rp></ruby>えて<ruby><rb>煮</rb><rp>（</rp><rt>に</rt><rp>）</rp></ruby>て食うという話である。<br />
　ただ彼の<ruby><rb>掌</rb><rp>（</rp><rt>てのひら</rt><rp>）</rp></ruby>に載せられてスーと持ち上げられた時何だか<em class="sesame_dot">フワフワ</em>した感じがあったばかりである。掌の上で少し落ちついて書生の顔を見たのがいわゆる人間というものの<ruby><rb>見始</rb><rp>（</rp><rt>みはじめ</rt><rp>）</rp></ruby>であろう。<br />
<div class="jisage_2" style="margin-left: 2em">
この時妙なものだと思った感じが今でも残っている。<br />
</div>
　第一毛をもって装飾されべきはずの顔がつるつるしてまるで<ruby><rb>薬缶</rb><rp>（</rp><rt>やかん</rt><rp>）</rp></ruby>だ。その<ruby><rb>後</rb><rp>（</rp><rt>ご</rt><rp>）</rp></ruby>猫にもだいぶ<ruby><rb>逢</rb><rp>（</rp><rt>あ</rt><rp>）</rp></ruby>ったがこんな片輪には一度も<ruby><rb>出会</rb><rp>（</rp><rt>でく</rt><rp>）</rp></ruby>わした事がない。<br />
　書生と主人とは円鑿方<img src="../../../gaiji/1-85/1-85-54.png" alt="※(「木＋内」、第3水準1-85-54)" class="gaiji" />で、主人は書生の話を<img src="../../../gaiji/2-88/2-88-74.png" alt="※(「言＋墟のつくり」、第4水準2-88-74)" class="gaiji" />だと言う。<br />
　台所には※<span class="notes">［＃「魚＋某」、U+2B782、12-3］</span>が一尾と、※<span class="notes">［＃「口＋奄」、12-7］</span>という妙な字の札があった。<br />
<img class="illustration" width="320" height="480" src="fig789_01.png" alt="挿絵" /><br />
　吾輩は<ruby><rb>波斯</rb><rp>（</rp><rt>ペルシャ</rt><rp>）</rp></ruby>産の猫<span class="notes">［＃「猫」は底本では「描」］</span>のごとく、いろ／＼の事をしみ／″＼と考えた。明治<span dir="ltr">３７</span>年の事である。<br />
<span class="notes">［＃改ページ］</span><br />
<br />
<div class="jisage_8" style="margin-left: 8em"><h4 class="naka-midashi"><a class="midashi_anchor" id="midashi20">二</a></h4></div>
<br />
　吾輩は新年来多少有名になったので、猫ながらちょっと鼻が高く感ぜらるるのはありがたい。<br />
　元朝早々主人の<ruby><rb>許</rb><rp>（</rp><rt>もと</rt><rp>）</rp></ruby>へ一枚の<ruby><rb>絵端書</rb><rp>（</rp><rt>えはがき</rt><rp>）</rp></ruby>が来た。<img src="../../../gaiji/1-09/1-09-63.png" alt="※(アキュートアクセント付きE小文字)" class="gaiji" />tiquetteを知らぬ書生の年賀状である。<br />
<span class="notes">［＃改ページ］</span><br />
<br />
<h4 class="naka-midashi"><a class="midashi_anchor" id="midashi30">三</a></h4>
<br />
　吾輩は猫ながら時々考える事がある。<br />
<div class="chitsuki_0" style="text-align:right; margin-right: 0em">（未完）</div>
<br />
<br />
</div>
<div class="bibliographical_information">
<hr />
<br />
底本：「夏目漱石全集1」ちくま文庫、筑摩書房<br />
　　　1987（昭和62）年9月29日第1刷発行<br />
入力：青空一郎<br />
校正：文庫花子<br />
1999年9月17日公開<br />
2005年11月1日修正<br />
青空文庫作成ファイル：<br />
このファイルは、インターネットの図書館、青空文庫（<a href="http://www.aozora.gr.jp/">http://www.aozora.gr.jp/</a>）で作られました。入力、校正、制作にあたったのは、ボランティアの皆さんです。<br />
<br />
<br />
</div>
<div class="notation_notes">
<hr />
<br />
●表記について<br />
<ul>
	<li>このファイルは W3C 勧告 XHTML1.1 にそった形式で作成されています。</li>
	<li>［＃…］は、入力者による注を表す記号です。</li>
	<li>「くの字点」は「／＼」で表しました。</li>
	<li>「くの字点」をのぞくJIS X 0213にある文字は、画像化して埋め込みました。</li>
</ul>
</div>
<div id="card">
<hr />
<br />
<a href="JavaScript:goLibCard();" id="goAZLibCard">●図書カード</a><script type="text/javascript" src="../../contents.js"></script>
<script type="text/javascript" src="../../golink.js"></script>
</div></body>
</html>
"""

# Nothing of the notation, the legend or the colophon may reach the speech model.
NOT_READ = ("［", "］", "＃", "《", "》", "｜", "※", "／＼", "〔", "〕", "底本", "入力", "校正", "青空文庫",
            "テキスト中に現れる記号", "ルビ", "見出し", "傍点", "字下げ", "水準", "挿絵", "改ページ", "表記について",
            "図書カード", "<", ">")


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def blocks_of(doc) -> list[tuple[str, str]]:
    return [(block.kind, doc.text[block.start : block.end]) for block in doc.blocks]


def check_story(doc) -> None:
    assert blocks_of(doc) == STORY
    assert doc.title == TITLE
    assert [chapter.title for chapter in doc.chapters] == CHAPTERS
    # Each heading starts its chapter, so navigation lands on it.
    starts = {chapter.start for chapter in doc.chapters[1:]}
    assert starts == {block.start for block in doc.blocks[1:] if block.kind == "heading"}
    check_consistent(doc)
    check_utterances(doc)


def check_utterances(doc) -> None:
    """What reaches the model: no notation, and the story's words, each said once."""
    spoken = [text_for_model(utterance.text) for utterance in segment(doc.text)]
    assert spoken
    for text in spoken:
        for mark in NOT_READ:
            assert mark not in text, (mark, text)
    said = "".join(spoken)
    for phrase in ("わがはいは猫である", "どうあくな種族", "円鑿方枘", "いろ〳〵", "étiquette", "年賀状"):
        assert said.count(phrase) == 1, phrase
    assert said.count("吾輩は猫である") == 1  # the title, once; the story's first line is read by its ruby


def aozora_zip(path: Path, text: str, encoding: str = "cp932") -> Path:
    """A zip as Aozora Bunko serves it: the text (CRLF) and the illustration it refers to."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("wagahaiwa_nekodearu.txt", crlf(text).encode(encoding))
        archive.writestr("fig789_01.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    return path


# -- both editions, as downloaded ------------------------------------------------------------------


def test_zipped_shift_jis_edition_reads_the_story_only(tmp_path: Path) -> None:
    doc = load_document(aozora_zip(tmp_path / "789_ruby_5639.zip", NEKO))
    check_story(doc)
    assert "shift_jis" in (doc.encoding or "")
    assert doc.source == tmp_path / "789_ruby_5639.zip"


def test_xhtml_edition_reads_the_story_only(tmp_path: Path) -> None:
    page = tmp_path / "789_14547.html"
    page.write_bytes(crlf(NEKO_XHTML).encode("cp932"))
    doc = load_document(page)
    check_story(doc)
    assert doc.format == "html" and (doc.encoding or "").lower() == "shift_jis"
    # Told by content, not by name: the same page saved without an extension.
    bare = tmp_path / "wagahai"
    bare.write_bytes(page.read_bytes())
    check_story(load_document(bare))


def test_text_edition_in_other_encodings_and_unzipped(tmp_path: Path) -> None:
    for encoding, label in (("cp932", "shift_jis"), ("euc_jis_2004", "euc-jp"), ("utf-8", "utf-8")):
        path = tmp_path / f"neko-{encoding}.txt"
        path.write_bytes(crlf(NEKO).encode(encoding))
        doc = load_document(path)
        check_story(doc)
        assert label in (doc.encoding or ""), (encoding, doc.encoding)
    # EUC-JP inside a zip too.
    check_story(load_document(aozora_zip(tmp_path / "euc.zip", NEKO, "euc_jis_2004")))


def test_pasted_text_is_read_the_same() -> None:
    check_story(document_from_text(NEKO))
    check_story(document_from_text(crlf(NEKO)))
    excerpt = document_from_text("　吾輩《わがはい》は猫である。一番｜獰悪《どうあく》な種族。")
    assert excerpt.text == "わがはいは猫である。一番どうあくな種族。" and excerpt.title == "Clipboard"


def test_pasted_xhtml_is_read_the_same() -> None:
    check_story(document_from_html(NEKO_XHTML))
    # A few lines copied from the page in a browser (its fragment, with the classes kept).
    start = NEKO_XHTML.index("　書生と主人")
    fragment = "<meta charset='utf-8'>" + NEKO_XHTML[start : NEKO_XHTML.index("<span class=\"notes\">［＃改ページ", start)]
    doc = document_from_html(fragment)
    assert blocks_of(doc) == STORY[7:10] and doc.title == "Clipboard"
    # Other pages keep the generic rules: a "notes" class alone is not Aozora's.
    assert document_from_html('<p class="notes">Notes［＃1］</p><br><p>Two</p>').text == "Notes［＃1］\n\nTwo"


def test_cli_text_shows_the_chapters(run_cli, tmp_path: Path) -> None:
    book = aozora_zip(tmp_path / "book.zip", NEKO)
    shown = run_cli("text", book)
    assert shown.returncode == 0, shown.stderr
    headers = [line for line in shown.stdout.splitlines() if line.startswith("=== ")]
    assert headers == [f"=== Chapter {number}: {title} ===" for number, title in enumerate(CHAPTERS, 1)]
    assert "わがはいは猫である。名前はまだ無い。" in shown.stdout
    for mark in ("［＃", "《", "｜", "※", "底本", "【テキスト中に現れる記号について】"):
        assert mark not in shown.stdout, mark

    empty = tmp_path / "pictures.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("fig789_01.png", b"\x89PNG\r\n\x1a\n")
    assert_one_line_error(run_cli("text", empty), "pictures.zip", "zip archive", "no text")


# -- zips ---------------------------------------------------------------------------------------------


def test_zip_without_text_and_zip_bombs(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures.zip"
    with zipfile.ZipFile(pictures, "w") as archive:
        archive.writestr("fig789_01.png", b"\x89PNG\r\n\x1a\n")
        archive.writestr("readme/", b"")
        archive.writestr("__MACOSX/._neko.txt", b"\x00\x05\x16\x07")
    with pytest.raises(DocumentError, match=r"^pictures\.zip is a zip archive with no text \(\.txt\) file in it"):
        load_document(pictures)

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", "あ".encode("cp932") * (8 * 1024 * 1024))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DocumentError, match="zip bomb"):
        load_document(bomb)

    huge = tmp_path / "huge.zip"
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.txt", b"a" * (33 * 1024 * 1024))
    with pytest.raises(DocumentError, match="up to 32 MB"):
        load_document(huge)

    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("neko.txt", b"\r\n")
    with pytest.raises(DocumentError, match="empty"):
        load_document(empty)


def test_zip_picks_the_work_and_reads_any_text(tmp_path: Path) -> None:
    # A readme beside the work is small; the work is read.
    mixed = tmp_path / "mixed.zip"
    with zipfile.ZipFile(mixed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "このファイルについて。".encode("cp932"))
        archive.writestr("neko/wagahaiwa_nekodearu.txt", crlf(NEKO).encode("cp932"))
    check_story(load_document(mixed))
    # A zipped text that is not in Aozora notation is read as plain text.
    plain = tmp_path / "letter.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("letter.txt", "Dear reader,\n\nThe clocks were striking thirteen.\n")
    doc = load_document(plain)
    assert blocks_of(doc) == [("paragraph", "Dear reader,"), ("paragraph", "The clocks were striking thirteen.")]
    assert doc.format == "text" and doc.title == "letter"
    # The XHTML edition zipped.
    page = tmp_path / "page.zip"
    with zipfile.ZipFile(page, "w") as archive:
        archive.writestr("789_14547.html", crlf(NEKO_XHTML).encode("cp932"))
    check_story(load_document(page))


# -- the notation, construct by construct ------------------------------------------------------------


def read(text: str) -> list[tuple[str, str]]:
    return blocks_of(document_from_text(text))


def test_ruby_base_rules() -> None:
    # Without ｜ the base is the run of one kind of character before 《: kanji with 々〆ヶ〇.
    assert read("人々《ひとびと》と八ヶ岳《やつがたけ》と〆切《しめきり》と〇番《まるばん》へ。") == [
        ("paragraph", "ひとびととやつがたけとしめきりとまるばんへ。")]
    # Katakana or Latin bases, as Aozora's converter takes them; ｜ marks any other start.
    assert read("あのボール《たま》とＡＢＣ《エービーシー》と｜あの人《ひと》。") == [
        ("paragraph", "あのたまとエービーシーとひと。")]
    # A gaiji is part of the kanji run; a ruby of emphasis dots is not a reading.
    assert read("※［＃「木＋内」、第3水準1-85-54］穴《ほぞあな》を｜大事《﹅﹅》に。") == [
        ("paragraph", "ほぞあなを大事に。")]
    # 《 ｜ written as gaiji are text, not notation; stray marks are dropped.
    assert read("※［＃始め二重山括弧、1-1-52］本《ほん》※［＃終わり二重山括弧、1-1-53］と※［＃縦線、1-1-35］。｜《》》《") == [
        ("paragraph", "《ほん》と｜。")]


def test_ruby_rule_is_shared_with_epub_and_html(tmp_path: Path) -> None:
    assert ruby_reading("漢字", "かんじ") == "かんじ"
    assert ruby_reading("大事", "﹅﹅") == "大事" and ruby_reading("大事", " ") == "大事"
    markup = "<p><ruby>大事<rt>・・</rt></ruby>な<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>。</p>"
    assert document_from_html(markup).text == "大事なかんじ。"
    book = make_epub(tmp_path / "ruby.epub", [("一", markup)], title="ルビ")
    assert "大事なかんじ。" in load_document(book).text


def test_heading_forms_become_chapters() -> None:
    doc = document_from_text(
        "第一篇［＃「第一篇」は大見出し］\n"
        "［＃５字下げ］［＃小見出し］上［＃小見出し終わり］\n"
        "　本文その一。\n"
        "［＃改丁］\n"
        "［＃ここから大見出し］\n"
        "第二篇\n"
        "　｜緋《ひ》の衣\n"
        "［＃ここで大見出し終わり］\n"
        "［＃５字下げ］一［＃「一」は同行小見出し］　本文その二が同じ行に続く。\n"
        "［＃窓小見出し］窓［＃窓小見出し終わり］本文その三。\n"
        "前置き。｜緋《ひ》の衣［＃「緋の衣」は中見出し］\n"
        "［＃同行中見出し］同行［＃同行中見出し終わり］本文その四。\n"
        "［＃ここから改行天付き、折り返して２字下げ］\n"
        "［＃「合わない」は中見出し］本文その五。\n"
    )
    assert [(b.kind, doc.text[b.start : b.end], b.level) for b in doc.blocks] == [
        ("heading", "第一篇", 3),
        ("heading", "上", 5),
        ("paragraph", "本文その一。", 0),
        ("heading", "第二篇\u3000ひの衣", 3),
        ("heading", "一", 5),
        ("paragraph", "本文その二が同じ行に続く。", 0),
        ("heading", "窓", 5),
        ("paragraph", "本文その三。", 0),
        ("paragraph", "前置き。", 0),
        ("heading", "ひの衣", 4),
        ("heading", "同行", 4),
        ("paragraph", "本文その四。", 0),
        ("paragraph", "本文その五。", 0),
    ]
    # The top level in use (大見出し, twice) makes the chapters.
    assert [chapter.title for chapter in doc.chapters] == ["第一篇", "第二篇\u3000ひの衣"]
    check_consistent(doc)


def test_notes_are_not_read() -> None:
    assert read(
        "［＃ここから２字下げ］\n"
        "学［＃二］而［＃レ］時習［＃一］之［＃（ヲ）］。\n"
        "［＃ここで字下げ終わり］\n"
        "［＃ページの左右中央］\n"
        "［＃地から２字上げ］（明治三十八年）\n"
        "［＃太字］強い［＃太字終わり］字と［＃「弱い」に傍線］と「※［＃「魚＋某」、U+2B782、12-3］［＃「※」は底本では「＊」］」。\n"
        "［＃割り注］注の中身［＃割り注終わり］。\n"
        "閉じない注［＃ここから\n"
    ) == [
        ("paragraph", "学而時習之。"),
        ("paragraph", "（明治三十八年）"),
        ("paragraph", "強い字とと「\U0002b782」。"),
        ("paragraph", "注の中身。"),
        ("paragraph", "閉じない注ここから"),
    ]


def test_gaiji() -> None:
    # JIS X 0213 plane-row-cell, both planes (the legend's own example is 2-88-74, 言＋虚).
    assert jis_x0213_char(1, 85, 54) == "枘" and jis_x0213_char(2, 88, 74) == "譃"
    assert jis_x0213_char(1, 2, 22) == "〻" and jis_x0213_char(1, 9, 63) == "é"
    assert jis_x0213_char(1, 95, 1) == "" and jis_x0213_char(3, 1, 1) == ""
    assert gaiji_char("「木＋内」、第3水準1-85-54") == "枘"
    assert gaiji_char("二の字点、1-2-22") == "〻"
    assert gaiji_char("「魚＋某」、U+2B782、12-3") == "\U0002b782"
    assert gaiji_char("「口＋奄」、12-7") == ""
    assert gaiji_char("「ローマ数字1」、1-13-21") == "Ⅰ"  # digits of the description are not the code
    assert read("※［＃「口＋奄」、12-7］※［＃「言＋墟のつくり」、第4水準2-88-74］。※［＃U+D800］※［＃U+110000］") == [
        ("paragraph", "譃。")]


def test_kunoji_and_accents() -> None:
    assert read("いろ／＼としみ／″＼。〔e'tiquette〕と〔Sito^t〕と〔l'AE&ge〕と〔Noe:l〕と〔まま〕。") == [
        ("paragraph", "いろ〳〵としみ〴〵。étiquetteとSitôtとl'ÆgeとNoëlと〔まま〕。")]


def test_older_files_without_a_legend() -> None:
    doc = document_from_text(
        "坊っちゃん\n夏目漱石\n\n\n［＃５字下げ］一［＃「一」は中見出し］\n\n"
        "　親譲《おやゆず》りの無鉄砲《むてっぽう》で小供の時から損ばかりしている。\n\n\n"
        "底本：「坊っちゃん」新潮文庫、新潮社\n入力：青空一郎\n"
    )
    assert blocks_of(doc) == [
        ("heading", "坊っちゃん\n夏目漱石"),
        ("heading", "一"),
        ("paragraph", "おやゆずりのむてっぽうで小供の時から損ばかりしている。"),
    ]
    assert doc.title == "坊っちゃん\u3000夏目漱石"


def test_detection_by_content() -> None:
    assert looks_like_aozora(NEKO)
    assert looks_like_aozora("吾輩《わがはい》は猫である。")
    assert looks_like_aozora("本文。［＃改ページ］")
    assert looks_like_aozora("いろ／＼の事。") and not looks_like_aozora("A／＼B")
    assert looks_like_aozora("本文。\n\n底本：「全集」筑摩書房\n入力：青空一郎\n")
    assert not looks_like_aozora("我读了《红楼梦》。")  # Chinese title marks are not ruby
    assert not looks_like_aozora("吾輩は猫である。名前はまだ無い。\n[#] not a note\n底本の話。")
    # A plain text keeps the plain loader's rules (and its brackets).
    doc = document_from_text("第一章\n　《お知らせ》を読む。\n第二章\n　おわり。\n")
    assert [chapter.title for chapter in doc.chapters] == ["第一章", "第二章"]
    assert "《お知らせ》" in doc.text


def test_paste_from_the_clipboard(qapp) -> None:
    """The window's Paste: an Aozora text copied as plain text, and a piece of its page copied as HTML."""
    from PySide6.QtCore import QMimeData

    from miodesk.ui.clipboard import document_from_clipboard

    board = qapp.clipboard()
    try:
        board.setText(crlf(NEKO))
        doc = document_from_clipboard(board)
        assert doc is not None
        check_story(doc)
        start = NEKO_XHTML.index("　吾輩は<ruby><rb>波斯")
        mime = QMimeData()
        mime.setHtml(NEKO_XHTML[start : NEKO_XHTML.index("<br />", start)])
        mime.setText("吾輩は波斯産の猫［＃「猫」は底本では「描」］のごとく")
        board.setMimeData(mime)
        doc = document_from_clipboard(board)
        assert doc is not None and blocks_of(doc) == STORY[9:10]
    finally:
        board.clear()
