"""The ``multistill`` command line: predict, stream (Silero/energy VAD, ASR, plot, JSON lines), errors,
``python -m multistill``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from _fixtures_inference import (  # noqa: F401
    CONVERSATION_TEXT,
    offline_env,
    one_torch_thread,
    saved_folder,
    tiny_pipeline,
    write_conversation,
)
from _fixtures_model import DAMAGES, damaged_copy, waves
from _fixtures_speech import SPEECH, faster_whisper_asr, speech_file, write_real_conversation

from multistill.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    assert main(["stream", "--model", saved_folder("light_student"), wav, "--transcript", transcript, "--vad",
                 "energy"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    utterances = [line for line in lines if line.startswith("[")]
    assert len(utterances) == 3
    for line, text in zip(utterances, CONVERSATION_TEXT, strict=True):
        assert "latency" in line and " ms" in line and text in line
    assert any(line.startswith("utterances: 3") for line in lines)
    assert any(line.startswith("real-time factor (VAD + emotion model") for line in lines)
    assert any(line.startswith("stages: VAD (energy)") for line in lines)
    assert any(line.startswith("backlog: queue at most") and "peak memory" in line for line in lines)
    assert "warm-up" in captured.err


def test_stream_json(tmp_path, capsys):
    wav, _ = write_conversation(tmp_path)
    assert main(["stream", "--model", saved_folder("audio_student"), wav, "--json", "--chunk-ms", "30",
                 "--no-warmup", "--vad", "energy"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 4 and records[-1]["summary"]["utterances"] == 3
    assert all(r["latency_s"] > 0 and r["end_s"] > r["start_s"] for r in records[:3])
    assert records[-1]["summary"]["rtf"] > 0


def test_stream_errors(tmp_path, capsys, monkeypatch):
    wav, _ = write_conversation(tmp_path)
    folder = saved_folder("teacher")
    assert main(["stream", "--model", folder, wav]) == 2
    err = capsys.readouterr().err
    assert "--transcript FILE" in err and "--asr MODEL" in err
    assert main(["stream", "--model", folder, wav, "--asr", "whisper-base", "--plot", str(tmp_path / "no" / "t.png")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert main(["predict", "--model", folder, "--text", "a", "--asr", "whisper-base"]) == 2
    assert "give at least one file" in capsys.readouterr().err
    assert main(["stream", "--model", folder]) == 2
    assert "--mic" in capsys.readouterr().err
    assert main(["stream", "--model", folder, wav, "--drop-after-s", "-1"]) == 2  # before loading anything
    assert "error: --drop-after-s must be >= 0" in capsys.readouterr().err  # the option typed, not the field
    assert main(["stream", "--model", folder, wav, "--hangover-ms", "0"]) == 2
    assert "error: --hangover-ms must be > 0" in capsys.readouterr().err
    assert main(["stream", "--model", folder, str(tmp_path / "none.wav"), "--transcript", str(tmp_path / "t.txt")]) == 2
    assert "not found" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["stream", "--model", saved_folder("audio_student"), "--mic", "--duration", "1"]) == 2
    assert "sounddevice" in capsys.readouterr().err


def test_parser_and_module_entry_point():
    parser = build_parser()
    args = parser.parse_args(["stream", "--model", "m", "a.wav", "--realtime", "--hangover-ms", "300"])
    assert args.realtime and args.hangover_ms == 300 and args.input == "a.wav"
    assert args.vad == "silero" and args.asr is None and args.asr_language == "ko"
    args = parser.parse_args(["stream", "--model", "m", "a.wav", "--asr", "x", "--asr_engine", "faster-whisper",
                              "--vad", "energy", "--plot", "t.png", "--jsonl", "r.jsonl"])
    assert (args.asr_engine, args.vad, args.plot, args.jsonl) == ("faster-whisper", "energy", "t.png", "r.jsonl")
    with pytest.raises(SystemExit):
        parser.parse_args(["stream", "--model", "m", "a.wav", "--vad", "webrtc"])
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


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_model_folder_is_one_error_line(damage, tmp_path, wav, capsys):
    # issue 22.1/22.3/22.4: one `error:` line naming the file, rc 2 (today: tracebacks, a pickle loaded, a 2.3 GB
    # default model, or transformers' messages naming another file)
    folder = damaged_copy(saved_folder("teacher"), damage, tmp_path / damage)
    capsys.readouterr()  # (saving the shared model may print progress bars)
    assert main(["predict", "--model", folder, wav, "--text", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and DAMAGES[damage] in err and "Traceback" not in err


def test_text_with_invalid_utf8_is_an_error_line(wav, capsys):
    # issue 22.5: `--text $'a\xffb'` reaches Python as "a\udcffb" (surrogateescape); the tokenizer raised a TypeError
    model = saved_folder("teacher")
    capsys.readouterr()
    assert main(["predict", "--model", model, wav, "--text", "a\udcffb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input 0: the text cannot be encoded as UTF-8") and "Traceback" not in err
    assert main(["predict", "--model", model, wav, wav, "--text", "좋아요", "--text", "a\udcffb"]) == 1  # one skipped
    captured = capsys.readouterr()
    assert captured.err.startswith("error: input 1: the text cannot be encoded") and wav in captured.out


@pytest.mark.parametrize(("value", "message"), [("{tmp}/missing", "no such folder"), ("{tmp}", "not a model folder"),
                                                ("a/..", "nor a Hub repo id")])
def test_asr_folder_is_checked_before_anything_loads(value, message, tmp_path, wav, capsys, monkeypatch):
    # issue 22.2: a missing or empty --asr folder was sent to the Hub ("Repo id must be in the form ...")
    import multistill.cli as cli

    monkeypatch.setattr(cli, "load_models", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    value, model = value.format(tmp=tmp_path), saved_folder("teacher")
    capsys.readouterr()
    assert main(["predict", "--model", model, "--asr", value, wav]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --asr {value}") or err.startswith(f"error: --asr '{value}'")
    assert message in err and "Repo id must be in the form" not in err


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


# ------------------------------------------------------------------------------------------ speech recognition
def test_stream_real_speech_with_asr_plot_and_jsonl(tmp_path, capsys, monkeypatch):
    import matplotlib.image

    import multistill.asr
    import multistill.cli
    from multistill.asr import character_error_rate

    faster_whisper_asr()  # skips without the sample / whisper-base packages
    wav, _ = write_real_conversation(tmp_path)
    load_pipeline, given = multistill.cli.load_pipeline, []
    monkeypatch.setattr(multistill.cli, "load_pipeline", lambda model, device, trust, asr: given.append(asr) or
                        load_pipeline(model, device, trust, asr))
    load_asr, recognizers = multistill.asr.load_asr, []
    monkeypatch.setattr(multistill.asr, "load_asr", lambda *a, **k: recognizers.append(load_asr(*a, **k)) or
                        recognizers[-1])
    png, jsonl = tmp_path / "timeline.png", tmp_path / "results.jsonl"
    assert main(["stream", "--model", saved_folder("light_student"), wav, "--asr", "whisper-base", "--threads", "1",
                 "--plot", str(png), "--jsonl", str(jsonl)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    utterances = [line for line in lines if line.startswith("[")]
    assert len(utterances) == 3 and all("| asr: " in line and "ASR " in line for line in utterances)
    assert any(line.startswith("real-time factor (VAD + ASR + emotion model") for line in lines)
    assert any(line.startswith("stages: VAD (silero)") and "| ASR median" in line for line in lines)
    assert any("end of utterance to result: median" in line and "p90" in line for line in lines)
    assert any(line.startswith("early start: ") for line in lines)  # --early-ms 200 by default
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3 and all(r["text_source"] == "asr" and r["label"] for r in records)
    assert character_error_rate([t for _, t in SPEECH], [r["text"] for r in records])["cer"] < 0.35
    assert matplotlib.image.imread(png).shape[0] > 100 and "timeline:" in captured.err
    assert given == [None]  # the stream's session is the recognizer's one user: the pipeline gets no ASR
    assert [r.encoder_window_s for r in recognizers] == [10.0]  # faster-whisper's short window by default


def test_asr_window_default_and_errors(tmp_path, wav, capsys, monkeypatch):
    import argparse

    from _fixtures_speech import tiny_whisper_folder

    import multistill.cli as cli

    def args(window=None, engine=None):
        return argparse.Namespace(asr_window_s=window, asr_engine=engine)

    faster_whisper_asr()
    ct2 = cli.resolve_asr_model("whisper-base")
    assert cli.asr_window(args(), ct2) == 10.0 and cli.asr_window(args(30.0), ct2) == 30.0
    assert cli.asr_window(args(), ct2, live=False) is None  # predict: Whisper's own window unless asked
    assert cli.asr_window(args(), "openai/whisper-large-v3-turbo") is None
    assert cli.asr_window(args(engine="transformers"), ct2) is None

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(cli, "load_pipeline", must_not_load)
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--asr", tiny_whisper_folder(),
                 "--asr-window-s", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: An ASR encoder window of 10 s needs the faster-whisper engine") and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["stream", "--model", saved_folder("teacher"), wav, "--asr-window-s", "45"])
    assert "--asr-window-s/--asr_window_s: must be a number of seconds from 1 to 30, got '45'" in capsys.readouterr().err


def test_stream_warns_at_once_when_lines_and_utterances_differ(tmp_path, capsys, monkeypatch):
    import logging

    import multistill.live.streaming

    wav, transcript = write_real_conversation(tmp_path, lines=["하나", "둘", "셋", "넷", "다섯"])
    events = []

    class Recorder(logging.Handler):
        def emit(self, record):
            events.append(("warning", record.getMessage()))

    format_result = multistill.live.streaming.format_result
    monkeypatch.setattr(multistill.live.streaming, "format_result", lambda r, top=3: events.append(("result",)) or
                        format_result(r, top))
    handler = Recorder(level=logging.WARNING)
    logging.getLogger("multistill").addHandler(handler)
    try:
        assert main(["stream", "--model", saved_folder("teacher"), wav, "--transcript", transcript, "--no-warmup"]) == 0
    finally:
        logging.getLogger("multistill").removeHandler(handler)
    assert events[0][0] == "warning" and "has 5 lines (one per utterance) but the VAD finds 3 utterances" in events[0][1]
    assert [e[0] for e in events[1:4]] == ["result"] * 3
    assert "the last 2 lines were not used" in events[-1][1]
    assert len([line for line in capsys.readouterr().out.splitlines() if "| given: " in line]) == 3


def test_predict_with_asr(tmp_path, capsys, caplog, monkeypatch):
    import multistill.asr

    faster_whisper_asr()
    load_asr, windows = multistill.asr.load_asr, []
    monkeypatch.setattr(multistill.asr, "load_asr", lambda *a, **k: windows.append(k.get("encoder_window_s")) or
                        load_asr(*a, **k))
    name, gold = SPEECH[2]
    wav = str(speech_file(name))
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--asr", "whisper-base", "--json",
                 "--top-k", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text_source"] == "asr" and len(record["scores"]) == 2
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--asr", "whisper-base", "--text", gold]) == 0
    out = capsys.readouterr().out
    assert f"transcript (given): {gold}" in out and "neutral" in out
    assert main(["predict", "--model", saved_folder("audio_student"), wav, "--asr", "whisper-base", "--json"]) == 0
    captured = capsys.readouterr()
    assert "text_source" not in captured.out and "--asr is not used" in caplog.text
    assert windows and set(windows) == {None}  # predict keeps Whisper's 30 s window (stream: 10 s)


# --------------------------------------------------------------------------- bad-input sweep
@pytest.mark.parametrize(("option", "value"), [("--hangover-ms", "inf"), ("--threshold-db", "nan"),
                                               ("--chunk-ms", "0"), ("--chunk-ms", "nan"), ("--duration", "-5")])
def test_stream_numbers_must_be_finite_and_positive(option, value, capsys):
    # `--hangover-ms inf` was a traceback, `--threshold-db nan` silently found no speech, `--chunk-ms nan` gave
    # "cannot convert float NaN to integer" after the models loaded
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["stream", "--model", "m", "a.wav", option, value])
    assert exit_info.value.code == 2 and f"argument {option}: must be a" in capsys.readouterr().err


def _stream_argv(tmp_path, wav, *extra):
    transcript = tmp_path / "t.txt"
    transcript.write_text("a\n", encoding="utf-8")
    return ["stream", "--model", saved_folder("teacher"), wav, "--transcript", str(transcript), "--vad", "energy",
            *extra]


@pytest.mark.parametrize(("extra", "message"), [
    (["--jsonl", "{wav}"], "is an input file of this command"),
    (["--jsonl", "{tmp}/t.txt"], "is an input file of this command"),
    (["--jsonl", "{tmp}"], "is a folder"),
    (["--plot", "{tmp}"], "is a folder"),
    (["--plot", "{tmp}/timeline.xyz"], "give an image file name ending in one of"),
    (["--plot", "{tmp}/timeline"], "give an image file name ending in one of"),
    (["--plot", "{tmp}/a.png", "--jsonl", "{tmp}/a.png"], "are the same file"),
    (["--duration", "5"], "apply to --mic only"),
    (["--threshold-db", "10"], "--threshold-db must be <= 0 dBFS"),
])
def test_stream_outputs_are_checked_before_anything_loads(extra, message, tmp_path, wav, capsys, monkeypatch):
    # `--jsonl INPUT.wav` overwrote the input audio; `--jsonl FOLDER` was a traceback; a bad --plot name failed
    # (or was written under another name) only after the whole stream
    import multistill.cli as cli

    monkeypatch.setattr(cli, "load_models", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    before = Path(wav).read_bytes()
    argv = _stream_argv(tmp_path, wav, *[value.format(wav=wav, tmp=tmp_path) for value in extra])
    capsys.readouterr()  # the saved model folder is written on first use, with a progress bar
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert Path(wav).read_bytes() == before and (tmp_path / "t.txt").read_text(encoding="utf-8") == "a\n"


def test_stream_unwritable_output_folder(tmp_path, wav, capsys, monkeypatch):
    import multistill.training.arguments as arguments

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(arguments.tempfile, "TemporaryFile", refuse)
    assert main(_stream_argv(tmp_path, wav, "--jsonl", str(tmp_path / "r.jsonl"))) == 2
    assert f"error: --jsonl {tmp_path}: cannot write in {tmp_path} (Permission denied)." in capsys.readouterr().err


def test_mic_without_sounddevice_fails_before_loading(capsys, monkeypatch):
    import multistill.cli as cli

    monkeypatch.setitem(sys.modules, "sounddevice", None)
    monkeypatch.setattr(cli, "load_models", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    assert main(["stream", "--model", saved_folder("teacher"), "--mic", "--transcript", "x.txt"]) == 2
    assert "sounddevice" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["parent", "."])
def test_convert_refuses_an_out_dir_that_holds_the_source(out, tmp_path, capsys, monkeypatch):
    # `convert-whisper parent/src parent --overwrite` deleted the source (and everything else in parent);
    # `convert-gguf model.gguf . --overwrite` wiped the current folder, the GGUF included
    (tmp_path / "parent" / "src").mkdir(parents=True)
    (tmp_path / "parent" / "keep.txt").write_text("keep", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "parent" if out == "." else tmp_path)
    src = "src" if out == "." else "parent/src"
    assert main(["convert-whisper", src, out, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: OUT_DIR") and "holds the source" in err
    assert (tmp_path / "parent" / "src").is_dir() and (tmp_path / "parent" / "keep.txt").is_file()


def test_config_that_is_no_json_object_is_an_error_line(tmp_path, wav, capsys):
    (tmp_path / "config.json").write_text("[1]", encoding="utf-8")
    assert main(["predict", "--model", str(tmp_path), wav, "--text", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot load the model") and "Traceback" not in err


def test_an_asr_folder_that_is_no_asr_model_is_one_line(tmp_path, wav, capsys, monkeypatch):
    # `--asr EMOTION_MODEL_FOLDER`: transformers' message held the traceback of every ASR class it tried
    import multistill.asr as asr

    def refuse(*args, **kwargs):
        raise ValueError("Cannot load the speech-recognition model 'm' (transformers): Could not load model m with "
                         "any of the following classes: (A, B). See the original errors:\n\nwhile loading with A, an "
                         "error is thrown:\nTraceback (most recent call last):\n  File x\nValueError: Unrecognized")

    monkeypatch.setattr(asr, "load_asr", refuse)
    assert main(["predict", "--model", saved_folder("teacher"), wav, "--asr", saved_folder("teacher")]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line == ("error: Cannot load the speech-recognition model 'm' (transformers): it is not a speech-recognition "
                    "model (no automatic-speech-recognition class loads it).")
    assert "Traceback" not in err


def test_convert_whisper_names_a_source_that_is_a_file(tmp_path, capsys):
    # it said "does not exist" of a file that does
    (tmp_path / "real.wav").write_bytes(b"RIFF")
    assert main(["convert-whisper", str(tmp_path / "real.wav"), str(tmp_path / "out")]) == 2
    assert f"error: SRC_DIR {tmp_path / 'real.wav'} is a file; give the CTranslate2 Whisper folder" in (
        capsys.readouterr().err)


def test_an_output_file_in_a_missing_folder_passes_only_where_the_command_creates_it(tmp_path):
    from multistill.cli import check_output_file
    from multistill.training.arguments import UsageError

    path = str(tmp_path / "new" / "deeper" / "r.json")
    check_output_file(path, "--output_json", create_folder=True)
    # a UsageError, which scripts run by run_script print as one error line (no conversion in each script)
    with pytest.raises(UsageError, match="the folder .*/new/deeper does not exist"):
        check_output_file(path, "--output_json")
    assert not (tmp_path / "new").exists()

