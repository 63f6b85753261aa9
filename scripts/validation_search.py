"""A documented grid search of the recipe's settings, scored on validation data of the training sessions only.

For every point of ``--grid`` and every validation draw, the recipe (``scripts/recipe.sh``: the teacher alone, one
model seed, no baselines) trains on the rest of the training sessions and is scored on the draw at its schedule's
last step (no step picked). A draw is either a seeded share of the training sessions' dialogues (``--validation_from
dialogues``, the default: one draw per ``--split_seeds``) or a whole training session (``--validation_from sessions
--validation_sessions 1 2``: each listed session in turn, trained on the other training sessions), which is what a
held-out session looks like when sessions re-act each other's scripts (KEMDy19). The point with the best mean
validation macro-F1 is chosen (ties: the earlier point of the grid). The recipe's runs also score the test session,
as every experiment does; those scores are not read here, so nothing is chosen on it. The JSON names every run, its
validation scores and the recipe command that trains the chosen setting on every training row.

usage: python scripts/validation_search.py --data_dir DIR --output_dir OUT --test_sessions 2 \\
           --grid '{"l2_penalty": [0.25, 0.5, 1, 2, 4]}' [recipe options, e.g. --context_size 4]
       python scripts/validation_search.py --data_dir DIR --output_dir OUT --test_sessions 3 \\
           --validation_from sessions --validation_sessions 1 2 --grid '{"context_size": [0, 4]}'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from validation_scores import collect  # noqa: E402

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.experiment import parse_args as parse_experiment_args  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.training.arguments import check_output_dir  # noqa: E402

#: Options that make a recipe run a validation run: trained on the training dialogues alone, scored on the drawn
#: validation dialogues at every 100 steps (the last evaluation is read), nothing saved or timed, no students or
#: baselines.
VALIDATION_RUN = ("--students", "none", "--baselines", "none", "--parallel", "1", "--refit_on_validation", "false",
                  "--eval_strategy", "steps", "--eval_steps", "100", "--save_strategy", "no",
                  "--load_best_model_at_end", "false", "--latency_utterances", "0")
#: The corpus ``scripts/recipe.sh`` reads unless its options say otherwise (the search's parser checks --data_dir
#: for it before anything runs).
RECIPE_CORPUS = ("--corpus", "kemdy19")
#: The fusion ``scripts/recipe.sh`` sets, which grid options such as ``--audio_weight`` are checked against.
RECIPE_FUSION = ("--fusion_type", "concat")
#: Options the search sets itself, so a grid may not vary them.
SEARCH_OWNED = {"seeds", "split_seed", "validation_fraction", "validation_from", "validation_sessions", "test_sessions",
                "output_dir", "data_dir", *(option.removeprefix("--") for option in VALIDATION_RUN[::2])}


@dataclass
class Arguments:
    """Grid search of recipe options on validation dialogues of the training session."""

    data_dir: str = field(metadata={"help": "A KEMDy folder (e.g. the development set of make_kemdy_dev.sh)."})
    output_dir: str = field(metadata={"help": "Where the runs go (one folder per grid point and draw)."})
    test_sessions: str = field(metadata={"help": "The fold's test session, e.g. 2 or KEMDy20:1 (the recipe trains on "
                                                 "the others)."})
    grid: str = field(metadata={"help": "JSON object: recipe option -> list of values, e.g. "
                                        "'{\"l2_penalty\": [0.5, 1, 2]}'. Every combination is a point."})
    validation_from: str = field(default="dialogues", metadata={
        "help": "Validate on dialogues drawn from the training sessions, or on whole training sessions in turn.",
        "choices": ["dialogues", "sessions"]})
    split_seeds: list[int] = field(default_factory=lambda: [1, 2, 3],
                                   metadata={"help": "Draws of the validation dialogues (--split_seed of the recipe)."})
    validation_fraction: float = field(default=0.5, metadata={"help": "Share of the training dialogues drawn."})
    validation_sessions: list[str] = field(default_factory=list, metadata={
        "help": "With --validation_from sessions: the training sessions validated on, each in turn (e.g. 1 2)."})
    seed: int = field(default=1, metadata={"help": "The model seed of every run."})
    parallel: int = field(default=1, metadata={"help": "Runs at once."})
    reuse: bool = field(default=True, metadata={"help": "Keep a run whose folder already holds results.json (made with "
                                                        "this search's options for it, else refused)."})
    output_json: str | None = field(default=None, metadata={"help": "The search's JSON (default OUTPUT_DIR/search.json)."})


def grid_points(grid_json: str) -> list[dict[str, str]]:
    """Every combination of the grid's values, in the grid's order, values as the command line spells them."""
    try:
        grid = json.loads(grid_json)
    except json.JSONDecodeError as error:
        raise ValueError(f"--grid is not JSON ({error.msg}): {grid_json!r}.") from None
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"--grid must be a non-empty JSON object of option -> list of values, got {grid_json!r}.")
    for name, values in grid.items():
        if not isinstance(values, list) or not values or any(isinstance(v, (dict, list)) for v in values):
            raise ValueError(f"--grid {name}: give a non-empty list of values, got {values!r}.")
    spelled = {name: [json.dumps(v) if isinstance(v, bool) else str(v) for v in values] for name, values in grid.items()}
    for name, values in grid.items():  # 1 and 1.0 are one value, so are 1 and "1" once spelled on the command line
        if len(set(values)) != len(values) or len(set(spelled[name])) != len(values):
            raise ValueError(f"--grid {name}: a value is repeated in {values!r}.")
    return [dict(zip(spelled, combination, strict=True)) for combination in itertools.product(*spelled.values())]


def recipe_options(point: dict[str, str]) -> list[str]:
    return [item for name, value in point.items() for item in (f"--{name}", value)]


def check_arguments(args: Arguments, extra: list[str]) -> list[dict[str, str]]:
    """Refuse bad values before anything runs: folders, the grid's options and values (parsed as the recipe would)."""
    if not Path(args.data_dir).is_dir():
        raise ValueError(f"--data_dir {args.data_dir}: no such folder.")
    if not args.split_seeds or len(set(args.split_seeds)) != len(args.split_seeds):
        raise ValueError(f"--split_seeds must be distinct draws, got {args.split_seeds}.")
    if not 0 < args.validation_fraction < 1:
        raise ValueError(f"--validation_fraction must be in (0, 1), got {args.validation_fraction}.")
    if args.parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {args.parallel}.")
    if (args.validation_from == "sessions") != bool(args.validation_sessions):
        raise ValueError("--validation_sessions lists the sessions validated on with --validation_from sessions, and "
                         "only then.")
    if len(set(args.validation_sessions)) != len(args.validation_sessions) or \
            args.test_sessions in args.validation_sessions:
        raise ValueError(f"--validation_sessions must be distinct training sessions, not the test session "
                         f"{args.test_sessions}; got {args.validation_sessions}.")
    check_output_dir(args.output_dir)
    check_output_file(args.output_json or str(Path(args.output_dir) / "search.json"), "--output_json",
                      create_folder=True)
    points = grid_points(args.grid)
    owned = SEARCH_OWNED.intersection(points[0])
    if owned:
        raise ValueError(f"--grid {sorted(owned)}: the search sets these itself.")
    from train import parse_args as parse_train_args  # the teacher's options, as train.py reads them

    for point, draw_options in itertools.product(points, validation_draws(args).values()):
        recipe_argv = ["--output_dir", args.output_dir, "--data_dir", args.data_dir, "--test_sessions",
                       args.test_sessions, *RECIPE_CORPUS, *RECIPE_FUSION, *extra, *draw_options, *recipe_options(point)]
        _, passed_on = dry_parse(parse_experiment_args, recipe_argv, point)
        dry_parse(parse_train_args, ["--output_dir", args.output_dir, *passed_on], point)
    return points


