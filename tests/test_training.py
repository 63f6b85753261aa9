"""Training machinery: distillation loss, collator, cached encoder features, teacher logits, reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from multistill.training import (
    AUDIO_FEATURES,
    TEACHER_LOGITS,
    TEXT_FEATURES,
    DistillationTrainer,
    MultiStillCollator,
    add_encoder_features,
    add_teacher_logits,
    distillation_loss,
    save_confusion_matrix,
    save_training_curves,
)


def test_distillation_loss_is_hintons_mixture():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 7), torch.randn(4, 7)
    votes = torch.softmax(torch.randn(4, 7), -1)
    ce = -(votes * F.log_softmax(student, -1)).sum(-1).mean()
    temperature = 3.0
    p_teacher = F.softmax(teacher / temperature, -1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / temperature, -1))).sum(-1).mean() * temperature**2
    loss, kd, ce_term = distillation_loss(student, teacher, votes, alpha=0.3, temperature=temperature)
    assert ce_term == pytest.approx(ce.item(), rel=1e-5)
    assert kd == pytest.approx(kl.item(), rel=1e-5)
    assert loss == pytest.approx(0.3 * kl.item() + 0.7 * ce.item(), rel=1e-5)
    # alpha = 0 is the plain soft-label cross-entropy; the KD term vanishes when student == teacher.
    assert distillation_loss(student, teacher, votes, 0.0, 2.0)[0] == pytest.approx(ce.item(), rel=1e-5)
    assert distillation_loss(teacher, teacher, votes, 1.0, 2.0)[0].item() == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    from multistill.offline import tiny_backbones

    return tiny_backbones(tmp_path_factory.mktemp("tiny"), preset="teacher")


@pytest.fixture(scope="module")
def rows_dataset(synthetic_root):
    """16 decoded synthetic utterances with the builder's features."""
    from loading_scripts.kemdy import Kemdy

    builder = Kemdy(config_name="all", data_dir=str(synthetic_root), cache_dir=str(synthetic_root / "_cache"),
                    sessions=[1])
    builder.download_and_prepare()
    return builder.as_dataset("train").select(range(16))


