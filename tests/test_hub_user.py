"""A Hub user: the published folder with only torch + transformers installed; registration; dependency ranges.

The bare-venv test needs ``MULTISTILL_HUB_USER_PYTHON``: the python of a virtual environment holding only
``torch==2.13.0 transformers==5.25.0`` (``scripts/hub_user_venv.sh`` builds it; ``scripts/test.sh`` sets the
variable, so CI runs it). Without it the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomllib
from _fixtures_inference import offline_env, one_torch_thread, tiny_model, tiny_pipeline  # noqa: F401
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]

HUB_USER = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    folder, out = sys.argv[1], sys.argv[2]
    missing = ["soundfile", "torchcodec", "soxr", "scipy", "librosa", "multistill", "datasets"]
    present = [name for name in missing if importlib.util.find_spec(name) is not None]
    assert not present, f"not a bare torch + transformers environment: {present}"
    from transformers import AutoConfig, AutoModelForAudioClassification, AutoProcessor, pipeline
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    pipe = pipeline("multimodal-emotion-recognition", model=folder, trust_remote_code=True, device="cpu")
    wav = os.path.join(folder, "example.wav")
    text = open(os.path.join(folder, "example.txt"), encoding="utf-8").read().strip()
    from_path = pipe({"audio": wav, "text": text})
    from_bytes = pipe({"audio": open(wav, "rb").read(), "text": text})
    from_44k = pipe({"audio": sys.argv[3], "text": text})  # a stereo 44.1 kHz WAV: decoded and resampled
    # the model card's Python blocks, unchanged: the folder sits at the repo id's relative path (no network)
    assert os.path.samefile(folder, "me/hub-user-test")
    card = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    blocks = [b.split("```", 1)[0] for b in card.split("```python\\n")[1:]]
    for block in blocks:
        exec(compile(block, "card", "exec"), {})
    json.dump({"model_type": config.model_type, "path": from_path, "bytes": from_bytes, "stereo_44k": from_44k,
               "card_blocks": len(blocks)}, open(out, "w"))
    """
)


def hub_user_python() -> str:
    python = os.environ.get("MULTISTILL_HUB_USER_PYTHON")
    if not python:
        message = "MULTISTILL_HUB_USER_PYTHON is not set: run `bash scripts/test.sh` (it builds the bare venv)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["teacher", "light_student"])
def test_hub_user_with_only_torch_and_transformers(tmp_path, preset):
    """Issue 12.1: config, model, processor and pipeline (WAV path, bytes, 44.1 kHz stereo) and the card's code."""
    import soundfile

    from multistill.audio_utils import resample
    from multistill.tools import hub

    python = hub_user_python()
    checkpoint = tmp_path / "checkpoint"
    model, processor = tiny_model(preset)
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    folder = hub.write_local_folder(checkpoint, tmp_path / "me" / "hub-user-test", "me/hub-user-test")
    assert oct(folder.stat().st_mode & 0o777) == "0o755"
    assert {oct(f.stat().st_mode & 0o777) for f in folder.iterdir()} == {"0o644"}
    example, rate = soundfile.read(folder / "example.wav", dtype="float32")
    stereo = tmp_path / "stereo_44k.wav"
    upsampled = resample(example, rate, 44100)
    soundfile.write(stereo, np.stack([upsampled, 0.5 * upsampled], axis=1), 44100, subtype="PCM_16")
    script = tmp_path / "hub_user.py"
    script.write_text(HUB_USER)
    result = subprocess.run([python, "-I", str(script), str(folder), str(tmp_path / "out.json"), str(stereo)],
                            cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["model_type"] == "multistill" and out["card_blocks"] == 2
    text = (folder / "example.txt").read_text(encoding="utf-8").strip()
    local = tiny_pipeline(preset)({"audio": str(folder / "example.wav"), "text": text})
    for key in ("path", "bytes"):
        assert [s["label"] for s in out[key]] == [s["label"] for s in local]
        np.testing.assert_allclose([s["score"] for s in out[key]], [s["score"] for s in local], atol=1e-5)
    assert len(out["stereo_44k"]) == 7


REGISTRATION = textwrap.dedent(
    """
    import sys
    import numpy as np
    folder, order = sys.argv[1], sys.argv[2]
    if order == "multistill-first":
        import multistill  # registers at once (explicitly, no import hook)
    from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoProcessor, pipeline
    if order == "transformers-first":
        import multistill
    config = AutoConfig.from_pretrained(folder)  # no trust_remote_code: the installed classes are registered
    model = AutoModelForAudioClassification.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    base = AutoModel.from_pretrained(folder)
    modules = {type(x).__module__ for x in (config, model, processor, base)}
    assert all(m.startswith("multistill.") for m in modules), modules
    pipe = pipeline("multimodal-emotion-recognition", model=model, processor=processor)
    scores = pipe({"audio": np.full(16000, 0.01, np.float32), "sampling_rate": 16000, "text": "네"})
    assert type(pipe).__module__ == "multistill.pipeline_multistill" and len(scores) == 7
    print("REGISTERED")
    """
)


@pytest.mark.parametrize("order", ["multistill-first", "transformers-first"])
def test_import_multistill_registers_with_transformers(tmp_path, order):
    """Issue 12.5: `import multistill` alone is enough for the Auto classes and the pipeline task."""
    model, processor = tiny_model("teacher")
    folder = tmp_path / "model"
    model.save_pretrained(folder)  # a plain save: no code files, no custom_pipelines
    processor.save_pretrained(folder)
    for name in ("configuration_multistill.py", "modeling_multistill.py", "processing_multistill.py"):
        (folder / name).unlink(missing_ok=True)
    script = tmp_path / "registration.py"
    script.write_text(REGISTRATION)
    env = {**offline_env(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, str(script), str(folder), order], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "REGISTERED" in result.stdout, result.stderr[-3000:]


def test_dependency_ranges_install_a_working_torch_torchcodec_pair():
    """Issue 12.4: torchcodec loads only beside the torch minor it was built for (0.13.x <-> 2.13.x); pip must
    not be allowed to pair CPU torch 2.13 with a newer torchcodec, whose libraries fail to load."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    torch_spec, codec_spec = requirements["torch"].specifier, requirements["torchcodec"].specifier
    torch_minors = {v for v in ("2.12.1", "2.13.0", "2.13.1", "2.14.0", "2.15.0") if torch_spec.contains(v)}
    codec_minors = {v for v in ("0.12.0", "0.13.0", "0.13.1", "0.14.0", "0.17.0") if codec_spec.contains(v)}
    assert {v.rsplit(".", 1)[0] for v in torch_minors} == {"2.13"}
    assert {v.rsplit(".", 1)[0] for v in codec_minors} == {"0.13"}
    for package in ("scipy",):  # the model code needs no scipy (librosa stays: the acoustic baseline's features)
        assert package not in requirements
    assert requirements["transformers"].specifier.contains("5.25.0")
    assert not requirements["transformers"].specifier.contains("5.19.0")  # SubConfigSpec arrived in 5.20


def test_the_tested_versions_are_one_fact():
    """README, the model card and the bare-venv script name the same torch + transformers versions."""
    from multistill.tools import model_card

    spec = re.search(r"SPEC=\(torch==(\S+) transformers==(\S+)\)", (REPO_ROOT / "scripts" / "hub_user_venv.sh").read_text())
    torch_version, transformers_version = spec.groups()
    assert model_card.TESTED_VERSIONS == f"torch {torch_version} and transformers {transformers_version}"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"tested with torch {torch_version} + transformers {transformers_version}" in readme
    assert f"`torch=={torch_version} transformers=={transformers_version}`" in readme
