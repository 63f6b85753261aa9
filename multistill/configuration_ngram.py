"""Configuration of the character n-gram text encoder (a fastText-style embedding bag learnt from transcripts).

This file is shipped next to the weights on the Hub, so it imports nothing from ``multistill.*``.

About a thousand transcripts are too few to train a transformer text encoder from scratch, while a bag of
character n-grams (what TF-IDF + logistic regression reads) learns from them directly. The encoder hashes the
1- to ``max_ngram``-grams of a character-level tokenizer's ids into ``num_buckets`` embeddings, weighted by an
inverse document frequency computed from the training transcripts (see :class:`.modeling_ngram.MultiStillNgramEncoder`;
registered with the Auto classes by :mod:`.configuration_multistill` and :mod:`.modeling_multistill`).
"""

from __future__ import annotations

from transformers import PreTrainedConfig

#: Most buckets a config may ask for (2**22 x 128 floats is already 2 GiB): larger is a mistake, refused early.
MAX_BUCKETS = 2**22
MAX_HIDDEN_SIZE = 4096


class MultiStillNgramConfig(PreTrainedConfig):
    r"""Configuration of :class:`MultiStillNgramEncoder`.

    Args:
        vocab_size: size of the character tokenizer's vocabulary (ids ``0..vocab_size-1``; ``pad_token_id``
            marks padding).
        hidden_size: width of each n-gram embedding (and of the encoder output).
        num_buckets: hash buckets shared by all n-gram orders (collisions are rare below ~10 % occupancy).
        min_ngram / max_ngram: the n-gram orders read (character 1- to 3-grams by default, as the TF-IDF baseline).
        boundary_token_id: id of the word separator (space); n-grams never span two words (as scikit-learn's
            ``analyzer="char_wb"``), ``None`` lets them span.
        embedding_std: standard deviation of the initial embeddings.
    """

    model_type = "multistill_ngram"

    vocab_size: int = 2000
    hidden_size: int = 128
    num_buckets: int = 2**17
    min_ngram: int = 1
    max_ngram: int = 3
    pad_token_id: int | None = 0
    boundary_token_id: int | None = None
    embedding_std: float = 0.1
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs) -> None:
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        checks = {
            "vocab_size": (1, None), "hidden_size": (1, MAX_HIDDEN_SIZE), "num_buckets": (1, MAX_BUCKETS),
            "min_ngram": (1, 8), "max_ngram": (1, 8),
        }
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
                limit = f"between {low} and {high}" if high else f">= {low}"
                raise ValueError(f"`{name}` must be an integer {limit}, got {value!r}.")
        if self.min_ngram > self.max_ngram:
            raise ValueError(f"`min_ngram` ({self.min_ngram}) must not exceed `max_ngram` ({self.max_ngram}).")
        for name in ("pad_token_id", "boundary_token_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value < self.vocab_size):
                raise ValueError(f"`{name}` must be a token id below vocab_size ({self.vocab_size}), got {value!r}.")
        if not isinstance(self.embedding_std, (int, float)) or not self.embedding_std > 0:
            raise ValueError(f"`embedding_std` must be positive, got {self.embedding_std!r}.")



__all__ = ["MAX_BUCKETS", "MultiStillNgramConfig"]
