"""File-name rules that hold on Windows, macOS and Linux at once, and long paths on Windows.

The strictest platform decides: Windows forbids `<>:"/\\|?*` and control characters, silently
drops trailing dots and spaces (so "voice." and "voice" would be one file), and reserves device
names (CON, NUL, COM1, …) even with an extension ("nul.txt" opens the NUL device on older
Windows). macOS Finder shows ":" as "/", and Linux and macOS limit a name to 255 bytes of UTF-8.

Two ways in:
- `check_portable_name` for names a person typed (voice names, `--name`): refused with a message
  saying what is wrong and how to fix it; we never change what someone typed behind their back.
- `portable_file_name` for names MioDesk derives (from a model file name, a document title): mapped
  to a safe name, deterministically, keeping Japanese and other scripts as they are.

`extended_path` is the one place that deals with Windows' 260-character path limit (MAX_PATH).
"""

from __future__ import annotations

import ntpath
import os
import sys
import unicodedata

from miodesk.errors import MioDeskError

# Length of a name in UTF-16 code units, which is what Windows counts (an emoji counts 2).
# 64 units are at most 192 bytes of UTF-8 (3 bytes per unit at worst), so a name plus a suffix
# (".json", ".import") plus the temporary-file decoration of atomic writes stays within the
# 255-byte limit of Linux and macOS file systems and the 255-unit limit of NTFS.
MAX_NAME_CHARS = 64

# Characters Windows forbids in file names; "/" and "\\" are also the path separators.
FORBIDDEN_NAME_CHARS = frozenset('<>:"/\\|?*')

# Device names Windows reserves in every folder, with any extension. COM/LPT take 0-9 and the
# superscript digits ¹²³ (Windows counts those as digits); CONIN$/CONOUT$ are the console.
_DEVICE_NUMBERS = "0123456789\u00b9\u00b2\u00b3"
WINDOWS_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{number}" for port in ("COM", "LPT") for number in _DEVICE_NUMBERS}
)

# What replaces a forbidden character in a mapped name, and a name that maps to nothing.
_REPLACEMENT = "_"
_EMPTY_NAME = "unnamed"

# Windows paths at least this long get the extended-length form (see `extended_path`).
# MAX_PATH is 260 with the terminating NUL, a folder must stay under 248 (room for an 8.3 name),
# and atomic writes put a temporary file with a ~14-character longer name beside the target:
# 240 leaves room for all three.
WINDOWS_LONG_PATH_CHARS = 240
_EXTENDED_PREFIX = "\\\\?\\"
_EXTENDED_UNC_PREFIX = "\\\\?\\UNC\\"


class UnportableNameError(MioDeskError):
    """A name that cannot be a file name on every platform MioDesk runs on."""


def utf16_length(text: str) -> int:
    """Length as Windows counts it: characters outside the BMP (most emoji) count twice."""
    return len(text.encode("utf-16-le")) // 2 if _encodable(text) else len(text)


def _encodable(text: str) -> bool:
    # Lone surrogates (undecodable bytes of a Linux file name) cannot be encoded; they are
    # refused as invisible characters anyway, so any length will do for them.
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError:
        return False
    return True


def _is_visible(char: str) -> bool:
    """Printable, or a space inside a name (including the full-width space U+3000)."""
    return char.isprintable() or unicodedata.category(char) == "Zs"


def is_reserved_on_windows(name: str) -> bool:
    """True for CON, nul.txt, "com1 .log", CONIN$ …: the part before the first dot names a device."""
    device = name.split(".", 1)[0].rstrip(" ")
    return device.upper() in WINDOWS_RESERVED_NAMES


def truncate_name(name: str, max_length: int) -> str:
    """The longest start of `name` that is at most `max_length` UTF-16 units (never half an emoji)."""
    kept = []
    used = 0
    for char in name:
        width = utf16_length(char)
        if used + width > max_length:
            break
        kept.append(char)
        used += width
    return "".join(kept)


