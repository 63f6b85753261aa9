"""The trainer and its losses (distillation, hidden states, L2, class weights, training targets) and the
reports of a run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _fixtures_training import student_of

from multistill.training.arguments import UsageError
from multistill.training.features import NON_MODEL_KEYS, TEACHER_LOGITS, FeaturePlan
from multistill.training.trainer import (
    DistillationSettings,
    MultiStillTrainer,
    distillation_loss,
    l2_term,
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


def test_the_trainer_passes_only_model_inputs(small_splits, tiny_teacher, tmp_path):
    """``emotion`` and distillation targets never reach ``forward`` (which will reject unknown arguments)."""
    from transformers import TrainingArguments

    teacher, processor = tiny_teacher
    student = student_of("multimodal_student", teacher)
    data = FeaturePlan.decide(student.config, teacher.config, alpha=0.5).prepare(
        small_splits, student, processor, teacher, processor, cache_dir=tmp_path)
    seen = []
    original = student.forward

    def forward(**kwargs):
        seen.append(set(kwargs))
        return original(**kwargs)

    student.forward = forward
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = MultiStillTrainer(student, args, data_collator=data.collator, distillation=DistillationSettings(0.5))
    batch = data.collator([data.splits["train"][i] for i in range(4)])
    assert {"emotion", TEACHER_LOGITS} <= set(batch)
    student.train()
    trainer.compute_loss(student, batch)
    student.eval()
    trainer.compute_loss(student, data.collator([data.splits["test"][i] for i in range(2)]), return_outputs=True)
    assert seen and all(not keys & set(NON_MODEL_KEYS) for keys in seen)
    assert all("labels" in keys for keys in seen)


def test_distillation_settings_and_trainer_validate(tmp_path, tiny_teacher):
    from transformers import TrainingArguments

    model, _ = tiny_teacher
    with pytest.raises(ValueError, match="alpha"):
        DistillationSettings(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillationSettings(temperature=0)
    with pytest.raises(ValueError, match="hidden_weight"):
        DistillationSettings(hidden_weight=-1)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match="distillation settings"):
        MultiStillTrainer(model, args, teacher=model)
    trainer = MultiStillTrainer(model, args, distillation=DistillationSettings(alpha=0.5))
    model.train()
    batch = {"text_hidden_states": torch.randn(2, 3, model.config.text_hidden_size),
             "audio_hidden_states": torch.randn(2, 4, model.config.audio_hidden_size),
             "labels": torch.softmax(torch.randn(2, 7), -1)}
    try:
        with pytest.raises(ValueError, match="teacher logits"):
            trainer.compute_loss(model, batch)
    finally:
        model.eval()
    with pytest.raises(ValueError, match="need a teacher"):
        FeaturePlan.decide(model.config, alpha=0.5)


def test_reports_are_written(tmp_path):
    matrix = np.diag([3, 1, 0, 2, 0, 0, 1])
    assert save_confusion_matrix(matrix, tmp_path / "cm.png").stat().st_size > 1000
    history = [{"epoch": 1.0, "loss": 1.9, "loss_kd": 0.5, "loss_ce": 1.8},
               {"epoch": 1.0, "eval_loss": 1.8, "eval_macro_f1": 0.2, "eval_accuracy": 0.3}]
    assert save_training_curves(history, tmp_path / "curves.png").stat().st_size > 1000


def test_hidden_state_loss_resamples_the_teacher_to_the_student_rate():
    from multistill.training.trainer import hidden_state_loss

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


def test_l2_penalty_adds_sklearns_scaled_sum_of_squares(tmp_path, tiny_teacher):
    """``--l2_penalty C`` adds ``C * sum(w^2) / (2 n)`` in training only (n: training rows), as scikit-learn's
    LogisticRegression(C=1/C) penalises; every trainable parameter but the biases is penalised."""
    from datasets import Dataset

    from multistill.training.arguments import MultiStillTrainingArguments

    model = copy.deepcopy(tiny_teacher[0]).requires_grad_(True)  # other tests use the fixture as a frozen teacher
    batch = {"text_hidden_states": torch.randn(2, 3, model.config.text_hidden_size),
             "audio_hidden_states": torch.randn(2, 4, model.config.audio_hidden_size),
             "labels": torch.softmax(torch.randn(2, 7), -1)}
    rows = Dataset.from_dict({"x": list(range(40))})

    def loss(penalty: float, training: bool) -> torch.Tensor:
        args = MultiStillTrainingArguments(output_dir=str(tmp_path / str(penalty)), use_cpu=True, l2_penalty=penalty,
                                           eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
        trainer = MultiStillTrainer(model, args, train_dataset=rows)
        model.train(training)
        try:
            torch.manual_seed(0)
            return trainer.compute_loss(model, batch).detach()
        finally:
            model.eval()

    squares = l2_term(model)
    named = dict(model.named_parameters())
    penalised = [n for n, p in named.items() if p.requires_grad and not n.endswith("bias")]
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert {n for n in trainable if named[n].dim() > 1} < set(penalised)  # 1-d scales too, not only matrices
    assert trainable - set(penalised) == {n for n in trainable if n.endswith("bias")} != set()
    assert torch.isclose(squares, sum(named[n].pow(2).sum() for n in penalised))
    torch.testing.assert_close(loss(2.0, True) - loss(0.0, True), 2.0 * squares / (2 * 40), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss(2.0, False), loss(0.0, False))  # evaluation losses stay comparable
    with pytest.raises(UsageError, match="--l2_penalty must be >= 0"):
        MultiStillTrainingArguments(output_dir=str(tmp_path / "bad"), use_cpu=True, l2_penalty=float("nan"))


def test_training_targets_and_class_weights_reach_every_loss(tmp_path, tiny_teacher):
    """``--training_targets majority`` trains on the majority emotion (the votes stay the evaluation targets), and
    the class weights weigh the cross-entropy term of a distillation loss too."""
    from multistill.training.arguments import MultiStillTrainingArguments
    from multistill.training.trainer import kd_loss, weighted_cross_entropy

    model = copy.deepcopy(tiny_teacher[0])
    for module in model.modules():  # without dropout, train() changes only the targets
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    torch.manual_seed(1)
    votes = torch.softmax(3 * torch.randn(4, 7), -1)
    emotion = torch.tensor([0, 3, 3, 6])
    batch = {"text_hidden_states": torch.randn(4, 3, model.config.text_hidden_size),
             "audio_hidden_states": torch.randn(4, 4, model.config.audio_hidden_size),
             "labels": votes, "emotion": emotion, TEACHER_LOGITS: torch.randn(4, 7)}
    weights = torch.tensor([0.5, 1.0, 1.0, 2.0, 1.0, 1.0, 3.0])
    with torch.no_grad():
        logits = model(**{k: batch[k] for k in ("text_hidden_states", "audio_hidden_states")}).logits

    def loss(targets: str, training: bool = True, distillation: DistillationSettings | None = None) -> torch.Tensor:
        args = MultiStillTrainingArguments(output_dir=str(tmp_path / targets), use_cpu=True, eval_strategy="no",
                                           save_strategy="no", load_best_model_at_end=False, training_targets=targets)
        trainer = MultiStillTrainer(model, args, class_weights=weights, distillation=distillation)
        model.train(training)
        try:
            with torch.no_grad():
                return trainer.compute_loss(model, dict(batch))
        finally:
            model.eval()

    one_hot = F.one_hot(emotion, 7).float()
    torch.testing.assert_close(loss("majority"), weighted_cross_entropy(logits, one_hot, weights, emotion))
    torch.testing.assert_close(loss("votes"), weighted_cross_entropy(logits, votes, weights, emotion))
    torch.testing.assert_close(loss("majority", training=False), loss("votes", training=False))
    kd = loss("votes", distillation=DistillationSettings(alpha=0.5, temperature=2.0))
    expected = 0.5 * kd_loss(logits, batch[TEACHER_LOGITS], 2.0) + 0.5 * weighted_cross_entropy(
        logits, votes, weights, emotion)
    torch.testing.assert_close(kd, expected)
    with pytest.raises(UsageError, match="--training_targets must be 'votes' or 'majority'"):
        MultiStillTrainingArguments(output_dir=str(tmp_path / "bad"), use_cpu=True, training_targets="soft")
