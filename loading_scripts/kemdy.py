"""ETRI KEMDy19 / KEMDy20: Korean multimodal emotion corpora as a Hugging Face ``datasets`` builder.

The corpora are registration-gated, so this is a *manual download* builder: request the data from ETRI,
unpack it, and point ``data_dir`` at the folder that holds ``KEMDy19/`` and/or ``KEMDy20/``::

    from loading_scripts.kemdy import Kemdy

    builder = Kemdy(config_name="all", data_dir="/data/kemdy", cache_dir="/data/hf-cache")
    builder.download_and_prepare()
    ds = builder.as_dataset("train")          # one example per utterance
    ds[0]["audio"]["array"], ds[0]["audio"]["sampling_rate"]   # float32 mono, 16000

Configs: ``kemdy19``, ``kemdy20`` and ``all`` (both). Extra config fields, accepted as keyword arguments of
the builder (each value gives its own cache): ``sessions=[1, 2]`` reads only those sessions,
``bio_signals=True`` adds the ``eda``/``temp``/``ibi`` features, ``on_unknown_label="skip"`` skips (and
counts) rows with unknown emotion labels instead of raising :class:`UnknownEmotionLabelError`.
There is one split, ``train``, holding every utterance; session-independent and random splits are made
later by the ``multistill`` package.

Rules
-----
* **Annotation files** have two header rows; columns are located from them (``Segment ID``,
  ``WAV``/``Wav`` start/end, ``Total Evaluation`` and ``EvalNN`` groups of Emotion/Valence/Arousal), so
  every session of the full corpora (20 for KEMDy19, 40 for KEMDy20) is read, whatever its column order.
  KEMDy20: ``annotation/SessNN_eval.csv``. KEMDy19: ``annotation/SessionNN_F_res.csv`` and
  ``SessionNN_M_res.csv`` annotate the same segments with two different 10-evaluator panels; both are
  combined into one example with 20 votes (segment order of the F file, then any segment only in M).
* **Votes** (``emotion_votes``, the soft label): every non-empty evaluator emotion cell is one vote, after
  :func:`~multistill.annotations.normalize_emotion` (case, spaces and known misspellings folded); a cell
  such as ``neutral;happy`` gives each of its labels an equal share of one vote; empty cells are not votes.
  The vector is in :data:`~multistill.annotations.EMOTIONS` order and sums to 1.
* **Label** (``emotion``): the evaluator majority. *Tie-break*: among the emotions with the most votes,
  prefer those named in the Total Evaluation (for KEMDy19: in either panel's Total Evaluation), then take
  the earliest in ``EMOTIONS`` order (neutral, happy, surprise, angry, sad, disgust, fear). So 5 neutral /
  5 happy gives neutral, and 5 angry / 5 sad with Total Evaluation ``sad`` gives sad.
* ``tied_emotions``: the labels of the Total Evaluation (``neutral;happy`` -> ``["neutral", "happy"]``; a
  single label gives a one-element list). KEMDy19: the union of both panels' labels, F panel first.
* ``valence``/``arousal``: the Total Evaluation means (1-5); KEMDy19: the mean of the two panels' totals.
  NaN where the cell is empty or not a number. ``start``/``end``: the WAV start/end columns (seconds).
* **Unknown label** (neither an emotion nor a known misspelling), in a Total Evaluation or an evaluator
  cell: ``on_unknown_label="raise"`` (default) raises :class:`UnknownEmotionLabelError` naming the file,
  row (1-based line number in the CSV; the header rows are lines 1-2) and column; ``"skip"`` skips the
  whole segment (both KEMDy19 panels) and counts it.
* **Skipped rows**: a row whose WAV or transcript is missing, whose WAV cannot be opened by ``soundfile``
  or has 0 samples, whose transcript is neither UTF-8 nor CP949, whose segment id is not in the KEMDy form,
  whose id was already seen, or which has no evaluator vote, is skipped and counted by reason. At the end
  of the build a summary (reason, count, first segment ids) is logged with ``logger.warning`` and kept in
  :attr:`Kemdy.skipped`. Nothing is dropped silently.
* **Text**: ``raw_text`` is the transcript (UTF-8 for KEMDy19, CP949 for KEMDy20; detected by
  :func:`~multistill.annotations.decode_transcript`), surrounding white space stripped; ``text`` is
  :func:`~multistill.annotations.clean_transcript` of it: non-speech tags (``n/ l/ b/ c/ o/ u/ N/ s/``)
  removed, an overlap mark ``(A+B)`` keeps ``B`` (the speaker's own words; ``A`` is the other speaker's
  overlapping speech), ``(A)`` keeps ``A``.
* **Audio**: ``Audio(sampling_rate=16000)``; WAVs at other rates or with several channels are resampled
  and averaged to mono when decoded (``x["array"]``). The Arrow cache stores the *path* of each WAV (as the
  SUPERB builder does), so keep ``data_dir`` in place; ``Dataset.save_to_disk``/``push_to_hub`` embed it.
* **Bio-signals** (``bio_signals=True``; ``eda``, ``temp``, ``ibi``, empty lists where a file or the
  segment is absent). KEMDy20: ``EDA|TEMP|IBI/SessionNN/<dialogue>_<user>.csv``; their first line is
  the Unix start time; EDA/TEMP's second line is the rate (``4.000000,hz``) and then come
  ``value,timestamp`` rows: the samples whose time ``row_index / rate`` (seconds from the file start) lies
  in ``[start, end]`` are kept. IBI rows are ``seconds since start, interval, timestamp``: the intervals
  whose time lies in ``[start, end]`` are kept. KEMDy19: ``EDA|TEMP/SessionNN/Original/SessNN{F,M}.csv``
  rows are ``value, elapsed, clock[, segment id]``: the rows of the *speaker's own* file whose 4th column
  is the segment id are kept (KEMDy19 has no IBI: always empty).
* **Determinism and cache**: examples are keyed by segment id and ordered by corpus, session and annotation
  row; building twice gives identical datasets, and a second builder with the same arguments reuses the
  Arrow cache. The cache path includes ``data_dir``, the config fields and a hash of this file and of
  ``multistill/annotations.py`` (so code changes rebuild); if the *data* change in place, pass
  ``download_mode="force_redownload"`` to ``download_and_prepare``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import datasets
import soundfile as sf

from multistill import annotations as _annotations
from multistill.annotations import (
    EMOTIONS,
    UnknownEmotionLabelError,
    clean_transcript,
    decode_transcript,
    split_tied_emotions,
)

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000
CORPORA: tuple[str, ...] = ("KEMDy19", "KEMDy20")
ETRI_URLS: dict[str, str] = {
    "KEMDy19": "https://nanum.etri.re.kr/share/kjnoh/KEMDy19",
    "KEMDy20": "https://nanum.etri.re.kr/share/kjnoh/KEMDy20",
}
_CONFIG_CORPORA: dict[str, tuple[str, ...]] = {
    "kemdy19": ("KEMDy19",),
    "kemdy20": ("KEMDy20",),
    "all": CORPORA,
}

# Reasons for skipping an annotation row (keys of ``Kemdy.skipped``).
SKIP_UNKNOWN_LABEL = "unknown emotion label"
SKIP_NO_VOTES = "no valid evaluator vote"
SKIP_MISSING_WAV = "missing WAV"
SKIP_MISSING_TRANSCRIPT = "missing transcript"
SKIP_UNDECODABLE_WAV = "undecodable or empty WAV"
SKIP_UNDECODABLE_TRANSCRIPT = "undecodable transcript"
SKIP_BAD_SEGMENT_ID = "unrecognised segment id"
SKIP_DUPLICATE = "duplicate segment id"

_LAYOUT = """\
<data_dir>/
  KEMDy19/
    annotation/Session01_F_res.csv, Session01_M_res.csv, ... Session20_*_res.csv
    wav/Session01/Sess01_impro01/Sess01_impro01_F001.wav (+ .txt transcript)
    EDA/Session01/Original/Sess01F.csv, TEMP/Session01/Original/Sess01F.csv   (optional, bio-signals)
  KEMDy20/
    annotation/Sess01_eval.csv, ... Sess40_eval.csv
    wav/Session01/Sess01_script01_User001F_001.wav (+ .txt transcript)
    EDA/ IBI/ TEMP/ Session01/Sess01_script01_User001F.csv                     (optional, bio-signals)"""

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
KEMDy19 and KEMDy20 are distributed by ETRI for research after registration; they cannot be downloaded
automatically. Request them at
  KEMDy19: {ETRI_URLS["KEMDy19"]}
  KEMDy20: {ETRI_URLS["KEMDy20"]}
unpack the archives without renaming anything, and pass data_dir=<the folder that holds KEMDy19/ and/or
KEMDy20/>, e.g. Kemdy(config_name="all", data_dir="/data/kemdy"). Expected layout:
{_LAYOUT}"""


