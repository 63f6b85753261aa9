"""Tiny, random, offline stand-ins for the pretrained encoders (no Hub access needed).

The real encoders (kresnik/wav2vec2-large-xlsr-korean, beomi/KcELECTRA-base, Whisper) are downloads. Tests, CI
and smoke runs use instead what this module builds locally in a second or two:

* :func:`train_wordpiece_tokenizer` — an ELECTRA WordPiece tokenizer trained with ``tokenizers`` on
  (cleaned) transcripts; no lower-casing, no accent stripping, so Hangul syllables stay intact;
* :func:`build_tiny_encoders` — a tiny random audio encoder (wav2vec2 by default: stable layer norm,
  ``"layer"`` feature normalisation, total conv stride 320 = 50 frames/s like the real model; or HuBERT, WavLM,
  data2vec-audio, or a Whisper ``WhisperForConditionalGeneration`` with its feature extractor) and a tiny random
  text encoder (ELECTRA by default; BERT, XLM-R) + the tokenizer, each saved in its own folder and loadable with
  ``AutoModel`` / ``AutoFeatureExtractor`` / ``AutoTokenizer.from_pretrained(path)``;
* :func:`build_ngram_text_encoder` — not a stand-in but the recipe's text encoder: a character tokenizer
  (:func:`train_char_tokenizer`) and a :class:`~multistill.modeling_ngram.MultiStillNgramEncoder` whose
  inverse document frequencies are those of the training transcripts (its embeddings are learnt in training);
* :func:`tiny_backbones` — a :class:`MultiStillForEmotionClassification` (any preset, small fusion
  width) + :class:`MultiStillProcessor` built from those folders with ``from_encoders``, exactly as the
  real model is built from Hub encoders.

Example::

    from multistill.offline import tiny_backbones
    model, processor = tiny_backbones("/tmp/tiny", preset="teacher")              # wav2vec2 + ELECTRA
    model, processor = tiny_backbones("/tmp/tiny", preset="teacher", audio="whisper")  # Whisper encoder
    batch = processor(audio=[wave], sampling_rate=16000, text=["안녕하세요"])
    logits = model(**batch).logits
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .processing_multistill import clean_transcript

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


#: The word separator of :func:`train_char_tokenizer` (SentencePiece's), also put at both ends of a transcript.
WORD_BOUNDARY = "\u2581"


def train_char_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike | None = None,
                         model_max_length: int = 512):
    """A character-level tokenizer of the ``clean_transcript``-ed ``texts``: one id per character seen (sorted,
    so the same transcripts give the same ids), ``[PAD]`` 0, ``[UNK]`` 1 and the word boundary 2 (runs of
    white space become one boundary, and one opens and closes every transcript). A plain ``tokenizers``
    file, loadable by ``AutoTokenizer`` in a bare transformers install. Saved to ``out_dir`` when given."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    corpus = [clean_transcript(t) for t in texts]
    characters = sorted({c for text in corpus for c in text if not c.isspace()} - {WORD_BOUNDARY})
    if not characters:
        raise ValueError("`texts` holds no non-empty transcript to learn the characters from.")
    vocab = {"[PAD]": 0, "[UNK]": 1, WORD_BOUNDARY: 2, **{c: i + 3 for i, c in enumerate(characters)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Sequence([
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), WORD_BOUNDARY), normalizers.Prepend(WORD_BOUNDARY)])
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {WORD_BOUNDARY}", pair=f"$A {WORD_BOUNDARY} $B {WORD_BOUNDARY}",
        special_tokens=[(WORD_BOUNDARY, 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        model_max_length=model_max_length)
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_ngram_text_encoder(out_dir: str | os.PathLike, texts: Iterable[str], hidden_size: int = 128,
                             num_buckets: int = 2**17, max_ngram: int = 3, seed: int = 0) -> str:
    """Save the character n-gram text encoder (random embeddings, IDF of ``texts``) and its tokenizer in
    ``out_dir``; returns the folder (``AutoModel`` / ``AutoTokenizer.from_pretrained`` load it)."""
    import torch

    from .configuration_ngram import MultiStillNgramConfig
    from .modeling_ngram import MultiStillNgramEncoder

    texts = list(texts)
    tokenizer = train_char_tokenizer(texts, out_dir)
    config = MultiStillNgramConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_buckets=num_buckets,
                                   max_ngram=max_ngram, pad_token_id=tokenizer.pad_token_id,
                                   boundary_token_id=tokenizer.convert_tokens_to_ids(WORD_BOUNDARY))
    torch.manual_seed(seed)
    encoder = MultiStillNgramEncoder(config)
    batch = tokenizer([clean_transcript(t) for t in texts], padding=True, return_tensors="pt")
    encoder.fit_idf(batch["input_ids"], batch["attention_mask"])
    encoder.eval().save_pretrained(str(out_dir))
    return str(out_dir)


