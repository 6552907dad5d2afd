"""Console output that never crashes on characters the console cannot show.

A Japanese path or sentence printed to a console whose encoding cannot hold it (cp1252 on a
Western Windows when output is redirected, `LANG=C` with PYTHONIOENCODING=ascii, an old
terminal) raises UnicodeEncodeError in the middle of a command. Python already writes stderr
with errors="backslashreplace"; `make_console_safe` does the same for stdout whenever its encoding
cannot encode all of Unicode, so the characters show as \\uXXXX escapes and the command goes on.
"""

from __future__ import annotations

import codecs
import sys

# Codecs that can encode every character, so there is nothing to replace.
_ALL_OF_UNICODE = frozenset({"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                             "utf-32-be"})

# Error handlers that already never raise on output.
_LENIENT_ERRORS = frozenset({"replace", "backslashreplace", "xmlcharrefreplace", "namereplace", "ignore"})


def encodes_all_of_unicode(encoding: str | None) -> bool:
    if not encoding:
        return False
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name in _ALL_OF_UNICODE


def make_console_safe() -> None:
    """Let sys.stdout and sys.stderr replace what their encoding cannot hold, instead of raising.

    Call once at start-up, before printing. Streams that are missing (a windowed Windows program
    has none), not text files, or already lenient are left alone; the encoding itself never changes,
    so what a console or a redirect expects stays the same.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        if encodes_all_of_unicode(getattr(stream, "encoding", None)):
            continue
        # "strict", and also "surrogateescape" (POSIX locales), raise on characters outside the codec.
        if getattr(stream, "errors", None) not in _LENIENT_ERRORS:
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):  # a closed or detached stream: nothing to print to anyway
                continue
