"""Small random-weight MioTTS-like GGUF models for tests and benchmarks.

`write_test_gguf` writes a GGUF of a real llama.cpp architecture (``qwen3``, ``falcon-h1`` or
``lfm2``) that llama.cpp loads and runs like a MioTTS model: it has a real byte-level BPE tokenizer
(``gpt2`` model, 256 byte tokens, merges, some whole-word text tokens), the ChatML control tokens
``<|im_start|>``/``<|im_end|>``/``<|endoftext|>``, the 12,800 audio tokens ``<|s_0|>``..``<|s_12799|>``
placed after the text vocabulary at a configurable offset, and a ChatML ``tokenizer.chat_template``.

How the weights are rigged (random weights alone almost never emit end-of-generation):

* Every token embedding holds the same large value ``C`` in hidden dimension 0; the other dimensions
  are small random noise.
* Every layer's output projection (attention ``wo``, ``ffn_down``, Mamba2 ``ssm_out``, LFM2
  ``shortconv.out_proj``) has row 0 set to zero and is otherwise tiny, so the residual stream keeps
  ``x[0] == C`` exactly and the rest stays small, whatever the input tokens and positions.
* The final RMS norm weight is ``1/sqrt(n_embd)`` in dimension 0 and 0 elsewhere, so the normed hidden
  state is (almost exactly) the unit vector ``e0`` at every step.
* Column 0 of the output matrix (lm_head) is therefore the logit vector itself: a fixed profile.
  Audio tokens get uniform logits in [0, 1] (many distinct codes are drawn), a few ordinary text
  tokens (`GeneratedModel.hot_text_ids`) get *higher* logits (an unrestricted sampler draws them, which
  proves that audio-only restriction works), ``<|im_end|>`` gets the logit that gives
  ``eog_probability`` per step under the official sampling chain (top_k 40, top_p 1, min_p 0.05,
  temperature 0.8, computed over the audio + EOG candidates), and every other token a low logit.

The next-token distribution is thus (nearly) independent of prompt and position, and generations
stop after about ``1/eog_probability`` tokens. ``eog_probability=None`` (or 0) gives ``<|im_end|>`` a
low logit so generation runs to the cap. The layers still do their full amount of work, so timings
reflect the shapes. Tied embeddings can only be written unrigged (the trick needs a separate lm_head).

Real vocabulary layouts for the size measurements: `REAL_LAYOUTS`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Arch = Literal["qwen3", "falcon-h1", "lfm2"]
ARCHES: tuple[str, ...] = ("qwen3", "falcon-h1", "lfm2")

N_AUDIO = 12_800

#: (audio offset, total vocabulary size) of the released MioTTS models of each architecture.
REAL_LAYOUTS: dict[str, tuple[int, int]] = {
    "qwen3": (151_669, 164_480),
    "falcon-h1": (65_536, 78_336),
}

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
# LFM2's stock template starts with the BOS text.
LFM2_TEMPLATE = "{{- bos_token -}}" + CHATML_TEMPLATE

# Words that get whole-word BPE tokens ("Ġ" is the byte-level form of a leading space).
_WORDS = (
    "user", "assistant", "im", "Hello", "ĠHello", "Ġworld", "Ġthe", "Ġand", "Ġis", "Ġa", "Ġof",
    "Ġto", "Ġin", "Ġtest", "Ġspeech", "Ġread", "Ġtext", "Ġvoice", "ĠThis", "This", "The",
)
_HOT_WORDS = ("ĠHello", "Ġworld", "Ġthe", "Ġand", "Ġspeech", "Ġread", "Ġtext", "Ġvoice")

_LOW_LOGIT = -8.0
_EMBD_C = 4.0  # the constant in hidden dimension 0


class _TokenType:  # gguf.TokenType values, kept here so the vocabulary builder has no gguf import
    NORMAL = 1
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5


@dataclass(frozen=True)
class GeneratedModel:
    """What a test needs to know about a generated model."""

    path: Path
    arch: str
    n_vocab: int
    audio_offset: int  # id of <|s_0|>
    im_start_id: int
    im_end_id: int
    endoftext_id: int
    bos_id: int
    add_bos: bool
    chat_template: str | None
    hot_text_ids: tuple[int, ...]
    eog_logit: float
    logits: np.ndarray = field(repr=False)  # the rigged next-token logit profile


def bytes_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: printable bytes map to themselves, the rest to code points >= 256."""
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    table: dict[int, str] = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@dataclass
class _Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    ids: dict[str, int]


