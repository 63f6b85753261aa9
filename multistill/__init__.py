"""Multi-Still: multimodal cross-attention knowledge distillation for Korean emotion recognition.

``import multistill`` is light (it imports neither torch nor transformers) and still registers the
package's classes with transformers: the first import of transformers' Auto classes or pipelines (before
or after this package) registers ``MultiStillConfig`` with ``AutoConfig``, the model with ``AutoModel``,
``AutoModelForAudioClassification`` and ``AutoModelForSequenceClassification``, the processor with
``AutoProcessor`` and the ``multimodal-emotion-recognition`` pipeline task, so saved folders load with the
installed code and without ``trust_remote_code``.
"""

import importlib
import sys

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
    "register_pipeline": ".pipeline_multistill",
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


# --- Registration with transformers, deferred until transformers loads the matching registry ---
#: transformers module -> the module of this package whose import registers with it.
_REGISTERED_BY = {
    "transformers.models.auto.configuration_auto": ".configuration_multistill",
    "transformers.models.auto.processing_auto": ".processing_multistill",
    "transformers.models.auto.modeling_auto": ".modeling_multistill",
    "transformers.pipelines": ".pipeline_multistill",
}


def _register(module: str) -> None:
    try:
        importlib.import_module(module, __name__)
    except Exception as err:  # noqa: BLE001 - never break the user's transformers import
        import logging

        logging.getLogger(__name__).warning("Could not register %s%s with transformers: %s", __name__, module, err)


class _RegisteringLoader:
    """Runs the wrapped loader, then registers the matching part of this package."""

    def __init__(self, loader, module: str):
        self._loader, self._module = loader, module

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register(self._module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _RegisterOnImport:
    """Import hook (a ``sys.meta_path`` finder; plain class: ``importlib.abc`` is slow to import): when transformers first imports one of :data:`_REGISTERED_BY`'s modules, register."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _REGISTERED_BY:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader, _REGISTERED_BY[fullname])
                return spec
        return None


if not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnImport())
for _module, _ours in _REGISTERED_BY.items():
    if _module in sys.modules:  # transformers was imported first
        _register(_ours)
