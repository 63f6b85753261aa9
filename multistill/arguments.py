"""Command-line argument dataclasses shared by ``train.py`` and ``distill.py`` (``HfArgumentParser``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .data import CORPORA
from .splits import SPLIT_NAMES

PRESET_CHOICES = ("teacher", "multimodal_student", "text_student", "audio_student", "light_student")


@dataclass
class ModelArguments:
    """Which model to build, and from which encoders."""

    preset: str = field(
        default="teacher",
        metadata={"help": f"Architecture preset, one of {PRESET_CHOICES}.", "choices": PRESET_CHOICES},
    )
    backbones: str = field(
        default="tiny",
        metadata={
            "help": "'pretrained': load --audio_encoder/--text_encoder (Hub names or local folders). "
            "'tiny': small random encoders and a WordPiece tokenizer trained on the training transcripts, "
            "built locally (no download; for tests, CI and the embedded demo).",
            "choices": ("pretrained", "tiny"),
        },
    )
    audio_encoder: str = field(
        default="kresnik/wav2vec2-large-xlsr-korean",
        metadata={"help": "Audio encoder checkpoint (Hub id or folder) for --backbones pretrained."},
    )
    text_encoder: str = field(
        default="beomi/KcELECTRA-base",
        metadata={"help": "Text encoder checkpoint (Hub id or folder) for --backbones pretrained."},
    )
    cache_encoder_features: bool = field(
        default=True,
        metadata={
            "help": "Run frozen encoders once and train on their stored hidden states (as the paper did). "
            "Ignored for models whose encoders train (the light student)."
        },
    )
    feature_dtype: str = field(
        default="float32",
        metadata={"help": "Storage dtype of cached encoder features: float32 or float16 (half the disk).",
                  "choices": ("float32", "float16")},
    )
    encoding_batch_size: int = field(default=8, metadata={"help": "Batch size when caching encoder features."})


@dataclass
class DataArguments:
    """Which corpus, which split, and how to balance it."""

    corpus: str = field(
        default="synthetic",
        metadata={"help": f"One of {CORPORA}: an ETRI corpus under --data_dir, or the embedded synthetic corpus.",
                  "choices": CORPORA},
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder holding KEMDy19/ and/or KEMDy20/ exactly as ETRI distributes them."},
    )
    sessions: list[int] | None = field(
        default=None, metadata={"help": "Read only these session numbers (quick runs), e.g. --sessions 1 2 3."}
    )
    split: str = field(
        default="session",
        metadata={"help": "'session': whole sessions held out (honest); 'random': the paper's 80/20 utterance split "
                  "with seed 123.", "choices": SPLIT_NAMES},
    )
    test_sessions: list[str] | None = field(
        default=None,
        metadata={"help": "Session split: test sessions, as numbers or CORPUS:NUMBER (default: the last 20 %% per corpus)."},
    )
    validation_sessions: list[str] | None = field(
        default=None,
        metadata={"help": "Session split: validation sessions (default: the 10 %% before the test sessions)."},
    )
    balance_max_fraction: float | None = field(
        default=0.6,
        metadata={"help": "Cap the dominant emotion's share of the training split (the paper: neutral 71 %% -> 60 %%). "
                  "Pass 0 to switch balancing off."},
    )
    synthetic_sessions: int = field(
        default=4, metadata={"help": "--corpus synthetic: sessions per corpus (each gets 2 dialogues of 2 speakers)."}
    )
    synthetic_utterances: int = field(
        default=4, metadata={"help": "--corpus synthetic: utterances per speaker and dialogue."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training split (debugging)."})
    data_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where Arrow caches, the synthetic corpus and tiny backbones go (default ~/.cache/multistill)."},
    )


@dataclass
class DistillationArguments:
    """The teacher and the distillation loss."""

    teacher_model: str | None = field(
        default=None,
        metadata={"help": "Folder (or Hub id) of the trained teacher, as written by train.py."},
    )
    alpha: float = field(
        default=0.5,
        metadata={"help": "Weight of the KD term: alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE(votes). "
                  "0 is the no-distillation ablation."},
    )
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T of the KD term."})
    hidden_weight: float = field(
        default=0.0,
        metadata={"help": "Light student only: add hidden_weight * MSE between its encoder outputs and the teacher's "
                  "(audio frames resampled to the same length), so its small encoders learn to reproduce the "
                  "teacher's. 0 switches it off."},
    )
    online_teacher: bool = field(
        default=False,
        metadata={"help": "Run the teacher in every step instead of caching its logits as a column "
                  "(needed when student inputs are augmented)."},
    )
    light_audio_layers: int = field(
        default=2, metadata={"help": "Light student: audio transformer layers kept from the teacher's encoder."}
    )
    light_text_layers: int = field(
        default=2, metadata={"help": "Light student: text transformer layers kept from the teacher's encoder."}
    )




@dataclass
class MultiStillTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with this project's defaults: evaluate and save every epoch, keep the best
    checkpoint by validation macro-F1, batch 32 and lr 5e-5 (the paper; it also accumulated 8 steps).
    Every other ``transformers.TrainingArguments`` option works as usual."""

    output_dir: str | None = field(default="outputs/run", metadata={"help": "Where checkpoints, the final model, "
                                   "metrics JSON and plots go."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "When to evaluate on the validation split."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={"help": "When to save a checkpoint."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Finish with the best checkpoint."})
    metric_for_best_model: str | None = field(default="macro_f1", metadata={"help": "Validation metric that "
                                              "picks the best checkpoint (macro-F1: neutral dominates accuracy)."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric_for_best_model is better."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is never deleted)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate (the paper: 5e-5)."})
    num_train_epochs: float = field(default=20.0, metadata={"help": "Training epochs (the paper: up to 50)."})
    logging_steps: float = field(default=10, metadata={"help": "Log the loss every N steps."})
    label_names: list[str] | None = field(
        default_factory=lambda: ["labels", "emotion"],
        metadata={"help": "Batch keys that are labels: vote distributions and the majority emotion (for metrics)."},
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep dataset columns for the collator."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Loggers (tensorboard, wandb...)."})
    #: ``--push_to_hub`` as given: publish the finished run (``multistill.hub.publish_run``, called by
    #: ``workflow.finish_run``) instead of the Trainer's pushes, which upload a folder without code or card.
    publish_to_hub: bool = field(default=False, init=False)

    def __post_init__(self):
        self.publish_to_hub, self.push_to_hub = bool(self.push_to_hub), False
        super().__post_init__()


__all__ = ["PRESET_CHOICES", "DataArguments", "DistillationArguments", "ModelArguments", "MultiStillTrainingArguments"]
