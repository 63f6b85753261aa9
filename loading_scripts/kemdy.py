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
  A file that is empty, lacks the two header rows, lacks one of those columns (WAV start/end and Total
  Evaluation Emotion/Valence/Arousal included) or has no data row raises ``ValueError`` naming the file.
* **KEMDy19 panels are matched by segment id and time span** (WAV start/end within
  :data:`SPAN_TOLERANCE`): an F row and an M row are one segment when they have the same id and span
  (each the other's only such row). Known case: ``Session03_F_res.csv`` calls the span 0-3.944 s
  ``Sess03_impro02_M001`` where the M panel calls it ``F001``, and ``M001`` is 3.944-9.33 s in both
  panels. Such a row, whose id is already matched on another span and whose span the other panel gives
  to an id absent from its own panel, is read as that other id (a note naming both files and rows). A
  row still unmatched is a one-panel segment (10 votes, a note) if its id is nowhere else, and is
  otherwise skipped and counted (``SKIP_PANEL_CONFLICT``): votes of different spans are never mixed.
  A row repeating an earlier row's id and span in the same file is a counted duplicate (KEMDy20: any
  repeated id; the first row is kept).
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
  A cell that is empty, not a number, infinite or outside 1-5 is not used (NaN if no panel has a valid
  one) and noted. ``start``/``end``: the WAV start/end columns (seconds); NaN (and a note) unless
  ``0 <= start < end``.
* **Unknown label** (neither an emotion nor a known misspelling), in a Total Evaluation or an evaluator
  cell: ``on_unknown_label="raise"`` (default) raises :class:`UnknownEmotionLabelError` naming the file,
  row (1-based line number in the CSV; the header rows are lines 1-2) and column; ``"skip"`` skips the
  whole segment (both KEMDy19 panels) and counts it.
* **Skipped rows**: a row whose WAV or transcript is missing, whose WAV does not decode to at least one
  sample *with the decoder ``datasets.Audio`` uses when the dataset is read* (torchcodec; so a WAV cut
  mid-sample, which soundfile opens, is caught here and not in the middle of training; where torchcodec
  cannot be loaded, soundfile reads the file instead, with a warning), whose transcript is neither UTF-8
  nor CP949, whose segment id is not in the KEMDy form, whose id was already seen, or which has no
  evaluator vote, is skipped and counted by reason. Decoding every WAV costs about 10-25 ms a file (once
  per build; ``num_proc`` splits the work by session).
* **Notes**: kept examples with an invalid valence/arousal/start/end, an empty transcript (``text`` is
  ``""``; filter on it if you need text), a KEMDy19 row read by time span, or a one-panel KEMDy19 segment
  are counted in :attr:`Kemdy.notes`. Each skip and note is logged at INFO naming the file and row; at the
  end of the build a summary (reason, count, first entries with details) is logged with
  ``logger.warning`` and kept in :attr:`Kemdy.skipped`, :attr:`Kemdy.notes` and :attr:`Kemdy.details`.
  Nothing is dropped or changed silently; a build that keeps nothing raises ``ValueError`` with the summary.
* **Text**: ``raw_text`` is the transcript (UTF-8 for KEMDy19, CP949 for KEMDy20; detected by
  :func:`~multistill.annotations.decode_transcript`), surrounding white space stripped; ``text`` is
  :func:`~multistill.processing_multistill.clean_transcript` of it: non-speech tags (``n/ l/ b/ c/ o/ u/ N/ s/``)
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
* **Citation and license**: ``DatasetInfo.citation`` holds ETRI's BibTeX entries for the corpora read
  (:data:`_CITATION` has both); the data are ETRI's, for research use under its license agreement, and
  are never redistributed by this project (it ships code only).
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
    decode_transcript,
    split_tied_emotions,
)
from multistill.processing_multistill import clean_transcript

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
SKIP_PANEL_CONFLICT = "KEMDy19 panels disagree on the time span"

