"""Render README.md's result tables from the committed result files, or check that README matches them.

Every block of README.md between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` is the output of the
renderer registered under NAME in :data:`TABLES`, fed with that entry's result files. Each block names the command
and commit stored in its result file (or, where the file records none, the commit that added the file), says how
its ratios and spreads are computed, and is marked **STALE** when the code that made it changed after that commit.

    python scripts/render_readme.py            # rewrite the blocks in README.md
    python scripts/render_readme.py --check    # exit 1, naming the blocks that differ (tests/test_render_readme.py)

Adding a table: (1) commit the result file (e.g. ``results/NAME/results.json``, with ``provenance.command`` and
``provenance.git_commit`` as ``multistill.tools.experiment`` writes them); (2) write ``render_NAME(files) -> str`` below,
where ``files`` maps each source path to its parsed JSON; (3) add ``"NAME": Table(sources, render_NAME)``
to :data:`TABLES`, ``code`` being the paths whose change makes the result stale; (4) put the two marker lines in
README.md and run this script.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules below, however this file is loaded
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # and the package
from readme_audio_layer_mix import LAYER_MIX_SEARCH, audio_layer_mix_files, render_audio_layer_mix  # noqa: E402
from readme_audio_weight import AUDIO_WEIGHT_SEARCH, audio_weight_files, render_audio_weight  # noqa: E402
from readme_lib import (  # noqa: E402
    BENCH_CODE,
    ROOT,
    STALE_PREFIX,
    STREAM_CODE,
    TRAINING_CODE,
    Table,
    _git,
    from_file,
    ms,
    paired_line,
    pm,
    ratio,
    stale_note,
    table,
)
from readme_recipe import (  # noqa: E402
    BRANCH_BALANCE,
    CONTEXT_SIZES,
    CROSS_CORPUS,
    LIGHT_ROOT,
    RECIPE_CODE,
    RECIPE_FOLDS,
    STUDENT_CONTEXT,
    STUDENTS_ROOT,
    TEXT_HEAD_PROBE,
    TRAINED_LATENCY,
    TRANSCRIPT_OVERLAP,
    VALIDATION_SEARCH,
    VALIDATION_SESSIONS,
    VALIDATION_SESSIONS_TEST,
    asr_files,
    context_file,
    recipe_file,
    render_asr_gap,
    render_branch_balance,
    render_context,
    render_cross_corpus,
    render_recipe,
    render_students,
    render_text_encoders,
    render_text_head_probe,
    render_trained_latency,
    render_transcript_overlap,
    render_validation_search,
    render_validation_sessions,
    text_encoder_files,
    validation_search_files,
)

from multistill.asr import SHORT_WINDOW_S  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402

# --------------------------------------------------------------------------------------------
# Renderers: one per README block
# --------------------------------------------------------------------------------------------

MAIN_JOB = "results/main_job/results.json"
HEADLINE = "benchmarks/results/benchmark_cpu_headline.json"
EXPERIMENT_METRICS = (("accuracy", "accuracy (WA)"), ("weighted_precision", "precision"), ("weighted_f1", "F1"),
                      ("unweighted_accuracy", "UA"), ("macro_f1", "macro-F1"))
RATIO_RULE = ("Ratios are the median over the rounds of each round's ratio (teacher time / model time, both "
              "measured in the same round), with the min-max of the per-round ratios in brackets; they are not the "
              "ratio of the medians shown")


def render_main_job(files: dict[str, Any]) -> str:
    """The main job's mean ± std table, paired differences and caching gain."""
    data = files[MAIN_JOB]
    p, s = data["provenance"], data["settings"]
    rows = []
    for row in data["rows"]:
        params, lat = row.get("parameters"), row.get("latency")
        rows.append([row["label"], *(pm(row["summary"][key]) for key, _ in EXPERIMENT_METRICS),
                     f"{params['trainable']:,}" if params else "–", f"{params['total']:,}" if params else "–",
                     pm(lat["latency_ms_median"], 1.0, 1) if lat else "–",
                     pm(lat["real_time_factor"], 1.0, 4) if lat else "–"])
    header = ["model", *(title for _, title in EXPERIMENT_METRICS), "trainable params", "total params",
              "latency ms/utt", "RTF"]
    load = p["machine"]["load_average_start"][0], p["machine"]["load_average_end"][0]
    lines = [from_file(data, MAIN_JOB), "",
             f"{p['machine']['cpu']} with {p['machine']['cpus_available']} cores, torch {p['machine']['torch']}: "
             f"{data['duration_s'] / 60:.1f} min wall clock (load average {load[0]:.1f} at the start, {load[1]:.1f} "
             f"at the end, from other processes), {data['cpu_seconds'] / 60:.1f} min CPU time of all processes. "
             f"Mean ± sample standard deviation over seeds {', '.join(map(str, s['seeds']))}:", "",
             table(header, rows), "",
             "Paired by seed (macro-F1 points, mean ± std of the per-seed differences):", ""]
    for c in data["comparisons"]:
        first, second = ("teacher", "baseline") if c["second"].startswith("baseline") else ("KD", "no KD")
        title = c["title"].split(": ")[0]  # results.json titles name the difference since the experiment refactor
        lines.append(f"* {title}: {first} − {second} {paired_line(c, first, second)}")
    gain = data.get("caching_gain")
    if gain:
        epochs = gain["per_seed"][min(gain["per_seed"])]["epochs"]
        lines.append(f"* Cached encoder features: {epochs:g}-epoch teacher runs took {pm(gain['cached_epoch_seconds'], 1.0)}"
                     f" s per epoch on cached features vs {pm(gain['uncached_epoch_seconds'], 1.0)} s running the "
                     f"frozen encoders every step, {pm(gain['speedup'], 1.0, 1)}x faster (mean ± std of the per-seed "
                     f"ratios, {gain['speedup']['n']} pairs of runs of equal epochs).")
    return "\n".join(lines)



