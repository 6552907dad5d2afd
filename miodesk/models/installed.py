"""The record of installed models: `models/manifest.json`, written atomically.

Each model lives in its own folder `models/<name>/`; the manifest lists its files with size,
sha256 and the revision they came from, plus derived files (ONNX graphs) to delete with it.
A cheap check compares sizes (startup); a full check recomputes sha256 (on demand).
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
    source: str = "hub"  # "hub", "https" or "import"
    repo: str = ""
    installed_at: str = ""
    derived: list[str] = field(default_factory=list)  # absolute paths of built graphs

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)

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
    """Load/save the manifest; a damaged one is backed up and treated as empty, never a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST_NAME
        self._lock = threading.Lock()

    def load(self) -> dict[str, InstalledModel]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            models = {m["name"]: InstalledModel.from_json(self.root, m) for m in data["models"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            backup = self.path.with_name(f"{MANIFEST_NAME}.damaged")
            log.warning("Model manifest %s is damaged (%s); kept as %s", self.path, exc, backup.name)
            try:
                self.path.replace(backup)
            except OSError:
                pass
            return {}
        return models

    def save(self, models: dict[str, InstalledModel]) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "models": [models[name].to_json() for name in sorted(models)],
        }
        atomic_write_bytes(self.path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def update(self, model: InstalledModel | None = None, remove: str | None = None) -> None:
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