# Reasons for a note on a kept example (keys of ``Kemdy.notes``).
NOTE_BAD_VALUE = "invalid valence, arousal or WAV start/end (stored as NaN)"
NOTE_EMPTY_TRANSCRIPT = "empty transcript (text is '')"
NOTE_RELABELLED = "KEMDy19 panel row read as another segment (matched by time span)"
NOTE_ONE_PANEL = "KEMDy19 segment in one panel only (10 votes)"

#: Valence and arousal are 1-5 scales (evaluator means); other values are not used.
RATING_RANGE: tuple[float, float] = (1.0, 5.0)

#: KEMDy19 F and M rows give the same time span when both ends agree within this (seconds; files give ms).
SPAN_TOLERANCE = 1e-3

#: How ETRI asks each corpus to be cited ("K. J. Noh and H. Jeong, "KEMDy19," <URL>"), as BibTeX.
_CITATIONS: dict[str, str] = {
    "KEMDy19": r"""@misc{noh_kemdy19,
  author       = {Noh, K. J. and Jeong, H.},
  title        = {{KEMDy19}},
  howpublished = {\url{https://nanum.etri.re.kr/share/kjnoh/KEMDy19?lang=ko_KR}},
  publisher    = {Electronics and Telecommunications Research Institute (ETRI)},
  note         = {Korean multimodal emotion dataset: acted dialogues by voice actors}
}""",
    "KEMDy20": r"""@misc{noh_kemdy20,
  author       = {Noh, K. J. and Jeong, H.},
  title        = {{KEMDy20}},
  howpublished = {\url{https://nanum.etri.re.kr/share/kjnoh/KEMDy20?lang=ko_KR}},
  publisher    = {Electronics and Telecommunications Research Institute (ETRI)},
  note         = {Korean multimodal emotion dataset: free conversation by the general public}
}""",
}
_CITATION = "\n".join(_CITATIONS[c] for c in CORPORA) + "\n"

_LICENSE = (
    "ETRI's KEMDy license agreement: research use after registration with ETRI; no redistribution. This "
    "builder is code only and ships no data: each user requests the corpora from ETRI."
)

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
    ``num_proc`` > 1), :attr:`skipped` maps each skip reason to what was skipped for it (the segment id,
    or ``"<file> row <n>"`` when only one annotation row was dropped), :attr:`notes` maps each note reason
    to the ids of kept examples it concerns, and :attr:`details` maps those keys to what was found, naming
    the file and row. Each entry is logged at INFO as it happens and the summary is always logged.
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
        self.notes: dict[str, list[str]] = {}
        self.details: dict[str, str] = {}
        self._summary = ""
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
            citation="\n".join(_CITATIONS[c] for c in _CONFIG_CORPORA.get(self.config.name, CORPORA)) + "\n",
            license=_LICENSE,
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
        # Parse the annotations once here, so that a malformed file (or, by default, an unknown label)
        # raises its own exception (inside example generation, ``datasets`` wraps it in
        # DatasetGenerationError). Nothing is logged here: the generation pass reports.
        for source in sources:
            _read_segments([Path(p) for p in source["files"]], cfg.on_unknown_label, _Report(log=False))
        return [
            datasets.SplitGenerator(
                name=datasets.Split.TRAIN,
                gen_kwargs={"data_dir": str(data_dir), "sources": sources},
            )
        ]

    def _generate_examples(self, data_dir: str, sources: list[dict[str, Any]]) -> Iterator[tuple[str, dict]]:
        cfg = self.config
        root = Path(data_dir)
        report = _Report()
        seen: set[str] = set()
        bio = _BioSignals(root) if cfg.bio_signals else None
        check_audio = _AudioCheck(self.info.features["audio"])
        n_rows = n_kept = 0
        for source in sources:
            corpus = source["corpus"]
            segments = _read_segments([Path(p) for p in source["files"]], cfg.on_unknown_label, report)
            for seg in segments:
                n_rows += 1
                example = _make_example(root / corpus, corpus, seg, seen, report, check_audio)
                if example is None:
                    continue
                if bio is not None:
                    example.update(bio.cut(corpus, example))
                n_kept += 1
                yield example["id"], example
        self.skipped, self.notes, self.details = report.skipped, report.notes, report.details
        self._summary = _summary(cfg.name, n_rows, report)
        if report.skipped or report.notes:
            logger.warning(self._summary)
        else:
            logger.info("KEMDy (%s): all %d annotated segments were kept.", cfg.name, n_rows)

    def _download_and_prepare(self, dl_manager: Any, verification_mode: Any, **prepare_split_kwargs: Any) -> None:
        # Refuse an empty build here (not in a generator, which with num_proc > 1 sees one shard only);
        # raising inside download_and_prepare leaves no cache behind.
        super()._download_and_prepare(dl_manager, verification_mode, **prepare_split_kwargs)
        if not self.info.splits["train"].num_examples:
            raise ValueError(
                f"KEMDy ({self.config.name}): no example was kept; every annotated segment was skipped.\n"
                f"{self._summary or 'See the summary logged above.'}"
            )


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


