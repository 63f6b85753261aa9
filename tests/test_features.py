"""The feature plan (every preset x KD x online x hidden x cache), the collator and the teacher-logits column."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest
import torch
from _fixtures_training import student_of

from multistill.training.features import (
    NON_MODEL_KEYS,
    TARGET_KEYS,
    TEACHER_INPUTS,
    TEACHER_LOGITS,
    FeaturePlan,
    MultiStillCollator,
    add_teacher_logits,
    frozen_modalities,
    input_modality,
    model_inputs,
)
from multistill.training.trainer import DistillationSettings, MultiStillTrainer

PRESETS = ("teacher", "multimodal_student", "text_student", "audio_student", "light_student")


def _plan_cases():
    for preset, alpha, online, hidden, cache in itertools.product(PRESETS, (0.0, 0.5), (False, True), (0.0, 0.5),
                                                                  (True, False)):
        if preset == "teacher" and (alpha or online or hidden):
            continue  # train.py: no teacher
        yield preset, alpha, online, hidden, cache


@pytest.mark.parametrize(("preset", "alpha", "online", "hidden", "cache"), list(_plan_cases()))
def test_feature_plan_matrix(preset, alpha, online, hidden, cache, small_splits, tiny_teacher, tmp_path_factory):
    """Every preset x KD x online teacher x hidden-state loss x cache: what each split's batches carry,
    under which names, and that the trainer's loss runs on them (no training)."""
    from transformers import TrainingArguments

    teacher, processor = tiny_teacher
    student = teacher if preset == "teacher" else student_of(preset, teacher)
    distilling = preset != "teacher"
    decide = dict(cache_features=cache, alpha=alpha, hidden_weight=hidden, online_teacher=online)
    trainable = [m for m in student.config.modalities if m not in frozen_modalities(student.config)]
    if hidden and (not trainable or not (cache or online)):
        with pytest.raises(ValueError, match="nothing to match" if not trainable else "hidden states"):
            FeaturePlan.decide(student.config, teacher.config, **decide)
        return
    plan = (FeaturePlan.decide(student.config, teacher.config, **decide) if distilling
            else FeaturePlan.decide(student.config, cache_features=cache))
    cache_dir = tmp_path_factory.getbasetemp() / "plan_matrix_cache"
    data = plan.prepare(small_splits, student, processor, teacher if distilling else None,
                        processor if distilling else None, cache_dir=cache_dir)
    online_now = online and (alpha > 0 or hidden > 0)
    assert plan.online_teacher == online_now and plan.teacher_logits == (alpha > 0 and not online_now)
    assert set(plan.cached) == (set(student.config.modalities) - set(trainable) if cache else set())
    forward_args = set(inspect.signature(type(student).forward).parameters) - {"self", "kwargs"}
    args = TrainingArguments(output_dir=str(tmp_path_factory.mktemp("args")), use_cpu=True, report_to="none")
    trainer = MultiStillTrainer(student, args, data_collator=data.collator,
                                distillation=DistillationSettings(alpha, 2.0, hidden) if distilling else None,
                                teacher=teacher if plan.online_teacher else None)
    for name, split in data.splits.items():
        batch = data.collator([split[i] for i in range(3)])
        inputs = model_inputs(batch)
        assert set(inputs) <= forward_args, f"{name}: {set(inputs) - forward_args} are not model inputs"
        for modality in student.config.modalities:
            cached_key, raw_key = f"{modality}_hidden_states", "input_values" if modality == "audio" else "input_ids"
            assert (cached_key in inputs) == (modality in plan.cached) and (raw_key in inputs) != (
                modality in plan.cached), (name, modality)
        assert all(input_modality(k) in student.config.modalities for k in inputs if k != "labels"), name
        is_train = name == "train"
        assert (TEACHER_LOGITS in batch) == (is_train and plan.teacher_logits)
        assert any(k in batch for k in TARGET_KEYS) == (is_train and bool(plan.cached_targets))
        assert (TEACHER_INPUTS in batch) == (is_train and bool(plan.teacher_only))
        assert set(batch) - set(inputs) <= set(NON_MODEL_KEYS)
        student.train(is_train)
        loss = trainer.compute_loss(student, batch)
        assert torch.isfinite(loss)
    student.eval()


def test_cached_and_raw_inputs_give_the_same_logits(small_splits, tiny_teacher, tmp_path):
    teacher, processor = tiny_teacher
    batches = {}
    for cache in (True, False):
        data = FeaturePlan.decide(teacher.config, cache_features=cache).prepare(
            small_splits, teacher, processor, cache_dir=tmp_path)
        batches[cache] = data.collator([data.splits["test"][i] for i in range(3)])
    assert "audio_hidden_states" in batches[True] and "input_values" in batches[False]
    torch.testing.assert_close(batches[True]["labels"].sum(-1), torch.ones(3))
    with torch.inference_mode():
        logits = {cache: teacher(**{k: v for k, v in model_inputs(b).items() if k != "labels"}).logits
                  for cache, b in batches.items()}
    torch.testing.assert_close(logits[True], logits[False], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="raw_modalities and/or features"):
        MultiStillCollator(processor)


def test_history_rows_in_the_batch_are_not_encoded_twice(tiny_teacher):
    """A previous utterance that is also a row of the batch points at that row; only the others are appended,
    each once, so full-batch context training encodes every utterance once."""
    from multistill.training.features import HISTORY_SPEAKER, history_column

    _, processor = tiny_teacher
    texts = ["하나", "둘", "셋", "넷"]
    rows = [{"text": texts[i], history_column("text"): [texts[j] for j in history], HISTORY_SPEAKER: [1] * len(history)}
            for i, history in ((1, [0]), (2, [1, 0]), (3, [2, 1]))]  # utterance 0 is history only
    batch = MultiStillCollator(processor, raw_modalities=("text",))(rows)
    assert batch["history_index"].tolist() == [[3, -1], [0, 3], [1, 0]]
    assert batch["input_ids"].shape[0] == 4  # three rows + utterance 0, once
    alone = MultiStillCollator(processor, raw_modalities=("text",))([{"text": t} for t in ("둘", "셋", "넷", "하나")])
    torch.testing.assert_close(batch["input_ids"], alone["input_ids"])


def test_teacher_logits_column_holds_the_teachers_outputs(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    collator = MultiStillCollator(processor, raw_modalities=("audio", "text"))
    with_logits = add_teacher_logits(rows_dataset, model, collator, batch_size=5)
    assert TEACHER_LOGITS in with_logits.column_names
    rows = [rows_dataset[i] for i in range(2)]
    with torch.inference_mode():
        expected = model(**{k: v for k, v in model_inputs(collator(rows)).items() if k != "labels"}).logits
    np.testing.assert_allclose(np.asarray(with_logits[:2][TEACHER_LOGITS]), expected.numpy(), atol=1e-4)
