"""The one audio output writer (miodesk/audio/output.py): every format written for real and read back
by readers that share no code with the writer (mutagen, PyAV, a chunk parser here, and ffprobe where it
is installed); chapters, tags and covers; atomic replacement, two writers of one path, failures,
permissions, a full disk and unwritable places."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from conftest import GOLDEN, REPO_ROOT, assert_one_line_error
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

import miodesk.audio.output as output
from miodesk.atomic import atomic_write_bytes
from miodesk.audio.encoding import libsndfile_only
from miodesk.audio.files import write_audio
from miodesk.audio.output import (
    AudioFileWriter,
    BookTags,
    ChapterMark,
    OutputError,
    check_output_path,
    output_format,
)
from miodesk.synthetic.gguf import write_test_gguf

RATE = 44100
CHAPTER_FORMATS = (".m4b", ".m4a", ".mp3", ".opus", ".ogg", ".flac")
ALL_FORMATS = (*CHAPTER_FORMATS, ".wav", ".npy")
TOLERANCE_S = 0.05
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def speech_like(seconds: float, rate: int = RATE, pitch: float = 140.0) -> np.ndarray:
    """Voiced syllables (a pitch with harmonics under a 4 Hz envelope) with short pauses between."""
    t = np.arange(round(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.5 * t) > -0.6)
    return (0.25 * voice * envelope).astype(np.float32)


def png_image(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


COVER = png_image()
TAGS = BookTags(title="吾輩は猫である 📚", author="夏目 漱石", cover=COVER)
THREE = [ChapterMark("一 はじめに", 0.0), ChapterMark("Chapter 2 🎉 emoji", 4.0), ChapterMark("三", 8.5)]


def render(path: Path, seconds: float = 12.0, chapters=THREE, tags: BookTags | None = TAGS, rate: int = RATE,
           pitch: float = 140.0, library: str | None = None) -> Path:
    """Written the way a render writes: half-second pieces as they come, then the chapters."""
    audio = speech_like(seconds, rate, pitch)
    with AudioFileWriter(path, rate, tags) as writer:
        if library is not None:
            assert writer.encoder_name == library
        for start in range(0, len(audio), rate // 2):
            writer.write(audio[start:start + rate // 2])
        assert writer.seconds_written == pytest.approx(seconds, abs=1 / rate)
        return writer.finish(chapters)


# --- independent readers ------------------------------------------------------------------------

def pyav_chapters(path: Path) -> list[tuple[float, str]]:
    with av.open(str(path)) as container:
        return [(float(ch["start"] * ch["time_base"]), ch["metadata"].get("title", "")) for ch in container.chapters()]


def pyav_decoded_seconds(path: Path) -> tuple[float, int]:
    """Decodes every frame (a corrupt stream raises); (seconds, rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        return frames / stream.rate, stream.rate


def vorbis_chapters(tags) -> list[tuple[float, str]]:
    numbers = sorted(int(key[7:]) for key in tags.keys() if key.upper().startswith("CHAPTER") and key[7:].isdigit())
    found = []
    for number in numbers:
        key = f"CHAPTER{number:03d}"
        hours, minutes, seconds = tags[key][0].split(":")
        found.append((int(hours) * 3600 + int(minutes) * 60 + float(seconds), tags[key + "NAME"][0]))
    return found


def mp4_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    boxes = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        boxes.append((kind, start + header, start + size))
        start += size
    return boxes


def mp4_child(data: bytes, box: tuple[bytes, int, int], *path: bytes) -> tuple[bytes, int, int] | None:
    for kind in path:
        found = [child for child in mp4_boxes(data, box[1], box[2]) if child[0] == kind]
        if not found:
            return None
        box = found[0]
    return box


def quicktime_chapter_track_ids(path: Path) -> list[int]:
    """The track ids that the tracks' tref/chap boxes name."""
    data = path.read_bytes()
    moov = next(box for box in mp4_boxes(data, 0, len(data)) if box[0] == b"moov")
    ids: list[int] = []
    for trak in (box for box in mp4_boxes(data, moov[1], moov[2]) if box[0] == b"trak"):
        chap = mp4_child(data, trak, b"tref", b"chap")
        if chap is not None:
            ids += struct.unpack(f">{(chap[2] - chap[1]) // 4}I", data[chap[1]:chap[2]])
    return ids


def quicktime_chapter_track(path: Path) -> list[tuple[float, str]]:
    """The chapters of the QuickTime chapter track that the audio track's tref/chap points at: the text
    samples (16-bit length + UTF-8) at the times of the track's stts."""
    data = path.read_bytes()
    moov = next(box for box in mp4_boxes(data, 0, len(data)) if box[0] == b"moov")
    tracks = {}
    chapter_ids: list[int] = []
    for trak in (box for box in mp4_boxes(data, moov[1], moov[2]) if box[0] == b"trak"):
        tkhd = mp4_child(data, trak, b"tkhd")
        assert tkhd is not None
        track_id = struct.unpack(">I", data[tkhd[1] + (20 if data[tkhd[1]] == 1 else 12):][:4])[0]
        tracks[track_id] = trak
        chap = mp4_child(data, trak, b"tref", b"chap")
        if chap is not None:
            chapter_ids += struct.unpack(f">{(chap[2] - chap[1]) // 4}I", data[chap[1]:chap[2]])
    assert len(chapter_ids) == 1, "the audio track names one chapter track"
    trak = tracks[chapter_ids[0]]
    hdlr = mp4_child(data, trak, b"mdia", b"hdlr")
    mdhd = mp4_child(data, trak, b"mdia", b"mdhd")
    stbl = mp4_child(data, trak, b"mdia", b"minf", b"stbl")
    assert hdlr and mdhd and stbl
    assert data[hdlr[1] + 8:hdlr[1] + 12] == b"text"
    timescale = struct.unpack(">I", data[mdhd[1] + (20 if data[mdhd[1]] == 1 else 12):][:4])[0]
    stts, stsz, stsc = (mp4_child(data, stbl, kind) for kind in (b"stts", b"stsz", b"stsc"))
    stco = mp4_child(data, stbl, b"stco") or mp4_child(data, stbl, b"co64")
    assert stts and stsz and stsc and stco
    starts, time = [], 0
    for index in range(struct.unpack(">I", data[stts[1] + 4:stts[1] + 8])[0]):
        count, delta = struct.unpack(">II", data[stts[1] + 8 + 8 * index:stts[1] + 16 + 8 * index])
        for _ in range(count):
            starts.append(time / timescale)
            time += delta
    fixed, count = struct.unpack(">II", data[stsz[1] + 4:stsz[1] + 12])
    sizes = [fixed] * count if fixed else list(struct.unpack(f">{count}I", data[stsz[1] + 12:stsz[1] + 12 + 4 * count]))
    wide = stco[0] == b"co64"
    chunks = struct.unpack(">I", data[stco[1] + 4:stco[1] + 8])[0]
    offsets = list(struct.unpack(f">{chunks}{'Q' if wide else 'I'}", data[stco[1] + 8:stco[1] + 8 + (8 if wide else 4) * chunks]))
    runs = [struct.unpack(">III", data[stsc[1] + 8 + 12 * i:stsc[1] + 20 + 12 * i])
            for i in range(struct.unpack(">I", data[stsc[1] + 4:stsc[1] + 8])[0])]
    positions = []
    for chunk_index, offset in enumerate(offsets, start=1):
        per_chunk = [run[1] for run in runs if run[0] <= chunk_index][-1]
        for _ in range(per_chunk):
            positions.append(offset)
            offset += sizes[len(positions) - 1]
    titles = []
    for position in positions:
        length = struct.unpack(">H", data[position:position + 2])[0]
        titles.append(data[position + 2:position + 2 + length].decode("utf-8"))
    return list(zip(starts, titles, strict=True))


def nero_chapters(path: Path) -> list[tuple[float, str]]:
    """moov/udta/chpl: version, flags, (v1: 4 reserved bytes), count, then start (100 ns) + title."""
    data = path.read_bytes()
    moov = next(box for box in mp4_boxes(data, 0, len(data)) if box[0] == b"moov")
    chpl = mp4_child(data, moov, b"udta", b"chpl")
    assert chpl is not None, "no Nero chpl box"
    position = chpl[1] + 4 + (4 if data[chpl[1]] == 1 else 0)
    count = data[position]
    position += 1
    found = []
    for _ in range(count):
        start, length = struct.unpack(">QB", data[position:position + 9])
        found.append((start / 1e7, data[position + 9:position + 9 + length].decode("utf-8")))
        position += 9 + length
    return found


def riff_chunks(path: Path) -> dict[bytes, bytes]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, position = {}, 12
    while position + 8 <= len(data):
        kind, size = struct.unpack("<4sI", data[position:position + 8])
        chunks[kind] = data[position + 8:position + 8 + size]
        position += 8 + size + size % 2
    return chunks


def ffprobe(path: Path) -> dict | None:
    if shutil.which("ffprobe") is None:
        return None
    result = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", str(path)],
                            capture_output=True, text=True, encoding="utf-8", timeout=60, check=True)
    return json.loads(result.stdout)


