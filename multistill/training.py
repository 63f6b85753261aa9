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
   (:class:`EncoderFeatureCache`: one on-disk cache per encoder and modality, keyed by the content the
   encoder sees, so a student of a teacher encodes nothing the teacher's run encoded), writes the
   teacher's logits into the training split, keeps in each split only the columns its batches need
   and builds the :class:`MultiStillCollator`.
3. :class:`MultiStillTrainer` (a :class:`~transformers.Trainer`) passes only model inputs to the model;
   with :class:`DistillationSettings` its loss is Hinton's
   ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, votes)``, plus an optional
   hidden-state term, each term logged apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Array2D, Audio, Dataset, DatasetDict, Features, Value, concatenate_datasets
from datasets import Sequence as SequenceFeature
from transformers import EvalPrediction, Trainer, TrainingArguments

from .annotations import EMOTIONS
from .configuration_multistill import ALLOWED_MODALITIES as MODALITIES
from .modeling_multistill import classification_loss
from .plotting import with_korean_text

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"
TEACHER_INPUTS = "teacher_inputs"
#: Batch keys of the teacher's encoder outputs that the hidden-state loss matches (never model inputs).
TARGET_KEYS = ("target_audio_hidden_states", "target_audio_hidden_mask", "target_text_hidden_states",
               "target_text_hidden_mask")
#: Batch keys that are not inputs of the student's forward.
#: Row columns of the conversation history (:meth:`FeaturePlan.prepare` with ``context_size``).
HISTORY_SPEAKER = "history_speaker"


def history_column(modality: str) -> str:
    """The row column listing the previous utterances' cache keys (cached modality) or transcripts (raw)."""
    return f"history_{modality}"


NON_MODEL_KEYS = ("emotion", TEACHER_LOGITS, TEACHER_INPUTS, *TARGET_KEYS)
#: Model input names that belong to the text branch (every other model input is audio).
TEXT_INPUT_KEYS = ("input_ids", "text_attention_mask", "token_type_ids", "text_hidden_states", "text_hidden_mask")
#: Bumped when the way features are computed changes (invalidates every cache). v4: Whisper at the utterance's length,
#: batch-independent; layer statistics for the pooled fusion.
FEATURE_FORMAT = "encoder-features-v4"


def input_modality(key: str) -> str:
    """``"text"`` or ``"audio"``: the branch a model input belongs to."""
    return "text" if key in TEXT_INPUT_KEYS else "audio"


def frozen_modalities(config: Any) -> list[str]:
    """Modalities whose encoder is frozen (``config.frozen_modalities``), in :data:`MODALITIES` order."""
    return [m for m in MODALITIES if m in config.frozen_modalities]


def _encoder(model: torch.nn.Module, modality: str) -> torch.nn.Module:
    base = getattr(model, "multistill", model)
    encoder = getattr(base, f"{modality}_encoder", None)
    if encoder is None:
        raise ValueError(f"The model has no {modality} encoder (modalities {model.config.modalities}).")
    return encoder


# --------------------------------------------------------------------------------------------
# Fingerprints: what an encoder is, and what it sees
# --------------------------------------------------------------------------------------------


