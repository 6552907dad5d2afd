"""File-name rules (miodesk.filenames) and where they apply: voices, model imports, long paths."""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from small_gguf import small_gguf

from miodesk.errors import MioDeskError, ModelError, VoiceError
from miodesk.filenames import (
    MAX_NAME_CHARS,
    UnportableNameError,
    check_portable_name,
    extended_path,
    is_reserved_on_windows,
    name_problem,
    portable_file_name,
    truncate_name,
    utf16_length,
)

GGUF_HEADER = small_gguf(64)  # a whole GGUF: imports check the structure

# --------------------------------------------------------------------------------------
# check_portable_name


@pytest.mark.parametrize(
    "name",
    [
        "声_テスト",
        "田中 太郎",
        "田中\u3000太郎",  # a full-width space inside a name is fine on every platform
        "ナレーター(落ち着き)",
        "v1.2",
        "x" * MAX_NAME_CHARS,
        "😀" * (MAX_NAME_CHARS // 2),
        # Look like device names but are not: Windows matches the whole part before the dot.
        "CONSOLE",
        "COM10",
        "LPT",
        "nullable",
        "con-1",
        "ＣＯＮ",  # full-width letters
        "aux_",
        "my.con",
    ],
)
def test_portable_names_pass(name: str) -> None:
    assert check_portable_name(name) == name
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "cannot be empty"),
        ("CON", "reserved on Windows"),
        ("con", "reserved on Windows"),
        ("Nul", "reserved on Windows"),
        ("PRN", "reserved on Windows"),
        ("aux", "reserved on Windows"),
        ("nul.txt", "reserved on Windows"),  # reserved with any extension
        ("NUL.tar.gz", "reserved on Windows"),
        ("aux .txt", "reserved on Windows"),  # Windows ignores spaces before the extension
        ("COM0", "reserved on Windows"),
        ("com1", "reserved on Windows"),
        ("LPT9", "reserved on Windows"),
        ("COM\u00b9", "reserved on Windows"),  # superscript digits count as digits there
        ("lpt\u00b3.log", "reserved on Windows"),
        ("CONIN$", "reserved on Windows"),
        ("conout$.txt", "reserved on Windows"),
        ("trail.", "cannot end with a dot"),
        ("trail...", "cannot end with a dot"),
        ("trail ", "cannot start or end with a space"),
        (" lead", "cannot start or end with a space"),
        ("trail\u3000", "cannot start or end with a space"),
        (".hidden", "cannot start with a dot"),
        (".", "cannot start with a dot"),
        ("..", "cannot start with a dot"),
        ("a:b", "cannot contain :"),
        ("a/b", "cannot contain /"),
        ("a\\b", "cannot contain \\"),
        ("../escape", "cannot contain /"),
        ("what?", "cannot contain ?"),
        ("a*b", "cannot contain *"),
        ('say "hi"', 'cannot contain "'),
        ("<x>", "cannot contain < >"),
        ("a|b", "cannot contain |"),
        ("a\x00b", "control or invisible"),
        ("tab\there", "control or invisible"),
        ("new\nline", "control or invisible"),
        ("del\x7f", "control or invisible"),
        ("zero\u200bwidth", "control or invisible"),
        ("right\u202eleft", "control or invisible"),  # a bidi override could disguise a name
        ("line\u2028sep", "control or invisible"),
        ("bad\ud800surrogate", "control or invisible"),  # undecodable bytes of a Linux file name
        ("x" * (MAX_NAME_CHARS + 1), "too long (65 characters; at most 64)"),
        ("😀" * 33, "too long (66 characters, counting an emoji as 2; at most 64)"),
    ],
)
def test_unportable_names_refused_with_a_reason_and_a_fix(name: str, fragment: str) -> None:
    with pytest.raises(UnportableNameError) as info:
        check_portable_name(name, "Model name")
    message = str(info.value)
    assert isinstance(info.value, MioDeskError)
    assert message.startswith("Model name ")
    assert fragment in message
    assert ";" in message  # what is wrong; what to do
    assert "\n" not in message and message.endswith(".")
    # The mapped name is always a fix.
    assert name_problem(portable_file_name(name)) is None


def test_reserved_names_suggest_a_usable_one() -> None:
    with pytest.raises(UnportableNameError, match="such as 'nul_.txt'"):
        check_portable_name("nul.txt")


