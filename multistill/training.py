"""Training machinery shared by ``train.py`` and ``distill.py``.

* :func:`add_encoder_features` runs the frozen encoders once and stores their hidden states in
  the dataset (``datasets.map``, cached on disk under a fingerprint of the encoder weights, the
  processor and the data), as the original code did, so epochs only run the fusion head.
* :func:`add_teacher_logits` is step 1 of the paper's distillation: the teacher's logits become a
  column of every example.
* :class:`MultiStillCollator` pads raw inputs or cached features, votes and teacher logits.
* :class:`DistillationTrainer` is a :class:`~transformers.Trainer` whose loss is Hinton's
  ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, votes)``, with an
  offline (cached column) or online teacher, and both terms logged separately.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Array2D, Dataset, Value
from datasets import Sequence as SequenceFeature
from transformers import EvalPrediction, Trainer

from .annotations import EMOTIONS

logger = logging.getLogger(__name__)

AUDIO_FEATURES = "audio_hidden_states"
TEXT_FEATURES = "text_hidden_states"
TEACHER_LOGITS = "teacher_logits"
#: Batch keys of the teacher's encoder outputs (hidden-state distillation of students with their own encoders).
TEACHER_HIDDEN_KEYS = ("teacher_audio_hidden_states", "teacher_audio_hidden_mask", "teacher_text_hidden_states",
                       "teacher_text_hidden_mask")


# --------------------------------------------------------------------------------------------
# Fingerprints: a change of encoder weights, processor settings or data invalidates the caches.
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


def _audio_arrays(batch_audio: list[Any]) -> list[np.ndarray]:
    return [np.asarray(item["array"], dtype=np.float32) for item in batch_audio]


# --------------------------------------------------------------------------------------------
# Step 0: cached encoder features
# --------------------------------------------------------------------------------------------


def processor_fingerprint(processor: Any) -> str:
    """A stable hash of what a processor does to audio and text (not of its object identity)."""
    parts: list[Any] = []
    feature_extractor = getattr(processor, "feature_extractor", None)
    if feature_extractor is not None:
        parts.append(feature_extractor.to_dict())
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        parts.append(sorted(tokenizer.get_vocab().items()))
        parts.append([type(tokenizer).__name__, getattr(tokenizer, "do_lower_case", None)])
    for name in ("max_audio_frames", "samples_per_frame", "max_text_tokens", "min_audio_samples"):
        parts.append(getattr(processor, name, None))
    return _fingerprint(*parts)


def add_encoder_features(
    dataset: Dataset,
    model: torch.nn.Module,
    processor: Any,
    modalities: Sequence[str] | None = None,
    batch_size: int = 8,
    feature_dtype: str = "float32",
    desc: str = "Encoding",
) -> Dataset:
    """Add the frozen encoders' hidden states of ``modalities`` (default: the model's) as columns.

    The result is cached by ``datasets`` next to the source Arrow files, under a fingerprint of
    the encoder weights, the processor's settings and the dataset, so a second run (or another
    model sharing the encoders, such as a student of this teacher) reuses it, and any change of
    encoder or data recomputes it.
    """
    modalities = tuple(m for m in ("audio", "text") if m in (modalities or model.config.modalities))
    base = getattr(model, "multistill", model)
    encoders = {"audio": getattr(base, "audio_encoder", None), "text": getattr(base, "text_encoder", None)}
    missing = [m for m in modalities if encoders[m] is None]
    if missing:
        raise ValueError(f"add_encoder_features: the model has no {missing} encoder (modalities {model.config.modalities}).")
    fingerprint = _fingerprint(
        "encoder-features-v2",
        dataset._fingerprint,
        {m: module_fingerprint(encoders[m]) for m in modalities},
        processor_fingerprint(processor),
        model.config.max_audio_frames if "audio" in modalities else None,
        model.config.max_text_tokens if "text" in modalities else None,
        feature_dtype,
    )
    new_features = dataset.features.copy()
    if "audio" in modalities:
        new_features[AUDIO_FEATURES] = Array2D(shape=(None, model.config.audio_hidden_size), dtype=feature_dtype)
    if "text" in modalities:
        new_features[TEXT_FEATURES] = Array2D(shape=(None, model.config.text_hidden_size), dtype=feature_dtype)
    device = next(model.parameters()).device
    model.eval()

    def encode(batch: dict[str, list]) -> dict[str, list]:
        inputs = processor(
            audio=_audio_arrays(batch["audio"]) if "audio" in modalities else None,
            sampling_rate=16000,
            text=batch["text"] if "text" in modalities else None,
            modalities=list(modalities),
            return_tensors="pt",
        )
        out: dict[str, list] = {}
        with torch.inference_mode():
            if "audio" in modalities:
                hidden, mask = model.encode_audio(
                    inputs["input_values"].to(device), inputs["attention_mask"].to(device)
                )
                out[AUDIO_FEATURES] = _unpad(hidden, mask, feature_dtype)
            if "text" in modalities:
                hidden, mask = model.encode_text(
                    inputs["input_ids"].to(device), inputs["text_attention_mask"].to(device)
                )
                out[TEXT_FEATURES] = _unpad(hidden, mask, feature_dtype)
        return out

    return dataset.map(
        encode,
        batched=True,
        batch_size=batch_size,
        features=new_features,
        new_fingerprint=fingerprint,
        desc=desc,
    )


def _unpad(hidden: torch.Tensor, mask: torch.Tensor, dtype: str) -> list[np.ndarray]:
    lengths = mask.sum(-1).tolist()
    hidden = hidden.float().cpu().numpy().astype(dtype)
    return [hidden[i, : int(n)] for i, n in enumerate(lengths)]


# --------------------------------------------------------------------------------------------
# Step 1 of distillation: teacher logits as a column
# --------------------------------------------------------------------------------------------


def add_teacher_logits(
    dataset: Dataset,
    teacher: torch.nn.Module,
    collator: MultiStillCollator,
    batch_size: int = 16,
    desc: str = "Teacher logits",
) -> Dataset:
    """Run the teacher over ``dataset`` once and store its logits in a ``teacher_logits`` column.

    ``collator`` turns rows into the teacher's inputs (cached features or raw audio/text). The
    result is cached under a fingerprint of the teacher's weights and the data.
    """
    fingerprint = _fingerprint("teacher-logits-v1", dataset._fingerprint, module_fingerprint(teacher))
    device = next(teacher.parameters()).device
    teacher.eval()
    features = dataset.features.copy()
    features[TEACHER_LOGITS] = SequenceFeature(Value("float32"), length=teacher.config.num_labels)

    def run(batch: dict[str, list]) -> dict[str, list]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        inputs = collator(rows)
        model_inputs = {k: v.to(device) for k, v in inputs.items() if k not in collator.label_keys}
        with torch.inference_mode():
            logits = teacher(**model_inputs).logits.float().cpu().numpy()
        return {TEACHER_LOGITS: list(logits)}

    return dataset.map(
        run, batched=True, batch_size=batch_size, features=features, new_fingerprint=fingerprint, desc=desc
    )


# --------------------------------------------------------------------------------------------
# Collation
# --------------------------------------------------------------------------------------------


def _pad_sequences(arrays: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
    longest = max(t.shape[0] for t in tensors)
    padded = torch.zeros(len(tensors), longest, tensors[0].shape[-1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.long)
    for i, tensor in enumerate(tensors):
        padded[i, : tensor.shape[0]] = tensor
        mask[i, : tensor.shape[0]] = 1
    return padded, mask


@dataclass
class MultiStillCollator:
    """Batches KEMDy rows: raw audio/text through the processor, and/or cached encoder features.

    ``raw_modalities`` go through ``processor`` (``input_values``/``input_ids``...),
    ``feature_modalities`` are read from the cached ``*_hidden_states`` columns. ``labels`` is the
    vote distribution (soft target); ``emotion`` (the majority label, for the metrics) and
    ``teacher_logits`` (when the column exists) are passed alongside.
    """

    processor: Any = None
    raw_modalities: Sequence[str] = ()
    feature_modalities: Sequence[str] = ("audio", "text")
    teacher_feature_modalities: Sequence[str] = ()
    label_keys: tuple[str, ...] = ("labels", "emotion", TEACHER_LOGITS) + TEACHER_HIDDEN_KEYS

    def __post_init__(self) -> None:
        self.raw_modalities = tuple(m for m in ("audio", "text") if m in self.raw_modalities)
        self.feature_modalities = tuple(m for m in ("audio", "text") if m in self.feature_modalities)
        self.teacher_feature_modalities = tuple(m for m in ("audio", "text") if m in self.teacher_feature_modalities)
        if not self.raw_modalities and not self.feature_modalities:
            raise ValueError("MultiStillCollator needs raw_modalities and/or feature_modalities.")
        if self.raw_modalities and self.processor is None:
            raise ValueError("MultiStillCollator: raw_modalities need a processor.")

    @classmethod
    def for_modalities(cls, processor: Any, modalities: Sequence[str], cached: bool) -> MultiStillCollator:
        """Every modality of ``modalities`` from cached features (``cached``) or from raw inputs."""
        return cls(processor, raw_modalities=() if cached else modalities, feature_modalities=modalities if cached else ())

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if "audio" in self.feature_modalities:
            batch["audio_hidden_states"], batch["audio_hidden_mask"] = _pad_sequences([r[AUDIO_FEATURES] for r in rows])
        if "text" in self.feature_modalities:
            batch["text_hidden_states"], batch["text_hidden_mask"] = _pad_sequences([r[TEXT_FEATURES] for r in rows])
        # The teacher's cached hidden states, under keys the student does not read (hidden-state distillation;
        # only the training split carries them).
        if "audio" in self.teacher_feature_modalities and AUDIO_FEATURES in rows[0]:
            batch["teacher_audio_hidden_states"], batch["teacher_audio_hidden_mask"] = _pad_sequences(
                [r[AUDIO_FEATURES] for r in rows])
        if "text" in self.teacher_feature_modalities and TEXT_FEATURES in rows[0]:
            batch["teacher_text_hidden_states"], batch["teacher_text_hidden_mask"] = _pad_sequences(
                [r[TEXT_FEATURES] for r in rows])
        if self.raw_modalities:
            inputs = self.processor(
                audio=_audio_arrays([r["audio"] for r in rows]) if "audio" in self.raw_modalities else None,
                sampling_rate=16000,
                text=[r["text"] for r in rows] if "text" in self.raw_modalities else None,
                modalities=list(self.raw_modalities),
                return_tensors="pt",
            )
            batch.update({k: v for k, v in inputs.items() if k != "token_type_ids"})
        if "emotion_votes" in rows[0]:
            batch["labels"] = torch.as_tensor(np.stack([np.asarray(r["emotion_votes"]) for r in rows]), dtype=torch.float32)
        if "emotion" in rows[0]:
            batch["emotion"] = torch.tensor([int(r["emotion"]) for r in rows], dtype=torch.long)
        if TEACHER_LOGITS in rows[0]:
            batch[TEACHER_LOGITS] = torch.as_tensor(np.stack([np.asarray(r[TEACHER_LOGITS]) for r in rows]),
                                                    dtype=torch.float32)
        return batch

    def columns(self, dataset: Dataset | None = None) -> list[str]:
        """The dataset columns this collator reads (decoding nothing else saves time), in ``dataset``."""
        needed = ["id", "emotion_votes", "emotion", TEACHER_LOGITS]
        features = set(self.feature_modalities) | set(self.teacher_feature_modalities)
        needed += [AUDIO_FEATURES] * ("audio" in features)
        needed += [TEXT_FEATURES] * ("text" in features)
        needed += list(self.raw_modalities)
        return [c for c in needed if dataset is None or c in dataset.column_names]


# --------------------------------------------------------------------------------------------
# The distillation Trainer
# --------------------------------------------------------------------------------------------


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, targets)``.

    ``targets`` are vote distributions ([B, 7] floats) or class ids ([B]). Returns
    ``(loss, kd_term, ce_term)`` (the unweighted terms, for logging).
    """
    ce = F.cross_entropy(student_logits, targets)
    kd = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    ) * temperature**2
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


