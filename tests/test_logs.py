"""The log file: rotation that cannot happen (Windows, another process holds the file) loses nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from miodesk import logs


def write_log(path: Path, lines: int, backups: int) -> None:
    """`lines` warnings through MioDesk's rotating handler with a 2 kB limit."""
    handler = logs.SharedRotatingFileHandler(path, maxBytes=2000, backupCount=backups, encoding="utf-8")
    logger = logging.getLogger(f"miodesk.test_rotation.{path.parent.name}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for number in range(lines):
            logger.warning("line %d with 日本語 text", number)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_a_failed_rotation_keeps_logging_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "miodesk.log"
    # The rotation must remove miodesk.log.1 first; a folder of that name makes it fail for real, as a
    # file open in another process does on Windows.
    (tmp_path / "miodesk.log.1").mkdir()
    write_log(path, 200, backups=1)
    text = path.read_text(encoding="utf-8")
    assert "line 0 with" in text and "line 199 with 日本語" in text  # nothing lost
    assert "Logging error" not in capsys.readouterr().err


def test_rotation_still_happens_where_it_can(tmp_path):
    path = tmp_path / "miodesk.log"
    write_log(path, 400, backups=2)
    assert (tmp_path / "miodesk.log.1").is_file() and path.stat().st_size <= 2000