def test_each_part_raises_its_own_error() -> None:
    with pytest.raises(ModelError, match="^Model name 'CON' is reserved on Windows"):
        check_portable_name("CON", "Model name", error=ModelError)
    with pytest.raises(VoiceError, match="^Voice name 'a:b' cannot contain :"):
        check_portable_name("a:b", error=VoiceError)


def test_a_long_name_is_shortened_in_the_message() -> None:
    with pytest.raises(UnportableNameError) as info:
        check_portable_name("長" * 100)
    assert "長" * 20 + "'…" in str(info.value) and "長" * 21 not in str(info.value)


def test_reserved_detection() -> None:
    assert is_reserved_on_windows("Com1 .log")
    assert not is_reserved_on_windows("COM1x")
    assert not is_reserved_on_windows("x.CON")


# --------------------------------------------------------------------------------------
# portable_file_name


@pytest.mark.parametrize(
    ("name", "mapped"),
    [
        ("CON", "CON_"),
        ("aux", "aux_"),
        ("nul.txt", "nul_.txt"),
        ("Com1 .log", "Com1_.log"),
        ("COM\u00b2", "COM\u00b2_"),
        ("CONOUT$", "CONOUT$_"),
        ("my model ", "my model"),
        ("a:b", "a_b"),
        ('Chapter 1: "Why?" <draft>|v2*', 'Chapter 1_ _Why__ _draft__v2_'),
        ("a/b\\c", "a_b_c"),
        ("吾輩は猫である", "吾輩は猫である"),
        ("吾輩は猫である。", "吾輩は猫である。"),  # the ideographic full stop is not a dot
        ("  title  \n\t second line ", "title second line"),
        ("...hidden...", "hidden"),
        (". . .", "unnamed"),
        ("", "unnamed"),
        ("\x00\x01", "unnamed"),
        ("か\u3099な", "がな"),  # NFC: macOS hands out decomposed names
        ("x" * 70, "x" * MAX_NAME_CHARS),
        ("😀" * 40, "😀" * (MAX_NAME_CHARS // 2)),
        ("a" * 63 + ". b", "a" * 63),  # no trailing dot or space after cutting
        ("bad\udcffbyte", "bad byte"),
    ],
)
def test_portable_file_name_maps_to_a_safe_name(name: str, mapped: str) -> None:
    assert portable_file_name(name) == mapped
    assert check_portable_name(mapped) == mapped
    assert portable_file_name(mapped) == mapped  # a safe name is left as it is


def test_portable_file_name_takes_a_length() -> None:
    assert portable_file_name("吾輩は猫である。名前はまだ無い。", max_length=8) == "吾輩は猫である。"
    assert name_problem(portable_file_name("CON", max_length=8), max_length=8) is None
    with pytest.raises(ValueError):
        portable_file_name("x", max_length=3)


def test_portable_file_name_is_safe_for_any_text() -> None:
    alphabet = (
        list("abcXYZ019 .-_") + list('<>:"/\\|?*') + ["\x00", "\t", "\n", "\x7f", "\u200b", "\u202e", "\u3000"]
        + list("日本語かなカナ。、") + ["😀", "\u00b9", "$", "\udc80"]
    )
    rng = random.Random(15)
    words = ["CON", "nul", "com1", "LPT\u00b3", "conin$", ".."]
    for _ in range(3000):
        parts = [rng.choice(words) if rng.random() < 0.2 else rng.choice(alphabet) for _ in range(rng.randint(0, 90))]
        name = "".join(parts)
        mapped = portable_file_name(name)
        assert name_problem(mapped) is None, (name, mapped)
        assert portable_file_name(name) == mapped


def test_lengths_are_counted_as_windows_counts() -> None:
    assert utf16_length("abc") == 3
    assert utf16_length("日本") == 2
    assert utf16_length("😀") == 2
    assert truncate_name("a😀b", 2) == "a"  # never half an emoji
    assert truncate_name("a😀b", 3) == "a😀"
    # 64 UTF-16 units always fit the 255-byte name limit of Linux and macOS with room to spare.
    assert len(("\uffff" * MAX_NAME_CHARS + ".json.abcdefgh.tmp.").encode("utf-8")) < 255


# --------------------------------------------------------------------------------------
# extended_path (Windows MAX_PATH)


def _windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")


def test_extended_path_leaves_paths_alone_off_windows(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 200) / ("y" * 200) / "file.txt"
    assert extended_path(deep) is deep
    assert extended_path(str(deep)) == str(deep)


def test_extended_path_leaves_short_windows_paths_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _windows(monkeypatch)
    short = "C:\\Users\\田中 太郎\\Documents\\book.txt"
    assert extended_path(short) is short
    just_below = "C:\\" + "a" * 236  # 239 characters
    assert extended_path(just_below) == just_below


def test_extended_path_gives_the_long_form_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    _windows(monkeypatch)
    folder = "C:\\Users\\田中 太郎\\" + "\\".join(["長いフォルダー名" * 4] * 8)
    long_path = folder + "\\本.txt"
    assert len(long_path) > 260
    assert extended_path(long_path) == "\\\\?\\" + long_path
    at_threshold = "C:\\" + "a" * 237  # 240 characters: atomic writes add a temporary name beside it
    assert extended_path(at_threshold) == "\\\\?\\" + at_threshold


def test_extended_path_normalises_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # \\?\ turns off Windows' own clean-up, so "/" and ".." must be resolved before.
    _windows(monkeypatch)
    long_messy = "C:/Users/me/" + "/".join(["e" * 100] * 3) + "/./sub/../book.txt"
    assert extended_path(long_messy) == "\\\\?\\C:\\Users\\me\\" + "\\".join(["e" * 100] * 3) + "\\book.txt"


def test_extended_path_unc_and_already_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    _windows(monkeypatch)
    unc = "\\\\nas\\share\\" + "\\".join(["本棚" * 30] * 5) + "\\book.epub"
    assert extended_path(unc) == "\\\\?\\UNC\\nas\\share\\" + unc[len("\\\\nas\\share\\"):]
    done = "\\\\?\\C:\\" + "a" * 300
    assert extended_path(done) is done
    device = "\\\\.\\pipe\\" + "p" * 300
    assert extended_path(device) is device


# --------------------------------------------------------------------------------------
# Where the rules apply: voices


def _voice(name: str):
    from miodesk.tts.voices import VOICE_DIM, Voice

    return Voice(name=name, vector=np.linspace(-1, 1, VOICE_DIM, dtype=np.float32))


@pytest.mark.parametrize("name", ["COM\u00b9", "CONIN$", "aux .txt", "voice ", "voice.", "😀" * 33])
def test_voice_store_refuses_new_unportable_names(tmp_path: Path, name: str) -> None:
    from miodesk.tts.voices import VoiceStore

    store = VoiceStore(tmp_path / "voices")
    with pytest.raises(VoiceError, match="^Voice name "):
        store.save(_voice(name))
    assert not (tmp_path / "voices").exists() or list((tmp_path / "voices").iterdir()) == []


def test_case_only_rename_of_a_long_emoji_name(tmp_path: Path) -> None:
    from miodesk.tts.voices import VoiceStore

    store = VoiceStore(tmp_path)
    old = "A" + "😀" * 31  # 63 UTF-16 units
    store.save(_voice(old))
    assert store.rename(old, old.lower()).name == old.lower()
    assert store.names() == [old.lower()]


# --------------------------------------------------------------------------------------
# Where the rules apply: model imports


@pytest.fixture
def manager(tmp_path: Path):
    from miodesk.model_setup import ModelInstaller

    return ModelInstaller(tmp_path / "models")


@pytest.mark.parametrize(
    ("file_name", "installed_as"),
    [("CON.gguf", "CON_"), ("aux.gguf", "aux_"), ("my model .gguf", "my model"), ("a:b.gguf", "a_b")],
)
def test_model_import_maps_an_unportable_file_name(
    manager, tmp_path: Path, caplog: pytest.LogCaptureFixture, file_name: str, installed_as: str
) -> None:
    source = tmp_path / file_name
    source.write_bytes(GGUF_HEADER)
    with caplog.at_level(logging.WARNING, logger="miodesk.model_setup"):
        model = manager.import_path(source)
    assert model.name == installed_as
    assert model.folder == manager.root / installed_as and (model.folder / file_name).is_file()
    assert [m.name for m in manager.installed()] == [installed_as]
    warning = caplog.records[-1].getMessage()
    assert file_name in warning and f"installing it as {installed_as!r}" in warning and "--name" in warning


def test_model_import_keeps_a_portable_name_quietly(manager, tmp_path: Path, caplog) -> None:
    source = tmp_path / "ナレーター v2.gguf"
    source.write_bytes(GGUF_HEADER)
    with caplog.at_level(logging.WARNING):
        assert manager.import_path(source).name == "ナレーター v2"
    assert not caplog.records


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("CON", "reserved on Windows"), ("a:b", "cannot contain :"), (".staging", "cannot start with a dot"),
     ("x.", "cannot end with a dot"), ("manifest.json", "MioDesk's own files")],
)
def test_model_import_refuses_an_unportable_chosen_name(manager, tmp_path: Path, name: str, fragment: str) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(GGUF_HEADER)
    with pytest.raises(ModelError, match=fragment):
        manager.import_path(source, name=name)
    assert manager.installed() == []
    assert (manager.root / "manifest.json").exists() is False


