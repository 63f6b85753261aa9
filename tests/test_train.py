"""train.py end to end: outputs, reloading, determinism, resuming a killed run, real data, bad arguments."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FAST_TRAINING, REPO_ROOT


def test_train_writes_a_complete_run(trained_teacher: Path):
    for name in ("config.json", "model.safetensors", "processor_config.json", "metrics.json", "test_results.json",
                 "run_info.json", "test_predictions.json", "confusion_matrix.png", "training_curves.png"):
        assert (trained_teacher / name).exists(), name
    metrics = json.loads((trained_teacher / "metrics.json").read_text())
    test = metrics["test"]
    for key in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "weighted_precision", "f1_neutral"):
        assert 0.0 <= test[key] <= 1.0, key
    assert np.asarray(test["confusion_matrix"]).sum() == metrics["data"]["test"]["examples"]
    # Session split: no session (hence no speaker or dialogue) on two sides.
    sessions = {name: set(metrics["data"][name]["sessions"]) for name in ("train", "validation", "test")}
    assert not sessions["train"] & sessions["test"] and not sessions["validation"] & sessions["test"]
    state = json.loads((trained_teacher / "trainer_state.json").read_text())
    assert [e["epoch"] for e in state["log_history"] if "eval_macro_f1" in e] == [1.0, 2.0, 3.0, 4.0]
    assert state["best_metric"] == max(e["eval_macro_f1"] for e in state["log_history"] if "eval_macro_f1" in e)
    assert "multimodal-emotion-recognition" in json.loads((trained_teacher / "config.json").read_text())[
        "custom_pipelines"]
    assert (trained_teacher / "pipeline_multistill.py").exists()
    info = json.loads((trained_teacher / "run_info.json").read_text())
    assert info["preset"] == "teacher" and info["cached_encoder_features"] is True
    assert info["cached_modalities"] == ["audio", "text"] and info["utterances_encoded"] > 0
    assert info["parameters"]["trainable"] < info["parameters"]["total"]  # encoders frozen
    # Every split parameter, and the sessions/dialogues held out, are recorded.
    assert {k: info[k] for k in ("split", "split_seed", "test_fraction", "validation_fraction", "validation_from")} == {
        "split": "session", "split_seed": 123, "test_fraction": 0.2, "validation_fraction": 0.1,
        "validation_from": "sessions"}
    assert info["held_out"]["test"]["sessions"] == sorted(sessions["test"])
    # data_splits.json: the ids of each split, for baselines and for distill.py's check of the teacher.
    ids = json.loads((trained_teacher / "data_splits.json").read_text())
    assert {name: len(rows) for name, rows in ids.items()} == {
        name: metrics["data"][name]["examples"] for name in ("train", "validation", "test")}
    assert [p["id"] for p in json.loads((trained_teacher / "test_predictions.json").read_text())] == ids["test"]


def test_saved_teacher_reloads_and_reproduces_its_test_predictions(trained_teacher: Path, training_cache: Path):
    from transformers import AutoModelForAudioClassification, AutoProcessor

    from multistill.training.data import load_kemdy

    model = AutoModelForAudioClassification.from_pretrained(trained_teacher, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(trained_teacher, trust_remote_code=True)
    predictions = json.loads((trained_teacher / "test_predictions.json").read_text())[:4]
    dataset = load_kemdy("synthetic", cache_dir=training_cache)
    index = {key: i for i, key in enumerate(dataset["id"])}
    rows = [dataset[index[p["id"]]] for p in predictions]
    inputs = processor(audio=[r["audio"] for r in rows], text=[r["text"] for r in rows], return_tensors="pt")
    inputs.pop("token_type_ids", None)
    with torch.inference_mode():
        scores = torch.softmax(model(**inputs).logits, -1).numpy()
    np.testing.assert_allclose(scores, [p["scores"] for p in predictions], atol=2e-3)
    # The folder train.py wrote is directly usable with pipeline().
    from transformers import pipeline

    classifier = pipeline("multimodal-emotion-recognition", model=str(trained_teacher), trust_remote_code=True)
    best = classifier({"audio": rows[0]["audio"]["array"], "sampling_rate": rows[0]["audio"]["sampling_rate"],
                       "text": rows[0]["text"]}, top_k=1)
    assert best[0]["label"] == predictions[0]["predicted"]


def test_same_seed_gives_the_same_metrics(trained_teacher: Path, tmp_path: Path):
    """A fresh cache (corpus, tokenizer, tiny encoders, features rebuilt) and the same seed: the same metrics."""
    import train

    train.main(["--output_dir", str(tmp_path), "--data_cache_dir", str(tmp_path / "cache"), "--num_train_epochs",
                "4", "--threads", "1", *FAST_TRAINING])
    first = json.loads((trained_teacher / "test_results.json").read_text())
    second = json.loads((tmp_path / "test_results.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "test_unweighted_accuracy", "test_loss"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
    assert json.loads((tmp_path / "run_info.json").read_text())["threads"] == 1 and torch.get_num_threads() == 1


def _latest_checkpoint_step(folder: Path) -> int:
    steps = [int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(steps, default=0)


def test_a_killed_run_resumes_and_finishes(training_cache: Path, tmp_path: Path):
    output_dir = tmp_path / "run"
    arguments = [sys.executable, str(REPO_ROOT / "train.py"), "--output_dir", str(output_dir),
                 "--data_cache_dir", str(training_cache), "--num_train_epochs", "12", "--save_strategy", "steps",
                 "--save_steps", "4", "--eval_strategy", "steps", "--eval_steps", "4",
                 "--use_cpu", "--disable_tqdm", "true", "--learning_rate", "3e-3",
                 "--per_device_train_batch_size", "4", "--save_total_limit", "2"]
    total_steps = 12 * 16  # 64 training utterances / batch 4 per epoch
    process = subprocess.Popen(arguments, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while _latest_checkpoint_step(output_dir) < 8 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed:\n" + process.stdout.read().decode()[-3000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = _latest_checkpoint_step(output_dir)
    assert 8 <= killed_at < total_steps
    assert not (output_dir / "model.safetensors").exists()

    resumed = subprocess.run(arguments + ["--resume_from_checkpoint", "latest"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == total_steps
    # The resumed run did not start over: its first logged step comes after the checkpoint.
    assert min(e["step"] for e in state["log_history"] if "loss" in e) > 0
    assert (output_dir / "model.safetensors").exists() and (output_dir / "test_results.json").exists()
    from multistill import MultiStillForEmotionClassification

    MultiStillForEmotionClassification.from_pretrained(output_dir)


def test_train_on_the_real_sample(sample_dir: Path, training_cache: Path, tmp_path: Path):
    """One epoch on Session 01 of both corpora (792 real utterances), split by dialogue: the sample has one
    session per corpus. No dialogue is on two sides, and data_splits.json lists every utterance once."""
    import train

    train.main(["--output_dir", str(tmp_path), "--corpus", "all", "--data_dir", str(sample_dir), "--split", "dialogue",
                "--data_cache_dir", str(training_cache), "--num_train_epochs", "1", "--per_device_eval_batch_size",
                "64", *FAST_TRAINING])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    dialogues = {name: set(metrics["data"][name]["dialogues"]) for name in ("train", "validation", "test")}
    assert not dialogues["train"] & dialogues["test"] and not dialogues["train"] & dialogues["validation"]
    assert not dialogues["validation"] & dialogues["test"]
    assert len(dialogues["test"]) == 4 and len(dialogues["validation"]) == 2  # 2 + 2 and 1 + 1 of 10 + 6
    ids = json.loads((tmp_path / "data_splits.json").read_text())
    assert {name: len(rows) for name, rows in ids.items()} == {
        name: metrics["data"][name]["examples"] for name in ("train", "validation", "test")}
    assert len(set(ids["train"]) | set(ids["validation"]) | set(ids["test"])) == sum(len(v) for v in ids.values())
    # Balancing capped neutral at 60 % of the training split (70 % of the sample is neutral).
    after = metrics["data"]["balancing"]["after"]
    assert after["neutral"] <= 0.6 * sum(after.values()) + 1
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["split"] == "dialogue" and info["split_seed"] == 123
    assert info["held_out"]["test"]["dialogues"] == sorted(dialogues["test"])


@pytest.mark.parametrize("refit_epochs", ["best", "all"])
def test_refit_on_validation_trains_on_training_and_validation_rows(refit_epochs: str, training_cache: Path,
                                                                    tmp_path: Path):
    """--refit_on_validation: a fresh model on training + validation rows, for the best epoch count on validation
    or (--refit_epochs all, the recipe's, with --fusion_size linear and --l2_penalty) for every epoch with no
    validation run; there with two previous utterances as context, the recipe's decayed sum)."""
    import train

    context = ["--context_size", "2"] if refit_epochs == "all" else []
    train.main(["--output_dir", str(tmp_path), "--data_cache_dir", str(training_cache), "--num_train_epochs", "3",
                "--refit_on_validation", "true", "--refit_epochs", refit_epochs, "--fusion_size", "linear",
                "--l2_penalty", "1", "--lr_scheduler_type", "constant", "--max_grad_norm", "0", *context,
                *FAST_TRAINING])
    info = json.loads((tmp_path / "run_info.json").read_text())
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = metrics["data"]["train"]["examples"] + metrics["data"]["validation"]["examples"]
    if refit_epochs == "all":
        assert info["refit_epochs"] == 3
    else:
        assert 1 <= info["refit_epochs"] <= 3
    assert state["global_step"] == info["refit_epochs"] * -(-rows // state["train_batch_size"])
    assert not any("eval_macro_f1" in entry for entry in state["log_history"])  # the refit is not validated
    from multistill import MultiStillForEmotionClassification

    model = MultiStillForEmotionClassification.from_pretrained(tmp_path)
    assert model.config.classifier_hidden_size == 0 and model.classifier.dense is None
    assert model.config.classifier_dropout == 0.0  # the linear head is regularised by the L2 penalty alone
    assert (model.config.context_size, model.config.context_type) == ((2, "decayed_sum") if context else (0, "decayed_sum"))


def test_encoders_are_chosen_per_modality(training_cache: Path, tmp_path: Path):
    """--audio_encoder FOLDER --text_encoder tiny: a saved encoder for audio, a tiny one built from the training
    transcripts for text; the fusion head is tiny because one encoder is."""
    import dataclasses

    import train
    from multistill import MultiStillForEmotionClassification
    from multistill.configuration_multistill import MultiStillConfig
    from multistill.offline import build_tiny_encoders
    from multistill.training.arguments import UsageError

    audio = build_tiny_encoders(tmp_path / "encoders", seed=3)["audio"]
    arguments = ["--output_dir", str(tmp_path / "run"), "--data_cache_dir", str(training_cache), "--max_steps", "2",
                 "--audio_encoder", audio, "--text_encoder", "tiny", "--freeze_text_encoder", "false", *FAST_TRAINING]
    if "freeze_audio_encoder" not in {f.name for f in dataclasses.fields(MultiStillConfig)}:
        # A config without per-modality freezing refuses one flag alone, before loading anything.
        with pytest.raises(UsageError, match="freezes both encoders together"):
            train.main(arguments)
        arguments = arguments[: arguments.index("--freeze_text_encoder")] + arguments[
            arguments.index("--freeze_text_encoder") + 2:]
    train.main(arguments)
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert (info["audio_encoder"], info["text_encoder"]) == (audio, "tiny")
    assert info["backbones"] == "mixed" and info["fusion_size"] == "tiny"
    model = MultiStillForEmotionClassification.from_pretrained(tmp_path / "run")
    assert model.config.audio_encoder_name == audio and model.config.hidden_size == 32
    if "--freeze_text_encoder" in arguments:  # the text encoder trains, so only audio is cached
        assert info["cached_modalities"] == ["audio"]
        assert all(p.requires_grad for p in model.multistill.text_encoder.parameters())
    else:
        assert info["cached_modalities"] == ["audio", "text"]


def test_a_converted_gguf_text_model_is_the_text_encoder(tmp_path: Path):
    """--text_encoder FOLDER written by ``multistill convert-gguf``: frozen and cached like any pretrained text
    encoder; the saved teacher holds the text model (no GGUF needed to load it) and predicts from Korean text.
    Its own cache: the feature cache is keyed by encoder, not by pooling, so the shared cache's frame features of
    the same tiny audio encoder (cross-attention runs) would be read as layer statistics."""
    pytest.importorskip("gguf")
    from _fixtures_gguf import write_gguf

    import train
    from multistill import MultiStillForEmotionClassification, MultiStillProcessor
    from multistill.tools.gguf_text import convert_gguf_text_encoder

    encoder = convert_gguf_text_encoder(write_gguf(tmp_path / "tiny-gemma3.gguf"), tmp_path / "gemma-hf")
    train.main(["--output_dir", str(tmp_path / "run"), "--data_cache_dir", str(tmp_path / "cache"), "--max_steps", "2",
                "--audio_encoder", "tiny", "--text_encoder", str(encoder), "--fusion_type", "concat",
                *FAST_TRAINING])
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["text_encoder"] == str(encoder) and info["cached_modalities"] == ["audio", "text"]
    model = MultiStillForEmotionClassification.from_pretrained(tmp_path / "run").eval()
    processor = MultiStillProcessor.from_pretrained(tmp_path / "run")
    assert model.config.text_config.model_type == "gemma3_text"
    inputs = processor(audio=[np.zeros(16000, dtype=np.float32)], sampling_rate=16000, text=["오늘 정말 기분이 좋아"],
                       return_tensors="pt")
    with torch.no_grad():
        assert model(**inputs).logits.shape == (1, model.config.num_labels)


@pytest.mark.parametrize(("content", "message"), [
    (b"not a model", "--text_encoder {path}: not a GGUF file"),
    ("clip", "--text_encoder {path}: a GGUF of a 'clip' model, not a text model"),
    ("gemma3", "--text_encoder {path} is a GGUF file; give a model folder or a Hub repo id (a GGUF text model "
               "becomes a text encoder folder with: multistill convert-gguf {path} OUT_DIR)"),
])
def test_a_gguf_file_is_refused_before_loading_anything(content, message: str, tmp_path: Path):
    pytest.importorskip("gguf")
    from _fixtures_gguf import write_gguf

    import train
    from multistill.training.arguments import UsageError

    path = tmp_path / "model.gguf"
    path.write_bytes(content) if isinstance(content, bytes) else write_gguf(path, architecture=content)
    with pytest.raises(UsageError, match=re.escape(message.format(path=path))):
        train.main(["--output_dir", str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"), "--use_cpu",
                    "--text_encoder", str(path)])
    assert _no_data_loaded(tmp_path / "cache")


def _no_data_loaded(cache: Path) -> bool:
    return not (cache / "datasets").exists() and not (cache / "encoder_features").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--num_train_epochs", "0"], "train zero steps"),
    (["--max_steps", "0"], "train zero steps"),
    (["--max_train_samples", "0"], "would train on nothing"),
    (["--learning_rate=-1e-3"], "--learning_rate must be > 0"),
    (["--learning_rate", "nan"], "--learning_rate must be > 0"),
    (["--audio_encoder", "/no/such/encoder"], "--audio_encoder /no/such/encoder: no such folder"),
    (["--text_encoder", "./missing"], "--text_encoder ./missing: no such folder"),
    (["--split", "dialogue", "--test_sessions", "3"], "--test_sessions only applies to --split session"),
    (["--validation_fraction", "1.5"], "--validation_fraction must be a fraction"),
    (["--corpus", "kemdy19"], "--corpus kemdy19 needs --data_dir FOLDER"),
    (["--learnig_rate", "1e-3"], "unrecognized arguments: --learnig_rate 1e-3"),  # a typo was a ValueError traceback
    # a folder without the corpus (e.g. KEMDy19/ itself) was a FileNotFoundError traceback once the data loaded
    (["--corpus", "kemdy19", "--data_dir", "{tmp}"], "--data_dir {tmp}: Missing {tmp}/KEMDy19: data_dir must hold"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--l2_penalty=-1"], "--l2_penalty must be >= 0"),
    (["--audio_weight", "0"], "--audio_weight must be in \\(0, 100\\]"),
    (["--audio_weight", "2"], "--audio_weight 2 scales the pooled audio branch of --fusion_type concat; this teacher "
                              "fuses by cross_attention"),
    (["--audio_layer_mix", "last"], "--audio_layer_mix last chooses the layers of the pooled audio branch of "
                                    "--fusion_type concat; this teacher fuses by cross_attention"),
    (["--refit_epochs", "some"], "--refit_epochs must be 'best' or 'all', got 'some'"),
    (["--text_column", "asr_text"], "made by a speech recognizer: add --asr_model"),
    (["--test_text_columns", "asr_text"], "made by a speech recognizer: add --asr_model"),
    (["--test_text_columns", "text"], "a column is named twice or is --text_column"),
    (["--asr_model", "/no/such/whisper"], "--asr_model /no/such/whisper: no such folder"),
    (["--asr_engine", "faster-whisper"], "--asr_engine needs --asr_model"),
    # issue 22.2: an empty --asr_model folder is named (today: sent to the Hub after the data loaded)
    (["--asr_model", "{tmp}"], "--asr_model {tmp}: not a model folder"),
    # issue 22.11: an output folder that cannot be written is refused at parsing (today: after the caching)
    (["--output_dir", "/proc/multistill-run"], "--output_dir /proc/multistill-run: cannot write in /proc"),
    (["--output_dir", "{tmp}/a_file/run"], "--output_dir {tmp}/a_file/run: {tmp}/a_file is a file"),
])
def test_bad_arguments_fail_before_loading_anything(arguments: list[str], message: str, tmp_path: Path):
    import train
    from multistill.training.arguments import UsageError

    (tmp_path / "a_file").write_text("")
    arguments, message = [a.format(tmp=tmp_path) for a in arguments], message.format(tmp=tmp_path)
    with pytest.raises(UsageError, match=message):
        train.main(["--output_dir", str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"), "--use_cpu",
                    *arguments])
    assert _no_data_loaded(tmp_path / "cache")


def test_a_second_run_into_the_same_output_dir_is_refused(tmp_path: Path):
    # issue 22.12: two runs into one --output_dir mixed their checkpoints without a word
    import fcntl

    import train
    from multistill.training.arguments import UsageError

    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".multistill.lock", "a+") as running:  # what a running train.py holds
        running.write("pid 12345 on host\n")
        running.flush()
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UsageError, match=r"--output_dir .*out: another run is writing there \(pid 12345"):
            train.main(["--output_dir", str(tmp_path / "out"), "--data_cache_dir", str(tmp_path / "cache"),
                        "--use_cpu"])
    assert _no_data_loaded(tmp_path / "cache")


