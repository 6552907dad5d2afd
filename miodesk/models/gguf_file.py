"""A GGUF file's structure, read without llama.cpp: header, metadata, tensor table, data size.

Used to refuse a file that cannot be a whole model before it is installed: a download cut short or
a copy made with `head -c` keeps a valid signature, so the header alone proves nothing. The tensor
table says where every tensor starts and how big it is, hence how long the file must be.

Layout (GGUF versions 2 and 3, little-endian): "GGUF", version u32, tensor count u64, metadata
count u64, the metadata (key string, value type u32, value), the tensor infos (name string,
dimension count u32, dimensions u64 each, ggml type u32, offset u64), then padding to the
alignment (metadata "general.alignment", default 32), then the tensor data at those offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from miodesk.errors import ModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Metadata value types: their byte size, or None for strings and arrays (variable length).
_VALUE_SIZES: dict[int, int | None] = {
    0: 1,  # uint8
    1: 1,  # int8
    2: 2,  # uint16
    3: 2,  # int16
    4: 4,  # uint32
    5: 4,  # int32
    6: 4,  # float32
    7: 1,  # bool
    8: None,  # string
    9: None,  # array
    10: 8,  # uint64
    11: 8,  # int64
    12: 8,  # float64
}
_STRING, _ARRAY, _UINT32 = 8, 9, 4

# ggml tensor types: (values per block, bytes per block). A test compares this with gguf-py's table.
# Q8_1 (9) is left out: ggml uses it only while computing, never in a file.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
}
# A real model has hundreds of tensors, a vocabulary of some 10^5 strings and up to 4 dimensions;
# larger counts mean a damaged file, not a model (and must not make us loop for hours).
_MAX_DIMENSIONS = 8
_MAX_NAME_BYTES = 1 << 16


@dataclass
class GGUFTensor:
    name: str
    dimensions: list[int]  # ggml order: the row length first
    ggml_type: int
    offset: int  # from `GGUFLayout.data_start`
    size: int  # bytes (0 for a type not in `GGML_BLOCKS`)


@dataclass
class GGUFMetadataEntry:
    key: str
    value_type: int
    start: int  # the whole entry (key, type, value) lies in the file at [start, end)
    end: int


@dataclass
class GGUFLayout:
    version: int
    tensor_count: int
    metadata_count: int
    alignment: int
    data_start: int
    required_size: int  # the smallest file that holds every tensor's data
    unknown_types: list[int]  # ggml types this table does not know (their sizes are not checked)
    metadata: list[GGUFMetadataEntry] = field(default_factory=list)
    tensors: list[GGUFTensor] = field(default_factory=list)


class _Truncated(Exception):
    """The file ended inside its header or tensor table."""


class _Reader:
    def __init__(self, handle: BinaryIO, file_size: int) -> None:
        self.handle = handle
        self.file_size = file_size

    def take(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise _Truncated
        return data

    def skip(self, n: int) -> None:
        target = self.handle.tell() + n
        if target > self.file_size:
            raise _Truncated
        self.handle.seek(target)

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self) -> bytes:
        length = self.u64()
        if length > self.file_size:
            raise _Truncated
        return self.take(length)


def _skip_value(reader: _Reader, value_type: int, depth: int = 0) -> None:
    size = _VALUE_SIZES.get(value_type, -1)
    if size == -1 or depth > 2:
        raise ValueError(f"metadata value of unknown type {value_type}")
    if size is not None:
        reader.skip(size)
    elif value_type == _STRING:
        reader.skip(reader.u64())
    else:
        item_type, count = reader.u32(), reader.u64()
        item_size = _VALUE_SIZES.get(item_type, -1)
        if item_size == -1:
            raise ValueError(f"metadata array of unknown type {item_type}")
        if item_size is not None:
            reader.skip(count * item_size)
            return
        if count > reader.file_size:  # every element takes at least one byte
            raise _Truncated
        for _ in range(count):
            _skip_value(reader, item_type, depth + 1)


def tensor_bytes(ggml_type: int, dimensions: list[int]) -> int | None:
    """Bytes of a tensor's data, or None for a ggml type not in `GGML_BLOCKS`."""
    block = GGML_BLOCKS.get(ggml_type)
    if block is None:
        return None
    values = 1
    for size in dimensions:
        values *= size
    per_block, block_bytes = block
    return -(-values // per_block) * block_bytes


def read_layout(path: Path) -> GGUFLayout:
    """The structure of the GGUF at `path`; ModelError when it is not one, or not a whole one."""
    try:
        with path.open("rb") as handle:
            return _read_layout(handle, path.stat().st_size, path.name)
    except OSError as error:
        raise ModelError(f"Cannot read speech model {path}: {error.strerror or error}") from None


def check_signature(head: bytes, label: str) -> int:
    """The GGUF version in the first 8 bytes of a file; ModelError when they are not a GGUF's."""
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise ModelError(f"{label} is not a GGUF model file (no GGUF signature at the start)")
    version = int.from_bytes(head[4:8], "little")
    if version not in SUPPORTED_VERSIONS:
        raise ModelError(f"{label} is a GGUF file of unsupported version {version}")
    return version


def _read_layout(handle: BinaryIO, file_size: int, label: str) -> GGUFLayout:
    reader = _Reader(handle, file_size)
    version = check_signature(handle.read(8), label)
    incomplete = ModelError(
        f"{label} is incomplete: the file ends inside its header or tensor table ({file_size} bytes). "
        "Copy or download it again."
    )
    try:
        tensor_count, metadata_count = reader.u64(), reader.u64()
        alignment = DEFAULT_ALIGNMENT
        entries: list[GGUFMetadataEntry] = []
        for _ in range(metadata_count):
            start = handle.tell()
            key = reader.string()
            value_type = reader.u32()
            if key == b"general.alignment" and value_type == _UINT32:
                alignment = reader.u32()
            else:
                _skip_value(reader, value_type)
            entries.append(GGUFMetadataEntry(key.decode("utf-8", "replace"), value_type, start, handle.tell()))
        if alignment <= 0:
            raise ValueError(f"alignment {alignment}")
        data_end = 0
        unknown: list[int] = []
        tensors: list[GGUFTensor] = []
        for _ in range(tensor_count):
            name = reader.string()
            if len(name) > _MAX_NAME_BYTES:
                raise ValueError("a tensor name longer than 64 KiB")
            dimension_count = reader.u32()
            if dimension_count > _MAX_DIMENSIONS:
                raise ValueError(f"a tensor with {dimension_count} dimensions")
            dimensions = [reader.u64() for _ in range(dimension_count)]
            ggml_type, offset = reader.u32(), reader.u64()
            size = tensor_bytes(ggml_type, dimensions)
            if size is None:
                unknown.append(ggml_type)
                size = 0
            data_end = max(data_end, offset + size)
            tensors.append(GGUFTensor(name.decode("utf-8", "replace"), dimensions, ggml_type, offset, size))
        table_end = handle.tell()
    except _Truncated:
        raise incomplete from None
    except (ValueError, OverflowError, MemoryError) as error:
        raise ModelError(f"{label} is not a valid GGUF model file ({error}).") from None
    data_start = -(-table_end // alignment) * alignment
    return GGUFLayout(
        version=version,
        tensor_count=tensor_count,
        metadata_count=metadata_count,
        alignment=alignment,
        data_start=data_start,
        required_size=data_start + data_end,
        unknown_types=sorted(set(unknown)),
        metadata=entries,
        tensors=tensors,
    )


def check_gguf_file(path: Path) -> GGUFLayout:
    """Refuse a file that is not a whole GGUF: no signature, a cut header, or data shorter than its tensors."""
    if not path.is_file():
        raise ModelError(f"Speech model not found: {path}" if not path.exists() else f"{path} is not a file.")
    layout = read_layout(path)
    if layout.tensor_count == 0:
        raise ModelError(f"{path.name} holds no tensors: it is not a speech model.")
    size = path.stat().st_size
    if size < layout.required_size:
        raise ModelError(
            f"{path.name} is incomplete: its tensors need {layout.required_size} bytes, the file has {size}. "
            "Copy or download it again."
        )
    return layout
