"""Render README.md's result tables from the committed result files, or check that README matches them.

Every block of README.md between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` is the output of the
renderer registered under NAME in :data:`TABLES`, fed with that entry's result files. Each block names the command
and commit stored in its result file (or, where the file records none, the commit that added the file), says how
its ratios and spreads are computed, and is marked **STALE** when the code that made it changed after that commit.

    python scripts/render_readme.py            # rewrite the blocks in README.md
    python scripts/render_readme.py --check    # exit 1, naming the blocks that differ (tests/test_render_readme.py)

Adding a table: (1) commit the result file (e.g. ``results/NAME/results.json``, with ``provenance.command`` and
``provenance.git_commit`` as ``multistill.experiment`` writes them); (2) write ``render_NAME(files) -> str`` below,
where ``files`` maps each source path to its parsed JSON; (3) add ``"NAME": Table(sources, render_NAME)``
to :data:`TABLES`, ``code`` being the paths whose change makes the result stale; (4) put the two marker lines in
README.md and run this script.
"""

from __future__ import annotations

import functools
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
#: The code a training result depends on (the brief: everything the scripts import).
TRAINING_CODE = ("multistill", "train.py", "distill.py", "loading_scripts")
#: The code of the full-size latency benchmark.
BENCH_CODE = ("benchmarks/benchmark.py", "benchmarks/bench_lib.py", "benchmarks/bench_jobs.py",
              "multistill/modeling_multistill.py", "multistill/configuration_multistill.py",
              "multistill/processing_multistill.py", "multistill/offline.py")
STREAM_CODE = ("benchmarks/stream_rtf.py", "multistill/streaming.py", "multistill/vad.py", "multistill/asr.py",
               "multistill/pipeline_multistill.py", "multistill/modeling_multistill.py",
               "multistill/processing_multistill.py")
STALE_PREFIX = "**STALE**"


@dataclass
class Table:
    """One README block: its result files, the function that renders them, the code they depend on."""

    sources: tuple[str, ...]
    render: Callable[[dict[str, Any]], str]
    code: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Git: provenance and staleness
# --------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def added_in(path: str) -> str | None:
    """The commit that first added ``path`` (for result files that record no commit of their own)."""
    commits = _git("log", "--diff-filter=A", "--format=%H", "--", path)
    return commits.splitlines()[-1] if commits else None


def stale_since(commit: str | None, code: tuple[str, ...]) -> bool | None:
    """Whether any of ``code`` changed after ``commit`` (committed since, or uncommitted now); None if unknown."""
    if not commit or _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        return None
    changed = _git("rev-list", "-1", f"{commit}..HEAD", "--", *code)
    pending = _git("status", "--porcelain", "--", *code)
    if changed is None or pending is None:
        return None
    return bool(changed or pending)


def provenance(command: str | None, commit: str | None, dirty: bool | None, source: str,
               date: str | None = None, changes: int | None = None) -> str:
    """One sentence: the source file, its command and commit (else the commit that added the file), the date."""
    if not commit:
        made = ("The file records no command or commit; it was added to the repository in commit "
                f"`{(added_in(source) or 'unknown')[:7]}`")
    else:
        tree = "" if dirty is None else (
            f" (dirty tree: {changes} uncommitted change{'s' if changes != 1 else ''})" if dirty and changes
            else " (dirty tree)" if dirty else " (clean tree)")
        made = (f"Made by `{command}`" if command else "Made") + f" at commit `{commit[:7]}`{tree}"
    return f"*Source: [`{source}`]({source}). {made}{f', {date[:10]}' if date else ''}.*"


def source_commit(data: dict[str, Any], source: str) -> str | None:
    """The commit a result file was made at (``provenance.git_commit`` or ``commit``), else the one that added it."""
    return (data.get("provenance") or {}).get("git_commit") or data.get("commit") or added_in(source)