def render_whisper_verify(files: dict[str, Any]) -> str:
    source = "results/whisper_verify/results.json"
    data = files[source]
    r = data["report"]
    n = r["utterances"]
    rows = [
        ["utterances (KEMDy19 + KEMDy20)", f"{n} ({r['kemdy19']} + {r['kemdy20']})"],
        ["encoder, same log-mel: max abs error (max abs value)",
         f"{r['encoder_max_abs_error']:.2e} ({r['encoder_max_abs_value']:.1f})"],
        ["encoder, same log-mel: relative L2 error", f"{r['encoder_relative_error']:.1e}"],
        ["transcripts, same log-mel window: character difference",
         f"{100 * r['char_difference']:.2f} % ({r['identical']}/{n} identical)"],
        ["transcripts, each with its own front end: character difference",
         f"{100 * r['char_difference_own_features']:.2f} % ({r['identical_own_features']}/{n} identical)"],
        ["CER vs gold: faster-whisper (original)", f"{100 * r['cer_faster_whisper']:.1f} %"],
        ["CER vs gold: transformers (converted), faster-whisper's log-mel", f"{100 * r['cer_transformers']:.1f} %"],
        ["CER vs gold: transformers (converted), `WhisperFeatureExtractor`",
         f"{100 * r['cer_transformers_own_features']:.1f} %"],
    ]
    return "\n".join([from_file(data, source), "", table(["measure (KEMDy19 + KEMDy20 sample)", "value"], rows)])


def render_vad_eval(files: dict[str, Any]) -> str:
    source = "benchmarks/results/vad_eval.json"
    data = files[source]
    rows = []
    for conv in data["conversations"]:
        name = " + ".join(part.split("_", 1)[1] for part in conv["spec"].split("+"))
        results = [r for r in conv["results"] if r["hangover_ms"] == 500.0]
        for i, r in enumerate(results):
            vad = f"**{r['vad']}**" if r["vad"] == "silero" else r["vad"]
            rows.append([f"{name} ({conv['audio_s']:.0f} s)" if i == 0 else "", vad,
                         f"{r['segments']} / {r['true_utterances']}", str(r["one_to_one"]),
                         f"{r['split_utterances']} ({r['extra_segments_from_splits']})", str(r["merged_segments"]),
                         str(r["missed"]), f"{r['start_error']['median_abs_ms']:.0f} / "
                         f"{r['end_error']['median_abs_ms']:.0f}", f"{r['vad_rtf']:.3f}"])
    header = ["conversation", "VAD", "segments / true", "one-to-one", "split (extra segments)", "merged", "missed",
              "start / end error median ms", "VAD RTF"]
    return "\n".join([from_file(data, source), "", "At the default 500 ms hangover (the file also has 300 and "
                      "800 ms):", "", table(header, rows)])


