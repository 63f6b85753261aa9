#!/usr/bin/env python
"""What speech recognition costs the models, and whether training on ASR transcripts wins it back.

Reads one or two runs of the experiment runner on the same split and seeds:

* ``--gold_run``: trained on the corpus's transcripts, tested on them and on the recognizer's
  (``python -m multistill.tools.experiment ... --asr_model whisper-base --test_text_columns asr_text``);
* ``--asr_run`` (optional): trained on the recognizer's transcripts, tested on them and on the corpus's
  (``... --asr_model whisper-base --text_column asr_text --test_text_columns text``);

and writes one table (``OUTPUT.md`` + ``OUTPUT.json``): per model and text baseline, macro-F1 in each
train/test combination the runs hold, the cost of ASR at test time (gold-trained: ASR test − gold test) and,
with ``--asr_run``, what training on ASR changes on ASR input (ASR-trained − gold-trained, both tested on
ASR), paired by seed.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package (its commit in the provenance), whatever is installed

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.tools.experiment_report import _pm, describe, paired_difference  # noqa: E402
from multistill.training.arguments import UsageError, parse_command_line, run_script  # noqa: E402

logger = logging.getLogger("asr_gap")

#: (train column, test column) combinations, in table order: (key, title)
COMBINATIONS = (("gold_gold", "trained on gold, tested on gold"), ("gold_asr", "trained on gold, tested on ASR"),
                ("asr_asr", "trained on ASR, tested on ASR"), ("asr_gold", "trained on ASR, tested on gold"))
#: paired differences: (key, first combination, second combination, title)
DIFFERENCES = (("asr_cost", "gold_asr", "gold_gold", "cost of ASR at test time (gold-trained: ASR − gold)"),
               ("asr_training", "asr_asr", "gold_asr", "training on ASR, tested on ASR (ASR-trained − gold-trained)"))


@dataclass
class GapArguments:
    gold_run: str = field(metadata={"help": "output_dir of the runner trained on the corpus's transcripts "
                                            "(--test_text_columns ASR_COLUMN)."})
    asr_run: str | None = field(default=None, metadata={
        "help": "output_dir of the runner trained on the ASR transcripts (--text_column ASR_COLUMN "
                "--test_text_columns text); without it the table holds the gold-trained run's columns only."})
    output: str = field(default="results/asr_gap", metadata={"help": "Writes OUTPUT.md and OUTPUT.json."})


def _load(run: Path) -> dict[str, Any]:
    path = run / "results.json"
    if not path.exists():
        raise UsageError(f"{path} not found: give the --output_dir of a finished `python -m multistill.tools.experiment` run.")
    report = json.loads(path.read_text(encoding="utf-8"))
    if not report.get("transcripts"):
        raise UsageError(f"{path} has no transcript comparison: run the experiment with --test_text_columns.")
    return report


def _test_ids(run: Path, seed: int) -> list[str]:
    for folder in ("teacher", "baselines"):
        path = run / f"seed_{seed}" / folder / "data_splits.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))["test"]
    raise UsageError(f"{run / f'seed_{seed}'}: no teacher/ or baselines/ data_splits.json.")


def _check_pair(gold: dict[str, Any], asr: dict[str, Any] | None, gold_run: Path, asr_run: Path | None) -> str:
    """The ASR column the runs compare; a :class:`UsageError` when they do not pair up."""
    if gold["transcripts"]["trained_on"] != "text":
        raise UsageError(f"--gold_run {gold_run} trained on {gold['transcripts']['trained_on']!r}, not 'text'.")
    if asr is None:
        columns = [column for column in gold["transcripts"]["tested_on"] if column != "text"]
        if len(columns) != 1:
            raise UsageError(f"--gold_run {gold_run} was tested on {gold['transcripts']['tested_on']}: give it one "
                             "ASR column (--test_text_columns asr_text).")
        return columns[0]
    column = asr["transcripts"]["trained_on"]
    if column == "text" or column not in gold["transcripts"]["tested_on"] or "text" not in asr["transcripts"]["tested_on"]:
        raise UsageError(f"The runs do not pair up: --gold_run tested on {gold['transcripts']['tested_on']}, "
                         f"--asr_run trained on {column!r} and tested on {asr['transcripts']['tested_on']}.")
    for seed in sorted(set(gold["settings"]["seeds"]) & set(asr["settings"]["seeds"])):
        if _test_ids(gold_run, seed) != _test_ids(asr_run, seed):
            raise UsageError(f"Seed {seed}: the runs tested on different utterances (other split arguments).")
    return column


def gap_table(gold_run: Path, asr_run: Path | None = None) -> dict[str, Any]:
    """Each train/test combination the runs hold and the paired differences, per row both runs have."""
    gold, asr = _load(gold_run), (_load(asr_run) if asr_run is not None else None)
    column = _check_pair(gold, asr, gold_run, asr_run)
    seeds = sorted(set(gold["settings"]["seeds"]) & set(asr["settings"]["seeds"] if asr else gold["settings"]["seeds"]))
    if not seeds:
        raise UsageError("The runs share no seed.")
    combinations = [key for key, _ in COMBINATIONS if asr is not None or key.startswith("gold_")]
    differences = [d for d in DIFFERENCES if {d[1], d[2]} <= set(combinations)]
    asr_rows = {row["name"]: row for row in asr["transcripts"]["rows"]} if asr else None
    rows = []
    for row in gold["transcripts"]["rows"]:
        name = row["name"]
        if asr_rows is not None and name not in asr_rows:
            continue
        values: dict[str, dict[int, float]] = {key: {} for key in combinations}
        for seed in seeds:
            trained_gold = gold["per_seed"][str(seed)][name]
            values["gold_gold"][seed] = trained_gold["metrics"]["macro_f1"]
            values["gold_asr"][seed] = trained_gold["test_by_text_column"][column]["macro_f1"]
            if asr is not None:
                trained_asr = asr["per_seed"][str(seed)][name]
                values["asr_asr"][seed] = trained_asr["metrics"]["macro_f1"]
                values["asr_gold"][seed] = trained_asr["test_by_text_column"]["text"]["macro_f1"]
        rows.append({
            "name": name, "label": row["label"],
            "macro_f1": {key: describe([values[key][s] for s in seeds]) for key in combinations},
            "differences": {key: paired_difference(values[first], values[second]) for key, first, second, _ in differences},
        })
    commands = {"gold_run": gold["provenance"]["command"], **({"asr_run": asr["provenance"]["command"]} if asr else {})}
    return {"gold_run": str(gold_run), "asr_run": str(asr_run) if asr_run else None, "asr_column": column,
            "seeds": seeds, "commands": commands, "combinations": combinations,
            "test_cer": gold["transcripts"].get("test_cer", {}).get(column),
            "test_examples": len(_test_ids(gold_run, seeds[0])), "rows": rows}


def render(table: dict[str, Any]) -> str:
    seeds = ", ".join(map(str, table["seeds"]))
    combinations = [(key, title) for key, title in COMBINATIONS if key in table["combinations"]]
    differences = [d for d in DIFFERENCES if d[0] in table["rows"][0]["differences"]] if table["rows"] else []
    runs = f"Trained on the corpus's transcripts: `{table['commands']['gold_run']}`."
    if "asr_run" in table["commands"]:
        runs += f" Trained on the recognizer's: `{table['commands']['asr_run']}`."
    lines = [
        f"# Gold vs ASR transcripts ({table['asr_column']}), macro-F1 %, mean ± std over seeds {seeds}", "",
        f"The same {table['test_examples']} test utterances for every cell. {runs}", "",
        "| model | " + " | ".join(title for _, title in combinations) + " | "
        + " | ".join(f"Δ {title}, points" for *_, title in differences) + " |",
        "|---" * (1 + len(combinations) + len(differences)) + "|",
    ]
    for row in table["rows"]:
        cells = [_pm(row["macro_f1"][key]) for key, _ in combinations]
        for key, *_ in differences:
            d = row["differences"][key]
            cells.append(f"{_pm(d, 100.0, 1, signed=True)} ({d['ahead']} up, {d['behind']} down)")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    # 1. options, checked before any run is read (a typo was a traceback, an unwritable --output one at the end)
    (args,) = parse_command_line(HfArgumentParser(GapArguments), argv)
    output = Path(args.output)
    check_output_file(str(output.with_suffix(".json")), "--output", create_folder=True)
    # 2. the runs' paired differences, written as JSON and markdown
    table = {"provenance": {**provenance(argv), "command": shlex.join(["python", "scripts/asr_gap.py", *argv])},
             **gap_table(Path(args.gold_run), Path(args.asr_run) if args.asr_run else None)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    text = render(table)
    output.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return table


if __name__ == "__main__":
    run_script(main)
