"""The one-command experiment: seeds, paired KD differences, baselines on the same split, provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multistill.tools.experiment import (
    Job,
    Run,
    execute,
    job_status,
    log_path,
    main,
    parse_args,
    plan_jobs,
    planned_runs,
)
from multistill.training.arguments import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_plan_covers_teacher_students_and_ablations():
    runs = planned_runs(["text_student", "light_student"], alpha=0.5, no_kd_ablation=True)
    assert [r.name for r in runs] == ["teacher", "text_student_kd", "text_student_ce", "light_student_kd",
                                      "light_student_ce"]
    assert [r.alpha for r in runs[1:]] == [0.5, 0.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="unknown student"):
        planned_runs(["huge_student"], 0.5, True)


def test_jobs_per_seed_wait_for_their_teacher_and_caching_runs_have_equal_epochs(tmp_path: Path):
    args, extra = parse_args(["--output_dir", str(tmp_path), "--seeds", "3", "7", "--students", "text_student",
                              "--num_train_epochs", "5", "--caching_gain_epochs", "2", "--data_cache_dir", "c"])
    assert extra == ["--data_cache_dir", "c"]
    jobs, gain_jobs = plan_jobs(args, extra)
    assert [j.key for j in jobs] == [f"seed_{s}/{n}" for s in (3, 7) for n in ("teacher", "text_student_kd",
                                                                              "text_student_ce")]
    for job in jobs:
        command = list(job.command)
        assert command[command.index("--seed") + 1] == str(job.seed)
        assert command[command.index("--output_dir") + 1] == str(tmp_path / f"seed_{job.seed}" / job.run.name)
        assert job.after == (None if job.run.name == "teacher" else f"seed_{job.seed}/teacher")
        if job.run.script == "distill.py":
            assert command[command.index("--teacher_model") + 1] == str(tmp_path / f"seed_{job.seed}" / "teacher")
        assert command[-2:] == ["--data_cache_dir", "c"]
    assert [j.key for j in gain_jobs] == [f"seed_{s}/caching_{m}" for s in (3, 7) for m in ("cached", "uncached")]
    for job in gain_jobs:  # the last --num_train_epochs wins (argparse): both runs train 2 epochs
        epochs = [job.command[i + 1] for i, a in enumerate(job.command) if a == "--num_train_epochs"]
        assert epochs[-1] == "2"
        cache = job.command[job.command.index("--cache_encoder_features") + 1]
        assert cache == ("false" if job.run.name == "caching_uncached" else "true")


def test_encoder_options_go_to_the_teacher_only(tmp_path: Path):
    args, extra = parse_args(["--output_dir", str(tmp_path), "--students", "audio_student", "--audio_encoder",
                              "tiny", "--text_encoder", "tiny", "--freeze_text_encoder", "false", "--no_caching_gain"])
    jobs, _ = plan_jobs(args, extra)
    teacher, *students = jobs
    assert teacher.command[teacher.command.index("--audio_encoder") + 1] == "tiny"
    assert teacher.command[teacher.command.index("--freeze_text_encoder") + 1] == "false"
    assert all("--audio_encoder" not in job.command and "--text_encoder" not in job.command for job in students)


def test_light_layer_options_go_to_the_light_students_only(tmp_path: Path):
    """train.py has no --light_audio_layers: the runner gives it to the light student's distill.py runs only."""
    args, extra = parse_args(["--output_dir", str(tmp_path), "--students", "light_student", "text_student",
                              "--light_audio_layers", "0", "--no_caching_gain"])
    jobs, _ = plan_jobs(args, extra)
    light = [job for job in jobs if job.run.preset == "light_student"]
    assert len(light) == 2 and all(job.command[job.command.index("--light_audio_layers") + 1] == "0" for job in light)
    assert all("--light_audio_layers" not in job.command and "--light_text_layers" not in job.command
               for job in jobs if job.run.preset != "light_student")


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "1", "2", "--seed", "3"], "either --seeds or --seed"),
    (["--seeds", "1", "1"], "every seed once"),
    (["--alpha", "1.5"], "--alpha must be in"),
    (["--num_train_epochs", "0"], "--num_train_epochs must be positive"),
    (["--students", "giant_student"], "unknown student 'giant_student'"),
    (["--baselines_only", "--baselines", "none"], "nothing to do"),
    (["--baselines", "svm"], "unknown baseline 'svm'"),
    (["--light_audio_layers", "-1"], "--light_audio_layers must be >= 0, got -1"),
    (["--light_text_layers", "0"], "--light_text_layers must be >= 1, got 0"),
    # a wrong corpus or data folder failed only in the first run, with a traceback
    (["--corpus", "kemdy"], "--corpus must be one of kemdy19, kemdy20, all, synthetic, got 'kemdy'"),
    (["--corpus", "kemdy19"], "--corpus kemdy19 needs --data_dir FOLDER"),
    (["--corpus", "all", "--data_dir", "tests"], "--data_dir tests: Missing tests/KEMDy19: data_dir must hold"),
    (["--corpus", "kemdy20", "--data_dir", "nowhere"], "--data_dir nowhere: no such folder"),
])
def test_bad_arguments_are_refused_before_anything_runs(argv, message):
    with pytest.raises(UsageError, match=message):
        parse_args(argv)


