"""The training data path shared by ``train.py`` and ``distill.py``, decided once and built once.

1. :meth:`FeaturePlan.decide` looks at the student (and teacher) configs, the caching switch and the
   distillation settings, and decides which inputs and targets the batches of each split carry:

   ============================  =============  ===================================================
   batch key                     splits         what
   ============================  =============  ===================================================
   model inputs                  all            raw (``input_values``, ``input_ids``...) or cached
                                                (``audio_hidden_states``...) per modality, ``labels``
   ``emotion``                   all            majority label, for the metrics only
   ``teacher_logits``            train          offline distillation (the paper's step 1)
   ``target_*_hidden_states``    train          teacher encoder outputs, hidden-state loss (cached)
   ``teacher_inputs``            train          online teacher: its inputs of modalities the student
                                                does not read (a nested dict)
   ============================  =============  ===================================================

2. :meth:`FeaturePlan.prepare` runs each frozen encoder once over what it has not seen yet
   (:class:`~.feature_cache.EncoderFeatureCache`: one on-disk cache per encoder and modality, keyed by the
   content the encoder sees, so a student of a teacher encodes nothing the teacher's run encoded), writes the
   teacher's logits into the training split, keeps in each split only the columns its batches need (with the
   conversation history's columns for a context model) and builds the :class:`MultiStillCollator`.

The trainer that consumes these batches, and its distillation loss, live in :mod:`.training`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict, Value
from datasets import Sequence as SequenceFeature

from ..annotations import EMOTIONS
from ..configuration_multistill import ALLOWED_MODALITIES as MODALITIES
from .feature_cache import (
    EncoderFeatureCache,
    FeatureTable,
    content_keys,
    fingerprint_of,
    module_fingerprint,
    processor_fingerprint,
    processor_inputs,
)

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"
TEACHER_INPUTS = "teacher_inputs"
#: Batch keys of the teacher's encoder outputs that the hidden-state loss matches (never model inputs).
TARGET_KEYS = ("target_audio_hidden_states", "target_audio_hidden_mask", "target_text_hidden_states",
               "target_text_hidden_mask")
#: Row columns of the conversation history (:meth:`FeaturePlan.prepare` with ``context_size``).
HISTORY_SPEAKER = "history_speaker"


def history_column(modality: str) -> str:
    """The row column listing the previous utterances' cache keys (cached modality) or transcripts (raw)."""
    return f"history_{modality}"


#: Batch keys that are not inputs of the student's forward.
NON_MODEL_KEYS = ("emotion", TEACHER_LOGITS, TEACHER_INPUTS, *TARGET_KEYS)
#: Model input names that belong to the text branch (every other model input is audio).
TEXT_INPUT_KEYS = ("input_ids", "text_attention_mask", "token_type_ids", "text_hidden_states", "text_hidden_mask")


def input_modality(key: str) -> str:
    """``"text"`` or ``"audio"``: the branch a model input belongs to."""
    return "text" if key in TEXT_INPUT_KEYS else "audio"


def frozen_modalities(config: Any) -> list[str]:
    """Modalities whose encoder is frozen (``config.frozen_modalities``), in :data:`MODALITIES` order."""
    return [m for m in MODALITIES if m in config.frozen_modalities]


# --------------------------------------------------------------------------------------------
# Collation
# --------------------------------------------------------------------------------------------


def feature_key_column(modality: str, role: str = "") -> str:
    """The split column holding the cache keys of ``modality`` for ``role`` ("", "target" or "teacher")."""
    return f"{role + '_' if role else ''}{modality}_feature_key"