def test_model_remove_never_leaves_the_models_folder(manager, tmp_path: Path) -> None:
    outside = manager.root.parent / "voices"
    outside.mkdir()
    (outside / "keep.json").write_text("{}", encoding="utf-8")
    for name in ("../../voices", "..", "../voices"):
        with pytest.raises(ModelError, match="is not installed"):
            manager.remove(name)
    assert (outside / "keep.json").is_file()


def test_a_manifest_cannot_point_outside_the_models_folder(manager, tmp_path: Path) -> None:
    import json

    outside = manager.root.parent / "voices"
    outside.mkdir()
    entry = {"name": "evil", "kind": "llm", "folder": "../voices", "files": []}
    (manager.root / "manifest.json").write_text(json.dumps({"version": 1, "models": [entry]}), encoding="utf-8")
    assert manager.installed() == []  # a damaged manifest: kept aside, treated as empty
    with pytest.raises(ModelError, match="is not installed"):
        manager.remove("evil")
    assert outside.is_dir()


def test_model_import_cli_says_what_name_it_used(run_cli, tmp_path: Path) -> None:
    source = tmp_path / "CON.gguf"
    source.write_bytes(GGUF_HEADER)
    result = run_cli("models", "import", source)
    assert result.returncode == 0, result.stderr
    assert "installed CON_ (llm" in result.stdout
    assert "reserved on Windows" in result.stderr and "installing it as 'CON_'" in result.stderr
    refused = run_cli("models", "import", source, "--name", "nul.txt")
    assert refused.returncode != 0
    assert "Model name 'nul.txt' is reserved on Windows" in refused.stderr