@dataclass
class KemdyConfig(datasets.BuilderConfig):
    """Builder config for KEMDy.

    Args:
        sessions: read only these session numbers (e.g. ``[1, 2]``) of each corpus; ``None`` reads all.
        bio_signals: add the ``eda``, ``temp`` and ``ibi`` features (E4 wristband signals).
        on_unknown_label: ``"raise"`` (default) or ``"skip"`` rows with an unknown emotion label.
    """

    sessions: list[int] | None = None
    bio_signals: bool = False
    on_unknown_label: str = "raise"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on_unknown_label not in ("raise", "skip"):
            raise ValueError(f"on_unknown_label must be 'raise' or 'skip', not {self.on_unknown_label!r}.")


class Kemdy(datasets.GeneratorBasedBuilder):
    """KEMDy19 / KEMDy20 builder: one ``train`` example per annotated utterance (see the module docstring).

    After :meth:`download_and_prepare` has generated the data (not when it reused the cache, nor with
    ``num_proc`` > 1), :attr:`skipped` maps each skip reason to the segment ids skipped for it; the
    logged summary is always written.
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = KemdyConfig
    BUILDER_CONFIGS = [
        KemdyConfig(name="kemdy19", version=VERSION, description="KEMDy19: acted dialogues (voice actors)."),
        KemdyConfig(
            name="kemdy20", version=VERSION, description="KEMDy20: free conversation (general public)."
        ),
        KemdyConfig(name="all", version=VERSION, description="KEMDy19 and KEMDy20 together."),
    ]
    DEFAULT_CONFIG_NAME = "all"
    config: KemdyConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A hash of the builder code in the cache path: editing the parsing rules rebuilds the cache.
        kwargs.setdefault("hash", _code_hash())
        self.skipped: dict[str, list[str]] = {}
        super().__init__(*args, **kwargs)

    @property
    def manual_download_instructions(self) -> str:
        return MANUAL_DOWNLOAD_INSTRUCTIONS

    def _info(self) -> datasets.DatasetInfo:
        features = {
            "id": datasets.Value("string"),
            "corpus": datasets.Value("string"),
            "session": datasets.Value("int32"),
            "dialogue": datasets.Value("string"),
            "speaker": datasets.Value("string"),
            "gender": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
            "text": datasets.Value("string"),
            "raw_text": datasets.Value("string"),
            "emotion": datasets.ClassLabel(names=list(EMOTIONS)),
            "emotion_votes": datasets.List(datasets.Value("float32"), length=len(EMOTIONS)),
            "tied_emotions": datasets.List(datasets.Value("string")),
            "valence": datasets.Value("float32"),
            "arousal": datasets.Value("float32"),
            "start": datasets.Value("float32"),
            "end": datasets.Value("float32"),
        }
        if self.config.bio_signals:
            for name in ("eda", "temp", "ibi"):
                features[name] = datasets.List(datasets.Value("float32"))
        return datasets.DatasetInfo(
            description=(
                "ETRI KEMDy19/KEMDy20 Korean multimodal emotion corpora: speech, transcript, 7-way "
                "emotion label, evaluator vote distribution, valence/arousal."
            ),
            features=datasets.Features(features),
            homepage=ETRI_URLS["KEMDy20"],
            license="ETRI research licence (registration required); the data are not redistributed.",
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        cfg = self.config
        _check_on_unknown_label(cfg.on_unknown_label)
        if cfg.name not in _CONFIG_CORPORA:
            raise ValueError(f"Unknown KEMDy config {cfg.name!r}; use one of {list(_CONFIG_CORPORA)}.")
        data_dir = _check_data_dir(cfg.data_dir)
        sources: list[dict[str, Any]] = []
        for corpus in _CONFIG_CORPORA[cfg.name]:
            sources.extend(_find_annotation_files(data_dir, corpus, cfg.sessions))
        if not sources:
            raise FileNotFoundError(
                f"No annotation file for sessions {cfg.sessions} of {', '.join(_CONFIG_CORPORA[cfg.name])} "
                f"under {data_dir}.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        if cfg.on_unknown_label == "raise":
            # Parse the annotations once here, so that an unknown label or a malformed header raises its
            # own exception (inside example generation, ``datasets`` wraps it in DatasetGenerationError).
            for source in sources:
                _read_segments([Path(p) for p in source["files"]], "raise", {})
        return [
            datasets.SplitGenerator(
                name=datasets.Split.TRAIN,
                gen_kwargs={"data_dir": str(data_dir), "sources": sources},
            )
        ]

    def _generate_examples(self, data_dir: str, sources: list[dict[str, Any]]) -> Iterator[tuple[str, dict]]:
        cfg = self.config
        root = Path(data_dir)
        skipped: dict[str, list[str]] = {}
        seen: set[str] = set()
        bio = _BioSignals(root) if cfg.bio_signals else None
        n_rows = 0
        for source in sources:
            corpus = source["corpus"]
            segments = _read_segments([Path(p) for p in source["files"]], cfg.on_unknown_label, skipped)
            for seg in segments:
                n_rows += 1
                example = _make_example(root / corpus, corpus, seg, seen, skipped)
                if example is None:
                    continue
                if bio is not None:
                    example.update(bio.cut(corpus, example))
                yield example["id"], example
        self.skipped = skipped
        _log_summary(cfg.name, n_rows, skipped)


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def _check_on_unknown_label(value: str) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"on_unknown_label must be 'raise' or 'skip', not {value!r}.")


def _code_hash() -> str:
    """Hash of this module and of the annotation conventions it applies (part of the cache path)."""
    digest = hashlib.sha256()
    for module_file in (__file__, _annotations.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:16]


def _check_data_dir(data_dir: str | None) -> Path:
    if not data_dir:
        raise FileNotFoundError(
            "The KEMDy builder needs data_dir=<folder holding KEMDy19/ and/or KEMDy20/> "
            f"(manual download).\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"KEMDy data_dir {path} does not exist.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return path


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(
            f"Missing {path}: the {what}/ folder of the KEMDy data was not found.\n"
            f"{MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )


_KEMDY19_ANNOTATION = re.compile(r"^Session(\d+)_([FM])_res\.csv$", re.IGNORECASE)
_KEMDY20_ANNOTATION = re.compile(r"^Sess(?:ion)?(\d+)_eval\.csv$", re.IGNORECASE)


def _find_annotation_files(data_dir: Path, corpus: str, sessions: list[int] | None) -> list[dict[str, Any]]:
    """The annotation files of ``corpus``, grouped by session and sorted by session number."""
    corpus_dir = data_dir / corpus
    if not corpus_dir.is_dir():
        hint = ""
        if (data_dir / "annotation").is_dir():
            hint = f" ({data_dir} looks like a corpus folder itself: pass the folder that holds it)"
        raise FileNotFoundError(
            f"Missing {corpus_dir}: data_dir must hold a {corpus}/ folder{hint}. Request the corpus at "
            f"{ETRI_URLS[corpus]}.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    for sub in ("annotation", "wav"):
        _require_dir(corpus_dir / sub, sub)
    pattern = _KEMDY19_ANNOTATION if corpus == "KEMDy19" else _KEMDY20_ANNOTATION
    by_session: dict[int, list[Path]] = {}
    for path in sorted((corpus_dir / "annotation").iterdir()):
        match = pattern.match(path.name)
        if match and path.is_file():
            by_session.setdefault(int(match.group(1)), []).append(path)
    if not by_session:
        raise FileNotFoundError(
            f"No annotation file in {corpus_dir / 'annotation'} (expected "
            f"{'SessionNN_F_res.csv and SessionNN_M_res.csv' if corpus == 'KEMDy19' else 'SessNN_eval.csv'})."
            f"\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    wanted = sorted(by_session) if sessions is None else sorted({int(s) for s in sessions})
    missing = [s for s in wanted if s not in by_session]
    if missing:
        logger.warning("%s: no annotation file for session(s) %s in %s", corpus, missing, corpus_dir)
    # KEMDy19: the F panel first, then the M panel (sorted names: ..._F_res.csv < ..._M_res.csv).
    return [
        {
            "corpus": corpus,
            "session": s,
            "files": [str(p) for p in sorted(by_session[s], key=lambda p: p.name.upper())],
        }
        for s in wanted
        if s in by_session
    ]


@dataclass
class _Segment:
    """One segment's annotation, accumulated over one (KEMDy20) or two (KEMDy19) panels."""

    segment_id: str
    start: float = math.nan
    end: float = math.nan
    totals: list[str] = field(default_factory=list)
    valences: list[float] = field(default_factory=list)
    arousals: list[float] = field(default_factory=list)
    votes: dict[str, Fraction] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, Fraction(0)))
    unknown_label: bool = False