@dataclass(frozen=True)
class MultiStillCollator:
    """Batches rows of a split prepared by :meth:`FeaturePlan.prepare` (keys as in the module docstring).

    * ``raw_modalities`` go through ``processor`` (``input_values``/``input_ids``...);
    * ``features``: cached encoder outputs of the student's modalities (``audio_hidden_states``...),
      looked up by the ``{modality}_feature_key`` column;
    * ``targets``: the teacher's cached encoder outputs (``target_*_hidden_states``) of rows that carry
      ``target_{modality}_feature_key`` (the training split);
    * ``teacher_features`` / ``teacher_raw_modalities``: the online teacher's inputs of modalities the
      student does not read, under ``teacher_inputs``, for rows carrying ``teacher_{modality}_feature_key``
      / ``teacher_{modality}``;
    * ``labels`` (vote distributions), ``emotion`` and ``teacher_logits`` come from their columns.
    """

    processor: Any = None
    raw_modalities: tuple[str, ...] = ()
    features: Mapping[str, FeatureTable] = field(default_factory=dict)
    targets: Mapping[str, FeatureTable] = field(default_factory=dict)
    teacher_features: Mapping[str, FeatureTable] = field(default_factory=dict)
    teacher_processor: Any = None
    teacher_raw_modalities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.raw_modalities and not self.features:
            raise ValueError("MultiStillCollator needs raw_modalities and/or features.")
        if set(self.raw_modalities) & set(self.features):
            raise ValueError(f"{sorted(set(self.raw_modalities) & set(self.features))}: raw and cached at once.")
        for modality in (*self.raw_modalities, *self.features, *self.targets, *self.teacher_features,
                         *self.teacher_raw_modalities):
            if modality not in MODALITIES:
                raise ValueError(f"Unknown modality {modality!r}; expected {MODALITIES}.")
        if self.raw_modalities and self.processor is None:
            raise ValueError("MultiStillCollator: raw_modalities need a processor.")
        if self.teacher_raw_modalities and self.teacher_processor is None:
            raise ValueError("MultiStillCollator: teacher_raw_modalities need a teacher_processor.")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The student's modalities."""
        return tuple(m for m in MODALITIES if m in self.raw_modalities or m in self.features)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {}
        extra = self._history(rows, batch) if HISTORY_SPEAKER in rows[0] else {}
        for modality in self.raw_modalities:
            batch.update(processor_inputs(self.processor, modality,
                                          [r[modality] for r in rows] + extra.get(modality, [])))
        for modality, table in self.features.items():
            batch[f"{modality}_hidden_states"], batch[f"{modality}_hidden_mask"] = table.batch(
                [r[feature_key_column(modality)] for r in rows] + extra.get(modality, []))
        for modality, table in self.targets.items():
            column = feature_key_column(modality, "target")
            if column in rows[0]:
                batch[f"target_{modality}_hidden_states"], batch[f"target_{modality}_hidden_mask"] = table.batch(
                    [r[column] for r in rows])
        teacher: dict[str, torch.Tensor] = {}
        for modality, table in self.teacher_features.items():
            column = feature_key_column(modality, "teacher")
            if column in rows[0]:
                teacher[f"{modality}_hidden_states"], teacher[f"{modality}_hidden_mask"] = table.batch(
                    [r[column] for r in rows])
        for modality in self.teacher_raw_modalities:
            if f"teacher_{modality}" in rows[0]:
                teacher.update(processor_inputs(self.teacher_processor, modality,
                                                [r[f"teacher_{modality}"] for r in rows]))
        if teacher:
            batch[TEACHER_INPUTS] = teacher
        if "emotion_votes" in rows[0]:
            batch["labels"] = torch.as_tensor(np.stack([np.asarray(r["emotion_votes"]) for r in rows]),
                                              dtype=torch.float32)
        if "emotion" in rows[0]:
            batch["emotion"] = torch.tensor([int(r["emotion"]) for r in rows], dtype=torch.long)
        if TEACHER_LOGITS in rows[0]:
            batch[TEACHER_LOGITS] = torch.as_tensor(np.stack([np.asarray(r[TEACHER_LOGITS]) for r in rows]),
                                                    dtype=torch.float32)
        return batch


    def _history(self, rows: list[dict[str, Any]], batch: dict[str, Any]) -> dict[str, list]:
        """Conversation history: sets ``history_index`` (into the batch's rows: a history utterance that is a
        row of the batch points at that row, the others are appended after the ``len(rows)`` current ones, each
        once) and ``history_speaker``; returns the appended rows' inputs per modality (cache keys or raw
        transcripts)."""
        modalities = (*self.raw_modalities, *self.features)
        appended: dict[str, list] = {m: [] for m in modalities}
        own = [tuple(row[m] if m in self.raw_modalities else row[feature_key_column(m)] for m in modalities)
               for row in rows]
        position: dict[Any, int] = {}
        for i, entry in enumerate(own):
            with contextlib.suppress(TypeError):  # raw audio arrays cannot be keys: appended as before
                position.setdefault(entry, i)
        index = []
        for row in rows:
            entries = list(zip(*(row[history_column(m)] for m in modalities), strict=True))
            slots = []
            for entry in entries:
                if entry not in position:
                    position[entry] = len(rows) + len(appended[modalities[0]])
                    for modality, value in zip(modalities, entry, strict=True):
                        appended[modality].append(value)
                slots.append(position[entry])
            index.append(slots)
        width = max(1, max(len(np.asarray(row[HISTORY_SPEAKER])) for row in rows))
        batch["history_index"] = torch.full((len(rows), width), -1, dtype=torch.long)
        batch[HISTORY_SPEAKER] = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (slots, row) in enumerate(zip(index, rows, strict=True)):
            batch["history_index"][i, : len(slots)] = torch.tensor(slots, dtype=torch.long)
            speakers = np.asarray(row[HISTORY_SPEAKER], dtype=np.int64)[: len(slots)]
            batch[HISTORY_SPEAKER][i, : len(speakers)] = torch.as_tensor(speakers)
        return appended