#: The live stream with ASR in the loop, two runs of the script (faster-whisper's encoder window x early start).
STREAM_ASR = ("benchmarks/results/stream_asr_cpu_window.json", "benchmarks/results/stream_asr_cpu_window_2.json")


def _window_label(window: float | None) -> str:
    return "–" if window is None else f"**{window:g} s** (default)" if window == SHORT_WINDOW_S else f"{window:g} s"


def render_stream_asr(files: dict[str, Any]) -> str:
    """The live stream with ASR in the loop: faster-whisper's encoder window x early start, runs alternating."""
    runs = [(script, r) for script, source in enumerate(STREAM_ASR, 1) for r in files[source]["runs"]]
    runs.sort(key=lambda item: (item[1]["early_ms"] != 200, item[1]["early_ms"], -(item[1].get("asr_window_s") or 0),
                                item[0], item[1]["run"]))
    rows = []
    for script, r in runs:
        asr, emo, lat = r["stages"]["asr_per_utterance"], r["stages"]["emotion_per_utterance"], r["latency"]
        early = "0 (at the close)" if r["early_ms"] == 0 else "**200 ms** (default)" if r["early_ms"] == 200 \
            else f"{r['early_ms']:.0f} ms"
        used = "–" if not r["early_started"] else f"{r['early_used']} / {r['early_started'] - r['early_used']}"
        load = "–" if r.get("other_load_pct") is None else f"{r['other_load_pct']:.0f} %"
        rows.append([_window_label(r.get("asr_window_s")), early, f"{script}, {r['run']}", f"{r['rtf']:.3f}",
                     f"{ms(asr['median_ms'])} / {ms(asr['p90_ms'])}", f"{ms(emo['median_ms'])} / {ms(emo['p90_ms'])}",
                     f"{ms(1000 * lat['end_of_speech_median_s'])} / {ms(1000 * lat['end_of_speech_p90_s'])}", used,
                     load])
    header = ["ASR encoder window", "early start", "script run, run", "RTF (VAD + ASR + emotion)",
              "ASR ms per utterance, median / p90", "emotion ms", "end of utterance to result ms, median / p90",
              "early jobs used / dropped", "other processes' CPU load"]
    return "\n".join([*(from_file(files[source], source) for source in STREAM_ASR), "", table(header, rows)])


ASR_CER = ("benchmarks/results/asr_cer.json", "benchmarks/results/asr_cer_window30.json")


def render_asr_cer(files: dict[str, Any]) -> str:
    """Whisper base's CER on the sample with faster-whisper's short encoder window and with Whisper's 30 s."""
    runs = [files[source] for source in ASR_CER]
    windows = [f"{run['asr']['encoder_window_s']:g} s window" for run in runs]
    names = {"all": "all", "KEMDy19": "KEMDy19 (acted)", "KEMDy20": "KEMDy20 (free talk)"}
    rows = [[names.get(key, key), str(row["utterances"])]
            + [f"{100 * run['cer'][key]['cer']:.1f} %" for run in runs]
            + [f"{100 * run['cer'][key]['cer_with_spaces']:.1f} %" for run in runs]
            + [" / ".join(str(run["cer"][key]["empty_hypotheses"]) for run in runs)]
            for key, row in runs[0]["cer"].items()]
    header = (["corpus", "utterances"] + [f"CER, {w}" for w in windows] + [f"CER with spaces, {w}" for w in windows]
              + [f"empty ASR output ({' / '.join(windows)})"])
    timing = "; ".join(
        f"{w}: {run['timing']['transcribe_s']:,.0f} s ({run['timing']['asr_rtf']:.3f} x real time, other processes "
        f"{run['machine']['others_cpu_pct']:.0f} % of the CPU)" for w, run in zip(windows, runs, strict=True))
    return "\n".join([*(from_file(run, source) for run, source in zip(runs, ASR_CER, strict=True)), "",
                      table(header, rows), "",
                      f"CER = summed character edits / summed gold characters over the utterances. "
                      f"{runs[0]['timing']['transcribed']} utterances, {runs[0]['audio_s'] / 60:.1f} min of audio, "
                      f"transcribed on {runs[0]['timing']['threads']} threads, one run after the other: {timing}."])


