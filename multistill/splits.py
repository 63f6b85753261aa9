"""Train/validation/test splits and class balancing for KEMDy datasets.

Two splits are offered by name (:func:`make_splits`):

* ``"session"`` (the honest one): whole recording sessions are held out, so no speaker or
  dialogue appears on both sides. A session is identified by ``(corpus, session)``: KEMDy19 and
  KEMDy20 both number their sessions from 1, with different people.
* ``"random"`` (the paper's): an utterance-level random 80/20 split with ``random_state=123``,
  exactly as the original code did with scikit-learn. It leaks speakers and dialogues.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from .annotations import EMOTIONS

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("session", "random")


def _session_key(corpus: str, session: int) -> str:
    return f"{corpus}:{int(session):02d}"


def _parse_sessions(spec: Iterable[str | int] | None, corpora: Sequence[str], argument: str) -> set[str]:
    """Turn ``[3, "KEMDy20:5"]`` into session keys; a bare number applies to every corpus."""
    keys: set[str] = set()
    for item in spec or ():
        text = str(item).strip()
        if ":" in text:
            corpus, _, number = text.partition(":")
            if corpus not in corpora:
                raise ValueError(f"{argument}: unknown corpus {corpus!r} in {item!r}; the data has {list(corpora)}.")
        else:
            corpus, number = None, text
        if not number.isdigit():
            raise ValueError(f"{argument}: {item!r} is not a session number or 'CORPUS:NUMBER'.")
        for name in [corpus] if corpus else corpora:
            keys.add(_session_key(name, int(number)))
    return keys


def session_split(
    dataset: Dataset,
    test_sessions: Iterable[str | int] | None = None,
    validation_sessions: Iterable[str | int] | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
) -> DatasetDict:
    """Hold out whole sessions for test and validation.

    With no explicit sessions, each corpus keeps its last ``ceil(test_fraction * n)`` sessions for
    test and the ``ceil(validation_fraction * n)`` before them for validation: KEMDy19's 20
    sessions give train 1-14, validation 15-16, test 17-20; KEMDy20's 40 give train 1-28,
    validation 29-32, test 33-40. Sessions are given as numbers (every corpus) or
    ``"KEMDy19:3"``.
    """
    corpora = sorted(set(dataset["corpus"]))
    keys = [_session_key(c, s) for c, s in zip(dataset["corpus"], dataset["session"], strict=True)]
    by_corpus: dict[str, list[str]] = {c: sorted({k for k in keys if k.startswith(c + ":")}) for c in corpora}
    test = _parse_sessions(test_sessions, corpora, "test_sessions")
    validation = _parse_sessions(validation_sessions, corpora, "validation_sessions")
    if test_sessions is None or validation_sessions is None:
        for corpus, sessions in by_corpus.items():
            n_test = math.ceil(test_fraction * len(sessions))
            n_val = math.ceil(validation_fraction * len(sessions))
            if len(sessions) < n_test + n_val + 1:
                raise ValueError(
                    f"A session split needs at least {n_test + n_val + 1} sessions of {corpus} "
                    f"(train, validation and test), but the data has {len(sessions)}: {sessions}. "
                    "Read more sessions, pass test_sessions/validation_sessions explicitly, or use split='random'."
                )
            if test_sessions is None:
                test.update(sessions[len(sessions) - n_test :])
            if validation_sessions is None:
                remaining = [s for s in sessions if s not in test]
                validation.update(remaining[len(remaining) - n_val :])
    overlap = test & validation
    if overlap:
        raise ValueError(f"Sessions {sorted(overlap)} are in both test_sessions and validation_sessions.")
    known = set(keys)
    for name, chosen in (("test_sessions", test), ("validation_sessions", validation)):
        missing = chosen - known
        if missing and not any(k in known for k in chosen):
            raise ValueError(f"{name}: none of {sorted(missing)} is in the data (it has {sorted(known)}).")
    index = {"train": [], "validation": [], "test": []}
    for i, key in enumerate(keys):
        index["test" if key in test else "validation" if key in validation else "train"].append(i)
    for name, rows in index.items():
        if not rows:
            raise ValueError(f"The session split left the {name} split empty (sessions: {sorted(known)}).")
    logger.info(
        "Session split: test %s, validation %s, train the other %d sessions",
        sorted(test & known), sorted(validation & known), len(known - test - validation),
    )
    return DatasetDict({name: dataset.select(rows) for name, rows in index.items()})


def random_split(
    dataset: Dataset, test_size: float = 0.2, validation_size: float = 0.1, seed: int = 123
) -> DatasetDict:
    """The paper's utterance-level random split (``train_test_split(..., random_state=123)``).

    The 20 % test part is exactly the paper's; a validation part (``validation_size`` of the whole
    set) is then drawn from its 80 % with the same seed, for checkpoint selection.
    """
    indices = np.arange(len(dataset))
    train_idx, test_idx = train_test_split(indices, test_size=test_size, random_state=seed)
    if validation_size > 0:
        train_idx, val_idx = train_test_split(
            train_idx, test_size=validation_size / (1 - test_size), random_state=seed
        )
    else:
        val_idx = np.array([], dtype=int)
    return DatasetDict(
        train=dataset.select(sorted(train_idx)),
        validation=dataset.select(sorted(val_idx)),
        test=dataset.select(sorted(test_idx)),
    )


def make_splits(dataset: Dataset, split: str = "session", **kwargs) -> DatasetDict:
    """Split by name: ``"session"`` (:func:`session_split`) or ``"random"`` (:func:`random_split`)."""
    if split == "session":
        return session_split(dataset, **kwargs)
    if split == "random":
        return random_split(dataset, **kwargs)
    raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}.")


def class_distribution(dataset: Dataset, label_column: str = "emotion") -> dict[str, int]:
    """Examples per emotion, in the paper's label order."""
    counts = Counter(dataset[label_column])
    return {name: counts.get(i, 0) for i, name in enumerate(EMOTIONS)}