def dry_parse(parse: Callable[[list[str]], Any], argv: list[str], point: dict[str, str]) -> Any:
    """PARSE(ARGV), its argparse complaint (printed with the whole usage) turned into one ValueError line."""
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            return parse(argv)
    except SystemExit:
        message = (complaint.getvalue().strip().splitlines()[-1:] or ["rejected"])[0].split("error: ", 1)[-1]
    except ValueError as error:  # a value the dataclasses refuse, or an option no parser knows
        message = str(error)
    raise ValueError(f"--grid {point} with the recipe options: {message}")


def validation_draws(args: Arguments) -> dict[str, list[str]]:
    """Each validation draw's name and the recipe options that make it: a split seed of the training dialogues, or
    a training session held out whole."""
    if args.validation_from == "sessions":
        return {session: ["--validation_from", "sessions", "--validation_sessions", session]
                for session in args.validation_sessions}
    return {str(split_seed): ["--validation_fraction", f"{args.validation_fraction:g}", "--split_seed", str(split_seed)]
            for split_seed in args.split_seeds}


def run_folder(args: Arguments, index: int, draw: str) -> Path:
    if args.validation_from == "sessions":
        return Path(args.output_dir) / f"point{index}_session{draw.replace(':', '_')}"
    return Path(args.output_dir) / f"point{index}_split{draw}"


