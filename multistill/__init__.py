"""Multi-Still: multimodal cross-attention knowledge distillation for Korean emotion recognition.

Importing the package registers its classes with transformers (:func:`register_auto_classes`):
``MultiStillConfig`` with ``AutoConfig``, the model with ``AutoModel``, ``AutoModelForAudioClassification`` and
``AutoModelForSequenceClassification``, the processor with ``AutoProcessor`` and the
``multimodal-emotion-recognition`` pipeline task, so saved folders load with the installed code and without
``trust_remote_code``. Hub folders carry their own code instead (``register_for_auto_class`` in the model files
writes ``auto_map``), for users without this package.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from .annotations import EMOTIONS, normalize_emotion
from .audio_utils import load_audio
from .configuration_multistill import PRESETS, MultiStillConfig, MultiStillFbankConfig
from .configuration_ngram import MultiStillNgramConfig
from .modeling_encoders import select_teacher_layers
from .modeling_fbank import MultiStillFbankEncoder
from .modeling_multistill import (
    MultiStillForEmotionClassification,
    MultiStillForSequenceClassification,
    MultiStillModel,
    MultiStillOutput,
)
from .modeling_ngram import MultiStillNgramEncoder
from .offline import build_tiny_encoders, tiny_backbones, train_wordpiece_tokenizer
from .pipeline_multistill import MultiStillEmotionPipeline, register_pipeline, save_pretrained_with_pipeline
from .processing_multistill import MultiStillProcessor, clean_transcript

__version__ = "0.1.0"


def register_auto_classes() -> None:
    """Register the package's classes with transformers' Auto classes and pipeline registry (idempotent: the
    installed classes replace those of a Hub folder's code loaded earlier). A failure raises here, at import."""
    AutoConfig.register(MultiStillConfig.model_type, MultiStillConfig, exist_ok=True)
    AutoConfig.register(MultiStillFbankConfig.model_type, MultiStillFbankConfig, exist_ok=True)
    AutoModel.register(MultiStillFbankConfig, MultiStillFbankEncoder, exist_ok=True)
    AutoConfig.register(MultiStillNgramConfig.model_type, MultiStillNgramConfig, exist_ok=True)
    AutoModel.register(MultiStillNgramConfig, MultiStillNgramEncoder, exist_ok=True)
    AutoModel.register(MultiStillConfig, MultiStillModel, exist_ok=True)
    for auto_class in (AutoModelForAudioClassification, AutoModelForSequenceClassification):
        auto_class.register(MultiStillConfig, MultiStillForEmotionClassification, exist_ok=True)
    AutoProcessor.register(MultiStillConfig, MultiStillProcessor, exist_ok=True)
    register_pipeline()


register_auto_classes()

__all__ = [
    "EMOTIONS",
    "PRESETS",
    "MultiStillConfig",
    "MultiStillEmotionPipeline",
    "MultiStillFbankConfig",
    "MultiStillFbankEncoder",
    "MultiStillForEmotionClassification",
    "MultiStillForSequenceClassification",
    "MultiStillModel",
    "MultiStillNgramConfig",
    "MultiStillNgramEncoder",
    "MultiStillOutput",
    "MultiStillProcessor",
    "__version__",
    "build_tiny_encoders",
    "clean_transcript",
    "load_audio",
    "normalize_emotion",
    "register_auto_classes",
    "register_pipeline",
    "save_pretrained_with_pipeline",
    "select_teacher_layers",
    "tiny_backbones",
    "train_wordpiece_tokenizer",
]