ASR_LOOP_GUARDS = "results/asr_loop_guards/session02_n16_seed22.json"


def render_asr_loop_guards(files: dict[str, Any]) -> str:
    """The converted Whisper folder through the plain transformers ASR pipeline, with and without its guards."""
    data = files[ASR_LOOP_GUARDS]
    settings, variants = data["settings"], data["variants"]
    same = sum(a["hyp_chars"] == b["hyp_chars"] and a["cer"] == b["cer"] for a, b in zip(
        variants["without_guards"]["utterances"], variants["with_guards"]["utterances"], strict=True))
    rows = [[name.replace("_", " "), f"{100 * v['cer']:.1f} % ({v['char_errors']}/{v['reference_chars']})",
             f"{v['longest_hyp_chars']} (reference {v['longest_ref_chars']})", str(v["over_3x_reference"]),
             f"{v['decode_s']:.1f} s"] for name, v in variants.items()]
    return "\n".join([
        table(["generation_config.json", "CER", "longest output, characters", "outputs over 3x their reference",
               "decoding time"], rows), "",
        f"{settings['n']} random {settings['corpus']} Session {settings['session']:02d} utterances (seed "
        f"{settings['seed']}), `pipeline(\"automatic-speech-recognition\", model=FOLDER, "
        f"generate_kwargs={{\"language\": \"ko\"}})`, one thread; {same} of {settings['n']} outputs are the same "
        "length with the same CER in both rows.", "",
        from_file(data, ASR_LOOP_GUARDS)])


def _headline_rows(data: dict[str, Any]) -> list[list[str]]:
    labels = {"teacher": "teacher", "multimodal_student": "multimodal student (paper)",
              "audio_student": "audio student (paper)", "text_student": "text student (paper)",
              "light_student": "**light student**", "whisper_teacher": "Whisper-base teacher",
              "whisper_multimodal_student": "Whisper-base multimodal student",
              "whisper_audio_student": "Whisper-base audio student",
              "whisper_light_student": "Whisper-base light student (2 of 6 layers)"}
    order = list(labels)
    base = sorted((r for r in data["latency"] if r["variant"] == "fp32"), key=lambda r: order.index(r["model"]))
    rows = []
    for r in base:
        split, params = r["split"], data["models"][r["model"]]["params"]
        e2e, bold = r["e2e"], r["model"] == "light_student"
        time = f"{ms(e2e['median_ms'])} ms"
        rows.append([labels[r["model"]], f"{params['total'] / 1e6:.1f} M",
                     f"{ms(split['audio_encoder_ms'])} ms" if data["models"][r["model"]]["uses_audio"] else "–",
                     f"{ms(split['text_encoder_ms'])} ms" if "text_encoder_ms" in split and
                     data["models"][r["model"]]["uses_text"] else "–", f"{ms(split['fusion_ms'])} ms",
                     f"**{time}** [{ms(e2e['spread_ms'][0])}-{ms(e2e['spread_ms'][1])}]" if bold else
                     f"{time} [{ms(e2e['spread_ms'][0])}-{ms(e2e['spread_ms'][1])}]",
                     "1.0x" if r["model"] == "teacher" else
                     (f"**{ratio(r['speedup_vs_teacher'])}** [" if bold else f"{ratio(r['speedup_vs_teacher'])} [")
                     + f"{r['speedup_vs_teacher_range'][0]:.1f}-{r['speedup_vs_teacher_range'][1]:.1f}]"])
    return rows