#: Audio encoders :func:`build_tiny_encoders` can build (``audio=``).
TINY_AUDIO_ENCODERS: tuple[str, ...] = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
#: Text encoders :func:`build_tiny_encoders` can build (``text=``).
TINY_TEXT_ENCODERS: tuple[str, ...] = ("electra", "bert", "xlm-roberta")


def _tiny_audio_config(kind: str, hidden_size: int, layers: int):
    """A tiny random audio encoder config of ``kind`` (see :data:`TINY_AUDIO_ENCODERS`)."""
    from transformers import AutoConfig

    if kind == "whisper":
        # Whisper geometry kept: 80 mel bins, 1500 positions = the 30 s window at 50 frames/s (320 samples/frame)
        return AutoConfig.for_model(
            "whisper", d_model=hidden_size, encoder_layers=layers, encoder_attention_heads=4,
            encoder_ffn_dim=2 * hidden_size, decoder_layers=1, decoder_attention_heads=4,
            decoder_ffn_dim=2 * hidden_size, num_mel_bins=80, max_source_positions=1500, max_target_positions=64,
            vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
            begin_suppress_tokens=None, suppress_tokens=None,
        )
    shared = {
        "hidden_size": hidden_size, "num_hidden_layers": layers, "num_attention_heads": 4,
        "intermediate_size": 2 * hidden_size, "conv_dim": (32, 32, 32),
        "conv_kernel": (10, 15, 9),  # receptive field 10 + 14*5 + 8*40 = 400 samples (25 ms), as the real model
        "conv_stride": (5, 8, 8),  # total stride 320 samples = 20 ms at 16 kHz (50 frames/s)
        "conv_bias": True, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "vocab_size": 32,
        "layer_norm_eps": 1e-5,
    }
    if kind in ("wav2vec2", "hubert", "wavlm"):  # layer-normalised conv features: padding-invariant
        shared.update(feat_extract_norm="layer", do_stable_layer_norm=True)
    if kind == "wavlm":
        shared.update(num_buckets=32, max_bucket_distance=80)
    if kind == "data2vec-audio":
        shared.update(num_conv_pos_embeddings=5, conv_pos_kernel_size=5)
    return AutoConfig.for_model(kind, **shared)


def _tiny_text_config(kind: str, hidden_size: int, layers: int, vocab_size: int, pad_token_id: int):
    """A tiny random text encoder config of ``kind`` (see :data:`TINY_TEXT_ENCODERS`)."""
    from transformers import AutoConfig

    shared = {
        "vocab_size": vocab_size, "hidden_size": hidden_size, "num_hidden_layers": layers, "num_attention_heads": 4,
        "intermediate_size": 2 * hidden_size, "max_position_embeddings": 256, "pad_token_id": pad_token_id,
    }
    if kind == "electra":
        shared["embedding_size"] = hidden_size
    if kind == "xlm-roberta":  # positions start after the padding index
        shared.update(max_position_embeddings=256 + pad_token_id + 1, type_vocab_size=1)
    return AutoConfig.for_model(kind, **shared)


def build_tiny_encoders(
    out_dir: str | os.PathLike,
    texts: Iterable[str] | None = None,
    audio_layers: int = 2,
    text_layers: int = 2,
    audio_hidden_size: int = 64,
    text_hidden_size: int = 32,
    vocab_size: int = 1000,
    seed: int = 0,
    audio: str = "wav2vec2",
    text: str = "electra",
) -> dict[str, str]:
    """Save a tiny random audio encoder (``out_dir/<audio>``) and text encoder (``out_dir/<text>``).

    ``audio``: ``"wav2vec2"`` (default; saved as ``out_dir/audio``), ``"hubert"``, ``"wavlm"``,
    ``"data2vec-audio"`` — ``AutoModel`` folders with a ``Wav2Vec2FeatureExtractor`` that keep the real model's
    properties that matter (layer-normalised conv features where the type has the option, a total conv stride of
    320 samples = 50 frames/s, receptive field 400 samples) with few channels — or ``"whisper"``: a tiny
    ``WhisperForConditionalGeneration`` folder (as ``multistill convert-whisper`` writes; 80 mel bins, 30 s window,
    1500 positions) with its ``WhisperFeatureExtractor``. ``text``: ``"electra"`` (default; saved as
    ``out_dir/text``), ``"bert"`` or ``"xlm-roberta"``, with a WordPiece tokenizer learnt from ``texts``.
    Returns ``{"audio": path, "text": path}``; every folder loads with ``AutoModel`` / ``AutoFeatureExtractor``
    / ``AutoTokenizer.from_pretrained(path)``.
    """
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    if audio not in TINY_AUDIO_ENCODERS:
        raise ValueError(f"`audio` must be one of {TINY_AUDIO_ENCODERS}, got {audio!r}.")
    if text not in TINY_TEXT_ENCODERS:
        raise ValueError(f"`text` must be one of {TINY_TEXT_ENCODERS}, got {text!r}.")
    out = Path(out_dir)
    audio_dir = out / ("audio" if audio == "wav2vec2" else audio)
    text_dir = out / ("text" if text == "electra" else text)
    torch.manual_seed(seed)
    audio_config = _tiny_audio_config(audio, audio_hidden_size, audio_layers)
    if audio == "whisper":
        from transformers import WhisperForConditionalGeneration

        WhisperForConditionalGeneration(audio_config).eval().save_pretrained(str(audio_dir))
        WhisperFeatureExtractor(feature_size=audio_config.num_mel_bins).save_pretrained(str(audio_dir))
    else:
        AutoModel.from_config(audio_config).eval().save_pretrained(str(audio_dir))
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
        ).save_pretrained(str(audio_dir))

    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size, out_dir=text_dir)
    text_config = _tiny_text_config(text, text_hidden_size, text_layers, len(tokenizer), tokenizer.pad_token_id)
    AutoModel.from_config(text_config).eval().save_pretrained(str(text_dir))
    return {"audio": str(audio_dir), "text": str(text_dir)}