def run_recipe(command: list[str], folder: Path) -> None:
    """One validation run of the recipe, its output in FOLDER/run.log."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "run.log", "w", encoding="utf-8") as log:
        finished = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"{folder}: the recipe run failed (exit {finished.returncode}); see {folder / 'run.log'}.")


def kept_run(folder: Path, command: list[str]) -> bool:
    """Whether FOLDER holds a finished run of COMMAND: its ``results.json`` records an experiment command that sets
    every option of COMMAND after the data folder as COMMAND does (the last value of each, as argparse keeps it); a
    finished run of another grid point or draw is refused, not scored as this one."""
    results = folder / "results.json"
    if not results.is_file():
        return False
    recorded = shlex.split(json.loads(results.read_text(encoding="utf-8"))["provenance"]["command"])
    planned = command[4:]  # after bash scripts/recipe.sh DATA_DIR OUTPUT_DIR

    def last_values(words: list[str]) -> dict[str, str]:
        return {word: value for word, value in zip(words[:-1], words[1:], strict=True) if word.startswith("--")}

    kept = last_values(recorded)
    wrong = {name: value for name, value in last_values(planned).items()
             if not value.startswith("--") and kept.get(name) != value}
    if wrong:
        raise ValueError(f"{folder} holds a finished run with other options than this search's ({wrong} planned, "
                         f"{ {name: kept.get(name) for name in wrong} } there): give a new --output_dir.")
    return True


def search(args: Arguments, extra: list[str], points: list[dict[str, str]]) -> dict[Path, list[str]]:
    """Every point and draw, --parallel at a time (finished runs kept when --reuse); their commands by folder."""
    commands = {}
    for (index, point), (draw, draw_options) in itertools.product(enumerate(points), validation_draws(args).items()):
        folder = run_folder(args, index, draw)
        commands[folder] = ["bash", "scripts/recipe.sh", str(Path(args.data_dir).resolve()), str(folder.resolve()),
                            "--test_sessions", args.test_sessions, *extra, *VALIDATION_RUN,
                            "--seeds", str(args.seed), *draw_options, *recipe_options(point)]
    pending = {folder: command for folder, command in commands.items()
               if not (args.reuse and kept_run(folder, command))}
    with ThreadPoolExecutor(args.parallel) as pool, tqdm(total=len(commands), initial=len(commands) - len(pending),
                                                          desc="validation search") as progress:
        for done in as_completed([pool.submit(run_recipe, command, folder) for folder, command in pending.items()]):
            done.result()
            progress.update()
    return commands


def summarize(args: Arguments, extra: list[str], points: list[dict[str, str]],
              commands: dict[Path, list[str]]) -> dict[str, Any]:
    """Each point's validation scores per draw, their mean and spread, the choice and its recipe command."""
    rows = []
    for index, point in enumerate(points):
        draws = {}
        for draw in validation_draws(args):
            folder = run_folder(args, index, draw)
            (seed_scores,) = collect(folder, "teacher")["per_seed"].values()
            draws[draw] = {"folder": str(folder), "command": shlex.join(commands[folder]),
                                      "step": seed_scores["step"],
                                      "validation_examples": seed_scores["validation_examples"],
                                      "macro_f1": 100 * seed_scores["metrics"]["macro_f1"],
                                      "unweighted_accuracy": 100 * seed_scores["metrics"]["unweighted_accuracy"]}
        scores = [draw["macro_f1"] for draw in draws.values()]
        rows.append({"point": point, "draws": draws, "macro_f1_mean": statistics.fmean(scores),
                     "macro_f1_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                     "unweighted_accuracy_mean": statistics.fmean(d["unweighted_accuracy"] for d in draws.values())})
    best = max(range(len(rows)), key=lambda i: (rows[i]["macro_f1_mean"], -i))
    recipe = ["bash", "scripts/recipe.sh", args.data_dir, "OUTPUT_DIR", "--test_sessions", args.test_sessions,
              *extra, *recipe_options(points[best])]
    return {"points": rows, "chosen": best, "chosen_point": points[best], "recipe_command": shlex.join(recipe)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # 1. arguments (the recipe options after ours are passed to every run), checked before anything runs
    parser = HfArgumentParser(Arguments, description=__doc__)
    args, extra = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    try:
        points = check_arguments(args, extra)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # 2. the runs: every point of the grid on every draw of validation dialogues
    try:
        commands = search(args, extra, points)
    except ValueError as error:  # a kept folder holds another run: found before any run starts
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # 3. the validation scores, the choice, and the JSON with its command and commit
    result = summarize(args, extra, points, commands)
    command = shlex.join(["python", "scripts/validation_search.py", *argv])
    output = {"provenance": {**provenance(argv), "command": command},
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "settings": {**vars(args), "recipe_options": extra}, **result}
    path = Path(args.output_json or Path(args.output_dir) / "search.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for index, row in enumerate(result["points"]):
        print(f"{'*' if index == result['chosen'] else ' '} {row['point']}: validation macro-F1 "
              f"{row['macro_f1_mean']:.1f} ± {row['macro_f1_std']:.1f}")
    print(f"{path}: chosen {result['chosen_point']}; train it with: {result['recipe_command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
