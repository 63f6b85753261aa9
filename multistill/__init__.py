"""Multi-Still: multimodal cross-attention knowledge distillation for Korean emotion recognition."""

from .annotations import EMOTIONS, clean_transcript, normalize_emotion

__version__ = "0.1.0"

__all__ = ["EMOTIONS", "__version__", "clean_transcript", "normalize_emotion"]

# --- Model, config, processor and offline backbones: imported lazily, so `import multistill` stays light
# (these pull in torch/transformers). `from multistill import MultiStillForEmotionClassification` works.
_LAZY_MODEL_EXPORTS = {
    "MultiStillConfig": ".configuration_multistill",
    "MultiStillFbankConfig": ".configuration_multistill",
    "PRESETS": ".configuration_multistill",
    "MultiStillFbankEncoder": ".modeling_multistill",
    "MultiStillModel": ".modeling_multistill",
    "MultiStillForEmotionClassification": ".modeling_multistill",
    "MultiStillOutput": ".modeling_multistill",
    "register_auto_classes": ".modeling_multistill",
    "select_teacher_layers": ".modeling_multistill",
    "MultiStillProcessor": ".processing_multistill",
    "MultiStillEmotionPipeline": ".pipeline_multistill",
    "save_pretrained_with_pipeline": ".pipeline_multistill",
    "build_tiny_encoders": ".offline",
    "tiny_backbones": ".offline",
    "train_wordpiece_tokenizer": ".offline",
}
_getattr_before_model_exports = globals().get("__getattr__")


def __getattr__(name: str):
    if name in _LAZY_MODEL_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_MODEL_EXPORTS[name], __name__), name)
    if _getattr_before_model_exports is not None:
        return _getattr_before_model_exports(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ += list(_LAZY_MODEL_EXPORTS)