def _int8_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in data["latency"]:
        if r["variant"] != "int8" or r["model"] not in ("teacher", "light_student"):
            continue
        e2e, light = r["e2e"], r["model"] == "light_student"
        time = f"{ms(e2e['median_ms'])} ms"
        spread = f"[{ms(e2e['spread_ms'][0])}-{ms(e2e['spread_ms'][1])}]"
        if not light:
            rows.append(["teacher, int8", "", "", "", "", f"{time} {spread}", "1.0x"])
            continue
        lo, hi = r["speedup_vs_teacher_range"]
        flo, fhi = r["speedup_vs_fp32_teacher_range"]
        rows.append(["**light student, int8**", "", "", "", "", f"**{time}** {spread}",
                     f"**{ratio(r['speedup_vs_teacher'])}** [{lo:.1f}-{hi:.1f}] vs int8 teacher "
                     f"({ratio(r['speedup_vs_fp32_teacher'])} [{flo:.1f}-{fhi:.1f}] vs fp32 teacher)"])
    return rows


def _values(data: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in ``data``."""
    if isinstance(data, dict):
        return [v for k, v in data.items() if k == key] + [x for v in data.values() for x in _values(v, key)]
    if isinstance(data, list):
        return [x for v in data for x in _values(v, key)]
    return []


def render_benchmark_headline(files: dict[str, Any]) -> str:
    data = files[HEADLINE]
    m, s = data["machine"], data["settings"]
    rows = _headline_rows(data)
    int8 = _int8_rows(data)
    at = next(i for i, row in enumerate(rows) if "light student**" in row[0]) + 1
    rows[at:at] = int8
    header = ["model", "params", "audio encoder", "text encoder", "fusion head", "end to end [rounds]",
              "vs teacher, same precision"]
    h = data["headline"]
    return "\n".join([
        from_file(data, HEADLINE), "",
        f"{m['cpu']} ({m['cpu_capability']}), {m['cpus_available']} cores, {s['threads']} thread, torch {m['torch']}; "
        f"batch {h['batch_size']}, one {h['audio_seconds']:g} s utterance with {s['text_tokens']} tokens, end to end "
        f"from raw audio and token ids; times are medians of {h['rounds']} interleaved rounds, [min-max of the "
        f"round medians]. Other processes used {m['others_cpu_pct']:.0f} % of the CPU during the run"
        + (", so absolute times are pessimistic and spreads wide. " if m["others_cpu_pct"] > 10 else ". ")
        + f"{RATIO_RULE} (e.g. the light student: {ms(h['teacher_ms'])} / "
        f"{ms(h['light_student_ms'])} ms = {h['teacher_ms'] / h['light_student_ms']:.1f}x, median per-round "
        f"ratio {h['speedup']:.1f}x).", "",
        table(header, rows), "",
        f"int8 checks: {sum(map(bool, _values(data, 'argmax_match')))} of {len(_values(data, 'argmax_match'))} "
        "checked inputs (one per int8 model and round) gave the fp32 model's argmax; max logit difference "
        f"{max(_values(data, 'max_abs_logit_diff')):.3f}. Whisper-base light student vs the Whisper-base teacher: "
        + ", ".join(f"{ratio(w['speedup_vs_own_teacher'], w['speedup_vs_own_teacher_range'])}" for w in h["whisper"]
                    if w["model"] == "whisper_light_student") + " (same rule)."])


def render_speed_headline(files: dict[str, Any]) -> str:
    data = files[HEADLINE]
    h, m = data["headline"], data["machine"]
    v = h["variants"][0]
    lo, hi = h["speedup_range"]
    return (f"* **Speed**: a light student whose encoders are small too, **{h['speedup']:.1f}x faster than the teacher "
            f"end to end** (fp32 vs fp32, same run: median over {h['rounds']} interleaved rounds of the per-round "
            f"ratio, {lo:.1f}-{hi:.1f}x; the median times, {ms(h['light_student_ms'])} ms vs {ms(h['teacher_ms'])} ms "
            f"per {h['audio_seconds']:g} s utterance, give {h['teacher_ms'] / h['light_student_ms']:.1f}x; {m['threads']} thread on "
            f"{'a shared' if m['others_cpu_pct'] > 10 else 'an idle'} {m['cpus_available']}-core CPU) and "
            f"{v['speedup']:.1f}x int8 vs int8 teacher, where the paper's students are not "
            "faster at all (their 315 M-parameter audio encoder dominates). See [Benchmarks](#benchmarks). These are "
            f"the architectures' speeds (random weights); {trained_speed_sentence(files[TRAINED_LATENCY])}\n\n"
            "  " + from_file(files[HEADLINE], HEADLINE) + "\n  " + from_file(files[TRAINED_LATENCY], TRAINED_LATENCY))


def trained_speed_sentence(data: dict[str, Any]) -> str:
    """The recipe's light students as trained on real speech: their speed-up over their own teachers."""
    ratios = [m["teacher_ratio"] for m in data["models"] if m["preset"] == "light_student" and m["audio_layers"] == 0]
    seconds = [u["seconds"] for u in data["utterances"]]
    low, high = f"{min(ratios):.1f}", f"{max(ratios):.1f}"
    speed = low if low == high else f"{low}-{high}"  # the two folds' students can round to one figure
    return (f"trained on real speech, the recipe's light student (Whisper's convolutions only) keeps its teacher's "
            f"macro-F1 on both held-out sessions and is **{speed}x faster than its "
            f"teacher** on real {min(seconds):.1f}-{max(seconds):.1f} s utterances (fp32, same run, "
            f"{'a shared' if data['others_cpu_pct'] > 10 else 'an idle'} CPU; "
            "[its table](#the-light-student-of-the-recipe)).")


#: The threads benchmark on this CPU: alone, and beside two CPU-bound processes (``--busy_processes 2``).
THREADS = ("benchmarks/results/threads_cpu.json", "benchmarks/results/threads_cpu_busy.json")


def _threads_run(data: dict[str, Any]) -> tuple[str, list[float]]:
    """One run's sentence (the medians with 1 and 2 threads, their ratio) and its three ratios."""
    one, two = data["medians"]["1"], data["medians"]["2"]
    ratios = [two[k] / one[k] for k in ("caching", "teacher_steps", "light_steps")]
    load = data["load_average"]
    others = (f"beside {data['busy_processes']} CPU-bound processes" if data.get("busy_processes")
              else "with no other work started")
    return (f"{others} (load average {min(load):.1f}-{max(load):.1f}, the run's own threads included): caching the "
            f"features of 128 utterances {one['caching']:.2f} s vs {two['caching']:.2f} s ({ratios[0]:.1f}x), "
            f"{data['steps']} teacher steps on cached features {one['teacher_steps']:.2f} s vs "
            f"{two['teacher_steps']:.2f} s ({ratios[1]:.1f}x), {data['steps']} light-student steps on raw inputs "
            f"{one['light_steps']:.2f} s vs {two['light_steps']:.2f} s ({ratios[2]:.1f}x)"), ratios


def render_threads(files: dict[str, Any]) -> str:
    idle, busy = (files[source] for source in THREADS)
    idle_text, idle_ratios = _threads_run(idle)
    busy_text, busy_ratios = _threads_run(busy)
    if max(busy_ratios) > 1.1 and max(idle_ratios) <= 1.1:
        advice = (f"two threads save at most {100 * (1 - min(idle_ratios)):.0f} % on idle cores and take up to "
                  f"{max(busy_ratios):.1f}x as long on shared ones, so on a small CPU shared with other work use "
                  "`--threads 1`.")
    else:
        advice = "which thread count to prefer follows from the ratios above."
    return "\n".join([
        "* **Threads**: `--threads N` sets torch's CPU threads for caching and training (default: torch's, one per "
        f"core). Measured side by side with `python benchmarks/threads_training.py --threads 1 2` (tiny backbones) on "
        f"this project's {idle['cpu_count']}-core machine, medians of {idle['repeats']} alternating repetitions "
        f"(ratio = 2-thread median / 1-thread median), {idle_text}; and {busy_text}: {advice}",
        *("  " + from_file(files[source], source) for source in THREADS)])


#: The code of the trained models' latency benchmark: the recipe that trained them and the timing script.
TRAINED_LATENCY_CODE = RECIPE_CODE + ("benchmarks/trained_latency.py", "benchmarks/bench_lib.py")
#: README block name -> its result files, renderer and the code paths that make it stale.
TABLES: dict[str, Table] = {
    # (the trained light student's sentence reads TRAINED_LATENCY, which depends on the code its own block names)
    "speed_headline": Table((HEADLINE, TRAINED_LATENCY), render_speed_headline, (),
                            {HEADLINE: BENCH_CODE, TRAINED_LATENCY: TRAINED_LATENCY_CODE}),
    "whisper_verify": Table(("results/whisper_verify/results.json",), render_whisper_verify,
                            ("multistill/tools/whisper_base.py", "multistill/tools/whisper_convert.py", "multistill/asr.py",
                             "multistill/annotations.py", "multistill/processing_multistill.py",
                             "multistill/audio_utils.py")),
    "threads": Table(THREADS, render_threads,
                     ("benchmarks/threads_training.py", "multistill/training/trainer.py", "multistill/training/features.py",
                      "multistill/training/feature_cache.py")),
    "main_job": Table((MAIN_JOB,), render_main_job, TRAINING_CODE + ("scripts/main.sh",)),
    "asr_cer": Table(ASR_CER, render_asr_cer,
                     ("benchmarks/asr_cer.py", "multistill/asr.py", "multistill/annotations.py")),
    "asr_gap": Table(asr_files(), render_asr_gap, RECIPE_CODE,
                     {source: ("scripts/asr_gap.py",) for source in asr_files() if source.endswith("_gap.json")}),
    "asr_loop_guards": Table((ASR_LOOP_GUARDS,), render_asr_loop_guards,
                             ("scripts/asr_loop_guards.py", "multistill/tools/whisper_convert.py")),
    "vad_eval": Table(("benchmarks/results/vad_eval.json",), render_vad_eval,
                      ("benchmarks/vad_eval.py", "multistill/live/vad.py", "multistill/live/streaming.py")),
    "stream_asr": Table(STREAM_ASR, render_stream_asr, STREAM_CODE),
    "benchmark_headline": Table((HEADLINE,), render_benchmark_headline, BENCH_CODE),
    "recipe": Table(tuple(recipe_file(fold) for fold, _ in RECIPE_FOLDS), render_recipe, RECIPE_CODE),
    "context": Table(tuple(context_file(fold, k) for fold, _ in RECIPE_FOLDS for k in CONTEXT_SIZES), render_context,
                     RECIPE_CODE),
    "students": Table(tuple(recipe_file(fold, STUDENT_CONTEXT, root=STUDENTS_ROOT) for fold, _ in RECIPE_FOLDS),
                      functools.partial(render_students, students=("text_student", "audio_student")), RECIPE_CODE),
    "text_encoders": Table(text_encoder_files(), render_text_encoders, RECIPE_CODE),
    "text_head_probe": Table((TEXT_HEAD_PROBE,), render_text_head_probe,
                             ("scripts/text_head_probe.py", "loading_scripts", "multistill/training/data.py")),
    "branch_balance": Table((BRANCH_BALANCE,), render_branch_balance,
                            ("scripts/branch_balance_probe.py", "loading_scripts", "multistill/training/data.py",
                             "multistill/tools/baselines.py")),
    "cross_corpus": Table(CROSS_CORPUS, render_cross_corpus, RECIPE_CODE),
    "validation_search": Table(validation_search_files(), render_validation_search, RECIPE_CODE,
                               {source: ("scripts/validation_search.py", "scripts/validation_scores.py")
                                for source in VALIDATION_SEARCH.values()}),
    "validation_sessions": Table((VALIDATION_SESSIONS, VALIDATION_SESSIONS_TEST, *CROSS_CORPUS),
                                 render_validation_sessions, RECIPE_CODE,
                                 {VALIDATION_SESSIONS: ("scripts/validation_search.py", "scripts/validation_scores.py")}),
    "audio_weight": Table(audio_weight_files(), render_audio_weight, RECIPE_CODE,
                          {source: ("scripts/validation_search.py", "scripts/validation_scores.py")
                           for source in AUDIO_WEIGHT_SEARCH.values()}),
    "audio_layer_mix": Table(audio_layer_mix_files(), render_audio_layer_mix, RECIPE_CODE,
                             {source: ("scripts/validation_search.py", "scripts/validation_scores.py")
                              for source in LAYER_MIX_SEARCH.values()}),
    "transcript_overlap": Table((TRANSCRIPT_OVERLAP,), render_transcript_overlap,
                                ("scripts/transcript_overlap.py", "loading_scripts", "multistill/training/data.py")),
    "light_student": Table(tuple(recipe_file(fold, STUDENT_CONTEXT, root=LIGHT_ROOT) for fold, _ in RECIPE_FOLDS),
                           functools.partial(render_students, root=LIGHT_ROOT), RECIPE_CODE),
    "trained_latency": Table((TRAINED_LATENCY,), render_trained_latency, TRAINED_LATENCY_CODE),
}


# --------------------------------------------------------------------------------------------
# README blocks
# --------------------------------------------------------------------------------------------

BLOCK = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)\n?(<!-- /table:(?P=name) -->)", re.S)


