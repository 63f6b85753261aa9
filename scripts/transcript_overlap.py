"""How much of a held-out KEMDy19 session's wording the training session already holds, against what a validation
split by dialogues can see.

KEMDy19's sessions are different actor pairs performing scripted and improvised dialogues. This measures, for each
(training session, test session) pair, the share of test transcripts whose nearest training transcript has a
character 1-3-gram TF-IDF cosine of at least each threshold (the TF-IDF baseline's own features, fitted on the
training session); and, for the validation protocol the recipe can use (dialogues of the training session), the
same share for each training utterance against the session's *other* dialogues. A large gap between the two means
that validation dialogues cannot show what text models gain from lines that recur across sessions.

usage: python scripts/transcript_overlap.py --data_dir KEMDY_DIR --output_json results/X/overlap.json
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402


@dataclass
class Arguments:
    """Nearest-transcript similarity across and within KEMDy19 sessions."""

    data_dir: str = field(metadata={"help": "A KEMDy folder in ETRI's layout (KEMDy19/ inside)."})
    output_json: str = field(metadata={"help": "Where to write the shares."})
    pairs: list[str] = field(default_factory=lambda: ["1:2", "2:1"],
                             metadata={"help": "TRAIN:TEST session pairs, e.g. 1:2 2:1."})
    thresholds: list[float] = field(default_factory=lambda: [0.6, 0.8, 0.999],
                                    metadata={"help": "Cosine thresholds (0.999: the same wording)."})


def parse_pairs(pairs: list[str]) -> list[tuple[int, int]]:
    """``["1:2"]`` -> ``[(1, 2)]``; a malformed or self pair raises ValueError naming it."""
    parsed = []
    for pair in pairs:
        parts = pair.split(":")
        if len(parts) != 2 or not all(part.isdigit() for part in parts) or parts[0] == parts[1]:
            raise ValueError(f"--pairs {pair!r}: expected TRAIN:TEST with two different session numbers, e.g. 1:2.")
        parsed.append((int(parts[0]), int(parts[1])))
    return parsed


def check_arguments(args: Arguments) -> list[tuple[int, int]]:
    """The parsed pairs; bad values raise ValueError before any data is read."""
    from multistill.training.data import data_dir_error

    if not args.thresholds or not all(0 < t <= 1 for t in args.thresholds):
        raise ValueError(f"--thresholds must lie in (0, 1], got {args.thresholds}.")
    pairs = parse_pairs(args.pairs)
    check_output_file(args.output_json, "--output_json", create_folder=True)
    error = data_dir_error("kemdy19", args.data_dir)
    if error:
        raise ValueError(error)
    return pairs


def nearest_similarity(texts: np.ndarray, train: np.ndarray, query: np.ndarray,
                       exclude: np.ndarray | None = None) -> np.ndarray:
    """For each ``query`` row, the highest TF-IDF cosine to a ``train`` row (the vectorizer fitted on ``train``);
    ``exclude[i, j]`` masks out pairs (e.g. the same dialogue)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit(texts[train])
    similarity = (vectorizer.transform(texts[query]) @ vectorizer.transform(texts[train]).T).toarray()
    if exclude is not None:
        similarity = np.where(exclude, -1.0, similarity)
    return similarity.max(axis=1)


def shares(best: np.ndarray, thresholds: list[float]) -> dict[str, float]:
    """Percent of rows whose nearest similarity reaches each threshold."""
    return {f"{t:g}": float(100 * np.mean(best >= t)) for t in thresholds}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # 1. arguments, checked before anything is loaded
    try:
        (args,) = parse_command_line(HfArgumentParser(Arguments), argv)
        pairs = check_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # 2. transcripts, sessions and dialogues
    from multistill.training.data import load_kemdy

    dataset = load_kemdy("kemdy19", args.data_dir)
    texts = np.array(dataset["text"], dtype=object)
    sessions, dialogues = np.array(dataset["session"]), np.array(dataset["dialogue"])
    missing = sorted({s for pair in pairs for s in pair} - set(sessions.tolist()))
    if missing:
        print(f"error: --pairs: sessions {missing} are not in {args.data_dir} "
              f"(it holds {sorted(set(sessions.tolist()))}).", file=sys.stderr)
        return 2
    # 3. nearest training transcript of every test transcript, and of every training one in other dialogues
    results: dict[str, Any] = {}
    for train_session, test_session in pairs:
        train, test = np.where(sessions == train_session)[0], np.where(sessions == test_session)[0]
        same_dialogue = dialogues[train][:, None] == dialogues[train][None, :]
        results[f"{train_session}:{test_session}"] = {
            "train_utterances": int(len(train)), "test_utterances": int(len(test)),
            "test_session": shares(nearest_similarity(texts, train, test), args.thresholds),
            "other_dialogues_of_training_session": shares(
                nearest_similarity(texts, train, train, exclude=same_dialogue), args.thresholds)}
    # 4. the shares with their command and commit
    output = {"provenance": {**provenance(argv),
                             "command": shlex.join(["python", "scripts/transcript_overlap.py", *argv])},
              "settings": vars(args), "pairs": results}
    Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output_json).write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    for pair, result in results.items():
        print(f"{pair}: test session {result['test_session']}, other dialogues "
              f"{result['other_dialogues_of_training_session']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