def name_problem(name: object, max_length: int = MAX_NAME_CHARS) -> str | None:
    """What is wrong with `name` as a portable file name, with how to fix it; None if it is fine.

    The text follows the name in a message: "'CON' is reserved on Windows; …".
    """
    if not isinstance(name, str) or not name:
        return "cannot be empty; type a name"
    length = utf16_length(name)
    if length > max_length:
        counted = ", counting an emoji as 2" if length != len(name) else ""
        return f"is too long ({length} characters{counted}; at most {max_length}); use a shorter name"
    if any(not _is_visible(char) for char in name):
        return "cannot contain control or invisible characters (tabs, line breaks); remove them"
    forbidden = sorted({char for char in name if char in FORBIDDEN_NAME_CHARS})
    if forbidden:
        shown = " ".join(forbidden)
        return f'cannot contain {shown} (not allowed in Windows file names: < > : " / \\ | ? *); remove or replace them'
    if name != name.strip():
        return "cannot start or end with a space; remove it"
    # A leading dot covers "." and ".." and keeps names apart from hidden and temporary files;
    # Windows drops a trailing dot, so "voice." and "voice" would be the same file.
    if name.startswith("."):
        return "cannot start with a dot; remove it"
    if name.endswith("."):
        return "cannot end with a dot (Windows drops it); remove it"
    if is_reserved_on_windows(name):
        device = name.split(".", 1)[0].rstrip(" ")
        suggestion = portable_file_name(name, max(max_length, len(_EMPTY_NAME)))
        return f"is reserved on Windows ({device.upper()} is a device name); choose another, such as '{suggestion}'"
    return None


def check_portable_name(
    name: str,
    what: str = "Voice name",
    *,
    max_length: int = MAX_NAME_CHARS,
    error: type[MioDeskError] = UnportableNameError,
) -> str:
    """Return `name` if it can be a file name everywhere; else raise `error` saying why and what to do.

    `what` starts the message ("Voice name", "Model name"); `error` lets each part of MioDesk raise
    its own kind of error (VoiceError, ModelError).
    """
    problem = name_problem(name, max_length)
    if problem is None:
        return name
    if isinstance(name, str) and name:
        shown = repr(name) if utf16_length(name) <= 40 else repr(truncate_name(name, 20)) + "…"
        raise error(f"{what} {shown} {problem}.")
    raise error(f"{what} {problem}.")


def portable_file_name(name: str, max_length: int = MAX_NAME_CHARS) -> str:
    """Map any text to a name that passes `check_portable_name`, deterministically.

    Forbidden characters become "_", line breaks and other invisible characters become a space
    (runs of spaces become one), leading and trailing spaces and dots are dropped, a Windows
    device name gets "_" after it ("CON" → "CON_", "nul.txt" → "nul_.txt"), the result is cut to
    `max_length` UTF-16 units, and nothing at all becomes "unnamed". Japanese stays Japanese;
    text is NFC-normalised so the same title always maps to the same bytes (macOS hands out
    decomposed names).
    """
    if max_length < len(_EMPTY_NAME):
        raise ValueError(f"max_length must be at least {len(_EMPTY_NAME)}")
    text = unicodedata.normalize("NFC", str(name))
    chars = []
    for char in text:
        if char in FORBIDDEN_NAME_CHARS:
            chars.append(_REPLACEMENT)
        elif not _is_visible(char):
            chars.append(" ")
        else:
            chars.append(char)
    text = " ".join(part for part in "".join(chars).split(" ") if part)  # one space between words
    text = _strip_ends(text)
    if is_reserved_on_windows(text):
        device, dot, rest = text.partition(".")
        text = f"{device.rstrip(' ')}{_REPLACEMENT}{dot}{rest}"
    text = _strip_ends(truncate_name(text, max_length))
    return text or _EMPTY_NAME


def _strip_ends(text: str) -> str:
    """Without leading dots and spaces (hidden files, "..") and trailing ones (Windows drops them).

    `str.strip` also takes other Unicode spaces (U+3000) off the ends, which `check_portable_name`
    refuses there too.
    """
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip(".")
    return text


def extended_path(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    r"""On Windows, the extended-length form (\\?\C:\… or \\?\UNC\server\share\…) of a long path.

    Win32 calls fail on paths of 260 characters or more unless the program is long-path aware and
    the system allows it (a registry switch, off by default). Python itself is aware, but a frozen
    MioDesk.exe or an older Windows may not be, and the \\?\ form works everywhere. It turns off
    Windows' own clean-up of the path, so the path is made absolute and normalised first.
    Paths shorter than WINDOWS_LONG_PATH_CHARS, and every path on other systems, come back as given.
    """
    if sys.platform != "win32":
        return path
    text = os.fspath(path)
    if text.startswith(("\\\\?\\", "\\\\.\\")):  # already extended, or a device path
        return path
    absolute = ntpath.abspath(text)
    if len(absolute) < WINDOWS_LONG_PATH_CHARS:
        return path
    if absolute.startswith("\\\\"):  # \\server\share\… (UNC)
        return _EXTENDED_UNC_PREFIX + absolute[2:]
    return _EXTENDED_PREFIX + absolute
