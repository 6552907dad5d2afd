"""Voices: the 128-value speaker embedding MioCodec is conditioned on.

Voice files come as PyTorch `.pt` saves (the official presets), `.npy` or `.npz`. A `.pt`
file is a pickle, and unpickling an untrusted file can run arbitrary code, so we never
unpickle: we walk the pickle's opcodes symbolically and accept only the exact shape that
`torch.save(tensor_of_128_floats)` writes, then read the raw float32 storage ourselves.

Saved voices live in a folder as `<name>.npy` (the vector) + `<name>.json` (metadata).
The json is written last, so a voice that was only half saved is never listed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from miodesk import paths
from miodesk.atomic import atomic_write_bytes
from miodesk.errors import VoiceError
from miodesk.filenames import MAX_NAME_CHARS, check_portable_name, extended_path, truncate_name
from miodesk.models.catalog import PRESET_NAMES, PRESET_SHA256, preset_for_sha256
from miodesk.torch_pickle import DTYPE_NAMES, PickleRefused, TensorSpec, walk_torch_pickle

logger = logging.getLogger(__name__)

VOICE_DIM = 128

# The official MioTTS-Inference presets and the sha256 of their files: the model catalog owns both.
OFFICIAL_PRESETS = PRESET_NAMES
OFFICIAL_PRESET_SHA256: dict[str, str] = PRESET_SHA256

PRESET_LICENCE_NOTE = (
    "non-commercial: audio made with the official preset voices may not be used commercially"
)
USER_LICENCE_NOTE = "user-provided: you are responsible for the rights to the voice it was made from"

IMPORT_HINT = "Import a voice file with `miodesk voices import FILE`."

VOICE_SUFFIXES = (".pt", ".npy", ".npz")

# A voice file is under 3 KB; anything far bigger is not a voice, and we refuse to read it
# (or decompress it) into memory.
_MAX_FILE_BYTES = 1 << 20
_MAX_PICKLE_BYTES = 64 << 10


@dataclass(eq=False)  # eq on numpy arrays is ambiguous; compare vectors explicitly
class Voice:
    name: str
    vector: np.ndarray  # float32, shape (VOICE_DIM,)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_preset(self) -> bool:
        return self.metadata.get("kind") == "preset"


# --------------------------------------------------------------------------------------
# Loading files


def _reason(exc: BaseException) -> str:
    """An exception as one short line (our errors are shown as one line)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _validated_vector(values: np.ndarray, label: str) -> np.ndarray:
    """Flatten like the server does, then insist on 128 finite real numbers."""
    if values.dtype.kind not in "fiu":
        raise VoiceError(f"{label} holds {values.dtype} data; a MioTTS voice is 128 float numbers.")
    flat = np.asarray(values).reshape(-1)
    if flat.size != VOICE_DIM:
        raise VoiceError(f"{label} holds {flat.size} values; a MioTTS voice has {VOICE_DIM}.")
    with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf, caught below
        vector = flat.astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise VoiceError(f"{label} holds NaN or infinite values; it is not a usable voice.")
    return np.ascontiguousarray(vector)


