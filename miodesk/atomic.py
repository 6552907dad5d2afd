"""Atomic file writes: user data is either the old file or the new one, never half of each.

MioDesk's own files (settings, voices, caches) are private: their temporary file is made by
`tempfile.mkstemp`, readable by the owner only, and that mode survives the rename. A file the user
asked for (`private=False`: audio, subtitles, exports) is made as any program makes a new file,
0666 less the umask, and replacing an existing file keeps that file's mode. The temporary file is
created exclusively under a unique name, so two writers of one path never share it; the last rename
wins and leaves one whole file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from miodesk.filenames import extended_path, truncate_name

# os.open's flags as tempfile uses them: binary (no newline translation on Windows), not inherited by
# child processes, and never through a symbolic link planted at the name.
_CREATE_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_NOINHERIT", 0))
# The target's name in a temporary name is cut to this many UTF-16 units (at most 192 bytes of UTF-8),
# so the decorated name stays within the 255-byte limit of file systems.
_TEMP_NAME_CHARS = 64


def create_temp_beside(path: Path, private: bool = True, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new empty file in `path`'s folder under a unique name, created exclusively: (open fd, its path).

    Private: readable by the owner only. Otherwise 0666 less the umask, which the system applies
    itself (reading the umask would mean changing it, which is not safe with threads).
    """
    path = Path(path)
    stem = f".{truncate_name(path.name, _TEMP_NAME_CHARS)}."
    if private:
        fd, name = tempfile.mkstemp(prefix=stem, suffix=suffix, dir=path.parent)
        return fd, Path(name)
    for _ in range(100):
        candidate = path.parent / f"{stem}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(candidate, _CREATE_FLAGS, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name beside {path}")


def keep_mode_of(existing: Path, replacement: Path) -> None:
    """Give `replacement` the mode of the file it is about to replace (a user's file keeps its
    permissions). On Windows a mode is only the read-only flag, and a read-only temporary file could
    not be deleted after a failed rename, so nothing is copied there."""
    if os.name == "nt":
        return
    try:
        mode = stat.S_IMODE(os.stat(existing).st_mode)
    except FileNotFoundError:
        return
    os.chmod(replacement, mode)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as written:  # on disk before the rename
        os.fsync(written.fileno())


@contextlib.contextmanager
def atomic_path(path: Path, private: bool = True) -> Iterator[Path]:
    """A temporary file beside `path` for a writer that wants a file name; when the block succeeds it is
    fsynced and renamed over `path`, when it fails it is deleted. `private`: see the module's note.

    A long path on Windows is used in its extended form, so a deep user-chosen folder works there too.
    """
    path = Path(extended_path(Path(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_beside(path, private=private)
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        if not private:
            keep_mode_of(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", private: bool = True) -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync it, then rename it over `path`.

    Text modes write UTF-8 (Windows' default encoding is not).
    """
    with atomic_path(path, private) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as handle:
        yield handle


def atomic_write_bytes(path: Path, data: bytes, private: bool = True) -> None:
    with atomic_write(path, "wb", private) as handle:
        handle.write(data)
