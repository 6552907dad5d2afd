"""Safetensors files through Hugging Face's `safetensors` package (its numpy API).

What MioDesk adds on top: floating-point tensors handed out as float32 (BF16 included), one-line
messages that name the file when it is missing, truncated or damaged, and atomic writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from miodesk.atomic import atomic_path
from miodesk.errors import ModelError

_FLOAT_CODES = {"F64", "F32", "F16", "BF16"}
# The library's errors that mean the file ends before its header says it should (or, for
# "incomplete", that its length disagrees with the header in either direction). Compared without
# spaces and case: older releases spell them "HeaderTooSmall", newer ones "header too small".
_TRUNCATION_SIGNS = ("headertoosmall", "invalidheaderlength", "incomplete")


def _damage_message(name: str, exc: SafetensorError) -> str:
    detail = str(exc).replace("\n", " ").strip().removeprefix("Error while deserializing header: ")
    squashed = detail.replace(" ", "").lower()
    if any(sign in squashed for sign in _TRUNCATION_SIGNS):
        return f"{name} is truncated or damaged ({detail}). Download it again."
    return f"{name} is not a safetensors file ({detail})."


class SafeTensorsFile:
    """A memory-mapped safetensors file. Use as a context manager or call `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        name = self.path.name
        if not self.path.is_file():
            raise ModelError(f"{name} not found at {self.path}.")
        try:
            # safe_open checks the header against the file size, so a cut-off download fails here.
            self._handle: safe_open | None = safe_open(self.path, framework="np")
        except SafetensorError as exc:
            raise ModelError(_damage_message(name, exc)) from None
        self.metadata: dict[str, str] = dict(self._handle.metadata() or {})
        self._dtypes: dict[str, str] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for key in self._handle.keys():
            tensor = self._handle.get_slice(key)
            self._dtypes[key] = str(tensor.get_dtype())
            self._shapes[key] = tuple(int(d) for d in tensor.get_shape())

    def __enter__(self) -> SafeTensorsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Arrays handed out are copies, so the map can go away safely; dropping the handle unmaps the
        # file, which Windows needs before the file can be replaced.
        self._handle = None

    def keys(self) -> list[str]:
        return list(self._dtypes)

    def __contains__(self, key: object) -> bool:
        return key in self._dtypes

    def __iter__(self) -> Iterator[str]:
        return iter(self._dtypes)

    def __len__(self) -> int:
        return len(self._dtypes)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def dtype(self, key: str) -> str:
        return self._dtypes[key]

    def get(self, key: str, *, as_float32: bool = True) -> np.ndarray:
        """A copy of one tensor; float types (F16/BF16/F64) become float32 unless `as_float32` is off.

        BF16 always becomes float32: numpy itself has no bfloat16 arithmetic.
        """
        if key not in self._dtypes:
            raise ModelError(f"{self.path.name} has no tensor {key!r}.")
        assert self._handle is not None, "read after close()"
        dtype = self._dtypes[key]
        if dtype == "BF16":
            # ml_dtypes (an onnx dependency) registers numpy's "bfloat16" type, which the library's numpy
            # API needs; imported here only, as it takes about half a second.
            import ml_dtypes  # noqa: F401
        try:
            arr: np.ndarray = self._handle.get_tensor(key)  # a copy, not a view of the map
        except (SafetensorError, TypeError):  # TypeError: a dtype numpy has no type for
            raise ModelError(f"{self.path.name}: tensor {key!r} has unsupported dtype {dtype}.") from None
        if dtype == "BF16" or (as_float32 and dtype in _FLOAT_CODES):
            return arr.astype(np.float32, copy=False)
        return arr


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a file, floats as float32."""
    with SafeTensorsFile(path) as st:
        return {key: st.get(key) for key in st.keys()}


def write_safetensors(
    path: Path,
    tensors: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write tensors atomically (the library orders them in the file by alignment, then name).

    The library writes straight into a temporary file beside `path`, which then replaces `path`:
    building the file in memory first (`safetensors.numpy.save`) would hold a second copy of every
    weight, about 1 GB more at the peak for a full-size codec.
    """
    items = dict(tensors.items()) if isinstance(tensors, Mapping) else dict(tensors)
    # The library reads each array's memory as it is, so hand it C-ordered ones.
    contiguous = {key: np.ascontiguousarray(arr) for key, arr in items.items()}
    meta = {str(k): str(v) for k, v in metadata.items()} if metadata else None
    with atomic_path(Path(path)) as tmp:
        save_file(contiguous, str(tmp), metadata=meta)


def file_identity(path: Path) -> str:
    """Size and modification time ("size|mtime_ns"): a cheap fingerprint of a weights file for cache keys."""
    st = os.stat(path)
    return f"{st.st_size}|{st.st_mtime_ns}"