class DistillationTrainer(Trainer):
    """A :class:`~transformers.Trainer` that distils a teacher into the model being trained.

    The teacher's logits come from the batch (``teacher_logits``, the paper's cached column) or,
    when ``teacher`` is given, from running it on the same inputs in every step (online; needed
    when inputs are augmented). With ``alpha=0`` (or no teacher at all) it is the plain soft-label
    cross-entropy of the model itself. ``loss_kd`` and ``loss_ce`` are logged next to ``loss``.

    ``hidden_weight`` > 0 adds ``hidden_weight * MSE(student encoder outputs, teacher encoder outputs)``
    (logged as ``loss_hidden``): a student with its own encoders (the light student) learns to reproduce
    the teacher's audio and text hidden states, taken from the batch (``teacher_*_hidden_states``, cached)
    or from the online teacher.
    """

    def __init__(self, *args, alpha: float = 0.5, temperature: float = 2.0, teacher: torch.nn.Module | None = None,
                 hidden_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if hidden_weight < 0:
            raise ValueError(f"hidden_weight must be >= 0, got {hidden_weight}.")
        self.hidden_weight = hidden_weight
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.alpha = alpha
        self.temperature = temperature
        self.teacher = teacher
        if teacher is not None:
            self.teacher = teacher.to(self.args.device).eval()
            for parameter in self.teacher.parameters():
                parameter.requires_grad_(False)
        self._loss_terms: dict[str, list[torch.Tensor]] = {"loss_kd": [], "loss_ce": [], "loss_hidden": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        targets = inputs.pop("labels")
        inputs.pop("emotion", None)
        teacher_logits = inputs.pop(TEACHER_LOGITS, None)
        teacher_hidden = {key: inputs.pop(key) for key in TEACHER_HIDDEN_KEYS if key in inputs}
        match_hidden = model.training and self.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=True) if match_hidden else model(**inputs)
        logits = outputs.logits
        teacher_outputs = None
        if model.training and self.teacher is not None and (
            (self.alpha > 0 and teacher_logits is None) or (match_hidden and not teacher_hidden)
        ):
            with torch.no_grad():
                teacher_outputs = self.teacher(**inputs, output_hidden_states=match_hidden)
        if not model.training or self.alpha == 0:
            # Evaluation (and the alpha = 0 ablation): the plain soft-label loss, comparable across runs.
            loss = ce = F.cross_entropy(logits, targets)
        else:
            if teacher_logits is None:
                if teacher_outputs is None:
                    raise ValueError(
                        "alpha > 0 needs teacher logits: add the column with add_teacher_logits() or pass "
                        "teacher= (online teacher)."
                    )
                teacher_logits = teacher_outputs.logits
            loss, kd, ce = distillation_loss(logits, teacher_logits.to(logits.dtype), targets, self.alpha,
                                             self.temperature)
            self._loss_terms["loss_kd"].append(kd.detach())
        if match_hidden:
            hidden = self._hidden_term(outputs, teacher_hidden, teacher_outputs)
            loss = loss + self.hidden_weight * hidden
            self._loss_terms["loss_hidden"].append(hidden.detach())
        if model.training:
            self._loss_terms["loss_ce"].append(ce.detach())
        outputs["loss"] = loss
        return (loss, outputs) if return_outputs else loss

    @staticmethod
    def _hidden_term(outputs, cached: dict[str, torch.Tensor], teacher_outputs) -> torch.Tensor:
        """MSE between the student's and the teacher's encoder outputs, averaged over the modalities."""
        terms = []
        for modality in ("audio", "text"):
            student = getattr(outputs, f"{modality}_hidden_states", None)
            if student is None:
                continue
            if f"teacher_{modality}_hidden_states" in cached:
                teacher = cached[f"teacher_{modality}_hidden_states"]
                teacher_mask = cached[f"teacher_{modality}_hidden_mask"]
            elif teacher_outputs is not None and getattr(teacher_outputs, f"{modality}_hidden_states", None) is not None:
                teacher = getattr(teacher_outputs, f"{modality}_hidden_states")
                teacher_mask = getattr(teacher_outputs, f"{modality}_hidden_mask")
            else:
                continue
            student_mask = getattr(outputs, f"{modality}_hidden_mask")
            terms.append(hidden_state_loss(student, student_mask, teacher.to(student.device),
                                           teacher_mask.to(student.device)))
        if not terms:
            raise ValueError(
                "hidden_weight > 0 needs the teacher's hidden states: cached teacher features in the batch "
                "(MultiStillCollator(teacher_feature_modalities=...)) or an online teacher."
            )
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
    "AUDIO_FEATURES",
    "TEACHER_HIDDEN_KEYS",
    "TEACHER_LOGITS",
    "TEXT_FEATURES",
    "DistillationTrainer",
    "MultiStillCollator",
    "add_encoder_features",
    "add_teacher_logits",
    "build_compute_metrics",
    "distillation_loss",
    "evaluate_predictions",
    "hidden_state_loss",
    "module_fingerprint",
    "save_confusion_matrix",
    "save_training_curves",
    "write_json",
]