def _build_vocab(
    arch: str,
    vocab_extra: int,
    audio_offset: int | None,
    n_vocab: int | None,
    audio_token_type: int,
    n_audio: int = N_AUDIO,
) -> tuple[_Vocab, int]:
    tokens: list[str] = []
    types: list[int] = []

    def add(text: str, ttype: int) -> None:
        tokens.append(text)
        types.append(ttype)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if arch == "lfm2":
        specials.insert(0, "<|startoftext|>")

    # falcon-h1 keeps its chat specials at low ids (<|im_end|> = 229 in MioTTS-0.1B); qwen3 and lfm2
    # put them after the text vocabulary.
    if arch == "falcon-h1":
        for s in specials:
            add(s, _TokenType.CONTROL)

    for ch in bytes_to_unicode().values():
        add(ch, _TokenType.NORMAL)

    merges: list[str] = []
    known = set(tokens)
    for word in _WORDS:
        prefix = word[0]
        for ch in word[1:]:
            merged = prefix + ch
            if merged not in known:
                merges.append(f"{prefix} {ch}")
                add(merged, _TokenType.NORMAL)
                known.add(merged)
            prefix = merged

    for i in range(vocab_extra):  # unreachable filler text tokens (real models have ~65k-150k text tokens)
        add(f"filler{i}", _TokenType.NORMAL)

    if arch != "falcon-h1":
        for s in specials:
            add(s, _TokenType.CONTROL)

    if audio_offset is not None:
        if audio_offset < len(tokens):
            raise ValueError(f"audio_offset {audio_offset} overlaps the {len(tokens)} text/special tokens")
        while len(tokens) < audio_offset:
            add(f"<|reserved_{len(tokens)}|>", _TokenType.CONTROL)
    offset = len(tokens)
    for code in range(n_audio):
        add(f"<|s_{code}|>", audio_token_type)

    if n_vocab is not None:
        if n_vocab < len(tokens):
            raise ValueError(f"n_vocab {n_vocab} is smaller than the {len(tokens)} tokens needed")
        while len(tokens) < n_vocab:
            add(f"[PAD{len(tokens)}]", _TokenType.UNUSED)

    return _Vocab(tokens, types, merges, {t: i for i, t in enumerate(tokens)}), offset


def _final_probs(logits: np.ndarray, temperature: float, top_k: int, min_p: float) -> np.ndarray:
    """Probabilities after llama.cpp's top_k -> min_p (on raw logits) -> temperature -> softmax."""
    order = np.argsort(-logits, kind="stable")
    keep = order[:top_k] if top_k > 0 else order
    kept = logits[keep]
    kept_mask = kept >= kept.max() + math.log(min_p) if min_p > 0 else np.ones_like(kept, bool)
    scaled = kept[kept_mask] / temperature
    p = np.exp(scaled - scaled.max())
    p /= p.sum()
    out = np.zeros_like(logits, dtype=np.float64)
    out[keep[kept_mask]] = p
    return out