def balance(
    dataset: Dataset,
    max_fraction: float | None = 0.6,
    max_per_class: int | None = None,
    seed: int = 123,
    label_column: str = "emotion",
) -> tuple[Dataset, dict[str, dict[str, int]]]:
    """Cap how many examples the dominant emotion keeps, as the paper did (neutral 71 % -> 60 %).

    ``max_fraction`` caps the most frequent emotion's share of the result; ``max_per_class`` caps
    every emotion's count. The kept examples are a seeded random subset, in the original order.
    Returns the balanced dataset and ``{"before": counts, "after": counts}``.
    """
    if max_fraction is not None and not 0 < max_fraction < 1:
        raise ValueError(f"max_fraction must be in (0, 1), got {max_fraction}.")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be a positive integer, got {max_per_class}.")
    labels = np.asarray(dataset[label_column])
    before = class_distribution(dataset, label_column)
    caps = {i: len(labels) for i in range(len(EMOTIONS))}
    if max_per_class is not None:
        caps = {i: max_per_class for i in caps}
    if max_fraction is not None and len(labels):
        dominant = int(np.bincount(labels, minlength=len(EMOTIONS)).argmax())
        rest = int((labels != dominant).sum())
        caps[dominant] = min(caps[dominant], math.floor(max_fraction * rest / (1 - max_fraction) + 1e-9))
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in range(len(EMOTIONS)):
        rows = np.flatnonzero(labels == label)
        if len(rows) > caps[label]:
            rows = rng.choice(rows, size=caps[label], replace=False)
        keep.extend(rows.tolist())
    balanced = dataset.select(sorted(keep))
    report = {"before": before, "after": class_distribution(balanced, label_column)}
    logger.info("Balancing: before %s -> after %s", report["before"], report["after"])
    return balanced, report


def summarize(dataset: Dataset) -> str:
    """A plain-text table of examples per corpus and session, and per emotion."""
    lines = []
    per_session = Counter(zip(dataset["corpus"], dataset["session"], strict=True))
    per_emotion = Counter(zip(dataset["corpus"], dataset["emotion"], strict=True))
    header = f"{'corpus':<8} {'session':>7} {'utterances':>10}"
    lines += [header, "-" * len(header)]
    for (corpus, session), count in sorted(per_session.items()):
        lines.append(f"{corpus:<8} {session:>7} {count:>10}")
    lines.append("")
    header = f"{'corpus':<8} " + " ".join(f"{e:>8}" for e in EMOTIONS) + f" {'total':>8}"
    lines += [header, "-" * len(header)]
    for corpus in sorted({c for c, _ in per_emotion}):
        row = [per_emotion.get((corpus, i), 0) for i in range(len(EMOTIONS))]
        lines.append(f"{corpus:<8} " + " ".join(f"{n:>8}" for n in row) + f" {sum(row):>8}")
    return "\n".join(lines)


__all__ = [
    "SPLIT_NAMES",
    "balance",
    "class_distribution",
    "make_splits",
    "random_split",
    "session_split",
    "summarize",
]
