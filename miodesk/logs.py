"""Logging to the platformdirs log folder; the terminal only sees warnings (or more with -v)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from miodesk import paths

LOG_FILE_NAME = "miodesk.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that several MioDesk processes may write at once (the app and a `miodesk speak`).

    On Windows a file that another process holds open cannot be renamed, so the rotation fails there;
    the standard handler would then print a "Logging error" traceback into the user's terminal and lose
    the record. This one keeps appending to the current file and tries again at the next rotation.
    """

    def doRollover(self) -> None:
        try:
            super().doRollover()
        except OSError:
            if self.stream is None or self.stream.closed:
                self.stream = self._open()


def log_file() -> Path:
    return paths.log_dir() / LOG_FILE_NAME


def setup_logging(verbose: bool = False) -> Path:
    """Send everything (INFO and up) to a rotating file; the console gets WARNING, or INFO if verbose."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_miodesk", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

    path = log_file()
    try:
        file_handler: logging.Handler = SharedRotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:
        # An unwritable log folder must not stop the app from speaking.
        file_handler = logging.NullHandler()
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    file_handler._miodesk = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)

    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("miodesk: %(levelname)s: %(message)s"))
    console._miodesk = True  # type: ignore[attr-defined]
    root.addHandler(console)
    return path
