"""The report of an experiment (:mod:`.experiment`): statistics over seeds and ``results.md``.

Every figure of the report is summarised over the seeds as mean ± sample standard deviation
(:func:`describe`); two rows of the same seeds compare by their paired difference (:func:`paired_difference`)
and a verdict line that states only what holds across the seeds (:func:`verdict`). :func:`render_report` turns
the ``results.json`` dict that :func:`.experiment.main` writes into the markdown of ``results.md``. Kept apart
from the runner so that the report's wording and layout can be read, and changed, in one place
(``scripts/asr_gap.py`` reuses the statistics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: (key in the metric module's output, column of the table)
METRICS = (("accuracy", "accuracy (WA)"), ("weighted_precision", "precision"), ("weighted_f1", "F1"),
           ("unweighted_accuracy", "UA"), ("macro_f1", "macro-F1"))
#: Metrics of the transcript-column comparison (``--test_text_columns``).
TRANSCRIPT_METRICS = (("macro_f1", "macro-F1"), ("unweighted_accuracy", "UA"))
#: Metrics of the paired comparisons.
DIFF_METRICS = (("accuracy", "Δ accuracy"), ("unweighted_accuracy", "Δ UA"), ("macro_f1", "Δ macro-F1"))


# --------------------------------------------------------------------------------------------
# Statistics over seeds
# --------------------------------------------------------------------------------------------


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (n - 1; None for one value), n, min, max and the values."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else None,
            "n": int(len(array)), "min": float(array.min()), "max": float(array.max()),
            "values": [float(v) for v in array]}


def paired_difference(first: dict[int, float], second: dict[int, float]) -> dict[str, Any]:
    """``first - second`` per seed (seeds both have), summarised; plus how often ``first`` is ahead and
    whether mean ± std covers zero (``None`` with one seed: no spread)."""
    seeds = sorted(set(first) & set(second))
    if not seeds:
        raise ValueError("paired_difference: no seed in common.")
    stats = describe([first[s] - second[s] for s in seeds])
    stats["seeds"] = seeds
    stats["ahead"] = int(sum(first[s] > second[s] for s in seeds))
    stats["behind"] = int(sum(first[s] < second[s] for s in seeds))
    std = stats["std"]
    stats["covers_zero"] = None if std is None else bool(stats["mean"] - std <= 0.0 <= stats["mean"] + std)
    return stats


def verdict(name: str, first: str, second: str, stats: dict[str, Any], metric: str = "macro-F1") -> str:
    """One line that states only what holds across the seeds."""
    d = stats
    line = f"{name}: {first} − {second} {metric} {100 * d['mean']:+.1f}"
    if d["std"] is None:
        return line + " points, one seed: no spread, so no conclusion."
    line += (f" ± {100 * d['std']:.1f} points over {d['n']} seeds ({first} ahead in {d['ahead']}, "
             f"behind in {d['behind']})")
    if d["covers_zero"]:
        return line + "; the spread covers zero: no difference shown."
    return line + f"; the spread excludes zero: {first} {'ahead' if d['mean'] > 0 else 'behind'} in mean ± std."


def machine_text(machine: dict[str, Any]) -> str:
    text = f"{machine['cpu']}, {machine['cpus_available']} of {machine['logical_cpus']} CPUs"
    if machine.get("gpu"):
        text += f", GPU {machine['gpu']}"
    text += f", torch {machine['torch']}, Python {machine['python']}"
    if machine.get("omp_num_threads"):
        text += f", OMP_NUM_THREADS={machine['omp_num_threads']}"
    return text


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def _pm(stats: dict[str, Any] | None, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    if stats is None:
        return "–"
    text = f"{scale * stats['mean']:{'+' if signed else ''}.{digits}f}"
    return text if stats["std"] is None else f"{text} ± {scale * stats['std']:.{digits}f}"


def aggregate(rows: list[dict[str, Any]], per_seed: dict[int, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each row with its metrics (and latency, parameters) summarised over the seeds that have it."""
    out = []
    for row in rows:
        results = [per_seed[seed][row["name"]] for seed in sorted(per_seed) if row["name"] in per_seed[seed]]
        summary = {key: describe([r["metrics"][key] for r in results]) for key, _ in METRICS}
        latency = None
        if all(r.get("latency") for r in results) and results:
            latency = {key: describe([r["latency"][key] for r in results])
                       for key in ("latency_ms_median", "real_time_factor")}
        parameters = results[0].get("parameters") if results else None
        out.append({**row, "seeds": [s for s in sorted(per_seed) if row["name"] in per_seed[s]],
                    "summary": summary, "latency": latency, "parameters": parameters})
    return out

