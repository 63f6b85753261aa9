"""The character n-gram text encoder and its tokenizer (multistill.modeling_ngram, offline.train_char_tokenizer)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from multistill.configuration_ngram import MultiStillNgramConfig
from multistill.modeling_ngram import MultiStillNgramEncoder, bag_norms, ngram_buckets
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


@pytest.fixture(scope="module")
def sketch_dir(tmp_path_factory) -> str:
    from multistill.offline import NGRAM_SKETCH

    return build_ngram_text_encoder(tmp_path_factory.mktemp("sketch"), TEXTS, **NGRAM_SKETCH)


def _pooled(encoder: MultiStillNgramEncoder, tokenizer, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


@pytest.mark.parametrize("folder", ["encoder_dir", "sketch_dir"])
def test_repeating_a_transcript_leaves_its_bag_unchanged(folder, request):
    """Like a TF-IDF row, the bag is normalised after repeated n-grams add up: "a a" pools to the bag of "a"."""
    folder = request.getfixturevalue(folder)
    encoder, tokenizer = AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    once, twice = _pooled(encoder, tokenizer, ["진짜 화났어", "진짜 화났어 진짜 화났어"])
    torch.testing.assert_close(once, twice)


def test_bag_norms_add_repeated_ngrams_before_squaring():
    buckets = torch.tensor([[[3, 0], [3, 5]], [[0, 0], [0, 0]]])
    weights = torch.tensor([[[2.0, 0.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(bag_norms(buckets, weights), torch.tensor([17.0**0.5, 0.0]))


def test_sketched_encoder_keeps_tfidf_inner_products_and_learns_nothing(sketch_dir, encoder_dir):
    """The sketch has no parameters, is the same in every instance, and its pooled bags have the exact bags'
    inner products up to the sketch's noise (about 1/sqrt(2048) per pair)."""
    sketch = AutoModel.from_pretrained(sketch_dir).eval()
    assert not list(sketch.parameters()) and sketch.get_input_embeddings() is None
    assert sketch.dtype == torch.float32 and sketch.device.type == "cpu"
    tokenizer = AutoTokenizer.from_pretrained(sketch_dir)
    sketched = _pooled(sketch, tokenizer, TEXTS)
    rebuilt = MultiStillNgramEncoder(sketch.config).eval()  # the projection comes from the config, not the file
    rebuilt.idf.copy_(sketch.idf)
    torch.testing.assert_close(_pooled(rebuilt, tokenizer, TEXTS), sketched)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    buckets = ngram_buckets(batch["input_ids"], batch["attention_mask"], sketch.config).flatten(1)
    weights = sketch.idf[buckets] * (buckets > 0)
    exact = torch.zeros(len(TEXTS), sketch.config.num_buckets + 1).scatter_add_(1, buckets, weights)
    exact = exact / exact.norm(dim=1, keepdim=True)
    torch.testing.assert_close(sketched @ sketched.T, exact @ exact.T, atol=0.1, rtol=0)
    torch.testing.assert_close(sketched.norm(dim=1), torch.ones(len(TEXTS)), atol=0.1, rtol=0)


@pytest.mark.parametrize("field, value", [("num_buckets", 2**30), ("hidden_size", 0), ("max_ngram", 9),
                                          ("boundary_token_id", 99), ("sketch_nonzeros", 65),
                                          ("sketch_nonzeros", -1)])
def test_config_refuses_values_that_cannot_be_right(field, value):
    with pytest.raises(ValueError, match=field):
        MultiStillNgramConfig(vocab_size=50, **{field: value})
    with pytest.raises(ValueError, match="must not exceed `hidden_size`"):
        MultiStillNgramConfig(vocab_size=50, hidden_size=2, sketch_nonzeros=4)
