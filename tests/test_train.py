"""train.py end to end: outputs, reloading, determinism, resuming a killed run, real data, bad arguments."""

from __future__ import annotations

import json
import os
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
    assert info["parameters"]["trainable"] < info["parameters"]["total"]  # encoders frozen


def test_saved_teacher_reloads_and_reproduces_its_test_predictions(trained_teacher: Path, training_cache: Path):
    from transformers import AutoModelForAudioClassification, AutoProcessor

    from multistill.data import load_kemdy

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
                "4", *FAST_TRAINING])
    first = json.loads((trained_teacher / "test_results.json").read_text())
    second = json.loads((tmp_path / "test_results.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "test_unweighted_accuracy", "test_loss"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key


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
    """One epoch of the paper's random split on Session 01 of both corpora (792 real utterances)."""
    import train

    train.main(["--output_dir", str(tmp_path), "--corpus", "all", "--data_dir", str(sample_dir), "--split", "random",
                "--data_cache_dir", str(training_cache), "--num_train_epochs", "1", "--per_device_eval_batch_size",
                "64", *FAST_TRAINING])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"]["train"]["examples"] + metrics["data"]["validation"]["examples"] <= 634
    assert metrics["data"]["test"]["examples"] == 159  # 20 % of 792, as train_test_split rounds
    # Balancing capped neutral at 60 % of the training split.
    after = metrics["data"]["balancing"]["after"]
    assert after["neutral"] <= 0.6 * sum(after.values()) + 1


def test_bad_arguments_fail_clearly(training_cache: Path, tmp_path: Path):
    import train

    with pytest.raises(ValueError, match="needs data_dir"):
        train.main(["--output_dir", str(tmp_path), "--corpus", "kemdy19", "--use_cpu"])
    with pytest.raises(ValueError, match="no complete checkpoint"):
        train.main(["--output_dir", str(tmp_path), "--resume_from_checkpoint", "latest", "--use_cpu",
                    "--data_cache_dir", str(training_cache)])
    with pytest.raises(SystemExit):
        train.parse_args(["--preset", "giant_teacher"])
