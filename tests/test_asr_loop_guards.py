"""scripts/asr_loop_guards.py: argument checks (before anything is loaded) and the two generation-config variants."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from multistill.tools.whisper_convert import DECODING_GUARDS, decoding_length_cap

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "asr_loop_guards.py"


def _script():
    spec = importlib.util.spec_from_file_location("asr_loop_guards", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data_dir(tmp_path) -> Path:
    (tmp_path / "kemdy" / "KEMDy19" / "wav" / "Session02").mkdir(parents=True)
    return tmp_path / "kemdy"


# The script run in a fresh interpreter: exit status, stderr and which heavy packages got imported.
_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("asr_loop_guards", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    rc = module.main(sys.argv[2:])
except SystemExit as exit:
    rc = exit.code
print(json.dumps({"rc": rc, "loaded": [m for m in ("torch", "transformers", "multistill") if m in sys.modules]}))
"""


@pytest.mark.parametrize("args, argument", [
    (["--data_dir", "{missing}"], "--data_dir"),
    (["--data_dir", "{data}", "--session", "3"], "--data_dir"),
    (["--data_dir", "{data}", "--session", "0"], "--session"),
    (["--data_dir", "{data}", "--n", "0"], "--n"),
    (["--data_dir", "{data}", "--seed", "-1"], "--seed"),
    (["--data_dir", "{data}", "--folder", "{missing}"], "--folder"),
    (["--data_dir", "{data}", "--folder", "{data}"], "--folder"),
    (["--data_dir", "{data}", "--output_json", "{data}"], "--output_json"),
    (["--data_dir", "{data}", "--output_json", "{data}/out.txt"], "--output_json"),
    (["--data_dir", "{data}", "--n", "many"], "--n"),
])
def test_bad_arguments_fail_with_one_error_line_before_loading_anything(data_dir, tmp_path, args, argument):
    args = [a.format(data=data_dir, missing=tmp_path / "missing") for a in args]
    if "--output_json" not in args:
        args += ["--output_json", str(tmp_path / "out.json")]
    done = subprocess.run([sys.executable, "-c", _PROBE, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert result == {"rc": 2, "loaded": []}, done.stderr
    assert len(errors) == 1 and errors[0].startswith("asr_loop_guards.py: error:") and argument in errors[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()


def _folder(path: Path, generation: dict) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"max_target_positions": 64, "d_model": 16}))
    (path / "generation_config.json").write_text(json.dumps(generation))
    (path / "model.safetensors").write_bytes(b"weights")
    return path


@pytest.mark.parametrize("generation", [
    {"max_length": 12, "eos_token_id": 3},  # written before the guards
    {"max_new_tokens": 28, "eos_token_id": 3, **DECODING_GUARDS},  # by the converter with them
])
def test_variants_set_or_remove_the_guards_and_leave_the_folder_alone(tmp_path, generation):
    from transformers import GenerationConfig

    source = _folder(tmp_path / "converted", generation)
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    variants = _script().build_variants(source, tmp_path / "work")

    assert list(variants) == ["without_guards", "with_guards"]
    with_guards = json.loads((variants["with_guards"] / "generation_config.json").read_text())
    without = json.loads((variants["without_guards"] / "generation_config.json").read_text())
    assert with_guards == {"eos_token_id": 3, "max_new_tokens": decoding_length_cap(64), **DECODING_GUARDS}
    assert without == {"eos_token_id": 3, "max_length": 64}
    loaded = GenerationConfig.from_pretrained(variants["with_guards"])
    assert (loaded.no_repeat_ngram_size, loaded.max_new_tokens) == (12, decoding_length_cap(64))
    assert GenerationConfig.from_pretrained(variants["without_guards"]).no_repeat_ngram_size in (None, 0)
    for folder in variants.values():
        assert sorted(p.name for p in folder.iterdir()) == sorted(before)
        assert (folder / "model.safetensors").read_bytes() == b"weights"
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
