"""The models learn (issue 10.4): beyond shapes and plumbing, on a small fixed task every preset's training
loss falls and its held-out accuracy rises clearly above chance.

The task: the embedded synthetic corpus at 256 utterances (8 sessions per corpus, 4 utterances per speaker
and dialogue), whose audio and transcripts carry emotion cues, with tiny random encoders, split with the
paper's random 80/20 split (seed 123). Frozen encoders are cached once for the four paper presets; the light
student trains its own encoders on raw inputs. Each model starts at chance (a constant prediction has an
unweighted accuracy of 1/7) and must reach an unweighted accuracy of at least 0.35 on the held-out 20 %.
"""

from __future__ import annotations

import numpy as np
import pytest

#: preset -> (epochs, learning rate, warm-up fraction): enough for the loss to fall clearly, on one CPU thread.
#: The light student trains its random encoders too: it needs a gentler start.
SCHEDULES = {
    "teacher": (10, 1e-2, 0.0),
    "multimodal_student": (10, 1e-2, 0.0),
    "text_student": (10, 1e-2, 0.0),
    "audio_student": (10, 1e-2, 0.0),
    "light_student": (10, 3e-3, 0.1),
}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from multistill.offline import build_tiny_encoders
    from multistill.training.data import load_kemdy
    from multistill.training.splits import make_splits

    cache = tmp_path_factory.mktemp("learning")
    dataset = load_kemdy("synthetic", cache_dir=cache, synthetic_size=(8, 4))
    splits = make_splits(dataset, "random", seed=123)
    encoders = build_tiny_encoders(cache / "encoders", texts=list(splits["train"]["text"]), seed=0)
    return splits, encoders, cache


@pytest.mark.parametrize("preset", list(SCHEDULES))
def test_each_preset_learns(preset, task, tmp_path):
    from transformers import TrainingArguments

    from multistill.offline import tiny_backbones
    from multistill.training.features import FeaturePlan
    from multistill.training.trainer import MultiStillTrainer, build_compute_metrics

    splits, encoders, cache = task
    epochs, learning_rate, warmup = SCHEDULES[preset]
    model, processor = tiny_backbones(encoders=encoders, preset=preset, seed=0)
    plan = FeaturePlan.decide(model.config)
    assert plan.cached == (() if preset == "light_student" else tuple(model.config.modalities))
    data = plan.prepare(splits, model, processor, cache_dir=cache / "features")
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", seed=0, learning_rate=learning_rate,
        num_train_epochs=epochs, warmup_steps=warmup, per_device_train_batch_size=8, per_device_eval_batch_size=64,
        save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
        label_names=["labels", "emotion"], remove_unused_columns=False,
    )
    trainer = MultiStillTrainer(model, args, train_dataset=data.splits["train"], data_collator=data.collator,
                                compute_metrics=build_compute_metrics())
    train_before = trainer.evaluate(data.splits["train"], metric_key_prefix="train")
    test_before = trainer.evaluate(data.splits["test"], metric_key_prefix="test")
    trainer.train()
    train_after = trainer.evaluate(data.splits["train"], metric_key_prefix="train")
    test_after = trainer.evaluate(data.splits["test"], metric_key_prefix="test")

    print(f"{preset}: training loss {train_before['train_loss']:.3f} -> {train_after['train_loss']:.3f}, held-out "
          f"UA {test_before['test_unweighted_accuracy']:.3f} -> {test_after['test_unweighted_accuracy']:.3f}, "
          f"accuracy {test_before['test_accuracy']:.3f} -> {test_after['test_accuracy']:.3f}")
    assert train_after["train_loss"] < 0.85 * train_before["train_loss"], (train_before, train_after)
    majority = np.bincount(splits["test"]["emotion"], minlength=7).max() / len(splits["test"])
    assert test_after["test_unweighted_accuracy"] >= 0.35, test_after
    assert test_after["test_unweighted_accuracy"] >= test_before["test_unweighted_accuracy"] + 0.15
    assert test_after["test_accuracy"] >= majority + 0.1, (majority, test_after)