def assert_chapters(found: list[tuple[float, str]], expected: list[ChapterMark], reader: str) -> None:
    assert [title for _, title in found] == [mark.title for mark in expected], reader
    starts = [start for start, _ in found]
    assert starts == sorted(starts), reader
    for (start, _), mark in zip(found, expected, strict=True):
        assert abs(start - mark.start_s) <= TOLERANCE_S, (reader, start, mark)


def chapters_by_mutagen(path: Path) -> list[tuple[float, str]]:
    suffix = path.suffix
    if suffix in (".m4b", ".m4a"):
        return [(chapter.start, chapter.title) for chapter in MP4(path).chapters]
    if suffix == ".mp3":
        tags = ID3(path)
        if not tags.getall("CTOC"):
            return []
        tables = {frame.element_id: frame for frame in tags.getall("CTOC")}
        by_id = {frame.element_id: frame for frame in tags.getall("CHAP")}

        def walk(table) -> list[tuple[float, str]]:  # a CTOC may list CTOCs (more than 255 chapters)
            found = []
            for child in table.child_element_ids:
                if child in tables:
                    found += walk(tables[child])
                else:
                    found.append((by_id[child].start_time / 1000, str(by_id[child].sub_frames["TIT2"])))
            return found

        return walk(next(frame for frame in tables.values() if frame.flags & 1))  # the top-level table
    audio = FLAC(path) if suffix == ".flac" else OggOpus(path)
    return vorbis_chapters(audio.tags)


