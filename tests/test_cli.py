"""The ``multistill`` command line: predict, stream, errors, ``python -m multistill``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from multistill.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[1]

try:
    from _fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
        offline_env,
        one_torch_thread,
        saved_folder,
        tiny_pipeline,
        write_conversation,
    )
    from _fixtures_model import waves
except ImportError:  # tests/ imported as a package
    from tests._fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
        offline_env,
        one_torch_thread,
        saved_folder,
        tiny_pipeline,
        write_conversation,
    )
    from tests._fixtures_model import waves


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "utterance.wav"
    soundfile.write(path, np.stack([waves(1.4)[0]] * 2, axis=1), 22050)
    return str(path)


def test_predict_prints_every_emotion(wav, capsys):
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--text", "오늘 정말 좋아요", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == wav
    for label in ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear"):
        assert label in out


def test_predict_json_matches_the_pipeline(wav, capsys):
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--text", "오늘 정말 좋아요", "--json",
                 "--top-k", "2", "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["input"] == wav and len(record["scores"]) == 2
    expected = tiny_pipeline("teacher")({"audio": wav, "text": "오늘 정말 좋아요"}, top_k=2)
    assert [s["label"] for s in record["scores"]] == [s["label"] for s in expected]
    assert record["scores"][0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)


def test_predict_text_only_model_and_batches(capsys):
    assert main(["predict", "--model", saved_folder("text_student"), "--text", "좋아요", "--text", "싫어요",
                 "--batch-size", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in lines] == ["text 0", "text 1"] and all(len(r["scores"]) == 7 for r in lines)


def test_predict_errors(wav, tmp_path, capsys):
    folder = saved_folder("teacher")
    missing = str(tmp_path / "missing.wav")
    assert main(["predict", "--model", folder, missing, "--text", "a"]) == 2
    assert "missing.wav" in capsys.readouterr().err
    # one bad file of two: the good one is still printed, exit status 1
    assert main(["predict", "--model", folder, wav, missing, "--text", "a", "--text", "b"]) == 1
    captured = capsys.readouterr()
    assert wav in captured.out and "error: input 1" in captured.err and "missing.wav" in captured.err
    assert main(["predict", "--model", folder, wav]) == 2  # the model needs text
    assert "needs the transcript" in capsys.readouterr().err
    assert main(["predict", "--model", folder, wav, "--text", "a", "--text", "b"]) == 2
    assert "one --text per file" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path), wav, "--text", "a"]) == 2
    assert "the folder has no config.json" in capsys.readouterr().err


def test_stream_prints_each_utterance_and_the_rtf(tmp_path, capsys):
    wav, transcript = write_conversation(tmp_path, stereo=True, rate=44100)
    assert main(["stream", "--model", saved_folder("light_student"), wav, "--transcript", transcript]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    utterances = [line for line in lines if line.startswith("[")]
    assert len(utterances) == 3
    for line, text in zip(utterances, CONVERSATION_TEXT, strict=True):
        assert "latency" in line and " ms" in line and text in line
    assert any(line.startswith("utterances: 3") for line in lines)
    assert any("real-time factor" in line for line in lines)
    assert "warm-up" in captured.err


def test_stream_json(tmp_path, capsys):
    wav, _ = write_conversation(tmp_path)
    assert main(["stream", "--model", saved_folder("audio_student"), wav, "--json", "--chunk-ms", "30",
                 "--no-warmup"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 4 and records[-1]["summary"]["utterances"] == 3
    assert all(r["latency_s"] > 0 and r["end_s"] > r["start_s"] for r in records[:3])
    assert records[-1]["summary"]["rtf"] > 0


def test_stream_errors(tmp_path, capsys, monkeypatch):
    wav, _ = write_conversation(tmp_path)
    folder = saved_folder("teacher")
    assert main(["stream", "--model", folder, wav]) == 2
    assert "--transcript" in capsys.readouterr().err
    assert main(["stream", "--model", folder]) == 2
    assert "--mic" in capsys.readouterr().err
    assert main(["stream", "--model", folder, str(tmp_path / "none.wav"), "--transcript", str(tmp_path / "t.txt")]) == 2
    assert "not found" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["stream", "--model", saved_folder("audio_student"), "--mic", "--duration", "1"]) == 2
    assert "sounddevice" in capsys.readouterr().err


def test_parser_and_module_entry_point():
    parser = build_parser()
    args = parser.parse_args(["stream", "--model", "m", "a.wav", "--realtime", "--hangover-ms", "300"])
    assert args.realtime and args.hangover_ms == 300 and args.input == "a.wav"
    result = subprocess.run([sys.executable, "-m", "multistill", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "predict" in result.stdout and "stream" in result.stdout


# --------------------------------------------------------------------------- argument errors (issue 12.14)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "bogus"], "error: --device 'bogus' is not a torch device"),
        (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "error: --device cuda"),
        (["--model", "/no/such/dir"], "error: --model /no/such/dir: no such folder"),
        (["--model", "./relative/missing"], "error: --model ./relative/missing: no such folder"),
    ],
)
def test_argument_errors_are_one_line_before_anything_loads(argv, message, wav, capsys, monkeypatch):
    import multistill.cli as cli

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(cli, "load_pipeline", must_not_load)
    model = ["--model", saved_folder("teacher")] if "--model" not in argv else []
    assert main(["predict", *model, *argv, wav, "--text", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err and "Repo id must be" not in err


def test_folder_without_config_is_refused_before_building_a_model(tmp_path, wav, capsys, monkeypatch):
    from multistill import modeling_multistill

    monkeypatch.setattr(modeling_multistill.MultiStillForEmotionClassification, "__init__",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("a model was built")))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert main(["predict", "--model", str(tmp_path), wav, "--text", "a"]) == 2
    assert "has no config.json" in capsys.readouterr().err
    a_file = tmp_path / "model.safetensors"
    assert main(["stream", "--model", str(a_file), wav]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--top-k", "--batch-size", "--threads"])
def test_counts_must_be_positive(option, wav, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", saved_folder("teacher"), option, "0", wav, "--text", "a"])
    assert exit_info.value.code == 2 and "must be a positive integer" in capsys.readouterr().err


# --------------------------------------------------------------------------- trust_remote_code is opt-in (12.13)
TAMPER = "\nimport os\nopen(os.environ['TAMPER_MARKER'], 'w').write('ran')\n"


def test_model_code_runs_only_with_trust_remote_code(tmp_path, wav):
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(saved_folder("teacher"), folder)
    for name in ("modeling_multistill.py", "configuration_multistill.py", "pipeline_multistill.py"):
        with open(folder / name, "a", encoding="utf-8") as f:
            f.write(TAMPER)
    marker = tmp_path / "marker"
    env = {**offline_env(tmp_path), "TAMPER_MARKER": str(marker), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "multistill", "predict", "--model", str(folder), wav, "--text", "네", "--json"]
    plain = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert not marker.exists()  # the folder's code files did not run: the installed classes were used
    assert len(json.loads(plain.stdout.splitlines()[0])["scores"]) == 7
    trusted = subprocess.run([*command, "--trust_remote_code"], env=env, capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert marker.read_text() == "ran"
