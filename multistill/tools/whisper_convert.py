"""CTranslate2 Whisper -> transformers: the ``model.bin`` reader, the weight mapping and the folder converter.

:func:`read_ct2_model` parses a CTranslate2 ``model.bin``, :func:`ct2_whisper_state_dict` maps a ``WhisperSpec``
onto transformers' ``WhisperForConditionalGeneration`` and :func:`convert_ct2_whisper` writes a complete
transformers folder (weights, config, guarded generation config, ``WhisperProcessor``, :data:`STAMP_FILE`).
The registry packages and the cached folders are in :mod:`multistill.tools.whisper_base`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Written last into every converted folder: what was converted, by which converter version.
STAMP_FILE = "multistill_conversion.json"
#: Bumped whenever the converter's output changes, so that cached folders are rebuilt.
CONVERTER_VERSION = 2  # 2: generation config with the decoding guards


# --- CTranslate2 model.bin ------------------------------------------------------------------------------

#: The binary layout read here (CTranslate2 >= 3 writes version 6, see ctranslate2/specs/model_spec.py).
CT2_BINARY_VERSION = 6
#: CTranslate2's DataType enum (include/ctranslate2/types.h), by type id.
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
#: Scalar settings a Whisper decoder must have for the transformers architecture to be exact.
_DECODER_FLAGS = {"pre_norm": 1, "scale_embeddings": 0, "alibi": 0, "start_from_zero_embedding": 0}
_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU


class CT2FormatError(ValueError):
    """A CTranslate2 ``model.bin`` that cannot be read, or that is not a Whisper model this converter maps."""


@dataclass(frozen=True)
class CT2Model:
    """The content of a CTranslate2 ``model.bin``: spec name and revision, variables (as tensors), aliases."""

    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str]


def read_ct2_model(path: str | os.PathLike) -> CT2Model:
    """Parse a CTranslate2 ``model.bin`` (the inverse of ``ModelSpec._serialize``).

    Layout (little endian): uint32 binary version, string spec name, uint32 revision, uint32 variable count,
    then per variable: string name, uint8 rank, rank x uint32 shape, uint8 type id, uint32 byte count, bytes;
    then uint32 alias count and (alias, target) string pairs. A string is a uint16 length (with the
    terminating NUL), the UTF-8 bytes and the NUL.
    """
    import torch

    path = Path(path)
    data = path.read_bytes()
    offset = 0

    def fail(why: str) -> CT2FormatError:
        return CT2FormatError(f"Cannot read the CTranslate2 model {path}: {why} (at byte {offset}).")

    def take(count: int) -> bytes:
        nonlocal offset
        if offset + count > len(data):
            raise fail(f"the file ends early ({len(data)} bytes, needed {offset + count})")
        chunk = data[offset: offset + count]
        offset += count
        return chunk

    def uint(fmt: str) -> int:
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    def string() -> str:
        size = uint("<H")
        raw = take(size)
        if size == 0 or raw[-1] != 0:
            raise fail("a string is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise fail("a string is not UTF-8") from err

    version = uint("<I")
    if version != CT2_BINARY_VERSION:
        raise CT2FormatError(
            f"Cannot read the CTranslate2 model {path}: binary format version {version}, this converter reads "
            f"version {CT2_BINARY_VERSION} (written by CTranslate2 3.x and 4.x). Re-convert the model with a "
            "current ct2-transformers-converter, or check that the file is a CTranslate2 model.bin."
        )
    spec = string()
    revision = uint("<I")
    variables: dict[str, torch.Tensor] = {}
    for _ in range(uint("<I")):
        name = string()
        shape = [uint("<I") for _ in range(uint("<B"))]
        type_id = uint("<B")
        if type_id >= len(CT2_DTYPES):
            raise fail(f"variable {name!r} has the unknown type id {type_id}")
        dtype = getattr(torch, CT2_DTYPES[type_id])
        raw = take(uint("<I"))
        count = 1
        for dim in shape:
            count *= dim
        if count * dtype.itemsize != len(raw):
            raise fail(f"variable {name!r} of shape {shape} ({CT2_DTYPES[type_id]}) holds {len(raw)} bytes")
        variables[name] = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    aliases = {}
    for _ in range(uint("<I")):
        alias = string()
        aliases[alias] = string()
    if offset != len(data):
        raise fail(f"{len(data) - offset} unexpected bytes after the aliases")
    for alias, target in aliases.items():
        if target not in variables:
            raise fail(f"alias {alias!r} points to the missing variable {target!r}")
    return CT2Model(path, version, spec, revision, variables, aliases)


class _Variables:
    """Name lookup in a :class:`CT2Model` that resolves aliases, dequantizes and records what was used."""

    def __init__(self, model: CT2Model):
        self.model = model
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.model.variables or name in self.model.aliases

    def raw(self, name: str) -> torch.Tensor:
        if not self.has(name):
            raise CT2FormatError(f"{self.model.path} has no variable {name!r}: not a Whisper model this converter maps.")
        self.used.add(name)
        return self.model.variables[self.model.aliases.get(name, name)]

    def optional_scalar(self, name: str) -> None:
        """Mark a setting that newer CTranslate2 versions write and that does not matter here as used."""
        if self.has(name):
            self.scalar(name)

    def scalar(self, name: str) -> int:
        value = self.raw(name)
        if value.numel() != 1:
            raise CT2FormatError(f"{self.model.path}: {name!r} should be a scalar, has shape {list(value.shape)}.")
        return int(value.item())

    def tensor(self, name: str) -> torch.Tensor:
        """A float32 weight; int8/int16 weights are dequantized with their ``<name>_scale``."""
        import torch

        value = self.raw(name)
        if value.dtype in (torch.int8, torch.int16):  # the scale belongs to the variable an alias points to
            scale = self.raw(f"{self.model.aliases.get(name, name)}_scale").float()
            if scale.numel() > 1:  # int8: one scale per output row (channel)
                scale = scale.reshape(-1, *([1] * (value.dim() - 1)))
            value = value.float() / scale
        elif not value.is_floating_point():
            raise CT2FormatError(f"{self.model.path}: weight {name!r} has the non-float type {value.dtype}.")
        return value.float()

    def unused(self) -> list[str]:
        return sorted((set(self.model.variables) | set(self.model.aliases)) - self.used)


def _count_layers(names: set[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)/")
    indices = {int(m.group(1)) for m in map(pattern.match, names) if m}
    if not indices or indices != set(range(len(indices))):
        raise CT2FormatError(f"Layers {prefix}N are missing or not numbered 0..N-1: {sorted(indices)}.")
    return len(indices)


def _split_rows(weight: torch.Tensor, parts: int, name: str) -> list[torch.Tensor]:
    if weight.shape[0] % parts:
        raise CT2FormatError(f"The fused projection {name!r} of shape {list(weight.shape)} does not split in {parts}.")
    return list(weight.chunk(parts, dim=0))


def _attention(v: _Variables, src: str, dst: str, state: dict[str, torch.Tensor], cross: bool) -> None:
    """One attention block. Self attention: ``linear_0`` = fused q,k,v, ``linear_1`` = output. Cross
    attention: ``linear_0`` = q, ``linear_1`` = fused k,v, ``linear_2`` = output. The k bias (zero in
    Whisper, and softmax-invariant anyway) is dropped: transformers' ``k_proj`` has none."""
    if cross:
        q_w, q_b = v.tensor(f"{src}/linear_0/weight"), v.tensor(f"{src}/linear_0/bias")
        k_w, v_w = _split_rows(v.tensor(f"{src}/linear_1/weight"), 2, f"{src}/linear_1")
        k_b, v_b = _split_rows(v.tensor(f"{src}/linear_1/bias"), 2, f"{src}/linear_1")
        out = f"{src}/linear_2"
    else:
        q_w, k_w, v_w = _split_rows(v.tensor(f"{src}/linear_0/weight"), 3, f"{src}/linear_0")
        q_b, k_b, v_b = _split_rows(v.tensor(f"{src}/linear_0/bias"), 3, f"{src}/linear_0")
        out = f"{src}/linear_1"
    if k_b.abs().max() > 0:
        logger.info("%s: non-zero key bias dropped (it does not change the attention weights)", src)
    state.update({
        f"{dst}.q_proj.weight": q_w, f"{dst}.q_proj.bias": q_b, f"{dst}.k_proj.weight": k_w,
        f"{dst}.v_proj.weight": v_w, f"{dst}.v_proj.bias": v_b,
        f"{dst}.out_proj.weight": v.tensor(f"{out}/weight"), f"{dst}.out_proj.bias": v.tensor(f"{out}/bias"),
    })


