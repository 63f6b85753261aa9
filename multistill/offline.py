"""Tiny, random, offline stand-ins for the pretrained encoders (no Hub access needed).

The real encoders (kresnik/wav2vec2-large-xlsr-korean, beomi/KcELECTRA-base) are downloads. Tests, CI and
smoke runs use instead what this module builds locally in a second or two:

* :func:`train_wordpiece_tokenizer` — an ELECTRA WordPiece tokenizer trained with ``tokenizers`` on
  (cleaned) transcripts; no lower-casing, no accent stripping, so Hangul syllables stay intact;
* :func:`build_tiny_encoders` — a tiny random ``Wav2Vec2Model`` (stable layer norm, ``"layer"`` feature
  normalisation, total conv stride 320 = 50 frames/s like the real model) + its feature extractor, and a
  tiny random ``ElectraModel`` + the tokenizer, each saved in its own folder and loadable with
  ``AutoModel`` / ``AutoFeatureExtractor`` / ``AutoTokenizer.from_pretrained(path)``;
* :func:`tiny_backbones` — a :class:`MultiStillForEmotionClassification` (any preset, small fusion
  width) + :class:`MultiStillProcessor` built from those folders with ``from_encoders``, exactly as the
  real model is built from Hub encoders.

Example::

    from multistill.offline import tiny_backbones
    model, processor = tiny_backbones("/tmp/tiny", preset="teacher")
    batch = processor(audio=[wave], sampling_rate=16000, text=["안녕하세요"])
    logits = model(**batch).logits
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .annotations import clean_transcript

#: Korean sentences used when no corpus is given (enough to train a small WordPiece vocabulary).
DEFAULT_TEXTS: tuple[str, ...] = (
    "안녕하세요 오늘 기분이 정말 좋아요.",
    "그게 무슨 소리야? 진짜 놀랐잖아!",
    "아 그런 남자들 딱 질색이야.",
    "집안 문제는 뭐 어떻게 보면 고칠 수 없는 거니까.",
    "밤에 혼자 있어서 조금 무서웠어요.",
    "시험 결과가 나왔는데 만족스럽지 않아서 화가 났어요.",
    "오랜만에 친구를 만나서 기뻤어요.",
    "그냥 평범한 하루였어요.",
    "이 음식은 정말 못 먹겠어요.",
    "오늘 기분이 우울해요.",
    "l/ 그 아니 신랑 선배 중에도 진짜 꼰대가 있었어.",
    "(이래+자꾸) 이러면 나도 더 이상 안 참아.",
)

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

logger = logging.getLogger(__name__)


def train_wordpiece_tokenizer(
    texts: Iterable[str] | None = None,
    vocab_size: int = 1000,
    out_dir: str | os.PathLike | None = None,
    min_frequency: int = 1,
    model_max_length: int = 512,
):
    """Learn an ELECTRA (BERT WordPiece) vocabulary from ``clean_transcript``-ed ``texts``.

    The text is normalised and split with the ``tokenizers`` BERT normaliser and pre-tokenizer; the
    vocabulary is the special tokens, every character (as a word start and as a ``##`` continuation) and
    then the most frequent words (ties by spelling) up to ``vocab_size`` (which grows when the characters
    alone need more). Unlike ``WordPieceTrainer``,
    whose merge ties depend on hash order, this is deterministic: the same transcripts give the same
    token ids in every process, so tiny backbones (and the metrics of runs on them) are reproducible.

    Returns an ``ElectraTokenizer`` (the ``tokenizers``-backed class of transformers 5) with
    ``do_lower_case=False`` and ``strip_accents=False`` (NFD accent stripping would decompose Hangul
    syllables into jamo). Saved to ``out_dir`` when given.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers
    from transformers import ElectraTokenizer

    corpus = [clean_transcript(t) for t in (texts if texts is not None else DEFAULT_TEXTS)]
    corpus = [t for t in corpus if t]
    if not corpus:
        raise ValueError("`texts` holds no non-empty transcript to train the tokenizer on.")
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter(
        word for text in corpus for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    characters = sorted({c for word in counts for c in word})
    tokens = list(SPECIAL_TOKENS) + characters + [f"##{c}" for c in characters]
    if len(tokens) > vocab_size:  # Hangul has many syllables: every character stays (no [UNK] in training text)
        logger.info("Tokenizer vocabulary grown from %d to %d to hold every character of the transcripts",
                    vocab_size, len(tokens))
    frequent = sorted((w for w, n in counts.items() if len(w) > 1 and n >= min_frequency), key=lambda w: (-counts[w], w))
    tokens += frequent[: vocab_size - len(tokens)]
    tokenizer = ElectraTokenizer(
        vocab={token: i for i, token in enumerate(tokens)}, do_lower_case=False, strip_accents=False,
        model_max_length=model_max_length,
    )
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_tiny_encoders(
    out_dir: str | os.PathLike,
    texts: Iterable[str] | None = None,
    audio_layers: int = 2,
    text_layers: int = 2,
    audio_hidden_size: int = 64,
    text_hidden_size: int = 32,
    vocab_size: int = 1000,
    seed: int = 0,
) -> dict[str, str]:
    """Save a tiny random wav2vec2 (``out_dir/audio``) and ELECTRA (``out_dir/text``) encoder.

    The wav2vec2 keeps the real model's properties that matter: ``feat_extract_norm="layer"``,
    ``do_stable_layer_norm=True`` and a total conv stride of 320 samples (50 frames/s, receptive field
    400 samples), with few channels. Returns ``{"audio": path, "text": path}``.
    """
    import torch
    from transformers import (
        ElectraConfig,
        ElectraModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    out = Path(out_dir)
    audio_dir, text_dir = out / "audio", out / "text"
    torch.manual_seed(seed)
    audio_config = Wav2Vec2Config(
        hidden_size=audio_hidden_size,
        num_hidden_layers=audio_layers,
        num_attention_heads=4,
        intermediate_size=2 * audio_hidden_size,
        conv_dim=(32, 32, 32),
        conv_kernel=(10, 15, 9),  # receptive field 10 + 14*5 + 8*40 = 400 samples (25 ms), as the real model
        conv_stride=(5, 8, 8),  # total stride 320 samples = 20 ms at 16 kHz (50 frames/s)
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        vocab_size=32,
        layer_norm_eps=1e-5,
    )
    audio_model = Wav2Vec2Model(audio_config).eval()
    audio_model.save_pretrained(str(audio_dir))
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(str(audio_dir))

    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size, out_dir=text_dir)
    text_config = ElectraConfig(
        vocab_size=len(tokenizer),
        embedding_size=text_hidden_size,
        hidden_size=text_hidden_size,
        num_hidden_layers=text_layers,
        num_attention_heads=4,
        intermediate_size=2 * text_hidden_size,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    ElectraModel(text_config).eval().save_pretrained(str(text_dir))
    return {"audio": str(audio_dir), "text": str(text_dir)}


#: Fusion-head sizes used with the tiny encoders (the paper uses 768 / 8 / 3072 / 512).
TINY_FUSION: dict[str, Any] = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "fusion_intermediate_size": 64,
    "classifier_hidden_size": 16,
    "num_mel_bins": 40,
    "fbank_conv_channels": 32,
}


def tiny_backbones(
    out_dir: str | os.PathLike | None = None,
    preset: str = "teacher",
    encoders: dict[str, str] | None = None,
    texts: Iterable[str] | None = None,
    seed: int = 0,
    **config_overrides: Any,
):
    """Build ``(model, processor)`` for ``preset`` from tiny offline encoders.

    ``encoders`` (``{"audio": path, "text": path}`` from :func:`build_tiny_encoders`) is built under
    ``out_dir`` when not given. ``config_overrides`` go to ``MultiStillConfig.from_preset`` (e.g.
    ``audio_layers=1``, ``fbank_position_embedding="conv"``). The fusion head uses :data:`TINY_FUSION` sizes unless overridden. The model
    is in eval mode.
    """
    import torch

    from .modeling_multistill import MultiStillForEmotionClassification
    from .processing_multistill import MultiStillProcessor

    if encoders is None:
        if out_dir is None:
            raise ValueError("Pass `out_dir` (where to build the tiny encoders) or prebuilt `encoders`.")
        encoders = build_tiny_encoders(out_dir, texts=texts, seed=seed)
    params = {**TINY_FUSION, **config_overrides}
    torch.manual_seed(seed)
    model = MultiStillForEmotionClassification.from_encoders(
        audio_encoder=encoders["audio"], text_encoder=encoders["text"], preset=preset, local_files_only=True,
        **params,
    )
    model.eval()
    processor = MultiStillProcessor.from_encoder_folders(encoders["audio"], encoders["text"], config=model.config)
    return model, processor


__all__ = ["DEFAULT_TEXTS", "TINY_FUSION", "build_tiny_encoders", "tiny_backbones", "train_wordpiece_tokenizer"]
