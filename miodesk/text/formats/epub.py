"""EPUB 2 and 3: content documents in spine order, chapters named by the table of contents.

The table of contents comes from the EPUB 3 navigation document (`nav.xhtml`) or, failing that,
the EPUB 2 `toc.ncx`. Every entry starts a chapter at the block it points to (a file, or an anchor
inside one); spine documents no entry points to (split files, title pages) continue the chapter
before them. With no table of contents each spine document is a chapter named by its first heading.
Spine items marked linear="no" (pop-up notes and the like) are not read.

DRM: a book whose content documents are listed in META-INF/encryption.xml with a real cipher is
refused with one line; font obfuscation (IDPF, Adobe), which only scrambles embedded fonts, is fine.
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from pathlib import Path

from miodesk.text.formats.base import MAX_COVER_BYTES, Document, DocumentBuilder, DocumentError, clean_block
from miodesk.text.formats.html import decode_html_bytes, extract_html, fill_code
from miodesk.text.formats.safezip import SafeZip, attribute, join_href, local

log = logging.getLogger(__name__)

MAX_SPINE_ITEMS = 20_000
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
_CONTENT_TYPES = {"application/xhtml+xml", "text/html", "application/xml", "text/xml", "text/x-oeb1-document"}


class _NavParser(HTMLParser):
    """Links of the `<nav epub:type="toc">` of an EPUB 3 navigation document, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.toc: list[tuple[str, str]] = []
        self.other: list[tuple[str, str]] = []  # links of any other nav, used if there is no toc
        self._nav_depth = 0
        self._in_toc = False
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: (value or "") for name, value in attrs}
        if tag == "nav":
            self._nav_depth += 1
            kinds = attributes.get("epub:type", "").split() + attributes.get("role", "").split()
            if "toc" in kinds or "doc-toc" in kinds:
                self._in_toc = True
        elif tag == "a" and self._nav_depth:
            self._href = attributes.get("href", "")
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1
            if not self._nav_depth:
                self._in_toc = False
        elif tag == "a" and self._href is not None:
            (self.toc if self._in_toc else self.other).append((self._href, "".join(self._text)))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)