_KEMDY19_ANNOTATION = re.compile(r"^Session(\d+)_([FM])_res\.csv$", re.IGNORECASE)
_KEMDY20_ANNOTATION = re.compile(r"^Sess(?:ion)?(\d+)_eval\.csv$", re.IGNORECASE)


def _corpus_layout_problem(data_dir: Path, corpus: str) -> str | None:
    """The first folder of ``corpus`` that ``data_dir`` lacks (``corpus/``, its ``annotation/`` and ``wav/``), as
    one line, or None."""
    corpus_dir = data_dir / corpus
    if not corpus_dir.is_dir():
        hint = ""
        if (data_dir / "annotation").is_dir():
            hint = f" ({data_dir} looks like a corpus folder itself: pass the folder that holds it)"
        return (f"Missing {corpus_dir}: data_dir must hold a {corpus}/ folder{hint}. Request the corpus at "
                f"{ETRI_URLS[corpus]}.")
    for sub in ("annotation", "wav"):
        if not (corpus_dir / sub).is_dir():
            return f"Missing {corpus_dir / sub}: the {sub}/ folder of the KEMDy data was not found."
    return None


def layout_problem(data_dir: str | Path, config_name: str = "all") -> str | None:
    """What ``data_dir`` lacks for the config ``config_name`` (one line), or None: callers check a folder with it
    before building anything; the builder raises the same message with the download instructions."""
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        return f"KEMDy data_dir {path} does not exist."
    for corpus in _CONFIG_CORPORA[config_name]:
        problem = _corpus_layout_problem(path, corpus)
        if problem:
            return problem
    return None


def _find_annotation_files(data_dir: Path, corpus: str, sessions: list[int] | None) -> list[dict[str, Any]]:
    """The annotation files of ``corpus``, grouped by session and sorted by session number."""
    corpus_dir = data_dir / corpus
    problem = _corpus_layout_problem(data_dir, corpus)
    if problem:
        raise FileNotFoundError(f"{problem}\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
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
    for s in wanted:
        files = sorted(p.name for p in by_session.get(s, []))
        if (corpus == "KEMDy20" and len(files) > 1) or len({f.upper() for f in files}) < len(files):
            raise ValueError(
                f"{corpus} session {s} has several annotation files for one panel in {corpus_dir / 'annotation'}: "
                f"{files}. Keep one of them."
            )
        if corpus == "KEMDy19" and len(files) == 1:
            logger.warning(
                "KEMDy19 session %d has one panel file only (%s): its segments get 10 votes instead of 20.",
                s,
                files[0],
            )
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


@dataclass(eq=False)
class _PanelRow:
    """One data row of an annotation file (one evaluator panel's view of one segment)."""

    path: Path
    line: int  # 1-based line number in the CSV (the header rows are lines 1-2)
    segment_id: str
    start: float
    end: float
    cells: list[str]
    cols: dict[str, Any]
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.name} row {self.line}"

    @property
    def span(self) -> str:
        return f"{self.start:g}-{self.end:g} s"


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
    unknown_label: str = ""  # the error message of an unknown label (on_unknown_label="skip")
    where: str = ""  # the annotation row(s) it comes from, for messages
    notes: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail), reported if it is kept


