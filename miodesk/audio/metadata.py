"""Title, author, cover and chapter marks written into a finished audio file, in each format's own way.

| format   | tags                                    | chapters                                               |
|----------|-----------------------------------------|--------------------------------------------------------|
| M4B, M4A | iTunes atoms ©nam ©alb ©ART aART, covr  | QuickTime chapter track and Nero `chpl` (1)            |
| MP3      | ID3v2.3 TIT2 TALB TPE1 TPE2, APIC       | ID3 CHAP frames under a CTOC table of contents         |
| Ogg Opus | Vorbis comments, METADATA_BLOCK_PICTURE | CHAPTER001=HH:MM:SS.mmm, CHAPTER001NAME=… (Xiph's)     |
| FLAC     | Vorbis comments, PICTURE block          | the same chapter comments                              |
| WAV      | LIST/INFO INAM, IART                    | none: WAV has no chapter marks that players read       |

(1) Both: Apple's players read the QuickTime track, Mp3tag and some players only `chpl`.

M4B and M4A are muxed here (PyAV, FFmpeg's `ipod` muxer) from an MP4 of the encoded AAC: FFmpeg
writes both kinds of chapter marks itself, but only from chapters known when it writes the header,
which a streamed render does not know until the end. The stream is copied, not encoded again. The
other formats are finished files that mutagen (pure Python) edits in place.

Limits of the formats: Nero `chpl` holds at most 255 chapters and 255 bytes of title (FFmpeg keeps
the first 255; the QuickTime track holds all), so titles are cut to 255 bytes at a character
boundary. An ID3 CTOC lists at most 255 entries, so more chapters get a table of tables (the ID3
chapter note allows nesting; players that ignore the CTOC read the CHAP frames, kept in time order).
Chapter comments are numbered with three digits (Xiph's note: 000 to 999; FFmpeg reads three digits
and would give a CHAPTER1000NAME to chapter 100), so Ogg Opus and FLAC hold at most 1,000 chapters.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

COVER_MIME_TYPES = ("image/jpeg", "image/png")  # what every player shows, and all MP4 takes
MAX_COVER_BYTES = 16_000_000  # a FLAC picture block's length field is 24 bits
MAX_MP4_TITLE_BYTES = 255  # Nero chpl stores a title's length in one byte
MAX_CTOC_CHILDREN = 255  # an ID3 CTOC stores its entry count in one byte
MAX_VORBIS_CHAPTERS = 1000  # CHAPTER000 to CHAPTER999: FFmpeg reads three digits


@dataclass(frozen=True)
class ChapterMark:
    """A chapter that starts `start_s` seconds into the audio and ends where the next starts."""

    title: str
    start_s: float


@dataclass
class BookTags:
    """What the file says about the book; empty fields are left out. `cover_mime` is found from the
    image's bytes when empty."""

    title: str = ""
    author: str = ""
    cover: bytes | None = None
    cover_mime: str = ""


@dataclass(frozen=True)
class ChapterSpan:
    title: str
    start_s: float
    end_s: float


def clean_text(text: str) -> str:
    """One line without control characters: ID3 separates values with NUL, players show one line."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())


def chapter_spans(chapters: Sequence[ChapterMark], duration_s: float) -> list[ChapterSpan]:
    """Chapters in time order, each ending where the next starts, the last at the end of the audio."""
    ordered = sorted(chapters, key=lambda mark: mark.start_s)  # stable: equal starts keep their order
    starts = [min(max(0.0, mark.start_s), duration_s) for mark in ordered]
    ends = starts[1:] + [duration_s] if starts else []
    return [ChapterSpan(clean_text(mark.title), start, end)
            for mark, start, end in zip(ordered, starts, ends, strict=True)]


def sniff_image_mime(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return ""


def usable_cover(tags: BookTags) -> tuple[bytes, str] | None:
    """(image, mime) when the cover can be written everywhere: JPEG or PNG, under MAX_COVER_BYTES."""
    if not tags.cover:
        return None
    mime = (tags.cover_mime or sniff_image_mime(tags.cover)).lower()
    if mime == "image/jpg":
        mime = "image/jpeg"
    if mime not in COVER_MIME_TYPES or len(tags.cover) > MAX_COVER_BYTES:
        return None
    return tags.cover, mime


def cover_problem(tags: BookTags) -> str | None:
    """Why the cover is left out, or None."""
    if tags.cover and usable_cover(tags) is None:
        if len(tags.cover) > MAX_COVER_BYTES:
            return f"the cover image was left out: it is larger than {MAX_COVER_BYTES // 1_000_000} MB"
        return "the cover image was left out: only JPEG and PNG covers are written"
    return None


def _cut_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")  # drops a character cut in half


def timestamp(seconds: float) -> str:
    """HH:MM:SS.mmm (hours may pass 99)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