#: Fusion-head sizes used with the tiny encoders (the paper uses 768 / 8 / 3072 / 512).
TINY_FUSION: dict[str, Any] = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "fusion_intermediate_size": 64,
    "classifier_hidden_size": 16,
}
#: Fusion-head sizes by ``--fusion_size`` name (``paper``: the config's defaults, 768 / 8 / 3072 / 512; ``linear``:
#: ``small`` with a linear classifier and no dropout, the recipe's: the L2 penalty regularises it, and dropout noise
#: on the pooled vectors cost 7-14 points of macro-F1 to the context model in the development prototypes).
FUSION_SIZES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {"hidden_size": 128, "num_attention_heads": 4, "fusion_intermediate_size": 256,
              "classifier_hidden_size": 128},
    "linear": {"hidden_size": 128, "num_attention_heads": 4, "fusion_intermediate_size": 256,
               "classifier_hidden_size": 0, "classifier_dropout": 0.0},
    "tiny": TINY_FUSION,
}
#: Sizes of the light student's fbank front end over the tiny encoders (flat keys of ``from_preset``).
TINY_FBANK: dict[str, Any] = {"num_mel_bins": 40, "fbank_conv_channels": 32}


def tiny_backbones(
    out_dir: str | os.PathLike | None = None,
    preset: str = "teacher",
    encoders: dict[str, str] | None = None,
    texts: Iterable[str] | None = None,
    seed: int = 0,
    audio: str = "wav2vec2",
    text: str = "electra",
    **config_overrides: Any,
):
    """Build ``(model, processor)`` for ``preset`` from tiny offline encoders.

    ``encoders`` (``{"audio": path, "text": path}`` from :func:`build_tiny_encoders`) is built under
    ``out_dir`` when not given, with the ``audio`` / ``text`` encoder types (e.g. ``audio="whisper"`` for a
    Whisper-encoder model). ``config_overrides`` go to ``MultiStillConfig.from_preset`` (e.g.
    ``audio_layers=1``, ``fbank_position_embedding="conv"``, ``freeze_text_encoder=False``). The fusion head
    uses :data:`TINY_FUSION` sizes (and a light student's fbank front end :data:`TINY_FBANK`) unless
    overridden. The model is in eval mode.
    """
    import torch
    from transformers import AutoConfig

    from .configuration_multistill import audio_encoder_input_name
    from .modeling_multistill import MultiStillForEmotionClassification
    from .processing_multistill import MultiStillProcessor

    if encoders is None:
        if out_dir is None:
            raise ValueError("Pass `out_dir` (where to build the tiny encoders) or prebuilt `encoders`.")
        encoders = build_tiny_encoders(out_dir, texts=texts, seed=seed, audio=audio, text=text)
    params = dict(TINY_FUSION)
    waveform_audio = audio_encoder_input_name(AutoConfig.from_pretrained(encoders["audio"])) == "input_values"
    if preset == "light_student" and waveform_audio:
        params.update(TINY_FBANK)
    params.update(config_overrides)
    torch.manual_seed(seed)
    model = MultiStillForEmotionClassification.from_encoders(
        audio_encoder=encoders["audio"], text_encoder=encoders["text"], preset=preset, local_files_only=True,
        **params,
    )
    model.eval()
    processor = MultiStillProcessor.from_encoders(encoders["audio"], encoders["text"], config=model.config)
    return model, processor


__all__ = [
    "DEFAULT_TEXTS",
    "FUSION_SIZES",
    "TINY_AUDIO_ENCODERS",
    "TINY_FBANK",
    "TINY_FUSION",
    "TINY_TEXT_ENCODERS",
    "WORD_BOUNDARY",
    "build_ngram_text_encoder",
    "build_tiny_encoders",
    "tiny_backbones",
    "train_char_tokenizer",
    "train_wordpiece_tokenizer",
]