class _Report:
    """What the build skipped (reason -> keys) and what it kept with a note (reason -> ids), with details.

    A key is the segment id when the whole segment is dropped, or ``"<file> row <n>"`` when one annotation
    row is dropped (its segment id is unusable, or lives on in another row). ``details`` maps each key to
    what was found, naming the file and row. Every entry is logged at INFO as it happens (when ``log``).
    """

    def __init__(self, log: bool = True) -> None:
        self.skipped: dict[str, list[str]] = {}
        self.notes: dict[str, list[str]] = {}
        self.details: dict[str, str] = {}
        self.log = log

    def skip(self, reason: str, key: str, detail: str) -> None:
        self._add(self.skipped, "skipped", reason, key, detail)

    def note(self, reason: str, key: str, detail: str) -> None:
        self._add(self.notes, "kept with a note", reason, key, detail)

    def _add(self, table: dict[str, list[str]], kind: str, reason: str, key: str, detail: str) -> None:
        table.setdefault(reason, []).append(key)
        self.details[key] = f"{self.details[key]}; {detail}" if key in self.details else detail
        if self.log:
            logger.info("KEMDy: %s (%s): %s: %s", kind, reason, key, detail)


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
    cols = {
        "segment": segment,
        "start": find("wav", "start"),
        "end": find("wav", "end"),
        "total": total,
        "valence": find("total evaluation", "valence"),
        "arousal": find("total evaluation", "arousal"),
    }
    labels = {
        "start": "WAV start",
        "end": "WAV end",
        "valence": "Total Evaluation Valence",
        "arousal": "Total Evaluation Arousal",
    }
    missing = [label for key, label in labels.items() if cols[key] is None]
    if missing:
        raise ValueError(
            f"{path}: no {', '.join(missing)} column in the two header rows (expected a 'WAV'/'Wav' group "
            f"with 'start' and 'end', and a 'Total Evaluation' group with 'Emotion', 'Valence' and "
            f"'Arousal'); got {top!r} / {sub!r}."
        )
    # The evaluator group name is on the Emotion column's top cell, or on the group's first column.
    cols["evaluators"] = [(name or names[i][0], i) for name, i in evaluators]
    return cols


def _read_panel(path: Path, report: _Report) -> list[_PanelRow]:
    """The data rows of one annotation file; a file without header rows or data rows is an error."""
    rows = _read_csv_rows(path)
    hint = "Re-extract it from ETRI's archive, or leave its session out with sessions=[...]."
    if len([row for row in rows[:2] if any(cell.strip() for cell in row)]) < 2:
        raise ValueError(
            f"{path} is {'empty' if not rows else 'missing its two header rows'}: an annotation file starts "
            f"with two header rows ('Segment ID', 'Total Evaluation', 'EvalNN' ...). {hint}"
        )
    cols = _header_columns(rows[:2], path)
    out: list[_PanelRow] = []
    for line, row in enumerate(rows[2:], start=3):
        if not any(cell.strip() for cell in row):
            continue
        seg_id = _cell(row, cols["segment"])
        if not seg_id:
            report.skip(SKIP_BAD_SEGMENT_ID, f"{path.name} row {line}", f"{path.name} row {line}: empty Segment ID")
            continue
        panel_row = _PanelRow(path, line, seg_id, math.nan, math.nan, row, cols)
        start, end = _cell(row, cols["start"]), _cell(row, cols["end"])
        start_value, end_value = _float(start), _float(end)
        if math.isfinite(start_value) and math.isfinite(end_value) and 0 <= start_value < end_value:
            panel_row.start, panel_row.end = start_value, end_value
        else:
            panel_row.notes.append(
                (
                    NOTE_BAD_VALUE,
                    f"{panel_row.where}: WAV start/end {start!r}/{end!r} is not a time span "
                    f"(0 <= start < end): start and end stored as NaN",
                )
            )
        out.append(panel_row)
    if not out:
        raise ValueError(f"{path} has its two header rows but no annotation row. {hint}")
    return out


