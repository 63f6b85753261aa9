"""Evidence that a commit left results as they were, for the ledger ``results/neutral_changes.json``.

The same experiment (e.g. the main job, ``bash scripts/main.sh``, in a clean clone) run at the commit before and
at the commit: every seed's and run's test metrics and confusion matrix are compared value by value. The ledger
lists a commit only with such evidence (README: "Tests and layout", "README stays true"); ``render_readme.py`` then
does not mark the blocks whose code it touched as stale.

usage: python scripts/neutral_evidence.py --before OUT_BEFORE --after OUT_AFTER --output_json results/neutral_changes/X.json

Exit status 0 when every value is the same, 1 when any differs (the file then lists them), 2 for bad arguments.
"""

from __future__ import annotations

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
from multistill.training.arguments import parse_command_line  # noqa: E402

#: What is compared of each seed's run (``results.json``'s ``per_seed``): the figures, not timings.
COMPARED = ("metrics", "confusion_matrix")


@dataclass
class Arguments:
    """Compare one experiment run at two commits."""

    before: str = field(metadata={"help": "Experiment output folder (results.json) made at the commit before."})
    after: str = field(metadata={"help": "The same experiment's output folder made at the commit."})
    output_json: str = field(metadata={"help": "Where the evidence goes (results/neutral_changes/...)."})


def read_results(folder: str) -> dict[str, Any]:
    """``folder/results.json`` of a finished experiment, or ValueError naming what is wrong."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise ValueError(f"{folder}: no results.json (not a finished experiment folder).")
    results = json.loads(path.read_text(encoding="utf-8"))
    if not results.get("per_seed") or not (results.get("provenance") or {}).get("git_commit"):
        raise ValueError(f"{path}: no per-seed results or no commit in its provenance.")
    return results


def differences(before: dict[str, Any], after: dict[str, Any]) -> tuple[int, list[str]]:
    """The number of compared values and where the two runs' per-seed figures differ."""
    compared, differ = 0, []
    for seed in sorted(set(before) | set(after)):
        for run in sorted(set(before.get(seed, {})) | set(after.get(seed, {}))):
            for key in COMPARED:
                old, new = (side.get(seed, {}).get(run, {}).get(key) for side in (before, after))
                compared += 1
                if old != new:
                    differ.append(f"seed {seed}, {run}, {key}: {old} -> {new}")
    return compared, differ


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # 1. arguments and both runs, checked before anything is written
    try:
        (args,) = parse_command_line(HfArgumentParser(Arguments), argv)
        check_output_file(args.output_json, "--output_json", create_folder=True)
        runs = {side: read_results(getattr(args, side)) for side in ("before", "after")}
    except (ValueError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # 2. every seed's and run's figures, value by value
    compared, differ = differences(runs["before"]["per_seed"], runs["after"]["per_seed"])
    # 3. the evidence, with both runs' commands and commits
    evidence = {"command": shlex.join(["python", "scripts/neutral_evidence.py", *argv]),
                **{side: {key: results["provenance"].get(key) for key in ("command", "git_commit", "git_dirty")}
                   for side, results in runs.items()},
                "compared": compared, "identical": not differ, "differences": differ}
    output = Path(args.output_json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(evidence, indent=2) + "\n", encoding="utf-8")
    print(f"{output}: {compared} per-seed figures compared, "
          + ("all the same." if not differ else f"{len(differ)} differ:\n" + "\n".join(differ)))
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