# --------------------------------------------------------------------------------------
# Long paths for real on this system: deeper than Windows' 260 characters


def _deep_folder(root: Path) -> Path:
    folder = root.joinpath(*["とても長いフォルダーの名前" * 3 + f"-{level}" for level in range(8)])
    folder.mkdir(parents=True)
    assert len(str(folder)) > 300
    return folder


def test_long_paths_open_and_write(run_cli, tmp_path: Path) -> None:
    from conftest import GOLDEN

    from miodesk.synthetic.gguf import write_test_gguf

    deep = _deep_folder(tmp_path)
    book = deep / "本.txt"
    book.write_text("吾輩は猫である。名前はまだ無い。\n", encoding="utf-8")
    shown = run_cli("text", book)
    assert shown.returncode == 0, shown.stderr
    assert "吾輩は猫である。" in shown.stdout

    model = deep / "MioTTS-test.gguf"
    write_test_gguf(model, "qwen3", eog_probability=0.05, seed=1)
    voice = deep / "jp_female.pt"
    voice.write_bytes((GOLDEN / "presets" / "jp_female.pt").read_bytes())
    out = deep / "出力.wav"
    spoken = run_cli("speak", "こんにちは。", "--voice", voice, "-o", out, "--model", model,
                     "--codec", GOLDEN / "codec" / "24k", "--seed", 3)
    assert spoken.returncode == 0, spoken.stderr
    assert out.stat().st_size > 44
    assert list(deep.glob(".*.tmp")) == []  # the atomic write cleaned up

    imported = run_cli("voices", "import", voice, "--name", "深い")
    assert imported.returncode == 0, imported.stderr
    exported = run_cli("voices", "export", "深い", "-o", deep / "深い.npy")
    assert exported.returncode == 0, exported.stderr
    assert (deep / "深い.npy").stat().st_size > 128 * 4