def paired_comparisons(pairs: Sequence[tuple[str, str, str, str, str]],
                       per_seed: dict[int, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each pair ``(first, second, name, first_name, second_name)`` of rows as the paired difference of their
    :data:`DIFF_METRICS` by seed, with a verdict on macro-F1."""
    comparisons = []
    for first, second, name, first_name, second_name in pairs:
        differences = {key: paired_difference({s: per_seed[s][first]["metrics"][key] for s in per_seed},
                                              {s: per_seed[s][second]["metrics"][key] for s in per_seed})
                       for key, _ in DIFF_METRICS}
        comparisons.append({"first": first, "second": second, "title": f"{name}: {first_name} − {second_name}",
                            "differences": differences,
                            "verdict": verdict(name, first_name, second_name, differences["macro_f1"])})
    return comparisons


def summarize_caching_gain(per: dict[int, dict[str, float]]) -> dict[str, Any]:
    """The caching-gain runs of every seed (:func:`.experiment.caching_gain`), summarised over the seeds."""
    return {"per_seed": per, **{key: describe([per[s][key] for s in per])
                                for key in ("cached_epoch_seconds", "uncached_epoch_seconds", "speedup")}}


def transcript_comparison(row_specs: list[dict[str, Any]], per_seed: dict[int, dict[str, dict[str, Any]]],
                          text_columns: dict[str, Any]) -> dict[str, Any]:
    """Each model and text baseline tested with the training transcripts and with every other
    ``--test_text_columns`` column (e.g. ASR): mean ± std over seeds and the paired difference."""
    trained_on = text_columns["train"]
    others = [column for column in text_columns["test"] if column != trained_on]
    rows = []
    for spec in row_specs:
        seeds = [s for s in sorted(per_seed) if "test_by_text_column" in per_seed[s].get(spec["name"], {})]
        if not seeds:
            continue
        tested = {trained_on: {s: per_seed[s][spec["name"]]["metrics"] for s in seeds}}
        tested |= {column: {s: per_seed[s][spec["name"]]["test_by_text_column"][column] for s in seeds}
                   for column in others}
        rows.append({
            "name": spec["name"], "label": spec["label"], "seeds": seeds,
            "columns": {column: {key: describe([values[s][key] for s in seeds]) for key, _ in TRANSCRIPT_METRICS}
                        for column, values in tested.items()},
            "differences": {column: paired_difference({s: tested[column][s]["macro_f1"] for s in seeds},
                                                      {s: tested[trained_on][s]["macro_f1"] for s in seeds})
                            for column in others},
        })
    return {"trained_on": trained_on, "tested_on": [trained_on, *others], "rows": rows}


def render_transcripts(transcripts: dict[str, Any]) -> list[str]:
    """The ``results.md`` section of :func:`transcript_comparison`."""
    trained_on, others = transcripts["trained_on"], transcripts["tested_on"][1:]
    header = ["model"] + [f"{title} ({column})" for column in transcripts["tested_on"] for _, title in TRANSCRIPT_METRICS]
    header += [f"Δ macro-F1 ({column} − {trained_on})" for column in others]
    header += [f"seeds where {column} is ahead" for column in others]
    lines = ["", f"## Test transcripts: trained on `{trained_on}`, tested with each transcript column", "",
             "The same test utterances, the same trained models, the transcript column swapped; Δ is paired by seed "
             "(points)." + "".join(f" Character error rate of `{column}` against `text` on these test utterances: "
                                   f"{100 * cer:.1f} %." for column, cer in transcripts.get("test_cer", {}).items()),
             "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in transcripts["rows"]:
        cells = [_pm(row["columns"][column][key]) for column in transcripts["tested_on"] for key, _ in TRANSCRIPT_METRICS]
        cells += [_pm(row["differences"][column], 100.0, 1, signed=True) for column in others]
        cells += [f"{row['differences'][c]['ahead']} of {row['differences'][c]['n']}" for c in others]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines

def _heading_lines(report: dict[str, Any]) -> list[str]:
    """Title, provenance, the split, and how to read the table."""
    p, s = report["provenance"], report["settings"]
    seeds = s["seeds"]
    tree = "unknown tree state" if p["git_dirty"] is None else (
        f"dirty tree: {p['git_changes']} uncommitted changes" if p["git_dirty"] else "clean tree")
    what = "baselines only" if report.get("baselines_only") else f"{s['backbones']} backbones"
    return [
        f"# Multi-Still experiment: {s['corpus']} corpus, {s['split']} split, {what}, "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
        "",
        f"Made by `{p['command']}` at commit `{(p['git_commit'] or 'unknown')[:12]}` ({tree}) on "
        f"{machine_text(p['machine'])}; {p['date']}; {report['duration_s'] / 60:.1f} min wall clock, "
        f"{report['cpu_seconds'] / 60:.1f} min CPU time of all processes (load average "
        f"{p['machine']['load_average_start'][0]:.1f} at the start, {p['machine']['load_average_end'][0]:.1f} at "
        "the end: other processes' load slows the wall clock and the latencies).",
        "",
        report["data_text"],
        "",
        f"Every cell is the mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} (n − 1 in the "
        "denominator; a single seed shows its value alone). Accuracy, precision and F1 are weighted, as in the "
        "paper; UA (balanced accuracy) and macro-F1 weigh every emotion equally. References are the evaluators' "
        "majority emotion."
        + (" Latency = median over the first test utterances, batch 1, raw 16 kHz audio + transcript through the "
           "processor and the model, measured one model after the other in this process."
           if any(row.get("latency") for row in report["rows"]) else ""),
    ]


def _table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The mean ± std table: metrics, parameters and latency of every row."""
    lines = [
        "",
        "| model | " + " | ".join(title for _, title in METRICS)
        + " | trainable params | total params | latency ms/utt | RTF |",
        "|---|" + "---|" * (len(METRICS) + 4),
    ]
    for row in rows:
        cells = [_pm(row["summary"][key]) for key, _ in METRICS]
        params = row.get("parameters")
        latency = row.get("latency")
        cells += [f"{params['trainable']:,}" if params else "–", f"{params['total']:,}" if params else "–",
                  _pm(latency["latency_ms_median"], 1.0, 1) if latency else "–",
                  _pm(latency["real_time_factor"], 1.0, 4) if latency else "–"]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def _comparison_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    """The paired differences (same seed) and their verdicts."""
    lines = ["", "## Paired differences (same seed), points", "",
             "| comparison | " + " | ".join(title for _, title in DIFF_METRICS)
             + " | first ahead (macro-F1) | per seed Δ macro-F1 |",
             "|---|" + "---|" * (len(DIFF_METRICS) + 2)]
    for c in comparisons:
        d = c["differences"]
        ahead = f"{d['macro_f1']['ahead']} of {d['macro_f1']['n']}"
        per_seed = ", ".join(f"{100 * v:+.1f}" for v in d["macro_f1"]["values"])
        lines.append(f"| {c['title']} | " + " | ".join(_pm(d[key], 100.0, 1, signed=True) for key, _ in DIFF_METRICS)
                     + f" | {ahead} | {per_seed} |")
    return lines + ["", *[f"* {c['verdict']}" for c in comparisons]]


def _per_seed_lines(rows: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """Macro-F1 of every row per seed."""
    lines = ["", "## Macro-F1 per seed", "", "| model | " + " | ".join(f"seed {x}" for x in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for row in rows:
        values = dict(zip(row["seeds"], row["summary"]["macro_f1"]["values"], strict=True))
        lines.append(f"| {row['label']} | "
                     + " | ".join(f"{100 * values[x]:.2f}" if x in values else "–" for x in seeds) + " |")
    return lines


def _caching_gain_lines(gain: dict[str, Any]) -> list[str]:
    """The epoch time on cached encoder features vs running the encoders every step."""
    per = gain["per_seed"]
    first = per[min(per)]
    return [
        "", "## Cached encoder features", "",
        f"The teacher trained for {first['epochs']:g} epochs on cached encoder features and for as many epochs "
        "running its frozen encoders every step (two extra runs per seed, one at a time after all other runs; "
        f"epochs include validation): {_pm(gain['cached_epoch_seconds'], 1.0, 2)} s vs "
        f"{_pm(gain['uncached_epoch_seconds'], 1.0, 2)} s per epoch, **{_pm(gain['speedup'], 1.0, 1)}x** faster "
        f"per epoch (mean ± std over {gain['speedup']['n']} pairs of runs; per seed: "
        + ", ".join(f"{per[x]['speedup']:.1f}x" for x in sorted(per))
        + "). Feature caching in the teacher runs took "
        + ", ".join(f"{per[x]['teacher_caching_seconds']:.1f} s" for x in sorted(per)
                    if per[x]["teacher_caching_seconds"] is not None)
        + " (once per encoder, processor and data: the students that share the teacher's encoders, and any "
        "later run, only read the cache).",
    ]


def render_report(report: dict[str, Any]) -> str:
    """``results.md``: provenance, the mean ± std table, paired comparisons, per-seed figures, caching gain."""
    lines = _heading_lines(report) + _table_lines(report["rows"])
    if report["baseline_text"]:
        lines += ["", report["baseline_text"]]
    if report["comparisons"]:
        lines += _comparison_lines(report["comparisons"])
    if report.get("transcripts"):
        lines += render_transcripts(report["transcripts"])
    lines += _per_seed_lines(report["rows"], report["settings"]["seeds"])
    if report.get("caching_gain"):
        lines += _caching_gain_lines(report["caching_gain"])
    if report["settings"]["backbones"] == "tiny" and not report.get("baselines_only"):
        lines += ["", "Tiny random frozen encoders: the models' scores show that every path learns, not what the "
                  "method achieves with pretrained encoders."]
    return "\n".join(lines) + "\n"


def data_text(reports: dict[int, dict[str, Any]], fit_rows: dict[int, int] | None) -> str:
    """One paragraph on the split: test set (same for every seed or not), training rows, baseline fitting rows."""
    tests = {seed: tuple(r["test_ids"]) for seed, r in reports.items()}
    first = reports[min(reports)]
    sessions = ", ".join(first.get("test_sessions") or [])
    if len(set(tests.values())) == 1:
        text = f"Test set: the same {len(tests[min(tests)])} utterances for every seed" + (f" ({sessions})." if sessions else ".")
    else:
        text = "Test sets differ between seeds (seeded split): " + ", ".join(
            f"seed {seed}: {len(ids)} utterances" for seed, ids in sorted(tests.items())) + "."
    text += " Training rows (after balancing) per seed: " + ", ".join(
        f"{r['train_examples']}" for _, r in sorted(reports.items())) + f"; validation: {first['validation_examples']}."
    if fit_rows:
        text += (" Baselines are fitted on the training and validation rows of the same split ("
                 + ", ".join(str(n) for _, n in sorted(fit_rows.items())) + " per seed; fixed hyper-parameters, no "
                 "search) and scored on the same test rows as the models.")
    return text