def _read_segments(files: list[Path], on_unknown_label: str, report: _Report) -> list[_Segment]:
    """Read one session's annotation file(s) into segments, in row order (KEMDy19: F panel, then M)."""
    panels = [_read_panel(path, report) for path in files]
    segments = []
    for seg_id, rows, notes in _match_panels(panels, report):
        spans = [r for r in rows if not math.isnan(r.start)] or rows
        seg = _Segment(seg_id, start=spans[0].start, end=spans[0].end, where=", ".join(r.where for r in rows))
        seg.notes = [note for r in rows for note in r.notes] + notes
        for row in rows:
            try:
                _add_panel(seg, row)
            except UnknownEmotionLabelError as err:
                if on_unknown_label == "raise":
                    raise UnknownEmotionLabelError(
                        f"{err} Fix the cell, add the spelling to LABEL_ALIASES, or build with "
                        f"on_unknown_label='skip' to skip (and count) such rows."
                    ) from err
                seg.unknown_label = seg.unknown_label or str(err)
        segments.append(seg)
    return segments


_Group = tuple[str, list[_PanelRow], list[tuple[str, str]]]  # segment id, its rows, notes


def _span_known(row: _PanelRow) -> bool:
    return not (math.isnan(row.start) or math.isnan(row.end))


def _same_span(a: _PanelRow, b: _PanelRow) -> bool:
    return (
        _span_known(a)
        and _span_known(b)
        and abs(a.start - b.start) <= SPAN_TOLERANCE
        and abs(a.end - b.end) <= SPAN_TOLERANCE
    )


def _by_id(rows: list[_PanelRow]) -> dict[str, list[_PanelRow]]:
    out: dict[str, list[_PanelRow]] = {}
    for row in rows:
        out.setdefault(row.segment_id, []).append(row)
    return out


def _match_panels(panels: list[list[_PanelRow]], report: _Report) -> list[_Group]:
    """Group one session's annotation rows into segments (rules in the module docstring)."""
    if len(panels) == 1:
        groups: list[_Group] = []
        first: dict[str, _PanelRow] = {}
        for row in panels[0]:
            if row.segment_id in first:
                report.skip(
                    SKIP_DUPLICATE,
                    row.where,
                    f"{row.where}: segment id {row.segment_id} ({row.span}) is already on row "
                    f"{first[row.segment_id].line}; the first row is kept",
                )
                continue
            first[row.segment_id] = row
            groups.append((row.segment_id, [row], []))
        return groups
    first_panel, second_panel = (_drop_repeated_rows(rows, report) for rows in panels)
    return _pair_panels(first_panel, second_panel, report)


def _drop_repeated_rows(rows: list[_PanelRow], report: _Report) -> list[_PanelRow]:
    """Drop (and count) a row that repeats an earlier row's segment id and time span in the same file."""
    kept: list[_PanelRow] = []
    by_id: dict[str, list[_PanelRow]] = {}
    for row in rows:
        earlier = next(
            (k for k in by_id.get(row.segment_id, []) if _same_span(k, row) or not _span_known(row)), None
        )
        if earlier is None:
            kept.append(row)
            by_id.setdefault(row.segment_id, []).append(row)
        else:
            report.skip(
                SKIP_DUPLICATE,
                row.where,
                f"{row.where}: repeats segment id {row.segment_id} ({row.span}) of row {earlier.line}",
            )
    return kept


