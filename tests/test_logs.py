"""The log file: rotation that cannot happen (Windows, another process holds the file) loses nothing."""

from __future__ import annotations

import logging

from miodesk import logs


def test_a_failed_rotation_keeps_logging_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "miodesk.log"
    # The rotation must remove miodesk.log.1 first; a folder of that name makes it fail for real, as a
    # file open in another process does on Windows.
    (tmp_path / "miodesk.log.1").mkdir()
    handler = logs.SharedRotatingFileHandler(path, maxBytes=2000, backupCount=1, encoding="utf-8")
    logger = logging.getLogger("miodesk.test_rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for number in range(200):
            logger.warning("line %d with 日本語 text to fill the file", number)
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text(encoding="utf-8")
    assert "line 0 with" in text and "line 199 with 日本語" in text  # nothing lost
    assert "Logging error" not in capsys.readouterr().err


def test_rotation_still_happens_where_it_can(tmp_path):
    path = tmp_path / "miodesk.log"
    handler = logs.SharedRotatingFileHandler(path, maxBytes=2000, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("miodesk.test_rotation_ok")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for number in range(1000):
            logger.warning("line %d", number)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "miodesk.log.1").is_file() and path.stat().st_size <= 2000
