"""Voice files and the voice store (golden README §7)."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from miodesk.errors import VoiceError
from miodesk.tts import voices
from miodesk.tts.voices import (
    OFFICIAL_PRESETS,
    PRESET_LICENCE_NOTE,
    VOICE_DIM,
    Voice,
    VoiceStore,
    load_voice_file,
    resolve_voice,
)

PRESETS = Path(__file__).parent / "data" / "golden" / "presets"
SYNTHETIC = PRESETS / "synthetic"
REFUSED = "is not a plain voice tensor; refusing to load it (it could run code)"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MIODESK_HOME", str(home))
    return home


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def _assert_bit_exact(vector: np.ndarray, reference: np.ndarray) -> None:
    assert vector.dtype == np.float32
    assert vector.shape == (VOICE_DIM,)
    np.testing.assert_array_equal(_bits(vector), _bits(reference))


def _one_line_naming(error: pytest.ExceptionInfo, file_name: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert file_name in message
    return message


# --------------------------------------------------------------------------------------
# A tiny pickle assembler, to write torch-style saves (and hostile ones) without torch.


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _tuple(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _storage_pid(storage: str = "FloatStorage", key: str = "0", numel: int = VOICE_DIM) -> bytes:
    return _tuple(_str("storage"), _global("torch", storage), _str(key), _str("cpu"), _int(numel))


def _tensor_pickle(
    *,
    numel: int = VOICE_DIM,
    shape: tuple[int, ...] = (VOICE_DIM,),
    stride: tuple[int, ...] = (1,),
    offset: int = 0,
    storage: str = "FloatStorage",
    hooks: bytes | None = None,
    storage_ref: bytes | None = None,
    tail: bytes = b"",
) -> bytes:
    """What torch.save(tensor) writes (protocol 2), with knobs to make it wrong."""
    if hooks is None:
        hooks = _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    if storage_ref is None:
        storage_ref = _storage_pid(storage, "0", numel) + pickle.BINPERSID
    return (
        pickle.PROTO
        + b"\x02"
        + _global("torch._utils", "_rebuild_tensor_v2")
        + _tuple(
            storage_ref,
            _int(offset),
            _tuple(*(_int(d) for d in shape)),
            _tuple(*(_int(s) for s in stride)),
            pickle.NEWFALSE,
            hooks,
        )
        + pickle.REDUCE
        + tail
        + pickle.STOP
    )


def _write_pt(path: Path, data_pkl: bytes, values: np.ndarray | None = None, root: str = "voice") -> Path:
    if values is None:
        values = np.arange(VOICE_DIM, dtype="<f4") / 10
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", data_pkl)
        archive.writestr(f"{root}/byteorder", "little")
        archive.writestr(f"{root}/data/0", np.asarray(values, dtype="<f4").tobytes())
        archive.writestr(f"{root}/version", "3\n")
    return path


# --------------------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("preset", OFFICIAL_PRESETS)
def test_official_presets_bit_exact_and_recognised(preset: str) -> None:
    table = {entry["file"]: entry for entry in json.loads((PRESETS / "presets.json").read_text())}
    path = PRESETS / f"{preset}.pt"
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256 == table[path.name]["sha256"] == voices.OFFICIAL_PRESET_SHA256[preset]

    voice = load_voice_file(path)
    _assert_bit_exact(voice.vector, np.load(PRESETS / f"{preset}.npy"))
    assert voice.name == preset
    assert voice.metadata["kind"] == "preset"
    assert voice.metadata["preset"] == preset
    assert voice.metadata["source"] == {"file": path.name, "sha256": sha256}
    assert voice.metadata["licence"].startswith("non-commercial")
    assert float(np.linalg.norm(voice.vector)) == pytest.approx(table[path.name]["l2_norm"], rel=1e-6)


@pytest.mark.parametrize(
    "file_name", ["my_voice.pt", "声_テスト.pt", "npz_voice.npz", "my_voice.npy", "npz_voice.npy"]
)
def test_synthetic_voice_files(file_name: str) -> None:
    path = SYNTHETIC / file_name
    voice = load_voice_file(path)
    _assert_bit_exact(voice.vector, np.load(path.with_suffix(".npy")))
    assert voice.name == path.stem
    assert voice.metadata["kind"] == "user"


def test_non_ascii_pt_has_archive_root() -> None:
    names = zipfile.ZipFile(SYNTHETIC / "声_テスト.pt").namelist()
    assert "archive/data/0" in names and "archive/data.pkl" in names
    voice = load_voice_file(SYNTHETIC / "声_テスト.pt", name="テスト")
    assert voice.name == "テスト"


def test_assembled_tensor_pickle_matches_torch_layout(tmp_path: Path) -> None:
    # Our assembler must produce something the loader accepts, or the hostile tests prove nothing.
    values = np.linspace(-1, 1, VOICE_DIM, dtype=np.float32)
    voice = load_voice_file(_write_pt(tmp_path / "ok.pt", _tensor_pickle(), values))
    _assert_bit_exact(voice.vector, values)
    # Shape (1, 128) squeezes like the server does.
    pkl = _tensor_pickle(shape=(1, VOICE_DIM), stride=(VOICE_DIM, 1))
    _assert_bit_exact(load_voice_file(_write_pt(tmp_path / "row.pt", pkl, values)).vector, values)


# --------------------------------------------------------------------------------------
# Hostile .pt files: refused, and nothing they ask for happens.


class _SystemCall:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvalCall:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return (builtins.eval, (self.source,))


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    touch = f"touch {marker}"
    create = f"open({str(marker)!r}, 'w').close()"
    stack_global = (
        pickle.PROTO + b"\x04" + _str("torch") + _str("os.system") + pickle.STACK_GLOBAL
    )  # torch.os.system: an allowed-looking module reaching os through an attribute path
    return {
        "os_system": pickle.dumps(_SystemCall(touch), protocol=2),
        "os_system_proto4": pickle.dumps(_SystemCall(touch), protocol=4),
        "builtins_eval": pickle.dumps(_EvalCall(create), protocol=2),
        "torch_stack_global_dotted": stack_global + _tuple(_str(touch)) + pickle.REDUCE + pickle.STOP,
        "torch_utils_dotted_global": _global("torch._utils", "os.system")
        + _tuple(_str(touch))
        + pickle.REDUCE
        + pickle.STOP,
        "collections_lookalike": _global("collections", "os") + pickle.STOP,
        "subprocess_in_hooks": _tensor_pickle(
            hooks=_global("subprocess", "check_call")
            + _tuple(_tuple(_str("touch"), _str(str(marker))))
            + pickle.REDUCE
        ),
        "storage_class_called": _tensor_pickle(
            hooks=_global("torch", "FloatStorage") + pickle.EMPTY_TUPLE + pickle.REDUCE
        ),
        "ordered_dict_with_items": _tensor_pickle(
            hooks=_global("collections", "OrderedDict") + _tuple(_str("x")) + pickle.REDUCE
        ),
        "build_after_tensor": _tensor_pickle(tail=pickle.EMPTY_DICT + pickle.BUILD),
        "extra_storage": _tensor_pickle(
            hooks=_storage_pid(key="1") + pickle.BINPERSID,
        ),
        "non_storage_persistent_id": _tensor_pickle(
            storage_ref=_tuple(
                _str("module"), _global("torch", "FloatStorage"), _str("0"), _str("cpu"), _int(VOICE_DIM)
            )
            + pickle.BINPERSID
        ),
        "inst_opcode": pickle.INST + b"os\nsystem\n" + pickle.MARK + _str(touch) + pickle.STOP,
        "not_a_tensor": pickle.dumps([1.0] * VOICE_DIM, protocol=2),
        "garbage": b"\x80\x02garbage that is no pickle",
        "nonzero_offset": _tensor_pickle(offset=1),
        "strided_view": _tensor_pickle(stride=(2,)),
    }


HOSTILE_KINDS = list(_hostile_pickles(Path("x")).keys())


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_pt_is_refused(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write_pt(tmp_path / f"{kind}.pt", _hostile_pickles(marker)[kind])
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    message = _one_line_naming(info, path.name)
    assert REFUSED in message
    assert not marker.exists()

    store = VoiceStore()
    with pytest.raises(VoiceError):
        store.import_file(path)
    assert store.names() == []
    assert not marker.exists()


def test_hostile_pickle_really_names_the_dangerous_call(tmp_path: Path) -> None:
    # Sanity check on the fixtures themselves (read with genops, never loaded here).
    marker = tmp_path / "pwned"
    ops = list(pickletools.genops(_hostile_pickles(marker)["os_system"]))
    globals_named = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert globals_named == [f"{os.system.__module__} system"]
    assert any(op.name == "REDUCE" for op, _, _ in ops)


@pytest.mark.parametrize("kind", ["os_system", "builtins_eval"])
def test_hostile_fixture_is_potent(tmp_path: Path, kind: str) -> None:
    # Positive control: a naive unpickler (in a throw-away process) does run the payload,
    # so the refusal tests above really show that loading prevented it.
    marker = tmp_path / "pwned"
    payload = tmp_path / "data.pkl"
    payload.write_bytes(_hostile_pickles(marker)[kind])
    code = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())"
    subprocess.run([sys.executable, "-c", code, str(payload)], check=False, timeout=60)
    assert marker.exists()


def test_pt_with_two_pickles_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for root in ("a", "b"):
            archive.writestr(f"{root}/data.pkl", _tensor_pickle())
            archive.writestr(f"{root}/data/0", bytes(4 * VOICE_DIM))
    with pytest.raises(VoiceError, match="refusing"):
        load_voice_file(path)


def test_npy_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "objects.npy"
    np.save(path, np.array([_SystemCall(f"touch {marker}")] * 2, dtype=object), allow_pickle=True)
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    _one_line_naming(info, path.name)
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Broken or unsuitable files


def test_pt_wrong_size(tmp_path: Path) -> None:
    pkl = _tensor_pickle(numel=64, shape=(64,))
    path = _write_pt(tmp_path / "small.pt", pkl, np.zeros(64, dtype=np.float32))
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    assert "holds 64 values; a MioTTS voice has 128" in _one_line_naming(info, "small.pt")


def test_pt_wrong_dtype(tmp_path: Path) -> None:
    path = _write_pt(tmp_path / "double.pt", _tensor_pickle(storage="DoubleStorage"))
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    assert "float64" in _one_line_naming(info, "double.pt")


def test_pt_missing_storage_member(tmp_path: Path) -> None:
    path = tmp_path / "nodata.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("nodata/data.pkl", _tensor_pickle())
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    _one_line_naming(info, "nodata.pt")


@pytest.mark.parametrize(
    ("file_name", "values", "expected"),
    [
        ("short.npy", np.zeros(64, dtype=np.float32), "short.npy holds 64 values; a MioTTS voice has 128."),
        ("long.npy", np.zeros((2, 128), dtype=np.float32), "holds 256 values"),
        ("nan.npy", np.full(128, np.nan, dtype=np.float32), "NaN"),
        ("inf.npy", np.full(128, np.inf, dtype=np.float32), "infinite"),
        ("huge64.npy", np.full(128, 1e300, dtype=np.float64), "infinite"),
        ("text.npy", np.array(["a"] * 128), "a MioTTS voice is 128 float numbers"),
    ],
)
def test_bad_npy(tmp_path: Path, file_name: str, values: np.ndarray, expected: str) -> None:
    path = tmp_path / file_name
    np.save(path, values)
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    assert expected in _one_line_naming(info, file_name)


def test_npy_shapes_and_dtypes_accepted(tmp_path: Path) -> None:
    values = np.linspace(0, 1, VOICE_DIM)
    np.save(tmp_path / "row.npy", values.reshape(1, VOICE_DIM))  # float64, (1, 128)
    voice = load_voice_file(tmp_path / "row.npy")
    _assert_bit_exact(voice.vector, values.astype(np.float32))


def test_npz_key_order(tmp_path: Path) -> None:
    a, b, c = (np.full(VOICE_DIM, v, dtype=np.float32) for v in (1, 2, 3))
    np.savez(tmp_path / "both.npz", other=c, embedding=b, global_embedding=a)
    _assert_bit_exact(load_voice_file(tmp_path / "both.npz").vector, a)
    np.savez(tmp_path / "emb.npz", other=c, embedding=b)
    _assert_bit_exact(load_voice_file(tmp_path / "emb.npz").vector, b)
    np.savez_compressed(tmp_path / "first.npz", first=c, second=a)
    _assert_bit_exact(load_voice_file(tmp_path / "first.npz").vector, c)


def test_empty_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(VoiceError) as info:
        load_voice_file(tmp_path / "empty.npz")
    _one_line_naming(info, "empty.npz")


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".npy"])
def test_garbage_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not a voice file at all\n" * 4)
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    _one_line_naming(info, path.name)


def test_truncated_pt(tmp_path: Path) -> None:
    data = (PRESETS / "jp_female.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    _one_line_naming(info, "cut.pt")


def test_corrupted_storage_crc(tmp_path: Path) -> None:
    data = bytearray((PRESETS / "jp_female.pt").read_bytes())
    start = data.find(np.load(PRESETS / "jp_female.npy").astype("<f4").tobytes()[:16])
    assert start > 0
    data[start] ^= 0xFF
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    _one_line_naming(info, "flipped.pt")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "voice.wav"
    path.write_bytes(b"RIFF")
    with pytest.raises(VoiceError) as info:
        load_voice_file(path)
    assert ".pt, .npy or .npz" in _one_line_naming(info, "voice.wav")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VoiceError) as info:
        load_voice_file(tmp_path / "absent.pt")
    _one_line_naming(info, "absent.pt")


# --------------------------------------------------------------------------------------
# The store


def _voice(name: str, fill: float = 0.5) -> Voice:
    return Voice(name=name, vector=np.full(VOICE_DIM, fill, dtype=np.float32), metadata={})


def _temp_files(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_default_root_honours_miodesk_home(_home: Path) -> None:
    store = VoiceStore()
    assert store.root == _home / "data" / "voices"
    assert store.names() == []


def test_import_official_preset(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path / "voices")
    voice = store.import_file(PRESETS / "jp_female.pt")
    assert voice.name == "jp_female"
    assert store.names() == ["jp_female"]
    again = store.get("jp_female")
    _assert_bit_exact(again.vector, np.load(PRESETS / "jp_female.npy"))
    meta = json.loads((store.root / "jp_female.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "preset"
    assert meta["licence"] == PRESET_LICENCE_NOTE
    assert "non-commercial" in meta["licence"] and "commercially" in meta["licence"]
    assert meta["source"]["file"] == "jp_female.pt"
    assert meta["source"]["sha256"] == voices.OFFICIAL_PRESET_SHA256["jp_female"]
    assert meta["created"]
    assert again.metadata == meta
    assert again.is_preset


def test_import_preset_under_other_name_keeps_preset_marking(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    voice = store.import_file(PRESETS / "en_male.pt", name="Narrator")
    assert voice.metadata["kind"] == "preset" and voice.metadata["preset"] == "en_male"
    assert store.get("Narrator").metadata["licence"] == PRESET_LICENCE_NOTE


def test_import_user_file_and_japanese_name(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    voice = store.import_file(SYNTHETIC / "声_テスト.pt")
    assert voice.name == "声_テスト"
    assert store.names() == ["声_テスト"]
    loaded = store.get("声_テスト")
    assert loaded.metadata["kind"] == "user"
    _assert_bit_exact(loaded.vector, np.load(SYNTHETIC / "声_テスト.npy"))


def test_save_get_rename_delete_round_trip(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    store.save(_voice("alpha", 0.25))
    assert store.names() == ["alpha"]
    with pytest.raises(VoiceError, match="already exists"):
        store.save(_voice("alpha", 0.75))
    store.save(_voice("alpha", 0.75), overwrite=True)
    assert float(store.get("alpha").vector[0]) == 0.75

    store.save(_voice("beta"))
    with pytest.raises(VoiceError, match="already exists"):
        store.rename("alpha", "beta")
    renamed = store.rename("alpha", "gamma")
    assert renamed.name == "gamma" and renamed.metadata["name"] == "gamma"
    assert store.names() == ["beta", "gamma"]
    assert float(store.get("gamma").vector[0]) == 0.75

    store.rename("gamma", "Gamma")  # case-only rename
    assert store.names() == ["Gamma", "beta"]

    store.delete("beta")
    assert store.names() == ["Gamma"]
    with pytest.raises(VoiceError):
        store.delete("beta")
    assert _temp_files(tmp_path) == []


def test_get_missing_lists_voices_and_import_hint(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    store.save(_voice("alpha"))
    with pytest.raises(VoiceError) as info:
        store.get("nobody")
    message = str(info.value)
    assert "\n" not in message
    assert "'nobody'" in message and "alpha" in message and "miodesk voices import FILE" in message


def test_half_saved_voice_is_not_listed(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    np.save(tmp_path / "orphan.npy", np.zeros(VOICE_DIM, dtype=np.float32))
    (tmp_path / "lonely.json").write_text("{}")
    assert store.names() == []


def test_damaged_metadata(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    store.save(_voice("alpha"))
    (tmp_path / "alpha.json").write_text("{not json")
    with pytest.raises(VoiceError) as info:
        store.get("alpha")
    _one_line_naming(info, "alpha.json")


def _failing_fsync(monkeypatch: pytest.MonkeyPatch, fail_on_call: int) -> None:
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("fail_on_call", [1, 2], ids=["vector_write_fails", "metadata_write_fails"])
def test_failed_overwrite_leaves_old_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    store = VoiceStore(tmp_path)
    store.save(Voice("alpha", np.full(VOICE_DIM, 0.25, dtype=np.float32), {"note": "old"}))
    old_json = (tmp_path / "alpha.json").read_bytes()

    _failing_fsync(monkeypatch, fail_on_call)
    new = Voice("alpha", np.full(VOICE_DIM, 0.75, dtype=np.float32), {"note": "new"})
    with pytest.raises(VoiceError) as info:
        store.save(new, overwrite=True)
    assert "\n" not in str(info.value)
    monkeypatch.undo()

    assert store.names() == ["alpha"]
    kept = store.get("alpha")
    assert float(kept.vector[0]) == 0.25
    assert kept.metadata["note"] == "old"
    assert (tmp_path / "alpha.json").read_bytes() == old_json
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_failed_new_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    store = VoiceStore(tmp_path)
    _failing_fsync(monkeypatch, fail_on_call)
    with pytest.raises(VoiceError):
        store.save(_voice("fresh"))
    monkeypatch.undo()
    assert store.names() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "a/b",
        "a\\b",
        "../escape",
        "x" * 65,
        " padded",
        "padded ",
        ".hidden",
        "trail.",
        "CON",
        "nul",
        "com1.txt",
        "a:b",
        "a*b",
        "a\x00b",
        "tab\there",
        "new\nline",
    ],
)
def test_invalid_names_refused(tmp_path: Path, name: str) -> None:
    store = VoiceStore(tmp_path / "voices")
    with pytest.raises(VoiceError) as info:
        store.save(_voice(name))
    assert "\n" not in str(info.value)
    with pytest.raises(VoiceError):
        store.get(name)
    assert not (tmp_path / "voices").exists() or list((tmp_path / "voices").iterdir()) == []
    assert not (tmp_path / "escape.npy").exists()


@pytest.mark.parametrize("name", ["声_テスト", "x" * 64, "My voice 2", "ナレーター(落ち着き)", "v1.2"])
def test_valid_names_accepted(tmp_path: Path, name: str) -> None:
    store = VoiceStore(tmp_path)
    store.save(_voice(name))
    assert store.names() == [name]
    assert store.get(name).name == name


def test_import_with_unusable_stem_asks_for_a_name(tmp_path: Path) -> None:
    source = tmp_path / ".hidden.npy"
    np.save(source, np.zeros(VOICE_DIM, dtype=np.float32))
    store = VoiceStore(tmp_path / "voices")
    with pytest.raises(VoiceError, match="name of your own"):
        store.import_file(source)
    assert store.import_file(source, name="ok").name == "ok"


# --------------------------------------------------------------------------------------
# resolve_voice


def test_resolve_file_then_store_name(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path / "voices")
    voice = resolve_voice(str(SYNTHETIC / "my_voice.pt"), store)
    _assert_bit_exact(voice.vector, np.load(SYNTHETIC / "my_voice.npy"))

    store.import_file(PRESETS / "jp_male.pt")
    voice = resolve_voice("jp_male", store)
    _assert_bit_exact(voice.vector, np.load(PRESETS / "jp_male.npy"))
    assert voice.metadata["kind"] == "preset"


def test_resolve_uninstalled_preset_explains_import(tmp_path: Path) -> None:
    with pytest.raises(VoiceError) as info:
        resolve_voice("en_female", VoiceStore(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "not installed yet" in message
    assert "miodesk voices import" in message


def test_resolve_default_store_uses_home(_home: Path) -> None:
    VoiceStore().import_file(PRESETS / "en_female.pt")
    assert resolve_voice("en_female").metadata["preset"] == "en_female"


def test_resolve_unknown(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path)
    with pytest.raises(VoiceError, match="No voice named"):
        resolve_voice("somebody", store)
    with pytest.raises(VoiceError, match="does not exist"):
        resolve_voice(str(tmp_path / "missing.pt"), store)


def test_loading_never_uses_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle must never be loaded")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    for path in [*PRESETS.glob("*.pt"), *SYNTHETIC.glob("*.pt"), *SYNTHETIC.glob("*.np?")]:
        assert load_voice_file(path).vector.shape == (VOICE_DIM,)