def _pair_panels(first: list[_PanelRow], second: list[_PanelRow], report: _Report) -> list[_Group]:
    """Pair KEMDy19's F and M panel rows by segment id *and* time span (rules in the module docstring)."""
    first_ids, second_ids = _by_id(first), _by_id(second)

    def compatible(a: _PanelRow, b: _PanelRow) -> bool:
        return a.segment_id == b.segment_id and (_same_span(a, b) or not (_span_known(a) and _span_known(b)))

    # 1. Rows with the same id and the same time span in both panels (each the other's only match).
    pairs: dict[_PanelRow, tuple[_PanelRow, str, list[tuple[str, str]]]] = {}
    for a in first:
        matches = [b for b in second_ids.get(a.segment_id, []) if compatible(a, b)]
        if len(matches) == 1 and [x for x in first_ids[a.segment_id] if compatible(x, matches[0])] == [a]:
            pairs[a] = (matches[0], a.segment_id, [])
    confirmed = {a.segment_id: a for a in pairs}
    # 2. The rest: a row of each panel with the same time span but different ids is one segment when one
    #    id is already confirmed on another span and the other id is absent from the row's panel.
    free_first = [a for a in first if a not in pairs]
    paired_second = {b for b, _, _ in pairs.values()}
    free_second = [b for b in second if b not in paired_second]
    for a in free_first:
        matches = [b for b in free_second if _same_span(a, b)]
        if len(matches) != 1 or [x for x in free_first if _same_span(x, matches[0])] != [a]:
            continue
        b = matches[0]
        if a.segment_id == b.segment_id:
            chosen, notes = a.segment_id, []
        elif a.segment_id in confirmed and b.segment_id not in first_ids:
            chosen, notes = b.segment_id, [_relabel_note(a, b, confirmed[a.segment_id])]
        elif b.segment_id in confirmed and a.segment_id not in second_ids:
            chosen, notes = a.segment_id, [_relabel_note(b, a, confirmed[b.segment_id])]
        else:
            continue
        if chosen in confirmed:
            continue
        pairs[a] = (b, chosen, notes)
        confirmed[chosen] = a
        free_second.remove(b)
    # 3. Unpaired rows: a segment of one panel only, or a conflict that is skipped (never mixed).
    paired_second = {b for b, _, _ in pairs.values()}
    conflicts: dict[str, list[_PanelRow]] = {}
    groups: list[_Group] = []

    def leftover(row: _PanelRow, own: dict[str, list[_PanelRow]], other: dict[str, list[_PanelRow]]) -> None:
        if row.segment_id not in confirmed and len(own[row.segment_id]) == 1 and row.segment_id not in other:
            other_file = (second if own is first_ids else first)[0].path.name
            note = (NOTE_ONE_PANEL, f"{row.where}: {other_file} has no row for {row.segment_id}: 10 votes")
            groups.append((row.segment_id, [row], [note]))
        else:
            conflicts.setdefault(row.segment_id, []).append(row)

    for a in first:
        if a in pairs:
            b, chosen, notes = pairs[a]
            groups.append((chosen, [a, b], notes))
        else:
            leftover(a, first_ids, second_ids)
    for b in second:
        if b not in paired_second:
            leftover(b, second_ids, first_ids)
    for seg_id, rows in conflicts.items():
        listed = ", ".join(f"{r.where} ({r.span})" for r in first_ids.get(seg_id, []) + second_ids.get(seg_id, []))
        detail = (
            f"segment id {seg_id} on {listed}: the panels' rows for it do not match by time span and no other "
            f"row resolves it, so their votes are not combined"
        )
        if seg_id in confirmed:  # the id lives on in its matched rows: skip only the stray rows
            kept = confirmed[seg_id]
            for row in rows:
                report.skip(
                    SKIP_PANEL_CONFLICT,
                    row.where,
                    f"{row.where}: {seg_id} at {row.span} matches no row of the other panel ({seg_id} is "
                    f"{kept.span} on {kept.where} and in the other panel): this row's votes are not used",
                )
        else:
            report.skip(SKIP_PANEL_CONFLICT, seg_id, detail)
    return groups