def tags_by_mutagen(path: Path) -> tuple[str, str, bytes | None, float]:
    """(title, author, cover, duration)."""
    suffix = path.suffix
    if suffix in (".m4b", ".m4a"):
        mp4 = MP4(path)
        covers = mp4.tags.get("covr", [])
        return mp4.tags["©nam"][0], mp4.tags["©ART"][0], bytes(covers[0]) if covers else None, mp4.info.length
    if suffix == ".mp3":
        from mutagen.mp3 import MP3

        mp3 = MP3(path)
        pictures = mp3.tags.getall("APIC")
        return (str(mp3.tags["TIT2"]), str(mp3.tags["TPE1"]), pictures[0].data if pictures else None,
                mp3.info.length)
    if suffix == ".flac":
        flac = FLAC(path)
        return flac["TITLE"][0], flac["ARTIST"][0], flac.pictures[0].data if flac.pictures else None, flac.info.length
    opus = OggOpus(path)
    blocks = opus.tags.get("METADATA_BLOCK_PICTURE", [])
    cover = Picture(base64.b64decode(blocks[0])).data if blocks else None
    return opus["TITLE"][0], opus["ARTIST"][0], cover, opus.info.length


def leftovers(folder: Path, keep: tuple[str, ...] = ()) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# --- every format, read back --------------------------------------------------------------------

# MP3 and Opus go through FFmpeg where PyAV is installed, else through libsndfile: both are tested.
WITH_LIBRARY = [*((suffix, None) for suffix in CHAPTER_FORMATS),
                *((suffix, library) for suffix in (".mp3", ".opus") for library in ("ffmpeg", "libsndfile"))]


@pytest.fixture
def library(request) -> Iterator[str | None]:
    """The encoder library a test asks for (None: whichever the format uses); libsndfile as without PyAV."""
    with libsndfile_only() if request.param == "libsndfile" else contextlib.nullcontext():
        yield request.param


@pytest.mark.parametrize(("suffix", "library"), WITH_LIBRARY, indirect=["library"])
def test_every_format_reads_back_with_chapters_tags_and_cover(tmp_path, suffix, library):
    path = render(tmp_path / f"book{suffix}", library=library)
    assert leftovers(tmp_path) == [path.name]

    assert_chapters(chapters_by_mutagen(path), THREE, "mutagen")
    assert_chapters(pyav_chapters(path), THREE, "PyAV")
    title, author, cover, duration = tags_by_mutagen(path)
    assert (title, author, cover) == (TAGS.title, TAGS.author, COVER)
    assert abs(duration - 12.0) <= TOLERANCE_S
    decoded, rate = pyav_decoded_seconds(path)
    assert rate == (48000 if suffix in (".opus", ".ogg") else RATE)
    assert abs(decoded - 12.0) <= 0.1  # decoders may keep the encoder's priming samples
    probe = ffprobe(path)
    if probe is not None:
        assert [c["tags"]["title"] for c in probe["chapters"]] == [mark.title for mark in THREE]
        assert abs(float(probe["format"]["duration"]) - 12.0) <= TOLERANCE_S