def _layer_norm(v: _Variables, src: str, dst: str, state: dict[str, torch.Tensor]) -> None:
    state[f"{dst}.weight"] = v.tensor(f"{src}/gamma")
    state[f"{dst}.bias"] = v.tensor(f"{src}/beta")


def _linear(v: _Variables, src: str, dst: str, state: dict[str, torch.Tensor]) -> None:
    state[f"{dst}.weight"] = v.tensor(f"{src}/weight")
    state[f"{dst}.bias"] = v.tensor(f"{src}/bias")


def _check_whisper_decoder(model: CT2Model, v: _Variables) -> None:
    """The decoder settings that make transformers' Whisper exact (GELU, pre-norm, no ALiBi...)."""
    if v.scalar("decoder/activation") != _GELU:
        raise CT2FormatError(f"{model.path}: the decoder activation is not GELU; not a Whisper model.")
    for flag, expected in _DECODER_FLAGS.items():
        if v.scalar(f"decoder/{flag}") != expected:
            raise CT2FormatError(f"{model.path}: decoder/{flag} is not {expected}; not a Whisper model.")
    # Word-alignment settings of CTranslate2's generic decoder (Whisper's alignment heads are in config.json),
    # and ALiBi variants that newer CTranslate2 versions write (meaningless without ALiBi, checked above).
    v.scalar("decoder/alignment_heads")
    v.scalar("decoder/alignment_layer")
    v.optional_scalar("decoder/alibi_use_positive_positions")
    v.optional_scalar("decoder/scale_alibi")