def _read_csv_rows(path: Path) -> list[list[str]]:
    text = decode_transcript(path.read_bytes(), where=str(path))
    return list(csv.reader(io.StringIO(text, newline="")))


def _header_columns(header: list[list[str]], path: Path) -> dict[str, Any]:
    """Locate the columns of interest from the two header rows (group row, then sub-header row)."""
    top, sub = header[0], header[1] if len(header) > 1 else []
    width = max(len(top), len(sub))
    names: list[tuple[str, str]] = []
    group = ""
    for i in range(width):
        cell = top[i].strip() if i < len(top) else ""
        if cell:
            group = cell
        names.append((group.lower(), sub[i].strip().lower() if i < len(sub) else ""))

    def find(group_name: str, sub_name: str) -> int | None:
        for i, (g, s) in enumerate(names):
            if g == group_name and s == sub_name:
                return i
        return None

    segment = next((i for i, (g, _) in enumerate(names) if g == "segment id"), None)
    total = find("total evaluation", "emotion")
    evaluators = [
        (top[i].strip(), i)
        for i, (g, s) in enumerate(names)
        if re.fullmatch(r"eval\d+.*", g) and s == "emotion"
    ]
    if segment is None or total is None or not evaluators:
        raise ValueError(
            f"{path}: the two header rows do not have the expected 'Segment ID', 'Total Evaluation' "
            f"(Emotion, Valence, Arousal) and 'EvalNN' (Emotion, ...) columns; got {top!r} / {sub!r}."
        )
    # The evaluator group name is on the Emotion column's top cell, or on the group's first column.
    evaluators = [(name or names[i][0], i) for name, i in evaluators]
    return {
        "segment": segment,
        "start": find("wav", "start"),
        "end": find("wav", "end"),
        "total": total,
        "valence": find("total evaluation", "valence"),
        "arousal": find("total evaluation", "arousal"),
        "evaluators": evaluators,
    }


