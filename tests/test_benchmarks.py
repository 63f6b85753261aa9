"""``benchmarks/benchmark.py`` in ``--quick`` mode (tiny configs): ratios pair like with like, int8 is really int8,
rounds merge into medians with a spread. No assertion on how fast anything is."""

from __future__ import annotations

import importlib.util
import json
import os
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

from _fixtures_speech import SAMPLE_DIR  # noqa: E402


def _run(args: list[str], out: Path, name: str) -> tuple[dict[str, Any], str, subprocess.CompletedProcess[str]]:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--output_dir", str(out), "--name", name, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / f"{name}.json").read_text()), (out / f"{name}.md").read_text(), proc


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """One in-process quick run: every model, int8 (+ ONNX when installed) for two students, training."""
    out = tmp_path_factory.mktemp("bench")
    args = ["--in_process", "--int8", "--variant_models", "teacher", "multimodal_student", "light_student"]
    if HAS_ONNX:
        args.append("--onnx")
    res, md, proc = _run(args, out, "quick")
    return res, md, proc.stdout


def test_every_model_is_measured_and_ratios_pair_like_with_like(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    assert res["errors"] == []
    base = [r for r in res["latency"] if r["variant"] == "fp32"]
    assert {r["model"] for r in base} == set(MODELS)
    settings = res["settings"]
    assert len(base) == len(MODELS) * len(settings["batch_sizes"]) * len(settings["audio_seconds"])
    medians = {(r["model"], r["variant"], r["batch_size"], r["audio_seconds"]): r["e2e"]["median_ms"]
               for r in res["latency"]}
    for r in res["latency"]:
        assert r["e2e"]["p90_ms"] >= r["e2e"]["min_ms"] and r["e2e"]["n"] >= 1 and r["e2e"]["rounds"] == 1
        assert r["e2e"]["spread_ms"][0] == r["e2e"]["min_ms"]  # one round: min-max of the timed calls
        assert r["e2e"]["spread_ms"][0] <= r["e2e"]["median_ms"] <= r["e2e"]["spread_ms"][1]
        where = (r["batch_size"], r["audio_seconds"])
        same = medians.get(("teacher", r["variant"], *where))  # int8 rows: the int8 teacher of this run
        fp32 = medians[("teacher", "fp32", *where)]
        if same is None:  # no ONNX teacher: no ratio across precisions
            assert r["variant"] == "onnx" and r["speedup_vs_teacher"] is None
        else:
            assert r["speedup_vs_teacher"] == pytest.approx(same / r["e2e"]["median_ms"], abs=1e-3)
        assert r["speedup_vs_fp32_teacher"] == pytest.approx(fp32 / r["e2e"]["median_ms"], abs=1e-3)
        info = res["models"][r["model"]]
        if r["variant"] == "fp32":
            assert ("audio_encoder_ms" in r["split"]) == info["uses_audio"]
            assert ("text_encoder_ms" in r["split"]) == info["uses_text"]
    for name in MODELS:
        assert res["models"][name]["params"]["total"] > 0
    h = res["headline"]
    assert h["teacher_ms"] == medians[("teacher", "fp32", 1, 1.0)]
    assert h["light_student_ms"] == medians[("light_student", "fp32", 1, 1.0)]
    int8 = next(v for v in h["variants"] if v["variant"] == "int8")
    assert int8["teacher_ms"] == medians[("teacher", "int8", 1, 1.0)]
    assert int8["speedup"] == pytest.approx(int8["teacher_ms"] / int8["light_student_ms"], abs=1e-3)
    assert res["machine"]["cpu"] and res["machine"]["torch"]


def test_int8_is_quantised_and_agrees_with_pytorch(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    int8 = [r for r in res["latency"] if r["variant"] == "int8"]
    assert {r["model"] for r in int8} == {"teacher", "multimodal_student", "light_student"}
    for r in int8:
        info = res["variants"][f"{r['model']}:int8"]
        assert info["int8_linear_layers"] > 0 and info["fp32_linear_layers"] == 0
        assert info["weights_mb"] < info["fp32_weights_mb"]
        check = r["check"]
        assert check["n"] == r["batch_size"] and check["argmax_match"] == check["n"]
        # quantised weights change the logits a little (an fp32 model would give exactly 0), never much
        assert 0 < check["max_abs_logit_diff"] < 0.05
    if not HAS_ONNX:
        pytest.skip("onnx / onnxruntime / onnxscript not installed")
    onnx_rows = [r for r in res["latency"] if r["variant"] == "onnx"]
    assert {r["model"] for r in onnx_rows} == {"multimodal_student", "light_student"}
    for r in onnx_rows:
        assert r["check"]["argmax_match"] == r["check"]["n"]
        assert r["check"]["max_abs_logit_diff"] < 1e-3
        assert r["speedup_vs_teacher"] is None  # no ONNX teacher in the run: no ratio across precisions


def test_unset_options_are_filled_in_a_copy_of_the_parsed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import dataclasses

    from benchmark import QUICK_DEFAULTS, build_parser, resolve_args

    from multistill.training.arguments import parse_command_line

    (parsed,) = parse_command_line(build_parser(), ["--quick", "--models", "teacher", "--repeats", "5"])
    given = dataclasses.asdict(parsed)
    resolved = resolve_args(parsed)
    assert dataclasses.asdict(parsed) == given  # the parsed options stay as the user gave them
    assert resolved.repeats == 5 and resolved.batch_sizes == QUICK_DEFAULTS["batch_sizes"]
    assert (resolved.device, resolved.dtypes, resolved.name) == ("cpu", ["fp32"], "benchmark_cpu_quick")
    assert resolved.variant_models == ["teacher"]


def test_ratios_are_computed_per_round_and_never_across_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from benchmark import add_ratios, merge_rounds

    def row(model: str, variant: str, ms: float, round_number: int) -> dict[str, Any]:
        return {"model": model, "variant": variant, "batch_size": 1, "audio_seconds": 5.0, "round": round_number,
                "e2e": {"median_ms": ms, "p90_ms": ms, "min_ms": ms, "n": 3, "first_call_reused": False,
                        "samples_ms": [ms] * 3}, "memory": {"peak_mb": 10.0 * round_number, "delta_mb": 0.0}}

    rows = [row("teacher", "fp32", 1000, 1), row("teacher", "int8", 400, 1), row("light", "fp32", 100, 1),
            row("light", "int8", 20, 1), row("onnx_only", "onnx", 50, 1),
            row("teacher", "fp32", 2000, 2), row("teacher", "int8", 800, 2), row("light", "fp32", 250, 2),
            row("light", "int8", 40, 2), row("onnx_only", "onnx", 50, 2)]
    add_ratios(rows, ["fp32"])
    assert [r["speedup_vs_teacher"] for r in rows if r["model"] == "light"] == [10.0, 20.0, 8.0, 20.0]
    assert [r["speedup_vs_fp32_teacher"] for r in rows if r["model"] == "light"] == [10.0, 50.0, 8.0, 50.0]
    merged = {(r["model"], r["variant"]): r for r in merge_rounds(rows)}
    light = merged[("light", "fp32")]
    assert light["e2e"]["median_ms"] == 175 and light["e2e"]["spread_ms"] == [100, 250]
    assert light["e2e"]["n"] == 6 and light["e2e"]["rounds"] == 2 and light["memory"]["peak_mb"] == 20.0
    assert light["speedup_vs_teacher"] == 9.0 and light["speedup_vs_teacher_range"] == [8.0, 10.0]
    assert merged[("light", "int8")]["speedup_vs_teacher"] == 20.0
    assert merged[("light", "int8")]["speedup_vs_fp32_teacher"] == 50.0
    assert merged[("onnx_only", "onnx")]["speedup_vs_teacher"] is None
    assert merged[("onnx_only", "onnx")]["speedup_vs_fp32_teacher"] == 30.0  # median of 20x and 40x


def test_training_throughput(quick: tuple[dict[str, Any], str, str]) -> None:
    res, _, _ = quick
    modes = {(r["model"], r["mode"]): r for r in res["training"]}
    assert {("teacher", "cached"), ("teacher", "encoders"), ("light_student", "encoders")} <= set(modes)
    for r in res["training"]:
        assert r["examples_per_s"] == pytest.approx(r["batch_size"] / (r["step"]["median_ms"] / 1000), rel=1e-3)
        assert r["step"]["spread_ms"][0] <= r["step"]["median_ms"] <= r["step"]["spread_ms"][1]
    assert modes[("light_student", "encoders")]["encoders_trainable"]


def test_markdown_report(quick: tuple[dict[str, Any], str, str]) -> None:
    res, md, stdout = quick
    assert "**Machine:**" in md and res["machine"]["torch"] in md
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert res["provenance"]["git_commit"] == head and isinstance(res["provenance"]["git_dirty"], bool)
    assert res["provenance"]["command"].startswith("python benchmarks/benchmark.py --quick")
    assert f"**Made by** `{res['provenance']['command']}` at commit `{head[:12]}`" in md
    assert "## End-to-end latency" in md and "## Where the time goes" in md and "## Training throughput" in md
    assert "Light student vs teacher" in md and "light student int8" in md and "vs the int8 teacher" in md
    assert "| vs teacher, same precision | vs fp32 teacher |" in md
    for name in MODELS:
        assert f"| {name} | fp32 |" in md
    assert "## Variants" in md
    assert md.strip() in stdout  # printed too


def test_subprocess_isolation_and_skips(tmp_path: Path) -> None:
    """Default mode runs each job in its own process; --max_call_s skips configs estimated too slow."""
    res, md, _ = _run(
        ["--models", "light_student", "--train_models", "--batch_sizes", "1", "64", "--audio_seconds", "1",
         "--max_call_s", "1e-6", "--rounds", "2"],
        tmp_path,
        "iso",
    )
    rows = res["latency"]
    assert rows[0]["speedup_vs_teacher"] is None  # no teacher in the run
    e2e = rows[0]["e2e"]
    assert e2e["rounds"] == 2 and e2e["spread_ms"] == [min(e2e["round_medians_ms"]), max(e2e["round_medians_ms"])]
    assert list(res["jobs"]) == ["base:light_student#1", "base:light_student#2"]
    assert "skipped" in rows[1] and "skipped" in md and "2 rounds of every job" in md
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
    assert res["provenance"]["command"].startswith("python benchmarks/stream_rtf.py --quick")
    assert "load average (1 min)" in md and all(len(r["loadavg_1min"]) == 2 for r in res["runs"])
    assert md.count("**Made by**") == 1  # the provenance line was printed twice
    assert all(r["queue_peak"] >= 1 and r["dropped"] == 0 and r["peak_rss_mb"] > 0 for r in res["runs"])
    assert md.strip() in proc.stdout


def test_stream_rtf_alternates_asr_windows_on_real_speech(tmp_path: Path) -> None:
    """``--asr whisper-base --asr_window_s 10 30``: the runs alternate between faster-whisper's short encoder window
    and Whisper's 30 s on the same real conversation, and say which window each used."""
    from _fixtures_speech import SAMPLE_DIR, faster_whisper_asr

    faster_whisper_asr()  # skips without the sample / whisper-base packages
    script = ROOT / "benchmarks" / "stream_rtf.py"
    cmd = [sys.executable, str(script), "--quick", "--data_dir", str(SAMPLE_DIR),
           "--asr", "whisper-base", "--models", "light_student", "--threads", "1", "--max_utterances", "2",
           "--asr_window_s", "10", "30", "--output_dir", str(tmp_path), "--name", "windows"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads((tmp_path / "windows.json").read_text(encoding="utf-8"))
    assert [r["asr_window_s"] for r in res["runs"]] == [10.0, 30.0] and res["settings"]["asr_window_s"] == [10.0, 30.0]
    assert all(r["errors"] == 0 and r["stages"]["asr_per_utterance"]["count"] == r["utterances"] for r in res["runs"])
    assert "| light_student | 1 | 0 | 10.0 |" in (tmp_path / "windows.md").read_text(encoding="utf-8")
    bad = subprocess.run([*cmd[:-2], "--asr_window_s", "0.5"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "--asr_window_s settings must be 1-30 s" in bad.stderr


def test_stream_rtf_names_a_dialogue_the_data_lacks_before_building_a_model(tmp_path: Path) -> None:
    # was a traceback; now one line, after the data loads and before any model is built, nothing written
    from _fixtures_speech import SAMPLE_DIR

    if not SAMPLE_DIR.is_dir():
        pytest.skip("the KEMDy sample (../shared/kemdy_sample) is not here")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stream_rtf.py"), "--quick", "--data_dir",
                           str(SAMPLE_DIR), "--conversation", "KEMDy19:Sess01_nowhere", "--output_dir",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    assert proc.stderr.splitlines()[-1] == ("stream_rtf.py: error: --conversation KEMDy19:Sess01_nowhere: No "
                                            "utterance of KEMDy19 Sess01_nowhere in the dataset.")


def test_stream_rtf_fills_the_defaults_that_depend_on_other_options() -> None:
    from _fixtures_speech import SAMPLE_DIR

    if not SAMPLE_DIR.is_dir():
        pytest.skip("the KEMDy sample (../shared/kemdy_sample) is not here")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from stream_rtf import parse_args

    quick, real = parse_args(["--quick"]), parse_args(["--data_dir", str(SAMPLE_DIR), "--seconds", "30"])
    assert (quick.seconds, quick.name, quick.vad) == (12.0, "stream_cpu_quick", "energy")
    assert (real.seconds, real.name, real.vad) == (30.0, "stream_cpu", "silero")
    assert parse_args(["--vad", "energy", "--name", "mine"]).vad == "energy"


def test_rerender_applies_like_with_like_ratios_to_a_saved_run(quick: tuple[dict[str, Any], str, str],
                                                               tmp_path: Path) -> None:
    """A run saved before rounds existed (no per-round rows, int8 ratios against the fp32 teacher) is re-rendered
    from its own measurements: int8 rows now compare with the int8 teacher."""
    res, _, _ = quick
    old = json.loads(json.dumps(res))
    old["latency"], old["training"] = old.pop("latency_rounds"), old.pop("training_rounds")  # one raw row each
    del old["headline"], old["settings"]["rounds"]
    for row in old["latency"] + old["training"]:
        del row["round"]
        row.pop("speedup_vs_fp32_teacher", None)
        row["speedup_vs_teacher"] = 123.0  # whatever the old rules said
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--rerender", str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = json.loads(path.read_text())
    assert new["rerendered"] and "**Re-rendered**" in (tmp_path / "old.md").read_text()
    for before, after in zip(res["latency"], new["latency"], strict=True):
        assert after["e2e"]["median_ms"] == before["e2e"]["median_ms"]
        assert after["speedup_vs_teacher"] == before["speedup_vs_teacher"]
        assert after["speedup_vs_fp32_teacher"] == before["speedup_vs_fp32_teacher"]


def test_whisper_models_beside_the_paper_teacher(tmp_path: Path) -> None:
    """The presets around the Whisper-base encoder run in the same run as the paper's teacher, from raw audio
    (their log-mel front end timed), with ratios to the paper's teacher and to their own Whisper teacher."""
    res, md, proc = _run(
        ["--in_process", "--models", "teacher", "light_student", "whisper_teacher", "whisper_audio_student",
         "whisper_light_student",
         "--batch_sizes", "1", "--audio_seconds", "1", "--int8", "--onnx", "--variant_models", "whisper_light_student",
         "--train_models"],
        tmp_path,
        "whisper",
    )
    assert res["errors"] == []
    assert "no onnx variant of whisper_light_student" in proc.stderr
    info = res["models"]
    assert {info[m]["audio_frontend"] for m in ("whisper_teacher", "whisper_audio_student", "whisper_light_student")} \
        == {"whisper"} and info["teacher"]["audio_frontend"] == "wav2vec2"
    # 20 ms per Whisper frame (30 s over 1500 positions), like wav2vec2: the same audio kept as the teacher
    assert info["whisper_light_student"]["max_audio_seconds"] == pytest.approx(info["teacher"]["max_audio_seconds"])
    rows = {(r["model"], r["variant"]): r for r in res["latency"]}
    assert set(rows) == {("teacher", "fp32"), ("light_student", "fp32"), ("whisper_teacher", "fp32"),
                         ("whisper_audio_student", "fp32"), ("whisper_light_student", "fp32"),
                         ("whisper_light_student", "int8")}
    whisper_teacher = rows[("whisper_teacher", "fp32")]["e2e"]["median_ms"]
    for (model, variant), r in rows.items():
        if not model.startswith("whisper_"):
            assert "speedup_vs_own_teacher" not in r
            continue
        if variant == "fp32":  # ratios are rounded to 3 decimals
            paper_teacher = rows[("teacher", "fp32")]["e2e"]["median_ms"]
            assert r["speedup_vs_teacher"] == pytest.approx(paper_teacher / r["e2e"]["median_ms"], abs=1e-3)
        else:
            assert r["speedup_vs_teacher"] is None  # no int8 teacher in this run
        if variant == "fp32":
            assert r["speedup_vs_own_teacher"] == pytest.approx(whisper_teacher / r["e2e"]["median_ms"], abs=1e-3)
    assert rows[("whisper_light_student", "int8")]["check"]["argmax_match"] == 1
    assert [w["model"] for w in res["headline"]["whisper"]] == ["whisper_teacher", "whisper_audio_student",
                                                                 "whisper_light_student"]
    assert "**Whisper-base encoder models**" in md and "faster than the Whisper teacher" in md


def test_trained_latency_times_saved_models_on_real_utterances(tmp_path: Path) -> None:
    """``trained_latency.py``: saved models, real sample utterances of the chosen length, interleaved rounds, ratios
    to the first model; a folder that is not a model is an ``error:`` line."""
    from _fixtures_inference import saved_folder
    from _fixtures_speech import SAMPLE_DIR

    if not SAMPLE_DIR.is_dir():
        pytest.skip("the KEMDy sample (../shared/kemdy_sample) is not here")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from trained_latency import main

    from multistill.training.arguments import UsageError

    out = tmp_path / "latency.json"
    models = [saved_folder("teacher"), saved_folder("text_student"), saved_folder("teacher"),
              saved_folder("light_student")]
    result = main(["--models", *models, "--data_dir", str(SAMPLE_DIR), "--seconds", "2", "3", "--utterances", "2",
                   "--rounds", "2", "--output_json", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert len(result["utterances"]) == 2 and all(2 <= u["seconds"] <= 3 for u in result["utterances"])
    first, second, third, fourth = result["models"]
    assert first["teacher_ratio"] == 1.0 and len(second["round_medians_ms"]) == 2 and second["median_ms"] > 0
    assert [m["teacher"] for m in result["models"]] == [models[0], models[0], models[2], models[2]]  # its own teacher
    assert third["teacher_ratio"] == 1.0 and fourth["preset"] == "light_student"
    assert fourth["audio_layers"] == 2 and second["audio_layers"] is None  # the text student has no audio encoder
    assert result["provenance"]["command"].startswith("python benchmarks/trained_latency.py --models")
    with pytest.raises(UsageError, match=f"--models {tmp_path}: not a saved model folder"):
        main(["--models", str(tmp_path), "--data_dir", str(SAMPLE_DIR)])
    with pytest.raises(UsageError, match="--seconds takes the shortest and longest"):
        main(["--models", *models, "--data_dir", str(SAMPLE_DIR), "--seconds", "5", "4"])


def test_threads_training_times_each_thread_count_and_records_its_command(tmp_path: Path) -> None:
    """``benchmarks/threads_training.py``: caching, teacher and light-student steps per thread count, side by side,
    with the medians, the load average and the command and commit that made them."""
    script = ROOT / "benchmarks" / "threads_training.py"
    output = tmp_path / "threads"
    cmd = [sys.executable, str(script), "--threads", "1", "2", "--repeats", "1", "--steps", "2", "--busy_processes", "1",
           "--output", str(output)]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(scratch)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not list(scratch.iterdir())  # its corpus, encoders and caches are removed (13 MB were left per run)
    res = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert set(res["medians"]) == {"1", "2"} and res["steps"] == 2 and len(res["load_average"]) == 2
    assert res["busy_processes"] == 1 and "; 1 other CPU-bound process." in output.with_suffix(".md").read_text()
    for medians in res["medians"].values():
        assert set(medians) == {"caching", "teacher_steps", "light_steps"} and all(v > 0 for v in medians.values())
    assert res["provenance"]["command"] == "python benchmarks/threads_training.py " + " ".join(cmd[2:])
    assert len(res["provenance"]["git_commit"]) == 40
    assert "| 2 |" in output.with_suffix(".md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("script", "argv", "message"), [
    ("context_latency.py", ["--rounds", "0"], "--rounds must be > 0"),
    ("light_student_ablation.py", ["--audio_seconds", "-1"], "--audio_seconds must be > 0"),
    ("light_student_ablation.py", ["--threads", "0"], "--threads must be > 0"),
    ("context_latency.py", ["--context_size", "-1"], "--context_size must be > 0"),
    ("context_latency.py", ["--output_json", "benchmarks"], "--output_json benchmarks is a folder; give a file name."),
    ("benchmark.py", ["--threads", "0"], "--threads must be > 0, got 0."),
    ("benchmark.py", ["--batch_sizes", "1", "0"], "--batch_sizes must be > 0, got [1, 0]."),
    ("benchmark.py", ["--time_budget", "-1"], "--time_budget must be > 0, got -1.0."),
    ("benchmark.py", ["--name", "results/x"], "--name 'results/x': give a file stem without a folder"),
    ("benchmark.py", ["--output_dir", "README.md"], "--output_dir README.md is a file, not a folder."),
    ("asr_cer.py", ["--data_dir", "nowhere"], "--data_dir nowhere: no such folder."),
    ("asr_cer.py", ["--data_dir", "tests"], "--data_dir tests: Missing tests/KEMDy19: data_dir must hold a KEMDy19/"),
    ("asr_cer.py", ["--data_dir", "tests", "--beam_size", "0"], "--beam_size must be >= 1, got 0."),
    ("asr_cer.py", ["--data_dir", "tests", "--asr_window_s", "-3"], "--asr_window_s -3: The ASR encoder window must be"),
    ("asr_cer.py", ["--data_dir", "tests", "--asr", "./nowhere"], "--asr ./nowhere: no such folder."),
    ("asr_cer.py", ["--data_dir", "tests", "--name", "a/b"], "--name 'a/b': give a file stem without a folder"),
    # a typo in an option was transformers' ValueError traceback in every benchmark
    ("benchmark.py", ["--quick", "--treads", "1"], "unrecognized arguments: --treads 1"),
    ("asr_cer.py", ["--data_dir", str(SAMPLE_DIR), "--windw", "10"], "unrecognized arguments: --windw 10"),
    ("context_latency.py", ["--roundz", "3"], "unrecognized arguments: --roundz 3"),
    ("light_student_ablation.py", ["--teachr"], "unrecognized arguments: --teachr"),
    ("threads_training.py", ["--repeets", "1"], "unrecognized arguments: --repeets 1"),
    ("vad_eval.py", ["--data_dir", str(SAMPLE_DIR), "--vad_kind", "energy"], "unrecognized arguments: --vad_kind energy"),
    # threads_training.py: --threads 0 was a traceback, --repeats 0 one after the whole run
    ("threads_training.py", ["--threads", "1", "0"], "--threads must be > 0, got [1, 0]."),
    ("threads_training.py", ["--repeats", "0"], "--repeats must be > 0, got 0."),
    ("threads_training.py", ["--busy_processes", "-1"], "--busy_processes must be >= 0, got -1."),
    ("threads_training.py", ["--output", "README.md/threads"], "--output README.md/threads.json: "),
    # vad_eval.py: every one of these was a traceback (the last two after the data had loaded)
    ("vad_eval.py", ["--data_dir", "nowhere"], "--data_dir nowhere: no such folder."),
    ("vad_eval.py", ["--data_dir", str(SAMPLE_DIR), "--vads", "webrtc"], "--vads must be among ('silero', 'energy')"),
    ("vad_eval.py", ["--data_dir", str(SAMPLE_DIR), "--hangover_ms", "0"], "--hangover_ms must be positive"),
    ("vad_eval.py", ["--data_dir", str(SAMPLE_DIR), "--name", "a/b"], "--name 'a/b': give a file stem without"),
    ("vad_eval.py", ["--data_dir", str(SAMPLE_DIR), "--output_dir", "README.md"], "--output_dir README.md is a file"),
    # stream_rtf.py: a typo was a traceback; a bad --name or --output_dir one after the whole run
    ("stream_rtf.py", ["--quick", "--treads", "1"], "unrecognized arguments: --treads 1"),
    ("stream_rtf.py", ["--quick", "--name", "a/b"], "--name 'a/b': give a file stem without a folder"),
    ("stream_rtf.py", ["--quick", "--output_dir", "README.md"], "--output_dir README.md is a file, not a folder."),
    ("stream_rtf.py", ["--data_dir", "tests"], "--data_dir tests: Missing tests/KEMDy19"),
    ("stream_rtf.py", ["--data_dir", str(SAMPLE_DIR), "--conversation", "Sess01"], "--conversation: Bad conversation"),
    ("stream_rtf.py", ["--quick", "--repeat", "0"], "--repeat and --max_utterances must be >= 1"),
    # trained_latency.py: a typo was a traceback, an --output_json under a file one after the whole run
    ("trained_latency.py", ["--models", "tests/fixtures/light_student_v0_conv", "--data_dir", "tests", "--roundz", "2"],
     "unrecognized arguments: --roundz 2"),
    ("trained_latency.py", ["--models", "tests/fixtures/light_student_v0_conv", "--data_dir", str(SAMPLE_DIR),
                            "--output_json", "README.md/latency.json"], "--output_json README.md/latency.json: "),
    ("trained_latency.py", ["--models", "tests", "--data_dir", str(SAMPLE_DIR)],
     "--models tests: not a saved model folder (no config.json)."),
])
def test_bad_options_are_one_error_line_before_any_work(script, argv, message):
    # they were tracebacks
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *argv], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and f"{script}: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_vad_eval_names_a_dialogue_the_data_lacks_before_measuring(tmp_path: Path) -> None:
    # was a traceback, after the conversations before it had been measured
    conversations = ["KEMDy19:Sess01_impro02", "KEMDy19:Sess01_impro02+KEMDy20:Sess01_nowhere"]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vad_eval.py"), "--data_dir", str(SAMPLE_DIR),
                           "--conversations", *conversations, "--vads", "energy", "--output_dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not list(tmp_path.iterdir())
    assert proc.stderr.splitlines()[-1] == (f"vad_eval.py: error: --conversations {conversations[1]}: --data_dir "
                                            f"{SAMPLE_DIR} holds no utterance of ['KEMDy20:Sess01_nowhere'].")
    assert "segments" not in proc.stderr  # nothing was measured