def _whisper_sizes(model: CT2Model, v: _Variables) -> dict[str, int]:
    """``WhisperConfig`` sizes read off the tensors and the stored head counts."""
    names = set(model.variables) | set(model.aliases)
    conv1 = v.tensor("encoder/conv1/weight")
    d_model, num_mel_bins = int(conv1.shape[0]), int(conv1.shape[1])
    sizes = {
        "d_model": d_model,
        "num_mel_bins": num_mel_bins,
        "encoder_layers": _count_layers(names, "encoder/layer_"),
        "decoder_layers": _count_layers(names, "decoder/layer_"),
        "encoder_attention_heads": v.scalar("encoder/num_heads"),
        "decoder_attention_heads": v.scalar("decoder/num_heads"),
        "encoder_ffn_dim": int(v.raw("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        "decoder_ffn_dim": int(v.raw("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        "vocab_size": int(v.raw("decoder/embeddings/weight").shape[0]),
        "max_source_positions": int(v.raw("encoder/position_encodings/encodings").shape[0]),
        "max_target_positions": int(v.raw("decoder/position_encodings/encodings").shape[0]),
    }
    for side in ("encoder", "decoder"):
        heads = sizes[f"{side}_attention_heads"]
        if heads <= 0 or d_model % heads:
            raise CT2FormatError(f"{model.path}: {side} has {heads} heads, which do not divide d_model={d_model}.")
    return sizes


def _map_layers(v: _Variables, side: str, layers: int, state: dict[str, torch.Tensor]) -> None:
    """The encoder's or decoder's layers and final layer norm (the decoder's with cross attention)."""
    for i in range(layers):
        src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
        _attention(v, f"{src}/self_attention", f"{dst}.self_attn", state, cross=False)
        _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", state)
        if side == "decoder":
            _attention(v, f"{src}/attention", f"{dst}.encoder_attn", state, cross=True)
            _layer_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", state)
        _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", state)
        _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", state)
        _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", state)
    _layer_norm(v, f"{side}/layer_norm", f"model.{side}.layer_norm", state)


def ct2_whisper_state_dict(model: CT2Model) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """Map a CTranslate2 ``WhisperSpec`` onto transformers' Whisper: (config sizes, float32 state dict).

    Sizes come from the tensors (``d_model``, layers, FFN widths, vocabulary, mel bins, positions) and the
    stored head counts. Every variable of ``model.bin`` must be used, else :class:`CT2FormatError`.
    """
    if model.spec != "WhisperSpec":
        raise CT2FormatError(f"{model.path} holds a {model.spec!r} model, not a Whisper model (WhisperSpec).")
    v = _Variables(model)
    _check_whisper_decoder(model, v)
    sizes = _whisper_sizes(model, v)

    state: dict[str, torch.Tensor] = {}
    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        _linear(v, f"encoder/{conv}", f"{enc}.{conv}", state)
    state[f"{enc}.embed_positions.weight"] = v.tensor("encoder/position_encodings/encodings")
    _map_layers(v, "encoder", sizes["encoder_layers"], state)
    state[f"{dec}.embed_tokens.weight"] = v.tensor("decoder/embeddings/weight")
    state[f"{dec}.embed_positions.weight"] = v.tensor("decoder/position_encodings/encodings")
    _map_layers(v, "decoder", sizes["decoder_layers"], state)

    # Whisper ties the output projection to the token embeddings; CTranslate2 stores it as an alias.
    projection = v.tensor("decoder/projection/weight")
    if not torch_equal(projection, state[f"{dec}.embed_tokens.weight"]):
        raise CT2FormatError(f"{model.path}: the output projection is not tied to the token embeddings.")
    if v.has("decoder/projection/bias"):
        if v.tensor("decoder/projection/bias").abs().max() > 0:
            raise CT2FormatError(f"{model.path}: the output projection has a bias; Whisper's has none.")
    state["proj_out.weight"] = state[f"{dec}.embed_tokens.weight"]

    unused = v.unused()
    if unused:
        raise CT2FormatError(f"{model.path}: variables not mapped onto transformers' Whisper: {', '.join(unused)}.")
    return sizes, state


def torch_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and values."""
    return a.shape == b.shape and bool((a == b).all())


# --- Tokenizer, processor and generation config ------------------------------------------------------------

#: Special tokens of Whisper's tokenizer that are not languages (as CTranslate2's converter lists them).
_NON_LANGUAGE_TOKENS = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                        "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CT2FormatError(f"Cannot read {path}: {err}") from err


def _timestamp_tokens(src_dir: Path, first_id: int, vocab_size: int) -> list[str]:
    """Tokens ``first_id..vocab_size-1``: Whisper's timestamps ``<|0.00|>``, ``<|0.02|>``... (as CTranslate2's
    converter writes them), checked against the folder's ``vocabulary.txt``/``vocabulary.json`` if present."""
    tokens = ["<|%.2f|>" % (i * 0.02) for i in range(vocab_size - first_id)]
    if (src_dir / "vocabulary.txt").exists():
        vocabulary = (src_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        vocabulary = vocabulary[:-1] if vocabulary and vocabulary[-1] == "" else vocabulary
    elif (src_dir / "vocabulary.json").exists():
        vocabulary = _read_json(src_dir / "vocabulary.json")
    else:
        return tokens
    if len(vocabulary) != vocab_size or vocabulary[first_id:] != tokens:
        raise CT2FormatError(
            f"The vocabulary of {src_dir} ({len(vocabulary)} tokens) does not match the model ({vocab_size}) and "
            f"tokenizer.json ({first_id} tokens followed by timestamp tokens)."
        )
    return tokens


def build_whisper_processor(src_dir: str | os.PathLike, vocab_size: int, num_mel_bins: int) -> Any:
    """``WhisperProcessor``: a ``WhisperFeatureExtractor`` and the folder's ``tokenizer.json`` as
    ``WhisperTokenizerFast``, with the special tokens declared (so ``all_special_ids`` ends at
    ``<|notimestamps|>``, as timestamp decoding assumes) and the timestamp tokens added up to ``vocab_size``."""
    from transformers import AddedToken, WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    src_dir = Path(src_dir)
    added = _read_json(src_dir / "tokenizer.json").get("added_tokens", [])
    specials = sorted((t for t in added if t.get("special")), key=lambda t: t["id"])
    if not specials or "<|endoftext|>" not in {t["content"] for t in specials}:
        raise CT2FormatError(f"{src_dir / 'tokenizer.json'} has no Whisper special tokens (<|endoftext|>...).")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy2(src_dir / "tokenizer.json", Path(tmp) / "tokenizer.json")
        tokenizer = WhisperTokenizerFast.from_pretrained(
            tmp, extra_special_tokens=[t["content"] for t in specials], pad_token="<|endoftext|>",
            model_max_length=1024,
        )
    first_id = len(tokenizer)
    if first_id > vocab_size:
        raise CT2FormatError(f"{src_dir / 'tokenizer.json'} has {first_id} tokens, the model only {vocab_size}.")
    timestamps = _timestamp_tokens(src_dir, first_id, vocab_size)
    tokenizer.add_tokens([AddedToken(t, lstrip=False, rstrip=False, normalized=False, special=False) for t in timestamps])
    if len(tokenizer) != vocab_size:
        raise CT2FormatError(f"The tokenizer of {src_dir} has {len(tokenizer)} tokens, the model {vocab_size}.")
    feature_extractor = WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=16000, hop_length=160,
                                                chunk_length=30, n_fft=400, padding_value=0.0)
    return WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


def _token_id(tokenizer: Any, token: str, where: Path) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or tokenizer.convert_ids_to_tokens(token_id) != token:
        raise CT2FormatError(f"{where / 'tokenizer.json'} lacks the Whisper token {token}.")
    return int(token_id)


#: Loop guards of every converted folder's ``generation_config.json``, for users of the plain transformers
#: ``pipeline("automatic-speech-recognition")`` / ``generate()`` (issue 22.8: 2 of 12 KEMDy19 utterances came
#: back as 887 and 444 characters of one repeated syllable). transformers takes the temperature fallback's list
#: only from the call, so a folder alone cannot turn on the fallback of :mod:`multistill.asr`; instead
#: ``no_repeat_ngram_size`` forbids any token 12-gram twice (a loop ends after 12 + its period tokens; none of
#: the 1,323 KEMDy19/20 dev-set transcripts repeats a 10-gram), and ``compression_ratio_threshold`` is Whisper's
#: loop detector for calls that pass ``temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)``. The length cap
#: ``max_new_tokens`` is :func:`decoding_length_cap`. No ``logprob_threshold`` (our recognizer has none: it would
#: re-decode most Korean utterances of a small model), hence no ``no_speech_threshold`` (transformers needs both).
DECODING_GUARDS: dict[str, Any] = {"no_repeat_ngram_size": 12, "compression_ratio_threshold": 2.4}


def decoding_length_cap(max_target_positions: int) -> int:
    """``max_new_tokens`` of a converted folder: about openai-whisper's ``sample_len`` (half the decoder's context:
    220 of 448), leaving room for the 223 previous-text tokens and 5 start tokens transformers may prepend. KEMDy
    speech reaches 6.6 tokens a second (198 in a 30 s window); a loop stops here instead of at 448."""
    return max_target_positions // 2 - 4


def whisper_generation_settings(ct2_config: dict[str, Any], tokenizer: Any, decoder_layers: int,
                                decoder_heads: int, max_length: int, where: Path) -> dict[str, Any]:
    """Token ids and decoding rules of ``GenerationConfig`` from CTranslate2's ``config.json`` and the tokenizer.

    ``suppress_ids`` / ``suppress_ids_begin`` / ``alignment_heads`` / ``lang_ids`` become ``suppress_tokens``,
    ``begin_suppress_tokens``, ``alignment_heads`` and ``lang_to_id``; missing ``lang_ids`` are the tokenizer's
    language tokens and missing ``alignment_heads`` every head of the last half of the decoder (both as
    CTranslate2's converter decides). The loop guards are :data:`DECODING_GUARDS` and a length cap
    (:func:`decoding_length_cap` of ``max_length``, the decoder's context).
    """
    for key in ("suppress_ids", "suppress_ids_begin"):
        if key not in ct2_config:
            raise CT2FormatError(f"{where / 'config.json'} lacks {key!r}: not a CTranslate2 Whisper config.")
    eot = _token_id(tokenizer, "<|endoftext|>", where)
    lang_ids = ct2_config.get("lang_ids")
    if lang_ids is None:
        lang_ids = [tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens
                    if t not in _NON_LANGUAGE_TOKENS]
    alignment_heads = ct2_config.get("alignment_heads") or [
        [layer, head] for layer in range(decoder_layers // 2, decoder_layers) for head in range(decoder_heads)]
    return {
        "decoder_start_token_id": _token_id(tokenizer, "<|startoftranscript|>", where),
        "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
        "max_new_tokens": decoding_length_cap(max_length),
        "suppress_tokens": [int(i) for i in ct2_config["suppress_ids"]],
        "begin_suppress_tokens": [int(i) for i in ct2_config["suppress_ids_begin"]],
        "alignment_heads": [[int(layer), int(head)] for layer, head in alignment_heads],
        "is_multilingual": len(lang_ids) > 1,
        "lang_to_id": {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in lang_ids},
        "task_to_id": {task: _token_id(tokenizer, f"<|{task}|>", where) for task in ("transcribe", "translate")},
        "no_timestamps_token_id": _token_id(tokenizer, "<|notimestamps|>", where),
        "prev_sot_token_id": _token_id(tokenizer, "<|startofprev|>", where),
        "max_initial_timestamp_index": 50,  # 1 s, Whisper's and faster-whisper's max_initial_timestamp
        "return_timestamps": False,
        **DECODING_GUARDS,
    }


# --- Conversion ---------------------------------------------------------------------------------------------

def replaces_source(out_dir: str | os.PathLike, source: str | os.PathLike) -> bool:
    """Whether writing a converted folder to ``out_dir`` (replaced as a whole with ``overwrite``) would delete the
    ``source``: ``out_dir`` is the source or holds it."""
    out, src = Path(out_dir).expanduser().resolve(), Path(source).expanduser().resolve()
    return out == src or out in src.parents


def _check_out_dir(out_dir: Path, src_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder that is or holds the source (:func:`replaces_source`), a file, or a non-empty
    folder without ``overwrite``."""
    if replaces_source(out_dir, src_dir):
        raise ValueError(f"The output folder {out_dir} is or holds the source {src_dir}; replacing it would delete "
                         "the source. Choose another one.")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"The output path {out_dir} exists and is not a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"The output folder {out_dir} is not empty; pass overwrite=True (--overwrite) to replace it.")


def _apply_umask(folder: Path) -> None:
    """Give a folder made by ``tempfile`` (mode 0700) and its files the permissions of a normal ``mkdir``/``open``."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def convert_ct2_whisper(src_dir: str | os.PathLike, out_dir: str | os.PathLike, dtype: str = "float32",
                        overwrite: bool = False) -> Path:
    """Convert a CTranslate2 Whisper folder into a transformers ``WhisperForConditionalGeneration`` folder.

    ``src_dir`` holds ``model.bin`` (``WhisperSpec``), ``config.json`` and ``tokenizer.json`` (as written by
    ``ct2-transformers-converter`` / faster-whisper's models). ``out_dir`` receives ``model.safetensors``
    (``dtype`` float32 or float16), ``config.json``, ``generation_config.json`` (so that
    ``model.generate(input_features, language="ko", task="transcribe")`` works), the ``WhisperProcessor``
    files and :data:`STAMP_FILE`. The folder is written next to ``out_dir`` and renamed into place, so it is
    either complete or absent. Returns ``out_dir``.
    """
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}.")
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"The CTranslate2 Whisper folder {src_dir} does not exist.")
    missing = [name for name in ("model.bin", "config.json", "tokenizer.json") if not (src_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{src_dir} is not a CTranslate2 Whisper folder: it lacks {', '.join(missing)}.")
    _check_out_dir(out_dir, src_dir, overwrite)
    ct2_config = _read_json(src_dir / "config.json")
    if not isinstance(ct2_config, dict):
        raise CT2FormatError(f"{src_dir / 'config.json'} is not a JSON object.")

    logger.info("Reading %s", src_dir / "model.bin")
    ct2 = read_ct2_model(src_dir / "model.bin")
    sizes, state = ct2_whisper_state_dict(ct2)
    processor = build_whisper_processor(src_dir, sizes["vocab_size"], sizes["num_mel_bins"])
    generation = whisper_generation_settings(ct2_config, processor.tokenizer, sizes["decoder_layers"],
                                             sizes["decoder_attention_heads"], sizes["max_target_positions"], src_dir)
    config = WhisperConfig(
        **sizes, activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        decoder_start_token_id=generation["decoder_start_token_id"], pad_token_id=generation["pad_token_id"],
        bos_token_id=generation["bos_token_id"], eos_token_id=generation["eos_token_id"],
        suppress_tokens=generation["suppress_tokens"], begin_suppress_tokens=generation["begin_suppress_tokens"],
        architectures=["WhisperForConditionalGeneration"], dtype=dtype,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = set(model.state_dict())
    if set(state) != expected:
        raise CT2FormatError(f"{ct2.path}: mapped weights differ from transformers' Whisper: missing "
                             f"{sorted(expected - set(state))}, unexpected {sorted(set(state) - expected)}.")
    target_dtype = getattr(torch, dtype)
    # A copy per weight: CTranslate2 aliases equal variables and the fused projections are split into views.
    model.load_state_dict({k: t.to(target_dtype, copy=True) for k, t in state.items()}, strict=True, assign=True)
    model.tie_weights()
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise RuntimeError("The output projection is not tied to the token embeddings after loading.")
    model.generation_config = GenerationConfig(**generation)
    model.eval()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        stamp = {"converter_version": CONVERTER_VERSION, "source": str(src_dir.resolve()),
                 "source_model_bin_bytes": (src_dir / "model.bin").stat().st_size,
                 "source_model_bin_sha256": file_sha256(src_dir / "model.bin"), "spec": ct2.spec,
                 "spec_revision": ct2.revision, "dtype": dtype, "variables": len(ct2.variables),
                 "aliases": len(ct2.aliases)}
        (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        _apply_umask(tmp)
        if out_dir.exists():
            _check_out_dir(out_dir, src_dir, overwrite)
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Wrote %s (%d variables mapped, %s)", out_dir, len(ct2.variables) + len(ct2.aliases), dtype)
    return out_dir


def read_stamp(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The conversion stamp of a converted folder, or ``None`` if it has none (incomplete or not converted here)."""
    path = Path(folder) / STAMP_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def file_sha256(path: Path, also: Any = None) -> str:
    """SHA-256 hex of ``path`` (``also``: another hash object fed the same bytes)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            digest.update(block)
            if also is not None:
                also.update(block)
    return digest.hexdigest()


__all__ = [
    "CONVERTER_VERSION",
    "CT2FormatError",
    "CT2Model",
    "DECODING_GUARDS",
    "STAMP_FILE",
    "build_whisper_processor",
    "convert_ct2_whisper",
    "ct2_whisper_state_dict",
    "decoding_length_cap",
    "file_sha256",
    "read_ct2_model",
    "read_stamp",
    "replaces_source",
    "whisper_generation_settings",
]