def history_columns(split: Dataset, size: int, inputs: Mapping[str, Sequence[Any]]) -> list[tuple[str, list]]:
    """The history columns of ``split`` (``size`` previous utterances, :func:`.data.previous_utterances`):
    per modality the previous utterances' values of ``inputs[modality]`` (one per row: a cache key or a
    transcript), only those that exist (newest first), and their speaker relations."""
    from .data import previous_utterances

    previous, relation = previous_utterances(split, size)
    present = [[p for p in row if p >= 0] for row in previous]
    columns = [(history_column(m), [[values[p] for p in row] for row in present]) for m, values in inputs.items()]
    speakers = [rel[: len(row)] for rel, row in zip(relation, present, strict=True)]
    return [*columns, (HISTORY_SPEAKER, speakers)]


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``batch`` that are arguments of the model's ``forward`` (``labels`` included)."""
    return {k: v for k, v in batch.items() if k not in NON_MODEL_KEYS}


# --------------------------------------------------------------------------------------------
# Step 1 of distillation: teacher logits as a column
# --------------------------------------------------------------------------------------------


def add_teacher_logits(
    dataset: Dataset,
    teacher: torch.nn.Module,
    collator: MultiStillCollator,
    batch_size: int = 16,
    desc: str = "Teacher logits",
    fingerprint: str | None = None,
) -> Dataset:
    """Run the teacher over ``dataset`` once and store its logits in a ``teacher_logits`` column.

    ``collator`` turns rows into the teacher's inputs (cached features or raw audio/text). The result is
    cached by ``datasets`` under ``fingerprint`` (default: the teacher's weights and the dataset's
    fingerprint; :meth:`FeaturePlan.prepare` passes one of the content the teacher sees).
    """
    fingerprint = fingerprint or fingerprint_of("teacher-logits-v2", dataset._fingerprint,
                                                module_fingerprint(teacher))
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    features = dataset.features.copy()
    features[TEACHER_LOGITS] = SequenceFeature(Value("float32"), length=teacher.config.num_labels)

    def run(batch: dict[str, list]) -> dict[str, list]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        inputs = {k: v.to(device) for k, v in model_inputs(collator(rows)).items() if k != "labels"}
        with torch.inference_mode():
            logits = teacher(**inputs).logits.float().cpu().numpy()
        return {TEACHER_LOGITS: list(logits)}

    try:
        return dataset.map(run, batched=True, batch_size=batch_size, features=features, new_fingerprint=fingerprint,
                           desc=desc)
    finally:
        teacher.train(was_training)


# --------------------------------------------------------------------------------------------
# The feature plan
# --------------------------------------------------------------------------------------------


def _ordered(modalities: Sequence[str]) -> tuple[str, ...]:
    return tuple(m for m in MODALITIES if m in modalities)


@dataclass(frozen=True)
class PreparedData:
    """What :meth:`FeaturePlan.prepare` returns: splits reduced to their batches' columns, the collator
    that batches them, and what caching cost."""

    splits: DatasetDict
    collator: MultiStillCollator
    encoded: Mapping[str, int]
    seconds: float