def _eog_logit_for(
    audio_logits: np.ndarray, target: float, temperature: float = 0.8, top_k: int = 40, min_p: float = 0.05
) -> float:
    """The EOG logit that gives probability `target` per step among audio + EOG candidates."""
    cand = np.concatenate([audio_logits, [0.0]])

    def prob(x: float) -> float:
        cand[-1] = x
        return float(_final_probs(cand, temperature, top_k, min_p)[-1])

    lo, hi = float(audio_logits.max()) - 3.0, float(audio_logits.max()) + 10.0
    if prob(lo) > target:
        raise ValueError(f"eog_probability {target} is too low for the sampler chain (min_p cuts it)")
    for _ in range(60):
        mid = (lo + hi) / 2
        if prob(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


_ARCH_DEFAULTS: dict[str, dict[str, int]] = {
    # tiny shapes: a few MB, fast to load and run
    "qwen3": dict(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
    "falcon-h1": dict(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
    "lfm2": dict(n_embd=64, n_layer=4, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
}
_DEFAULT_AUDIO_OFFSETS = {"qwen3": 1000, "falcon-h1": 640, "lfm2": 800}
_PRE_TOKENIZER = {"qwen3": "qwen2", "falcon-h1": "falcon-h1", "lfm2": "lfm2"}


def write_test_gguf(
    path: Path,
    arch: Arch = "qwen3",
    *,
    n_embd: int | None = None,
    n_layer: int | None = None,
    n_head: int | None = None,
    n_head_kv: int | None = None,
    head_dim: int | None = None,
    n_ff: int | None = None,
    vocab_extra: int = 0,
    audio_offset: int | None = -1,
    n_vocab: int | None = None,
    eog_probability: float | None = 0.05,
    hot_text_margin: float = 1.5,
    seed: int = 0,
    chat_template: str | bool = True,
    add_bos: bool | None = None,
    audio_token_type: Literal["user_defined", "control"] = "user_defined",
    weight_dtype: Literal["f16", "f32"] = "f16",
    n_audio: int = N_AUDIO,
    rigged: bool = True,
    tied: bool = False,
    n_ctx_train: int = 4096,
    ssm_d_state: int = 16,
    ssm_n_heads: int | None = None,
    ssm_n_group: int = 1,
    ssm_d_conv: int = 4,
    ssm_d_inner: int | None = None,
    lfm2_l_cache: int = 3,
    lfm2_attn_layers: Sequence[int] | None = None,
) -> GeneratedModel:
    """Write a rigged random-weight MioTTS-like GGUF to `path` (see the module docstring).

    audio_offset: id of ``<|s_0|>``; -1 picks a per-architecture default so ids differ between
    architectures, None puts the block right after the text and special tokens; the gap is filled
    with ``<|reserved_N|>`` control tokens. n_vocab: total size, padded after the audio block with
    UNUSED ``[PADn]`` tokens (the real qwen3 model pads its lm_head like this). vocab_extra: filler text
    tokens before the specials. chat_template: True for the architecture's default ChatML template,
    False for none, or a template string. add_bos: written as ``tokenizer.ggml.add_bos_token``
    (default: True for lfm2 only). n_audio: how many audio tokens to include (fewer than 12,800
    makes a model that MioDesk must reject). rigged=False writes plain random weights instead, whose
    output depends on the whole context (to test that state is cleared between generations); such a
    model practically never stops by itself. tied=True omits ``output.weight`` (llama.cpp then reuses
    the token embeddings, like the real 0.6B model); it needs rigged=False.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHES}")
    if tied and rigged:
        raise ValueError("tied embeddings cannot be rigged (the trick needs a separate lm_head)")
    import gguf  # only needed when writing; gguf-py is a test/benchmark dependency

    rng = np.random.default_rng(seed)
    d = dict(_ARCH_DEFAULTS[arch])
    for key, value in dict(
        n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim, n_ff=n_ff
    ).items():
        if value is not None:
            d[key] = value
    E, L, H, HKV, HD, FF = (d[k] for k in ("n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff"))

    if audio_offset == -1:
        audio_offset = _DEFAULT_AUDIO_OFFSETS[arch] if vocab_extra == 0 else None
    ttype = _TokenType.USER_DEFINED if audio_token_type == "user_defined" else _TokenType.CONTROL
    vocab, offset = _build_vocab(arch, vocab_extra, audio_offset, n_vocab, ttype, n_audio)
    V = len(vocab.tokens)
    ids = vocab.ids
    bos_text = "<|startoftext|>" if arch == "lfm2" else "<|endoftext|>"
    if add_bos is None:
        add_bos = arch == "lfm2"
    if chat_template is True:
        template: str | None = LFM2_TEMPLATE if arch == "lfm2" else CHATML_TEMPLATE
    elif chat_template is False:
        template = None
    else:
        template = chat_template

    # --- the rigged logit profile -------------------------------------------------------------
    logits = np.full(V, _LOW_LOGIT, dtype=np.float64)
    audio_logits = rng.uniform(0.0, 1.0, max(n_audio, 1))
    logits[offset : offset + n_audio] = audio_logits[:n_audio]
    hot = tuple(ids[w] for w in _HOT_WORDS)
    logits[list(hot)] = float(audio_logits.max()) + hot_text_margin
    if eog_probability:
        eog_logit = _eog_logit_for(audio_logits, float(eog_probability))
    else:
        eog_logit = _LOW_LOGIT
    logits[ids["<|im_end|>"]] = eog_logit

    # --- tensors ---------------------------------------------------------------------------------
    wdt = np.float16 if weight_dtype == "f16" else np.float32
    in_std, out_std = 0.02, 0.002

    def mat(rows: int, cols: int, std: float = in_std) -> np.ndarray:
        # numpy shape (rows, cols) == ggml ne {cols, rows}
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(wdt)

    def out_proj(rows: int, cols: int) -> np.ndarray:
        if not rigged:
            return mat(rows, cols, 0.5)  # large enough that context visibly changes the logits
        w = mat(rows, cols, out_std)
        w[0, :] = 0  # never touch hidden dimension 0 (see the module docstring)
        return w

    def small_f32(rows: int, cols: int) -> np.ndarray:  # conv kernels: ggml's ssm_conv wants f32
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.1).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    tensors: list[tuple[str, np.ndarray]] = []
    embd = mat(V, E, in_std if rigged else 1.0)
    out = mat(V, E, in_std if rigged else 0.5) if not tied else embd
    final_norm = np.zeros(E, dtype=np.float32)
    if rigged:
        embd[:, 0] = _EMBD_C
        out[:, 0] = logits.astype(np.float32)
        final_norm[0] = 1.0 / math.sqrt(E)
    else:
        final_norm[:] = 1.0
        logits[:] = np.nan  # unknown: depends on the context
    tensors.append(("token_embd.weight", embd))
    if not tied:
        tensors.append(("output.weight", out))
    tensors.append(("token_embd_norm.weight" if arch == "lfm2" else "output_norm.weight", final_norm))

    def attn(i: int, qk_norm: bool) -> None:
        p = f"blk.{i}"
        tensors.extend([
            (f"{p}.attn_q.weight", mat(H * HD, E)),
            (f"{p}.attn_k.weight", mat(HKV * HD, E)),
            (f"{p}.attn_v.weight", mat(HKV * HD, E)),
            (f"{p}.attn_output.weight", out_proj(E, H * HD)),
        ])
        if qk_norm:
            tensors.extend([(f"{p}.attn_q_norm.weight", ones(HD)), (f"{p}.attn_k_norm.weight", ones(HD))])

    def ffn(i: int, norm_name: str) -> None:
        p = f"blk.{i}"
        tensors.extend([
            (norm_name, ones(E)),
            (f"{p}.ffn_gate.weight", mat(FF, E)),
            (f"{p}.ffn_up.weight", mat(FF, E)),
            (f"{p}.ffn_down.weight", out_proj(E, FF)),
        ])

    ssm_heads = ssm_n_heads or max(1, E // 16)
    d_inner = ssm_d_inner or E
    attn_layers: set[int] = set()
    if arch == "lfm2":
        attn_layers = set(lfm2_attn_layers) if lfm2_attn_layers is not None else set(range(1, L, 2))

    for i in range(L):
        p = f"blk.{i}"
        tensors.append((f"{p}.attn_norm.weight", ones(E)))
        if arch == "qwen3":
            attn(i, qk_norm=True)
            ffn(i, f"{p}.ffn_norm.weight")
        elif arch == "falcon-h1":
            attn(i, qk_norm=False)
            conv_dim = d_inner + 2 * ssm_n_group * ssm_d_state
            proj = d_inner + conv_dim + ssm_heads
            tensors.extend([
                (f"{p}.ssm_in.weight", mat(proj, E)),
                (f"{p}.ssm_conv1d.weight", small_f32(conv_dim, ssm_d_conv)),
                (f"{p}.ssm_conv1d.bias", np.zeros(conv_dim, dtype=np.float32)),
                (f"{p}.ssm_dt.bias", np.zeros(ssm_heads, dtype=np.float32)),
                (f"{p}.ssm_a", -np.ones((ssm_heads, 1), dtype=np.float32)),
                (f"{p}.ssm_d", np.ones((ssm_heads, 1), dtype=np.float32)),
                (f"{p}.ssm_norm.weight", np.ones((ssm_n_group, d_inner // ssm_n_group), dtype=np.float32)),
                (f"{p}.ssm_out.weight", out_proj(E, d_inner)),
            ])
            # llama.cpp's falcon-h1 loader names this norm without a ".weight" suffix
            ffn(i, f"{p}.ffn_norm")
        else:  # lfm2
            if i in attn_layers:
                attn(i, qk_norm=True)
            else:
                tensors.extend([
                    (f"{p}.shortconv.conv.weight", small_f32(E, lfm2_l_cache)),
                    (f"{p}.shortconv.in_proj.weight", mat(3 * E, E)),
                    (f"{p}.shortconv.out_proj.weight", out_proj(E, E)),
                ])
            ffn(i, f"{p}.ffn_norm.weight")

    # --- metadata --------------------------------------------------------------------------------
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"MioDesk test {arch}")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if weight_dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(V)
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(FF)
    w.add_head_count(H)
    if arch == "lfm2":
        w.add_head_count_kv([HKV if i in attn_layers else 0 for i in range(L)])
        w.add_shortconv_l_cache(lfm2_l_cache)
    else:
        w.add_head_count_kv(HKV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_rope_dimension_count(HD)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    if arch == "falcon-h1":
        w.add_ssm_conv_kernel(ssm_d_conv)
        w.add_ssm_inner_size(d_inner)
        w.add_ssm_state_size(ssm_d_state)
        w.add_ssm_time_step_rank(ssm_heads)
        w.add_ssm_group_count(ssm_n_group)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_PRE_TOKENIZER[arch])
    w.add_token_list(vocab.tokens)
    w.add_token_types(vocab.types)
    w.add_token_merges(vocab.merges)
    w.add_bos_token_id(ids[bos_text])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(False)
    if template is not None:
        w.add_chat_template(template)

    for name, arr in tensors:
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    log.debug("wrote %s (%s, vocab %d, audio at %d)", path, arch, V, offset)

    return GeneratedModel(
        path=path,
        arch=arch,
        n_vocab=V,
        audio_offset=offset,
        im_start_id=ids["<|im_start|>"],
        im_end_id=ids["<|im_end|>"],
        endoftext_id=ids["<|endoftext|>"],
        bos_id=ids[bos_text],
        add_bos=add_bos,
        chat_template=template,
        hot_text_ids=hot,
        eog_logit=eog_logit,
        logits=logits,
    )
