"""Train/validation/test splits and class balancing for KEMDy datasets.

Three splits are offered by name (:func:`make_splits`):

* ``"session"`` (the honest one): whole recording sessions are held out for test, so no speaker or
  dialogue appears on both sides. A session is identified by ``(corpus, session)``: KEMDy19 and
  KEMDy20 both number their sessions from 1, with different people. Validation is either whole
  sessions too, or (``validation_from="dialogues"``) a seeded fraction of the training sessions'
  dialogues, so that every non-test session trains.
* ``"dialogue"``: a seeded fraction of each corpus's dialogues is held out for test and another for
  validation. No dialogue is on two sides, but its speakers are (a session's two speakers talk in
  all of its dialogues). It is the only honest split of a corpus with one session, such as the
  shared sample.
* ``"random"`` (the paper's): an utterance-level random 80/20 split with ``random_state=123``,
  exactly as the original code did with scikit-learn. It leaks speakers and dialogues.

A dialogue is identified by ``(corpus, dialogue)`` (``Sess01_script01`` exists in both corpora).
Seeded draws use one generator per corpus, seeded with ``(seed, corpus)``, over the sorted dialogue
names, so they do not depend on which other corpora or rows are loaded.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from ..annotations import EMOTIONS

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("session", "dialogue", "random")
VALIDATION_SOURCES = ("sessions", "dialogues")
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VALIDATION_FRACTION = 0.1
#: Below this many training examples of an emotion, balancing logs a warning.
FEW_EXAMPLES = 5


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


def dialogue_key(corpus: str, dialogue: str) -> str:
    """``"KEMDy19:Sess01_script01"``: a dialogue named per corpus (both corpora have ``Sess01_script01``)."""
    return f"{corpus}:{dialogue}"


def _check_fraction(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}.")


def _draw_dialogues(dialogues: Sequence[str], fractions: Sequence[float], seed: int, corpus: str,
                    what: str) -> list[list[str]]:
    """Shuffle ``dialogues`` (sorted first) with a generator seeded by ``(seed, corpus)`` and cut
    ``ceil(fraction * n)`` of them per fraction, leaving at least one for training."""
    ordered = sorted(dialogues)
    counts = [math.ceil(f * len(ordered)) for f in fractions]
    if len(ordered) < sum(counts) + 1:
        raise ValueError(
            f"{what} needs at least {sum(counts) + 1} dialogues of {corpus}, but the data has {len(ordered)}: "
            f"{ordered}. Read more sessions, lower the fractions, or use another split."
        )
    rng = np.random.default_rng([int(seed), zlib.crc32(corpus.encode())])
    shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
    parts, start = [], 0
    for count in counts:
        parts.append(sorted(shuffled[start : start + count]))
        start += count
    return parts


def _dialogue_keys(dataset: Dataset) -> list[str]:
    return [dialogue_key(c, d) for c, d in zip(dataset["corpus"], dataset["dialogue"], strict=True)]


def _select(dataset: Dataset, assignment: Sequence[str], description: str) -> DatasetDict:
    """``assignment[i]`` names the split of row ``i``; every split must be non-empty."""
    index: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, name in enumerate(assignment):
        index[name].append(i)
    for name, rows in index.items():
        if not rows:
            raise ValueError(f"The {description} left the {name} split empty.")
    return DatasetDict({name: dataset.select(rows) for name, rows in index.items()})


def session_split(
    dataset: Dataset,
    test_sessions: Iterable[str | int] | None = None,
    validation_sessions: Iterable[str | int] | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    validation_from: str = "sessions",
    seed: int = 123,
) -> DatasetDict:
    """Hold out whole sessions for test, and whole sessions or training dialogues for validation.

    With no explicit sessions, each corpus keeps its last ``ceil(test_fraction * n)`` sessions for
    test and the ``ceil(validation_fraction * n)`` before them for validation: KEMDy19's 20
    sessions give train 1-14, validation 15-16, test 17-20; KEMDy20's 40 give train 1-28,
    validation 29-32, test 33-40. Sessions are given as numbers (every corpus) or
    ``"KEMDy19:3"``.

    ``validation_from="dialogues"`` instead draws ``ceil(validation_fraction * n)`` of the
    dialogues of each corpus's non-test sessions (seeded with ``seed``) for validation, so every
    non-test session trains (``validation_sessions`` must then be ``None``).
    """
    if validation_from not in VALIDATION_SOURCES:
        raise ValueError(f"validation_from must be one of {VALIDATION_SOURCES}, got {validation_from!r}.")
    if validation_from == "dialogues" and validation_sessions is not None:
        raise ValueError("validation_sessions and validation_from='dialogues' exclude each other: validation is "
                         "either whole sessions or dialogues of the training sessions.")
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("validation_fraction", validation_fraction)
    corpora = sorted(set(dataset["corpus"]))
    keys = [_session_key(c, s) for c, s in zip(dataset["corpus"], dataset["session"], strict=True)]
    by_corpus: dict[str, list[str]] = {c: sorted({k for k in keys if k.startswith(c + ":")}) for c in corpora}
    test = _parse_sessions(test_sessions, corpora, "test_sessions")
    validation = _parse_sessions(validation_sessions, corpora, "validation_sessions")
    sessions_for_validation = validation_from == "sessions"
    if test_sessions is None or (sessions_for_validation and validation_sessions is None):
        for corpus, sessions in by_corpus.items():
            n_test = math.ceil(test_fraction * len(sessions))
            n_val = math.ceil(validation_fraction * len(sessions)) if sessions_for_validation else 0
            if len(sessions) < n_test + n_val + 1:
                raise ValueError(
                    f"A session split needs at least {n_test + n_val + 1} sessions of {corpus} "
                    f"(train, {'validation and ' if n_val else ''}test), but the data has {len(sessions)}: "
                    f"{sessions}. Read more sessions, pass test_sessions/validation_sessions explicitly, "
                    "or use split='dialogue' or 'random'."
                )
            if test_sessions is None:
                test.update(sessions[len(sessions) - n_test :])
            if sessions_for_validation and validation_sessions is None:
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
    assignment = ["test" if key in test else "validation" if key in validation else "train" for key in keys]
    if not sessions_for_validation:
        dialogues = _dialogue_keys(dataset)
        validation_dialogues: set[str] = set()
        for corpus in corpora:
            training = {d for d, name, c in zip(dialogues, assignment, dataset["corpus"], strict=True)
                        if name == "train" and c == corpus}
            if training:
                validation_dialogues.update(_draw_dialogues(
                    training, [validation_fraction], seed, corpus, "Validation from the training dialogues")[0])
        assignment = ["validation" if name == "train" and d in validation_dialogues else name
                      for name, d in zip(assignment, dialogues, strict=True)]
        logger.info("Session split: test %s, validation %d dialogues of the other sessions (fraction %s, seed %d): "
                    "%s", sorted(test & known), len(validation_dialogues), validation_fraction, seed,
                    sorted(validation_dialogues))
    else:
        logger.info(
            "Session split: test %s, validation %s, train the other %d sessions",
            sorted(test & known), sorted(validation & known), len(known - test - validation),
        )
    return _select(dataset, assignment, f"session split (sessions: {sorted(known)})")


def dialogue_split(
    dataset: Dataset, test_fraction: float = 0.2, validation_fraction: float = 0.1, seed: int = 123
) -> DatasetDict:
    """Hold out whole dialogues: per corpus, ``ceil(test_fraction * n)`` of its ``n`` dialogues for
    test and ``ceil(validation_fraction * n)`` for validation, drawn with ``seed``.

    The shared sample (one session per corpus; KEMDy19 10 dialogues, KEMDy20 6) gives, with the
    defaults, test 2 + 2, validation 1 + 1 and train 7 + 3 dialogues.
    """
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("validation_fraction", validation_fraction)
    dialogues = _dialogue_keys(dataset)
    corpora = sorted(set(dataset["corpus"]))
    test: set[str] = set()
    validation: set[str] = set()
    for corpus in corpora:
        names = {d for d in dialogues if d.startswith(corpus + ":")}
        drawn_test, drawn_validation = _draw_dialogues(names, [test_fraction, validation_fraction], seed, corpus,
                                                       "A dialogue split")
        test.update(drawn_test)
        validation.update(drawn_validation)
    logger.info("Dialogue split (seed %d): test %s, validation %s, train the other %d dialogues", seed, sorted(test),
                sorted(validation), len(set(dialogues) - test - validation))
    assignment = ["test" if d in test else "validation" if d in validation else "train" for d in dialogues]
    return _select(dataset, assignment, "dialogue split")


def random_split(
    dataset: Dataset, test_size: float = 0.2, validation_size: float = 0.1, seed: int = 123
) -> DatasetDict:
    """The paper's utterance-level random split (``train_test_split(..., random_state=123)``).

    The 20 % test part is exactly the paper's; a validation part (``validation_size`` of the whole
    set) is then drawn from its 80 % with the same seed, for checkpoint selection.
    """
    _check_fraction("test_size", test_size)
    if not 0 <= validation_size < 1 or test_size + validation_size >= 1:
        raise ValueError(f"validation_size must be in [0, 1) with test_size + validation_size < 1, got {validation_size!r}.")
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


def make_splits(
    dataset: Dataset,
    split: str = "session",
    *,
    test_sessions: Iterable[str | int] | None = None,
    validation_sessions: Iterable[str | int] | None = None,
    test_fraction: float | None = None,
    validation_fraction: float | None = None,
    validation_from: str | None = None,
    seed: int = 123,
) -> DatasetDict:
    """Split by name: ``"session"`` (:func:`session_split`), ``"dialogue"`` (:func:`dialogue_split`) or
    ``"random"`` (:func:`random_split`).

    The fractions count the split's unit (sessions, dialogues or utterances; default 0.2 for test and
    0.1 for validation); with ``validation_from="dialogues"`` the session split's validation fraction
    counts the training sessions' dialogues. ``seed`` drives every random draw (123: the paper's
    ``random_state``). Arguments that do not apply to ``split`` raise ``ValueError``.
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}.")
    if split != "session":
        given = [name for name, value in (("test_sessions", test_sessions), ("validation_sessions", validation_sessions),
                                          ("validation_from", validation_from)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to split='session' (this is split={split!r}).")
    test_fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    validation_fraction = DEFAULT_VALIDATION_FRACTION if validation_fraction is None else validation_fraction
    if split == "session":
        return session_split(dataset, test_sessions, validation_sessions, test_fraction, validation_fraction,
                             validation_from or "sessions", seed)
    if split == "dialogue":
        return dialogue_split(dataset, test_fraction, validation_fraction, seed)
    return random_split(dataset, test_size=test_fraction, validation_size=validation_fraction, seed=seed)


def split_groups(splits: DatasetDict) -> dict[str, dict[str, list[str]]]:
    """The sessions and dialogues each split holds (``{"test": {"sessions": [...], "dialogues": [...]}}``)."""
    return {
        name: {
            "sessions": sorted({_session_key(c, s) for c, s in zip(split["corpus"], split["session"], strict=True)}),
            "dialogues": sorted(set(_dialogue_keys(split))),
        }
        for name, split in splits.items()
    }


def split_ids(splits: DatasetDict) -> dict[str, list[str]]:
    """``{"train": [ids], "validation": [ids], "test": [ids]}``: what ``data_splits.json`` holds."""
    return {name: list(splits[name]["id"]) for name in ("train", "validation", "test") if name in splits}


def check_training_labels(dataset: Dataset, label_column: str = "emotion", where: str = "The training split") -> None:
    """Raise ``ValueError`` when ``dataset`` holds fewer than two emotions: there is nothing to learn."""
    present = {k: v for k, v in class_distribution(dataset, label_column).items() if v}
    if len(present) < 2:
        raise ValueError(
            f"{where} holds {len(dataset)} utterances of {len(present)} emotion(s) only {present}: a classifier "
            "cannot learn from it. Read more sessions, choose another split, or switch balancing off "
            "(--balance_max_fraction 0)."
        )


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
    removed = len(dataset) - len(balanced)
    if removed > len(dataset) / 2:
        logger.warning(
            "Balancing removed %d of %d training utterances (%.0f %%), keeping %d: %s -> %s. The dominant emotion "
            "is capped at %s of the result; pass a higher --balance_max_fraction or 0 to switch it off.",
            removed, len(dataset), 100 * removed / max(len(dataset), 1), len(balanced), before, report["after"],
            max_fraction if max_per_class is None else f"{max_per_class} per class",
        )
    few = {name: count for name, count in report["after"].items() if 0 < count < FEW_EXAMPLES}
    if few:
        logger.warning("After balancing, the training split has fewer than %d examples of %s: these emotions will be "
                       "learnt poorly, if at all.", FEW_EXAMPLES, few)
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
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_VALIDATION_FRACTION",
    "FEW_EXAMPLES",
    "SPLIT_NAMES",
    "VALIDATION_SOURCES",
    "balance",
    "check_training_labels",
    "class_distribution",
    "dialogue_key",
    "dialogue_split",
    "make_splits",
    "random_split",
    "session_split",
    "split_groups",
    "split_ids",
    "summarize",
]
