"""The model registry: one owner of names, a damaged manifest rebuilt, a cut GGUF refused, layering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from small_gguf import small_gguf

from miodesk.errors import ModelError
from miodesk.model_setup import ModelInstaller
from miodesk.models import catalog, gguf_file, registry
from miodesk.models.installed import MANIFEST_NAME

GOLDEN = Path(__file__).parent / "data" / "golden"
LLM = "MioTTS-0.1B-Q8_0"


@pytest.fixture
def installer(tmp_path: Path) -> ModelInstaller:
    return ModelInstaller(tmp_path / "models")


def _damage(root: Path, text: str = '{"version": 1, "models": [') -> None:
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------- damaged manifest


def test_a_damaged_manifest_is_rebuilt_from_the_model_folders(installer: ModelInstaller, tmp_path: Path) -> None:
    source = tmp_path / f"{LLM}.gguf"
    source.write_bytes(small_gguf(5000))
    installer.import_path(source)
    installer.import_path(GOLDEN / "presets" / "jp_female.pt")
    codec = installer.import_path(GOLDEN / "codec" / "24k")
    (installer.root / ".staging" / "half").mkdir(parents=True)  # MioDesk's own work folder: not a model
    (installer.root / "notes").mkdir()  # nothing recognisable in it: not a model
    _damage(installer.root)

    fresh = ModelInstaller(installer.root)
    models = {m.name: m for m in fresh.installed()}
    assert sorted(models) == sorted([codec.name, "jp_female", LLM])
    assert models[LLM].kind == "llm" and models[LLM].main_file == installer.root / LLM / f"{LLM}.gguf"
    assert models[codec.name].kind == "codec" and models["jp_female"].kind == "preset"
    assert all(m.rebuilt for m in models.values())
    # The presets' checksums are pinned by the catalog; the others were lost with the manifest.
    assert models["jp_female"].unverifiable_files == []
    assert models[LLM].unverifiable_files == [f"{LLM}.gguf"]
    assert fresh.verify(full=True) == []
    [kept] = installer.root.glob(f"{MANIFEST_NAME}.damaged-*")
    assert kept.read_text(encoding="utf-8") == '{"version": 1, "models": ['
    # The rebuilt manifest was saved: the next start reads it as it is.
    assert json.loads((installer.root / MANIFEST_NAME).read_text(encoding="utf-8"))["models"]
    # Remove works again (it refused while the manifest was damaged).
    assert fresh.remove(LLM) > 0 and not (installer.root / LLM).exists()


def test_every_damage_keeps_its_own_copy(installer: ModelInstaller) -> None:
    for text in ("first damage", "second damage", "third damage"):
        _damage(installer.root, text)
        assert installer.installed() == []
    kept = sorted(p.read_text(encoding="utf-8") for p in installer.root.glob(f"{MANIFEST_NAME}.damaged-*"))
    assert kept == ["first damage", "second damage", "third damage"]


def test_downloading_an_unverifiable_model_again_restores_its_checksums(
    installer: ModelInstaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub_server import FakeHub

    data = small_gguf(300_000)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub(max_seconds=60) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.add("Aratako/MioTTS-GGUF", f"{LLM}.gguf", data)
        installer.download([LLM])
        _damage(installer.root)
        [rebuilt] = installer.installed()
        assert rebuilt.unverifiable_files == [f"{LLM}.gguf"]
        [model] = installer.download([LLM])
        assert len(hub.requests("GET")) == 2  # fetched again: only the hub can vouch for the file
    assert not model.rebuilt and model.files[0].sha256 and installer.installed()[0].unverifiable_files == []


def test_the_models_cli_says_what_cannot_be_verified(run_cli, miodesk_home: Path, tmp_path: Path) -> None:
    source = tmp_path / f"{LLM}.gguf"
    source.write_bytes(small_gguf(5000))
    assert run_cli("models", "import", source).returncode == 0
    models = miodesk_home / "data" / "models"
    _damage(models)
    listed = run_cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert next(line for line in listed.stdout.splitlines() if line.startswith(f"{LLM} ")).endswith("installed")
    assert "Not verifiable: " + LLM in listed.stdout
    verified = run_cli("models", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "all fine" not in verified.stdout and "1 cannot be verified" in verified.stdout
    assert f"models download {LLM}" in verified.stdout
    removed = run_cli("models", "remove", LLM)
    assert removed.returncode == 0 and f"removed {LLM}" in removed.stdout


# ---------------------------------------------------------------------------------- GGUF structure


def test_a_truncated_gguf_is_refused_on_import(installer: ModelInstaller, tmp_path: Path) -> None:
    from miodesk.synthetic.gguf import write_test_gguf

    whole = tmp_path / "whole.gguf"
    write_test_gguf(whole)
    layout = gguf_file.check_gguf_file(whole)
    assert layout.tensor_count > 0 and layout.unknown_types == []
    assert layout.data_start < layout.required_size <= whole.stat().st_size
    data = whole.read_bytes()
    for cut, reason in ((layout.required_size - 1, "its tensors need"), (layout.data_start // 2, "ends inside")):
        truncated = tmp_path / f"cut-{cut}.gguf"
        truncated.write_bytes(data[:cut])  # what `head -c` makes
        with pytest.raises(ModelError, match=f"incomplete.*{reason}|{reason}"):
            installer.import_path(truncated)
    assert installer.installed() == [] and not list(installer.root.glob("cut-*"))


@pytest.mark.parametrize("alignment", [32, 64])
def test_gguf_layout_of_a_hand_made_file(tmp_path: Path, alignment: int) -> None:
    path = tmp_path / "small.gguf"
    path.write_bytes(small_gguf(1000, alignment=alignment))
    layout = gguf_file.check_gguf_file(path)
    assert (layout.alignment, layout.tensor_count, layout.data_start % alignment) == (alignment, 1, 0)
    assert layout.required_size == path.stat().st_size == layout.data_start + 1000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF"),
        (b"GGUF" + (1).to_bytes(4, "little"), "unsupported version 1"),
        (b"GGUF" + (3).to_bytes(4, "little") + bytes(16), "no tensors"),
        (b"GGUF" + (3).to_bytes(4, "little") + (2**62).to_bytes(8, "little") + bytes(8), "incomplete"),
        (b"GGUF" + (3).to_bytes(4, "little") + bytes(8) + (1).to_bytes(8, "little") + bytes(8) + bytes(4),
         "incomplete"),
    ],
)
def test_gguf_structure_problems_are_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        gguf_file.check_gguf_file(path)


def test_ggml_block_sizes_match_gguf_py() -> None:
    from gguf.constants import GGML_QUANT_SIZES

    theirs = {int(kind): (int(block), int(size)) for kind, (block, size) in GGML_QUANT_SIZES.items()}
    shared = set(theirs) & set(gguf_file.GGML_BLOCKS)
    assert {0, 1, 8, 12, 14, 30} <= shared
    assert {kind: gguf_file.GGML_BLOCKS[kind] for kind in shared} == {kind: theirs[kind] for kind in shared}


# ---------------------------------------------------------------------------------- one owner of names


def test_codec_variants_have_one_spelling_and_old_settings_still_read(tmp_path: Path) -> None:
    from miodesk.settings import Settings, load_settings

    assert set(catalog.CODEC_VARIANTS) == {"v2_44k", "24k"}
    assert all(catalog.get_entry(name).kind == "codec" for name in catalog.CODEC_VARIANTS.values())
    assert catalog.DEFAULT_CODEC == catalog.CODEC_VARIANTS[catalog.DEFAULT_CODEC_VARIANT]
    assert Settings().codec_variant == "v2_44k"
    old = tmp_path / "settings.json"
    old.write_text(json.dumps({"codec_variant": "44k"}), encoding="utf-8")
    assert load_settings(old).codec_variant == "v2_44k"
    old.write_text(json.dumps({"codec_variant": "96k"}), encoding="utf-8")
    assert load_settings(old).codec_variant == catalog.DEFAULT_CODEC_VARIANT


def test_window_and_cli_find_the_codec_through_the_registry(installer: ModelInstaller, tmp_path: Path) -> None:
    from miodesk import paths
    from miodesk.settings import Settings
    from miodesk.tts.engine import default_codec_path

    home = ModelInstaller(paths.models_dir())
    with pytest.raises(ModelError, match=f"models download {catalog.DEFAULT_CODEC}"):
        default_codec_path()
    # Imported under a name of its own: the window finds it by that name, as the CLI does.
    folder = tmp_path / "my-codec"
    shutil.copytree(GOLDEN / "codec" / "24k", folder)
    codec = home.import_path(folder, name="MioCodec-25Hz-24kHz")
    assert Settings(codec_variant="24k").codec_folder() == registry.codec_folder(codec.name) == codec.folder
    assert default_codec_path() == codec.folder  # the only installed codec
    assert Settings().codec_folder() == paths.models_dir() / catalog.DEFAULT_CODEC  # not installed: where it goes


def test_preset_hashes_have_one_owner() -> None:
    from miodesk.tts import voices

    assert voices.OFFICIAL_PRESET_SHA256 is catalog.PRESET_SHA256
    assert tuple(voices.OFFICIAL_PRESETS) == catalog.PRESET_NAMES
    for name, sha in catalog.PRESET_SHA256.items():
        assert catalog.get_entry(name).sha256 == {f"{name}.pt": sha}
        assert catalog.preset_for_sha256(sha.upper()) == name
