"""README blocks of the recipe on the KEMDy19 session split: the recipe table, the context ablation and the
students of the context teacher (used by ``render_readme.py``)."""

from __future__ import annotations

import shlex
import statistics
from typing import Any

from readme_lib import from_file, pm, table

#: The code the recipe's runs execute: the scripts, the runner, the training path and the model files (speech
#: recognition, the stream and the command line are not run by it).
RECIPE_CODE = ("train.py", "distill.py", "scripts/recipe.sh", "loading_scripts", "multistill/training") + tuple(
    f"multistill/{name}.py" for name in (
        "annotations", "audio_utils", "configuration_multistill", "configuration_ngram", "modeling_heads",
        "modeling_multistill", "modeling_ngram", "modeling_cross_attention", "modeling_encoders", "modeling_fbank",
        "offline", "pipeline_multistill", "plotting", "processing_multistill",
        "tools/baselines", "tools/experiment", "tools/experiment_report", "tools/experiment_results",
        "tools/whisper_base", "tools/whisper_convert")
)
#: The current recipe's runs (teacher and baselines, with and without context; Intel Xeon). Earlier versions' result
#: files stay in results/recipe (first version), results/recipe_l2 (second) and results/recipe_v6 (the same recipe
#: on an AMD EPYC, with the text and audio students), referenced from README's prose.
RECIPE_ROOT = "results/recipe_v9"
#: The text and audio students of the context teacher (Intel Xeon, the same recipe code as RECIPE_ROOT).
STUDENTS_ROOT = "results/recipe_v9_students"
#: The light student's runs (context 4, Whisper's convolutions only: ``--light_audio_layers 0``; each run trains its
#: own teacher to distil from). The 2-layer front end's runs are in results/recipe_v6_light, referenced from the prose.
LIGHT_ROOT = "results/recipe_v6_light0"
#: Context sizes of the ablation (one run per size and fold) and the baselines given the same context.
CONTEXT_SIZES = (0, 1, 2, 4, 8)
#: Context sizes whose run is another experiment's (the others are RECIPE_ROOT's): context 4's teacher and baselines
#: are the light student's runs (the same recipe code and machine, the teacher trained and scored the same way,
#: baselines given 0 and 4 utterances).
CONTEXT_ROOTS = {4: LIGHT_ROOT}
CONTEXT_BASELINES = (
    ("text_tfidf", "Baseline: character 1-3-gram TF-IDF + logistic regression (text)", "TF-IDF"),
    ("audio_whisper", "Baseline: Whisper encoder, mean+std pooled + logistic regression (audio)", "Whisper-LR"),
    ("late_fusion", "Baseline: late fusion of TF-IDF and Whisper-LR (text + audio)", "late fusion"),
)
#: The context size whose run also trains the students.
STUDENT_CONTEXT = 4
RECIPE_FOLDS = (("fold1_test2", "train Session 01 -> test Session 02"), ("fold2_test1", "train Session 02 -> test Session 01"))
#: The text branch compared on validation (scripts/validation_scores.py) and on the test sessions.
TEXT_ENCODER_VALIDATION = "results/text_encoders/validation.json"
#: The recipe's teacher with Gemma 3 270M as its text branch, on the test folds.
GEMMA_ROOT = "results/text_encoders/gemma"
TEXT_ENCODERS = (("ngram", "character n-gram encoder (the recipe's, learnt)"),
                 ("gemma", "Gemma 3 270M (registry GGUF, frozen, mean of the last hidden states)"))


def recipe_file(fold: str, context: int = 0, root: str = RECIPE_ROOT) -> str:
    return f"{root}/{fold}{f'_context{context}' if context else ''}/results.json"


def context_file(fold: str, context: int) -> str:
    """The run of the context ablation with ``context`` previous utterances on ``fold``."""
    return recipe_file(fold, context, root=CONTEXT_ROOTS.get(context, RECIPE_ROOT))