def test_cached_features_match_the_encoders_and_are_reused(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    first = add_encoder_features(rows_dataset, model, processor, batch_size=4)
    again = add_encoder_features(rows_dataset, model, processor, batch_size=4)
    assert again._fingerprint == first._fingerprint
    assert [f["filename"] for f in again.cache_files] == [f["filename"] for f in first.cache_files]
    row = first[0]
    inputs = processor(audio=row["audio"], text=row["text"], return_tensors="pt")
    with torch.inference_mode():
        audio, audio_mask = model.encode_audio(inputs["input_values"], inputs["attention_mask"])
        text, text_mask = model.encode_text(inputs["input_ids"], inputs["text_attention_mask"])
    cached_audio, cached_text = np.asarray(row[AUDIO_FEATURES]), np.asarray(row[TEXT_FEATURES])
    assert cached_audio.shape == (int(audio_mask.sum()), model.config.audio_hidden_size)
    np.testing.assert_allclose(cached_audio, audio[0, : cached_audio.shape[0]].numpy(), atol=1e-4)
    np.testing.assert_allclose(cached_text, text[0, : int(text_mask.sum())].numpy(), atol=1e-4)


def test_changing_the_encoder_invalidates_the_feature_cache(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    before = add_encoder_features(rows_dataset, model, processor, modalities=["text"])
    with torch.no_grad():
        model.multistill.text_encoder.embeddings.word_embeddings.weight.add_(0.5)
    try:
        after = add_encoder_features(rows_dataset, model, processor, modalities=["text"])
    finally:
        with torch.no_grad():
            model.multistill.text_encoder.embeddings.word_embeddings.weight.sub_(0.5)
    assert after._fingerprint != before._fingerprint
    assert not np.allclose(np.asarray(after[0][TEXT_FEATURES]), np.asarray(before[0][TEXT_FEATURES]))
    assert AUDIO_FEATURES not in after.column_names


def test_collator_batches_features_raw_inputs_and_labels(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    featured = add_encoder_features(rows_dataset, model, processor)
    rows = [featured[i] for i in range(3)]
    cached = MultiStillCollator.for_modalities(processor, ["audio", "text"], cached=True)(rows)
    assert set(cached) == {"audio_hidden_states", "audio_hidden_mask", "text_hidden_states", "text_hidden_mask",
                           "labels", "emotion"}
    assert cached["labels"].shape == (3, 7)
    torch.testing.assert_close(cached["labels"].sum(-1), torch.ones(3))
    raw = MultiStillCollator.for_modalities(processor, ["text"], cached=False)(rows)
    assert {"input_ids", "text_attention_mask", "labels", "emotion"} <= set(raw) and "input_values" not in raw
    # Cached features and raw inputs give the same logits.
    with torch.inference_mode():
        from_cache = model(**{k: v for k, v in cached.items() if k not in ("labels", "emotion")}).logits
        full = MultiStillCollator.for_modalities(processor, ["audio", "text"], cached=False)(rows)
        from_raw = model(**{k: v for k, v in full.items() if k not in ("labels", "emotion")}).logits
    torch.testing.assert_close(from_cache, from_raw, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="raw_modalities and/or feature_modalities"):
        MultiStillCollator(processor, raw_modalities=(), feature_modalities=())


def test_teacher_logits_column_holds_the_teachers_outputs(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    collator = MultiStillCollator.for_modalities(processor, ["audio", "text"], cached=False)
    with_logits = add_teacher_logits(rows_dataset, model, collator, batch_size=5)
    assert TEACHER_LOGITS in with_logits.column_names
    rows = [rows_dataset[i] for i in range(2)]
    batch = collator(rows)
    with torch.inference_mode():
        expected = model(**{k: v for k, v in batch.items() if k not in collator.label_keys}).logits
    np.testing.assert_allclose(np.asarray(with_logits[:2][TEACHER_LOGITS]), expected.numpy(), atol=1e-4)


def test_distillation_trainer_validates_its_arguments(tmp_path, tiny_teacher):
    from transformers import TrainingArguments

    model, _ = tiny_teacher
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match="alpha"):
        DistillationTrainer(model=model, args=args, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillationTrainer(model=model, args=args, temperature=0)
    trainer = DistillationTrainer(model=model, args=args, alpha=0.5)
    model.train()
    batch = {"text_hidden_states": torch.randn(2, 3, model.config.text_hidden_size),
             "audio_hidden_states": torch.randn(2, 4, model.config.audio_hidden_size),
             "labels": torch.softmax(torch.randn(2, 7), -1)}
    try:
        with pytest.raises(ValueError, match="teacher logits"):
            trainer.compute_loss(model, batch)
    finally:
        model.eval()


def test_reports_are_written(tmp_path):
    matrix = np.diag([3, 1, 0, 2, 0, 0, 1])
    assert save_confusion_matrix(matrix, tmp_path / "cm.png").stat().st_size > 1000
    history = [{"epoch": 1.0, "loss": 1.9, "loss_kd": 0.5, "loss_ce": 1.8},
               {"epoch": 1.0, "eval_loss": 1.8, "eval_macro_f1": 0.2, "eval_accuracy": 0.3}]
    assert save_training_curves(history, tmp_path / "curves.png").stat().st_size > 1000


def test_hidden_state_loss_resamples_the_teacher_to_the_student_rate():
    from multistill.training import hidden_state_loss

    teacher = torch.arange(8, dtype=torch.float32).repeat(2, 1)[..., None].repeat(1, 1, 3)  # [2, 8, 3]: 0..7
    teacher_mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    # A student at half the frame rate that equals the teacher resampled to its length: zero loss.
    student = torch.zeros(2, 4, 3)
    student[0] = torch.nn.functional.interpolate(teacher[0].T[None], size=4, mode="linear")[0].T
    student[1, :3] = torch.nn.functional.interpolate(teacher[1, :6].T[None], size=3, mode="linear")[0].T
    student_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    assert hidden_state_loss(student, student_mask, teacher, teacher_mask).item() == pytest.approx(0.0, abs=1e-6)
    student[1, 3] = 100.0  # padding does not count
    assert hidden_state_loss(student, student_mask, teacher, teacher_mask).item() == pytest.approx(0.0, abs=1e-6)
    assert hidden_state_loss(student + 1, student_mask, teacher, teacher_mask).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="hidden sizes differ"):
        hidden_state_loss(torch.zeros(1, 2, 4), torch.ones(1, 2), teacher[:1], teacher_mask[:1])
