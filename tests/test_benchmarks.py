"""Smoke test of ``benchmarks/benchmark.py`` in ``--quick`` mode (tiny configs; no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "benchmark.py"
MODELS = ["teacher", "multimodal_student", "text_student", "audio_student", "light_student"]
HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))

pytest.importorskip("multistill.modeling_multistill")


def _run(args: list[str], out: Path, name: str) -> tuple[dict[str, Any], str, subprocess.CompletedProcess[str]]:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--output_dir", str(out), "--name", name, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / f"{name}.json").read_text()), (out / f"{name}.md").read_text(), proc


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """One in-process quick run: every model, int8 (+ ONNX when installed) for two students, training."""
    out = tmp_path_factory.mktemp("bench")
    args = ["--in_process", "--int8", "--variant_models", "multimodal_student", "light_student"]
    if HAS_ONNX:
        args.append("--onnx")
    res, md, proc = _run(args, out, "quick")
    return res, md, proc.stdout


def test_every_model_has_positive_latencies_and_ratios(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    assert res["errors"] == []
    base = [r for r in res["latency"] if r["variant"] == "fp32"]
    assert {r["model"] for r in base} == set(MODELS)
    settings = res["settings"]
    assert len(base) == len(MODELS) * len(settings["batch_sizes"]) * len(settings["audio_seconds"])
    for r in base:
        assert r["e2e"]["median_ms"] > 0 and r["e2e"]["p90_ms"] >= r["e2e"]["min_ms"] > 0
        assert r["per_utterance_ms"] > 0 and r["rtf"] > 0
        assert r["speedup_vs_teacher"] > 0
        assert r["memory"]["peak_mb"] > 0
        assert r["split"]["fusion_ms"] > 0
        info = res["models"][r["model"]]
        assert ("audio_encoder_ms" in r["split"]) == info["uses_audio"]
        assert ("text_encoder_ms" in r["split"]) == info["uses_text"]
    assert all(r["speedup_vs_teacher"] == 1.0 for r in base if r["model"] == "teacher")
    for name in MODELS:
        assert res["models"][name]["params"]["total"] > 0
    assert res["headline"]["speedup"] > 0
    assert res["machine"]["cpu"] and res["machine"]["torch"]


def test_int8_and_onnx_variants_agree_with_pytorch(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    int8 = [r for r in res["latency"] if r["variant"] == "int8"]
    assert {r["model"] for r in int8} == {"multimodal_student", "light_student"}
    for r in int8:
        assert r["e2e"]["median_ms"] > 0 and r["speedup_vs_teacher"] > 0
        assert r["check"]["n"] == r["batch_size"]
    if not HAS_ONNX:
        pytest.skip("onnx / onnxruntime / onnxscript not installed")
    onnx_rows = [r for r in res["latency"] if r["variant"] == "onnx"]
    assert {r["model"] for r in onnx_rows} == {"multimodal_student", "light_student"}
    for r in onnx_rows:
        assert r["check"]["argmax_match"] == r["check"]["n"]
        assert r["check"]["max_abs_logit_diff"] < 1e-3
        assert r["e2e"]["median_ms"] > 0


def test_training_throughput(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    modes = {(r["model"], r["mode"]): r for r in res["training"]}
    assert {("teacher", "cached"), ("teacher", "encoders"), ("light_student", "encoders")} <= set(modes)
    assert all(r["examples_per_s"] > 0 for r in res["training"])
    assert modes[("light_student", "encoders")]["encoders_trainable"]


def test_markdown_report(quick: tuple[dict[str, Any], str, str]) -> None:
    res, md, stdout = quick
    assert "**Machine:**" in md and res["machine"]["torch"] in md
    assert "## End-to-end latency" in md and "## Where the time goes" in md and "## Training throughput" in md
    assert "Light student vs teacher" in md
    for name in MODELS:
        assert f"| {name} | fp32 |" in md
    assert "## Variants" in md
    assert md.strip() in stdout  # printed too


def test_subprocess_isolation_and_skips(tmp_path: Path) -> None:
    """Default mode runs each job in its own process; --max_call_s skips configs estimated too slow."""
    res, md, _ = _run(
        ["--models", "light_student", "--train_models", "--batch_sizes", "1", "64", "--audio_seconds", "1",
         "--max_call_s", "1e-6"],
        tmp_path,
        "iso",
    )
    rows = res["latency"]
    assert rows[0]["e2e"]["median_ms"] > 0 and rows[0]["speedup_vs_teacher"] is None  # no teacher in the run
    assert "skipped" in rows[1] and "skipped" in md
    assert res["headline"] is None


def test_help() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for opt in ("--models", "--batch_sizes", "--audio_seconds", "--text_tokens", "--repeats", "--warmup",
                "--quick", "--int8", "--compile", "--onnx", "--device", "--threads", "--output_dir"):
        assert opt in proc.stdout


def test_stream_rtf_quick(tmp_path: Path) -> None:
    """``benchmarks/stream_rtf.py --quick``: a tiny light student and teacher stream a short conversation."""
    script = ROOT / "benchmarks" / "stream_rtf.py"
    cmd = [sys.executable, str(script), "--quick", "--threads", "1", "--models", "light_student", "teacher",
           "--output_dir", str(tmp_path), "--name", "stream"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads((tmp_path / "stream.json").read_text(encoding="utf-8"))
    md = (tmp_path / "stream.md").read_text(encoding="utf-8")
    expected = res["conversation"]["utterances"]
    assert expected >= 2 and res["settings"]["quick"]
    assert [(r["model"], r["threads"]) for r in res["runs"]] == [("light_student", 1), ("teacher", 1)]
    for r in res["runs"]:
        assert r["utterances"] == expected and r["errors"] == 0  # the VAD finds every utterance
        assert r["audio_s"] == pytest.approx(res["conversation"]["audio_s"], abs=0.1)
        assert 0 < r["compute_s"] and 0 < r["rtf"] < 1
        assert 0 < r["latency"]["median_s"] <= r["latency"]["max_s"]
        assert r["latency"]["end_of_speech_mean_s"] > r["latency"]["mean_s"]  # + the 500 ms hangover
        assert r["speedup_vs_teacher"] > 0 and len(r["results"]) == expected
    assert res["runs"][1]["rtf_vs_teacher"] == 1.0
    assert "**Machine:**" in md and "**Other load:**" in md and res["machine"]["torch"] in md
    assert "| light_student | 1 |" in md and "| teacher | 1 |" in md
    assert md.strip() in proc.stdout