def render(name: str) -> str:
    spec = TABLES[name]
    missing = [source for source in spec.sources if not (ROOT / source).is_file()]
    if missing:
        raise SystemExit(f"error: the result file {missing[0]} of README block `{name}` does not exist.")
    files = {source: json.loads((ROOT / source).read_text(encoding="utf-8")) for source in spec.sources}
    body = spec.render(files)
    note = stale_note(files, spec.code, spec.source_code)
    return body if note is None else f"{note}\n\n{body}"


def without_stale(text: str) -> str:
    """The block without its STALE paragraph (compared when git cannot tell, e.g. in a shallow clone)."""
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(STALE_PREFIX))


def render_readme(readme: str) -> tuple[str, list[str], list[str]]:
    """README with every block re-rendered; the blocks that changed; the registered names missing from README."""
    changed: list[str] = []
    seen: set[str] = set()

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"error: README.md has a block `{name}` that scripts/render_readme.py does not know; "
                             f"registered: {', '.join(TABLES)}.")
        seen.add(name)
        new = render(name)
        old = match["body"]
        if new != old and not (without_stale(new) == without_stale(old) and git_unknown(name)):
            changed.append(name)
        return f"{match.group(1)}{new}\n{match.group(4)}"

    text = BLOCK.sub(replace, readme)
    return text, changed, [name for name in TABLES if name not in seen]


