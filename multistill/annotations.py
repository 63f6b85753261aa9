"""KEMDy annotation conventions: emotion labels and transcript decoding (cleaning is the processor's:
:func:`.processing_multistill.clean_transcript`).

This module is deliberately flat (standard library only, no package imports) so that it can be
shipped next to the model code on the Hub and imported with a relative import by the configuration.
"""

from __future__ import annotations

import re

#: The seven emotions, in the order used by the Multi-Still paper (and by every model here).
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear")

#: Spelling variants mapped to the canonical label. Keys are lower-case with spaces removed.
LABEL_ALIASES: dict[str, str] = {
    # neutral
    "neutrl": "neutral", "nuetral": "neutral", "netural": "neutral", "neutal": "neutral",
    "neural": "neutral", "neutrall": "neutral", "neutra": "neutral",
    # happy
    "happiness": "happy", "hapy": "happy", "happpy": "happy", "hapyy": "happy", "happ": "happy",
    # surprise
    "surprised": "surprise", "suprise": "surprise", "surpise": "surprise", "surprize": "surprise",
    "surprsie": "surprise", "surprse": "surprise",
    # angry
    "anger": "angry", "angery": "angry", "angy": "angry", "agnry": "angry",
    # sad
    "sadness": "sad", "sadd": "sad",
    # disgust
    "disgusted": "disgust", "disqust": "disgust", "digust": "disgust", "disguest": "disgust",
    "disgut": "disgust",
    # fear
    "fearful": "fear", "afraid": "fear", "feare": "fear",
}


class UnknownEmotionLabelError(ValueError):
    """An annotation holds a label that is neither one of :data:`EMOTIONS` nor a known variant."""


def normalize_emotion(raw: str, where: str = "") -> str:
    """Return the canonical emotion for ``raw`` (case, spaces and known misspellings folded).

    ``where`` (e.g. ``"Sess01_eval.csv row 12, column Eval03M"``) is put in the error message.
    """
    key = re.sub(r"\s+", "", str(raw)).lower()
    if key in EMOTIONS:
        return key
    if key in LABEL_ALIASES:
        return LABEL_ALIASES[key]
    location = f" at {where}" if where else ""
    raise UnknownEmotionLabelError(
        f"Unknown emotion label {raw!r}{location}. Expected one of {', '.join(EMOTIONS)} "
        f"(case and spaces are ignored; known misspellings are mapped in LABEL_ALIASES)."
    )


def split_tied_emotions(raw: str, where: str = "") -> list[str]:
    """Split a "Total Evaluation" such as ``"neutral;happy"`` into canonical labels."""
    return [normalize_emotion(part, where) for part in str(raw).split(";") if part.strip()]


def decode_transcript(data: bytes, where: str = "") -> str:
    """Decode a transcript file: UTF-8 (with or without BOM) first, then CP949 (KEMDy20).

    Raises ``ValueError`` naming ``where`` when neither encoding fits, instead of returning mojibake.
    """
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"Transcript {where or '<bytes>'} is neither UTF-8 nor CP949 text.")


__all__ = [
    "EMOTIONS",
    "LABEL_ALIASES",
    "UnknownEmotionLabelError",
    "decode_transcript",
    "normalize_emotion",
    "split_tied_emotions",
]
