"""The desktop app's settings: one dataclass, stored as JSON in the config folder.

A settings file that cannot be read (corrupt JSON, wrong types, a half-written file from another
tool) never stops the app: it is moved aside as `settings.json.bad-<time>`, the defaults are used,
and `Settings.recovered_from` tells the UI to show a notice. Writes are atomic.

Reading positions ("resume where I stopped") live in their own file, keyed by the document's path
and a hash of its content, so an edited file does not jump to a stale offset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miodesk import paths
from miodesk.atomic import atomic_write_bytes
from miodesk.models import registry
from miodesk.models.catalog import DEFAULT_CODEC_VARIANT, codec_name, codec_variant
from miodesk.runtime import Provider
from miodesk.speech_server.options import DEFAULT_PORT
from miodesk.tts.pauses import DEFAULT_PARAGRAPH_PAUSE_S, DEFAULT_SENTENCE_PAUSE_S, Pauses

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
POSITIONS_FILE = "positions.json"
MAX_RECENT_FILES = 10
MIN_TEXT_SCALE, MAX_TEXT_SCALE = 50, 400  # percent of the default reading size
MAX_POSITIONS = 500  # the oldest are forgotten beyond this

LANGUAGES = ("", "en", "ja")  # "" = follow the system locale
# How sentences get their voice: "language" = the voice of each sentence's language (voice_ja,
# voice_en); "single" = `voice` for every sentence.
VOICE_MODE_LANGUAGE, VOICE_MODE_SINGLE = "language", "single"
VOICE_MODES = (VOICE_MODE_LANGUAGE, VOICE_MODE_SINGLE)
# File › Export audio…: the formats the dialog offers (miodesk.audio.output.FORMATS has them all) and its
# subtitle choices ("" = none).
EXPORT_FORMATS = (".m4b", ".m4a", ".mp3", ".opus", ".flac", ".wav")
EXPORT_SUBTITLES = ("", ".srt", ".vtt", ".lrc")
MIN_SERVER_PORT, MAX_SERVER_PORT = 1024, 65535  # no privileged ports


@dataclass
class Settings:
    # Engine
    model_path: str = ""  # "" = the recommended model in the models folder
    codec_variant: str = DEFAULT_CODEC_VARIANT  # a key of CODEC_VARIANTS
    codec_path: str = ""  # "" = the variant's folder in the models folder
    provider: str = "auto"
    llm_threads: int = 0  # 0 = automatic (runtime.ThreadPlan)
    codec_threads: int = 0
    full_decode: bool = False  # decode whole sentences instead of streaming chunks
    # The speech model on an OpenAI-compatible LLM server instead of this computer (issue 18). The URL,
    # key and model are kept when the user switches back to the local file, so switching is one click.
    llm_on_server: bool = False
    llm_base_url: str = ""  # e.g. http://gpu-box:8000/v1
    llm_api_key: str = ""  # sent as a Bearer token; stored like the other settings (per-user config folder)
    llm_model: str = ""  # "" = the first model the server lists
    # MioDesk's own speech server inside the app (issue 19): the OpenAI and VOICEVOX APIs on this computer
    # (127.0.0.1 only), on the window's engine. Off by default; the key is optional on loopback.
    server_enabled: bool = False
    server_port: int = DEFAULT_PORT
    server_api_key: str = ""
    # Reading
    voice_mode: str = VOICE_MODE_LANGUAGE
    voice: str = ""  # the one voice of the single-voice mode ("" = the preset for the document's language)
    voice_ja: str = ""  # Japanese sentences ("" = the Japanese female preset, else any installed voice)
    voice_en: str = ""  # English sentences ("" = the English female preset, else any installed voice)
    # Text inside 「…」, 『…』 and "…" is read in this voice ("" = no dialogue voice: quotes as the rest).
    dialogue_voice: str = ""
    speed: float = 1.0
    volume: float = 1.0
    # Silence between sentences and between paragraphs (after a heading: half again the paragraph's);
    # live reading and exports (miodesk.tts.pauses).
    sentence_pause_s: float = DEFAULT_SENTENCE_PAUSE_S
    paragraph_pause_s: float = DEFAULT_PARAGRAPH_PAUSE_S
    audio_device: str = ""  # "" = system default; else a device name
    # Window
    ui_language: str = ""
    highlight: bool = True
    auto_scroll: bool = True
    close_to_tray: bool = False
    show_outline: bool = True
    text_scale: int = 100  # the reader's text size in percent (Ctrl+plus/minus/0, Settings)
    announce_sentences: bool = False  # ask the screen reader to speak each sentence too (off: double speech)
    # Global shortcuts (Settings › Shortcuts, miodesk/ui/global_shortcuts.py), as Qt writes keys portably;
    # "" = none. Pressing one while MioDesk reads stops it.
    selection_shortcut: str = "Ctrl+Alt+Shift+R"
    clipboard_shortcut: str = "Ctrl+Alt+Shift+C"
    recent_files: list[str] = field(default_factory=list)
    window_geometry: str = ""  # hex of QWidget.saveGeometry()
    welcome_done: bool = False
    # File › Export audio…: the dialog's last choices.
    export_folder: str = ""  # where the last export went ("" = the document's folder)
    export_format: str = ".m4b"  # one of EXPORT_FORMATS
    export_subtitles: str = ""  # one of EXPORT_SUBTITLES
    export_voice: str = ""  # "" = the reading voices (Settings › Voices); else one voice for every sentence

    # Not persisted: where a damaged settings file was moved to, for the UI's notice.
    recovered_from: Path | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("recovered_from", None)
        return data

    def add_recent(self, path: str) -> None:
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT_FILES:]

    def pauses(self) -> Pauses:
        return Pauses.clamped(self.sentence_pause_s, self.paragraph_pause_s)

    def language_voice(self, language: str) -> str:
        """The voice chosen for sentences in `language` ("ja"; anything else counts as English)."""
        return self.voice_ja if language == "ja" else self.voice_en

    def set_language_voice(self, language: str, name: str) -> None:
        if language == "ja":
            self.voice_ja = name
        else:
            self.voice_en = name

    def codec_folder(self) -> Path:
        """The chosen codec folder: the custom one, else where the registry has the variant's codec."""
        if self.codec_path:
            return Path(self.codec_path)
        return registry.codec_folder(codec_name(self.codec_variant))


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def _coerce(data: dict[str, Any]) -> Settings:
    """Build Settings from JSON, refusing wrong types instead of carrying them into the UI."""
    defaults = Settings()
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(Settings):
        if spec.name == "recovered_from" or spec.name not in data:
            continue
        value, default = data[spec.name], getattr(defaults, spec.name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, list):
            ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"{spec.name} has the wrong type ({type(value).__name__})")
        values[spec.name] = value
    settings = Settings(**values)
    # Out-of-range values are clamped, not fatal: a hand edit should not cost the whole file.
    settings.speed = min(2.0, max(0.5, settings.speed))
    settings.volume = min(1.0, max(0.0, settings.volume))
    pauses = Pauses.clamped(settings.sentence_pause_s, settings.paragraph_pause_s)
    settings.sentence_pause_s, settings.paragraph_pause_s = pauses.sentence_s, pauses.paragraph_s
    settings.llm_threads = max(0, settings.llm_threads)
    settings.codec_threads = max(0, settings.codec_threads)
    settings.text_scale = min(MAX_TEXT_SCALE, max(MIN_TEXT_SCALE, settings.text_scale))
    settings.server_port = min(MAX_SERVER_PORT, max(MIN_SERVER_PORT, settings.server_port))
    if settings.provider not in Provider.choices():
        settings.provider = Provider.AUTO.value
    # Older files say "44k" for "v2_44k"; an unknown variant falls back to the default codec.
    settings.codec_variant = codec_variant(settings.codec_variant) or DEFAULT_CODEC_VARIANT
    if settings.ui_language not in LANGUAGES:
        settings.ui_language = ""
    if settings.export_format not in EXPORT_FORMATS:
        settings.export_format = Settings.export_format
    if settings.export_subtitles not in EXPORT_SUBTITLES:
        settings.export_subtitles = ""
    if "voice_mode" not in data or settings.voice_mode not in VOICE_MODES:
        # A file from before per-language voices: a voice the user chose went on reading every sentence,
        # so it still does; without one, the voice followed the language, which it now does per sentence.
        settings.voice_mode = VOICE_MODE_SINGLE if settings.voice else VOICE_MODE_LANGUAGE
    del settings.recent_files[MAX_RECENT_FILES:]
    return settings