def test_an_encoder_folder_without_config_is_refused(tmp_path: Path):
    import train
    from multistill.training.arguments import UsageError

    (tmp_path / "ct2").mkdir()
    (tmp_path / "ct2" / "model.bin").write_bytes(b"")
    with pytest.raises(UsageError, match="has no config.json"):
        train.main(["--output_dir", str(tmp_path / "out"), "--audio_encoder", str(tmp_path / "ct2"), "--use_cpu"])


def test_usage_errors_are_error_lines_not_tracebacks(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), "--output_dir", str(tmp_path),
                             "--learning_rate", "-1", "--use_cpu"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "train.py: error: --learning_rate must be > 0, got -1.0." in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_data_choices_fail_clearly(training_cache: Path, tmp_path: Path):
    import train
    from multistill.training.arguments import UsageError

    with pytest.raises(UsageError, match="no complete checkpoint"):
        train.main(["--output_dir", str(tmp_path), "--resume_from_checkpoint", "latest", "--use_cpu",
                    "--data_cache_dir", str(training_cache)])
    with pytest.raises(UsageError, match="--text_column whisper_text: the dataset has no such column"):
        train.main(["--output_dir", str(tmp_path), "--text_column", "whisper_text", "--use_cpu",
                    "--data_cache_dir", str(training_cache)])
    with pytest.raises(UsageError, match="needs at least 5 sessions of KEMDy19"):
        train.main(["--output_dir", str(tmp_path), "--test_fraction", "0.5", "--validation_fraction", "0.3",
                    "--use_cpu", "--data_cache_dir", str(training_cache)])
    with pytest.raises(SystemExit):
        train.parse_args(["--preset", "giant_teacher"])