def _load_pt(path: Path) -> np.ndarray:
    label = path.name
    refused = VoiceError(f"{label} is not a plain voice tensor; refusing to load it (it could run code).")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise VoiceError(
            f"{label} is not a readable PyTorch file (not a zip archive: {_reason(exc)})."
        ) from None
    with archive:
        infos = archive.infolist()
        pickles = [info for info in infos if info.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise refused
        # The zip root is the file stem at save time ("archive" for non-ASCII stems).
        root = pickles[0].filename[: -len("data.pkl")]
        if any(not info.filename.startswith(root) for info in infos):
            raise refused
        if pickles[0].file_size > _MAX_PICKLE_BYTES:
            raise refused
        try:
            spec = walk_torch_pickle(archive.read(pickles[0]))
            if not isinstance(spec, TensorSpec):
                raise PickleRefused("the pickle is not a single tensor")
        except PickleRefused as why:
            logger.warning("Refused %s: %s", path, why)
            raise refused from None
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
            raise VoiceError(f"{label} is a damaged PyTorch file ({_reason(exc)}).") from None

        storage = spec.storage
        if storage.dtype != "<f4":
            raise VoiceError(f"{label} holds {DTYPE_NAMES[storage.dtype]} values; a MioTTS voice is float32.")
        numel = 1
        for dim in spec.shape:
            numel *= dim
        # Only a contiguous view of the whole storage: anything else is not a preset save.
        squeezed = tuple(d for d in spec.shape if d != 1)
        if storage.numel != VOICE_DIM or numel != VOICE_DIM or squeezed != (VOICE_DIM,):
            shown = numel if storage.numel == numel else f"{numel} (storage {storage.numel})"
            raise VoiceError(f"{label} holds {shown} values; a MioTTS voice has {VOICE_DIM}.")
        if (
            spec.offset != 0
            or len(spec.stride) != len(spec.shape)
            or spec.stride[spec.shape.index(VOICE_DIM)] != 1
        ):
            raise refused

        data_name = f"{root}data/{storage.key}"
        try:
            data_info = archive.getinfo(data_name)
        except KeyError:
            raise VoiceError(f"{label} is a damaged PyTorch file (no {data_name}).") from None
        if data_info.file_size != 4 * VOICE_DIM:
            raise VoiceError(f"{label} is a damaged PyTorch file ({data_name} has the wrong size).")
        byteorder = "little"
        if f"{root}byteorder" in archive.namelist():
            byteorder = archive.read(f"{root}byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise VoiceError(f"{label} is a damaged PyTorch file (byte order {byteorder!r}).")
        try:
            raw = archive.read(data_info)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
            raise VoiceError(f"{label} is a damaged PyTorch file ({_reason(exc)}).") from None
    return np.frombuffer(raw, dtype="<f4" if byteorder == "little" else ">f4")


def _load_numpy(path: Path) -> np.ndarray:
    label = path.name
    if zipfile.is_zipfile(path):
        # An .npz is a zip: check sizes before numpy decompresses anything.
        try:
            with zipfile.ZipFile(path) as archive:
                if sum(info.file_size for info in archive.infolist()) > _MAX_FILE_BYTES:
                    raise VoiceError(f"{label} is far too large to be a voice file.")
        except zipfile.BadZipFile as exc:
            raise VoiceError(f"{label} is a damaged .npz file ({_reason(exc)}).") from None
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        # allow_pickle=False turns object arrays into ValueError: never load those.
        raise VoiceError(f"{label} is not a plain numeric array file ({_reason(exc)}).") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise VoiceError(f"{label} is not a readable NumPy file ({_reason(exc)}).") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:  # NpzFile: the server's key order
        keys = list(loaded.files)
        if not keys:
            raise VoiceError(f"{label} holds no arrays; a MioTTS voice has {VOICE_DIM} values.")
        key = next((k for k in ("global_embedding", "embedding") if k in keys), keys[0])
        try:
            return loaded[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise VoiceError(f"{label} has an unreadable array {key!r} ({_reason(exc)}).") from None


def load_voice_file(path: Path, name: str | None = None) -> Voice:
    """Read a `.pt`, `.npy` or `.npz` voice file without running any code from it."""
    path = Path(extended_path(Path(path)))  # a voice file may sit in a deep folder (Windows MAX_PATH)
    label = path.name
    suffix = path.suffix.lower()
    if suffix not in VOICE_SUFFIXES:
        raise VoiceError(f"{label}: unknown voice file type; use a .pt, .npy or .npz file.")
    if not path.is_file():
        raise VoiceError(f"Voice file {path} does not exist.")
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise VoiceError(f"{label} is {size} bytes, far too large to be a voice file.")
        sha256 = _sha256_file(path)
    except OSError as exc:
        raise VoiceError(f"Cannot read voice file {label}: {_reason(exc)}.") from None
    raw = _load_pt(path) if suffix == ".pt" else _load_numpy(path)
    vector = _validated_vector(raw, label)
    preset = preset_for_sha256(sha256)
    metadata: dict[str, Any] = {
        "name": name or path.stem,
        "source": {"file": label, "sha256": sha256},
        "kind": "preset" if preset else "user",
        "licence": PRESET_LICENCE_NOTE if preset else USER_LICENCE_NOTE,
    }
    if preset:
        metadata["preset"] = preset
    return Voice(name=name or path.stem, vector=vector, metadata=metadata)


# --------------------------------------------------------------------------------------
# The voice store


def validate_voice_name(name: str) -> str:
    """Return `name` if it can be a voice name (and a file name on every platform).

    Voice names are typed by people (`--voice NAME`, the record dialog), so a bad one is refused
    with the reason, never changed: the rules are miodesk.filenames'.
    """
    return check_portable_name(name, "Voice name", error=VoiceError)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _npy_bytes(vector: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vector, dtype="<f4"), allow_pickle=False)
    return buffer.getvalue()


class VoiceStore:
    """Named voices in one folder: `<name>.npy` + `<name>.json`, and `<name>.flac` for a voice made
    from a recording (kept so it can be encoded again when the encoder improves)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.voices_dir()

    def _npy(self, name: str) -> Path:
        return self.root / f"{name}.npy"

    def _json(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def recording_path(self, name: str) -> Path:
        return self.root / f"{name}.flac"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for meta in self.root.glob("*.json"):
            name = meta.stem
            try:
                validate_voice_name(name)
            except VoiceError:
                continue
            if self._npy(name).is_file():
                found.append(name)
        return sorted(found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def _missing(self, name: str) -> VoiceError:
        available = self.names()
        listing = ", ".join(available) if available else "none yet"
        return VoiceError(f"No voice named {name!r}. Available voices: {listing}. {IMPORT_HINT}")

    def get(self, name: str) -> Voice:
        validate_voice_name(name)
        if not (self._json(name).is_file() and self._npy(name).is_file()):
            raise self._missing(name)
        damaged = f"The settings file {self._json(name).name} of voice {name!r} is damaged"
        try:
            metadata = json.loads(self._json(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VoiceError(f"{damaged}: {_reason(exc)}.") from None
        if not isinstance(metadata, dict):
            raise VoiceError(f"{damaged}.")
        vector = load_voice_file(self._npy(name), name=name).vector
        return Voice(name=name, vector=vector, metadata=metadata)

    def save(self, voice: Voice, overwrite: bool = False) -> Voice:
        """Store `voice` under `voice.name`; the json goes last so half a save is never listed."""
        name = validate_voice_name(voice.name)
        vector = _validated_vector(np.asarray(voice.vector), f"Voice {name!r}")
        npy_path, json_path = self._npy(name), self._json(name)
        exists = npy_path.exists() or json_path.exists()
        if exists and not overwrite:
            raise VoiceError(f"A voice named {name!r} already exists; choose another name or replace it.")
        metadata = dict(voice.metadata)
        metadata["name"] = name
        metadata.setdefault("created", _now_iso())
        metadata.setdefault("kind", "user")
        is_preset = metadata["kind"] == "preset"
        metadata.setdefault("licence", PRESET_LICENCE_NOTE if is_preset else USER_LICENCE_NOTE)
        meta_bytes = (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

        # Keep the old vector so a failed metadata write can put it back: the pair stays old.
        old_npy = npy_path.read_bytes() if npy_path.is_file() else None
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(npy_path, _npy_bytes(vector))
            try:
                atomic_write_bytes(json_path, meta_bytes)
            except BaseException:
                if old_npy is not None:
                    atomic_write_bytes(npy_path, old_npy)
                elif not json_path.exists():
                    npy_path.unlink(missing_ok=True)
                raise
        except OSError as exc:
            reason = _reason(exc)
            raise VoiceError(f"Could not save voice {name!r} in {self.root}: {reason}.") from None
        logger.info("Saved voice %r (%s)", name, metadata["kind"])
        return Voice(name=name, vector=vector, metadata=metadata)

    def import_file(self, path: Path, name: str | None = None, overwrite: bool = False) -> Voice:
        """Import a voice file; the official presets are recognised by their sha256."""
        path = Path(path)
        loaded = load_voice_file(path)
        preset = loaded.metadata.get("preset")
        target = name if name is not None else (preset or path.stem)
        try:
            validate_voice_name(target)
        except VoiceError as exc:
            if name is None:
                hint = f"Give the voice a name of your own when importing {path.name}."
                raise VoiceError(f"{exc} {hint}") from None
            raise
        metadata = dict(loaded.metadata)
        metadata["created"] = _now_iso()
        return self.save(Voice(name=target, vector=loaded.vector, metadata=metadata), overwrite=overwrite)

    def delete(self, name: str) -> None:
        validate_voice_name(name)
        if not (self._json(name).exists() or self._npy(name).exists()):
            raise self._missing(name)
        try:
            # json first: from then on the voice is no longer listed.
            self._json(name).unlink(missing_ok=True)
            self._npy(name).unlink(missing_ok=True)
            self.recording_path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise VoiceError(f"Could not delete voice {name!r}: {_reason(exc)}.") from None
        logger.info("Deleted voice %r", name)

    def rename(self, old: str, new: str) -> Voice:
        validate_voice_name(new)
        voice = self.get(old)
        if old == new:
            return voice
        if old.casefold() == new.casefold():
            # On case-insensitive file systems the two names are one file: go through a
            # temporary name so the new spelling really lands on disk.
            temp = f"{truncate_name(new, MAX_NAME_CHARS - 7)}~rename"
            self.rename(old, temp)
            return self.rename(temp, new)
        if new in self.names() or self._npy(new).exists() or self._json(new).exists():
            raise VoiceError(f"A voice named {new!r} already exists; choose another name.")
        metadata = dict(voice.metadata)
        recording = self.recording_path(old)
        if recording.is_file():
            metadata["recording"] = self.recording_path(new).name
        renamed = self.save(Voice(name=new, vector=voice.vector, metadata=metadata))
        if recording.is_file():
            recording.replace(self.recording_path(new))
        self.delete(old)
        return renamed


def resolve_voice(name_or_file: str, store: VoiceStore | None = None) -> Voice:
    """A voice from a file path (if that file exists) or else from the store by name."""
    candidate = Path(name_or_file)
    if name_or_file and Path(extended_path(candidate)).is_file():
        return load_voice_file(candidate)
    store = store if store is not None else VoiceStore()
    looks_like_file = candidate.suffix.lower() in VOICE_SUFFIXES or any(sep in name_or_file for sep in "/\\")
    if looks_like_file and name_or_file not in store.names():
        raise VoiceError(f"Voice file {name_or_file} does not exist.")
    if name_or_file in OFFICIAL_PRESETS and name_or_file not in store.names():
        raise VoiceError(
            f"The preset voice {name_or_file!r} is not installed yet. Get {name_or_file}.pt from the "
            "MioTTS-Inference repository (presets/) and import it with "
            f"`miodesk voices import {name_or_file}.pt`."
        )
    return store.get(name_or_file)