@pytest.mark.parametrize(("suffix", "library"), [*((s, None) for s in ALL_FORMATS[:-1]), *WITH_LIBRARY[-4:]],
                         indirect=["library"])
def test_a_sound_is_heard_at_the_time_it_was_written(tmp_path, suffix, library):
    """Chapter marks and subtitles are times in the written audio: the encoders' priming samples (AAC's
    1024, LAME's delay, Opus' pre-skip) must be marked so decoders skip them."""
    audio = np.zeros(3 * RATE, dtype=np.float32)
    audio[RATE:RATE + 200] = 0.8  # a click at 1.000 s
    with AudioFileWriter(tmp_path / f"click{suffix}", RATE) as writer:
        assert library is None or writer.encoder_name == library
        for start in range(0, len(audio), 4410):
            writer.write(audio[start:start + 4410])
        writer.finish()
    with av.open(str(tmp_path / f"click{suffix}")) as container:
        stream = container.streams.audio[0]
        decoded = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
    assert np.argmax(np.abs(decoded) > 0.3) / stream.rate == pytest.approx(1.0, abs=0.002)


@pytest.mark.parametrize("suffix", (".opus", ".flac"))
def test_chapter_comments_follow_xiphs_numbering(tmp_path, suffix):
    path = render(tmp_path / f"book{suffix}")
    tags = (FLAC(path) if suffix == ".flac" else OggOpus(path)).tags
    assert tags["CHAPTER001"] == ["00:00:00.000"] and tags["CHAPTER001NAME"] == [THREE[0].title]
    assert tags["CHAPTER003"] == ["00:00:08.500"] and "CHAPTER000" not in tags
    with AudioFileWriter(tmp_path / f"more{suffix}", RATE) as writer:
        writer.write(speech_like(11.0))
        writer.finish([ChapterMark(str(n), n * 0.01) for n in range(1001)])
    assert writer.warnings == [f"only the first 1,000 of 1,001 chapters were marked: {output_format(path).label} "
                               "chapter comments hold no more"]
    assert len(pyav_chapters(tmp_path / f"more{suffix}")) == 1000


@pytest.mark.parametrize("suffix", (".m4b", ".m4a"))
def test_mp4_has_both_the_quicktime_chapter_track_and_nero_chpl(tmp_path, suffix):
    path = render(tmp_path / f"book{suffix}")
    assert_chapters(quicktime_chapter_track(path), THREE, "QuickTime chapter track")
    assert_chapters(nero_chapters(path), THREE, "Nero chpl")
    brand = path.read_bytes()[8:12]
    assert brand == (b"M4B " if suffix == ".m4b" else b"M4A ")
    assert (MP4(path).tags.get("stik") == [2]) == (suffix == ".m4b")  # iTunes media kind "Audiobook"


def test_mp3_chapter_frames_come_in_time_order(tmp_path):
    """mutagen orders frames by size; players that ignore the CTOC list CHAP frames as they come."""
    marks = [ChapterMark("a much longer first chapter title than the others", 0.0), ChapterMark("b", 3.0),
             ChapterMark("章", 6.0), ChapterMark("mid-length title", 9.0)]
    path = render(tmp_path / "order.mp3", chapters=marks)
    assert [frame.element_id for frame in ID3(path).getall("CHAP")] == ["chp0", "chp1", "chp2", "chp3"]
    assert_chapters(pyav_chapters(path), marks, "PyAV")


def test_wav_has_title_and_author_and_no_chapters(tmp_path):
    path = render(tmp_path / "book.wav")
    info = riff_chunks(path)[b"LIST"]
    assert info[:4] == b"INFO"
    fields, position = {}, 4
    while position < len(info):
        kind, size = struct.unpack("<4sI", info[position:position + 8])
        fields[kind] = info[position + 8:position + 8 + size].rstrip(b"\x00").decode("utf-8")
        position += 8 + size + size % 2
    assert fields == {b"INAM": TAGS.title, b"IART": TAGS.author}
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE and len(samples) == 12 * RATE
    np.testing.assert_allclose(samples, speech_like(12.0), atol=1 / 32767)
    assert pyav_chapters(path) == []


