"""The record of installed models: `models/manifest.json`, written atomically.

Each model lives in its own folder `models/<name>/`; the manifest lists its files with size,
sha256 and the revision they came from, plus derived files (ONNX graphs) to delete with it.
A cheap check compares sizes (startup); a full check recomputes sha256 (on demand).

A damaged manifest is kept (every damaged version under its own name) and rebuilt from the model
folders: their files and sizes are known again, but not the checksums recorded at installation, so
those models are marked `rebuilt` and `miodesk models verify` says it cannot vouch for them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from miodesk.atomic import atomic_write_bytes
from miodesk.models.catalog import CATALOG, PRESET_SHA256

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_HASH_CHUNK = 1 << 20


@dataclass
class InstalledFile:
    path: str  # relative to the model folder, "/"-separated
    size: int
    sha256: str


@dataclass
class InstalledModel:
    name: str
    kind: str
    folder: Path
    files: list[InstalledFile]
    revision: str = ""
    source: str = "hub"  # "hub", "https", "import", or "unknown" (rebuilt after manifest damage)
    repo: str = ""
    installed_at: str = ""
    derived: list[str] = field(default_factory=list)  # absolute paths of built graphs
    # True when this record was rebuilt from the folder after the manifest was damaged: the
    # checksums recorded at installation are lost, so the files cannot be verified against them.
    rebuilt: bool = False

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def unverifiable_files(self) -> list[str]:
        """Files rebuilt from the folder with no checksum to compare: nothing can vouch for them."""
        return [f.path for f in self.files if self.rebuilt and not f.sha256]

    @property
    def main_file(self) -> Path:
        """The file a runtime opens: the GGUF or preset, else the folder itself (codec, wavlm)."""
        if self.kind in ("llm", "preset") and self.files:
            return self.folder / self.files[0].path
        return self.folder

    def to_json(self) -> dict:
        data = asdict(self)
        data["folder"] = self.folder.name  # stored relative, so the models folder can move
        return data

    @classmethod
    def from_json(cls, root: Path, data: dict) -> InstalledModel:
        files = [InstalledFile(**f) for f in data.get("files", [])]
        folder = data["folder"]
        if not isinstance(folder, str) or Path(folder).name != folder or folder in ("", ".", ".."):
            # One folder inside the models folder, nothing else: removing a model deletes it.
            raise ValueError(f"model folder {folder!r} is not a folder name")
        return cls(
            name=data["name"],
            kind=data["kind"],
            folder=root / folder,
            files=files,
            revision=data.get("revision", ""),
            source=data.get("source", "hub"),
            repo=data.get("repo", ""),
            installed_at=data.get("installed_at", ""),
            derived=list(data.get("derived", [])),
            rebuilt=bool(data.get("rebuilt", False)),
        )


@dataclass
class VerifyProblem:
    name: str
    file: str
    problem: str  # "missing", "size", "sha256", "folder"
    message: str


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def file_hashes(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file in one pass; the hub's ETag is one of the two."""
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest()


def sha256_file(path: Path) -> str:
    return file_hashes(path)[0]