def git_unknown(name: str) -> bool:
    """True when git cannot say whether the block is stale (no history, e.g. a shallow clone or a tarball)."""
    return _git("rev-parse", "HEAD") is None or _git("rev-parse", "--is-shallow-repository") == "true"


@dataclass
class RenderArguments:
    """Render README.md's result tables from the committed result files (or check them)."""

    check: bool = field(default=False, metadata={"help": "Only compare: exit 1 naming the blocks that differ."})
    readme: str = field(default=str(ROOT / "README.md"), metadata={"help": "The README to render."})


def main(argv: list[str] | None = None) -> int:
    """1. parse; 2. render every block; 3. write README.md, or (``--check``) report the differences."""
    try:
        (args,) = parse_command_line(HfArgumentParser(RenderArguments, description=RenderArguments.__doc__),
                                     sys.argv[1:] if argv is None else list(argv))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    readme = Path(args.readme)
    if not readme.is_file():
        print(f"error: --readme {readme} is not a file.", file=sys.stderr)
        return 2
    old = readme.read_text(encoding="utf-8")
    new, changed, missing = render_readme(old)
    if missing:
        print(f"error: {readme} lacks the blocks {', '.join(missing)} (add `<!-- table:NAME -->` ... "
              "`<!-- /table:NAME -->`).", file=sys.stderr)
        return 1
    if args.check:
        if changed:
            print(f"error: {readme} differs from the result files in: {', '.join(changed)}; run "
                  "`python scripts/render_readme.py` and commit README.md.", file=sys.stderr)
            return 1
        print(f"{readme}: {len(TABLES)} blocks match their result files.")
        return 0
    readme.write_text(new, encoding="utf-8")
    print(f"{readme}: re-rendered {len(changed)} of {len(TABLES)} blocks" + (f" ({', '.join(changed)})" if changed
                                                                             else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