def module_fingerprint(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer of ``module`` (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


_PROCESSOR_BOOKKEEPING = ("auto_map", "processor_class", "feature_extractor", "tokenizer", "modalities")
_PROCESSOR_TEXT_SETTINGS = ("max_text_tokens",)


def processor_fingerprint(processor: Any, modality: str) -> str:
    """A hash of what ``processor`` does to one modality: the feature extractor and the processor's audio
    settings for ``"audio"``, the tokenizer and the token limit for ``"text"`` (not object identity, file
    locations or the other modality's settings)."""
    settings = {k: v for k, v in processor.to_dict().items() if k not in _PROCESSOR_BOOKKEEPING}
    if modality == "audio":
        extractor = {k: v for k, v in processor.feature_extractor.to_dict().items() if k not in _PROCESSOR_BOOKKEEPING}
        return _fingerprint(extractor, {k: v for k, v in settings.items() if k not in _PROCESSOR_TEXT_SETTINGS})
    tokenizer = processor.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # without its call state (padding/truncation are set by the last call)
        described = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    else:
        described = sorted(tokenizer.get_vocab().items())
    return _fingerprint(described, getattr(tokenizer, "do_lower_case", None),
                        {k: settings.get(k) for k in _PROCESSOR_TEXT_SETTINGS})


def content_keys(dataset: Dataset, modality: str) -> list[str]:
    """One key per row for what an encoder of ``modality`` sees: the transcript (``text`` column), or the
    stored audio (its bytes, or its file's path, size and modification time, and the decoding rate)."""
    if modality == "text":
        return [hashlib.sha1(f"text:{t}".encode()).hexdigest()[:24] for t in dataset["text"]]
    feature = dataset.features["audio"]
    stored = dataset.cast_column("audio", Audio(sampling_rate=feature.sampling_rate, decode=False))["audio"]
    keys = []
    for item in stored:
        digest = hashlib.sha1(f"audio:{feature.sampling_rate}:".encode())
        if item.get("bytes"):
            digest.update(item["bytes"])
        else:
            path = item.get("path") or ""
            stat = os.stat(path) if os.path.exists(path) else None
            digest.update(f"{os.path.abspath(path)}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}".encode())
        keys.append(digest.hexdigest()[:24])
    return keys


# --------------------------------------------------------------------------------------------
# Cached encoder features
# --------------------------------------------------------------------------------------------


def _pad_sequences(arrays: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
    longest = max(t.shape[0] for t in tensors)
    padded = torch.zeros(len(tensors), longest, tensors[0].shape[-1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.long)
    for i, tensor in enumerate(tensors):
        padded[i, : tensor.shape[0]] = tensor
        mask[i, : tensor.shape[0]] = 1
    return padded, mask


@dataclass(frozen=True)
class FeatureTable:
    """A read-only snapshot of one encoder's cached hidden states: content key -> ``[frames, hidden]``."""

    dataset: Dataset | None
    index: Mapping[str, int]

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden states of ``keys``, zero-padded, and their frame mask."""
        missing = [k for k in keys if k not in self.index]
        if missing or self.dataset is None:
            raise KeyError(f"{len(missing)} of {len(keys)} rows are not in the feature cache (prepare it first).")
        return _pad_sequences(self.dataset[[self.index[k] for k in keys]]["hidden_states"])


class EncoderFeatureCache:
    """The hidden states of one frozen encoder (``modality`` of ``model``, fed by ``processor``), on disk.

    Its folder is named by a fingerprint of the encoder's weights, what the processor does to that
    modality, the model's length limit and the storage dtype; inside, rows are keyed by
    :func:`content_keys`. So any model holding the same encoder (a student of this teacher) finds what
    an earlier run encoded, whatever the split, the other modality or the other columns, and a change of
    weights, processor or data encodes anew. New rows are appended as Arrow shards (written atomically by
    ``datasets.map``).
    """

    def __init__(self, root: str | os.PathLike, model: torch.nn.Module, processor: Any, modality: str,
                 feature_dtype: str = "float32", batch_size: int = 8):
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
        self.model, self.processor, self.modality = model, processor, modality
        self.feature_dtype, self.batch_size = feature_dtype, batch_size
        self.hidden_size = int(getattr(model.config, f"{modality}_hidden_size"))
        limit = model.config.max_audio_frames if modality == "audio" else model.config.max_text_tokens
        self.fingerprint = _fingerprint(FEATURE_FORMAT, modality, module_fingerprint(_encoder(model, modality)),
                                        processor_fingerprint(processor, modality), limit, feature_dtype)
        self.folder = Path(root) / f"{modality}-{self.fingerprint}"

    def table(self) -> FeatureTable:
        """What the cache holds now."""
        shards = sorted(self.folder.glob("shard-*.arrow"))
        if not shards:
            return FeatureTable(None, {})
        dataset = concatenate_datasets([Dataset.from_file(str(p)) for p in shards]).with_format("numpy")
        return FeatureTable(dataset, {key: i for i, key in enumerate(dataset["key"])})

    def encode(self, dataset: Dataset, keys: Sequence[str], desc: str) -> tuple[FeatureTable, int]:
        """Encode the rows of ``dataset`` (``keys[i]`` is row ``i``'s content key) that the cache lacks.

        Returns the updated table and the number of utterances encoded.
        """
        table = self.table()
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in table and key not in first:
                first[key] = i
        if not first:
            logger.debug("%s: all %d utterances already cached in %s", desc, len(keys), self.folder)
            return table, 0
        new_keys = list(first)
        shard = _fingerprint(self.fingerprint, new_keys)
        self.folder.mkdir(parents=True, exist_ok=True)
        features = Features({"key": Value("string"),
                             "hidden_states": Array2D(shape=(None, self.hidden_size), dtype=self.feature_dtype)})
        source = dataset.select(list(first.values())).select_columns([self.modality])
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()

        def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            values = batch[self.modality]
            inputs = processor_inputs(self.processor, self.modality, values)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.inference_mode():
                if self.modality == "audio":
                    hidden, mask = self.model.encode_audio(**inputs)
                else:
                    hidden, mask = self.model.encode_text(**inputs)
            return {"key": [new_keys[i] for i in indices], "hidden_states": _unpad(hidden, mask, self.feature_dtype)}

        try:
            source.map(encode, batched=True, batch_size=self.batch_size, with_indices=True,
                       remove_columns=[self.modality], features=features, new_fingerprint=shard,
                       cache_file_name=str(self.folder / f"shard-{shard}.arrow"),
                       desc=f"{desc}: {len(new_keys)} of {len(keys)} utterances")
        finally:
            self.model.train(was_training)
        return self.table(), len(new_keys)


def _audio_arrays(batch_audio: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(item["array"], dtype=np.float32) for item in batch_audio]


def processor_inputs(processor: Any, modality: str, values: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Model inputs of one modality for a batch of raw values (decoded 16 kHz audio rows or transcripts)."""
    if modality == "audio":
        inputs = processor(audio=_audio_arrays(values), sampling_rate=16000, modalities=["audio"],
                           return_tensors="pt")
    else:
        inputs = processor(text=list(values), modalities=["text"], return_tensors="pt")
    # token_type_ids are all zeros for one segment; the cached and the raw path both leave them out.
    return {k: v for k, v in inputs.items() if k != "token_type_ids"}


def _unpad(hidden: torch.Tensor, mask: torch.Tensor, dtype: str) -> list[np.ndarray]:
    lengths = mask.sum(-1).tolist()
    hidden = hidden.float().cpu().numpy().astype(dtype)
    return [hidden[i, : int(n)] for i, n in enumerate(lengths)]


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
        """Conversation history: sets ``history_index`` (into the batch's rows; the history utterances are
        appended after the ``len(rows)`` current ones, each once) and ``history_speaker``; returns the appended
        rows' inputs per modality (cache keys or raw transcripts)."""
        modalities = (*self.raw_modalities, *self.features)
        appended: dict[str, list] = {m: [] for m in modalities}
        position: dict[Any, int] = {}
        index = []
        for row in rows:
            entries = list(zip(*(row[history_column(m)] for m in modalities), strict=True))
            slots = []
            for entry in entries:
                if entry not in position:
                    position[entry] = len(rows) + len(position)
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
    fingerprint = fingerprint or _fingerprint("teacher-logits-v2", dataset._fingerprint, module_fingerprint(teacher))
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
        fingerprint = _fingerprint("teacher-logits-v2", module_fingerprint(teacher), rows.column_names,
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


# --------------------------------------------------------------------------------------------
# Losses and the trainer
# --------------------------------------------------------------------------------------------


def balanced_class_weights(emotions: Sequence[int], num_labels: int = len(EMOTIONS)) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``: ``n / (num_labels * count)`` per class (1 for an absent one)."""
    counts = np.bincount(np.asarray(emotions, dtype=np.int64), minlength=num_labels).astype(np.float64)
    weights = np.where(counts > 0, len(emotions) / (num_labels * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor,
                           classes: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against vote distributions (or class ids), each utterance weighted by the weight of its
    class (``classes``: the majority emotion; default the labels' argmax), as scikit-learn's ``class_weight``
    weighs samples. The mean is over the batch's weights. (Weighting the vote distribution's classes instead
    would let a rare class's weight pull on every utterance with a stray vote for it.)"""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if not labels.is_floating_point():
        labels = F.one_hot(labels.long(), logits.shape[-1]).float()
    targets = labels.float() / labels.float().sum(dim=-1, keepdim=True).clamp_min(1e-12)
    classes = targets.argmax(dim=-1) if classes is None else classes.to(logits.device).long()
    weights = class_weights.to(logits.device)[classes]
    return (-(targets * log_probs).sum(dim=-1) * weights).sum() / weights.sum().clamp_min(1e-12)


def l2_term(model: torch.nn.Module) -> torch.Tensor:
    """Sum of squares of the trainable parameters except biases: weight matrices and embeddings (what
    scikit-learn's ``LogisticRegression`` penalises) and also norm scales and layer-mixing weights, which would
    otherwise let a branch grow its inputs' scale for free and escape the penalty."""
    squares = [parameter.float().pow(2).sum() for name, parameter in model.named_parameters()
               if parameter.requires_grad and not name.endswith("bias")]
    return torch.stack(squares).sum() if squares else torch.zeros(())


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's ``T^2 * KL(softmax(teacher/T) || softmax(student/T))`` (batch mean)."""
    return F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    ) * temperature**2


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
    class_weights: torch.Tensor | None = None,
    classes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, targets)``: the trainer's loss.

    ``targets`` are votes ([B, 7] counts or distributions) or class ids ([B]), as the model's own loss takes
    them (:func:`~multistill.modeling_multistill.classification_loss`); with ``class_weights`` the CE term is
    :func:`weighted_cross_entropy` (``classes``: each row's majority emotion). Returns ``(loss, kd_term,
    ce_term)`` (the unweighted terms, for logging).
    """
    ce = (classification_loss(student_logits, targets) if class_weights is None
          else weighted_cross_entropy(student_logits, targets, class_weights, classes))
    kd = kd_loss(student_logits, teacher_logits.to(student_logits.dtype), temperature)
    return alpha * kd + (1 - alpha) * ce, kd, ce


def hidden_state_loss(student: torch.Tensor, student_mask: torch.Tensor, teacher: torch.Tensor,
                      teacher_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between student and teacher encoder outputs of the same utterances.

    Each utterance's valid teacher frames are linearly resampled to the student's number of valid frames
    (the light student's log-mel encoder runs at 25 frames/s, wav2vec2 at 50), so sequences of different
    rates are compared over the same stretch of audio (or the same tokens).
    """
    if student.shape[-1] != teacher.shape[-1]:
        raise ValueError(f"student and teacher hidden sizes differ ({student.shape[-1]} vs {teacher.shape[-1]}).")
    losses = []
    for i in range(student.shape[0]):
        s_len, t_len = int(student_mask[i].sum()), int(teacher_mask[i].sum())
        if s_len == 0 or t_len == 0:
            continue
        target = teacher[i, :t_len].to(student.dtype)
        if t_len != s_len:
            target = F.interpolate(target.T[None], size=s_len, mode="linear", align_corners=False)[0].T
        losses.append(F.mse_loss(student[i, :s_len], target))
    return torch.stack(losses).mean() if losses else student.sum() * 0.0


@dataclass(frozen=True)
class DistillationSettings:
    """``alpha`` weighs the KD term against the soft-label CE, ``temperature`` softens both distributions,
    ``hidden_weight`` adds the hidden-state MSE (0: off)."""

    alpha: float = 0.5
    temperature: float = 2.0
    hidden_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not self.hidden_weight >= 0:
            raise ValueError(f"hidden_weight must be >= 0, got {self.hidden_weight}.")


class MultiStillTrainer(Trainer):
    """The :class:`~transformers.Trainer` of ``train.py`` and ``distill.py``.

    The model gets only its inputs (:func:`model_inputs`); ``emotion`` feeds the metrics. Without
    ``distillation`` the loss is the model's own (soft-label cross-entropy against the votes). With it,
    training steps use ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE`` with the teacher's
    logits from the batch (``teacher_logits``, offline) or from ``teacher`` run on the batch (online),
    plus ``hidden_weight * MSE`` between the student's encoder outputs and the teacher's
    (``target_*_hidden_states``, or the online teacher's). Evaluation always reports the plain CE, so
    runs compare. ``loss_kd``, ``loss_ce`` and ``loss_hidden`` are logged beside ``loss``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        args: TrainingArguments,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | None = None,
        data_collator: MultiStillCollator | None = None,
        processing_class: Any | None = None,
        compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
        distillation: DistillationSettings | None = None,
        teacher: torch.nn.Module | None = None,
        class_weights: torch.Tensor | None = None,
    ):
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=data_collator, processing_class=processing_class,
                         compute_metrics=compute_metrics)
        if teacher is not None and distillation is None:
            raise ValueError("A teacher needs distillation settings (DistillationSettings).")
        self.distillation = distillation
        self.class_weights = class_weights
        self.teacher = teacher
        if teacher is not None:
            self.teacher = teacher.to(self.args.device).eval()
            for parameter in self.teacher.parameters():
                parameter.requires_grad_(False)
        self._loss_terms: dict[str, list[torch.Tensor]] = {"loss_kd": [], "loss_ce": [], "loss_hidden": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = self._task_loss(model, inputs)
        penalty = getattr(self.args, "l2_penalty", 0.0)
        if penalty > 0 and model.training:
            # scikit-learn's scaling: C=1 <=> l2_penalty=1 whatever the number of training rows
            loss = loss + penalty * l2_term(model).to(loss.device) / (2 * len(self.train_dataset))
            outputs["loss"] = loss
        return (loss, outputs) if return_outputs else loss

    def _task_loss(self, model, inputs) -> tuple[torch.Tensor, Any]:
        """``(loss, outputs)``: cross-entropy (class-weighted), plus the distillation terms when distilling.
        With ``--training_targets majority`` the training targets are the majority emotions, not the votes."""
        student_inputs = model_inputs(inputs)
        if model.training and getattr(self.args, "training_targets", "votes") == "majority":
            student_inputs["labels"] = inputs["emotion"].long()
        settings = self.distillation
        if settings is None or not model.training:
            outputs = model(**student_inputs)
            if model.training and self.class_weights is not None:
                outputs["loss"] = weighted_cross_entropy(outputs.logits, student_inputs["labels"], self.class_weights,
                                                         inputs.get("emotion"))
            return outputs.loss, outputs
        match_hidden = settings.hidden_weight > 0
        outputs = model(**student_inputs, output_hidden_states=True) if match_hidden else model(**student_inputs)
        loss = ce = outputs.loss
        if self.class_weights is not None:
            loss = ce = weighted_cross_entropy(outputs.logits, student_inputs["labels"], self.class_weights,
                                               inputs.get("emotion"))
        teacher_outputs = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_outputs = self.teacher(**self._teacher_inputs(student_inputs, inputs),
                                               output_hidden_states=match_hidden)
        if settings.alpha > 0:
            teacher_logits = inputs.get(TEACHER_LOGITS)
            if teacher_logits is None:
                if teacher_outputs is None:
                    raise ValueError("alpha > 0 needs teacher logits: a teacher_logits column (FeaturePlan with "
                                     "teacher_logits) or an online teacher (teacher=).")
                teacher_logits = teacher_outputs.logits
            loss, kd, ce = distillation_loss(outputs.logits, teacher_logits, student_inputs["labels"],
                                             settings.alpha, settings.temperature, self.class_weights,
                                             inputs.get("emotion"))
            self._loss_terms["loss_kd"].append(kd.detach())
        if match_hidden:
            hidden = self._hidden_term(outputs, inputs, teacher_outputs)
            loss = loss + settings.hidden_weight * hidden
            self._loss_terms["loss_hidden"].append(hidden.detach())
        self._loss_terms["loss_ce"].append(ce.detach())
        outputs["loss"] = loss
        return loss, outputs

    def _teacher_inputs(self, student_inputs: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, Any]:
        """The online teacher reads the student's inputs of its modalities, plus ``teacher_inputs``."""
        modalities = self.teacher.config.modalities
        shared = {k: v for k, v in student_inputs.items() if k != "labels" and input_modality(k) in modalities}
        return {**shared, **batch.get(TEACHER_INPUTS, {})}

    @staticmethod
    def _hidden_term(outputs, batch: Mapping[str, Any], teacher_outputs) -> torch.Tensor:
        """MSE between the student's and the teacher's encoder outputs, averaged over the modalities."""
        terms = []
        for modality in MODALITIES:
            student = getattr(outputs, f"{modality}_hidden_states", None)
            if student is None:
                continue
            if f"target_{modality}_hidden_states" in batch:
                teacher = batch[f"target_{modality}_hidden_states"]
                teacher_mask = batch[f"target_{modality}_hidden_mask"]
            elif teacher_outputs is not None and getattr(teacher_outputs, f"{modality}_hidden_states", None) is not None:
                teacher = getattr(teacher_outputs, f"{modality}_hidden_states")
                teacher_mask = getattr(teacher_outputs, f"{modality}_hidden_mask")
            else:
                continue
            student_mask = getattr(outputs, f"{modality}_hidden_mask")
            terms.append(hidden_state_loss(student, student_mask, teacher.to(student.device),
                                           teacher_mask.to(student.device)))
        if not terms:
            raise ValueError("hidden_weight > 0 needs the teacher's hidden states: cached targets in the batch "
                             "(FeaturePlan with hidden_targets) or an online teacher.")
        return torch.stack(terms).mean()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            for name, values in self._loss_terms.items():
                if values:
                    # Terms stay on the device between logs: one synchronisation per log, not per step.
                    logs[name] = round(torch.stack(values).float().mean().item(), 6)
                    values.clear()
        super().log(logs, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# Metrics and reports
# --------------------------------------------------------------------------------------------


def build_compute_metrics(metric: Any | None = None) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` for the Trainer: WA, UA, macro/weighted F1 against the majority label."""
    if metric is None:
        from .metrics import load_metric

        metric = load_metric()

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        labels = prediction.label_ids
        references = labels[1] if isinstance(labels, tuple) else np.asarray(labels).argmax(-1)
        results = metric.compute(predictions=np.asarray(logits).argmax(-1), references=references)
        # The Trainer logs scalars only; the confusion matrix goes into the saved reports.
        return {k: v for k, v in results.items() if not isinstance(v, list)}

    return compute_metrics


def evaluate_predictions(logits: np.ndarray, references: np.ndarray) -> dict[str, Any]:
    """All metrics (with the confusion matrix) for logits against majority labels."""
    from .metrics import load_metric

    return load_metric().compute(predictions=np.asarray(logits).argmax(-1), references=np.asarray(references))


@with_korean_text
def save_confusion_matrix(matrix: Sequence[Sequence[int]], path: str | Path, title: str = "") -> Path:
    """A PNG of the confusion matrix (rows: reference, columns: prediction) with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (evaluator majority)")
    ax.set_title(title or "Confusion matrix")
    threshold = matrix.max() / 2 if matrix.size and matrix.max() else 0
    for (row, column), count in np.ndenumerate(matrix):
        ax.text(column, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


@with_korean_text
def save_training_curves(log_history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """A PNG with the training loss (and its KD / CE terms) and the evaluation metrics per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "loss_kd", "loss_ce", "eval_loss"):
        points = [(e["epoch"], e[key]) for e in log_history if key in e and "epoch" in e]
        if points:
            left.plot(*zip(*points, strict=True), marker=".", label=key)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    for key in ("eval_accuracy", "eval_unweighted_accuracy", "eval_macro_f1", "eval_weighted_f1"):
        points = [(e["epoch"], e[key]) for e in log_history if key in e]
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=key.removeprefix("eval_"))
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    fig.suptitle(title or "Training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as indented UTF-8 JSON (NaN-free)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (np.floating, np.integer)):
            return value.item()
        return value

    Path(path).write_text(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


__all__ = [
    "FEATURE_FORMAT",
    "HISTORY_SPEAKER",
    "NON_MODEL_KEYS",
    "TARGET_KEYS",
    "TEACHER_INPUTS",
    "TEACHER_LOGITS",
    "DistillationSettings",
    "EncoderFeatureCache",
    "FeaturePlan",
    "FeatureTable",
    "MultiStillCollator",
    "MultiStillTrainer",
    "PreparedData",
    "add_teacher_logits",
    "build_compute_metrics",
    "content_keys",
    "distillation_loss",
    "evaluate_predictions",
    "feature_key_column",
    "frozen_modalities",
    "hidden_state_loss",
    "input_modality",
    "balanced_class_weights",
    "l2_term",
    "history_columns",
    "kd_loss",
    "weighted_cross_entropy",
    "model_inputs",
    "module_fingerprint",
    "processor_fingerprint",
    "processor_inputs",
    "save_confusion_matrix",
    "save_training_curves",
    "write_json",
]