# --- M4B / M4A -------------------------------------------------------------------------------------

def mux_mp4(source: BinaryIO, target: BinaryIO, spans: Sequence[ChapterSpan], tags: BookTags,
            audiobook: bool, priming: int = 0) -> None:
    """Copy the AAC stream of the MP4 `source` into the MP4 `target` with chapters, title and author.

    `priming`: samples the encoder put before the first real one. The fragmented `source` cannot say
    so; starting the copy that much before zero makes FFmpeg write an edit list, with which players
    skip them and the speech (and so each chapter mark) starts on time."""
    import av  # the optional extra: the writer checked that it is installed

    with av.open(source, "r", format="mp4") as inp:
        audio = inp.streams.audio[0]
        options = {"brand": "M4B "} if audiobook else {}  # the major brand Apple gives audiobooks
        with av.open(target, "w", format="ipod", options=options) as out:
            stream = out.add_stream_from_template(audio)
            title, author = clean_text(tags.title), clean_text(tags.author)
            for key, value in (("title", title), ("album", title), ("artist", author), ("album_artist", author)):
                if value:
                    out.metadata[key] = value
            out.set_chapters([
                {"id": index + 1, "start": round(span.start_s * 1000), "end": round(span.end_s * 1000),
                 "time_base": Fraction(1, 1000),
                 "metadata": {"title": _cut_utf8(span.title, MAX_MP4_TITLE_BYTES)}}
                for index, span in enumerate(spans)
            ])
            shift = round(priming / audio.sample_rate / audio.time_base) if priming else 0
            for packet in inp.demux(audio):
                if packet.dts is None:  # the demuxer's empty packet at the end
                    continue
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = stream
                out.mux(packet)


def tag_mp4(path: Path, tags: BookTags, audiobook: bool) -> None:
    """The cover, and the media kind "Audiobook" (iTunes' stik 2) for an M4B."""
    from mutagen.mp4 import MP4, MP4Cover

    cover = usable_cover(tags)
    if cover is None and not audiobook:
        return
    mp4 = MP4(path)
    if mp4.tags is None:
        mp4.add_tags()
    assert mp4.tags is not None
    if cover is not None:
        image, mime = cover
        kind = MP4Cover.FORMAT_JPEG if mime == "image/jpeg" else MP4Cover.FORMAT_PNG
        mp4.tags["covr"] = [MP4Cover(image, imageformat=kind)]
    if audiobook:
        mp4.tags["stik"] = [2]
    mp4.save()


# --- MP3 -------------------------------------------------------------------------------------------

def tag_mp3(path: Path, tags: BookTags, spans: Sequence[ChapterSpan]) -> None:
    """ID3v2.3 (what Windows and older players read) with CHAP frames and their CTOC."""
    from mutagen.id3 import APIC, CHAP, CTOC, ID3, TALB, TIT2, TPE1, TPE2, CTOCFlags, ID3NoHeaderError, PictureType

    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        id3 = ID3()
    title, author = clean_text(tags.title), clean_text(tags.author)
    if title:
        id3.add(TIT2(encoding=3, text=[title]))
        id3.add(TALB(encoding=3, text=[title]))
    if author:
        id3.add(TPE1(encoding=3, text=[author]))
        id3.add(TPE2(encoding=3, text=[author]))
    cover = usable_cover(tags)
    if cover is not None:
        image, mime = cover
        id3.add(APIC(encoding=3, mime=mime, type=PictureType.COVER_FRONT, desc="Cover", data=image))
    if spans:
        ids = [f"chp{index}" for index in range(len(spans))]
        top_children = ids
        if len(ids) > MAX_CTOC_CHILDREN:  # one CTOC counts its entries in a byte: a table of tables
            groups = [ids[at:at + MAX_CTOC_CHILDREN] for at in range(0, len(ids), MAX_CTOC_CHILDREN)]
            top_children = [f"toc{number}" for number in range(len(groups))]
            for element_id, group in zip(top_children, groups, strict=True):
                id3.add(CTOC(element_id=element_id, flags=CTOCFlags.ORDERED, child_element_ids=group))
        id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=top_children,
                     sub_frames=[TIT2(encoding=3, text=[title or "Chapters"])]))
        for element_id, span in zip(ids, spans, strict=True):
            id3.add(CHAP(element_id=element_id, start_time=round(span.start_s * 1000),
                         end_time=round(span.end_s * 1000), start_offset=0xFFFFFFFF, end_offset=0xFFFFFFFF,
                         sub_frames=[TIT2(encoding=3, text=[span.title])]))
    id3.save(path, v2_version=3)
    if spans:
        _order_chapter_frames(path)


