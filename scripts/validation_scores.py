"""Validation scores of experiment runs, for choosing a setting without the test session.

``python -m multistill.tools.experiment`` reports test scores; this collects, for runs trained on the training
rows alone (``--refit_on_validation false --eval_strategy steps --load_best_model_at_end false``), each seed's
validation metrics at the last evaluation (the model the fixed schedule ends with; no step is picked) from its
``trainer_state.json``, with each experiment's command and commit, into one JSON file.

usage: python scripts/validation_scores.py --experiments OUT_A OUT_B ... --output_json results/X/validation.json
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402


@dataclass
class Arguments:
    """Collect the last validation evaluation of every seed of experiment runs."""

    experiments: list[str] = field(metadata={"help": "Experiment output folders (each with results.json)."})
    output_json: str = field(metadata={"help": "Where to write the collected scores."})
    run: str = field(default="teacher", metadata={"help": "The run of each seed to read (seed_N/RUN)."})


def last_evaluation(state_file: Path) -> dict[str, Any]:
    """The last ``eval_*`` entry of a ``trainer_state.json``: its step and metrics (without the prefix)."""
    history = json.loads(state_file.read_text(encoding="utf-8"))["log_history"]
    evaluations = [entry for entry in history if "eval_macro_f1" in entry]
    if not evaluations:
        raise ValueError(f"{state_file}: no validation evaluation in log_history (train with --eval_strategy steps "
                         "and --refit_on_validation false).")
    last = evaluations[-1]
    metrics = {key.removeprefix("eval_"): value for key, value in last.items()
               if key.startswith("eval_") and isinstance(value, float) and "runtime" not in key
               and "per_second" not in key}
    return {"step": last["step"], "metrics": metrics}


def collect(folder: Path, run: str) -> dict[str, Any]:
    """One experiment: its command, commit, settings and each seed's last validation evaluation."""
    results_file = folder / "results.json"
    if not results_file.is_file():
        raise ValueError(f"--experiments {folder}: no results.json (not a finished experiment folder).")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    seeds = {}
    for seed_dir in sorted(folder.glob("seed_*"), key=lambda p: int(p.name.removeprefix("seed_"))):
        state = seed_dir / run / "trainer_state.json"
        if not state.is_file():
            raise ValueError(f"--experiments {folder}: {state} is missing.")
        split = (results.get("splits") or {}).get(seed_dir.name.removeprefix("seed_"), {})
        seeds[seed_dir.name.removeprefix("seed_")] = {**last_evaluation(state),
                                                      "validation_examples": split.get("validation_examples")}
    return {"folder": str(folder), "provenance": results["provenance"], "settings": results.get("settings"),
            "run": run, "per_seed": seeds}


def main(argv: list[str] | None = None) -> int:
    """1. parse; 2. collect every experiment (all checked before writing); 3. write the JSON."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        (args,) = parse_command_line(HfArgumentParser(Arguments, description=Arguments.__doc__), argv)
        check_output_file(args.output_json, "--output_json", create_folder=True)
        experiments = [collect(Path(folder), args.run) for folder in args.experiments]
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = {"provenance": {**provenance([]),
                             "command": "python scripts/validation_scores.py " + shlex.join(argv)},
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "experiments": experiments}
    output = Path(args.output_json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{output}: {len(experiments)} experiments, "
          f"{sum(len(e['per_seed']) for e in experiments)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
