"""Pretrained text models from GGUF files (llama.cpp's format; the registry ships Gemma 3 270M as one) as text
encoders.

transformers reads a GGUF (``from_pretrained(folder, gguf_file=name)``) by de-quantising every weight to fp32,
which takes minutes and cannot be saved back as GGUF. :func:`convert_gguf_text_encoder` (``multistill
convert-gguf``) does it once and writes a plain transformers folder (the base model, ``AutoModel``, without its
language-model head, and its tokenizer) that ``train.py --text_encoder FOLDER`` and every other part of the project
load like any encoder folder, as the converted Whisper base is. :func:`gguf_text_error` says why a file is no such
model, reading only the file's header, so that a bad file fails before anything is loaded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import mmap
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

from .whisper_base import default_cache_dir
from .whisper_convert import STAMP_FILE, _apply_umask, _check_out_dir, file_sha256, read_stamp

logger = logging.getLogger(__name__)

GGUF_SUFFIX = ".gguf"
GGUF_MAGIC = b"GGUF"
#: Bumped whenever the converter's output changes, so that cached folders are rebuilt.
CONVERTER_VERSION = 1
#: Byte sizes of GGUF's scalar value types (GGUFValueType 0-7 and 10-12); 8 is a string, 9 an array.
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
#: The header keys :func:`gguf_text_error` needs.
_ARCHITECTURE_KEY, _TOKENIZER_KEY = "general.architecture", "tokenizer.ggml.model"


def is_gguf_reference(value: str | os.PathLike) -> bool:
    """Whether an encoder reference names a GGUF file (by its suffix)."""
    return os.fspath(value).lower().endswith(GGUF_SUFFIX)


def gguf_text_architectures() -> list[str]:
    """The GGUF architectures transformers builds a text model from (``llama``, ``qwen2``, ``gemma3``...)."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return sorted(name for name in GGUF_CONFIG_MAPPING if name not in ("general", "tokenizer"))


def _read_header(path: Path) -> dict[str, Any]:
    """The string values of :data:`_ARCHITECTURE_KEY` and :data:`_TOKENIZER_KEY` in a GGUF header (GGUF v2/v3),
    skipping every other value; stops as soon as both are read. Raises ``ValueError`` on a damaged header."""
    found: dict[str, Any] = {}
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        offset = 0

        def take(fmt: str) -> Any:
            nonlocal offset
            values = struct.unpack_from("<" + fmt, data, offset)
            offset += struct.calcsize("<" + fmt)
            return values[0]

        def string() -> bytes:
            nonlocal offset
            length = take("Q")
            if offset + length > len(data):
                raise struct.error("a string runs past the end of the file")
            offset += length
            return data[offset - length:offset]

        def skip(value_type: int) -> None:
            nonlocal offset
            if value_type == _STRING:
                string()
            elif value_type == _ARRAY:
                item_type, count = take("I"), take("Q")
                if item_type in _SCALAR_SIZES:
                    offset += count * _SCALAR_SIZES[item_type]
                else:
                    for _ in range(count):
                        skip(item_type)
            elif value_type in _SCALAR_SIZES:
                offset += _SCALAR_SIZES[value_type]
            else:
                raise ValueError(f"unknown value type {value_type}")

        try:
            if data[:4] != GGUF_MAGIC:
                raise ValueError("not a GGUF file (it does not start with the bytes 'GGUF')")
            version = struct.unpack_from("<I", data, 4)[0]
            if version not in (2, 3):
                raise ValueError(f"GGUF version {version}; versions 2 and 3 are read")
            offset = 16  # magic, version, tensor count
            for _ in range(take("Q")):
                key = string().decode("utf-8", errors="replace")
                value_type = take("I")
                if key in (_ARCHITECTURE_KEY, _TOKENIZER_KEY) and value_type == _STRING:
                    found[key] = string().decode("utf-8", errors="replace")
                    if len(found) == 2:
                        break
                else:
                    skip(value_type)
        except struct.error:
            raise ValueError("its header is cut short (truncated file?)") from None
    return found