@dataclass(frozen=True)
class FeaturePlan:
    """Which inputs and targets each split carries, and where they come from (see the module docstring).

    Build it with :meth:`decide`; every field is then fixed. ``student``/``teacher``: modalities (no
    ``teacher`` when it is not used: ``alpha = 0`` and ``hidden_weight = 0``);
    ``cached``: student modalities read from cached features (all splits); ``teacher_cached``: teacher
    modalities whose (frozen) encoder outputs may be cached; ``teacher_logits``: offline distillation;
    ``online_teacher``: the teacher runs in every training step; ``hidden_targets``: modalities whose
    teacher encoder outputs the student's encoders learn (hidden-state loss).
    """

    student: tuple[str, ...]
    cached: tuple[str, ...] = ()
    teacher: tuple[str, ...] = ()
    teacher_cached: tuple[str, ...] = ()
    teacher_logits: bool = False
    online_teacher: bool = False
    hidden_targets: tuple[str, ...] = ()
    #: previous utterances the batches carry (the larger of the student's and the teacher's ``context_size``)
    context_size: int = 0

    @classmethod
    def decide(cls, student_config: Any, teacher_config: Any | None = None, *, cache_features: bool = True,
               alpha: float = 0.0, hidden_weight: float = 0.0, online_teacher: bool = False) -> FeaturePlan:
        """The plan for a student (and its teacher): frozen encoders are cached when ``cache_features``;
        with a teacher, ``alpha > 0`` distils its logits (a cached column, or ``online_teacher``) and
        ``hidden_weight > 0`` its encoder outputs into the student's trainable encoders."""
        student = _ordered(student_config.modalities)
        cached = _ordered(frozen_modalities(student_config)) if cache_features else ()
        cached = tuple(m for m in cached if m in student)
        uses_teacher = teacher_config is not None and (alpha > 0 or hidden_weight > 0)
        context = max(getattr(student_config, "context_size", 0),
                      getattr(teacher_config, "context_size", 0) if uses_teacher else 0)
        if context and ("audio" in student and "audio" not in cached or online_teacher):
            raise ValueError("A context model reads its previous utterances' features: it needs the audio features "
                             "cached (a frozen audio encoder, caching on) and an offline teacher.")
        if teacher_config is None and (alpha > 0 or hidden_weight > 0 or online_teacher):
            raise ValueError("alpha > 0, hidden_weight > 0 and online_teacher need a teacher.")
        if teacher_config is None or not (alpha > 0 or hidden_weight > 0):
            if online_teacher:
                logger.info("online_teacher is ignored: with alpha = 0 and hidden_weight = 0 the teacher is not used.")
            return cls(student=student, cached=cached, context_size=context)
        teacher = _ordered(teacher_config.modalities)
        teacher_frozen = _ordered(frozen_modalities(teacher_config))
        teacher_cached = teacher_frozen if cache_features else ()
        hidden_targets: tuple[str, ...] = ()
        if hidden_weight > 0:
            trainable = [m for m in student if m not in frozen_modalities(student_config)]
            hidden_targets = tuple(m for m in trainable if m in teacher)
            if not hidden_targets:
                raise ValueError("hidden_weight > 0: the student's encoders are frozen copies of the teacher's (or it "
                                 "shares no modality with it), so there is nothing to match; use it with a student "
                                 "whose encoders train, such as the light student.")
            uncachable = [m for m in hidden_targets if m not in teacher_cached]
            if uncachable and not online_teacher:
                raise ValueError(f"hidden_weight > 0 needs the teacher's {uncachable} hidden states: its frozen "
                                 "encoders' cached features (keep caching on) or an online teacher.")
        return cls(student=student, cached=cached, teacher=teacher, teacher_cached=teacher_cached,
                   teacher_logits=alpha > 0 and not online_teacher, online_teacher=online_teacher,
                   hidden_targets=hidden_targets, context_size=context)

    # ---- derived views
    @property
    def raw(self) -> tuple[str, ...]:
        """Student modalities processed from raw audio/text in every step."""
        return tuple(m for m in self.student if m not in self.cached)

    @property
    def teacher_only(self) -> tuple[str, ...]:
        """Online teacher: its modalities the student does not read (they travel as ``teacher_inputs``)."""
        return tuple(m for m in self.teacher if m not in self.student) if self.online_teacher else ()

    @property
    def cached_targets(self) -> tuple[str, ...]:
        """Hidden-state targets read from the teacher's cached features (offline)."""
        return () if self.online_teacher else self.hidden_targets

    def describe(self) -> list[str]:
        """One line per split: what its batches carry."""
        inputs = ", ".join([f"{m} (cached)" for m in self.cached] + [f"{m} (raw)" for m in self.raw])
        if self.context_size:
            inputs += f", the {self.context_size} previous utterances of the dialogue"
        train = [f"inputs {inputs}", "labels"]
        if self.teacher_logits:
            train.append("teacher_logits (cached column)")
        if self.cached_targets:
            train.append(f"teacher hidden states {list(self.cached_targets)} (cached)")
        if self.online_teacher:
            teacher_only = [f"{m} ({'cached' if m in self.teacher_cached else 'raw'})" for m in self.teacher_only]
            train.append("online teacher" + (f" (+ its inputs {teacher_only})" if teacher_only else ""))
        return [f"train: {', '.join(train)}", f"validation, test: inputs {inputs}, labels"]

    # ---- preparation
    def prepare(
        self,
        splits: DatasetDict,
        student: torch.nn.Module,
        processor: Any,
        teacher: torch.nn.Module | None = None,
        teacher_processor: Any | None = None,
        *,
        cache_dir: str | os.PathLike,
        feature_dtype: str = "float32",
        encoding_batch_size: int = 8,
        teacher_batch_size: int = 16,
        device: str | torch.device | None = None,
        main_process_first: Callable[..., contextlib.AbstractContextManager] | None = None,
        logits_for: Sequence[str] = ("train",),
    ) -> PreparedData:
        """Encode what the caches lack, add the teacher's logits (of the ``logits_for`` splits), reduce the
        splits, build the collator.

        Encoders run on ``device`` (default: where the model is); the teacher goes back to the CPU
        afterwards unless it runs online. ``main_process_first`` (``TrainingArguments.main_process_first``)
        lets the main process fill the caches before the others read them.
        """
        if (self.teacher or self.teacher_logits) and (teacher is None or teacher_processor is None):
            raise ValueError("This plan distils from a teacher: pass teacher= and teacher_processor=.")
        start = time.perf_counter()
        first = main_process_first or (lambda desc: contextlib.nullcontext())
        encoded: dict[str, int] = {}
        keys: dict[tuple[str, str], list[str]] = {}

        def split_keys(name: str, modality: str) -> list[str]:
            if (name, modality) not in keys:
                keys[name, modality] = content_keys(splits[name], modality)
            return keys[name, modality]

        def fill(cache: EncoderFeatureCache, names: Sequence[str], who: str) -> FeatureTable:
            table = cache.table()
            for name in names:
                table, count = cache.encode(splits[name], split_keys(name, cache.modality),
                                            f"Encoding {name} {cache.modality} ({who} encoder)")
                encoded[f"{who}/{cache.modality}/{name}"] = count
            logger.info("%s features of the %s encoder (%s): %d utterances cached in %s", cache.modality, who,
                        "+".join(names), len(table), cache.folder)
            return table

        teacher_needs = set(self.cached_targets) | set(self.teacher_only) | (
            set(self.teacher) if self.teacher_logits else set())
        teacher_cached = [m for m in self.teacher_cached if m in teacher_needs]
        with first(desc="caching encoder features"):
            if device is not None and (self.cached or teacher_cached or self.teacher_logits):
                student.to(device)
                if teacher is not None:
                    teacher.to(device)
            tables = {m: fill(EncoderFeatureCache(cache_dir, student, processor, m, feature_dtype, encoding_batch_size),
                              list(splits), "student") for m in self.cached}
            teacher_tables = {m: fill(EncoderFeatureCache(cache_dir, teacher, teacher_processor, m, feature_dtype,
                                                          encoding_batch_size), ["train"], "teacher")
                              for m in teacher_cached}
            logits: dict[str, np.ndarray] = {}
            if self.teacher_logits:
                logits = {name: self._teacher_logits(name, splits[name], teacher, teacher_processor, teacher_tables,
                                                     split_keys, teacher_batch_size) for name in logits_for}
        if teacher is not None and not self.online_teacher:
            teacher.to("cpu")
        prepared = DatasetDict({name: self._reduce(name, split, split_keys, logits) for name, split in splits.items()})
        collator = MultiStillCollator(
            processor=processor,
            raw_modalities=self.raw,
            features=tables,
            targets={m: teacher_tables[m] for m in self.cached_targets},
            teacher_features={m: teacher_tables[m] for m in self.teacher_only if m in teacher_tables},
            teacher_processor=teacher_processor if self._teacher_raw else None,
            teacher_raw_modalities=self._teacher_raw,
        )
        return PreparedData(prepared, collator, encoded, time.perf_counter() - start)

    @property
    def _teacher_raw(self) -> tuple[str, ...]:
        return tuple(m for m in self.teacher_only if m not in self.teacher_cached)

    def _teacher_logits(self, name: str, train: Dataset, teacher: torch.nn.Module, teacher_processor: Any,
                        tables: Mapping[str, FeatureTable], split_keys: Callable[[str, str], list[str]],
                        batch_size: int) -> np.ndarray:
        """The teacher's logits for every row of split ``name``, cached under the content the teacher sees."""
        cached = [m for m in self.teacher if m in tables]
        raw = [m for m in self.teacher if m not in tables]
        rows = train.select_columns(["id", *raw])
        for modality in cached:
            rows = rows.add_column(feature_key_column(modality), split_keys(name, modality))
        if getattr(teacher.config, "context_size", 0):
            inputs = {m: split_keys(name, m) if m in cached else list(train[m]) for m in self.teacher}
            for column, values in history_columns(train, teacher.config.context_size, inputs):
                rows = rows.add_column(column, values)
        collator = MultiStillCollator(teacher_processor, raw_modalities=tuple(raw), features=dict(tables))
        fingerprint = fingerprint_of("teacher-logits-v2", module_fingerprint(teacher), rows.column_names,
                                     {m: processor_fingerprint(teacher_processor, m) for m in self.teacher},
                                     {m: split_keys(name, m) for m in self.teacher})
        with_logits = add_teacher_logits(rows, teacher, collator, batch_size=batch_size, fingerprint=fingerprint,
                                         desc=f"Teacher logits ({name})")
        return np.asarray(with_logits.with_format("numpy")[TEACHER_LOGITS], dtype=np.float32)

    def _reduce(self, name: str, split: Dataset, split_keys: Callable[[str, str], list[str]],
                logits: Mapping[str, np.ndarray]) -> Dataset:
        """``split`` with only the columns its batches need (raw audio is not decoded for nothing)."""
        columns = ["id", "emotion", "emotion_votes", *self.raw]
        teacher_raw = self._teacher_raw if name == "train" else ()
        reduced = split.select_columns(columns + [m for m in teacher_raw if m not in columns])
        for modality in teacher_raw:
            if modality in columns:
                raise ValueError(f"{modality} is both a student and a teacher-only input.")
            reduced = reduced.rename_column(modality, f"teacher_{modality}")
        added: list[tuple[str, Any]] = [(feature_key_column(m), split_keys(name, m)) for m in self.cached]
        if name == "train":
            added += [(feature_key_column(m, "target"), split_keys(name, m)) for m in self.cached_targets]
            added += [(feature_key_column(m, "teacher"), split_keys(name, m))
                      for m in self.teacher_only if m in self.teacher_cached]
        if name in logits:
            added.append((TEACHER_LOGITS, list(logits[name])))
        if self.context_size:
            inputs = {m: split_keys(name, m) if m in self.cached else list(split[m]) for m in self.student}
            added += history_columns(split, self.context_size, inputs)
        for column, values in added:
            feature = SequenceFeature(Value("float32"), length=len(EMOTIONS)) if column == TEACHER_LOGITS else None
            reduced = reduced.add_column(column, values, feature=feature)
        numeric = [c for c in ("emotion_votes", TEACHER_LOGITS) if c in reduced.column_names]
        return reduced.with_format("numpy", columns=numeric, output_all_columns=True)


__all__ = [
    "HISTORY_SPEAKER",
    "NON_MODEL_KEYS",
    "TARGET_KEYS",
    "TEACHER_INPUTS",
    "TEACHER_LOGITS",
    "FeaturePlan",
    "MultiStillCollator",
    "PreparedData",
    "add_teacher_logits",
    "feature_key_column",
    "frozen_modalities",
    "history_column",
    "history_columns",
    "input_modality",
    "model_inputs",
]