def _relabel_note(wrong: _PanelRow, right: _PanelRow, confirmed: _PanelRow) -> tuple[str, str]:
    return (
        NOTE_RELABELLED,
        f"{wrong.where} says {wrong.segment_id} for {wrong.span}, which {right.where} calls "
        f"{right.segment_id} ({wrong.segment_id} is {confirmed.span} on {confirmed.where} and in the other "
        f"panel): read as {right.segment_id}",
    )


def _add_panel(seg: _Segment, row: _PanelRow) -> None:
    """Add one annotation row (one evaluator panel) to ``seg``; raises on an unknown label."""
    cols, path, line = row.cols, row.path, row.line
    total_cell = _cell(row.cells, cols["total"])
    for label in split_tied_emotions(total_cell, where=f"{path} row {line}, column Total Evaluation"):
        if label not in seg.totals:
            seg.totals.append(label)
    for name, values in (("valence", seg.valences), ("arousal", seg.arousals)):
        cell = _cell(row.cells, cols[name])
        value = _float(cell)
        if not RATING_RANGE[0] <= value <= RATING_RANGE[1]:  # also False for NaN
            seg.notes.append(
                (
                    NOTE_BAD_VALUE,
                    f"{row.where}: Total Evaluation {name.capitalize()} {cell!r} is not a number in "
                    f"{RATING_RANGE[0]}-{RATING_RANGE[1]}: not used (NaN if no panel has one)",
                )
            )
            value = math.nan
        values.append(value)
    for name, index in cols["evaluators"]:
        cell = _cell(row.cells, index)
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


def _decoder_problem() -> str | None:
    """Why torchcodec (the decoder of ``datasets.Audio``) cannot be loaded here, or ``None`` if it can."""
    if not datasets.config.TORCHCODEC_AVAILABLE:
        return "torchcodec is not installed"
    try:
        from torchcodec.decoders import AudioDecoder  # noqa: F401
    except (ImportError, OSError, RuntimeError) as err:
        return f"torchcodec cannot be loaded ({type(err).__name__}: {err})"
    return None


class _AudioCheck:
    """Decodes a WAV the way the dataset's ``Audio`` feature will when it is read (torchcodec), so that a
    file that would crash training later (truncated mid-sample, garbage, no samples) is skipped and counted
    at build time. Where torchcodec cannot be loaded, the file is read with soundfile instead (warned once).
    """

    def __init__(self, feature: datasets.Audio) -> None:
        self.feature = feature
        self.problem = _decoder_problem()
        if self.problem:
            logger.warning(
                "KEMDy: %s, so WAVs are checked with soundfile instead of the decoder that datasets.Audio uses; "
                "install a torchcodec build that matches your torch (see README) before reading the audio.",
                self.problem,
            )

    def __call__(self, path: Path) -> str | None:
        """``None`` if ``path`` decodes to at least one sample, else why not."""
        try:
            if self.problem is None:
                n_samples = len(self.feature.decode_example({"path": str(path), "bytes": None})["array"])
            else:
                n_samples = len(sf.read(str(path), dtype="float32", always_2d=True)[0])
        except (RuntimeError, ValueError, OSError, sf.LibsndfileError) as err:
            return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        return None if n_samples > 0 else "decodes to 0 samples"


