"""Loading KEMDy (the ETRI download, the shared sample, or the embedded synthetic corpus) as `datasets`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

logger = logging.getLogger(__name__)

CORPORA = ("kemdy19", "kemdy20", "all", "synthetic")
DEFAULT_CACHE = Path.home() / ".cache" / "multistill"


def synthetic_data_dir(cache_dir: str | Path | None = None, seed: int = 0, sessions_per_corpus: int = 4,
                       utterances_per_speaker: int = 4) -> Path:
    """Write (once) and return the embedded synthetic corpus, in ETRI's KEMDy19/KEMDy20 layout.

    The default size (4 sessions per corpus, 4 utterances per speaker and dialogue: 128 utterances) is the
    one the tests use; ``scripts/main.sh`` asks for a larger one so the experiment's numbers are steadier.
    """
    from .synthetic import make_synthetic_kemdy

    name = f"synthetic_kemdy_seed{seed}"
    if (sessions_per_corpus, utterances_per_speaker) != (4, 4):
        name += f"_s{sessions_per_corpus}_u{utterances_per_speaker}"
    root = Path(cache_dir or DEFAULT_CACHE) / name
    done = root / ".complete"
    if not done.exists():
        make_synthetic_kemdy(root, sessions_per_corpus=sessions_per_corpus,
                             utterances_per_speaker=utterances_per_speaker, seed=seed)
        done.touch()
    return root


def load_kemdy(
    corpus: str = "all",
    data_dir: str | Path | None = None,
    sessions: Sequence[int] | None = None,
    bio_signals: bool = False,
    cache_dir: str | Path | None = None,
    synthetic_size: tuple[int, int] = (4, 4),
) -> Dataset:
    """Build (or reuse from the Arrow cache) every utterance of a KEMDy corpus.

    ``corpus`` is ``kemdy19``, ``kemdy20``, ``all`` (both, from ``data_dir``) or ``synthetic``
    (the embedded corpus of both layouts, written under ``cache_dir``; ``data_dir`` is ignored;
    ``synthetic_size`` = sessions per corpus, utterances per speaker and dialogue).
    """
    from loading_scripts.kemdy import Kemdy

    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}.")
    cache_dir = Path(cache_dir or DEFAULT_CACHE)
    if corpus == "synthetic":
        data_dir, corpus = synthetic_data_dir(cache_dir, 0, *synthetic_size), "all"
    elif data_dir is None:
        raise ValueError(
            f"corpus={corpus!r} needs data_dir: the folder holding KEMDy19/ and/or KEMDy20/ as ETRI "
            "distributes them (or use corpus='synthetic' for the embedded corpus)."
        )
    kwargs = {"sessions": list(sessions)} if sessions else {}
    builder = Kemdy(
        config_name=corpus,
        data_dir=str(Path(data_dir).resolve()),
        cache_dir=str(cache_dir / "datasets"),
        bio_signals=bio_signals,
        **kwargs,
    )
    builder.download_and_prepare()
    dataset = builder.as_dataset(split="train")
    logger.info("Loaded %d utterances of %s from %s", len(dataset), corpus, data_dir)
    return dataset


def data_dir_error(corpus: str, data_dir: str | Path | None) -> str | None:
    """Why :func:`load_kemdy` cannot read ``corpus`` from ``data_dir``, as the one-line error of a ``--data_dir``
    option (none given, "no such folder", or the corpus folder it lacks), or None (also for ``synthetic``, which
    needs no folder): scripts check their ``--data_dir`` with it before loading anything (the builder raises after
    the imports)."""
    from loading_scripts.kemdy import layout_problem

    if corpus == "synthetic":
        return None
    if not data_dir:
        return (f"--corpus {corpus} needs --data_dir FOLDER holding KEMDy19/ and/or KEMDy20/ as ETRI distributes "
                "them (or --corpus synthetic).")
    problem = "no such folder." if not Path(data_dir).expanduser().is_dir() else layout_problem(data_dir, corpus)
    return f"--data_dir {data_dir}: {problem}" if problem else None


__all__ = ["CORPORA", "data_dir_error", "load_kemdy", "synthetic_data_dir"]


def previous_utterances(dataset: Dataset, size: int) -> tuple[list[list[int]], list[list[int]]]:
    """For each row, the rows of its ``size`` previous utterances in the same dialogue, newest first (-1: none),
    and their speaker relation to it (1 same speaker, 2 other; 0 where there is none).

    Causal: an utterance's history holds only utterances of its dialogue that start before it (ties broken
    by id, KEMDy's utterance numbering), never a later one. Only rows of ``dataset`` are used, so a history
    never crosses a split.
    """
    if size < 0:
        raise ValueError(f"`size` must be >= 0, got {size}.")
    columns = dataset.select_columns(["id", "dialogue", "speaker", "start"]).to_dict()
    order: dict[str, list[int]] = {}
    for row, dialogue in enumerate(columns["dialogue"]):
        order.setdefault(dialogue, []).append(row)
    history = [[-1] * size for _ in columns["id"]]
    relation = [[0] * size for _ in columns["id"]]

    def when(row: int) -> tuple[float, str]:
        start = columns["start"][row]
        return (float("inf") if start is None or start != start else float(start), columns["id"][row])

    for rows in order.values():
        rows.sort(key=when)
        for position, row in enumerate(rows):
            for step, previous in enumerate(reversed(rows[max(0, position - size):position])):
                history[row][step] = previous
                relation[row][step] = 1 if columns["speaker"][previous] == columns["speaker"][row] else 2
    return history, relation
