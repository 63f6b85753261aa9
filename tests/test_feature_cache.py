"""The encoder-feature cache: what it holds, what changes it, and that a student of a teacher encodes nothing
the teacher's run encoded."""

from __future__ import annotations

import numpy as np
import torch
from _fixtures_training import student_of

from multistill.training.feature_cache import EncoderFeatureCache, content_keys
from multistill.training.features import FeaturePlan


class EncoderCalls:
    """Counts the utterances every audio/text encoder module of some models runs on."""

    def __init__(self, *models):
        self.count = 0
        self.handles = []
        for model in models:
            for name in ("audio_encoder", "text_encoder"):
                encoder = getattr(model.multistill, name, None)
                if encoder is not None:
                    self.handles.append(encoder.register_forward_hook(self._hook))

    def _hook(self, module, args, kwargs_or_output, output=None):
        self.count += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_feature_cache_holds_the_encoders_outputs_and_encodes_each_utterance_once(rows_dataset, tiny_teacher,
                                                                                  tmp_path):
    model, processor = tiny_teacher
    cache = EncoderFeatureCache(tmp_path, model, processor, "audio", batch_size=4)
    keys = content_keys(rows_dataset, "audio")
    assert len(set(keys)) == len(rows_dataset)
    table, encoded = cache.encode(rows_dataset, keys, "test")
    assert encoded == 16 and len(table) == 16
    row = rows_dataset[0]
    inputs = processor(audio=row["audio"], text=row["text"], return_tensors="pt")
    with torch.inference_mode():
        audio, audio_mask = model.encode_audio(inputs["input_values"], inputs["attention_mask"])
    cached, mask = table.batch([keys[0]])
    assert int(mask.sum()) == int(audio_mask.sum())
    np.testing.assert_allclose(cached[0].numpy(), audio[0, : int(audio_mask.sum())].numpy(), atol=1e-4)
    # Any subset, in any order, from any split: nothing new to encode (another cache object, same folder).
    with EncoderCalls(model) as calls:
        again, encoded = EncoderFeatureCache(tmp_path, model, processor, "audio").encode(
            rows_dataset.select([5, 3, 1]), [keys[5], keys[3], keys[1]], "again")
    assert encoded == 0 and calls.count == 0 and len(again) == 16
    # Text: rows are keyed by the transcript, so repeated transcripts are encoded once.
    text_keys = content_keys(rows_dataset, "text")
    _, encoded = EncoderFeatureCache(tmp_path, model, processor, "text").encode(rows_dataset, text_keys, "text")
    assert encoded == len(set(text_keys)) == len(set(rows_dataset["text"]))


def test_changing_the_encoder_or_the_processor_changes_the_cache(rows_dataset, tiny_teacher, tmp_path):
    from multistill import MultiStillProcessor

    model, processor = tiny_teacher
    before = EncoderFeatureCache(tmp_path, model, processor, "text")
    keys = content_keys(rows_dataset, "text")
    old, _ = before.encode(rows_dataset, keys, "before")
    with torch.no_grad():
        model.multistill.text_encoder.embeddings.word_embeddings.weight.add_(0.5)
    try:
        after = EncoderFeatureCache(tmp_path, model, processor, "text")
        new, encoded = after.encode(rows_dataset, keys, "after")
    finally:
        with torch.no_grad():
            model.multistill.text_encoder.embeddings.word_embeddings.weight.sub_(0.5)
    assert after.folder != before.folder and encoded == len(set(keys))
    assert not np.allclose(new.batch(keys[:1])[0].numpy(), old.batch(keys[:1])[0].numpy())
    audio_settings = {name: getattr(processor, name) for name in ("max_audio_frames", "samples_per_frame",
                                                                   "min_audio_samples", "audio_window_samples")}
    shorter = MultiStillProcessor(processor.feature_extractor, processor.tokenizer, max_text_tokens=8, **audio_settings)
    assert EncoderFeatureCache(tmp_path, model, shorter, "text").folder != before.folder
    # The audio cache does not depend on text settings.
    assert (EncoderFeatureCache(tmp_path, model, shorter, "audio").folder
            == EncoderFeatureCache(tmp_path, model, processor, "audio").folder)


def test_a_student_of_the_teacher_encodes_nothing_the_teachers_run_encoded(small_splits, tmp_path):
    """Issue 14.2: the teacher's run (model and processor built from encoder folders, as train.py does)
    caches every split, then saves the teacher; each student of the saved teacher finds its features, the
    teacher's logits inputs and the teacher's hidden states in that cache (counted encoder calls: zero)."""
    from multistill import MultiStillForEmotionClassification, MultiStillProcessor
    from multistill.offline import tiny_backbones

    built, built_processor = tiny_backbones(tmp_path / "encoders", preset="teacher")
    with EncoderCalls(built) as calls:
        FeaturePlan.decide(built.config).prepare(small_splits, built, built_processor, cache_dir=tmp_path / "cache")
    assert calls.count > 0
    built.save_pretrained(tmp_path / "teacher")
    built_processor.save_pretrained(tmp_path / "teacher")  # after use: the tokenizer's call state is saved too
    teacher = MultiStillForEmotionClassification.from_pretrained(tmp_path / "teacher").eval()
    processor = MultiStillProcessor.from_pretrained(tmp_path / "teacher")
    for preset, settings in [("multimodal_student", {"alpha": 0.5}), ("text_student", {"alpha": 0.5}),
                             ("audio_student", {"alpha": 0.5}), ("light_student", {"alpha": 0.5, "hidden_weight": 1})]:
        student = student_of(preset, teacher)
        plan = FeaturePlan.decide(student.config, teacher.config, **settings)
        with EncoderCalls(teacher, student) as calls:
            data = plan.prepare(small_splits, student, processor, teacher, processor, cache_dir=tmp_path / "cache")
        assert calls.count == 0, preset
        assert sum(data.encoded.values()) == 0