def _make_example(
    corpus_dir: Path,
    corpus: str,
    seg: _Segment,
    seen: set[str],
    report: _Report,
    check_audio: _AudioCheck,
) -> dict[str, Any] | None:
    """Check a segment's files and build its example; ``None`` (and a count in ``report``) to skip it."""

    def skip(reason: str, detail: str) -> None:
        report.skip(reason, seg.segment_id, f"{seg.where}: {detail}")

    if seg.unknown_label:
        return skip(SKIP_UNKNOWN_LABEL, seg.unknown_label)
    if seg.segment_id in seen:  # the id lives on in the earlier example: the key names the rows dropped
        return report.skip(
            SKIP_DUPLICATE,
            seg.where,
            f"{seg.where}: segment id {seg.segment_id} was already read from an earlier annotation file",
        )
    ids = _parse_segment_id(corpus_dir, corpus, seg.segment_id)
    if ids is None:
        return skip(SKIP_BAD_SEGMENT_ID, f"{seg.segment_id!r} is not a {corpus} segment id")
    n_votes = sum(seg.votes.values())
    if n_votes == 0:
        return skip(SKIP_NO_VOTES, "every evaluator emotion cell is empty")
    transcript = ids.wav.with_suffix(".txt")
    if not ids.wav.is_file():
        return skip(SKIP_MISSING_WAV, f"{ids.wav} does not exist")
    if not transcript.is_file():
        return skip(SKIP_MISSING_TRANSCRIPT, f"{transcript} does not exist")
    problem = check_audio(ids.wav)
    if problem:
        return skip(SKIP_UNDECODABLE_WAV, f"{ids.wav}: {problem}")
    try:
        raw_text = decode_transcript(transcript.read_bytes(), where=str(transcript)).strip()
    except ValueError as err:
        return skip(SKIP_UNDECODABLE_TRANSCRIPT, str(err))
    text = clean_transcript(raw_text)
    if not text:
        what = "is empty" if not raw_text else f"holds only non-speech tags ({raw_text!r})"
        seg.notes.append((NOTE_EMPTY_TRANSCRIPT, f"{seg.where}: {transcript} {what}: text is ''"))
    seen.add(seg.segment_id)
    for reason, detail in seg.notes:
        report.note(reason, seg.segment_id, detail)
    return {
        "id": seg.segment_id,
        "corpus": corpus,
        "session": int(ids.session_digits),
        "dialogue": ids.dialogue,
        "speaker": ids.speaker,
        "gender": ids.gender,
        "audio": str(ids.wav),
        "text": text,
        "raw_text": raw_text,
        "emotion": majority_emotion(seg.votes, seg.totals),
        "emotion_votes": [float(seg.votes[e] / n_votes) for e in EMOTIONS],
        "tied_emotions": list(seg.totals),
        "valence": _nanmean(seg.valences),
        "arousal": _nanmean(seg.arousals),
        "start": seg.start,
        "end": seg.end,
    }


def _summary(config_name: str, n_rows: int, report: _Report, shown: int = 5) -> str:
    """The end-of-build summary: counts by reason and the first few entries with their details."""
    n_skipped = sum(len(v) for v in report.skipped.values())
    n_noted = len({key for keys in report.notes.values() for key in keys})
    lines = [
        f"KEMDy ({config_name}): {n_rows} annotated segments read; skipped {n_skipped} "
        f"segments/rows; kept {n_noted} with a note."
    ]
    for kind, table in (("skipped", report.skipped), ("kept with a note", report.notes)):
        for reason, keys in sorted(table.items()):
            lines.append(f"  {kind}, {reason}: {len(keys)}")
            lines.extend(f"    {key}: {report.details.get(key, '')}" for key in keys[:shown])
            if len(keys) > shown:
                lines.append(f"    ... {len(keys) - shown} more (all logged at INFO, and in Kemdy.skipped/notes)")
    return "\n".join(lines)


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
    "NOTE_BAD_VALUE",
    "NOTE_EMPTY_TRANSCRIPT",
    "NOTE_ONE_PANEL",
    "NOTE_RELABELLED",
    "RATING_RANGE",
    "SKIP_BAD_SEGMENT_ID",
    "SKIP_DUPLICATE",
    "SKIP_PANEL_CONFLICT",
    "SKIP_MISSING_TRANSCRIPT",
    "SKIP_MISSING_WAV",
    "SKIP_NO_VOTES",
    "SKIP_UNDECODABLE_TRANSCRIPT",
    "SKIP_UNDECODABLE_WAV",
    "SKIP_UNKNOWN_LABEL",
    "SPAN_TOLERANCE",
    "Kemdy",
    "KemdyConfig",
    "UnknownEmotionLabelError",
    "layout_problem",
    "majority_emotion",
]
