"""Installing models: downloads and local imports, then what the runtime builds from them.

Three jobs, three places: `models.registry` knows what is installed, `models.download` transfers
files, and this module installs: it checks and copies local files (`miodesk models import`) and runs
the post-install steps a download leaves to its caller, once per model:
- a codec gets its ONNX decoder graph built (the first reading would otherwise wait for it);
- the voice-encoder graph is built as soon as a codec and WavLM are both installed;
- an official preset is added to the voice store.
The models CLI and the first-run dialog install through `ModelInstaller`; the registry and the
downloads stay free of the speech engine, and the engine imports nothing from here.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from miodesk.errors import MioDeskError, ModelError
from miodesk.filenames import check_portable_name, name_problem, portable_file_name
from miodesk.models.catalog import CATALOG, CODEC_VARIANTS, DEFAULT_CODEC, DEFAULT_WAVLM, format_bytes
from miodesk.models.download import DISK_ERRNOS, DownloadManager, Progress
from miodesk.models.gguf_file import check_gguf_file
from miodesk.models.installed import MANIFEST_NAME, InstalledFile, InstalledModel, file_hashes, now_iso

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


class ModelInstaller(DownloadManager):
    """Downloads with the post-install steps, and imports of local files."""

    def __init__(self, models_dir: Path | None = None) -> None:
        super().__init__(models_dir, after_install=self.prepare)

    # ------------------------------------------------------------------ post-install steps
    def prepare(self, model: InstalledModel, progress: ProgressCallback | None = None) -> None:
        """Build what the runtime needs from the weights, once (codec/encoder graphs; preset voice)."""
        if model.kind == "codec":
            from miodesk.tts.codec import ensure_decoder

            if progress is not None:
                progress(Progress(model.name, "decoder.onnx (building)", model.size_bytes, model.size_bytes, 0.0, None))
            model.derived = [str(ensure_decoder(model.folder))]
            self.registry.record(model)
        elif model.kind == "preset":
            model.derived = self._install_preset_voice(model)
            self.registry.record(model)
        if model.kind in ("codec", "wavlm"):
            self._build_voice_encoder(model, progress)

    def _build_voice_encoder(self, model: InstalledModel, progress: ProgressCallback | None) -> None:
        """The voice-encoder graph needs a codec and WavLM; build it once both are here.

        Best effort: it is also built on first use, so a failure here is only logged.
        """
        wavlms = self.registry.installed("wavlm")
        wavlm = next((m for m in wavlms if m.name == DEFAULT_WAVLM), wavlms[0] if wavlms else None)
        codecs = self.registry.installed("codec")
        codec = next((m for m in codecs if m.name == DEFAULT_CODEC), codecs[0] if codecs else None)
        if wavlm is None or codec is None:
            return
        try:
            from miodesk.tts.voice_encoder import ensure_encoder

            if progress is not None:
                progress(
                    Progress(model.name, "voice encoder (building)", model.size_bytes, model.size_bytes, 0.0, None)
                )
            built = str(ensure_encoder(codec.folder, wavlm.folder))
        except Exception as exc:  # noqa: BLE001 - built again on first use, where errors are shown
            log.warning("Could not build the voice encoder graph now (%s); it is built when first needed", exc)
            return
        if built not in wavlm.derived:
            wavlm.derived.append(built)
            self.registry.record(wavlm)

    def _install_preset_voice(self, model: InstalledModel) -> list[str]:
        from miodesk.tts.voices import VoiceStore

        store = VoiceStore()
        if model.name in store.names() and store.get(model.name).metadata.get("preset") != model.name:
            log.warning("A user voice is called %s; the preset is installed but not added as a voice", model.name)
            return []
        store.import_file(model.main_file, name=model.name, overwrite=True)
        return [str(store.root / f"{model.name}.json"), str(store.root / f"{model.name}.npy")]

    # ------------------------------------------------------------------ import
    def import_path(self, path: Path, name: str | None = None) -> InstalledModel:
        """Check and install local files: a .gguf, a codec folder, a WavLM folder or a preset .pt."""
        path = Path(path).expanduser()
        if not path.exists():
            raise ModelError(f"{path} does not exist.")
        if path.is_dir():
            if (path / "config.yaml").is_file() and (path / "model.safetensors").is_file():
                return self._import_codec(path, name)
            weights = [path / w for w in ("model.safetensors", "pytorch_model.bin") if (path / w).is_file()]
            if (path / "config.json").is_file() and weights:
                model = self._import_files(path, name or DEFAULT_WAVLM, "wavlm", [path / "config.json", weights[0]])
                self._build_voice_encoder(model, None)
                return model
            raise ModelError(
                f"{path} is not a model folder: a codec folder has config.yaml and model.safetensors, "
                "a WavLM folder config.json and pytorch_model.bin."
            )
        suffix = path.suffix.lower()
        if suffix == ".gguf":
            # The whole structure, not just the signature: a file cut short must not install.
            check_gguf_file(path)
            target = name or model_name_for_file(path.name, path.stem)
            known = next((e for e in CATALOG if e.name.casefold() == target.casefold()), None)
            if known is not None and known.kind != "llm":
                raise ModelError(f"{target} is the name of a {known.kind}, not of a speech model; pick another name.")
            return self._import_files(path.parent, known.name if known else target, "llm", [path])
        if suffix in (".pt", ".npy", ".npz"):
            from miodesk.tts.voices import load_voice_file

            voice = load_voice_file(path)  # validates without unpickling
            preset = voice.metadata.get("preset")
            if not preset:
                raise ModelError(
                    f"{path.name} is a voice file but not one of the official presets; add it as a voice "
                    f"with `miodesk voices import {path.name}`."
                )
            model = self._import_files(path.parent, preset, "preset", [path], rename={path.name: f"{preset}.pt"})
            self.prepare(model)
            return model
        raise ModelError(
            f"{path.name}: MioDesk imports a MioTTS .gguf file, a MioCodec folder (config.yaml + "
            "model.safetensors), a WavLM folder or an official preset .pt."
        )

    def _import_codec(self, folder: Path, name: str | None) -> InstalledModel:
        from miodesk.tts.codec_config import CodecConfig

        try:
            variant = CodecConfig.from_file(folder / "config.yaml").variant
        except MioDeskError:
            raise
        except Exception as exc:
            raise ModelError(f"{folder / 'config.yaml'} is not a MioCodec config ({exc}).") from None
        default = CODEC_VARIANTS.get(variant) or model_name_for_file(folder.name, folder.name)
        model = self._import_files(
            folder, name or default, "codec", [folder / "config.yaml", folder / "model.safetensors"]
        )
        try:
            self.prepare(model)
        except MioDeskError:
            self.remove(model.name)  # weights that do not build are not a usable codec
            raise
        return model

    def _import_files(
        self, origin: Path, name: str, kind: str, sources: list[Path], rename: dict[str, str] | None = None
    ) -> InstalledModel:
        # A name given with --name is refused when it cannot be a folder name on every platform;
        # names taken from a file were made portable by model_name_for_file already. ".staging"
        # starts with a dot, so it is refused here too.
        check_portable_name(name, "Model name", error=ModelError)
        if name.casefold().startswith(MANIFEST_NAME):
            raise ModelError(f"Model name {name!r} is used by MioDesk's own files; choose another with --name.")
        rename = rename or {}
        stage = self.staging / f"{name}.import"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        files = []
        try:
            self._check_space_bytes(name, stage, sum(s.stat().st_size for s in sources))
            for source in sources:
                target = stage / rename.get(source.name, source.name)
                shutil.copyfile(source, target)
                files.append(InstalledFile(target.name, target.stat().st_size, file_hashes(target)[0]))
            model = InstalledModel(
                name=name,
                kind=kind,
                folder=self.root / name,
                files=files,
                source="import",
                repo=str(origin),
                installed_at=now_iso(),
            )
            self.registry.place(stage, model)
        except OSError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if exc.errno in DISK_ERRNOS:
                raise ModelError(f"The disk is full: could not import {name} into {self.root}.") from None
            raise ModelError(f"Could not import {name}: {exc.strerror or exc}.") from None
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        finally:
            self.registry.tidy_staging(stage)
        return model

    def _check_space_bytes(self, name: str, stage: Path, needed: int) -> None:
        free = shutil.disk_usage(stage).free
        if free < needed + self.disk_reserve:
            raise ModelError(
                f"Not enough disk space to import {name}: it needs {format_bytes(needed + self.disk_reserve)}, "
                f"{format_bytes(free)} are free in {self.root}."
            )


def model_name_for_file(file_name: str, stem: str) -> str:
    """The name a model imported from `file_name` installs under: its `stem`, made portable.

    Decision: a name that cannot be a folder on every platform ("CON.gguf", "a:b.gguf",
    "my model .gguf") is mapped to a safe one with a warning, not refused. Unlike a voice name,
    which people type on every `--voice NAME` and so choose themselves, a model's name only labels
    its folder; GGUF files come named by whoever made them, and refusing would make people invent
    a `--name` for something they never type. `--name` still picks another, and is checked strictly.
    """
    problem = name_problem(stem)
    if problem is None:
        return stem
    mapped = portable_file_name(stem)
    log.warning(
        "%s: the name %r %s; installing it as %r (use --name NAME to choose another)",
        file_name, stem, problem.split(";")[0], mapped,
    )
    return mapped