def _read_segments(files: list[Path], on_unknown_label: str, skipped: dict[str, list[str]]) -> list[_Segment]:
    """Read one session's annotation file(s) into segments, in row order (KEMDy19: F panel, then M)."""
    segments: dict[str, _Segment] = {}
    for path in files:
        rows = _read_csv_rows(path)
        cols = _header_columns(rows[:2], path)
        seen_here: set[str] = set()
        for line, row in enumerate(rows[2:], start=3):
            if not any(cell.strip() for cell in row):
                continue
            seg_id = _cell(row, cols["segment"])
            if not seg_id:
                skipped.setdefault(SKIP_BAD_SEGMENT_ID, []).append(f"{path.name} row {line}")
                continue
            if seg_id in seen_here:
                skipped.setdefault(SKIP_DUPLICATE, []).append(seg_id)
                continue
            seen_here.add(seg_id)
            seg = segments.get(seg_id)
            if seg is None:
                seg = segments[seg_id] = _Segment(seg_id)
                seg.start = _float(_cell(row, cols["start"]))
                seg.end = _float(_cell(row, cols["end"]))
            try:
                _add_panel(seg, row, cols, path, line)
            except UnknownEmotionLabelError as err:
                if on_unknown_label == "raise":
                    raise UnknownEmotionLabelError(
                        f"{err} Fix the cell, add the spelling to LABEL_ALIASES, or build with "
                        f"on_unknown_label='skip' to skip (and count) such rows."
                    ) from err
                seg.unknown_label = True
    return list(segments.values())


