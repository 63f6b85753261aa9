"""CTranslate2 Whisper -> transformers (multistill.tools.whisper_convert): model.bin reader, weight mapping, converted
folders and their generation config (with the loop guards).

The conversion tests need the ``whisper-base`` extra (the weights) and the round trip the ``faster-whisper``
extra (CTranslate2's converter); both are installed in CI. Without them the tests skip, saying how to install them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from _fixtures_speech import SKIP_FASTER_WHISPER, registry_whisper_cache

from multistill.cli import main as cli_main
from multistill.tools import whisper_base
from multistill.tools.whisper_convert import (
    DECODING_GUARDS,
    STAMP_FILE,
    CT2FormatError,
    CT2Model,
    convert_ct2_whisper,
    ct2_whisper_state_dict,
    decoding_length_cap,
    read_ct2_model,
)


@pytest.fixture(scope="module")
def ct2_dir() -> Path:
    return whisper_base.ct2_folder(registry_whisper_cache())


@pytest.fixture(scope="module")
def hf_dir() -> Path:
    return whisper_base.transformers_folder(registry_whisper_cache())


def _write_model_bin(path: Path, spec: str = "WhisperSpec", version: int = 6,
                     variables: dict[str, torch.Tensor] | None = None, aliases: dict[str, str] | None = None) -> Path:
    """A model.bin in CTranslate2's layout (float32/int8/int16 variables only)."""
    type_ids = {torch.float32: 0, torch.int8: 1, torch.int16: 2}

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<H", len(raw) + 1) + raw + b"\0"

    out = struct.pack("<I", version) + string(spec) + struct.pack("<I", 3)
    variables = variables or {}
    out += struct.pack("<I", len(variables))
    for name, value in variables.items():
        data = value.contiguous().numpy().tobytes()
        out += string(name) + struct.pack("<B", value.dim()) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<B", type_ids[value.dtype]) + struct.pack("<I", len(data)) + data
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases)) + b"".join(string(a) + string(t) for a, t in aliases.items())
    path.write_bytes(out)
    return path


# --- model.bin reader and error messages (no weights needed) ------------------------------------------------

def test_read_model_bin_round_trip(tmp_path):
    weight = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    path = _write_model_bin(tmp_path / "model.bin", variables={"a/weight": weight, "n": torch.tensor(8, dtype=torch.int16)},
                            aliases={"b/weight": "a/weight"})
    model = read_ct2_model(path)
    assert (model.spec, model.revision, model.binary_version) == ("WhisperSpec", 3, 6)
    assert torch.equal(model.variables["a/weight"], weight) and int(model.variables["n"]) == 8
    assert model.aliases == {"b/weight": "a/weight"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"version": 5}, "binary format version 5"),
    ({"aliases": {"x": "missing"}}, "missing variable"),
])
def test_read_model_bin_rejects_bad_files(tmp_path, kwargs, message):
    path = _write_model_bin(tmp_path / "model.bin", **kwargs)
    with pytest.raises(CT2FormatError, match=message) as err:
        read_ct2_model(path)
    assert str(path) in str(err.value)


def test_read_model_bin_rejects_truncated_and_foreign_files(tmp_path):
    good = _write_model_bin(tmp_path / "model.bin", variables={"w": torch.ones(4)})
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(CT2FormatError, match="ends early"):
        read_ct2_model(truncated)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"PK\x03\x04 a zip file, not a model")
    with pytest.raises(CT2FormatError, match="binary format version"):
        read_ct2_model(foreign)


def test_non_whisper_spec_is_rejected(tmp_path):
    model = read_ct2_model(_write_model_bin(tmp_path / "model.bin", spec="TransformerSpec"))
    with pytest.raises(CT2FormatError, match="'TransformerSpec' model, not a Whisper model"):
        ct2_whisper_state_dict(model)


def test_convert_errors_name_the_problem(tmp_path):
    src = tmp_path / "ct2"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "tokenizer.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="lacks model.bin"):
        convert_ct2_whisper(src, tmp_path / "out")
    _write_model_bin(src / "model.bin", spec="TransformerSpec")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match=f"{out} is not empty"):
        convert_ct2_whisper(src, out)
    with pytest.raises(ValueError, match="dtype"):
        convert_ct2_whisper(src, tmp_path / "new", dtype="int8")
    with pytest.raises(CT2FormatError, match="not a Whisper model"):
        convert_ct2_whisper(src, tmp_path / "new")
    assert not (tmp_path / "new").exists() and (out / "keep.txt").exists()