def _row(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((row for row in data["rows"] if row["name"] == name), None)


def _macro(data: dict[str, Any], name: str) -> str:
    row = _row(data, name)
    return pm(row["summary"]["macro_f1"], digits=1) if row else "–"


def _teacher_versus(data: dict[str, Any], baseline: str) -> dict[str, Any] | None:
    """The run's ``teacher − baseline`` comparison (paired differences per metric), or None."""
    return next((c for c in data["comparisons"] if c["first"] == "teacher" and c["second"] == baseline), None)


def _versus(data: dict[str, Any], baseline: str) -> str:
    """``teacher − baseline`` macro-F1 points and the seeds the teacher is ahead in."""
    match = _teacher_versus(data, baseline)
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
    digits = (2 if statistics.mean(values) < 10 else 0) if ratio else 1  # ratios: 2.64x, but 135x
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    if ratio:
        return f"{statistics.mean(values):.{digits}f}{spread}"
    return f"{statistics.mean(values):+.1f}{spread} ({sum(v > 0 for v in values)} of {len(values)})"


def _baseline_at(files: dict[str, Any], fold: str, baseline: str, size: int) -> dict[str, float]:
    """A baseline's per-seed macro-F1 with ``size`` previous utterances (the run with that context size)."""
    data = files[context_file(fold, size)]
    return _seed_values(data, f"baseline_{baseline}" + (f"_context{size}" if size else ""))


def render_context(files: dict[str, Any]) -> str:
    """Context sizes 0-8 for the teacher and the baselines with the same context, both folds; paired gaps."""
    header = ["model or baseline (macro-F1, mean ± std, 3 seeds)", "folds"] + [
        f"context {k}" for k in CONTEXT_SIZES]
    rows, gaps = [], []
    for fold, title in RECIPE_FOLDS:
        teacher = {k: _seed_values(files[context_file(fold, k)], "teacher") for k in CONTEXT_SIZES}
        rows.append(["Teacher (multimodal)", title] + [_mean_pm(teacher[k]) for k in CONTEXT_SIZES])
        for baseline, label, _ in CONTEXT_BASELINES:
            rows.append([label, title] + [_mean_pm(_baseline_at(files, fold, baseline, k))
                                          for k in CONTEXT_SIZES])
        gaps.append(["teacher − the same teacher without context", title]
                    + [_paired(teacher[k], teacher[0]) if k else "" for k in CONTEXT_SIZES])
        for baseline, _, short in CONTEXT_BASELINES:
            gaps.append([f"teacher − {short} with the same context", title]
                        + [_paired(teacher[k], _baseline_at(files, fold, baseline, k)) for k in CONTEXT_SIZES])
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


def render_students(files: dict[str, Any], root: str = STUDENTS_ROOT, students: tuple[str, ...] = ("light_student",),
                    ) -> str:
    """Students of the context teacher, KD and no KD, both folds: macro-F1, share of the teacher's, latency and
    speed-up measured in the same run, and KD − no KD paired by seed."""
    header = ["model (context 4, mean ± std over 3 seeds)", "folds", "macro-F1", "share of the teacher's macro-F1",
              "latency ms per utterance (median)", "teacher latency / its latency"]
    rows, lines = [], []
    for fold, title in RECIPE_FOLDS:
        data = files[recipe_file(fold, STUDENT_CONTEXT, root=root)]
        teacher, teacher_ms = _seed_values(data, "teacher"), _seed_values(data, "teacher", "latency")
        names = ["teacher"] + [f"{student}_{kind}" for student in students for kind in ("kd", "ce")]
        for name in names:
            if _row(data, name) is None:
                continue
            score, latency = _seed_values(data, name), _seed_values(data, name, "latency")
            own = name == "teacher"
            rows.append([_row(data, name)["label"], title, _mean_pm(score),
                         "" if own else f"{100 * statistics.mean([score[s] / teacher[s] for s in score]):.1f} %",
                         _mean_pm(latency), "" if own else f"{_paired(teacher_ms, latency, ratio=True)}x"])
        for student in students:
            if _row(data, f"{student}_kd") is None:
                continue
            label = _row(data, f"{student}_kd")["label"].removesuffix(", KD")
            lines.append(f"{label}, KD − no KD, {title}, paired by seed (seeds in which KD is ahead): "
                         f"{_paired(_seed_values(data, f'{student}_kd'), _seed_values(data, f'{student}_ce'))}.")
    out = [table(header, rows), "", *lines, ""]
    out += [from_file(data, source) for source, data in files.items()]
    return "\n".join(out)


def text_encoder_files() -> tuple[str, ...]:
    """The sources of the text-encoder block: validation scores, the Gemma teacher's and the recipe's test runs."""
    return (TEXT_ENCODER_VALIDATION, *(recipe_file(fold, root=GEMMA_ROOT) for fold, _ in RECIPE_FOLDS),
            *(recipe_file(fold) for fold, _ in RECIPE_FOLDS))


def _validation_values(files: dict[str, Any], fold: str, encoder: str) -> dict[str, float]:
    """Per draw of the validation dialogues (``--split_seed``), validation macro-F1 (percent) of ``encoder``."""
    values = {}
    for experiment in files[TEXT_ENCODER_VALIDATION]["experiments"]:
        name = experiment["folder"].rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(f"{fold}_split") and name.endswith(f"_{encoder}"):
            (run,) = experiment["per_seed"].values()
            values[name.removeprefix(f"{fold}_split").removesuffix(f"_{encoder}")] = 100 * run["metrics"]["macro_f1"]
    return values


def render_text_encoders(files: dict[str, Any]) -> str:
    """The teacher's text branch, n-gram vs Gemma: validation macro-F1 (the choice) and test (reported), paired."""
    test_root = {"ngram": RECIPE_ROOT, "gemma": GEMMA_ROOT}
    header = ["text branch of the teacher (context 0; macro-F1, mean ± std)"] + [
        f"validation: half of Session 0{fold[4]}'s dialogues (3 draws)" for fold, _ in RECIPE_FOLDS] + [
        f"test Session 0{fold[-1]} (3 seeds)" for fold, _ in RECIPE_FOLDS]
    values = {encoder: [_validation_values(files, fold, encoder) for fold, _ in RECIPE_FOLDS]
              + [_seed_values(files[recipe_file(fold, root=test_root[encoder])], "teacher") for fold, _ in RECIPE_FOLDS]
              for encoder, _ in TEXT_ENCODERS}
    rows = [[label] + [_mean_pm(v) for v in values[encoder]] for encoder, label in TEXT_ENCODERS]
    tfidf = [_seed_values(files[recipe_file(fold, root=GEMMA_ROOT)], "baseline_text_tfidf")
             for fold, _ in RECIPE_FOLDS]
    rows.append(["Baseline: character 1-3-gram TF-IDF + logistic regression (same test rows)", "", ""]
                + [_mean_pm(v) for v in tfidf])
    rows.append(["Gemma − n-gram, paired by draw / seed (Gemma ahead in)"]
                + [_paired(g, n) for g, n in zip(values["gemma"], values["ngram"], strict=True)])
    lines = [table(header, rows), ""]
    lines += [from_file(data, source) for source, data in files.items()]
    return "\n".join(lines)


#: Text heads on one TF-IDF bag, cross-validated over the dialogues of each training session (validation only).
TEXT_HEAD_PROBE = "results/text_head_probe/probe.json"
TEXT_HEADS = (
    ("tfidf_lr", "TF-IDF + logistic regression (scikit-learn, the baseline)"),
    ("linear", "one weight matrix on the bag, trained as the recipe trains"),
    ("recipe_shaped", "the teacher's text path: learnt n-gram embeddings (128) -> projection (128) -> classifier"),
    ("recipe_unprojected", "the same without the projection: learnt n-gram embeddings (128) -> classifier"),
    ("frozen_wide", "a fixed random projection ({width} wide) -> classifier"),
    ("frozen_wide_projected", "a fixed random projection ({width} wide) -> learnt projection (128) -> classifier"),
)


def render_text_head_probe(files: dict[str, Any]) -> str:
    """Each text head's dialogue-grouped cross-validated macro-F1 per training session, and its gap to LR."""
    data = files[TEXT_HEAD_PROBE]
    sessions = data["sessions"]
    header = ["text head, same TF-IDF bag (macro-F1 over a session's pooled held-out dialogues; mean ± std over "
              "init seeds)"] + [f"Session 0{s} ({v['utterances']} utterances, {v['dialogues']} dialogues, "
                                f"{data['settings']['folds']} folds)" for s, v in sessions.items()] + [
        f"− logistic regression, Session 0{s}" for s in sessions]
    rows = []
    for head, label in TEXT_HEADS:
        scores = [v["heads"][head] for v in sessions.values()]
        baseline = [v["heads"]["tfidf_lr"]["macro_f1_mean"] for v in sessions.values()]
        spread = [f" ± {score['macro_f1_std']:.1f}" if len(score["macro_f1_per_seed"]) > 1 else "" for score in scores]
        rows.append([label.format(width=data["settings"]["frozen_width"])]
                    + [f"{score['macro_f1_mean']:.1f}{extra}" for score, extra in zip(scores, spread, strict=True)]
                    + ["" if head == "tfidf_lr" else f"{round(score['macro_f1_mean'] - lr, 1) + 0.0:+.1f}"
                       for score, lr in zip(scores, baseline, strict=True)])
    return "\n".join([table(header, rows), "", from_file(data, TEXT_HEAD_PROBE)])


#: Early fusion of TF-IDF and Whisper-LR features at several audio weights (scripts/branch_balance_probe.py).
BRANCH_BALANCE = "results/branch_balance/balance.json"


def render_branch_balance(files: dict[str, Any]) -> str:
    """Per context size and audio weight: validation (training session's dialogues) and test macro-F1 and other-corpus
    UA per fold, the weight validation picks in bold; then what that choice scores against TF-IDF (w = 0)."""
    data = files[BRANCH_BALANCE]
    folds = data["folds"]
    first = next(iter(folds.values()))
    others = list(next(iter(first.values())).get("other_test_utterances", {}))
    header = ["context", "audio weight w"]
    for pair in folds:
        train, test = pair.split(":")
        header += [f"validation: Session 0{train}'s dialogues", f"test Session 0{test} (trained on Session 0{train})"]
        header += [f"{session_title(key)}, UA (trained on Session 0{train})" for key in others]
    rows, picks = [], []
    for context in first:
        for weight in first[context]["weights"]:
            row = [context, f"{weight} (the TF-IDF baseline)" if float(weight) == 0 else weight]
            for result in (fold[context] for fold in folds.values()):
                score = result["weights"][weight]
                bold = "**" if weight == result["chosen_by_validation"] else ""
                cells = [score["validation"], score["test"]] + [score["other_tests_ua"][key] for key in others]
                row += [f"{bold}{value:.1f}{bold}" for value in cells]
            rows.append(row)
        for pair, fold in folds.items():
            result = fold[context]
            chosen, baseline = result["weights"][result["chosen_by_validation"]], result["weights"]["0"]
            scored = [(f"test Session 0{pair.split(':')[1]}", chosen["test"], baseline["test"])] + [
                (f"{session_title(key)} UA", chosen["other_tests_ua"][key], baseline["other_tests_ua"][key])
                for key in others]
            picks.append(f"context {context}, trained on Session 0{pair.split(':')[0]}: w = "
                         f"{result['chosen_by_validation']}, " + ", ".join(
                             f"{name} {value:.1f} against TF-IDF's {base:.1f} ({round(value - base, 1) + 0.0:+.1f})"
                             for name, value, base in scored))
    return "\n".join([table(header, rows), "", "Chosen on validation: " + "; ".join(picks) + ".", "",
                      from_file(data, BRANCH_BALANCE)])


#: The recipe trained on the development set's KEMDy19 sessions and tested on KEMDy20 Session 01, without context and
#: with 4 previous utterances (the context run also scores the baselines without context, as the first run does).
CROSS_CORPUS = ("results/cross_corpus/train19_test20/results.json",
                "results/cross_corpus/train19_test20_context4/results.json")
#: The teacher's context size in each of CROSS_CORPUS's runs.
CROSS_CORPUS_CONTEXTS = (0, 4)
CROSS_CORPUS_METRICS = (("accuracy", "accuracy"), ("unweighted_accuracy", "UA (balanced accuracy)"),
                        ("macro_f1", "macro-F1"))


def render_cross_corpus(files: dict[str, Any]) -> str:
    """The recipe's teachers and the baselines on the other corpus: accuracy, UA and macro-F1 (mean ± std over
    seeds), teacher − baseline with the same context in UA and macro-F1 (seeds ahead), and the references."""
    header = ["model or baseline (train KEMDy19 Sessions 01-02, test KEMDy20 Session 01; mean ± std over seeds 1-3)"]
    header += [label for _, label in CROSS_CORPUS_METRICS] + ["teacher − it, UA (seeds ahead)",
                                                              "teacher − it, macro-F1 (seeds ahead)"]
    rows, predicted = [], []
    for source, context in zip(CROSS_CORPUS, CROSS_CORPUS_CONTEXTS, strict=True):
        data = files[source]
        for row in data["rows"]:
            if row["name"] != "teacher" and row["name"].endswith(f"_context{context}") != bool(context):
                continue  # the context run's baselines without context repeat the first run's
            match = _teacher_versus(data, row["name"])
            versus = ["", ""] if match is None else [
                f"{pm(match['differences'][key], 100.0, 1, signed=True)} ({match['differences'][key]['ahead']} of "
                f"{match['differences'][key]['n']})" for key in ("unweighted_accuracy", "macro_f1")]
            label = row["label"] + (f", {context} previous utterances" if row["name"] == "teacher" and context else "")
            rows.append([label] + [pm(row["summary"][key], digits=1) for key, _ in CROSS_CORPUS_METRICS] + versus)
        seeds = data["per_seed"]
        classes = [key.removeprefix("f1_") for key in seeds["1"]["teacher"]["metrics"] if key.startswith("f1_")]
        matrix = [[sum(seeds[s]["teacher"]["confusion_matrix"][i][j] for s in seeds) for j in range(len(classes))]
                  for i in range(len(classes))]
        references = ", ".join(f"{c} {sum(r) // len(seeds)}" for c, r in zip(classes, matrix, strict=True) if sum(r))
        predicted.append(f"with {context} previous utterances " + ", ".join(
            f"{c} {sum(r[j] for r in matrix)}" for j, c in enumerate(classes)))
    lines = [table(header, rows), "", f"Test references: {references}. The teachers' predictions summed over the "
             f"seeds: {'; '.join(predicted)}.", ""]
    lines += [from_file(files[source], source) for source in CROSS_CORPUS]
    return "\n".join(lines)


#: Nearest-transcript similarity: a held-out session against its training session, and across a session's dialogues.
TRANSCRIPT_OVERLAP = "results/transcript_overlap/overlap.json"


def render_transcript_overlap(files: dict[str, Any]) -> str:
    """Per fold, the share of transcripts with a near twin in the training session vs in its other dialogues."""
    data = files[TRANSCRIPT_OVERLAP]
    thresholds = data["settings"]["thresholds"]
    names = {f"{t:g}": ("the same wording" if t >= 0.999 else f"cosine ≥ {t:g}") for t in thresholds}
    header = ["share of transcripts whose nearest transcript there has (character 1-3-gram TF-IDF)"]
    rows = {key: [f"{label}"] for key, label in names.items()}
    for pair, result in data["pairs"].items():
        train, test = pair.split(":")
        header += [f"test Session 0{test} vs training Session 0{train} ({result['test_utterances']} utterances)",
                   f"Session 0{train} vs its other dialogues ({result['train_utterances']} utterances)"]
        for key in names:
            rows[key] += [f"{result['test_session'][key]:.0f} %",
                          f"{result['other_dialogues_of_training_session'][key]:.0f} %"]
    return "\n".join([table(header, list(rows.values())), "", from_file(data, TRANSCRIPT_OVERLAP)])


#: Trained recipe models timed side by side on real utterances of about 5 s (benchmarks/trained_latency.py).
TRAINED_LATENCY = "benchmarks/results/trained_latency.json"


def render_trained_latency(files: dict[str, Any]) -> str:
    """The teacher and its light students as trained, on real ~5 s utterances: median ms and the per-round ratio."""
    data = files[TRAINED_LATENCY]
    seconds = [u["seconds"] for u in data["utterances"]]
    header = ["model (trained folder)", "Whisper layers", "parameters",
              "latency ms per utterance (median of round medians)",
              "its teacher's latency / its latency (median of per-round ratios)"]
    rows = [[f"`{'/'.join(m['folder'].rstrip('/').split('/')[-3:])}`", str(m["audio_layers"]),
             f"{m['parameters'] / 1e6:.1f} M",
             f"{m['median_ms']:.1f}", "" if m["preset"] == "teacher" else f"**{m['teacher_ratio']:.1f}x**"]
            for m in data["models"]]
    machine = data["machine"]
    return "\n".join([
        table(header, rows), "",
        f"{len(seconds)} real utterances of {min(seconds):.1f}-{max(seconds):.1f} s, {data['rounds']} interleaved "
        f"rounds, fp32, batch 1, {machine['threads']} thread(s), {machine['cpu']}; other processes used "
        f"{data['others_cpu_pct']} % of the CPU during the run.", "",
        from_file(data, TRAINED_LATENCY)])


#: What speech recognition costs the recipe's teacher and the text baselines (scripts/asr_gap.py per fold, over the
#: runs trained on the gold transcripts and on Whisper base's; the runs' results.json beside each table).
ASR_ROOT = "results/recipe_asr"


def asr_files() -> tuple[str, ...]:
    """Per fold: the gap table and the two runs it joins."""
    return tuple(f"{ASR_ROOT}/{fold}{part}" for fold, _ in RECIPE_FOLDS
                 for part in ("_gap.json", "_gold/results.json", "_asr/results.json"))


def render_asr_gap(files: dict[str, Any]) -> str:
    """Gold vs ASR transcripts for the recipe's teacher and the text baselines, both folds, paired by seed."""
    from asr_gap import COMBINATIONS, DIFFERENCES  # the table's columns, as scripts/asr_gap.py names them

    header = ["model (macro-F1, mean ± std over 3 seeds)", "folds", *(title for _, title in COMBINATIONS),
              *(title for *_, title in DIFFERENCES)]
    rows, rates = [], []
    for fold, title in RECIPE_FOLDS:
        gap = files[f"{ASR_ROOT}/{fold}_gap.json"]
        rates.append(f"{100 * gap['test_cer']:.1f} % on test Session {title[-2:]} ({gap['test_examples']} utterances)")
        for row in gap["rows"]:
            cells = [pm(row["macro_f1"].get(key), digits=1) for key, _ in COMBINATIONS]
            for key, *_ in DIFFERENCES:
                d = row["differences"].get(key)
                cells.append("–" if d is None else f"{pm(d, 100.0, 1, signed=True)} ({d['ahead']} up, {d['behind']} down)")
            rows.append([row["label"], title, *cells])
    lines = [table(header, rows), "",
             f"Character error rate of Whisper base's transcripts: {'; '.join(rates)}. Differences are paired by seed "
             "(points, seeds up / down).", ""]
    lines += [from_file(data, source) for source, data in files.items()]
    return "\n".join(lines)


#: The grid search of the recipe's options on validation dialogues (scripts/validation_search.py), per fold.
VALIDATION_SEARCH = {fold: f"results/validation_search/{fold}.json" for fold, _ in RECIPE_FOLDS}
#: Per fold, the recipe trained on every training row with the setting its search chose, scored on the test session.
VALIDATION_SEARCH_TESTS = {fold: f"results/validation_search/{fold}_chosen/results.json" for fold, _ in RECIPE_FOLDS}
#: The recipe's own runs the choice is compared with: its context sizes (the recipe's and the recommended model's).
VALIDATION_SEARCH_CONTEXTS = (0, 4)


def validation_search_files() -> tuple[str, ...]:
    return (*VALIDATION_SEARCH.values(), *VALIDATION_SEARCH_TESTS.values(),
            *(context_file(fold, k) for fold, _ in RECIPE_FOLDS for k in VALIDATION_SEARCH_CONTEXTS))


def last_option(command: str, name: str) -> str | None:
    """The value argparse keeps for --NAME in COMMAND (the last one), or None."""
    words = shlex.split(command)
    places = [i for i, word in enumerate(words[:-1]) if word == f"--{name}"]
    return words[places[-1] + 1] if places else None


def check_run_made_with(options: dict[str, str], run: dict[str, Any], source: str, search_source: str) -> None:
    """Refuse to render RUN (the result file SOURCE) as the run of a search's choice unless its command sets every
    one of OPTIONS (name -> value as the command line spells it) as the search chose."""
    wrong = [name for name, value in options.items() if last_option(run["provenance"]["command"], name) != value]
    if wrong:
        raise ValueError(f"{source}: not run with the chosen {wrong} of {search_source}.")


def option_label(name: str) -> str:
    """A recipe option as prose: ``l2_penalty`` -> ``L2 penalty``."""
    return name.replace("_", " ").replace("l2 ", "L2 ")


def render_validation_search(files: dict[str, Any]) -> str:
    """Validation macro-F1 of every grid point per fold (the choice in bold), then what each fold's choice scores on
    its test session against the recipe's own setting and TF-IDF, from a run of the recipe with that setting."""
    searches = {fold: files[source] for fold, source in VALIDATION_SEARCH.items()}
    first = next(iter(searches.values()))
    names = list(first["points"][0]["point"])
    header = [option_label(name) for name in names]
    for fold, title in RECIPE_FOLDS:
        train = title.split(" -> ")[0].removeprefix("train ")
        draws = len(searches[fold]["settings"]["split_seeds"])
        header.append(f"validation macro-F1, {train}'s dialogues (mean ± std over {draws} draws)")
    rows = []
    for index, row in enumerate(first["points"]):
        cells = [row["point"][name] for name in names]
        for fold, _ in RECIPE_FOLDS:
            scored = searches[fold]["points"][index]
            if scored["point"] != row["point"]:
                raise ValueError(f"{VALIDATION_SEARCH[fold]}: its grid differs from the other fold's.")
            bold = "**" if searches[fold]["chosen"] == index else ""
            cells.append(f"{bold}{scored['macro_f1_mean']:.1f} ± {scored['macro_f1_std']:.1f}{bold}")
        rows.append(cells)
    lines = [table(header, rows), ""]
    for fold, title in RECIPE_FOLDS:
        chosen, tested = searches[fold]["chosen_point"], files[VALIDATION_SEARCH_TESTS[fold]]
        check_run_made_with(chosen, tested, VALIDATION_SEARCH_TESTS[fold], VALIDATION_SEARCH[fold])
        context = int(chosen.get("context_size", "0"))
        baseline = "baseline_text_tfidf" + (f"_context{context}" if context else "")
        tfidf = _teacher_versus(tested, baseline)["differences"]["macro_f1"]
        own = [_macro(files[context_file(fold, k)], "teacher") for k in VALIDATION_SEARCH_CONTEXTS]
        setting = ", ".join(f"{option_label(name)} {value}" for name, value in chosen.items())
        lines.append(f"* {title}: validation chose {setting}; the recipe trained with it on every training row scores "
                     f"macro-F1 {_macro(tested, 'teacher')} on the test session (seeds 1-3), "
                     f"against {own[0]} for the recipe's setting without context and {own[1]} with 4 previous "
                     f"utterances (L2 penalty 1, the tables above and below) and "
                     f"{_macro(tested, baseline)} for TF-IDF with the same context on the same "
                     f"rows (teacher − TF-IDF {pm(tfidf, digits=1, signed=True)}, ahead in {tfidf['ahead']} of "
                     f"{tfidf['n']} seeds).")
    lines.append("")
    lines += [from_file(files[source], source) for source in (*VALIDATION_SEARCH.values(),
                                                              *VALIDATION_SEARCH_TESTS.values())]
    return "\n".join(lines)


#: The search validated on whole training sessions: KEMDy19 Sessions 01 and 02 in turn, the test KEMDy20 Session 01;
#: and the recipe trained on both sessions with the setting it chose, scored on the test session.
VALIDATION_SESSIONS = "results/validation_search/sessions_test_kemdy20.json"
VALIDATION_SESSIONS_TEST = "results/validation_search/sessions_test_kemdy20_chosen/results.json"


def session_title(key: str) -> str:
    """``"KEMDy19:1"`` -> ``"KEMDy19 Session 01"``."""
    corpus, _, number = key.partition(":")
    return f"{corpus} Session {int(number):02d}"


def _ua(data: dict[str, Any], name: str) -> str:
    row = _row(data, name)
    return pm(row["summary"]["unweighted_accuracy"], digits=1) if row else "–"


def render_validation_sessions(files: dict[str, Any]) -> str:
    """Validation macro-F1 of every grid point on each whole training session (the choice in bold), then what the
    chosen setting scores on the test session next to the recipe's own setting and the baselines there."""
    search, tested = files[VALIDATION_SESSIONS], files[VALIDATION_SESSIONS_TEST]
    names, draws = list(search["points"][0]["point"]), list(search["points"][0]["draws"])
    others = {draw: " and ".join(session_title(d) for d in draws if d != draw) for draw in draws}
    header = [option_label(name) for name in names] + [
        f"validation macro-F1 on {session_title(draw)} (trained on {others[draw]})" for draw in draws] + ["mean"]
    rows = []
    for index, row in enumerate(search["points"]):
        bold = "**" if search["chosen"] == index else ""
        rows.append([row["point"][name] for name in names]
                    + [f"{row['draws'][draw]['macro_f1']:.1f}" for draw in draws]
                    + [f"{bold}{row['macro_f1_mean']:.1f}{bold}"])
    chosen, test = search["chosen_point"], search["settings"]["test_sessions"]
    check_run_made_with({**chosen, "test_sessions": test}, tested, VALIDATION_SESSIONS_TEST, VALIDATION_SESSIONS)
    context = int(chosen.get("context_size", "0"))
    suffix = f" with {context} previous utterances" if context else ""
    baselines = [(label, f"baseline_{name}" + (f"_context{context}" if context else "")) for label, name in (
        ("TF-IDF", "text_tfidf"), ("Whisper-LR", "audio_whisper"), ("their late fusion", "late_fusion"))]
    own = " and ".join(f"{_ua(files[source], 'teacher')} ({f'{k} previous utterances' if k else 'no context'})"
                       for source, k in zip(CROSS_CORPUS, CROSS_CORPUS_CONTEXTS, strict=True))
    setting = ", ".join(f"{option_label(name)} {value}" for name, value in chosen.items())
    sentence = (f"Validation on whole sessions chose {setting}. The recipe trained with it on both KEMDy19 sessions "
                f"scores on {session_title(test)} UA {_ua(tested, 'teacher')} (macro-F1 {_macro(tested, 'teacher')}; "
                f"seeds 1-3), against UA {own} with the recipe's L2 penalty 1 (the [cross-corpus table]"
                f"(#a-conversation-that-does-not-re-act-the-training-scripts-kemdy20-session-01)), and, on the same "
                f"rows{suffix}, " + ", ".join(f"{label} UA {_ua(tested, name)}" for label, name in baselines) + ".")
    return "\n".join([table(header, rows), "", sentence, "", from_file(search, VALIDATION_SESSIONS),
                      from_file(tested, VALIDATION_SESSIONS_TEST)])