def test_npy_keeps_the_samples_exactly(tmp_path):
    path = render(tmp_path / "book.npy")
    np.testing.assert_array_equal(np.load(path), speech_like(12.0))


@pytest.mark.parametrize("suffix", CHAPTER_FORMATS)
def test_no_chapters_and_no_tags(tmp_path, suffix):
    path = render(tmp_path / f"bare{suffix}", seconds=3.0, chapters=(), tags=None)
    assert pyav_chapters(path) == []
    if suffix in (".m4b", ".m4a"):
        assert MP4(path).chapters is None and quicktime_chapter_track_ids(path) == []
    else:
        assert chapters_by_mutagen(path) == []
    assert abs(pyav_decoded_seconds(path)[0] - 3.0) <= 0.1


@pytest.mark.parametrize("suffix", (".m4b", ".mp3", ".opus", ".flac"))
def test_a_thousand_chapters(tmp_path, suffix):
    marks = [ChapterMark(f"第{n + 1}章 ✨", n * 0.06) for n in range(1000)]
    path = render(tmp_path / f"many{suffix}", seconds=60.0, chapters=marks)
    assert_chapters(pyav_chapters(path), marks, "PyAV")
    if suffix == ".m4b":
        assert_chapters(quicktime_chapter_track(path), marks, "QuickTime chapter track")
        # Nero chpl counts chapters in one byte: FFmpeg keeps the first 255 there.
        assert_chapters(nero_chapters(path), marks[:255], "Nero chpl")
    else:
        assert_chapters(chapters_by_mutagen(path), marks, "mutagen")


def test_long_and_odd_chapter_titles(tmp_path):
    """A 300-character Japanese title fits in the QuickTime track and is cut at a character in chpl
    (255 bytes); a title with a line break and a NUL becomes one clean line."""
    long_title = "長い章題" * 75
    marks = [ChapterMark(long_title, 0.0), ChapterMark("two\nlines\x00and NUL", 2.0)]
    path = render(tmp_path / "odd.m4b", seconds=4.0, chapters=marks)
    nero = nero_chapters(path)
    assert long_title.startswith(nero[0][1]) and len(nero[0][1].encode("utf-8")) > 250
    assert nero[1][1] == "two lines and NUL"
    mp3 = render(tmp_path / "odd.mp3", seconds=4.0, chapters=marks)
    assert [title for _, title in chapters_by_mutagen(mp3)] == [long_title, "two lines and NUL"]


def test_chapters_past_the_end_or_out_of_order_are_put_in_order(tmp_path):
    marks = [ChapterMark("b", 2.0), ChapterMark("a", 0.0), ChapterMark("late", 99.0)]
    path = render(tmp_path / "order.flac", seconds=4.0, chapters=marks)
    found = chapters_by_mutagen(path)
    assert [title for _, title in found] == ["a", "b", "late"]
    assert found[-1][0] == pytest.approx(4.0, abs=0.001)


def test_opus_is_resampled_to_48k_and_a_24k_source_stays(tmp_path):
    path = render(tmp_path / "r.opus", seconds=2.0)
    assert OggOpus(path).info.length == pytest.approx(2.0, abs=TOLERANCE_S)
    assert pyav_decoded_seconds(path)[1] == 48000
    low = render(tmp_path / "low.mp3", seconds=2.0, rate=24000)
    assert pyav_decoded_seconds(low)[1] == 24000


def test_cover_that_players_cannot_show_is_left_out_with_a_warning(tmp_path):
    tags = BookTags(title="T", cover=b"GIF89a" + bytes(50))
    with AudioFileWriter(tmp_path / "gif.mp3", RATE, tags) as writer:
        writer.write(speech_like(1.0))
        writer.finish()
    assert writer.warnings == ["the cover image was left out: only JPEG and PNG covers are written"]
    assert ID3(tmp_path / "gif.mp3").getall("APIC") == []


# --- atomic, concurrent, failing ----------------------------------------------------------------