def test_command_line_errors_print_usage_errors(tmp_path: Path):
    """``python -m multistill.tools.experiment`` prints a bad option as ``error:`` (exit 2), nothing is written."""
    proc = subprocess.run([sys.executable, "-m", "multistill.tools.experiment", "--output_dir", str(tmp_path / "x"),
                           "--alpha", "3"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 2 and "error: --alpha must be in [0, 1], got 3.0." in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()


def test_a_failed_run_is_an_error_line_with_its_log_not_a_traceback(tmp_path: Path):
    # the runner raised the failed run's RuntimeError, a traceback above the run's own complaint
    proc = subprocess.run([sys.executable, "-m", "multistill.tools.experiment", "--output_dir", str(tmp_path / "x"),
                           "--seeds", "1", "--students", "none", "--baselines", "none", "--learnig_rate", "1"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "experiment.py: error: seed_1/teacher failed (exit 2); last lines of" in proc.stderr
    assert proc.stderr.rstrip().endswith("train.py: error: unrecognized arguments: --learnig_rate 1")


@pytest.mark.parametrize(("argv", "message"), [
    (["--gold_run", "tests", "--outptu", "x"], "unrecognized arguments: --outptu x"),  # was a traceback
    (["--gold_run", "tests", "--output", "README.md/gap"], "--output README.md/gap.json: "),  # was one at the end
    (["--gold_run", "tests"], "tests/results.json not found: give the --output_dir of a finished"),
])
def test_asr_gap_refuses_bad_options_in_one_line_before_reading_a_run(argv, message):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "asr_gap.py"), *argv], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"asr_gap.py: error: {message}")


def test_one_seed_by_default_or_by_seed_and_none_lists():
    assert parse_args([])[0].seeds == [42]
    assert parse_args(["--seed", "5"])[0].seeds == [5]
    args, extra = parse_args(["--students", "none", "--baselines", "none", "--no_caching_gain", "--bf16"])
    assert (args.students, args.baselines, args.caching_gain, extra) == ([], [], False, ["--bf16"])


def test_execute_runs_students_after_their_teacher_and_stops_on_failure(tmp_path: Path, capsys):
    """Two seeds, two workers: every student starts after its own teacher ended; a failure names its log."""
    def job(seed: int, name: str, after: str | None, code: str = "") -> Job:
        stamp = tmp_path / f"{seed}_{name}.json"
        script = (f"import json, time; t0 = time.time(); time.sleep(0.3); {code}"
                  f"json.dump([t0, time.time()], open({str(stamp)!r}, 'w'))")
        return Job(seed, Run(name, name, "teacher", "train.py"), tmp_path / f"seed_{seed}" / name,
                   (sys.executable, "-c", script), after)

    jobs = [job(s, n, None if n == "teacher" else f"seed_{s}/teacher") for s in (1, 2) for n in ("teacher", "a", "b")]
    seconds = execute(jobs, parallel=2, reuse=False)
    assert set(seconds) == {j.key for j in jobs}
    stamps = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    for s in (1, 2):
        assert stamps[f"{s}_a"][0] >= stamps[f"{s}_teacher"][1] and stamps[f"{s}_b"][0] >= stamps[f"{s}_teacher"][1]
    assert (tmp_path / "seed_1" / "teacher.log").exists()
    assert "experiment runs" in capsys.readouterr().err  # the overall progress bar (runs done, ETA)
    broken = [job(1, "teacher", None, "raise SystemExit('teacher broke'); "), job(1, "c", "seed_1/teacher")]
    with pytest.raises(RuntimeError, match="(?s)seed_1/teacher failed .*teacher.log:\nteacher broke"):
        execute(broken, parallel=2, reuse=False)
    assert not (tmp_path / "1_c.json").exists()  # its student never started


def test_progress_shows_the_last_log_line_of_a_running_job(tmp_path: Path):
    job = Job(1, Run("teacher", "teacher", "teacher", "train.py"), tmp_path / "seed_1" / "teacher", ("true",), None)
    assert job_status(job) == "seed_1/teacher: starting"
    (tmp_path / "seed_1").mkdir()
    log_path(job).write_text("INFO loading\nCaching audio features:  40%|####      | 4/10\rCaching audio features:  "
                             "60%|######    | 6/10\r")
    assert job_status(job) == "seed_1/teacher: Caching audio features:  60%|######    | 6/10"
    assert job_status(job, width=10).endswith("...    | 6/10")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """Two seeds of teacher + multimodal student with and without KD (1 epoch), baselines, no caching runs."""
    cache = tmp_path_factory.mktemp("experiment_cache")
    output = tmp_path_factory.mktemp("experiment")
    report = main(["--output_dir", str(output), "--seeds", "1", "2", "--num_train_epochs", "1", "--students",
                   "multimodal_student", "--latency_utterances", "2", "--no_caching_gain", "--parallel", "2",
                   "--data_cache_dir", str(cache), "--save_total_limit", "1"])
    return output, cache, report


def test_experiment_reports_mean_std_and_paired_differences(experiment: tuple[Path, Path, dict]):
    output, _, report = experiment
    table = (output / "results.md").read_text()
    saved = json.loads((output / "results.json").read_text())
    names = [r["name"] for r in saved["rows"]]
    assert names == ["teacher", "multimodal_student_kd", "multimodal_student_ce", "baseline_majority",
                     "baseline_text_tfidf", "baseline_audio_statistics"]
    for row in saved["rows"]:
        per_seed = [saved["per_seed"][str(s)][row["name"]]["metrics"]["macro_f1"] for s in (1, 2)]
        if row["kind"] == "model":  # the figures of the runs' own metrics.json
            files = [json.loads((output / f"seed_{s}" / row["name"] / "metrics.json").read_text())["test"]["macro_f1"]
                     for s in (1, 2)]
            assert per_seed == files
            assert row["latency"]["latency_ms_median"]["n"] == 2
        cell = f"{100 * np.mean(per_seed):.2f} ± {100 * np.std(per_seed, ddof=1):.2f}"
        line = next(x for x in table.splitlines() if x.startswith(f"| {row['label']} |"))
        assert line.split(" | ")[5] == cell  # the macro-F1 column
    kd = next(c for c in saved["comparisons"] if c["first"] == "multimodal_student_kd")
    expected = [saved["per_seed"][str(s)]["multimodal_student_kd"]["metrics"]["macro_f1"]
                - saved["per_seed"][str(s)]["multimodal_student_ce"]["metrics"]["macro_f1"] for s in (1, 2)]
    assert kd["differences"]["macro_f1"]["values"] == pytest.approx(expected)
    assert kd["verdict"] in table and "KD − no KD macro-F1" in kd["verdict"]
    assert {c["second"] for c in saved["comparisons"]} >= {"baseline_majority", "baseline_text_tfidf",
                                                           "baseline_audio_statistics"}
    assert "## Macro-F1 per seed" in table and "| model | seed 1 | seed 2 |" in table
    assert saved["caching_gain"] is None and "6.9x" not in table


def test_baselines_use_the_runs_split(experiment: tuple[Path, Path, dict]):
    output, _, report = experiment
    for seed in (1, 2):
        splits = json.loads((output / f"seed_{seed}" / "teacher" / "data_splits.json").read_text())
        student = json.loads((output / f"seed_{seed}" / "multimodal_student_kd" / "data_splits.json").read_text())
        assert student == splits
        baseline = report["per_seed"][str(seed)]["baseline_majority"]
        assert baseline["fit_rows"] == len(splits["train"]) + len(splits["validation"])
        matrix = np.asarray(baseline["confusion_matrix"])
        assert matrix.sum() == len(splits["test"])  # scored on the same test rows as the models


def test_provenance_names_command_commit_machine_and_date(experiment: tuple[Path, Path, dict]):
    output, _, report = experiment
    table = (output / "results.md").read_text()
    saved = json.loads((output / "results.json").read_text())
    origin = saved["provenance"]
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert origin["git_commit"] == head.strip() and isinstance(origin["git_dirty"], bool)
    assert origin["command"].startswith("python -m multistill.tools.experiment --output_dir ")
    assert f"`{origin['command']}`" in table and origin["git_commit"][:12] in table
    assert origin["machine"]["cpu"] in table and origin["machine"]["torch"] in table and origin["date"] in table


def test_baselines_only_builds_the_split_train_py_builds(experiment: tuple[Path, Path, dict], tmp_path: Path):
    output, cache, report = experiment
    quick = main(["--output_dir", str(tmp_path), "--baselines_only", "--seeds", "1", "2", "--baselines", "majority",
                  "text_tfidf", "--data_cache_dir", str(cache)])
    assert [r["name"] for r in quick["rows"]] == ["baseline_majority", "baseline_text_tfidf"]
    assert quick["comparisons"] == []
    for seed in (1, 2):
        built = json.loads((tmp_path / f"seed_{seed}" / "baselines" / "data_splits.json").read_text())
        assert built == json.loads((output / f"seed_{seed}" / "teacher" / "data_splits.json").read_text())
        assert quick["per_seed"][str(seed)]["baseline_text_tfidf"] == report["per_seed"][str(seed)]["baseline_text_tfidf"]
    assert not any((tmp_path / "seed_1").glob("teacher*"))


def test_experiment_compares_gold_and_asr_transcripts(tmp_path_factory: pytest.TempPathFactory):
    """Passed through to train.py/distill.py, --asr_model and --test_text_columns give every model and the text
    baseline a second test on the recognizer's transcripts, with the paired difference in results.md."""
    from _fixtures_speech import tiny_whisper_folder

    cache, output = tmp_path_factory.mktemp("asr_cache"), tmp_path_factory.mktemp("asr_experiment")
    report = main(["--output_dir", str(output), "--seeds", "1", "--num_train_epochs", "1", "--students",
                   "text_student", "--latency_utterances", "0", "--no_caching_gain", "--baselines", "majority",
                   "text_tfidf", "--data_cache_dir", str(cache), "--save_total_limit", "1",
                   "--asr_model", tiny_whisper_folder(), "--test_text_columns", "asr_text"])
    transcripts = report["transcripts"]
    assert transcripts["trained_on"] == "text" and transcripts["tested_on"] == ["text", "asr_text"]
    rows = {row["name"]: row for row in transcripts["rows"]}
    assert set(rows) == {"teacher", "text_student_kd", "text_student_ce", "baseline_text_tfidf"}  # not majority
    metrics = json.loads((output / "seed_1" / "teacher" / "metrics.json").read_text())["test_by_text_column"]
    teacher = rows["teacher"]
    assert teacher["columns"]["asr_text"]["macro_f1"]["values"] == [metrics["asr_text"]["macro_f1"]]
    assert teacher["differences"]["asr_text"]["values"] == pytest.approx(
        [metrics["asr_text"]["macro_f1"] - metrics["text"]["macro_f1"]])
    table = (output / "results.md").read_text()
    assert "## Test transcripts: trained on `text`, tested with each transcript column" in table
    assert "| Δ macro-F1 (asr_text − text) |" in table
    assert set(transcripts["test_cer"]) == {"asr_text"} and transcripts["test_cer"]["asr_text"] > 0
    assert f"`asr_text` against `text` on these test utterances: {100 * transcripts['test_cer']['asr_text']:.1f} %" in table

    # Trained on the recognizer's transcripts (baselines only, for speed): scripts/asr_gap.py joins both runs.
    reverse = tmp_path_factory.mktemp("asr_trained")
    main(["--output_dir", str(reverse), "--baselines_only", "--seeds", "1", "--baselines", "text_tfidf",
          "--data_cache_dir", str(cache), "--asr_model", tiny_whisper_folder(), "--text_column", "asr_text",
          "--test_text_columns", "text"])
    gap = tmp_path_factory.mktemp("asr_gap") / "gap"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "asr_gap.py"), "--gold_run", str(output),
                             "--asr_run", str(reverse), "--output", str(gap)], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    table = json.loads(gap.with_suffix(".json").read_text())
    assert [row["name"] for row in table["rows"]] == ["baseline_text_tfidf"]  # the only row both runs have
    row = table["rows"][0]
    gold_tfidf = report["per_seed"]["1"]["baseline_text_tfidf"]
    assert row["macro_f1"]["gold_gold"]["values"] == [gold_tfidf["metrics"]["macro_f1"]]
    assert row["macro_f1"]["gold_asr"]["values"] == [gold_tfidf["test_by_text_column"]["asr_text"]["macro_f1"]]
    assert row["differences"]["asr_cost"]["values"] == pytest.approx(
        [row["macro_f1"]["gold_asr"]["values"][0] - row["macro_f1"]["gold_gold"]["values"][0]])
    assert "| Baseline: character 1-3-gram TF-IDF" in gap.with_suffix(".md").read_text()
    assert table["provenance"]["command"].startswith("python scripts/asr_gap.py --gold_run")
    # the gold-trained run alone: its two test columns and the cost of ASR, for every row it has
    alone = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "asr_gap.py"), "--gold_run", str(output),
                            "--output", str(gap)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert alone.returncode == 0, alone.stderr
    table = json.loads(gap.with_suffix(".json").read_text())
    assert table["combinations"] == ["gold_gold", "gold_asr"] and table["asr_run"] is None
    assert [row["name"] for row in table["rows"]] == [row["name"] for row in transcripts["rows"]]
    teacher = next(row for row in table["rows"] if row["name"] == "teacher")
    assert list(teacher["differences"]) == ["asr_cost"]
    assert teacher["macro_f1"]["gold_asr"]["values"] == [metrics["asr_text"]["macro_f1"]]
    assert table["test_cer"] == transcripts["test_cer"]["asr_text"]
    assert "trained on ASR" not in gap.with_suffix(".md").read_text()
    # two runs that do not pair up are refused with a reason
    refused = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "asr_gap.py"), "--gold_run", str(reverse),
                              "--asr_run", str(output), "--output", str(gap)], capture_output=True, text=True,
                             cwd=REPO_ROOT, timeout=300)
    assert refused.returncode == 2 and "asr_gap.py: error: --gold_run" in refused.stderr
