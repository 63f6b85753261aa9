"""Command-line argument dataclasses shared by ``train.py`` and ``distill.py`` (``HfArgumentParser``).

Each dataclass checks its own values when it is built (``__post_init__``), so a bad argument fails with a
:class:`UsageError` naming it before any data or model is loaded; :func:`run_script` turns that into an
argparse-style ``error:`` line and exit status 2.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from ..asr import ASR_ENGINES, ASR_TEXT_COLUMN
from ..cli import check_model_reference as cli_check_model_reference
from ..configuration_multistill import AUDIO_LAYER_CHOICES
from ..tools.whisper_base import WHISPER_BASE_ALIAS
from .data import CORPORA
from .splits import DEFAULT_TEST_FRACTION, DEFAULT_VALIDATION_FRACTION, SPLIT_NAMES, VALIDATION_SOURCES

PRESET_CHOICES = ("teacher", "multimodal_student", "text_student", "audio_student", "light_student")
#: Encoders of ``--backbones pretrained`` (the paper's).
PRETRAINED_ENCODERS = {"audio": "kresnik/wav2vec2-large-xlsr-korean", "text": "beomi/KcELECTRA-base"}
TINY = "tiny"
#: ``--text_encoder ngram``: the character n-gram encoder built from the training transcripts (no download).
NGRAM = "ngram"
#: Encoders built locally from the training transcripts, by name.
LOCAL_ENCODERS = (TINY, NGRAM)


class UsageError(ValueError):
    """A bad command-line argument (or a data choice it implies); :func:`run_script` prints it as ``error:``."""


def run_script(main: Callable[[], Any]) -> None:
    """Run a script's ``main()``; a :class:`UsageError` becomes ``PROG: error: MESSAGE`` and exit status 2."""
    try:
        main()
    except UsageError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def parse_command_line(parser: HfArgumentParser, argv: list[str]) -> tuple[Any, ...]:
    """``parser``'s dataclasses from ``argv``; an option none of them knows (a typo) is a :class:`UsageError`
    naming it (transformers raises a ``ValueError`` that reached the user as a traceback)."""
    *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        raise UsageError(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(parsed)


def check_model_reference(value: str, argument: str, allow_tiny: bool = False, aliases: tuple[str, ...] = ()) -> str:
    """``value`` as a model folder (``~`` expanded; it must hold ``config.json``) or a Hub id, else a
    :class:`UsageError` naming ``argument`` (:func:`multistill.cli.check_model_reference`). ``"tiny"`` and
    ``"ngram"`` pass when ``allow_tiny``, and so do ``aliases``."""
    if allow_tiny and value in LOCAL_ENCODERS:
        return value
    try:
        return cli_check_model_reference(value, argument, aliases=aliases)
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_output_dir(output_dir: str | None, argument: str = "--output_dir") -> None:
    """Refuse an output folder that cannot be written (a file, a path under a file, a folder without write
    access) before any data or model loads. Write access is probed with a temporary file, since permission bits
    do not tell (root ignores them; a read-only mount does not)."""
    if not output_dir:
        return
    path = Path(output_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{argument} {output_dir} is a file, not a folder.")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{argument} {output_dir}: {existing} is a file, so the folder cannot be created.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{argument} {output_dir}: cannot write in {existing} ({error.strerror}).") from None


def check_pooled_audio(audio_weight: float | None, audio_layer_mix: str | None, fusion_type: str, preset: str,
                       source: str = "") -> None:
    """Refuse ``--audio_weight`` other than 1 or ``--audio_layer_mix`` other than ``weighted`` for a model without
    the pooled audio branch they act on (the paper's cross-attention fusion reads the last layer's frame
    sequence), before anything loads. ``source`` names where a value not given on the command line came from
    (a student's teacher)."""
    from ..configuration_multistill import PRESETS

    if "audio" not in PRESETS[preset]["modalities"] or fusion_type == "concat":
        return
    if audio_weight not in (None, 1):
        raise UsageError(f"{source}--audio_weight {audio_weight:g} scales the pooled audio branch of --fusion_type "
                         f"concat; this {preset} fuses by {fusion_type} "
                         "(use --fusion_type concat, or --audio_weight 1).")
    if audio_layer_mix not in (None, "weighted"):
        raise UsageError(f"{source}--audio_layer_mix {audio_layer_mix} chooses the layers of the pooled audio "
                         f"branch of --fusion_type concat; this {preset} fuses by {fusion_type} "
                         "(use --fusion_type concat, or --audio_layer_mix weighted).")


@dataclass
class ModelArguments:
    """Which model to build, and from which encoders."""

    preset: str = field(
        default="teacher",
        metadata={"help": f"Architecture preset, one of {PRESET_CHOICES}.", "choices": PRESET_CHOICES},
    )
    backbones: str | None = field(
        default=None,
        metadata={
            "help": "train.py, shorthand for both encoders (default tiny): 'pretrained' = the paper's "
            f"({PRETRAINED_ENCODERS['audio']}, {PRETRAINED_ENCODERS['text']}); 'tiny' = small random encoders and a "
            "WordPiece tokenizer trained on the training transcripts, built locally (no download). "
            "--audio_encoder/--text_encoder override it per modality.",
            "choices": ("pretrained", TINY),
        },
    )
    audio_encoder: str | None = field(
        default=None,
        metadata={"help": "train.py: the audio encoder, 'tiny', a Hub id or a folder (a wav2vec2-family or "
                  "converted Whisper model); default from --backbones."},
    )
    text_encoder: str | None = field(
        default=None,
        metadata={"help": "train.py: the text encoder, 'ngram' (character 1-3-gram embeddings learnt from the "
                  "training transcripts: the recipe's), 'tiny', a Hub id or a folder; default from --backbones."},
    )
    fusion_type: str | None = field(
        default=None,
        metadata={"help": "How the branches are fused: 'cross_attention' (the paper's head over frame sequences) or "
                  "'concat' (pooled branches: weighted Whisper-layer statistics + mean text states; the recipe's). "
                  "Default: cross_attention.", "choices": ("cross_attention", "concat")},
    )
    context_size: int = field(
        default=0,
        metadata={"help": "Previous utterances of the dialogue the model reads (0: each utterance alone). Needs "
                  "the audio features cached (a frozen audio encoder)."},
    )
    context_type: str = field(
        default="decayed_sum",
        metadata={"help": "How --context_size previous utterances become one vector: 'decayed_sum' (their pooled "
                  "vectors weighted by 0.8 per step back, no parameters; the recipe's) or 'gru'.",
                  "choices": ("decayed_sum", "gru")},
    )
    audio_full_window: bool = field(
        default=False,
        metadata={"help": "Whisper audio encoders: encode the whole 30 s window as speech recognition does, "
                  "instead of the utterance's own length (the default, about 14x cheaper for 2.5 s)."},
    )
    audio_weight: float | None = field(
        default=None,
        metadata={"help": "--fusion_type concat: the factor on the normalised audio statistics (default 1; a "
                  "student: its teacher's). Larger leans on the voice, smaller on the words; choose it on "
                  "validation (scripts/validation_search.py)."},
    )
    audio_layer_mix: str | None = field(
        default=None,
        metadata={"help": "--fusion_type concat: which audio encoder layers the pooled branch reads: 'weighted' "
                  "(every layer, mixed by learnt weights, SUPERB-style; the default) or 'last' (the last layer "
                  "alone, as the Whisper-LR baseline). A student: its teacher's.", "choices": AUDIO_LAYER_CHOICES},
    )
    fusion_size: str = field(
        default="auto",
        metadata={"help": "Fusion head width: 'paper' (768 wide, 8 heads), 'small' (128 wide, for about a thousand "
                  "utterances), 'linear' (small with a linear classifier and no dropout: the recipe's), 'tiny' (32 wide, for tiny "
                  "encoders) or 'auto' (tiny when an encoder is tiny, else paper).",
                  "choices": ("auto", TINY, "small", "linear", "paper")},
    )
    freeze_audio_encoder: bool | None = field(
        default=None,
        metadata={"help": "Keep the audio encoder frozen (default: the preset's; the paper's models freeze both, "
                  "the light student trains both). Frozen encoders run once and are cached."},
    )
    freeze_text_encoder: bool | None = field(
        default=None,
        metadata={"help": "Keep the text encoder frozen (default: the preset's). E.g. a frozen Whisper audio encoder "
                  "with a tiny text encoder that trains: --text_encoder tiny --freeze_text_encoder false."},
    )
    cache_encoder_features: bool = field(
        default=True,
        metadata={"help": "Run frozen encoders once and train on their stored hidden states (as the paper did), per "
                  "modality; encoders that train always run in every step."},
    )
    feature_dtype: str = field(
        default="float32",
        metadata={"help": "Storage dtype of cached encoder features: float32 or float16 (half the disk).",
                  "choices": ("float32", "float16")},
    )
    encoding_batch_size: int = field(default=8, metadata={"help": "Batch size when caching encoder features."})

    def __post_init__(self) -> None:
        if self.encoding_batch_size < 1:
            raise UsageError(f"--encoding_batch_size must be >= 1, got {self.encoding_batch_size}.")
        from ..configuration_multistill import MAX_AUDIO_WEIGHT, MAX_CONTEXT_SIZE

        if not 0 <= self.context_size <= MAX_CONTEXT_SIZE:
            raise UsageError(f"--context_size must be between 0 and {MAX_CONTEXT_SIZE}, got {self.context_size}.")
        if self.audio_weight is not None and not 0 < self.audio_weight <= MAX_AUDIO_WEIGHT:
            raise UsageError(f"--audio_weight must be in (0, {MAX_AUDIO_WEIGHT:g}], got {self.audio_weight}.")
        for name in ("audio_encoder", "text_encoder"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, check_model_reference(value, f"--{name}", allow_tiny=True))

    def freeze_overrides(self) -> dict[str, bool]:
        """Config overrides for the ``--freeze_audio_encoder``/``--freeze_text_encoder`` given."""
        return {name: value for name, value in (("freeze_audio_encoder", self.freeze_audio_encoder),
                                                ("freeze_text_encoder", self.freeze_text_encoder))
                if value is not None}

    def fusion_overrides(self) -> dict[str, Any]:
        """Config overrides for the ``--fusion_type``/``--audio_weight``/``--audio_layer_mix`` given (a student keeps
        its teacher's value of each one not given)."""
        return {name: value for name, value in (("fusion_type", self.fusion_type), ("audio_weight", self.audio_weight),
                                                ("audio_layer_mix", self.audio_layer_mix))
                if value is not None}

    def encoders(self) -> dict[str, str]:
        """``{"audio": ..., "text": ...}``: ``"tiny"``, a folder or a Hub id per modality (train.py)."""
        backbones = self.backbones or TINY
        default = {m: TINY if backbones == TINY else PRETRAINED_ENCODERS[m] for m in ("audio", "text")}
        return {"audio": self.audio_encoder or default["audio"], "text": self.text_encoder or default["text"]}

    def config_overrides(self) -> dict[str, Any]:
        """Fields of ``MultiStillConfig`` set on the command line (fusion, context, Whisper window, freezing)."""
        return {**self.context_overrides(), "audio_full_window": self.audio_full_window, **self.fusion_overrides(),
                **self.freeze_overrides()}

    def context_overrides(self) -> dict[str, Any]:
        """Config fields of the conversation context (``context_size``, ``context_type``)."""
        return {"context_size": self.context_size, "context_type": self.context_type}

    def backbones_label(self) -> str:
        """``tiny`` (both encoders tiny), ``pretrained`` (none tiny) or ``mixed``, for run_info.json."""
        tiny = [value == TINY for value in self.encoders().values()]
        return TINY if all(tiny) else "mixed" if any(tiny) else "pretrained"

    def resolved_fusion_size(self) -> str:
        """``--fusion_size`` with ``auto`` resolved: ``tiny`` when an encoder is tiny, else ``paper``."""
        if self.fusion_size == "auto":
            return TINY if TINY in self.encoders().values() else "paper"
        return self.fusion_size


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
    text_column: str = field(
        default="text",
        metadata={"help": "The transcript column the models train on: 'text' (the corpus's, cleaned) or another "
                  "column of the dataset, such as the speech recognizer's ('asr_text', added by --asr_model)."},
    )
    asr_model: str | None = field(
        default=None,
        metadata={"help": "Add an 'asr_text' column: this speech recognizer's transcript of every utterance "
                  "(datasets.map, cached beside the corpus's Arrow files, so later runs read it). A transformers "
                  "speech-recognition checkpoint, a CTranslate2 Whisper folder (faster-whisper), or 'whisper-base' "
                  "(the offline Whisper base of the package registry). Decoded in Korean, greedy."},
    )
    asr_engine: str | None = field(
        default=None,
        metadata={"help": "Engine of --asr_model (default: a folder with model.bin is faster-whisper, anything "
                  "else transformers).", "choices": ASR_ENGINES},
    )
    test_text_columns: list[str] | None = field(
        default=None,
        metadata={"help": "Also test the final model with these transcript columns in place of --text_column, "
                  "e.g. 'asr_text' (what the model gets live, with --asr_model) or 'text' after training on "
                  "'asr_text'. Results: metrics.json 'test_by_text_column', test_on_<column>_predictions.json."},
    )
    split: str = field(
        default="session",
        metadata={"help": "'session': whole sessions held out for test (honest); 'dialogue': whole dialogues held out "
                  "(for corpora with few sessions, such as the sample); 'random': the paper's utterance split "
                  "(leaks speakers).", "choices": SPLIT_NAMES},
    )
    test_sessions: list[str] | None = field(
        default=None,
        metadata={"help": "Session split: test sessions, as numbers or CORPUS:NUMBER (default: the last "
                  "--test_fraction of each corpus's sessions)."},
    )
    validation_sessions: list[str] | None = field(
        default=None,
        metadata={"help": "Session split: validation sessions (default: the --validation_fraction before the test "
                  "sessions)."},
    )
    validation_from: str | None = field(
        default=None,
        metadata={"help": "Session split: validate on whole 'sessions' (default) or on 'dialogues' drawn from the "
                  "training sessions (--validation_fraction of them, seeded by --split_seed), so that every "
                  "non-test session trains.", "choices": VALIDATION_SOURCES},
    )
    test_fraction: float | None = field(
        default=None,
        metadata={"help": "Held-out test share (default 0.2) of each corpus's sessions (session split), dialogues "
                  "(dialogue split) or of all utterances (random split)."},
    )
    validation_fraction: float | None = field(
        default=None,
        metadata={"help": "Validation share (default 0.1), counted like --test_fraction; with --validation_from "
                  "dialogues, of the training sessions' dialogues."},
    )
    split_seed: int = field(
        default=123,
        metadata={"help": "Seed of the dialogue draws and of the random split (123: the paper's random_state). "
                  "Independent of --seed."},
    )
    balance_max_fraction: float | None = field(
        default=0.6,
        metadata={"help": "Cap the dominant emotion's share of the training split (the paper: neutral 71 %% -> 60 %%). "
                  "A warning is logged when this removes more than half of the split. Pass 0 to switch it off."},
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
        metadata={"help": "Where Arrow caches, encoder features, the synthetic corpus and tiny backbones go "
                  "(default ~/.cache/multistill)."},
    )

    def __post_init__(self) -> None:
        from .data import data_dir_error

        error = data_dir_error(self.corpus, self.data_dir)
        if error:
            raise UsageError(error)
        if self.split != "session":
            for name in ("test_sessions", "validation_sessions", "validation_from"):
                if getattr(self, name) is not None:
                    raise UsageError(f"--{name} only applies to --split session (this run: --split {self.split}).")
        if self.validation_from == "dialogues" and self.validation_sessions is not None:
            raise UsageError("--validation_sessions and --validation_from dialogues exclude each other.")
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 < value < 1):
                raise UsageError(f"--{name} must be a fraction in (0, 1), got {value}.")
        if self.resolved_fractions()[0] + self.resolved_fractions()[1] >= 1:
            raise UsageError("--test_fraction + --validation_fraction must be below 1.")
        if self.balance_max_fraction is not None and not (
            math.isfinite(self.balance_max_fraction) and 0 <= self.balance_max_fraction < 1
        ):
            raise UsageError(f"--balance_max_fraction must be in (0, 1), or 0 for no balancing, got "
                             f"{self.balance_max_fraction}.")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise UsageError(f"--max_train_samples {self.max_train_samples} would train on nothing.")
        if min(self.synthetic_sessions, self.synthetic_utterances) < 1:
            raise UsageError("--synthetic_sessions and --synthetic_utterances must be >= 1.")
        if not self.text_column:
            raise UsageError("--text_column must name a column.")
        columns = [self.text_column, *(self.test_text_columns or [])]
        if any(not column for column in columns):
            raise UsageError("--test_text_columns: every entry must name a column.")
        if len(set(columns)) < len(columns):
            raise UsageError(f"--test_text_columns {' '.join(self.test_text_columns)}: a column is named twice or is "
                             f"--text_column ({self.text_column}), which the test split uses anyway.")
        if ASR_TEXT_COLUMN in columns and not self.asr_model:
            raise UsageError(f"The {ASR_TEXT_COLUMN!r} column is made by a speech recognizer: add --asr_model "
                             f"(e.g. --asr_model {WHISPER_BASE_ALIAS}).")
        if self.asr_model is not None:
            if not self.asr_model.strip():
                raise UsageError("--asr_model is empty.")
            check_model_reference(self.asr_model, "--asr_model", aliases=(WHISPER_BASE_ALIAS,))
        elif self.asr_engine is not None:
            raise UsageError("--asr_engine needs --asr_model.")

    def resolved_fractions(self) -> tuple[float, float]:
        """``(test_fraction, validation_fraction)`` with the defaults filled in."""
        return (DEFAULT_TEST_FRACTION if self.test_fraction is None else self.test_fraction,
                DEFAULT_VALIDATION_FRACTION if self.validation_fraction is None else self.validation_fraction)