@pytest.mark.parametrize("suffix", ALL_FORMATS)
def test_no_audio_is_refused_and_one_sample_is_a_file(tmp_path, suffix):
    with pytest.raises(OutputError) as caught, AudioFileWriter(tmp_path / f"empty{suffix}", RATE) as writer:
        writer.finish()
    assert str(caught.value) == f"Cannot write '{tmp_path / f'empty{suffix}'}': there is no audio to write."
    assert leftovers(tmp_path) == []
    with AudioFileWriter(tmp_path / f"one{suffix}", RATE, TAGS) as writer:
        writer.write(np.full(1, 0.5, dtype=np.float32))
        writer.finish(THREE)
    assert leftovers(tmp_path) == [f"one{suffix}"]


@pytest.mark.parametrize("suffix", ALL_FORMATS)
def test_an_exception_inside_the_writer_leaves_nothing(tmp_path, suffix):
    path = tmp_path / f"book{suffix}"
    with pytest.raises(RuntimeError, match="synthesis broke"):
        with AudioFileWriter(path, RATE, TAGS) as writer:
            writer.write(speech_like(2.0))
            raise RuntimeError("synthesis broke")
    assert leftovers(tmp_path) == []
    path.write_bytes(b"the old file")
    with pytest.raises(KeyboardInterrupt), AudioFileWriter(path, RATE) as writer:
        writer.write(speech_like(1.0))
        raise KeyboardInterrupt
    assert leftovers(tmp_path) == [path.name] and path.read_bytes() == b"the old file"
    with AudioFileWriter(path, RATE) as writer:  # left without finish: discarded too
        writer.write(speech_like(1.0))
    assert leftovers(tmp_path) == [path.name] and path.read_bytes() == b"the old file"


@pytest.mark.parametrize(("suffix", "step"), [(".mp3", "tag_mp3"), (".flac", "tag_vorbis"), (".m4b", "tag_mp4"),
                                              (".m4b", "mux_mp4")])
def test_a_failure_while_finishing_says_why_and_leaves_the_old_file(tmp_path, monkeypatch, suffix, step):
    path = tmp_path / f"book{suffix}"
    path.write_bytes(b"the old file")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output, step, disk_full)
    with pytest.raises(OutputError) as caught:
        render(path, seconds=2.0)
    assert str(caught.value) == f"Cannot write '{path}': No space left on device."
    assert leftovers(tmp_path) == [path.name] and path.read_bytes() == b"the old file"


class _FullDisk:
    """A file that takes `budget` bytes and then fails as a full disk does."""

    def __init__(self, file, budget: int) -> None:
        self.file, self.budget = file, budget

    def write(self, data) -> int:
        if self.file.tell() + len(data) > self.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


@pytest.mark.parametrize(("suffix", "library"), [*((s, None) for s in ALL_FORMATS), *WITH_LIBRARY[-4:]],
                         indirect=["library"])
def test_disk_full_at_the_write_call(tmp_path, monkeypatch, suffix, library):
    """The seam: the temporary file's writes fail with ENOSPC past 20 kB (runs everywhere; the tmpfs
    test below fills a real file system where one can be mounted)."""
    real_fdopen = os.fdopen
    monkeypatch.setattr(output.os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode), 20_000))
    path = tmp_path / f"full{suffix}"
    with pytest.raises(OutputError) as caught:
        render(path, seconds=20.0, library=library)
    assert str(caught.value) == f"Cannot write '{path}': No space left on device."
    assert leftovers(tmp_path) == []