def load_settings(path: Path | None = None, set_aside_damaged: bool = True) -> Settings:
    """The saved settings, or the defaults (with `recovered_from` set when the file was damaged).

    A command-line tool that only reads a few settings passes `set_aside_damaged=False`: the window
    moves a damaged file aside (and says so) when it next starts, not a command in a terminal.
    """
    path = path or settings_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as error:
        log.warning("cannot read %s: %s; using defaults", path, error)
        return Settings()
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return _coerce(data)
    except (ValueError, UnicodeDecodeError, TypeError) as error:
        if not set_aside_damaged:
            log.warning("settings file %s is damaged (%s); using defaults", path, error)
            return Settings()
        backup = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.replace(backup)
        except OSError:
            backup = path
        log.warning("settings file %s is damaged (%s); using defaults, kept it as %s", path, error, backup.name)
        settings = Settings()
        settings.recovered_from = backup
        return settings


def save_settings(settings: Settings, path: Path | None = None) -> None:
    path = path or settings_path()
    data = json.dumps(settings.to_json(), ensure_ascii=False, indent=2) + "\n"
    atomic_write_bytes(path, data.encode("utf-8"))


# --- reading positions ------------------------------------------------------------------------------


def content_hash(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


def document_key(path: Path | str, digest: str) -> str:
    """Where a document's position is stored: its absolute path plus a hash of its content."""
    return f"{Path(path).resolve()}#{digest}"


class PositionStore:
    """Last reading offset per document, in positions.json (atomic writes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.config_dir() / POSITIONS_FILE
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = {
                    key: value
                    for key, value in data.items()
                    if isinstance(value, dict) and isinstance(value.get("offset"), int)
                } if isinstance(data, dict) else {}
            except FileNotFoundError:
                self._data = {}
            except (OSError, ValueError) as error:
                # Losing resume points is a nuisance, not a reason to fail.
                log.warning("reading positions file %s unreadable (%s); starting afresh", self.path, error)
                self._data = {}
        return self._data

    def get(self, key: str) -> int | None:
        entry = self._load().get(key)
        return entry["offset"] if entry else None

    def set(self, key: str, offset: int) -> None:
        data = self._load()
        data.pop(key, None)
        data[key] = {"offset": int(offset), "time": int(time.time())}
        while len(data) > MAX_POSITIONS:
            data.pop(next(iter(data)))
        try:
            atomic_write_bytes(self.path, json.dumps(data, ensure_ascii=False).encode("utf-8"))
        except OSError as error:
            log.warning("cannot save the reading position: %s", error)
