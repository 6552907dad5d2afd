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

The model is made once per model file (`derive`, in the background after a load with the full model,
or when a model is installed) and kept in `paths.llm_cache_dir()` under a name keyed by the source's
place, size and time. Anything wrong with it means loading the full model, never a failed load.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miodesk import paths
from miodesk.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the derived file's layout changes: older copies are then remade
N_AUDIO = 12_800
SUFFIX = ".audio-only.gguf"
_META = "miodesk.audio_only."
# Of the source's tokenizer only the kind is kept: its ids mean other tokens in the cut vocabulary (a
# BOS, EOT or padding id there would mark an audio token special), and its text tokenizer stays with
# the source, which MioLLM still loads (vocabulary only) to tokenize prompts.
_KEPT_TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre")
_CUT_TENSORS = ("token_embd.weight", "output.weight")
_STALE_TEMP_S = 3600

_deriving: set[Path] = set()  # sources with a background derivation under way in this process
_deriving_lock = threading.Lock()


def cached_path(source: Path) -> Path:
    """Where the audio-only model of `source` is kept (it may not exist yet)."""
    source = Path(source)
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{FORMAT}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return paths.llm_cache_dir() / f"{source.stem}.{digest}{SUFFIX}"


def _forget_older(kept: Path) -> None:
    """Remove audio-only models of the same file name made for another key (the file replaced or
    moved, an older layout), and temporary files of derivations that never finished."""
    stem = kept.name[: -len(SUFFIX)].rsplit(".", 1)[0]
    for older in kept.parent.glob(f"{glob.escape(stem)}.*{SUFFIX}"):
        if older != kept and older.name[: -len(SUFFIX)].rsplit(".", 1)[0] == stem:
            older.unlink(missing_ok=True)
    for stale in kept.parent.glob(f".{glob.escape(stem)}.*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > _STALE_TEMP_S:  # not another process's, still writing
                stale.unlink()
        except OSError:
            pass


def derive(source: Path, dest: Path, audio_ids: Sequence[int], end_ids: Sequence[int]) -> None:
    """Write the audio-only model of `source` to `dest` (atomically).

    audio_ids: the source ids of codes 0..12799, in code order; end_ids: the source ids of the
    end-of-generation tokens, in the order they take in the cut vocabulary.
    """
    import gguf

    if len(audio_ids) != N_AUDIO or not end_ids:
        raise ValueError("an audio-only model needs the 12,800 audio tokens and at least one end token")
    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    keep = np.asarray(list(audio_ids) + list(end_ids), dtype=np.int64)
    source_types = reader.fields["tokenizer.ggml.token_type"].contents()
    source_tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")

    with atomic_path(dest) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        for field in reader.fields.values():
            name = field.name
            if name.startswith("GGUF.") or name == "general.architecture" or name == f"{arch}.vocab_size":
                continue
            if name.startswith("tokenizer.") and name not in _KEPT_TOKENIZER_KEYS:
                continue
            kind = field.types[0]
            sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), kind, sub)
        writer.add_vocab_size(len(keep))
        writer.add_token_list([source_tokens[i] for i in keep])
        writer.add_token_types([int(source_types[i]) for i in keep])
        writer.add_token_merges(["< |"])  # a BPE vocabulary must have merges; this one is never used
        writer.add_bos_token_id(N_AUDIO)  # left unset, a BPE vocabulary defaults BOS and EOS to id 11
        writer.add_eos_token_id(N_AUDIO)
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        writer.add_uint32(_META + "format", FORMAT)
        writer.add_uint64(_META + "source_size", Path(source).stat().st_size)
        writer.add_uint64(_META + "text_embd_offset", int(embd.data_offset))
        writer.add_uint32(_META + "text_embd_type", int(embd.tensor_type))
        writer.add_uint64(_META + "text_embd_rows", int(embd.shape[-1]))
        writer.add_uint64(_META + "text_embd_row_bytes", int(embd.data.shape[-1] * embd.data.dtype.itemsize))
        writer.add_uint64(_META + "n_embd", int(embd.shape[0]))
        for tensor in reader.tensors:
            data = tensor.data
            if tensor.name in _CUT_TENSORS:
                data = np.ascontiguousarray(data[keep])
            writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    _forget_older(dest)


def derive_in_background(source: Path, audio_ids: Sequence[int], end_ids: Sequence[int]) -> threading.Thread | None:
    """Make the audio-only model of `source` on a thread of its own, for the next load (one at a time
    per source in this process). A failure (a full disk, a read-only cache) is logged: the full model
    keeps working. Returns the thread, or None when one is already under way."""
    source = Path(source).resolve()
    with _deriving_lock:
        if source in _deriving:
            return None
        _deriving.add(source)
    audio, ends = tuple(audio_ids), tuple(end_ids)

    def run() -> None:
        try:
            dest = cached_path(source)
            derive(source, dest, audio, ends)
            log.info("Made the audio-only speech model %s", dest.name)
        except Exception as error:
            log.warning("Could not make the audio-only model of %s: %s", source.name, error)
        finally:
            with _deriving_lock:
                _deriving.discard(source)

    thread = threading.Thread(target=run, name="audio-only-model", daemon=True)
    thread.start()
    return thread


def wait_for_background(timeout: float = 60.0) -> None:
    """Wait until this process's background derivations have ended (tests, the bench, model setup)."""
    for thread in [t for t in threading.enumerate() if t.name == "audio-only-model"]:
        thread.join(timeout)


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