@pytest.fixture
def small_filesystem(tmp_path):
    """A 256 KiB tmpfs (needs root or CAP_SYS_ADMIN, as in CI here; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("tmpfs is Linux's")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(("suffix", "seconds", "cover"), [
    (".wav", 5.0, None),  # the samples do not fit: fails in write()
    (".m4b", 30.0, None),  # the AAC (170 kB) fits, its copy with chapters does not: fails in finish()
    (".flac", 1.0, b"\x89PNG\r\n\x1a\n" + bytes(400_000)),  # the audio fits, the cover does not (mutagen)
])
def test_disk_full_on_a_real_small_filesystem(small_filesystem, suffix, seconds, cover):
    path = small_filesystem / f"book{suffix}"
    old = speech_like(0.2)
    write_audio(path, old, RATE)
    before = path.read_bytes()
    with pytest.raises(OutputError) as caught:
        render(path, seconds=seconds, tags=BookTags(title="T", cover=cover))
    assert str(caught.value) == f"Cannot write '{path}': No space left on device."
    assert leftovers(small_filesystem) == [path.name] and path.read_bytes() == before
    path.unlink()
    with pytest.raises(OutputError, match="No space left on device"):
        render(path, seconds=seconds, tags=BookTags(title="T", cover=cover))
    assert leftovers(small_filesystem) == []


def test_read_only_file_system_is_found_before_synthesis(small_filesystem):
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    path = small_filesystem / "book.mp3"
    with pytest.raises(OutputError) as caught:
        check_output_path(path)
    assert str(caught.value) == f"Cannot write '{path}': Read-only file system."


@posix_only
@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root writes into a read-only folder")
def test_read_only_folder_is_found_before_synthesis(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError) as caught:
            check_output_path(folder / "book.flac")
        assert str(caught.value) == f"Cannot write '{folder / 'book.flac'}': Permission denied."
    finally:
        folder.chmod(0o755)


def test_two_writers_of_one_path_in_threads_leave_one_whole_render(tmp_path):
    path = tmp_path / "same.m4b"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one(pitch: float) -> None:
        try:
            audio = speech_like(3.0, pitch=pitch)
            with AudioFileWriter(path, RATE, BookTags(title=str(pitch))) as writer:
                for start in range(0, len(audio), RATE // 4):
                    barrier.wait(timeout=30)  # the two renders' writes interleave
                    writer.write(audio[start:start + RATE // 4])
                barrier.wait(timeout=30)
                writer.finish([ChapterMark(str(pitch), 0.0)])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(pitch,)) for pitch in (140.0, 220.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert leftovers(tmp_path) == ["same.m4b"]
    title = MP4(path).tags["©nam"][0]
    assert title in ("140.0", "220.0")
    assert pyav_chapters(path) == [(0.0, title)]
    assert abs(pyav_decoded_seconds(path)[0] - 3.0) <= 0.1


CONCURRENT_RENDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_audio_output import render
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
render(Path(sys.argv[1]), seconds=float(sys.argv[3]), pitch=float(sys.argv[4]), tags=None, chapters=())
"""


