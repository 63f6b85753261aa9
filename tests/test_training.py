"""Training machinery: feature caches, the feature plan (every preset x KD x online x hidden x cache), the
collator, the trainer's loss, teacher logits and reports."""

from __future__ import annotations

import copy
import inspect
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import DatasetDict

from multistill.arguments import UsageError
from multistill.training import (
    NON_MODEL_KEYS,
    TARGET_KEYS,
    TEACHER_INPUTS,
    TEACHER_LOGITS,
    DistillationSettings,
    EncoderFeatureCache,
    FeaturePlan,
    MultiStillCollator,
    MultiStillTrainer,
    add_teacher_logits,
    content_keys,
    distillation_loss,
    frozen_modalities,
    input_modality,
    l2_term,
    model_inputs,
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


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built_teacher(tmp_path_factory):
    """A tiny teacher and its processor as train.py builds them (from encoder folders)."""
    from multistill.offline import tiny_backbones

    return tiny_backbones(tmp_path_factory.mktemp("tiny"), preset="teacher")


@pytest.fixture(scope="module")
def tiny_teacher(built_teacher, tmp_path_factory):
    """The same teacher saved and loaded back, as distill.py sees it (its saved processor files differ)."""
    from multistill import MultiStillForEmotionClassification, MultiStillProcessor

    model, processor = built_teacher
    folder = tmp_path_factory.mktemp("tiny_teacher")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return MultiStillForEmotionClassification.from_pretrained(folder).eval(), MultiStillProcessor.from_pretrained(folder)


@pytest.fixture(scope="module")
def rows_dataset(synthetic_root):
    """16 decoded synthetic utterances with the builder's features."""
    from loading_scripts.kemdy import Kemdy

    builder = Kemdy(config_name="all", data_dir=str(synthetic_root), cache_dir=str(synthetic_root / "_cache"),
                    sessions=[1])
    builder.download_and_prepare()
    return builder.as_dataset("train").select(range(16))


@pytest.fixture(scope="module")
def small_splits(rows_dataset):
    return DatasetDict(train=rows_dataset.select(range(10)), validation=rows_dataset.select(range(10, 13)),
                       test=rows_dataset.select(range(13, 16)))


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


def _student(preset: str, teacher):
    from multistill import MultiStillForEmotionClassification
    from multistill.configuration_multistill import TEACHER_SHARED_FIELDS

    if preset == "light_student":
        return MultiStillForEmotionClassification.light_student_from_teacher(teacher)
    shared = {key: getattr(teacher.config, key) for key in TEACHER_SHARED_FIELDS}
    return MultiStillForEmotionClassification.from_encoders(copy.deepcopy(teacher.multistill.audio_encoder),
                                                            copy.deepcopy(teacher.multistill.text_encoder),
                                                            preset=preset, **shared)


# ---------------------------------------------------------------------------------------------- caches


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
        student = _student(preset, teacher)
        plan = FeaturePlan.decide(student.config, teacher.config, **settings)
        with EncoderCalls(teacher, student) as calls:
            data = plan.prepare(small_splits, student, processor, teacher, processor, cache_dir=tmp_path / "cache")
        assert calls.count == 0, preset
        assert sum(data.encoded.values()) == 0


# ---------------------------------------------------------------------------------------------- the plan

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
    student = teacher if preset == "teacher" else _student(preset, teacher)
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


def test_the_trainer_passes_only_model_inputs(small_splits, tiny_teacher, tmp_path):
    """``emotion`` and distillation targets never reach ``forward`` (which will reject unknown arguments)."""
    from transformers import TrainingArguments

    teacher, processor = tiny_teacher
    student = _student("multimodal_student", teacher)
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


def test_teacher_logits_column_holds_the_teachers_outputs(rows_dataset, tiny_teacher):
    model, processor = tiny_teacher
    collator = MultiStillCollator(processor, raw_modalities=("audio", "text"))
    with_logits = add_teacher_logits(rows_dataset, model, collator, batch_size=5)
    assert TEACHER_LOGITS in with_logits.column_names
    rows = [rows_dataset[i] for i in range(2)]
    with torch.inference_mode():
        expected = model(**{k: v for k, v in model_inputs(collator(rows)).items() if k != "labels"}).logits
    np.testing.assert_allclose(np.asarray(with_logits[:2][TEACHER_LOGITS]), expected.numpy(), atol=1e-4)


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


def test_l2_penalty_adds_sklearns_scaled_sum_of_squares(tmp_path, tiny_teacher):
    """``--l2_penalty C`` adds ``C * sum(w^2) / (2 n)`` in training only (n: training rows), as scikit-learn's
    LogisticRegression(C=1/C) penalises; every trainable parameter but the biases is penalised."""
    from datasets import Dataset

    from multistill.arguments import MultiStillTrainingArguments

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
    from multistill.arguments import MultiStillTrainingArguments
    from multistill.training import kd_loss, weighted_cross_entropy

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
