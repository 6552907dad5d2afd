"""The safetensors wrapper: what MioDesk adds to the `safetensors` package (float32, messages, writes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from miodesk.errors import ModelError
from miodesk.tts.safetensors_io import SafeTensorsFile, file_identity, read_safetensors, write_safetensors


def test_round_trip_of_views_and_metadata(tmp_path: Path) -> None:
    """Transposed and strided views are written as their values, not as their memory."""
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    tensors = {"t": base.T, "s": base[:, ::2], "i": np.arange(5, dtype=np.int32), "b": np.array([True, False])}
    write_safetensors(tmp_path / "m.safetensors", list(tensors.items()), metadata={"format": "pt"})
    with SafeTensorsFile(tmp_path / "m.safetensors") as st:
        assert st.metadata == {"format": "pt"}
        assert sorted(st.keys()) == sorted(tensors) and len(st) == 4 and "t" in st
        assert st.shape("t") == (6, 4) and st.dtype("i") == "I32"
        for name, expected in tensors.items():
            got = st.get(name)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
    # no temporary file is left beside the result
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_float64_becomes_float32_unless_asked(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "d.safetensors", {"d": np.linspace(0, 1, 7)})
    with SafeTensorsFile(tmp_path / "d.safetensors") as st:
        assert st.get("d").dtype == np.float32
        assert st.get("d", as_float32=False).dtype == np.float64
    assert read_safetensors(tmp_path / "d.safetensors")["d"].dtype == np.float32


@pytest.mark.parametrize("cut", ["data", "header", "length"])
def test_cut_files_say_truncated(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": np.ones((64, 64), np.float32)})
    data = path.read_bytes()
    path.write_bytes({"data": data[:-100], "header": data[:20], "length": data[:5]}[cut])
    with pytest.raises(ModelError) as info:
        SafeTensorsFile(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in ("w.safetensors", "truncated", "download it again"):
        assert needle in message.lower()


def test_trailing_bytes_are_damage(tmp_path: Path) -> None:
    """Bytes after the last tensor mean the file is not what its header says (the library refuses it)."""
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": np.ones(8, np.float32)})
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(ModelError, match="damaged"):
        SafeTensorsFile(path)


def test_missing_file_and_tensor(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        SafeTensorsFile(tmp_path / "none.safetensors")
    write_safetensors(tmp_path / "w.safetensors", {"w": np.ones(2, np.float32)})
    with SafeTensorsFile(tmp_path / "w.safetensors") as st, pytest.raises(ModelError, match="no tensor 'x'"):
        st.get("x")


def test_file_identity_follows_size_and_time(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert file_identity(path) == "3|1000000000"
    path.write_bytes(b"abcd")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert file_identity(path) == "4|1000000000"
