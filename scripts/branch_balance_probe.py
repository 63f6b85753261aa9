"""How much should a text + audio model listen? The audio weight of early fusion, on validation and on test.

The recipe's teacher adds Whisper features to the character n-gram text path, and how much it leans on audio is
set by how the two branches are scaled under one L2 penalty. This probe makes that weight explicit in the simplest
model that has it, logistic regression on both branches side by side (early fusion): the TF-IDF bag (rows of L2
norm 1, the TF-IDF baseline's) beside the Whisper-LR baseline's features (Whisper's last layer, mean+std pooled
at the utterance's own length), standardised on the training rows and divided by the square root of their width
(rows of norm about 1), times the audio weight ``w``. ``w = 0`` is the TF-IDF baseline itself; ``w = 1`` gives
each branch the same norm; a large ``w`` leans on audio.

For each fold (train one KEMDy19 session, test another) and each ``w`` it reports:

* **validation**: macro-F1 pooled over cross-validation on whole dialogues of the *training* session (each
  dialogue predicted by a model fitted on the session's other dialogues), the only score a choice may use;
* **test**: macro-F1 on the held-out session of a model fitted on every training row, for reading, not choosing;
* the weight validation picks (highest validation macro-F1, the smaller weight on a tie) and its test score.

With ``--context_sizes`` the features of each utterance are stacked beside the decayed sum of its previous
utterances' (the baselines' context, :func:`multistill.tools.baselines.with_context`). With
``--other_test_sessions KEMDy20:1`` each fold's models are also scored on sessions of the other corpus, whose
conversations do not re-act KEMDy19's scripts (for reading, like the test session), by macro-F1 and by UA (the mean
of the recalls of the emotions present: KEMDy20 Session 01 holds two, and macro-F1 counts an F1 of 0 for every
other emotion predicted). The metrics are the models' (``multistill.training.metrics``: macro-F1 over the emotions
present in the references or the predictions).

usage: python scripts/branch_balance_probe.py --data_dir KEMDY_DIR --audio_encoder WHISPER_FOLDER \
           --output_json results/X/balance.json [--sessions 1 2] [--audio_weights 0 0.5 1 2] [--context_sizes 0 4] \
           [--other_test_sessions KEMDy20:1]
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.baselines import encoder_statistics, with_context  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402

#: ``--other_test_sessions`` items: a session of another corpus.
OTHER_SESSION = re.compile(r"^KEMDy20:(\d+)$")


@dataclass
class Arguments:
    """Early fusion of TF-IDF and Whisper-LR features at several audio weights, per fold."""

    data_dir: str = field(metadata={"help": "A KEMDy folder in ETRI's layout (KEMDy19/ inside)."})
    audio_encoder: str = field(metadata={"help": "The Whisper folder (`multistill convert-whisper`'s output)."})
    output_json: str = field(metadata={"help": "Where to write the scores."})
    sessions: list[int] = field(default_factory=lambda: [1, 2],
                                metadata={"help": "KEMDy19 sessions; every ordered pair is a fold (train, test)."})
    audio_weights: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
                                       metadata={"help": "Audio weights w (0: the TF-IDF baseline)."})
    context_sizes: list[int] = field(default_factory=lambda: [0],
                                     metadata={"help": "Previous utterances stacked as the baselines' context."})
    folds: int = field(default=5, metadata={"help": "Cross-validation folds over the training session's dialogues."})
    other_test_sessions: list[str] = field(default_factory=list, metadata={
        "help": "KEMDy20 sessions (KEMDy20:N) every fold's models are also scored on: conversations that do not "
                "re-act the training scripts."})


def check_arguments(args: Arguments) -> None:
    """Refuse bad values before any data is read."""
    from multistill.training.data import data_dir_error

    if args.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {args.folds}.")
    if len(set(args.sessions)) < 2:
        raise ValueError(f"--sessions needs at least two different sessions (train and test), got {args.sessions}.")
    if not args.audio_weights or any(not np.isfinite(w) or w < 0 for w in args.audio_weights):
        raise ValueError(f"--audio_weights must be finite and >= 0, got {args.audio_weights}.")
    if not args.context_sizes or any(k < 0 for k in args.context_sizes):
        raise ValueError(f"--context_sizes must be >= 0, got {args.context_sizes}.")
    wrong = [item for item in args.other_test_sessions if not OTHER_SESSION.match(item)]
    if wrong:
        raise ValueError(f"--other_test_sessions {wrong}: give KEMDy20 sessions as KEMDy20:N (e.g. KEMDy20:1).")
    check_output_file(args.output_json, "--output_json", create_folder=True)
    error = data_dir_error("all" if args.other_test_sessions else "kemdy19", args.data_dir)
    if error:
        raise ValueError(error)
    if not Path(args.audio_encoder).is_dir():
        raise ValueError(f"--audio_encoder {args.audio_encoder}: no such folder.")


@functools.cache
def emotion_metric() -> Any:
    """The models' metric module (``multistill.training.metrics``), loaded once per run."""
    from multistill.training.metrics import load_metric

    return load_metric()


def scores(references, predictions) -> dict[str, float]:
    """The models' metrics, in points (the confusion matrix left out)."""
    computed = emotion_metric().compute(predictions=np.asarray(predictions), references=np.asarray(references))
    return {name: 100 * value for name, value in computed.items() if isinstance(value, float)}


