"""Does the teacher's text path lose to logistic regression on the same TF-IDF bag? Validation only.

The recipe's teacher reads transcripts as a TF-IDF-weighted bag of character n-grams through learnt n-gram
embeddings, a projection and a linear classifier, each weight matrix under the L2 penalty (``--l2_penalty 1``);
logistic regression puts that penalty on one matrix. This probe trains both heads on the *same* TF-IDF matrix
(scikit-learn's, as the baseline builds it), so only the head differs, and scores them by cross-validation over
whole dialogues of one session (never a test session): each dialogue is predicted by a model trained on the
session's other dialogues, and macro-F1 is taken over the session's pooled predictions.

Heads (the torch ones trained as the recipe trains: full batch, ``--steps`` at a constant learning rate decayed
to zero over the last 100 steps, class-balanced loss, penalty ``sum(w^2) / (2 * rows)`` on every weight matrix):

* ``tfidf_lr``: scikit-learn's ``LogisticRegression(C=1, class_weight="balanced")``, the baseline;
* ``linear``: one matrix on the bag, the same objective trained by the recipe's optimiser;
* ``recipe_shaped``: the teacher's text path, bag -> learnt embeddings (128 wide, initial std 0.1) -> projection
  (128) -> classifier;
* ``recipe_unprojected``: the same without the projection, bag -> learnt embeddings (128) -> classifier: two
  penalised factors, whose product's penalty is its nuclear norm (a low-rank prior) where one matrix gets its squared
  Frobenius norm;
* ``frozen_wide``: bag -> a fixed random Gaussian projection (``--frozen_width`` wide, std ``1/sqrt(width)``,
  which keeps inner products on average) -> classifier;
* ``frozen_wide_projected``: the same with a learnt 128-wide projection before the classifier.

usage: python scripts/text_head_probe.py --data_dir KEMDY_DIR --sessions 1 2 --output_json results/X/probe.json
"""

from __future__ import annotations

import itertools
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multistill.cli import check_output_file  # noqa: E402
from multistill.tools.experiment import provenance  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402

HEADS = ("tfidf_lr", "linear", "recipe_shaped", "recipe_unprojected", "frozen_wide", "frozen_wide_projected")
NUM_LABELS = 7


@dataclass
class Arguments:
    """Dialogue-grouped cross-validation of text heads inside each named session."""

    data_dir: str = field(metadata={"help": "A KEMDy folder in ETRI's layout (KEMDy19/ inside)."})
    output_json: str = field(metadata={"help": "Where to write the scores."})
    sessions: list[int] = field(default_factory=lambda: [1, 2],
                                metadata={"help": "KEMDy19 sessions to probe, each on its own (training sessions)."})
    folds: int = field(default=5, metadata={"help": "Cross-validation folds over each session's dialogues."})
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3],
                             metadata={"help": "Initialisation seeds of the torch heads."})
    steps: int = field(default=600, metadata={"help": "Full-batch steps (the recipe: 600)."})
    learning_rate: float = field(default=1e-2, metadata={"help": "The recipe's constant rate before the decay."})
    frozen_width: int = field(default=2048, metadata={"help": "Width of the fixed random projection."})
    heads: list[str] = field(default_factory=lambda: list(HEADS),
                             metadata={"help": f"Heads to compare, of {', '.join(HEADS)}."})
    threads: int = field(default=1, metadata={"help": "torch threads (more oversubscribe a shared CPU)."})


def check_arguments(args: Arguments) -> None:
    """Refuse bad values before any data is read."""
    from multistill.training.data import data_dir_error

    for name, value, low in (("folds", args.folds, 2), ("steps", args.steps, 101), ("frozen_width", args.frozen_width, 1),
                             ("threads", args.threads, 1)):
        if value < low:
            raise ValueError(f"--{name} must be at least {low}, got {value}.")
    unknown = sorted(set(args.heads) - set(HEADS))
    if unknown:
        raise ValueError(f"--heads {unknown}: unknown; choose among {', '.join(HEADS)}.")
    if not args.sessions or not args.seeds or not args.heads:
        raise ValueError("--sessions, --seeds and --heads need at least one value each.")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning_rate must be positive, got {args.learning_rate}.")
    check_output_file(args.output_json, "--output_json", create_folder=True)
    error = data_dir_error("kemdy19", args.data_dir)
    if error:
        raise ValueError(error)


