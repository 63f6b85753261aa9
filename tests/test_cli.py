"""The ``multistill`` command line: predict, stream, errors, ``python -m multistill``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from multistill.cli import build_parser, main

try:
    from _fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
        one_torch_thread,
        saved_folder,
        tiny_pipeline,
        write_conversation,
    )
    from _fixtures_model import waves
except ImportError:  # tests/ imported as a package
    from tests._fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
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
    assert "Cannot load the model" in capsys.readouterr().err


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