class Manifest:
    """Load/save the manifest; a damaged one is kept aside and rebuilt from the folders, never a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST_NAME
        # Reentrant: `update` holds it while `load` may rebuild and save a damaged manifest.
        self._lock = threading.RLock()

    def load(self) -> dict[str, InstalledModel]:
        with self._lock:
            if not self.path.is_file():
                return {}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                return {m["name"]: InstalledModel.from_json(self.root, m) for m in data["models"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                return self._rebuild(exc)

    def _rebuild(self, damage: Exception) -> dict[str, InstalledModel]:
        backup = self._damaged_copy_path()
        try:
            self.path.replace(backup)
            kept = f"kept as {backup.name}"
        except OSError as error:
            kept = f"could not move it aside ({error.strerror or error})"
        models = rebuild_from_folders(self.root)
        log.warning(
            "Model manifest %s is damaged (%s); %s. Rebuilt it from the model folders: %s. Their checksums "
            "from installation are lost, so `miodesk models verify` cannot check them; download them again "
            "to be sure.",
            self.path, damage, kept, ", ".join(sorted(models)) or "none found",
        )
        try:
            self.save(models)
        except OSError as error:
            log.warning("Could not save the rebuilt model manifest: %s", error.strerror or error)
        return models

    def _damaged_copy_path(self) -> Path:
        """A new name for each damaged manifest, so a later damage does not overwrite an earlier one."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        candidate = self.path.with_name(f"{MANIFEST_NAME}.damaged-{stamp}")
        number = 1
        while candidate.exists():
            number += 1
            candidate = self.path.with_name(f"{MANIFEST_NAME}.damaged-{stamp}-{number}")
        return candidate

    def save(self, models: dict[str, InstalledModel]) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "models": [models[name].to_json() for name in sorted(models)],
        }
        atomic_write_bytes(self.path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def update(self, model: InstalledModel | None = None, remove: str | None = None) -> None:
        """Add or replace `model` and/or drop the model called `remove`, in one locked read-modify-write."""
        with self._lock:
            models = self.load()
            if remove is not None:
                models.pop(remove, None)
            if model is not None:
                models[model.name] = model
            self.save(models)


def check_model(model: InstalledModel, full: bool) -> list[VerifyProblem]:
    problems: list[VerifyProblem] = []
    if not model.folder.is_dir():
        return [VerifyProblem(model.name, "", "folder", f"{model.name}: its folder {model.folder} is gone.")]
    for entry in model.files:
        path = model.folder / entry.path
        if not path.is_file():
            problems.append(VerifyProblem(model.name, entry.path, "missing", f"{model.name}: {entry.path} is missing."))
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(
                VerifyProblem(
                    model.name,
                    entry.path,
                    "size",
                    f"{model.name}: {entry.path} is {size} bytes, but {entry.size} were installed.",
                )
            )
        elif full and entry.sha256 and sha256_file(path) != entry.sha256:
            problems.append(
                VerifyProblem(
                    model.name,
                    entry.path,
                    "sha256",
                    f"{model.name}: {entry.path} has changed since it was installed (sha256 differs).",
                )
            )
    return problems


def _guess_kind(folder: Path, files: list[str]) -> str | None:
    """The kind of model a folder holds, by the catalog name or else by its files."""
    known = next((entry for entry in CATALOG if entry.name.casefold() == folder.name.casefold()), None)
    if known is not None:
        return known.kind
    if any(name.lower().endswith(".gguf") for name in files):
        return "llm"
    if "config.yaml" in files and "model.safetensors" in files:
        return "codec"
    if "config.json" in files and ("pytorch_model.bin" in files or "model.safetensors" in files):
        return "wavlm"
    return None


def rebuild_from_folders(root: Path) -> dict[str, InstalledModel]:
    """Records for the model folders under `root`, from their files and sizes (checksums unknown).

    Only the official presets' checksums are known without the manifest (the catalog pins them).
    Folders MioDesk uses for its own work (".staging", "*.old" left by an interrupted replace) and
    folders that hold no recognisable model are left out.
    """
    models: dict[str, InstalledModel] = {}
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return models
    for folder in folders:
        if folder.name.startswith(".") or folder.name.endswith(".old"):
            continue
        try:
            paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            files = [
                InstalledFile(p.relative_to(folder).as_posix(), p.stat().st_size, "") for p in paths
            ]
        except OSError:
            continue
        names = [f.path for f in files]
        kind = _guess_kind(folder, names)
        if kind is None:
            continue
        if kind == "llm":
            # The runtime opens the first file of an llm: the GGUF.
            files.sort(key=lambda f: not f.path.lower().endswith(".gguf"))
        elif kind == "preset":
            sha = PRESET_SHA256.get(folder.name, "")
            files = [InstalledFile(f.path, f.size, sha if f.path == f"{folder.name}.pt" else "") for f in files]
        models[folder.name] = InstalledModel(
            name=folder.name,
            kind=kind,
            folder=folder,
            files=files,
            source="unknown",
            installed_at=now_iso(),
            rebuilt=True,
        )
    return models
