"""Multi-Still: multimodal cross-attention knowledge distillation for Korean emotion recognition."""

from .annotations import EMOTIONS, clean_transcript, normalize_emotion

__version__ = "0.1.0"

__all__ = ["EMOTIONS", "__version__", "clean_transcript", "normalize_emotion"]
