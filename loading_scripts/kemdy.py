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
  Arrow cache. The cache path includes ``data_dir``, the config fields and a hash of the builder's modules
  (this file, ``kemdy_annotations.py``, ``kemdy_bio.py``) and of ``multistill/annotations.py`` (so code changes
  rebuild); if the *data* change in place, pass ``download_mode="force_redownload"`` to ``download_and_prepare``.
* **Citation and license**: ``DatasetInfo.citation`` holds ETRI's BibTeX entries for the corpora read
  (:data:`_CITATION` has both); the data are ETRI's, for research use under its license agreement, and
  are never redistributed by this project (it ships code only).

This file is the builder (examples, layout checks, audio checks, the build summary);
:mod:`loading_scripts.kemdy_annotations` reads the annotation files (panels, votes, the skip and note reasons) and
:mod:`loading_scripts.kemdy_bio` the bio-signals. All three log on this module's logger.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import soundfile as sf

from loading_scripts import kemdy_annotations, kemdy_bio
from loading_scripts.kemdy_annotations import (
    NOTE_BAD_VALUE,
    NOTE_EMPTY_TRANSCRIPT,
    NOTE_ONE_PANEL,
    NOTE_RELABELLED,
    RATING_RANGE,
    SKIP_BAD_SEGMENT_ID,
    SKIP_DUPLICATE,
    SKIP_MISSING_TRANSCRIPT,
    SKIP_MISSING_WAV,
    SKIP_NO_VOTES,
    SKIP_PANEL_CONFLICT,
    SKIP_UNDECODABLE_TRANSCRIPT,
    SKIP_UNDECODABLE_WAV,
    SKIP_UNKNOWN_LABEL,
    SPAN_TOLERANCE,
    BuildReport,
    Segment,
    majority_emotion,
    nanmean,
    read_segments,
)
from loading_scripts.kemdy_bio import BioSignals
from multistill import annotations as _annotations
from multistill.annotations import EMOTIONS, UnknownEmotionLabelError, decode_transcript
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
            read_segments([Path(p) for p in source["files"]], cfg.on_unknown_label, BuildReport(log=False))
        return [
            datasets.SplitGenerator(
                name=datasets.Split.TRAIN,
                gen_kwargs={"data_dir": str(data_dir), "sources": sources},
            )
        ]

    def _generate_examples(self, data_dir: str, sources: list[dict[str, Any]]) -> Iterator[tuple[str, dict]]:
        cfg = self.config
        root = Path(data_dir)
        report = BuildReport()
        seen: set[str] = set()
        bio = BioSignals(root) if cfg.bio_signals else None
        check_audio = _AudioCheck(self.info.features["audio"])
        n_rows = n_kept = 0
        for source in sources:
            corpus = source["corpus"]
            segments = read_segments([Path(p) for p in source["files"]], cfg.on_unknown_label, report)
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
    """Hash of the builder's modules and of the annotation conventions they apply (part of the cache path)."""
    digest = hashlib.sha256()
    for module_file in (__file__, kemdy_annotations.__file__, kemdy_bio.__file__, _annotations.__file__):
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
    seg: Segment,
    seen: set[str],
    report: BuildReport,
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
        "valence": nanmean(seg.valences),
        "arousal": nanmean(seg.arousals),
        "start": seg.start,
        "end": seg.end,
    }


def _summary(config_name: str, n_rows: int, report: BuildReport, shown: int = 5) -> str:
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
