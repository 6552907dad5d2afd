"""A minimal safetensors reader and writer (no torch, no `safetensors` package).

File layout: 8-byte little-endian header length N, N bytes of JSON header
(`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from miodesk.atomic import atomic_write
from miodesk.errors import ModelError

# Header sizes above this are not plausible for a model file and guard against garbage.
_MAX_HEADER_BYTES = 100 * 1024 * 1024

_DTYPES: dict[str, tuple[np.dtype, int]] = {
    "F64": (np.dtype("<f8"), 8),
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),  # widened to float32 by hand, numpy has no bfloat16
    "I64": (np.dtype("<i8"), 8),
    "I32": (np.dtype("<i4"), 4),
    "I16": (np.dtype("<i2"), 2),
    "I8": (np.dtype("i1"), 1),
    "U8": (np.dtype("u1"), 1),
    "BOOL": (np.dtype("?"), 1),
}
_FLOAT_KINDS = {"F64", "F32", "F16", "BF16"}


class SafeTensorsFile:
    """A memory-mapped safetensors file. Use as a context manager or call `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        name = self.path.name
        if not self.path.is_file():
            raise ModelError(f"{name} not found at {self.path}.")
        size = self.path.stat().st_size
        if size < 8:
            raise ModelError(f"{name} is truncated: the file has only {size} bytes. Download it again.")
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            (header_len,) = struct.unpack("<Q", self._file.read(8))
            if header_len == 0 or header_len > _MAX_HEADER_BYTES:
                raise ModelError(f"{name} is not a safetensors file (header length {header_len}).")
            if 8 + header_len > size:
                raise ModelError(
                    f"{name} is truncated: the header needs {header_len} bytes but the file has "
                    f"{size - 8}. Download it again."
                )
            try:
                header = json.loads(self._file.read(header_len).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelError(f"{name} is not a safetensors file (bad JSON header: {exc}).") from None
            if not isinstance(header, dict):
                raise ModelError(f"{name} is not a safetensors file (header is not a JSON object).")
            self.metadata: dict[str, str] = dict(header.pop("__metadata__", None) or {})
            self._entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
            data_end = 0
            for key, info in header.items():
                try:
                    dtype = str(info["dtype"])
                    shape = tuple(int(d) for d in info["shape"])
                    begin, end = (int(o) for o in info["data_offsets"])
                except (KeyError, TypeError, ValueError):
                    raise ModelError(f"{name} has a malformed header entry for tensor {key!r}.") from None
                if dtype not in _DTYPES:
                    raise ModelError(f"{name}: tensor {key!r} has unsupported dtype {dtype}.")
                nbytes = int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype][1]
                if begin < 0 or end - begin != nbytes or any(d < 0 for d in shape):
                    raise ModelError(f"{name} has inconsistent offsets for tensor {key!r}.")
                self._entries[key] = (dtype, shape, begin, end)
                data_end = max(data_end, end)
            self._data_start = 8 + header_len
            available = size - self._data_start
            if data_end > available:
                raise ModelError(
                    f"{name} is truncated: expected {data_end} bytes of tensor data, found {available}. "
                    "Download it again."
                )
            self._mmap = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> SafeTensorsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Arrays handed out are copies, so the map can go away safely.
        mapped = getattr(self, "_mmap", None)
        if mapped is not None:
            mapped.close()
            self._mmap = None
        self._file.close()

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._entries[key][1]

    def dtype(self, key: str) -> str:
        return self._entries[key][0]

    def get(self, key: str, *, as_float32: bool = True) -> np.ndarray:
        """A copy of one tensor; float types (F16/BF16/F64) become float32 unless `as_float32` is off."""
        if key not in self._entries:
            raise ModelError(f"{self.path.name} has no tensor {key!r}.")
        dtype, shape, begin, end = self._entries[key]
        np_dtype, _ = _DTYPES[dtype]
        start = self._data_start + begin
        if end > begin:
            assert self._mmap is not None, "read after close()"  # the file has at least 8 bytes, so it is mapped
            raw = np.frombuffer(self._mmap, dtype=np_dtype, count=(end - begin) // np_dtype.itemsize, offset=start)
        else:
            raw = np.zeros(0, np_dtype)
        if dtype == "BF16":
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        elif as_float32 and dtype in _FLOAT_KINDS:
            arr = raw.astype(np.float32)  # always a copy
        else:
            arr = raw.copy()
        return arr.reshape(shape)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a file, floats as float32."""
    with SafeTensorsFile(path) as st:
        return {key: st.get(key) for key in st.keys()}


def _dtype_code(arr: np.ndarray) -> str:
    codes = {"<f4": "F32", "<f2": "F16", "<f8": "F64", "<i8": "I64", "<i4": "I32",
             "<i2": "I16", "|i1": "I8", "|u1": "U8", "|b1": "BOOL"}
    code = codes.get(arr.dtype.newbyteorder("<").str if arr.dtype.byteorder == ">" else arr.dtype.str)
    if code is None:
        raise ValueError(f"unsupported dtype {arr.dtype} for safetensors")
    return code


def write_safetensors(
    path: Path,
    tensors: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write tensors (in the given order) atomically. Arrays are stored little-endian, C order."""
    items = list(tensors.items()) if isinstance(tensors, Mapping) else list(tensors)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for key, arr in items:
        nbytes = int(arr.size) * arr.dtype.itemsize
        header[key] = {"dtype": _dtype_code(arr), "shape": list(arr.shape),
                       "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # keep tensor data 8-byte aligned, as the reference writer does
    with atomic_write(Path(path)) as handle:
        handle.write(struct.pack("<Q", len(blob)))
        handle.write(blob)
        for _, arr in items:
            data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            handle.write(data.reshape(-1).view(np.uint8).data)


def file_identity(path: Path) -> str:
    """Size and modification time: a cheap fingerprint for cache keys."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"