def _add_panel(seg: _Segment, row: list[str], cols: dict[str, Any], path: Path, line: int) -> None:
    """Add one annotation row (one evaluator panel) to ``seg``; raises on an unknown label."""
    total_cell = _cell(row, cols["total"])
    for label in split_tied_emotions(total_cell, where=f"{path} row {line}, column Total Evaluation"):
        if label not in seg.totals:
            seg.totals.append(label)
    seg.valences.append(_float(_cell(row, cols["valence"])))
    seg.arousals.append(_float(_cell(row, cols["arousal"])))
    for name, index in cols["evaluators"]:
        cell = _cell(row, index)
        if not cell:
            continue
        labels = split_tied_emotions(cell, where=f"{path} row {line}, column {name}")
        for label in labels:
            seg.votes[label] += Fraction(1, len(labels))


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def majority_emotion(votes: dict[str, Fraction | float], total_evaluation: list[str]) -> str:
    """The evaluator majority, ties broken by the Total Evaluation and then by ``EMOTIONS`` order."""
    best = max(votes.get(e, 0) for e in EMOTIONS)
    top = [e for e in EMOTIONS if votes.get(e, 0) == best]
    preferred = [e for e in top if e in total_evaluation]
    return (preferred or top)[0]


_KEMDY19_ID = re.compile(r"^Sess(\d+)_([A-Za-z]+\d+)_([FM])(\d+)$")
_KEMDY20_ID = re.compile(r"^Sess(\d+)_([A-Za-z]+\d+)_(User\d+([FM]))_(\d+)$")