def test_two_processes_rendering_one_path_leave_one_whole_render(tmp_path):
    """The probe's `read six.txt --seed 1 -o same.flac & read six.txt --seed 2 -o same.flac`."""
    path = tmp_path / "same.flac"
    go = tmp_path / "go"
    script = CONCURRENT_RENDER.format(tests=str(Path(__file__).parent))
    renders = {140.0: 6.0, 220.0: 6.0}
    processes = [subprocess.Popen([sys.executable, "-c", script, str(path), str(go), str(seconds), str(pitch)],
                                  cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
                 for pitch, seconds in renders.items()]
    go.touch()
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert leftovers(tmp_path, keep=("go",)) == ["same.flac"]
    samples, _ = soundfile.read(path, dtype="float32")
    matches = [pitch for pitch, seconds in renders.items()
               if len(samples) == round(seconds * RATE)
               and np.allclose(samples, speech_like(seconds, pitch=pitch), atol=1 / 32767)]
    assert len(matches) == 1


# --- permissions --------------------------------------------------------------------------------

@pytest.fixture
def umask():
    def set_umask(value: int) -> None:
        os.umask(value)

    old = os.umask(0o022)
    os.umask(old)
    yield set_umask
    os.umask(old)


@posix_only
@pytest.mark.parametrize("suffix", (".m4b", ".mp3", ".wav", ".npy"))
def test_a_new_file_gets_the_umask_and_a_replaced_file_keeps_its_mode(tmp_path, umask, suffix):
    path = tmp_path / f"book{suffix}"
    umask(0o022)
    render(path, seconds=1.0)
    assert path.stat().st_mode & 0o777 == 0o644
    umask(0o077)
    render(path, seconds=1.0)
    assert path.stat().st_mode & 0o777 == 0o644  # kept, not made private
    path.chmod(0o600)
    umask(0o022)
    render(path, seconds=1.0)
    assert path.stat().st_mode & 0o777 == 0o600  # kept, not opened up
    umask(0o002)
    other = tmp_path / f"group{suffix}"
    render(other, seconds=1.0)
    assert other.stat().st_mode & 0o777 == 0o664


@posix_only
def test_private_files_stay_private(tmp_path, umask):
    umask(0o022)
    atomic_write_bytes(tmp_path / "settings.json", b"{}")
    assert (tmp_path / "settings.json").stat().st_mode & 0o777 == 0o600
    atomic_write_bytes(tmp_path / "asked.txt", b"x", private=False)
    assert (tmp_path / "asked.txt").stat().st_mode & 0o777 == 0o644


def test_writing_through_a_symbolic_link_keeps_the_link(tmp_path):
    real = tmp_path / "real.flac"
    link = tmp_path / "link.flac"
    try:
        link.symlink_to(real)
    except OSError:
        pytest.skip("symbolic links are not allowed here")
    render(link, seconds=1.0)
    assert link.is_symlink() and real.is_file()
    assert abs(FLAC(real).info.length - 1.0) < 0.01


def test_a_long_file_name_works(tmp_path):
    path = tmp_path / ("長" * 80 + ".m4b")  # 240 bytes of UTF-8: a temporary name must be shorter
    render(path, seconds=1.0)
    assert leftovers(tmp_path) == [path.name]


# --- checks before synthesis --------------------------------------------------------------------

def test_unknown_extension_lists_the_formats(tmp_path):
    with pytest.raises(OutputError) as caught:
        check_output_path(tmp_path / "book.mp4")
    assert str(caught.value) == ("Cannot write 'book.mp4': the output must end in "
                                 ".m4b, .m4a, .mp3, .opus, .ogg, .flac, .wav or .npy.")


@pytest.mark.parametrize("suffix", (".m4b", ".m4a"))
def test_m4b_without_pyav_names_what_to_install(tmp_path, monkeypatch, suffix):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(OutputError) as caught:
        check_output_path(tmp_path / f"book{suffix}")
    message = str(caught.value)
    assert "PyAV" in message and "pip install 'miodesk[aac]'" in message and "\n" not in message
    assert output_format(tmp_path / "book.mp3").codec == "mp3"  # the others need nothing more


def test_places_that_cannot_be_written(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError) as caught:
        check_output_path(a_file / "book.wav")
    assert str(caught.value) == f"Cannot write '{a_file / 'book.wav'}': Not a directory ('{a_file}' is a file)."
    with pytest.raises(OutputError) as caught:
        check_output_path(a_file / "deeper" / "book.wav")
    assert "Not a directory" in str(caught.value) and "File exists" not in str(caught.value)
    with pytest.raises(OutputError, match="the folder '.*missing' does not exist"):
        check_output_path(tmp_path / "missing" / "book.wav")
    (tmp_path / "dir.mp3").mkdir()
    with pytest.raises(OutputError, match="it is a folder"):
        check_output_path(tmp_path / "dir.mp3")
    assert leftovers(tmp_path) == ["dir.mp3", "notes.txt"]  # the probe left nothing


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_device_is_not_replaced(tmp_path):
    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)
    with pytest.raises(OutputError, match="it is not a regular file"):
        check_output_path(pipe)


# --- through the command, as a user writes it ---------------------------------------------------

@pytest.fixture(scope="module")
def speaking_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "MioTTS-test-qwen3.gguf"
    write_test_gguf(path, "qwen3", eog_probability=0.05, seed=1)
    return path


@posix_only
def test_speak_writes_every_format_with_the_users_permissions(run_cli, speaking_model, tmp_path, umask):
    umask(0o022)
    existing = tmp_path / "existing.mp3"
    existing.write_bytes(b"old")
    existing.chmod(0o640)
    for name in ("speech.m4b", "speech.opus", "existing.mp3"):
        out = tmp_path / name
        result = run_cli("speak", "こんにちは。Hello there.", "--voice", GOLDEN / "presets" / "jp_female.pt",
                         "-o", out, "--model", speaking_model, "--codec", GOLDEN / "codec" / "v2_44k", "--seed", 3)
        assert result.returncode == 0, result.stderr
        seconds = float(result.stdout.split(": ", 1)[1].split(" s ")[0])
        assert abs(pyav_decoded_seconds(out)[0] - seconds) <= 0.1
    assert (tmp_path / "speech.m4b").stat().st_mode & 0o777 == 0o644
    assert existing.stat().st_mode & 0o777 == 0o640
    assert leftovers(tmp_path) == ["existing.mp3", "speech.m4b", "speech.opus"]


def test_speak_refuses_a_place_it_cannot_write_before_synthesis(run_cli, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    result = run_cli("speak", "Hello.", "-o", a_file / "out.mp3", "--voice", GOLDEN / "presets" / "jp_female.pt",
                     "--model", tmp_path / "no-model.gguf")
    assert_one_line_error(result, "Not a directory")
    assert "File exists" not in result.stderr
