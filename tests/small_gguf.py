"""A hand-made, structurally whole GGUF for tests that install files but never load them."""

from __future__ import annotations

import hashlib
import struct


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def small_gguf(data_bytes: int, alignment: int = 32) -> bytes:
    """GGUF v3 with one metadata string and one int8 tensor of `data_bytes` bytes (pseudo-random)."""
    metadata = _string("general.name") + struct.pack("<I", 8) + _string("test")
    if alignment != 32:
        metadata += _string("general.alignment") + struct.pack("<II", 4, alignment)
    tensor_info = _string("data") + struct.pack("<IQIQ", 1, data_bytes, 24, 0)  # 1 dimension, I8, offset 0
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2 if alignment != 32 else 1) + metadata + tensor_info
    header += bytes(-len(header) % alignment)
    data = (hashlib.sha256(b"small gguf").digest() * (data_bytes // 32 + 1))[:data_bytes]
    return header + data
