"""Whisper base from the registry: assembled CTranslate2 folder, cached transformers folder, agreement with
faster-whisper (the converter itself is tested in test_whisper_convert.py).

The conversion tests need the ``whisper-base`` extra (the weights) and the comparisons the ``faster-whisper``
extra; both are installed in CI. Without them the tests skip, saying how to install them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_speech import SKIP_FASTER_WHISPER, SKIP_WEIGHTS, registry_whisper_cache

from multistill.tools import whisper_base
from multistill.tools.whisper_base import (
    INSTALL_HINT,
    edit_distance,
    normalize_for_cer,
    transformers_folder,
)
from multistill.tools.whisper_convert import CONVERTER_VERSION, DECODING_GUARDS, STAMP_FILE


@pytest.fixture(scope="module")
def cache() -> Path:
    """The registry model assembled and converted once for the test run, in a temporary cache."""
    return registry_whisper_cache()


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
    with caplog.at_level("WARNING", logger="multistill.tools.whisper_base"):
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
    with pytest.raises(SystemExit) as exit_info:  # a typo was transformers' ValueError traceback
        whisper_base.main(["verify", "--nn", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m multistill.tools.whisper_base verify: error: unrecognized arguments: --nn 3")


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


def test_a_folder_of_an_older_converter_is_converted_again(cache, hf_dir):
    """A cached folder stamped by converter version 1 (no decoding guards) is rebuilt with the guards."""
    stamp_path = hf_dir / STAMP_FILE
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "converter_version": 1}))
    generation_path = hf_dir / "generation_config.json"
    generation = json.loads(generation_path.read_text())
    generation_path.write_text(json.dumps({k: v for k, v in generation.items() if k not in DECODING_GUARDS}))
    assert transformers_folder(cache) == hf_dir
    assert json.loads(stamp_path.read_text())["converter_version"] == CONVERTER_VERSION > 1
    rebuilt = json.loads(generation_path.read_text())
    assert all(rebuilt[key] == value for key, value in DECODING_GUARDS.items())


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


