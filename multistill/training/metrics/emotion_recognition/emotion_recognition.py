"""Emotion-recognition metrics as an `evaluate` module, loaded by local path (no Hub access needed).

    import evaluate
    metric = evaluate.load("multistill/training/metrics/emotion_recognition")   # or multistill.training.metrics.load_metric()
    metric.compute(predictions=[0, 1, 1], references=[0, 1, 2])

Accuracy is the weighted accuracy (WA) of the paper; unweighted accuracy (UA) is the mean of the
per-class recalls (balanced accuracy). KEMDy is dominated by neutral, so UA and macro-F1 are the
figures that tell models apart.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)

_CITATION = """\
@inproceedings{multistill2023,
  title={Multi-Still: A lightweight Multi-modal Cross Attention Knowledge Distillation method for the Real-Time Emotion Recognition Service in Edge-to-Cloud Continuum},
  author={Jo, Hyeon-Ki and Seo, Yuri and Roh, Choong Hee and others},
  booktitle={2nd ETRI Human Understanding AI Paper Competition},
  year={2023}
}
"""

_DESCRIPTION = """\
Accuracy (WA), unweighted accuracy (UA, balanced accuracy), macro-F1, weighted F1, weighted
precision and recall, per-class F1 and the confusion matrix, for the 7 KEMDy emotions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): reference class ids.
    label_names (list of str, optional): class names, in id order; default the 7 KEMDy emotions.
Returns:
    accuracy, unweighted_accuracy, macro_f1, weighted_f1, weighted_precision, weighted_recall
    (floats in [0, 1]), f1_<label> for every class, and confusion_matrix (rows: reference,
    columns: prediction, every class included even when absent).
Examples:
    >>> metric = evaluate.load("multistill/training/metrics/emotion_recognition")
    >>> metric.compute(predictions=[0, 0, 1], references=[0, 1, 1])["accuracy"]
    0.6666666666666666
"""

EMOTIONS = ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EmotionRecognition(evaluate.Metric):
    """WA, UA, macro/weighted F1, weighted precision/recall, per-class F1 and confusion matrix."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(self, predictions, references, label_names=None):
        names = list(label_names or EMOTIONS)
        labels = list(range(len(names)))
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        present = sorted(set(references.tolist()))
        precision, recall, _, _ = precision_recall_fscore_support(
            references, predictions, labels=present, average="weighted", zero_division=0
        )
        per_class = f1_score(references, predictions, labels=labels, average=None, zero_division=0)
        results = {
            "accuracy": float(accuracy_score(references, predictions)),
            # UA: mean recall over the classes that occur in the references (balanced accuracy).
            "unweighted_accuracy": float(
                recall_score(references, predictions, labels=present, average="macro", zero_division=0)
            ),
            # Macro-F1 over the classes present in references or predictions.
            "macro_f1": float(
                f1_score(
                    references,
                    predictions,
                    labels=sorted(set(present) | set(predictions.tolist())),
                    average="macro",
                    zero_division=0,
                )
            ),
            "weighted_f1": float(
                f1_score(references, predictions, labels=present, average="weighted", zero_division=0)
            ),
            "weighted_precision": float(precision),
            "weighted_recall": float(recall),
            "confusion_matrix": confusion_matrix(references, predictions, labels=labels).tolist(),
        }
        results.update({f"f1_{name}": float(value) for name, value in zip(names, per_class, strict=True)})
        return results
