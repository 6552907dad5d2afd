"""Read members of untrusted zip containers (EPUB, DOCX, zipped texts) and parse their XML safely.

Zip bombs: a member is refused when its declared size is over the member cap, when it claims more
than `MAX_RATIO` times its compressed size (text compresses 3-10x, bombs 1000x), or when the
members read so far would pass the total cap; the actual decompressed bytes are counted too, so a
member that lies about its size cannot inflate past the cap. XML goes through defusedxml with DTD
entities and external references forbidden (billion laughs, XXE).

A zip that is neither EPUB nor DOCX is opened as a zipped text (`load_text_zip`): Aozora Bunko
distributes its works as a zip holding one Shift_JIS .txt, sometimes with illustrations beside it.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from miodesk.text.formats.base import (
    MAX_CONTAINER_FILE_BYTES,
    MAX_TEXT_FILE_BYTES,
    MB,
    Document,
    DocumentError,
    size_text,
)
from miodesk.text.formats.encoding import decode_bytes
from miodesk.text.formats.html import decode_html_bytes, document_from_html
from miodesk.text.formats.plaintext import document_from_text

MAX_MEMBER_BYTES = 32 * MB
MAX_TOTAL_BYTES = 512 * MB
MAX_ENTRIES = 100_000
MAX_RATIO = 150
_CHUNK = 1 * MB


class SafeZip:
    def __init__(self, path: Path, what: str) -> None:
        self.name = path.name
        self.what = what
        self._read_total = 0
        try:
            size = path.stat().st_size
        except OSError as error:
            raise DocumentError(f"cannot read {self.name}: {error.strerror or error}") from None
        if size > MAX_CONTAINER_FILE_BYTES:
            raise DocumentError(
                f"{self.name} is {size_text(size)}; MioDesk opens a {what} of up to "
                f"{size_text(MAX_CONTAINER_FILE_BYTES)}"
            )
        if size == 0:
            raise DocumentError(f"{self.name} is empty")
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except Exception as error:  # zipfile raises many kinds on damaged archives
            raise DocumentError(f"{self.name} is not a valid {what} (damaged zip: {error})") from None
        if len(infos) > MAX_ENTRIES:
            raise DocumentError(f"{self.name} holds {len(infos):,} files; that is not a real {what}")
        self._by_name = {info.filename: info for info in infos}
        self._by_lower = {info.filename.lower(): info for info in infos}

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def size(self, name: str) -> int:
        """The unpacked size the archive declares for a member (0 for an unknown name)."""
        info = self._by_name.get(name)
        return 0 if info is None else info.file_size

    def resolve(self, name: str) -> str | None:
        """The member's real name: exact, else case-insensitive (hand-made e-books get case wrong)."""
        info = self._by_name.get(name) or self._by_lower.get(name.lower())
        return None if info is None else info.filename

    def read(self, name: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
        real = self.resolve(name)
        if real is None:
            raise DocumentError(f"{self.name} is not a valid {self.what}: {name} is missing")
        info = self._by_name[real]
        if info.file_size > limit:
            raise DocumentError(
                f"{self.name}: {real} is {size_text(info.file_size)} unpacked; "
                f"MioDesk reads parts of up to {size_text(limit)}"
            )
        if info.file_size > MB and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DocumentError(f"{self.name} looks like a zip bomb ({real} unpacks {MAX_RATIO}x or more)")
        if self._read_total + info.file_size > MAX_TOTAL_BYTES:
            raise DocumentError(f"{self.name} unpacks to more than {size_text(MAX_TOTAL_BYTES)} of text")
        chunks: list[bytes] = []
        count = 0
        try:
            with self._zip.open(info) as handle:
                while True:
                    chunk = handle.read(_CHUNK)
                    if not chunk:
                        break
                    count += len(chunk)
                    if count > min(limit, info.file_size):
                        raise DocumentError(
                            f"{self.name} looks like a zip bomb ({real} is larger than declared)"
                        )
                    chunks.append(chunk)
        except DocumentError:
            raise
        except RuntimeError as error:
            if "encrypt" in str(error).lower() or "password" in str(error).lower():
                raise DocumentError(f"{self.name} is password-protected") from None
            raise DocumentError(f"{self.name} is damaged ({real}: {error})") from None
        except Exception as error:  # CRC mismatch, truncated data, unsupported compression
            raise DocumentError(f"{self.name} is damaged ({real}: {error})") from None
        self._read_total += count
        return b"".join(chunks)

    def read_xml(self, name: str) -> Element:
        return parse_xml(self.read(name), f"{self.name}: {name}")


def parse_xml(data: bytes, where: str) -> Element:
    """Parse untrusted XML: no entity declarations, no external references."""
    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise DocumentError(f"{where} declares XML entities; refused (entity expansion attack?)") from None
    except (ParseError, ValueError, LookupError, RecursionError) as error:
        # LookupError: an XML declaration naming an encoding that does not exist.
        raise DocumentError(f"{where} is not valid XML ({error})") from None


def local(tag: object) -> str:
    """An element's name without its namespace ("{ns}p" → "p"); comments have no string tag."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def attribute(element: Element, name: str) -> str:
    """An attribute by local name, whatever its namespace."""
    for key, value in element.attrib.items():
        if local(key) == name:
            return value
    return ""


def join_href(base_member: str, href: str) -> tuple[str, str]:
    """Resolve a relative link inside the archive: (member path, fragment)."""
    href, _, fragment = href.partition("#")
    if not href:
        return base_member, unquote(fragment)
    path = posixpath.normpath(posixpath.join(posixpath.dirname(base_member), unquote(href)))
    return path.lstrip("/"), unquote(fragment)


_TEXT_MEMBERS = (".txt",)
_PAGE_MEMBERS = (".html", ".htm", ".xhtml")


def text_member(archive: SafeZip) -> str | None:
    """The member a zipped text is read from: the largest .txt (a readme is small), else the largest
    web page; never a folder or macOS's resource-fork copies (__MACOSX/, ._name)."""
    def readable(name: str, suffixes: tuple[str, ...]) -> bool:
        base = posixpath.basename(name)
        return (not name.endswith("/") and not name.startswith("__MACOSX/") and not base.startswith("._")
                and base.lower().endswith(suffixes))

    for suffixes in (_TEXT_MEMBERS, _PAGE_MEMBERS):
        members = [name for name in archive.names if readable(name, suffixes)]
        if members:
            return max(members, key=archive.size)
    return None


def load_text_zip(path: Path) -> Document:
    """A zip holding a text (Aozora Bunko's downloads): its text member, in Aozora notation or not."""
    with SafeZip(path, "zip archive") as archive:
        member = text_member(archive)
        if member is None:
            raise DocumentError(
                f"{path.name} is a zip archive with no text (.txt) file in it, not an e-book or "
                "document MioDesk can read"
            )
        data = archive.read(member, MAX_TEXT_FILE_BYTES)
    if not data.strip():
        raise DocumentError(f"{path.name}: {member} is empty")
    if member.lower().endswith(_PAGE_MEMBERS):
        markup, encoding, warnings = decode_html_bytes(data, path.name)
        document = document_from_html(markup, path.stem)
    else:
        text, encoding, warnings = decode_bytes(data, path.name)
        document = document_from_text(text, path.stem)  # Aozora notation is detected there
    document.source = path
    document.encoding = encoding
    document.warnings = warnings + document.warnings
    return document