class _Epub:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = SafeZip(path, "EPUB e-book")

    def text_of(self, member: str) -> str:
        text, _encoding, _warnings = decode_html_bytes(self.zip.read(member), member)
        return text

    def package_path(self) -> str:
        if self.zip.resolve("META-INF/container.xml"):
            container = self.zip.read_xml("META-INF/container.xml")
            for element in container.iter():
                if local(element.tag) == "rootfile":
                    full_path = attribute(element, "full-path")
                    if full_path and self.zip.resolve(full_path):
                        return self.zip.resolve(full_path) or full_path
        candidates = [name for name in self.zip.names if name.lower().endswith(".opf")]
        if not candidates:
            raise DocumentError(f"{self.path.name} is not a valid EPUB e-book (no package document)")
        return candidates[0]

    def encrypted_members(self) -> set[str]:
        """Members encrypted with a real cipher (not font obfuscation)."""
        if not self.zip.resolve("META-INF/encryption.xml"):
            return set()
        try:
            root = self.zip.read_xml("META-INF/encryption.xml")
        except DocumentError:
            raise DocumentError(f"{self.path.name} is encrypted (DRM); MioDesk cannot read it") from None
        encrypted: set[str] = set()
        for data in root.iter():
            if local(data.tag) != "EncryptedData":
                continue
            algorithm = ""
            uris: list[str] = []
            for element in data.iter():
                if local(element.tag) == "EncryptionMethod":
                    algorithm = attribute(element, "Algorithm")
                elif local(element.tag) == "CipherReference":
                    uris.append(join_href("", attribute(element, "URI"))[0])
            if algorithm not in _FONT_OBFUSCATION:
                encrypted.update(uri.lower() for uri in uris)
        return encrypted

    def load(self) -> Document:
        opf_path = self.package_path()
        opf = self.zip.read_xml(opf_path)
        title = ""
        manifest: dict[str, tuple[str, str, str]] = {}  # id → (member, media type, properties)
        spine: list[str] = []
        toc_id = ""
        creators: list[tuple[str, str, str]] = []  # (id, name, EPUB 2 opf:role)
        roles: dict[str, str] = {}  # EPUB 3: creator id → role (<meta refines="#id" property="role">)
        cover_id = ""  # EPUB 2: <meta name="cover" content="item id">
        for element in opf.iter():
            name = local(element.tag)
            if name == "title" and not title:
                title = "".join(element.itertext())
            elif name == "creator":
                creators.append((attribute(element, "id"), "".join(element.itertext()), attribute(element, "role")))
            elif name == "meta" and attribute(element, "property") == "role":
                roles[attribute(element, "refines").lstrip("#")] = "".join(element.itertext()).strip()
            elif name == "meta" and attribute(element, "name") == "cover":
                cover_id = attribute(element, "content")
            elif name == "item":
                member, _ = join_href(opf_path, attribute(element, "href"))
                manifest[attribute(element, "id")] = (
                    self.zip.resolve(member) or member,
                    attribute(element, "media-type").lower(),
                    attribute(element, "properties"),
                )
            elif name == "spine":
                toc_id = attribute(element, "toc")
            elif name == "itemref" and attribute(element, "linear").lower() != "no":
                spine.append(attribute(element, "idref"))
        if len(spine) > MAX_SPINE_ITEMS:
            raise DocumentError(f"{self.path.name} lists {len(spine):,} documents; that is not a real e-book")
        documents = [manifest[idref][0] for idref in spine if idref in manifest
                     and manifest[idref][1] in _CONTENT_TYPES]
        if not documents:
            raise DocumentError(f"{self.path.name} has no readable text (its spine lists no documents)")

        encrypted = self.encrypted_members()
        if encrypted and (encrypted & {member.lower() for member in documents}):
            raise DocumentError(f"{self.path.name} is protected by DRM (encrypted); MioDesk cannot read it")

        toc = self.table_of_contents(manifest, toc_id)
        builder = DocumentBuilder(self.path.name)
        entries_by_member: dict[str, list[tuple[str, str]]] = {}
        for member, fragment, entry_title in toc:
            entries_by_member.setdefault(member.lower(), []).append((fragment, entry_title))
        for number, member in enumerate(documents, 1):
            if not self.zip.resolve(member):
                builder.warnings.append(f"{self.path.name}: {member} is missing; skipped")
                continue
            extracted = extract_html(self.text_of(member))
            items = fill_code(extracted.items)
            first_block = builder.block_count
            item_blocks: list[int] = []
            for kind, text, level in items:
                item_blocks.append(builder.block_count)
                builder.add(kind, text, level)
            item_blocks.append(builder.block_count)
            if toc:
                for fragment, entry_title in entries_by_member.get(member.lower(), []):
                    index = extracted.anchors.get(fragment) if fragment else None
                    at = first_block if index is None else item_blocks[min(index, len(items))]
                    builder.chapter(entry_title, at_block=at)
            elif builder.block_count > first_block:
                heading = next((text for kind, text, _l in items if kind == "heading"), "")
                builder.chapter(heading or extracted.title or f"Section {number}", at_block=first_block)
        cover, cover_mime = self.cover(manifest, cover_id)
        return builder.build(title or self.path.stem, self.path, "epub", author=_authors(creators, roles),
                             cover=cover, cover_mime=cover_mime)

    def cover(self, manifest: dict[str, tuple[str, str, str]], cover_id: str) -> tuple[bytes | None, str]:
        """The cover image (EPUB 3's cover-image item, else EPUB 2's <meta name="cover">): (bytes, media
        type), or (None, "") when there is none or it cannot be read (it is only metadata)."""
        item = next((entry for entry in manifest.values() if "cover-image" in entry[2].split()), None)
        if item is None and cover_id in manifest:
            item = manifest[cover_id]
        if item is None or not item[1].startswith("image/") or not self.zip.resolve(item[0]):
            return None, ""
        try:
            return self.zip.read(item[0], limit=MAX_COVER_BYTES), item[1]
        except DocumentError as error:
            log.info("EPUB cover left out: %s", error)
            return None, ""

    def table_of_contents(
        self, manifest: dict[str, tuple[str, str, str]], toc_id: str
    ) -> list[tuple[str, str, str]]:
        """(member, fragment, title) for each entry; [] when the book has no usable table."""
        nav = next((m for m, _t, props in manifest.values() if "nav" in props.split()), None)
        if nav and self.zip.resolve(nav):
            parser = _NavParser()
            parser.feed(self.text_of(nav))
            parser.close()
            links = parser.toc or parser.other
            entries = [(*join_href(nav, href), text) for href, text in links if href]
            entries = [(self.zip.resolve(m) or m, f, clean_block(t, keep_lines=False)) for m, f, t in entries]
            if entries:
                return entries
        ncx = manifest.get(toc_id, ("", "", ""))[0] or next(
            (m for m, media, _p in manifest.values() if media == "application/x-dtbncx+xml"), ""
        )
        if not ncx or not self.zip.resolve(ncx):
            return []
        entries = []
        for point in self.zip.read_xml(ncx).iter():
            if local(point.tag) != "navPoint":
                continue
            label, source = "", ""
            for child in point:
                if local(child.tag) == "navLabel":
                    label = clean_block("".join(child.itertext()), keep_lines=False)
                elif local(child.tag) == "content":
                    source = attribute(child, "src")
            if source:
                member, fragment = join_href(ncx, source)
                entries.append((self.zip.resolve(member) or member, fragment, label))
        return entries


def _authors(creators: list[tuple[str, str, str]], roles: dict[str, str]) -> str:
    """The book's authors: the creators without a role or with the role "aut" (not illustrators,
    translators, editors…), joined by commas."""
    names = [" ".join(name.split()) for creator_id, name, role in creators
             if (roles.get(creator_id) or role or "aut").lower() == "aut" and name.strip()]
    return ", ".join(dict.fromkeys(names))


def load_epub(path: Path) -> Document:
    epub = _Epub(path)
    try:
        return epub.load()
    finally:
        epub.zip.close()