@dataclass
class _Ids:
    session_digits: str
    dialogue: str
    speaker: str
    gender: str
    wav: Path


def _parse_segment_id(corpus_dir: Path, corpus: str, seg_id: str) -> _Ids | None:
    """Map a segment id to its dialogue, speaker and WAV path (``None`` if not in the KEMDy form)."""
    if corpus == "KEMDy19":
        match = _KEMDY19_ID.match(seg_id)
        if not match:
            return None
        digits, part, gender = match.group(1), match.group(2), match.group(3)
        dialogue = f"Sess{digits}_{part}"
        wav = corpus_dir / "wav" / f"Session{digits}" / dialogue / f"{seg_id}.wav"
        return _Ids(digits, dialogue, f"KEMDy19_Sess{digits}_{gender}", gender, wav)
    match = _KEMDY20_ID.match(seg_id)
    if not match:
        return None
    digits, part, user, gender = match.group(1), match.group(2), match.group(3), match.group(4)
    wav = corpus_dir / "wav" / f"Session{digits}" / f"{seg_id}.wav"
    return _Ids(digits, f"Sess{digits}_{part}", f"KEMDy20_{user}", gender, wav)


def _make_example(
    corpus_dir: Path, corpus: str, seg: _Segment, seen: set[str], skipped: dict[str, list[str]]
) -> dict[str, Any] | None:
    """Check a segment's files and build its example; ``None`` (and a count in ``skipped``) to skip it."""

    def skip(reason: str) -> None:
        skipped.setdefault(reason, []).append(seg.segment_id)

    if seg.unknown_label:
        return skip(SKIP_UNKNOWN_LABEL)
    if seg.segment_id in seen:
        return skip(SKIP_DUPLICATE)
    ids = _parse_segment_id(corpus_dir, corpus, seg.segment_id)
    if ids is None:
        return skip(SKIP_BAD_SEGMENT_ID)
    n_votes = sum(seg.votes.values())
    if n_votes == 0:
        return skip(SKIP_NO_VOTES)
    transcript = ids.wav.with_suffix(".txt")
    if not ids.wav.is_file():
        return skip(SKIP_MISSING_WAV)
    if not transcript.is_file():
        return skip(SKIP_MISSING_TRANSCRIPT)
    try:
        if sf.info(str(ids.wav)).frames <= 0:
            return skip(SKIP_UNDECODABLE_WAV)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return skip(SKIP_UNDECODABLE_WAV)
    try:
        raw_text = decode_transcript(transcript.read_bytes(), where=str(transcript)).strip()
    except ValueError:
        return skip(SKIP_UNDECODABLE_TRANSCRIPT)
    seen.add(seg.segment_id)
    return {
        "id": seg.segment_id,
        "corpus": corpus,
        "session": int(ids.session_digits),
        "dialogue": ids.dialogue,
        "speaker": ids.speaker,
        "gender": ids.gender,
        "audio": str(ids.wav),
        "text": clean_transcript(raw_text),
        "raw_text": raw_text,
        "emotion": majority_emotion(seg.votes, seg.totals),
        "emotion_votes": [float(seg.votes[e] / n_votes) for e in EMOTIONS],
        "tied_emotions": list(seg.totals),
        "valence": _nanmean(seg.valences),
        "arousal": _nanmean(seg.arousals),
        "start": seg.start,
        "end": seg.end,
    }


