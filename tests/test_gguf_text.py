"""GGUF text models as text encoders: the header check, the conversion to a transformers folder, its cache and
``multistill convert-gguf``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("gguf")

from _fixtures_gguf import write_gguf  # noqa: E402

from multistill.tools.gguf_text import (  # noqa: E402
    cached_gguf_text_encoder,
    convert_gguf_text_encoder,
    gguf_text_error,
    is_gguf_reference,
)

TEXTS = ["오늘 정말 기분이 좋아", "왜 그래? 화가 났어", "ok"]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny-gemma3.gguf")


def test_a_gguf_text_model_passes_the_check(tiny_gguf: Path):
    assert gguf_text_error(tiny_gguf) is None
    assert is_gguf_reference("models/Gemma.GGUF") and not is_gguf_reference("models/gemma")


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(60)), "not a GGUF file"),
    (lambda p: p.write_bytes(b"GGUF"), "not a GGUF file (too short)"),
    (lambda p: write_gguf(p, architecture="clip"), "a GGUF of a 'clip' model, not a text model"),
    (lambda p: write_gguf(p, tokenizer=False), "without a tokenizer"),
])
def test_files_that_are_no_gguf_text_model_are_named(make, message: str, tmp_path: Path):
    path = tmp_path / "model.gguf"
    make(path)
    assert message in gguf_text_error(path)


def test_a_truncated_gguf_is_refused(tiny_gguf: Path, tmp_path: Path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:200])  # inside the tokenizer's vocabulary
    assert "cut short" in gguf_text_error(cut)


def test_the_converted_folder_computes_what_transformers_reads_from_the_gguf(tiny_gguf: Path, tmp_path: Path):
    """The de-quantised base model and tokenizer, saved as a plain folder: same token ids, same hidden states as
    ``from_pretrained(folder, gguf_file=...)``, and no quantization left in the config."""
    from transformers import AutoModel, AutoTokenizer

    out = convert_gguf_text_encoder(tiny_gguf, tmp_path / "encoder")
    stamp = json.loads((out / "multistill_conversion.json").read_text())
    assert stamp["model_type"] == "gemma3_text" and stamp["source_bytes"] == tiny_gguf.stat().st_size
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    direct = {"pretrained_model_name_or_path": str(tiny_gguf.parent), "gguf_file": tiny_gguf.name}
    reference_tokenizer, reference = AutoTokenizer.from_pretrained(**direct), AutoModel.from_pretrained(**direct)
    tokenizer, model = AutoTokenizer.from_pretrained(out), AutoModel.from_pretrained(out)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    assert torch.equal(batch["input_ids"], reference_tokenizer(TEXTS, return_tensors="pt", padding=True)["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).last_hidden_state, reference(**batch).last_hidden_state)


def test_the_cache_converts_once_and_refuses_to_overwrite_a_folder(tiny_gguf: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MULTISTILL_CACHE", str(tmp_path / "cache"))
    first = cached_gguf_text_encoder(tiny_gguf)
    assert first.parent == tmp_path / "cache" / "gguf-text"
    written = (first / "model.safetensors").stat().st_mtime_ns
    assert cached_gguf_text_encoder(tiny_gguf) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == written
    with pytest.raises(FileExistsError, match="is not empty"):
        convert_gguf_text_encoder(tiny_gguf, first)


def test_convert_gguf_command(tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from multistill.cli import main

    assert main(["convert-gguf", str(tiny_gguf), str(tmp_path / "out")]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    write_gguf(tmp_path / "vision.gguf", architecture="clip")
    assert main(["convert-gguf", str(tmp_path / "vision.gguf"), str(tmp_path / "other")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: GGUF_FILE {tmp_path / 'vision.gguf'}: a GGUF of a 'clip' model, not a text")
    assert "\n" not in error and not (tmp_path / "other").exists()


def test_the_output_folder_may_not_hold_the_gguf(tiny_gguf: Path, tmp_path: Path):
    # `multistill convert-gguf model.gguf . --overwrite` replaced the folder, the GGUF with it
    folder = tmp_path / "models"
    folder.mkdir()
    source = folder / "tiny.gguf"
    source.write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(ValueError, match="is or holds the source"):
        convert_gguf_text_encoder(source, folder, overwrite=True)
    assert source.read_bytes() == tiny_gguf.read_bytes()
