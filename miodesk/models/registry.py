"""What is installed in the models folder, and where the runtime finds each model.

The registry reads and writes the manifest (`models.installed`), checks installed files, removes
models, and answers "which file or folder does this model live in" for every caller: the engine's
defaults, the window's settings and the CLI ask the same functions here. It depends on nothing in
`tts`: downloads (`models.download`) put files in place through it, and the steps that build graphs
from installed weights belong to the caller (`miodesk.model_setup`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from miodesk import paths
from miodesk.errors import ModelError
from miodesk.filenames import name_problem
from miodesk.models.catalog import DEFAULT_CODEC, DEFAULT_LLM, DEFAULT_WAVLM
from miodesk.models.installed import InstalledModel, Manifest, VerifyProblem, check_model

log = logging.getLogger(__name__)

STAGING_NAME = ".staging"  # downloads and imports in progress, one folder per model


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            pass
    return total


class ModelRegistry:
    """The models folder and its manifest: what is installed, its checks, its removal."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self.root = Path(models_dir) if models_dir is not None else paths.models_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.staging = self.root / STAGING_NAME
        self.manifest = Manifest(self.root)

    def installed(self, kind: str | None = None) -> list[InstalledModel]:
        models = sorted(self.manifest.load().values(), key=lambda m: m.name)
        return [m for m in models if kind is None or m.kind == kind]

    def get_installed(self, name: str) -> InstalledModel | None:
        models = self.manifest.load()
        if name in models:
            return models[name]
        folded = {k.casefold(): v for k, v in models.items()}
        return folded.get(name.casefold())

    def is_installed(self, name: str) -> bool:
        return self.get_installed(name) is not None

    def verify(self, full: bool = False) -> list[VerifyProblem]:
        """Size (cheap, for startup) or also sha256 (full) of every installed file."""
        problems: list[VerifyProblem] = []
        for model in self.installed():
            problems.extend(check_model(model, full=full))
        return problems

    def record(self, model: InstalledModel) -> None:
        """Write `model`'s record (after a graph was built from it, for instance)."""
        self.manifest.update(model)

    def place(self, stage: Path, model: InstalledModel) -> None:
        """Move a finished staging folder to `model.folder` (one rename) and record it."""
        old = None
        if model.folder.exists():
            old = model.folder.with_name(f"{model.folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            model.folder.rename(old)
        os.replace(stage, model.folder)
        self.manifest.update(model)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info("Installed %s (%d bytes) in %s", model.name, model.size_bytes, model.folder)

    def tidy_staging(self, stage: Path) -> None:
        for folder in (stage, self.staging):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass

    def remove(self, name: str) -> int:
        """Delete a model (and the graphs built from it, and its partial download); bytes freed."""
        model = self.get_installed(name)
        if model is None and name_problem(name) is not None:
            # Not a name anything was installed under ("../voices" must not reach the file system).
            raise ModelError(f"{name!r} is not installed (see `miodesk models list`).")
        stage = self.staging / (model.name if model else name)
        if model is None and not stage.exists():
            raise ModelError(f"{name!r} is not installed (see `miodesk models list`).")
        freed = 0
        if model is not None:
            # Manifest first: from then on the model is not listed, even if a delete below fails.
            self.manifest.update(remove=model.name)
            targets = [model.folder, *(Path(p) for p in model.derived)]
            if model.folder.is_dir():  # and the audio-only copies of its speech model
                targets += [copy for gguf in model.folder.rglob("*.gguf") for copy in paths.audio_only_copies(gguf)]
        else:
            targets = []
        targets.append(stage)
        for target in targets:
            if not target.exists():
                continue
            size = _dir_size(target)
            try:
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            except OSError as exc:
                raise ModelError(f"Could not delete {target}: {exc.strerror or exc}.") from None
            freed += size
        self.tidy_staging(stage)
        log.info("Removed %s, freed %d bytes", name, freed)
        return freed


def describe_problems(problems: list[VerifyProblem]) -> str:
    names = sorted({p.name for p in problems})
    return "; ".join(p.message for p in problems) + (
        f" Download again with `miodesk models download {' '.join(names)}` or remove it."
    )


def checked_path(model: InstalledModel) -> Path:
    """The model's file or folder, after a cheap size check (a full sha256 check is on demand)."""
    problems = check_model(model, full=False)
    if problems:
        raise ModelError(
            f"{problems[0].message} Download it again with `miodesk models download {model.name}`, "
            "or check all models with `miodesk models verify`."
        )
    return model.main_file


def codec_folder(name: str) -> Path:
    """Where the codec called `name` is: its installed folder, else the folder of that name in the
    models folder (put there by hand). Never raises: whether it is there is the caller's question."""
    registry = ModelRegistry()
    model = registry.get_installed(name)
    if model is not None and model.kind == "codec":
        return model.folder
    return registry.root / name


def default_codec_folder() -> Path:
    """The codec to use when none is named: the default codec if installed, else the only installed
    codec, else the default codec's folder put there by hand (sizes checked for installed ones)."""
    installed = ModelRegistry().installed("codec")
    for model in installed:
        if model.name == DEFAULT_CODEC:
            return checked_path(model)
    if len(installed) == 1:
        return checked_path(installed[0])
    folder = codec_folder(DEFAULT_CODEC)
    if folder.is_dir():
        return folder
    raise ModelError(
        f"No MioCodec in {folder}. Download it with `miodesk models download {DEFAULT_CODEC}`, "
        "import a codec folder with `miodesk models import DIR`, or pass --codec DIR_OR_FILE.onnx."
    )


def default_model_file() -> Path:
    """The recommended GGUF (installed or in the models folder), else the only MioTTS GGUF there."""
    installed = ModelRegistry().installed("llm")
    for model in installed:
        if model.name == DEFAULT_LLM:
            return checked_path(model)
    if len(installed) == 1:
        return checked_path(installed[0])
    folder = paths.models_dir()
    if installed:
        names = ", ".join(m.name for m in installed)
        raise ModelError(f"Several models in {folder} ({names}); choose one with --model FILE.gguf.")
    # Files put there by hand (before the manifest existed, or copied in).
    preferred = folder / f"{DEFAULT_LLM}.gguf"
    if preferred.is_file():
        return preferred
    found = sorted(p for p in folder.rglob("*.gguf") if STAGING_NAME not in p.relative_to(folder).parts)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(
            f"No MioTTS model (.gguf) in {folder}. Download one with `miodesk models download "
            f"{DEFAULT_LLM}`, import a file with `miodesk models import FILE.gguf`, or pass --model FILE.gguf."
        )
    names = ", ".join(p.name for p in found)
    raise ModelError(f"Several models in {folder} ({names}); choose one with --model FILE.gguf.")


def default_wavlm_folder() -> Path:
    """The installed WavLM (the catalog's, else any), else its folder put there by hand."""
    installed = ModelRegistry().installed("wavlm")
    model = next((m for m in installed if m.name == DEFAULT_WAVLM), installed[0] if installed else None)
    folder = model.folder if model is not None else paths.models_dir() / DEFAULT_WAVLM
    if folder.is_dir():
        return folder
    raise ModelError(
        f"No WavLM model in {folder}. Put config.json and model.safetensors (or pytorch_model.bin) of "
        f"microsoft/{DEFAULT_WAVLM} there, or pass --wavlm DIR."
    )