def stale_note(files: dict[str, Any], code: tuple[str, ...]) -> str | None:
    """The STALE paragraph when any of ``code`` changed after the commit of one of the block's result files."""
    for source, data in files.items():
        commit = source_commit(data, source)
        if stale_since(commit, code):
            return (f"{STALE_PREFIX}: code these figures depend on ({', '.join(f'`{c}`' for c in code)}) changed "
                    f"after commit `{(commit or '')[:7]}` of `{source}`; re-run its command to refresh them.")
    return None


def from_file(data: dict[str, Any], source: str) -> str:
    """:func:`provenance` from a result file's ``provenance`` dict (``multistill.experiment`` / benchmark layout)."""
    p = data.get("provenance") or {}
    return provenance(p.get("command"), p.get("git_commit"), p.get("git_dirty"), source,
                      p.get("date") or data.get("created"), p.get("git_changes"))


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def pm(stats: dict[str, Any] | None, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    """``mean ± std`` of a ``describe()`` dict (the mean alone for one value)."""
    if stats is None:
        return "–"
    text = f"{scale * stats['mean']:{'+' if signed else ''}.{digits}f}"
    return text if stats.get("std") is None else f"{text} ± {scale * stats['std']:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def ms(x: float) -> str:
    """Milliseconds with 3 significant figures (``2,135``, ``189``, ``75.0``)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def ratio(x: float, span: list[float] | None = None) -> str:
    return f"{x:.1f}x" + (f" [{span[0]:.1f}-{span[1]:.1f}]" if span else "")


def paired_line(c: dict[str, Any], first: str = "KD", second: str = "no KD") -> str:
    """One paired comparison (macro-F1 points): mean ± std, seeds ahead, and only what holds across seeds."""
    d = c["differences"]["macro_f1"]
    text = f"{pm(d, 100.0, 1, signed=True)} ({first} ahead in {d['ahead']} of {d['n']} seeds)"
    if d.get("std") is None:
        return text + "; one seed: no conclusion."
    if d["covers_zero"]:
        return text + "; the spread covers zero: no difference shown."
    return text + f"; the spread excludes zero: {first} {'ahead' if d['mean'] > 0 else 'behind'} in mean ± std."


# --------------------------------------------------------------------------------------------
# Renderers: one per README block
# --------------------------------------------------------------------------------------------

MAIN_JOB = "results/main_job/results.json"
REAL_SAMPLE = "results/real_sample/results.json"
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


def render_real_sample(files: dict[str, Any]) -> str:
    """The real-speech table: KD / no KD side by side, baselines as rows, paired differences."""
    data = files[REAL_SAMPLE]
    rows = {row["name"]: row for row in data["rows"]}
    keys = (("accuracy", "accuracy (WA)"), ("unweighted_accuracy", "UA"), ("macro_f1", "macro-F1"))
    labels = {"teacher": "Teacher (Whisper base + tiny text, 3 fusion layers)",
              "text_student": "(a) text-only student, KD / no KD",
              "audio_student": "(b) audio-only student (Whisper base), KD / no KD",
              "multimodal_student": "(c) multimodal student, KD / no KD"}
    body = []
    for name, label in labels.items():
        if name == "teacher":
            body.append([label, *(pm(rows[name]["summary"][k]) for k, _ in keys)])
        elif f"{name}_kd" in rows:
            kd, ce = rows[f"{name}_kd"]["summary"], rows[f"{name}_ce"]["summary"]
            body.append([label, *(f"{pm(kd[k])} / {pm(ce[k])}" for k, _ in keys)])
    body += [[row["label"], *(pm(row["summary"][k]) if row["summary"][k]["std"] else
                              f"{100 * row['summary'][k]['mean']:.2f}" for k, _ in keys)]
             for row in data["rows"] if row["kind"] == "baseline"]
    seeds = ", ".join(map(str, data["settings"]["seeds"]))
    lines = [from_file(data, REAL_SAMPLE), "",
             f"Mean ± std over seeds {seeds} (a baseline whose std is 0 shows its value alone); the latency column of "
             "the source file was measured on 3 utterances while other jobs loaded the machine.", "",
             table(["model (KEMDy19, held-out dialogues)", *(t for _, t in keys)], body), "",
             "Paired by seed (macro-F1 points, mean ± std of the per-seed differences):", ""]
    for c in data["comparisons"]:
        first, second = ("teacher", "baseline") if c["second"].startswith("baseline") else ("KD", "no KD")
        title = c["title"].split(":")[0]
        lines.append(f"* {title}: {first} − {second} {paired_line(c, first, second)}")
    return "\n".join(lines)


def render_kd_ablation(files: dict[str, Any]) -> str:
    source = "results/real_sample/kd_ablation.json"
    data = files[source]
    rows = [[r["setting"], f"{100 * r['macro_f1']:.1f}", f"{100 * r['unweighted_accuracy']:.1f}",
             f"{100 * r['accuracy']:.1f}"] for r in data["rows"]]
    teacher = data["teacher_test"]
    return "\n".join([
        provenance(None, data.get("commit"), None, source) + f" Command: {data['command']}.", "",
        f"Teacher of the same seed: macro-F1 {100 * teacher['test_macro_f1']:.1f}, UA "
        f"{100 * teacher['test_unweighted_accuracy']:.1f}, accuracy {100 * teacher['test_accuracy']:.1f}.", "",
        table([f"{data['student'].replace('_', ' ')}, seed {data['seed']}", "macro-F1", "UA", "accuracy (WA)"], rows)])


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
    return "\n".join([provenance(None, None, None, source, data.get("created")), "", "At the default 500 ms hangover (the file also has 300 and "
                      "800 ms):", "", table(header, rows)])


def _stream_rows(data: dict[str, Any], script_run: int, early: tuple[float, ...]) -> list[tuple[float, list[str]]]:
    rows = []
    for r in data["runs"]:
        if r["early_ms"] not in early:
            continue
        asr, emo = r["stages"]["asr_per_utterance"], r["stages"]["emotion_per_utterance"]
        lat = r["latency"]
        label = "0 (at the close)" if r["early_ms"] == 0 else "**200 ms** (default)" if r["early_ms"] == 200 \
            else f"{r['early_ms']:.0f} ms"
        used = "–" if not r["early_started"] else f"{r['early_used']} / {r['early_started'] - r['early_used']}"
        rows.append((r["early_ms"], [label, f"{script_run}, {r['run']}", f"{r['rtf']:.3f}",
                                     f"{ms(asr['median_ms'])} / {ms(asr['p90_ms'])}",
                                     f"{ms(emo['median_ms'])} / {ms(emo['p90_ms'])}",
                                     f"{ms(1000 * lat['end_of_speech_median_s'])} / "
                                     f"{ms(1000 * lat['end_of_speech_p90_s'])}", used]))
    return rows


def render_stream_asr(files: dict[str, Any]) -> str:
    first, second = "benchmarks/results/stream_asr_cpu_early.json", "benchmarks/results/stream_asr_cpu_early_100.json"
    rows = _stream_rows(files[first], 1, (0.0, 200.0)) + _stream_rows(files[second], 2, (100.0, 200.0))
    order = {0.0: 0, 200.0: 1, 100.0: 2}
    rows.sort(key=lambda item: order.get(item[0], 3))
    header = ["early start", "script run, run", "RTF (VAD + ASR + emotion)", "ASR ms per utterance, median / p90",
              "emotion ms", "end of utterance to result ms, median / p90", "early jobs used / dropped"]
    return "\n".join([provenance(None, None, None, first, files[first].get("created")), "",
                      provenance(None, None, None, second, files[second].get("created")), "",
                      table(header, [row for _, row in rows])])


def render_asr_cer(files: dict[str, Any]) -> str:
    source = "benchmarks/results/asr_cer.json"
    data = files[source]
    names = {"all": "all", "KEMDy19": "KEMDy19 (acted)", "KEMDy20": "KEMDy20 (free talk)"}
    rows = [[names.get(k, k), str(v["utterances"]), f"{100 * v['cer']:.1f} %", f"{100 * v['cer_with_spaces']:.1f} %",
             str(v["empty_hypotheses"])] for k, v in data["cer"].items()]
    t = data["timing"]
    return "\n".join([
        provenance(None, None, None, source, data.get("created")), "",
        table(["corpus", "utterances", "CER (no spaces)", "CER (with spaces)", "empty ASR output"], rows), "",
        f"CER = summed character edits / summed gold characters over the utterances. {t['transcribed']} utterances, "
        f"{data['audio_s'] / 60:.1f} min of audio, transcribed in {t['transcribe_s']:,.0f} s on {t['threads']} "
        f"threads ({t['asr_rtf']:.2f} x real time) with other processes using "
        f"{data['machine']['others_cpu_pct']:.0f} % of the CPU."])


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


def render_asr_gap(files: dict[str, Any]) -> str:
    source, gold = "results/real_sample/asr_gap.json", "results/real_sample/asr_gold.json"
    data = files[source]
    rows = []
    for row in data["rows"]:
        m, d = row["macro_f1"], row["differences"]
        cells = [pm(m["gold_gold"]), pm(m["gold_asr"]), pm(m["asr_asr"])]
        for key in ("asr_cost", "asr_training"):
            x = d[key]
            cells.append(f"{pm(x, 100.0, 1, signed=True)} ({x['ahead']} up, {x['behind']} down)")
        rows.append([row["label"], *cells])
    header = ["model", "gold-trained, gold test", "gold-trained, ASR test", "ASR-trained, ASR test",
              "cost of ASR (gold-trained: ASR − gold test)", "training on ASR (ASR test: ASR- − gold-trained)"]
    p = files[gold]["provenance"]
    return "\n".join([
        provenance("python scripts/asr_gap.py --gold_run outputs/asr_gold --asr_run outputs/asr_trained --output "
                   "results/real_sample/asr_gap", p["git_commit"], p["git_dirty"], source,
                   p["date"], p["git_changes"]),
        "", f"The two runs' commands are in the file. Character error rate of Whisper base's transcripts on these "
        f"test utterances: {100 * files[gold]['transcripts']['test_cer']['asr_text']:.1f} %. Macro-F1 %, mean ± std over seeds "
        f"{', '.join(map(str, data['seeds']))} on the same {data['test_examples']} held-out utterances; Δ = mean ± std "
        "of the per-seed differences, points, with the number of seeds up / down.", "", table(header, rows)])


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
        f"round medians]. Other processes used {m['others_cpu_pct']:.0f} % of the CPU during the run, so absolute "
        f"times are pessimistic and spreads wide. {RATIO_RULE} (e.g. the light student: {ms(h['teacher_ms'])} / "
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
            f"a shared {m['cpus_available']}-core CPU) and {v['speedup']:.1f}x int8 vs int8 teacher, where the paper's students are not "
            "faster at all (their 315 M-parameter audio encoder dominates). See [Benchmarks](#benchmarks).\n\n"
            "  " + from_file(files[HEADLINE], HEADLINE))


def render_older_benchmarks(files: dict[str, Any]) -> str:
    """The earlier EPYC runs (fp32 + training, variants) and the stream benchmark, in one paragraph."""
    cpu, var, stream = (files[f"benchmarks/results/{n}.json"] for n in ("benchmark_cpu", "benchmark_cpu_variants",
                                                                          "stream_cpu"))
    light = next(r for r in cpu["latency"] if r["model"] == "light_student" and r["variant"] == "fp32"
                 and r["batch_size"] == 1 and r["audio_seconds"] == 5.0)
    cached, raw = ({r["mode"]: r for r in cpu["training"] if r["model"] == "teacher"}[k] for k in ("cached", "encoders"))
    v8 = next(r for r in var["latency"] if r["model"] == "light_student" and r["variant"] == "int8"
              and r["audio_seconds"] == 5.0)
    runs = {r["model"]: r for r in stream["runs"] if r["threads"] == 2}
    ls, t = runs["light_student"], runs["teacher"]
    return "\n".join([
        provenance(None, None, None, "benchmarks/results/benchmark_cpu.json", cpu.get("created")),
        "", provenance(None, None, None, "benchmarks/results/benchmark_cpu_variants.json",
                       var.get("created")),
        "", provenance(None, None, None, "benchmarks/results/stream_cpu.json", stream.get("created")),
        "", f"Older runs on an idle {cpu['machine']['cpu']} ({cpu['machine']['threads']} threads, one round each), "
        "re-rendered with these rules from their JSON: [`benchmark_cpu.md`](benchmarks/results/benchmark_cpu.md) "
        f"(light student {ratio(light['speedup_vs_teacher'])} the teacher, fp32; training step with cached encoder "
        f"features {cached['examples_per_s'] / raw['examples_per_s']:.1f}x the examples/s of running the frozen encoders, "
        f"{cached['examples_per_s']:.2f} vs {raw['examples_per_s']:.2f} examples/s) and "
        "[`benchmark_cpu_variants.md`](benchmarks/results/benchmark_cpu_variants.md) (int8 light student "
        f"{ratio(v8['speedup_vs_teacher'])} the int8 teacher, {ratio(v8['speedup_vs_fp32_teacher'])} the fp32 one). "
        "Real-time stream mode ([`stream_cpu.md`](benchmarks/results/stream_cpu.md): a "
        f"{stream['conversation']['audio_s']:.0f} s two-speaker conversation, {stream['conversation']['utterances']} "
        "utterances, full-size models, 2 threads): the light student runs at RTF "
        f"{ls['rtf']:.3f} and answers {1000 * ls['latency']['mean_s']:.0f} ms (mean) after the chunk that closes an "
        f"utterance; the teacher at RTF {t['rtf']:.3f} and {1000 * t['latency']['mean_s']:,.0f} ms "
        f"({t['rtf'] / ls['rtf']:.1f}x the light student's RTF)."])


def render_threads(files: dict[str, Any]) -> str:
    source = "benchmarks/results/threads_cpu.json"
    data = files[source]
    one, two = data["medians"]["1"], data["medians"]["2"]
    load = data["load_average"]
    return "\n".join([
        f"* **Threads**: `--threads N` sets torch's CPU threads for caching and training (default: torch's, one per "
        "core). On a small CPU shared with other work, use `--threads 1`: on this project's "
        f"{data['cpu_count']}-core machine with other jobs running (load average {min(load):.1f}-{max(load):.1f}), "
        f"medians of {data['repeats']} alternating repetitions (ratio = 2-thread median / 1-thread median): caching "
        f"the features of 128 utterances {one['caching']:.2f} s vs {two['caching']:.2f} s "
        f"({two['caching'] / one['caching']:.1f}x), {data['steps']} teacher steps on cached features "
        f"{one['teacher_steps']:.2f} s vs {two['teacher_steps']:.2f} s "
        f"({two['teacher_steps'] / one['teacher_steps']:.1f}x), {data['steps']} light-student steps on raw inputs "
        f"{one['light_steps']:.2f} s vs {two['light_steps']:.2f} s ({two['light_steps'] / one['light_steps']:.1f}x); "
        "two threads only help when the cores are otherwise idle. Measured side by side with "
        "`python benchmarks/threads_training.py --threads 1 2` (tiny backbones).",
        "  " + provenance(None, None, None, source)])


#: The code the recipe's runs execute: the scripts, the runner, the training path and the model files (speech
#: recognition, the stream and the command line are not run by it).
RECIPE_CODE = ("train.py", "distill.py", "scripts/recipe.sh", "loading_scripts") + tuple(
    f"multistill/{name}.py" for name in (
        "annotations", "arguments", "audio_utils", "baselines", "configuration_multistill", "configuration_ngram",
        "data", "experiment", "modeling_heads", "modeling_multistill", "modeling_ngram", "offline",
        "modeling_cross_attention", "modeling_encoders", "modeling_fbank",
        "experiment_report", "experiment_results", "feature_cache", "features",
        "pipeline_multistill", "plotting", "processing_multistill", "splits", "training", "workflow", "whisper_base",
        "whisper_convert")
) + ("multistill/metrics",)
#: The current recipe's runs (teacher and baselines, with and without context). Earlier versions' result files stay
#: in results/recipe (first version) and results/recipe_l2 (second), referenced from README's prose.
RECIPE_ROOT = "results/recipe_v5"
#: Context sizes of the ablation (one run per size and fold) and the baselines given the same context.
CONTEXT_SIZES = (0, 2, 4, 8)
CONTEXT_BASELINES = (
    ("text_tfidf", "Baseline: character 1-3-gram TF-IDF + logistic regression (text)", "TF-IDF"),
    ("audio_whisper", "Baseline: Whisper encoder, mean+std pooled + logistic regression (audio)", "Whisper-LR"),
    ("late_fusion", "Baseline: late fusion of TF-IDF and Whisper-LR (text + audio)", "late fusion"),
)
#: The context size whose run also trains the light student.
LIGHT_CONTEXT = 4
RECIPE_FOLDS = (("fold1_test2", "train Session 01 -> test Session 02"), ("fold2_test1", "train Session 02 -> test Session 01"))


def recipe_file(fold: str, context: int = 0, root: str = RECIPE_ROOT) -> str:
    return f"{root}/{fold}{f'_context{context}' if context else ''}/results.json"


def _row(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((row for row in data["rows"] if row["name"] == name), None)


def _macro(data: dict[str, Any], name: str) -> str:
    row = _row(data, name)
    return pm(row["summary"]["macro_f1"], digits=1) if row else "–"


def _versus(data: dict[str, Any], baseline: str) -> str:
    """``teacher − baseline`` macro-F1 points and the seeds the teacher is ahead in."""
    match = next((c for c in data["comparisons"] if c["first"] == "teacher" and c["second"] == baseline), None)
    if match is None:
        return "–"
    d = match["differences"]["macro_f1"]
    return f"{pm(d, 100.0, 1, signed=True)} ({d['ahead']} of {d['n']})"


def render_recipe(files: dict[str, Any], root: str = RECIPE_ROOT) -> str:
    """The recipe on the KEMDy19 session split, both folds, 3 seeds: models and baselines, teacher − baseline."""
    folds = [(files[recipe_file(fold, root=root)], title) for fold, title in RECIPE_FOLDS]
    names = [row["name"] for row in folds[0][0]["rows"]]
    header = ["model or baseline (KEMDy19, macro-F1, mean ± std over seeds 1-3)"]
    header += [f"{title}" for _, title in folds] + [f"teacher − it, {title.split(' -> ')[1]} (seeds ahead)"
                                                     for _, title in folds]
    rows = [[_row(folds[0][0], name)["label"]] + [_macro(data, name) for data, _ in folds]
            + [_versus(data, name) if name.startswith("baseline_") else "" for data, _ in folds] for name in names]
    lines = [table(header, rows), ""]
    for data, title in folds:
        teacher = data["per_seed"]
        classes = [key.removeprefix("f1_") for key in teacher["1"]["teacher"]["metrics"] if key.startswith("f1_")]
        per_class = {c: statistics.mean([teacher[s]["teacher"]["metrics"][f"f1_{c}"] for s in teacher]) for c in classes}
        matrix = [[sum(teacher[s]["teacher"]["confusion_matrix"][i][j] for s in teacher) for j in range(len(classes))]
                  for i in range(len(classes))]
        counts = [sum(row) // len(teacher) for row in matrix]
        lines.append(f"Teacher, {title}: per-class F1 (mean of 3 seeds) "
                     + ", ".join(f"{c} {100 * per_class[c]:.1f} (n={n})" for c, n in zip(classes, counts, strict=True))
                     + "; confusion matrix summed over the seeds (rows: reference, columns: predicted, "
                     + "order " + ", ".join(classes) + "): " + "; ".join(" ".join(str(x) for x in row) for row in matrix)
                     + ".")
    lines.append("")
    lines += [from_file(data, source) for source, data in files.items()]
    return "\n".join(lines)


def _seed_values(data: dict[str, Any], name: str, key: str = "macro_f1") -> dict[str, float]:
    """Per seed, ``key`` of run ``name`` (percent for metrics, milliseconds for ``latency``)."""
    out = {}
    for seed, runs in data["per_seed"].items():
        if name in runs:
            run = runs[name]
            out[seed] = run["latency"]["latency_ms_median"] if key == "latency" else 100 * run["metrics"][key]
    return out


def _paired(first: dict[str, float], second: dict[str, float], ratio: bool = False) -> str:
    """``first − second`` (or ``first / second``) paired by seed: ``mean ± std (k of n)``."""
    seeds = sorted(set(first) & set(second), key=int)
    values = [first[s] / second[s] if ratio else first[s] - second[s] for s in seeds]
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):.{2 if ratio else 1}f}" if len(values) > 1 else ""
    if ratio:
        return f"{statistics.mean(values):.2f}{spread}"
    return f"{statistics.mean(values):+.1f}{spread} ({sum(v > 0 for v in values)} of {len(values)})"


def _baseline_at(files: dict[str, Any], fold: str, baseline: str, size: int, root: str) -> dict[str, float]:
    """A baseline's per-seed macro-F1 with ``size`` previous utterances (the run with that context size)."""
    data = files[recipe_file(fold, size, root=root)]
    return _seed_values(data, f"baseline_{baseline}" + (f"_context{size}" if size else ""))


def render_context(files: dict[str, Any], root: str = RECIPE_ROOT) -> str:
    """Context sizes 0-8 for the teacher and the baselines with the same context, both folds; paired gaps."""
    header = ["model or baseline (macro-F1, mean ± std, 3 seeds)", "folds"] + [
        f"context {k}" for k in CONTEXT_SIZES]
    rows, gaps = [], []
    for fold, title in RECIPE_FOLDS:
        teacher = {k: _seed_values(files[recipe_file(fold, k, root=root)], "teacher") for k in CONTEXT_SIZES}
        rows.append(["Teacher (multimodal)", title] + [_mean_pm(teacher[k]) for k in CONTEXT_SIZES])
        for baseline, label, _ in CONTEXT_BASELINES:
            rows.append([label, title] + [_mean_pm(_baseline_at(files, fold, baseline, k, root))
                                          for k in CONTEXT_SIZES])
        gaps.append(["teacher − the same teacher without context", title]
                    + [_paired(teacher[k], teacher[0]) if k else "" for k in CONTEXT_SIZES])
        for baseline, _, short in CONTEXT_BASELINES:
            gaps.append([f"teacher − {short} with the same context", title]
                        + [_paired(teacher[k], _baseline_at(files, fold, baseline, k, root)) for k in CONTEXT_SIZES])
    lines = [table(header, rows), "", "Paired differences per seed, macro-F1 points (seeds in which the teacher is "
             "ahead, of 3):", "", table(["teacher − it", "folds"] + [f"context {k}" for k in CONTEXT_SIZES], gaps), ""]
    lines += [from_file(data, source) for source, data in files.items()]
    return "\n".join(lines)


def _mean_pm(values: dict[str, float]) -> str:
    """``mean ± std`` (1 decimal) of per-seed values."""
    if not values:
        return "–"
    numbers = list(values.values())
    spread = f" ± {statistics.stdev(numbers):.1f}" if len(numbers) > 1 else ""
    return f"{statistics.mean(numbers):.1f}{spread}"


def render_light_student(files: dict[str, Any], root: str = RECIPE_ROOT) -> str:
    """The light student of the context teacher, KD and no KD, both folds: macro-F1, share of the teacher's,
    latency and speed-up measured in the same run."""
    header = ["model (context 4, mean ± std over 3 seeds)", "folds", "macro-F1", "share of the teacher's macro-F1",
              "latency ms per utterance (median)", "teacher latency / its latency"]
    rows, lines = [], []
    for fold, title in RECIPE_FOLDS:
        data = files[recipe_file(fold, LIGHT_CONTEXT, root=root)]
        teacher, teacher_ms = _seed_values(data, "teacher"), _seed_values(data, "teacher", "latency")
        for name in ("teacher", "light_student_kd", "light_student_ce"):
            if _row(data, name) is None:
                continue
            score, latency = _seed_values(data, name), _seed_values(data, name, "latency")
            own = name == "teacher"
            rows.append([_row(data, name)["label"], title, _mean_pm(score),
                         "" if own else f"{100 * statistics.mean([score[s] / teacher[s] for s in score]):.1f} %",
                         _mean_pm(latency), "" if own else f"{_paired(teacher_ms, latency, ratio=True)}x"])
        lines.append(f"Light student with KD − without KD, {title}, paired by seed (seeds in which KD is ahead): "
                     f"{_paired(_seed_values(data, 'light_student_kd'), _seed_values(data, 'light_student_ce'))}.")
    out = [table(header, rows), "", *lines, ""]
    out += [from_file(data, source) for source, data in files.items()]
    return "\n".join(out)


#: README block name -> its result files, renderer and the code paths that make it stale.
TABLES: dict[str, Table] = {
    "speed_headline": Table((HEADLINE,), render_speed_headline, BENCH_CODE),
    "whisper_verify": Table(("results/whisper_verify/results.json",), render_whisper_verify,
                            ("multistill/whisper_base.py", "multistill/whisper_convert.py", "multistill/asr.py",
                             "multistill/annotations.py")),
    "threads": Table(("benchmarks/results/threads_cpu.json",), render_threads,
                     ("benchmarks/threads_training.py", "multistill/training.py", "multistill/features.py",
                      "multistill/feature_cache.py")),
    "main_job": Table((MAIN_JOB,), render_main_job, TRAINING_CODE + ("scripts/main.sh",)),
    "real_sample": Table((REAL_SAMPLE,), render_real_sample, TRAINING_CODE),
    "kd_ablation": Table(("results/real_sample/kd_ablation.json",), render_kd_ablation, TRAINING_CODE),
    "asr_cer": Table(("benchmarks/results/asr_cer.json",), render_asr_cer,
                     ("benchmarks/asr_cer.py", "multistill/asr.py", "multistill/annotations.py")),
    "asr_gap": Table(("results/real_sample/asr_gold.json", "results/real_sample/asr_gap.json"), render_asr_gap,
                     TRAINING_CODE + ("scripts/asr_gap.py",)),
    "asr_loop_guards": Table((ASR_LOOP_GUARDS,), render_asr_loop_guards,
                             ("scripts/asr_loop_guards.py", "multistill/whisper_convert.py")),
    "vad_eval": Table(("benchmarks/results/vad_eval.json",), render_vad_eval,
                      ("benchmarks/vad_eval.py", "multistill/vad.py", "multistill/streaming.py")),
    "stream_asr": Table(("benchmarks/results/stream_asr_cpu_early.json",
                         "benchmarks/results/stream_asr_cpu_early_100.json"), render_stream_asr, STREAM_CODE),
    "benchmark_headline": Table((HEADLINE,), render_benchmark_headline, BENCH_CODE),
    "recipe": Table(tuple(recipe_file(fold) for fold, _ in RECIPE_FOLDS), render_recipe, RECIPE_CODE),
    "context": Table(tuple(recipe_file(fold, k) for fold, _ in RECIPE_FOLDS for k in CONTEXT_SIZES), render_context,
                     RECIPE_CODE),
    "light_student": Table(tuple(recipe_file(fold, LIGHT_CONTEXT) for fold, _ in RECIPE_FOLDS),
                           render_light_student, RECIPE_CODE),
    "older_benchmarks": Table(tuple(f"benchmarks/results/{n}.json" for n in ("benchmark_cpu", "benchmark_cpu_variants",
                                                                             "stream_cpu")),
                              render_older_benchmarks,
                              tuple(dict.fromkeys(BENCH_CODE + STREAM_CODE))),
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
    note = stale_note(files, spec.code)
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
    (args,) = HfArgumentParser(RenderArguments, description=RenderArguments.__doc__).parse_args_into_dataclasses(
        args=argv)
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
