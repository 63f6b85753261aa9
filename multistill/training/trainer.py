"""The trainer of ``train.py`` and ``distill.py``, its losses, and the reports of a finished run.

:class:`MultiStillTrainer` (a :class:`~transformers.Trainer`) trains on the batches that
:class:`~.features.FeaturePlan` prepares (:mod:`.features`) and passes only model inputs to the model; with
:class:`DistillationSettings` its loss is Hinton's
``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, votes)``, plus an optional
hidden-state term, each term logged apart. The metrics and the saved reports (confusion matrix, training
curves, JSON) of a run are here too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import EvalPrediction, Trainer, TrainingArguments

from ..annotations import EMOTIONS
from ..configuration_multistill import ALLOWED_MODALITIES as MODALITIES
from ..modeling_multistill import classification_loss
from ..plotting import with_korean_text
from .features import TEACHER_INPUTS, TEACHER_LOGITS, MultiStillCollator, input_modality, model_inputs

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
    "DistillationSettings",
    "MultiStillTrainer",
    "balanced_class_weights",
    "build_compute_metrics",
    "distillation_loss",
    "evaluate_predictions",
    "hidden_state_loss",
    "kd_loss",
    "l2_term",
    "save_confusion_matrix",
    "save_training_curves",
    "weighted_cross_entropy",
    "write_json",
]