def _log_summary(config_name: str, n_rows: int, skipped: dict[str, list[str]], shown: int = 5) -> None:
    n_skipped = sum(len(v) for v in skipped.values())
    if not n_skipped:
        logger.info("KEMDy (%s): all %d annotated segments were kept.", config_name, n_rows)
        return
    lines = [
        f"  {reason}: {len(ids)} ({', '.join(ids[:shown])}{', ...' if len(ids) > shown else ''})"
        for reason, ids in sorted(skipped.items())
    ]
    logger.warning(
        "KEMDy (%s): skipped %d annotation rows/segments (%d segments read):\n%s",
        config_name,
        n_skipped,
        n_rows,
        "\n".join(lines),
    )


class _BioSignals:
    """Reads and caches the E4 bio-signal files and cuts them per segment (rules in the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, Any] = {}

    def cut(self, corpus: str, example: dict[str, Any]) -> dict[str, list[float]]:
        """The ``eda``, ``temp`` and ``ibi`` values of one example (empty lists where absent)."""
        seg_id = example["id"]
        digits = seg_id[len("Sess") :].split("_", 1)[0]  # "Sess01_script01_..." -> "01"
        session = f"Session{digits}"
        if corpus == "KEMDy19":
            own_file = f"Sess{digits}{example['gender']}.csv"  # the speaker's own wristband
            out = {
                name: self._load(
                    self.root / corpus / name.upper() / session / "Original" / own_file, _read_kemdy19_bio
                ).get(seg_id, [])
                for name in ("eda", "temp")
            }
            out["ibi"] = []
            return out
        stem = f"{example['dialogue']}_{example['speaker'].removeprefix('KEMDy20_')}.csv"
        start, end = example["start"], example["end"]
        out = {}
        for name in ("eda", "temp"):
            rate, values = self._load(self.root / corpus / name.upper() / session / stem, _read_rate_file)
            out[name] = _cut_rate_samples(values, rate, start, end)
        times, intervals = self._load(self.root / corpus / "IBI" / session / stem, _read_ibi_file)
        out["ibi"] = [v for t, v in zip(times, intervals, strict=True) if start <= t <= end]
        return out

    def _load(self, path: Path, reader: Any) -> Any:
        if path not in self._cache:
            self._cache[path] = reader(path)
        return self._cache[path]


def _bio_lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.split(",") for line in text.splitlines() if line.strip()]


def _read_kemdy19_bio(path: Path) -> dict[str, list[float]]:
    """KEMDy19 ``value, elapsed, clock[, segment id]`` rows grouped by segment id."""
    by_segment: dict[str, list[float]] = {}
    for cells in _bio_lines(path):
        if len(cells) >= 4 and cells[3].strip():
            value = _float(cells[0])
            if not math.isnan(value):
                by_segment.setdefault(cells[3].strip(), []).append(value)
    return by_segment


def _read_rate_file(path: Path) -> tuple[float, list[float]]:
    """KEMDy20 EDA/TEMP file: line 1 start time, line 2 ``rate,hz``, then ``value,timestamp`` rows."""
    lines = _bio_lines(path)
    if len(lines) < 2:
        return math.nan, []
    rate = _float(lines[1][0])
    return rate, [_float(cells[0]) for cells in lines[2:]]


def _read_ibi_file(path: Path) -> tuple[list[float], list[float]]:
    """KEMDy20 IBI file: line 1 start time, then ``seconds since start, interval, timestamp`` rows."""
    times, intervals = [], []
    for cells in _bio_lines(path)[1:]:
        if len(cells) >= 2:
            t, v = _float(cells[0]), _float(cells[1])
            if not (math.isnan(t) or math.isnan(v)):
                times.append(t)
                intervals.append(v)
    return times, intervals


def _cut_rate_samples(values: list[float], rate: float, start: float, end: float) -> list[float]:
    """Samples whose time ``index / rate`` lies in ``[start, end]`` (NaN samples dropped)."""
    if not values or not rate > 0 or math.isnan(start) or math.isnan(end):
        return []
    first = max(0, math.ceil(start * rate - 1e-6))
    last = min(len(values) - 1, math.floor(end * rate + 1e-6))
    return [v for v in values[first : last + 1] if not math.isnan(v)]


__all__ = [
    "CORPORA",
    "ETRI_URLS",
    "MANUAL_DOWNLOAD_INSTRUCTIONS",
    "SKIP_BAD_SEGMENT_ID",
    "SKIP_DUPLICATE",
    "SKIP_MISSING_TRANSCRIPT",
    "SKIP_MISSING_WAV",
    "SKIP_NO_VOTES",
    "SKIP_UNDECODABLE_TRANSCRIPT",
    "SKIP_UNDECODABLE_WAV",
    "SKIP_UNKNOWN_LABEL",
    "Kemdy",
    "KemdyConfig",
    "UnknownEmotionLabelError",
    "majority_emotion",
]
