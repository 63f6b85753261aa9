"""The character n-gram text encoder and its tokenizer (multistill.modeling_ngram, offline.train_char_tokenizer)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from multistill.configuration_ngram import MultiStillNgramConfig
from multistill.modeling_ngram import MultiStillNgramEncoder, ngram_buckets
from multistill.offline import WORD_BOUNDARY, build_ngram_text_encoder, train_char_tokenizer

TEXTS = ["안녕 하세요", "진짜 화났어", "오늘 기분 좋아요", "b/ 밤에 무서웠어요"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> str:
    return build_ngram_text_encoder(tmp_path_factory.mktemp("ngram"), TEXTS, hidden_size=16, num_buckets=4096)


def test_char_tokenizer_marks_words_and_loads_with_auto_tokenizer(tmp_path):
    tokenizer = train_char_tokenizer(TEXTS, tmp_path)
    ids = tokenizer("안녕 하세요")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == [WORD_BOUNDARY, "안", "녕", WORD_BOUNDARY, "하", "세", "요", WORD_BOUNDARY]
    assert AutoTokenizer.from_pretrained(tmp_path)("안녕 하세요")["input_ids"] == ids
    assert tokenizer.convert_ids_to_tokens(tokenizer("뷁")["input_ids"])[1] == "[UNK]"  # unseen character
    with pytest.raises(ValueError, match="no non-empty transcript"):
        train_char_tokenizer(["", "  "])


def test_ngrams_never_span_two_words_and_ignore_padding():
    config = MultiStillNgramConfig(vocab_size=10, num_buckets=1000, boundary_token_id=2, pad_token_id=0)
    ids = torch.tensor([[2, 5, 6, 2, 7, 2, 0, 0]])  # "_ab_c_" + padding
    mask = (ids != 0).long()
    buckets = ngram_buckets(ids, mask, config)
    counts = (buckets > 0).sum(0).sum(0).tolist()  # per order: unigrams, bigrams, trigrams
    assert counts == [3, 5, 3]  # a b c | _a ab b_ _c c_ | _ab ab_ _c_
    padded = ngram_buckets(ids[:, :6], mask[:, :6], config)
    assert torch.equal(padded, buckets[:, :6]) and not buckets[:, 6:].any()


def test_encoder_mean_is_the_normalised_idf_bag(encoder_dir):
    encoder = AutoModel.from_pretrained(encoder_dir).eval()
    assert isinstance(encoder, MultiStillNgramEncoder)
    assert encoder.idf[1:].max() > encoder.idf[1:].min() > 0  # learnt from the transcripts, saved and reloaded
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    batch = tokenizer(["안녕 하세요", "진짜"], padding=True, return_tensors="pt")
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    buckets = ngram_buckets(batch["input_ids"], batch["attention_mask"], encoder.config).flatten(1)
    weights = encoder.idf[buckets] * (buckets > 0)
    expected = (encoder.embeddings(buckets) * weights.unsqueeze(-1)).sum(1) / weights.norm(dim=1, keepdim=True)
    torch.testing.assert_close(mean, expected)
    single = encoder(**tokenizer(["진짜"], return_tensors="pt")).last_hidden_state.mean(1)
    torch.testing.assert_close(single[0], mean[1])  # padding never changes the bag


@pytest.mark.parametrize("field, value", [("num_buckets", 2**30), ("hidden_size", 0), ("max_ngram", 9),
                                          ("boundary_token_id", 99)])
def test_config_refuses_values_that_cannot_be_right(field, value):
    with pytest.raises(ValueError, match=field):
        MultiStillNgramConfig(vocab_size=50, **{field: value})