def test_the_output_folder_may_not_be_or_hold_the_source(tmp_path):
    # convert_ct2_whisper("parent/src", "parent", overwrite=True) replaced parent, the source with it
    src = tmp_path / "parent" / "src"
    src.mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (src / name).write_text("{}")
    for out in (src, tmp_path / "parent"):
        with pytest.raises(ValueError, match="is or holds the source"):
            convert_ct2_whisper(src, out, overwrite=True)
    assert (src / "model.bin").read_text() == "{}"


def test_cli_errors(tmp_path, capsys):
    src = tmp_path / "ct2"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "tokenizer.json").write_text("{}")
    assert cli_main(["convert-whisper", str(src), str(tmp_path / "out")]) == 2
    assert "lacks model.bin" in capsys.readouterr().err
    _write_model_bin(src / "model.bin")
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    assert cli_main(["convert-whisper", str(src), str(out)]) == 2
    assert f"{out} is not empty" in capsys.readouterr().err
    assert cli_main(["convert-whisper", "--from-packages", str(src), str(out)]) == 2
    assert "either SRC_DIR OUT_DIR or --from-packages" in capsys.readouterr().err


# --- conversion of the registry model ------------------------------------------------------------------------

def test_config_processor_and_generation_config(hf_dir, ct2_dir):
    from transformers import GenerationConfig, WhisperConfig, WhisperProcessor

    config = WhisperConfig.from_pretrained(hf_dir)
    assert (config.d_model, config.encoder_layers, config.decoder_layers, config.encoder_attention_heads,
            config.decoder_attention_heads, config.encoder_ffn_dim, config.vocab_size, config.num_mel_bins,
            config.max_source_positions, config.max_target_positions) == (512, 6, 6, 8, 8, 2048, 51865, 80, 1500, 448)
    generation = GenerationConfig.from_pretrained(hf_dir)
    assert {name: getattr(generation, name) for name in DECODING_GUARDS} == DECODING_GUARDS
    assert (generation.max_new_tokens, generation.max_length) == (220, None)  # the loop guards (issue 22.8)
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    assert generation.suppress_tokens == ct2_config["suppress_ids"]
    assert generation.begin_suppress_tokens == ct2_config["suppress_ids_begin"] == [220, 50257]
    assert generation.alignment_heads == ct2_config["alignment_heads"]
    assert sorted(generation.lang_to_id.values()) == ct2_config["lang_ids"] and generation.lang_to_id["<|ko|>"] == 50264
    assert generation.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert (generation.decoder_start_token_id, generation.no_timestamps_token_id, generation.eos_token_id) == (
        50258, 50363, 50257)
    assert generation.is_multilingual
    processor = WhisperProcessor.from_pretrained(hf_dir)
    tokenizer = processor.tokenizer
    assert len(tokenizer) == 51865 and tokenizer.all_special_ids[-1] == 50363
    assert tokenizer.convert_ids_to_tokens([50264, 50364, 51864]) == ["<|ko|>", "<|0.00|>", "<|30.00|>"]
    ids = [50258, 50264, 50359, 50364, *tokenizer.encode("안녕하세요", add_special_tokens=False), 50414, 50257]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "안녕하세요"
    assert processor.feature_extractor.feature_size == 80


def test_state_dict_is_complete_and_exact(hf_dir, ct2_dir):
    from transformers import WhisperForConditionalGeneration

    ct2 = read_ct2_model(ct2_dir / "model.bin")
    _, state = ct2_whisper_state_dict(ct2)  # raises if any of the 213 names is left unused
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32)
    loaded = model.state_dict()
    assert set(state) == set(loaded)
    for key in state:
        assert torch.equal(state[key], loaded[key]), key
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    fused = ct2.variables["encoder/layer_2/self_attention/linear_0/weight"].float()
    attention = model.model.encoder.layers[2].self_attn
    assert torch.equal(torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]), fused)
    cross_kv = ct2.variables["decoder/layer_4/attention/linear_1/weight"].float()
    cross = model.model.decoder.layers[4].encoder_attn
    assert torch.equal(torch.cat([cross.k_proj.weight, cross.v_proj.weight]), cross_kv)


def test_unused_variable_is_an_error(ct2_dir, tmp_path):
    ct2 = read_ct2_model(ct2_dir / "model.bin")
    extra = CT2Model(ct2.path, ct2.binary_version, ct2.spec, ct2.revision,
                    {**ct2.variables, "decoder/layer_0/extra/weight": torch.zeros(2)}, ct2.aliases)
    with pytest.raises(CT2FormatError, match="not mapped onto transformers' Whisper: decoder/layer_0/extra/weight"):
        ct2_whisper_state_dict(extra)