def test_asr_transcripts_train_and_test(training_cache: Path, tmp_path: Path):
    """--asr_model adds an asr_text column (datasets.map, cached); --test_text_columns tests the final model on
    it too; --text_column asr_text trains on it. A tiny random Whisper stands in for a real recognizer."""
    import dataclasses

    from _fixtures_speech import tiny_whisper_folder

    import train
    from multistill.training.arguments import DataArguments, MultiStillTrainingArguments
    from multistill.training.workflow import load_corpus, prepare_splits

    whisper = tiny_whisper_folder()
    data_args = DataArguments(data_cache_dir=str(training_cache), asr_model=whisper, text_column="asr_text",
                              test_text_columns=["text"])
    training_args = MultiStillTrainingArguments(output_dir=str(tmp_path / "unused"), use_cpu=True)
    corpus = load_corpus(data_args)
    asr, gold = dict(zip(corpus["id"], corpus["asr_text"], strict=True)), dict(zip(corpus["id"], corpus["text"],
                                                                                 strict=True))
    assert asr != gold
    splits, report = prepare_splits(data_args, training_args)
    assert set(splits) == {"train", "validation", "test", "test_on_text"}
    for name in ("train", "validation", "test"):  # the models read `text`: here the recognizer's transcripts
        assert splits[name]["text"] == [asr[i] for i in splits[name]["id"]]
    assert splits["test_on_text"]["id"] == splits["test"]["id"]
    assert splits["test_on_text"]["text"] == [gold[i] for i in splits["test"]["id"]]
    assert report["text_columns"] == {"train": "asr_text", "test": ["asr_text", "text"]}

    # Trained on the corpus's transcripts, tested on both.
    train.main(["--output_dir", str(tmp_path / "gold"), "--data_cache_dir", str(training_cache), "--max_steps", "2",
                "--asr_model", whisper, "--test_text_columns", "asr_text", *FAST_TRAINING])
    metrics = json.loads((tmp_path / "gold" / "metrics.json").read_text())
    assert set(metrics["test_by_text_column"]) == {"text", "asr_text"}
    assert metrics["test_by_text_column"]["text"] == metrics["test"]
    on_asr = json.loads((tmp_path / "gold" / "test_on_asr_text_predictions.json").read_text())
    on_gold = json.loads((tmp_path / "gold" / "test_predictions.json").read_text())
    assert [p["id"] for p in on_asr] == [p["id"] for p in on_gold]
    assert [p["scores"] for p in on_asr] != [p["scores"] for p in on_gold]  # other transcripts, other scores
    info = json.loads((tmp_path / "gold" / "run_info.json").read_text())
    assert (info["asr_model"], info["text_column"], info["test_text_columns"]) == (whisper, "text", ["asr_text"])
    assert dataclasses.asdict(data_args)["asr_model"] == whisper  # the arguments were not changed on the way


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 210752 vs 210644"),
    OSError(28, "No space left on device"),
])
def test_a_full_disk_is_one_error_and_the_half_written_checkpoint_goes(error: Exception, tmp_path: Path):
    # issue 22.10: a full disk was torch's "unexpected pos 210752 vs 210644" and a half-written checkpoint stayed
    from types import SimpleNamespace

    from multistill.training.arguments import UsageError
    from multistill.training.workflow import latest_complete_checkpoint, train_model

    complete, partial = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    for folder in (complete, partial):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
    (complete / "trainer_state.json").write_text("{}")

    def train(resume_from_checkpoint=None):
        raise error

    trainer = SimpleNamespace(args=SimpleNamespace(output_dir=str(tmp_path)), train=train)
    with pytest.raises(UsageError, match=rf"No space left on device: {tmp_path} .*removed the half-written "
                                         r"checkpoint-4\). .*--resume_from_checkpoint latest"):
        train_model(trainer, None)
    assert complete.is_dir() and not partial.exists()
    assert latest_complete_checkpoint(tmp_path) == str(complete)
    trainer.train = lambda resume_from_checkpoint=None: (_ for _ in ()).throw(RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):  # other errors are not disguised
        train_model(trainer, None)
