"""A MioTTS GGUF cut down to the tokens MioDesk can sample: the 12,800 audio tokens and the end tokens.

llama.cpp computes every row of the output layer for every generated token, though MioDesk bans all
but the audio and end-of-generation tokens before sampling. In the 0.1B layout the output layer
(78,336 × 512) is about a third of the weights read per token, in the 0.6B layout (164,480 × 1024) a
quarter. The audio-only model is the same GGUF with a vocabulary of the 12,800 audio tokens followed
by the end tokens, and `token_embd` (and `output`, where the model has its own) cut to those rows;
every other tensor is copied byte for byte. In it, code c is id c and end token i is id 12,800 + i.

The prompt's text tokens are not in that vocabulary: `TextEmbeddings` reads their rows from the source
file's `token_embd` and dequantises them as llama.cpp's get_rows does, and the prompt goes to llama.cpp
as embeddings. The logits of the kept rows are then bit-identical to the full model's, and so are the
sampled codes (the tests compare them, same seed, on generated models of each architecture).

The model is made at the first load of a model file (about as long as copying the file; the load
after that reads no more than before) and kept in `paths.llm_cache_dir()` under a name keyed by the
source's place, size and time. Anything wrong with it means loading the full model, never a failed load.
"""

from __future__ import annotations

import glob
import logging
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miodesk import paths
from miodesk.atomic import atomic_path
from miodesk.models.gguf_file import GGUFTensor, read_layout

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the derived file's layout changes: older copies are then remade
N_AUDIO = 12_800
_META = "miodesk.audio_only."
# None of the source's tokenizer entries is kept: its ids mean other tokens in the cut vocabulary (a BOS,
# EOT or padding id there would mark an audio token special), and its text tokenizer stays with the
# source, which MioLLM still loads (vocabulary only) to tokenize prompts. The cut vocabulary is a plain
# BPE one whatever the source's kind (a SentencePiece one would need byte tokens it does not have).
_CUT_TENSORS = ("token_embd.weight", "output.weight")
_STALE_TEMP_S = 3600

# GGUF metadata value types, and llama.cpp's token types.
_UINT32, _INT32, _BOOL, _STRING, _ARRAY, _UINT64 = 4, 5, 7, 8, 9, 10
_CONTROL, _USER_DEFINED = 3, 4


def cached_path(source: Path) -> Path:
    """Where the audio-only model of `source` is kept (it may not exist yet)."""
    source = Path(source)
    return paths.llm_cache_dir() / f"{source.stem}.{paths.source_key(source, str(FORMAT))}{paths.AUDIO_ONLY_SUFFIX}"