@dataclass
class DistillationArguments:
    """The teacher and the distillation loss."""

    teacher_model: str | None = field(
        default=None,
        metadata={"help": "Folder (or Hub id) of the trained teacher, as written by train.py."},
    )
    allow_split_mismatch: bool = field(
        default=False,
        metadata={"help": "Use a teacher whose run split the data differently (other test/validation sessions or "
                  "dialogues, split, seeds), or whose split cannot be checked. Its logits may then come from "
                  "examples this run tests on."},
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
        default=2, metadata={"help": "Light student: audio transformer layers kept from the teacher's encoder "
                             "(first and last kept); 0 keeps only a Whisper teacher's convolutions (fastest)."}
    )
    light_text_layers: int = field(
        default=2, metadata={"help": "Light student: text transformer layers kept from the teacher's encoder."}
    )

    def __post_init__(self) -> None:
        if not self.teacher_model:
            raise UsageError("--teacher_model is required: the folder train.py wrote (or a Hub id).")
        self.teacher_model = check_model_reference(self.teacher_model, "--teacher_model")
        if not (math.isfinite(self.alpha) and 0 <= self.alpha <= 1):
            raise UsageError(f"--alpha must be in [0, 1], got {self.alpha}.")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UsageError(f"--temperature must be > 0, got {self.temperature}.")
        if not (math.isfinite(self.hidden_weight) and self.hidden_weight >= 0):
            raise UsageError(f"--hidden_weight must be >= 0, got {self.hidden_weight}.")
        if self.light_audio_layers < 0 or self.light_text_layers < 1:
            raise UsageError(f"--light_audio_layers must be >= 0 (got {self.light_audio_layers}) and "
                             f"--light_text_layers >= 1 (got {self.light_text_layers}).")


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
    dataloader_pin_memory: bool = field(
        default_factory=lambda: __import__("torch").cuda.is_available(),
        metadata={"help": "Pin batches in page-locked memory (default: only when CUDA is available; on CPU it "
                  "does nothing but warn)."},
    )
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Loggers (tensorboard, wandb...)."})
    #: ``--push_to_hub`` as given: publish the finished run (``multistill.tools.hub.publish_run``, called by
    #: ``workflow.finish_run``) instead of the Trainer's pushes, which upload a folder without code or card.
    publish_to_hub: bool = field(default=False, init=False)

    refit_on_validation: bool = field(
        default=False,
        metadata={"help": "After the best epoch is chosen on the validation split, train a fresh model (same seed) on "
                  "training + validation rows for that many epochs and test it: the model then learns from the same "
                  "rows as the baselines (the recipe's). No checkpoint of the refit is kept."},
    )
    refit_epochs: str = field(
        default="best",
        metadata={"help": "With --refit_on_validation: 'best' (the epoch count that scored best on validation) or "
                  "'all' (--num_train_epochs, with no validation run: for a penalised objective trained to "
                  "convergence, where a noisy validation score would stop it early; the recipe's)."},
    )
    training_targets: str = field(
        default="votes",
        metadata={"help": "What the training loss matches: 'votes' (each utterance's distribution of the annotators' "
                  "votes, the paper's) or 'majority' (its majority emotion, what the metrics and the baselines' "
                  "logistic regressions use; the recipe's). Evaluation losses always use the votes."},
    )
    class_weighting: str = field(
        default="none",
        metadata={"help": "Training loss weights per emotion: 'none' or 'balanced' (n / (7 * count), as scikit-learn's "
                  "class_weight='balanced'; keeps every row instead of dropping rows to balance: the recipe's).",
                  "choices": ("none", "balanced")},
    )
    l2_penalty: float = field(
        default=0.0,
        metadata={"help": "L2 penalty on the trainable parameters but biases, scaled as scikit-learn's "
                  "LogisticRegression scales it: the loss gains l2_penalty * sum(w^2) / (2 * training rows), so 1 is "
                  "the baselines' C=1 (the recipe's, trained full batch to convergence). 0: off. Separate from "
                  "AdamW's --weight_decay."},
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads of torch for caching and training (torch.set_num_threads); default: torch's "
                  "(all cores). On a small shared CPU, 1 is often faster (see README)."},
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise UsageError(f"--learning_rate must be > 0, got {self.learning_rate}.")
        if self.max_steps == 0 or (self.max_steps < 0 and not self.num_train_epochs > 0):
            raise UsageError(
                f"--num_train_epochs {self.num_train_epochs} / --max_steps {self.max_steps} train zero steps: the "
                "saved model would be untrained. Pass a positive --num_train_epochs (or --max_steps)."
            )
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise UsageError("--per_device_train_batch_size and --gradient_accumulation_steps must be >= 1.")
        if self.training_targets not in ("votes", "majority"):
            raise UsageError(f"--training_targets must be 'votes' or 'majority', got {self.training_targets!r}.")
        if self.refit_epochs not in ("best", "all"):
            raise UsageError(f"--refit_epochs must be 'best' or 'all', got {self.refit_epochs!r}.")
        if not (math.isfinite(self.l2_penalty) and self.l2_penalty >= 0):
            raise UsageError(f"--l2_penalty must be >= 0, got {self.l2_penalty}.")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}.")
        check_output_dir(self.output_dir)
        self.publish_to_hub, self.push_to_hub = bool(self.push_to_hub), False
        super().__post_init__()


__all__ = [
    "PRESET_CHOICES",
    "PRETRAINED_ENCODERS",
    "DataArguments",
    "DistillationArguments",
    "ModelArguments",
    "MultiStillTrainingArguments",
    "UsageError",
    "check_model_reference",
    "check_output_dir",
    "parse_command_line",
    "run_script",
]