def gguf_text_error(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a GGUF text model that transformers can load as an encoder, or ``None``: no such
    file, not GGUF, a damaged header, an architecture that is no text model transformers knows (a vision
    projector, an audio model...), or no tokenizer in the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        return "no such file" if not path.exists() else "not a file"
    if path.stat().st_size < 24:
        return "not a GGUF file (too short)"
    try:
        header = _read_header(path)
    except (OSError, ValueError) as error:
        return str(error)
    architecture = header.get(_ARCHITECTURE_KEY)
    if architecture is None:
        return f"a GGUF file without '{_ARCHITECTURE_KEY}' in its header; cannot tell what model it holds"
    architectures = gguf_text_architectures()
    if architecture not in architectures:
        return (f"a GGUF of a {architecture!r} model, not a text model transformers can load "
                f"(text architectures: {', '.join(architectures)})")
    if _TOKENIZER_KEY not in header:
        return f"a GGUF {architecture} model without a tokenizer ('{_TOKENIZER_KEY}'); a text encoder needs one"
    if importlib.util.find_spec("gguf") is None:
        return "transformers reads GGUF files with the gguf package: pip install 'multistill[gguf]'"
    return None


def check_gguf_text_model(path: str | os.PathLike) -> Path:
    """``path`` as a GGUF text model, else ``ValueError`` naming the file and why (:func:`gguf_text_error`)."""
    reason = gguf_text_error(path)
    if reason:
        raise ValueError(f"{os.fspath(path)}: {reason}.")
    return Path(path).expanduser()


def convert_gguf_text_encoder(gguf_path: str | os.PathLike, out_dir: str | os.PathLike,
                              overwrite: bool = False) -> Path:
    """Write a transformers folder with the base model of a GGUF text model (``AutoModel``: e.g.
    ``Gemma3TextModel``, fp32, ``model.safetensors``) and its tokenizer, stamped with the GGUF's SHA-256.

    transformers marks a model loaded from GGUF as quantized and will not save it, so the de-quantised weights
    are moved into a model built from the same config. Needs ``pip install "multistill[gguf]"``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    gguf_path = check_gguf_text_model(gguf_path)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, gguf_path, overwrite)
    location = {"pretrained_model_name_or_path": str(gguf_path.parent), "gguf_file": gguf_path.name}
    logger.info("De-quantising %s (transformers' GGUF loader; minutes for a few hundred million weights)", gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(**location)
    loaded = AutoModel.from_pretrained(**location, dtype=torch.float32)
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(loaded.config).from_dict(settings)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    model.eval()
    stamp = {"converter_version": CONVERTER_VERSION, "source": str(gguf_path.resolve()),
             "source_bytes": gguf_path.stat().st_size, "source_sha256": file_sha256(gguf_path),
             "model_type": config.model_type, "model_class": type(model).__name__}
    # Written next to out_dir and renamed into place (as convert-whisper does): complete or absent.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        _apply_umask(tmp)
        if out_dir.exists():
            _check_out_dir(out_dir, gguf_path, overwrite)
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Wrote %s (%s, %d parameters)", out_dir, type(model).__name__, model.num_parameters())
    return out_dir


def cached_gguf_text_encoder(gguf_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The converted folder of ``gguf_path`` under ``cache_dir/gguf-text/<its SHA-256>`` (default cache:
    ``$MULTISTILL_CACHE`` or ``~/.cache/multistill``), converted on first use; a folder of another converter
    version is rebuilt."""
    gguf_path = check_gguf_text_model(gguf_path)
    digest = file_sha256(gguf_path)
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "gguf-text" / digest[:16]
    stamp = read_stamp(folder)
    if stamp and stamp.get("source_sha256") == digest and stamp.get("converter_version") == CONVERTER_VERSION:
        return folder
    return convert_gguf_text_encoder(gguf_path, folder, overwrite=True)


__all__ = ["CONVERTER_VERSION", "GGUF_SUFFIX", "cached_gguf_text_encoder", "check_gguf_text_model",
           "convert_gguf_text_encoder", "gguf_text_architectures", "gguf_text_error", "is_gguf_reference"]