def _forget_older(kept: Path, source: Path) -> None:
    """Remove audio-only models of the same file name made for another key (the file replaced or
    moved, an older layout), and temporary files of derivations that never finished."""
    for older in paths.audio_only_copies(source):
        if older != kept:
            older.unlink(missing_ok=True)
    for stale in kept.parent.glob(f".{glob.escape(Path(source).stem)}.*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > _STALE_TEMP_S:  # not another process's, still writing
                stale.unlink()
        except OSError:
            pass


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _entry(key: str, value_type: int, value: bytes) -> bytes:
    return _string(key) + struct.pack("<I", value_type) + value


def _array(item_type: int, items: list[bytes]) -> bytes:
    return struct.pack("<IQ", item_type, len(items)) + b"".join(items)


def _new_metadata(source: Path, vocab_key: str | None, token_texts: list[str], token_types: list[int],
                  embd: GGUFTensor, data_start: int) -> list[bytes]:
    """The entries the audio-only model has instead of the source's vocabulary."""
    u32, u64 = (lambda v: struct.pack("<I", v)), (lambda v: struct.pack("<Q", v))
    vocab_size = [_entry(vocab_key, _UINT32, u32(len(token_texts)))] if vocab_key else []
    return vocab_size + [
        _entry("tokenizer.ggml.model", _STRING, _string("gpt2")),
        _entry("tokenizer.ggml.pre", _STRING, _string("default")),
        _entry("tokenizer.ggml.tokens", _ARRAY, _array(_STRING, [_string(t) for t in token_texts])),
        _entry("tokenizer.ggml.token_type", _ARRAY, _array(_INT32, [struct.pack("<i", t) for t in token_types])),
        # A BPE vocabulary must have merges; this one is never used (MioDesk tokenizes with the source).
        _entry("tokenizer.ggml.merges", _ARRAY, _array(_STRING, [_string("< |")])),
        # Left unset, a BPE vocabulary's BOS and EOS default to id 11, an audio token here.
        _entry("tokenizer.ggml.bos_token_id", _UINT32, u32(N_AUDIO)),
        _entry("tokenizer.ggml.eos_token_id", _UINT32, u32(N_AUDIO)),
        _entry("tokenizer.ggml.add_bos_token", _BOOL, b"\0"),
        _entry("tokenizer.ggml.add_eos_token", _BOOL, b"\0"),
        _entry(_META + "format", _UINT32, u32(FORMAT)),
        _entry(_META + "source_size", _UINT64, u64(Path(source).stat().st_size)),
        _entry(_META + "text_embd_offset", _UINT64, u64(data_start + embd.offset)),
        _entry(_META + "text_embd_type", _UINT32, u32(embd.ggml_type)),
        _entry(_META + "text_embd_rows", _UINT64, u64(embd.dimensions[1])),
        _entry(_META + "text_embd_row_bytes", _UINT64, u64(embd.size // embd.dimensions[1])),
        _entry(_META + "n_embd", _UINT64, u64(embd.dimensions[0])),
    ]


def _aligned(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def derive(source: Path, dest: Path, audio_ids: Sequence[int], end_ids: Sequence[int],
           end_texts: Sequence[str]) -> None:
    """Write the audio-only model of `source` to `dest` (atomically).

    audio_ids: the source ids of codes 0..12799, in code order; end_ids: the source ids of the
    end-of-generation tokens, in the order they take in the cut vocabulary, and their texts.
    """
    if len(audio_ids) != N_AUDIO or not end_ids or len(end_ids) != len(end_texts):
        raise ValueError("an audio-only model needs the 12,800 audio tokens and at least one end token")
    source = Path(source)
    layout = read_layout(source)
    tensors = {t.name: t for t in layout.tensors}
    embd = tensors.get("token_embd.weight")
    if embd is None or len(embd.dimensions) != 2 or not embd.size:
        raise ValueError("the model has no token embedding table of a known type")
    keep = np.asarray(list(audio_ids) + list(end_ids), dtype=np.int64)
    vocab_keys = [e.key for e in layout.metadata if e.key.endswith(".vocab_size") and e.key.count(".") == 1]
    vocab_key = vocab_keys[0] if vocab_keys else None  # without one, llama.cpp counts the tokens
    texts = [f"<|s_{code}|>" for code in range(N_AUDIO)] + list(end_texts)
    types = [_USER_DEFINED] * N_AUDIO + [_CONTROL] * len(end_ids)

    # The new tensor table: the cut tensors shrink to the kept rows, every offset realigned.
    sizes: dict[str, int] = {}
    for tensor in layout.tensors:
        cut = tensor.name in _CUT_TENSORS and tensor.dimensions[-1] == embd.dimensions[1]
        sizes[tensor.name] = tensor.size // tensor.dimensions[-1] * len(keep) if cut else tensor.size
    table, offset = bytearray(), 0
    offsets: dict[str, int] = {}
    for tensor in layout.tensors:
        dims = list(tensor.dimensions)
        if sizes[tensor.name] != tensor.size:
            dims[-1] = len(keep)
        offsets[tensor.name] = offset
        table += _string(tensor.name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        table += struct.pack("<IQ", tensor.ggml_type, offset)
        offset = _aligned(offset + sizes[tensor.name], layout.alignment)

    with open(source, "rb") as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
        kept = []
        for entry in layout.metadata:
            if entry.key == vocab_key or entry.key.startswith("tokenizer."):
                continue
            src.seek(entry.start)
            kept.append(src.read(entry.end - entry.start))
        metadata = kept + _new_metadata(source, vocab_key, texts, types, embd, layout.data_start)
        header = b"GGUF" + struct.pack("<IQQ", 3, len(layout.tensors), len(metadata))
        head = header + b"".join(metadata) + bytes(table)
        out.write(head + bytes(_aligned(len(head), layout.alignment) - len(head)))
        data_start = out.tell()
        for tensor in layout.tensors:
            out.write(bytes(data_start + offsets[tensor.name] - out.tell()))  # alignment padding
            start = layout.data_start + tensor.offset
            if sizes[tensor.name] != tensor.size:
                rows = np.memmap(source, dtype=np.uint8, mode="r", offset=start,
                                 shape=(tensor.dimensions[-1], tensor.size // tensor.dimensions[-1]))
                out.write(rows[keep].tobytes())
                del rows
            else:
                src.seek(start)
                left = tensor.size
                while left:
                    chunk = src.read(min(left, 16 << 20))
                    if not chunk:
                        raise ValueError(f"{source.name} ends inside tensor {tensor.name}")
                    out.write(chunk)
                    left -= len(chunk)
    _forget_older(dest, source)


class TextEmbeddings:
    """The source's `token_embd` rows of the prompt's tokens, as the float32 llama.cpp would compute.

    `metadata`: the audio-only model's metadata (llama-cpp-python's string dict), which says where the
    table lies in the source file and how it is stored.
    """

    def __init__(self, source: Path, metadata: dict[str, str]) -> None:
        import gguf.quants  # ~40 ms with numpy loaded; only the audio-only path needs it

        self._dequantize = gguf.quants.dequantize
        if int(metadata.get(_META + "format", "0")) != FORMAT:
            raise ValueError("the audio-only model was made by another version of MioDesk")
        if int(metadata[_META + "source_size"]) != Path(source).stat().st_size:
            raise ValueError("the audio-only model was made from another file")
        self.qtype = gguf.GGMLQuantizationType(int(metadata[_META + "text_embd_type"]))
        self.n_embd = int(metadata[_META + "n_embd"])
        rows, row_bytes = int(metadata[_META + "text_embd_rows"]), int(metadata[_META + "text_embd_row_bytes"])
        offset = int(metadata[_META + "text_embd_offset"])
        self._table: np.ndarray = np.memmap(source, dtype=np.uint8, mode="r", offset=offset, shape=(rows, row_bytes))

    def rows(self, token_ids: Sequence[int]) -> np.ndarray:
        """A C-contiguous float32 array [len(token_ids), n_embd]."""
        raw = np.asarray(self._table[np.asarray(token_ids, dtype=np.int64)])
        rows = self._dequantize(raw, self.qtype).astype(np.float32, copy=False)
        return np.ascontiguousarray(rows.reshape(len(token_ids), self.n_embd))

    def close(self) -> None:
        """Let go of the source file (Windows keeps a mapped file from being replaced or removed)."""
        mapping = getattr(self._table, "_mmap", None)
        self._table = np.empty((0, 0), dtype=np.uint8)
        if mapping is not None:
            mapping.close()