def bag_inputs(matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A scipy sparse matrix as ``embedding_bag`` inputs: column ids, row offsets, values (float32)."""
    csr = matrix.tocsr()
    return (torch.from_numpy(csr.indices.astype(np.int64)), torch.from_numpy(csr.indptr[:-1].astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float32)))


def bag_times(bag: tuple[torch.Tensor, torch.Tensor, torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """``bag @ weight`` for a sparse bag, as the n-gram encoder computes it (an IDF-weighted embedding bag)."""
    ids, offsets, values = bag
    return torch.nn.functional.embedding_bag(ids, weight, offsets, mode="sum", per_sample_weights=values)


def train_head(head: str, train_bag, labels: np.ndarray, test_bag, args: Arguments, seed: int) -> np.ndarray:
    """Fit one torch head as the recipe trains and return its predictions on ``test_bag``."""
    from sklearn.utils.class_weight import compute_sample_weight

    generator = torch.Generator().manual_seed(seed)
    rows, vocabulary = train_bag.shape
    inputs, test_inputs = bag_inputs(train_bag), bag_inputs(test_bag)
    width = vocabulary
    if head.startswith("frozen_wide"):
        fixed = torch.randn(vocabulary, args.frozen_width, generator=generator) * args.frozen_width ** -0.5
        inputs, test_inputs, width = bag_times(inputs, fixed), bag_times(test_inputs, fixed), args.frozen_width
    layers: list[tuple[torch.nn.Parameter, torch.nn.Parameter]] = []
    shapes = {"linear": [width, NUM_LABELS], "frozen_wide": [width, NUM_LABELS],
              "recipe_shaped": [width, 128, 128, NUM_LABELS], "recipe_unprojected": [width, 128, NUM_LABELS],
              "frozen_wide_projected": [width, 128, NUM_LABELS]}[head]
    for index, (size_in, size_out) in enumerate(itertools.pairwise(shapes)):
        embeddings = head.startswith("recipe") and index == 0  # the n-gram embeddings: std 0.1, no bias
        std = 0.1 if embeddings else size_in ** -0.5
        weight = torch.nn.Parameter(torch.randn(size_in, size_out, generator=generator) * std)
        layers.append((weight, None if embeddings else torch.nn.Parameter(torch.zeros(size_out))))

    def forward(batch: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        hidden = batch
        for weight, bias in layers:
            hidden = bag_times(hidden, weight) if isinstance(hidden, tuple) else hidden @ weight
            hidden = hidden + bias if bias is not None else hidden
        return hidden

    parameters = [p for pair in layers for p in pair if p is not None]
    optimizer = torch.optim.AdamW(parameters, lr=args.learning_rate, weight_decay=0.0)
    targets = torch.tensor(labels)
    sample_weights = torch.tensor(compute_sample_weight("balanced", labels), dtype=torch.float32)
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * min(1.0, (args.steps - step) / 100)
        losses = torch.nn.functional.cross_entropy(forward(inputs), targets, reduction="none")
        penalty = sum((weight ** 2).sum() for weight, _ in layers) / (2 * rows)
        loss = (losses * sample_weights).sum() / sample_weights.sum() + penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return forward(test_inputs).argmax(dim=1).numpy()


def probe_session(texts: np.ndarray, labels: np.ndarray, dialogues: np.ndarray, args: Arguments,
                  progress: tqdm) -> dict[str, Any]:
    """Every head's pooled cross-validated macro-F1 on one session (per seed for the torch heads)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    seeds_of = {head: [0] if head == "tfidf_lr" else args.seeds for head in args.heads}
    predictions = {head: {seed: np.zeros(len(labels), dtype=int) for seed in seeds} for head, seeds in seeds_of.items()}
    for train_rows, held_rows in GroupKFold(args.folds).split(texts, groups=dialogues):
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        train_bag, held_bag = vectorizer.fit_transform(texts[train_rows]), vectorizer.transform(texts[held_rows])
        for head, seeds in seeds_of.items():
            for seed in seeds:
                progress.set_postfix_str(f"{head}, seed {seed}")
                if head == "tfidf_lr":
                    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000)
                    predicted = model.fit(train_bag, labels[train_rows]).predict(held_bag)
                else:
                    predicted = train_head(head, train_bag, labels[train_rows], held_bag, args, seed)
                predictions[head][seed][held_rows] = predicted
                progress.update()
    scores = {}
    for head in args.heads:
        per_seed = {str(seed): 100 * f1_score(labels, predicted, average="macro", labels=range(NUM_LABELS))
                    for seed, predicted in predictions[head].items()}
        values = list(per_seed.values())
        scores[head] = {"macro_f1_per_seed": per_seed, "macro_f1_mean": float(np.mean(values)),
                        "macro_f1_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
    return scores


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # 1. arguments, checked before anything is loaded
    try:
        (args,) = parse_command_line(HfArgumentParser(Arguments), argv)
        check_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    # 2. the sessions' transcripts, labels and dialogues
    from multistill.training.data import load_kemdy

    dataset = load_kemdy("kemdy19", args.data_dir)
    sessions = np.array(dataset["session"])
    missing = sorted(set(args.sessions) - set(sessions.tolist()))
    if missing:
        print(f"error: --sessions {missing}: not in {args.data_dir} (it holds {sorted(set(sessions.tolist()))}).",
              file=sys.stderr)
        return 2
    # 3. cross-validation inside each session
    fits_per_fold = sum(1 if head == "tfidf_lr" else len(args.seeds) for head in args.heads)
    results: dict[str, Any] = {}
    with tqdm(total=len(args.sessions) * args.folds * fits_per_fold, desc="text head probe") as progress:
        for session in args.sessions:
            rows = np.where(sessions == session)[0]
            dialogues = np.array(dataset["dialogue"])[rows]
            results[str(session)] = {
                "utterances": int(len(rows)), "dialogues": int(len(set(dialogues))),
                "heads": probe_session(np.array(dataset["text"], dtype=object)[rows],
                                       np.array(dataset["emotion"])[rows], dialogues, args, progress)}
    # 4. the scores with their command and commit
    output = {"provenance": {**provenance(argv), "command": shlex.join(["python", "scripts/text_head_probe.py", *argv])},
              "settings": vars(args), "sessions": results}
    Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output_json).write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for session, result in results.items():
        for head, score in result["heads"].items():
            print(f"session {session}: {head:22s} {score['macro_f1_mean']:.1f} ± {score['macro_f1_std']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