def test_cli_converts_from_packages_in_float16(ct2_dir, tmp_path, capsys, monkeypatch):
    from transformers import WhisperForConditionalGeneration

    monkeypatch.setattr(whisper_base, "ct2_folder", lambda cache_dir=None: ct2_dir)
    out = tmp_path / "whisper-fp16"
    assert cli_main(["convert-whisper", "--from-packages", str(out), "--dtype", "float16"]) == 0
    printed = capsys.readouterr().out
    assert f"-> {out} (float16)" in printed and "model.safetensors" in printed
    model = WhisperForConditionalGeneration.from_pretrained(out)
    assert model.dtype == torch.float16
    assert json.loads((out / STAMP_FILE).read_text())["dtype"] == "float16"


# --- small converted folders ---------------------------------------------------------------------------------

def _tiny_ct2_folder(hf_dir: Path, folder: Path, quantization: str | None = None) -> Any:
    """A small random Whisper (the registry model's config, tokenizer and generation config) saved in ``folder/hf``
    and converted by CTranslate2's own converter (current version, many aliases) into ``folder/ct2``."""
    ctranslate2 = pytest.importorskip("ctranslate2", reason=SKIP_FASTER_WHISPER)
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    torch.manual_seed(0)
    config = WhisperConfig.from_pretrained(hf_dir)
    config.update({"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
                   "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128})
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig.from_pretrained(hf_dir)
    model.save_pretrained(folder / "hf")
    WhisperProcessor.from_pretrained(hf_dir).save_pretrained(folder / "hf")
    converter = ctranslate2.converters.TransformersConverter(str(folder / "hf"), copy_files=["tokenizer.json"])
    converter.convert(str(folder / "ct2"), quantization=quantization)
    return model


@pytest.mark.parametrize(("quantization", "tolerance"), [(None, 0.0), ("int8", 1 / 127)])
def test_round_trip_through_ctranslate2_converter(hf_dir, tmp_path, quantization, tolerance):
    """A small random Whisper -> CTranslate2's own converter (int8 weights with per-row scales) ->
    convert_ct2_whisper gives back the same weights and generation settings."""
    from transformers import GenerationConfig, WhisperForConditionalGeneration

    model = _tiny_ct2_folder(hf_dir, tmp_path, quantization)
    back = WhisperForConditionalGeneration.from_pretrained(convert_ct2_whisper(tmp_path / "ct2", tmp_path / "back"))
    original, converted = model.state_dict(), back.state_dict()
    assert set(original) == set(converted)
    for key, value in original.items():
        assert (converted[key] - value).abs().max() <= tolerance * value.abs().max() + 1e-7, key
    generation = GenerationConfig.from_pretrained(tmp_path / "back")
    for name in ("lang_to_id", "task_to_id", "suppress_tokens", "begin_suppress_tokens", "alignment_heads",
                 "decoder_start_token_id", "no_timestamps_token_id"):
        assert getattr(generation, name) == getattr(model.generation_config, name), name


def _longest_repeated_ngram(ids: list[int]) -> int:
    """The largest n such that some token n-gram occurs twice in ``ids`` (0: no token repeats)."""
    n = 0
    while n < len(ids) and len({tuple(ids[i:i + n + 1]) for i in range(len(ids) - n)}) < len(ids) - n:
        n += 1
    return n


def test_converted_folder_carries_loop_guards_that_generate_honours(hf_dir, tmp_path):
    """issue 22.8: a converted folder run through plain transformers (``pipeline("automatic-speech-recognition")``,
    ``generate(language="ko")``) must not loop. Its generation_config.json carries DECODING_GUARDS and a length
    cap; a small random Whisper (which loops on noise) stops at the cap without a repeated 12-gram, and without
    the guards (the folder as written before them) it loops to Whisper's 448-token context."""
    import numpy as np
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    _tiny_ct2_folder(hf_dir, tmp_path)
    folder = convert_ct2_whisper(tmp_path / "ct2", tmp_path / "converted")
    saved = json.loads((folder / "generation_config.json").read_text())
    assert {name: saved.get(name) for name in DECODING_GUARDS} == DECODING_GUARDS
    cap = decoding_length_cap(448)
    assert saved["max_new_tokens"] == cap == 220 and "max_length" not in saved
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    features = WhisperFeatureExtractor.from_pretrained(folder)(noise, sampling_rate=16000, return_tensors="pt")

    def decode() -> list[int]:  # beam search, as the pipeline's default; the 4 start tokens dropped
        out = model.generate(features.input_features, language="ko", num_beams=5, return_dict_in_generate=True)
        return out.sequences[0, 4:].tolist()

    ids = decode()
    assert len(ids) <= cap and _longest_repeated_ngram(ids) < DECODING_GUARDS["no_repeat_ngram_size"]
    model.generation_config.update(**dict.fromkeys(DECODING_GUARDS), max_new_tokens=None, max_length=448)
    loop = decode()
    assert len(loop) > cap and _longest_repeated_ngram(loop) >= 12
