"""Where MioDesk keeps its files (platformdirs locations).

`MIODESK_HOME` moves every folder under one root: tests and portable installs use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "MioDesk"


def _root_override() -> Path | None:
    home = os.environ.get("MIODESK_HOME")
    return Path(home) if home else None


def _dir(kind: str) -> Path:
    root = _root_override()
    if root is not None:
        path = root / kind
    else:
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        path = Path(
            {
                "data": dirs.user_data_dir,
                "config": dirs.user_config_dir,
                "cache": dirs.user_cache_dir,
                "logs": dirs.user_log_dir,
            }[kind]
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    return _dir("data")


def config_dir() -> Path:
    return _dir("config")


def cache_dir() -> Path:
    return _dir("cache")


def log_dir() -> Path:
    return _dir("logs")


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def voices_dir() -> Path:
    path = data_dir() / "voices"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_key(source: Path, *made_with: str) -> str:
    """A short key for a cache file made from `source`: its place, size and time, and what else the cache
    depends on (`made_with`: a format, a library version, the processor). A changed file gets a new key."""
    import hashlib

    stat = source.stat()
    key = "|".join([str(source.resolve()), str(stat.st_size), str(stat.st_mtime_ns), *made_with])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def llm_cache_dir() -> Path:
    """Speech models cut down to their audio vocabulary (`miodesk.tts.audio_only_model`)."""
    path = cache_dir() / "llm"
    path.mkdir(parents=True, exist_ok=True)
    return path


AUDIO_ONLY_SUFFIX = ".audio-only.gguf"


def audio_only_copies(model_file: Path) -> list[Path]:
    """The audio-only copies made from speech model file `model_file` (miodesk.tts.audio_only_model),
    whatever their key: `<stem>.<key>.audio-only.gguf` in `llm_cache_dir()`. A copy of another file with
    the same name is among them; it is only a cache, made again at that file's next load."""
    import glob

    stem = Path(model_file).stem
    return [copy for copy in llm_cache_dir().glob(f"{glob.escape(stem)}.*{AUDIO_ONLY_SUFFIX}")
            if copy.name[: -len(AUDIO_ONLY_SUFFIX)].rsplit(".", 1)[0] == stem]


def onnx_cache_dir() -> Path:
    """Decoder graphs built from codec weights, keyed by the source files' hash."""
    path = cache_dir() / "onnx"
    path.mkdir(parents=True, exist_ok=True)
    return path


READINGS_FILE = "readings.tsv"


def readings_path() -> Path:
    """The readings dictionary (読み方辞書): one file that the window, `miodesk dict` and the speech server
    all read, so an entry added in one is heard in the others (see miodesk.text.readings)."""
    return data_dir() / READINGS_FILE