def macro_f1(references, predictions) -> float:
    """The models' macro-F1, in points."""
    return scores(references, predictions)["macro_f1"]


def fit_and_predict(train, tests: list, weight: float, context_size: int, encoder: str, cache: dict) -> list[np.ndarray]:
    """Early-fusion logistic regression (C=1, balanced, as the baselines) fitted on ``train``, predicting each of
    ``tests``."""
    import scipy.sparse as sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    vectorizer.fit([text or "" for text in train["text"]])
    scaler = StandardScaler().fit(encoder_statistics(train, encoder, cache)) if weight else None

    def featurize(part) -> Any:
        bag = vectorizer.transform([text or "" for text in part["text"]])
        if scaler is None:
            return bag
        audio = scaler.transform(encoder_statistics(part, encoder, cache))
        return sparse.hstack([bag, sparse.csr_matrix(audio * weight / np.sqrt(audio.shape[1]))]).tocsr()

    featurize = with_context(featurize, context_size)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=0)
    model.fit(featurize(train), np.asarray(train["emotion"]))
    return [model.predict(featurize(test)) for test in tests]


def probe_fold(train, test, others: dict[str, Any], args: Arguments, context_size: int, cache: dict,
               progress: tqdm) -> dict[str, Any]:
    """Validation (dialogue cross-validation inside the training session), test and other-test macro-F1 for every
    weight."""
    from sklearn.model_selection import GroupKFold

    labels = np.asarray(train["emotion"])
    splits = list(GroupKFold(args.folds).split(np.zeros(len(train)), groups=train["dialogue"]))
    weights: dict[str, dict[str, float]] = {}
    for weight in args.audio_weights:
        pooled = np.zeros(len(train), dtype=int)
        for fit_rows, held_rows in splits:
            (pooled[held_rows],) = fit_and_predict(train.select(fit_rows), [train.select(held_rows)], weight,
                                                   context_size, args.audio_encoder, cache)
            progress.update()
        predicted = fit_and_predict(train, [test, *others.values()], weight, context_size, args.audio_encoder, cache)
        progress.update()
        other_scores = {key: scores(rows["emotion"], p) for (key, rows), p in zip(others.items(), predicted[1:],
                                                                                  strict=True)}
        weights[f"{weight:g}"] = {
            "validation": macro_f1(labels, pooled), "test": macro_f1(test["emotion"], predicted[0]),
            "other_tests": {key: score["macro_f1"] for key, score in other_scores.items()},
            "other_tests_ua": {key: score["unweighted_accuracy"] for key, score in other_scores.items()}}
    chosen = max(weights, key=lambda w: (weights[w]["validation"], -float(w)))
    return {"train_utterances": len(train), "test_utterances": len(test),
            "other_test_utterances": {key: len(rows) for key, rows in others.items()},
            "validation_dialogues": len(set(train["dialogue"])), "weights": weights, "chosen_by_validation": chosen}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # 1. arguments, checked before anything is loaded
    try:
        (args,) = parse_command_line(HfArgumentParser(Arguments), argv)
        check_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # 2. the sessions
    from multistill.training.data import load_kemdy

    dataset = load_kemdy("all" if args.other_test_sessions else "kemdy19", args.data_dir)
    keys = np.asarray([f"{corpus}:{session}" for corpus, session in zip(dataset["corpus"], dataset["session"],
                                                                        strict=True)])
    wanted = {**{f"KEMDy19:{s}": "--sessions" for s in args.sessions},
              **{f"KEMDy20:{int(OTHER_SESSION.match(s).group(1))}": "--other_test_sessions"
                 for s in args.other_test_sessions}}
    for argument in dict.fromkeys(wanted.values()):
        missing = [key for key, named_by in wanted.items() if named_by == argument and key not in set(keys.tolist())]
        if missing:
            print(f"error: {argument} {missing}: not in {args.data_dir} (it holds {sorted(set(keys.tolist()))}).",
                  file=sys.stderr)
            return 2
    others = {key: dataset.select(np.where(keys == key)[0]) for key, argument in wanted.items()
              if argument == "--other_test_sessions"}
    # 3. every fold, context size and weight (the Whisper features are computed once per utterance)
    pairs = list(itertools.permutations(dict.fromkeys(args.sessions), 2))
    cache: dict = {}
    results: dict[str, Any] = {}
    total = len(pairs) * len(args.context_sizes) * len(args.audio_weights) * (args.folds + 1)
    with tqdm(total=total, desc="branch balance probe") as progress:
        for (train_session, test_session), context_size in itertools.product(pairs, args.context_sizes):
            fold = results.setdefault(f"{train_session}:{test_session}", {})
            fold[str(context_size)] = probe_fold(dataset.select(np.where(keys == f"KEMDy19:{train_session}")[0]),
                                                 dataset.select(np.where(keys == f"KEMDy19:{test_session}")[0]),
                                                 others, args, context_size, cache, progress)
    # 4. the scores with their command and commit
    command = shlex.join(["python", "scripts/branch_balance_probe.py", *argv])
    output = {"provenance": {**provenance(argv), "command": command}, "settings": vars(args), "folds": results}
    Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output_json).write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for fold, by_context in results.items():
        for context_size, result in by_context.items():
            scores = ", ".join(f"w={w}: {s['validation']:.1f}/{s['test']:.1f}" for w, s in result["weights"].items())
            print(f"train:test {fold}, context {context_size} (validation/test): {scores}; "
                  f"validation picks w={result['chosen_by_validation']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