def _order_chapter_frames(path: Path) -> None:
    """Put the CHAP frames in time order (chp0, chp1, …) where mutagen wrote them by size. The order is
    the CTOC's, but FFmpeg, and so many players, list chapters in the order of the frames. Same frames,
    same total size: the tag is rewritten in place."""
    with open(path, "rb+") as file:
        header = file.read(10)
        if header[:3] != b"ID3" or header[3] != 3 or header[5] & 0xC0:  # v2.3, no unsync/extended header
            return
        size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
        body = file.read(size)
        frames: list[bytes] = []
        offset = 0
        while offset + 10 <= len(body) and body[offset] != 0:  # padding (zeros) ends the frames
            length = struct.unpack(">I", body[offset + 4:offset + 8])[0]
            frames.append(body[offset:offset + 10 + length])
            offset += 10 + length

        def chapter_number(frame: bytes) -> int:
            if frame[:4] != b"CHAP":
                return -1
            element_id = frame[10:frame.index(b"\x00", 10)]
            return int(element_id[3:]) if element_id[3:].isdigit() else -1

        positions = [index for index, frame in enumerate(frames) if frame[:4] == b"CHAP"]
        ordered = iter(sorted((frames[index] for index in positions), key=chapter_number))
        for index in positions:
            frames[index] = next(ordered)
        file.seek(10)
        file.write(b"".join(frames))


# --- Ogg Opus and FLAC -----------------------------------------------------------------------------

def _flac_picture(image: bytes, mime: str) -> Any:
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = 3  # front cover
    picture.mime = mime
    picture.desc = "Cover"
    picture.data = image
    return picture


def vorbis_comments(tags: BookTags, spans: Sequence[ChapterSpan]) -> list[tuple[str, str]]:
    comments: list[tuple[str, str]] = []
    title, author = clean_text(tags.title), clean_text(tags.author)
    if title:
        comments += [("TITLE", title), ("ALBUM", title)]
    if author:
        comments += [("ARTIST", author), ("ALBUMARTIST", author)]
    # Numbered from 001 as in Xiph's example; 1,000 chapters need 000 too (FFmpeg's own numbering).
    first = 1 if len(spans) < MAX_VORBIS_CHAPTERS else 0
    for number, span in enumerate(spans[:MAX_VORBIS_CHAPTERS], start=first):
        key = f"CHAPTER{number:03d}"
        comments += [(key, timestamp(span.start_s)), (key + "NAME", span.title)]
    return comments


def tag_vorbis(path: Path, kind: str, tags: BookTags, spans: Sequence[ChapterSpan]) -> None:
    """Vorbis comments (tags and chapters) and the cover in a FLAC (`kind` "flac") or Ogg Opus file."""
    cover = usable_cover(tags)
    audio: Any
    if kind == "flac":
        from mutagen.flac import FLAC

        audio = FLAC(path)
        if cover is not None:
            audio.clear_pictures()
            audio.add_picture(_flac_picture(*cover))
    else:
        from mutagen.oggopus import OggOpus

        audio = OggOpus(path)
    if audio.tags is None:
        audio.add_tags()
    for key, value in vorbis_comments(tags, spans):
        audio.tags[key] = [value]
    if kind != "flac" and cover is not None:
        block = _flac_picture(*cover).write()
        audio.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(block).decode("ascii")]
    audio.save()


# --- WAV -------------------------------------------------------------------------------------------

def wav_info_chunk(tags: BookTags) -> bytes:
    """A LIST/INFO chunk with INAM (title) and IART (artist), UTF-8; empty when there is neither."""
    fields = b""
    for key, value in ((b"INAM", clean_text(tags.title)), (b"IART", clean_text(tags.author))):
        if value:
            data = value.encode("utf-8") + b"\x00"
            fields += key + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    if not fields:
        return b""
    return b"LIST" + struct.pack("<I", 4 + len(fields)) + b"INFO" + fields


def append_wav_info(file: BinaryIO, tags: BookTags) -> None:
    """Add the INFO chunk after the samples of a finished 16-bit WAV and fix the RIFF size."""
    chunk = wav_info_chunk(tags)
    file.seek(40)
    if not chunk or file.read(4) == b"\xff\xff\xff\xff":  # past 4 GiB readers read the samples to the end
        return
    end = file.seek(0, 2)
    pad = b"\x00" if end % 2 else b""  # a chunk starts at an even offset
    riff_size = end + len(pad) + len(chunk) - 8
    if riff_size >= 0xFFFFFFFF:
        return
    file.write(pad + chunk)
    file.seek(4)
    file.write(struct.pack("<I", riff_size))
