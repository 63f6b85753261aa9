#!/usr/bin/env python
"""Distil a trained Multi-Still teacher (from ``train.py``) into a student.

Examples::

    # the paper's multimodal student (one fusion layer, the teacher's frozen encoders)
    python distill.py --teacher_model outputs/teacher --preset multimodal_student \\
        --output_dir outputs/multimodal_student --use_cpu

    # the light student: 2+2 encoder layers taken from the teacher, fbank front end, all trained
    accelerate launch distill.py --teacher_model outputs/teacher --preset light_student \\
        --output_dir outputs/light_student

    # no-distillation ablation of the same student
    python distill.py --teacher_model outputs/teacher --preset text_student --alpha 0 --output_dir outputs/text_ce

Data arguments must describe the split the teacher was trained on: its ``run_info.json`` and
``data_splits.json`` are compared with this run's split, and a difference is refused (naming it) unless
``--allow_split_mismatch``. Step 1 (as in the paper) writes the teacher's logits into the training split as a
column (cached on disk); step 2 trains the student with
``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(votes)``. ``--online_teacher`` runs the teacher
in every training step instead. Features the teacher's run cached are reused, not encoded again.
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed

from multistill.configuration_multistill import (
    PRESETS,
    TEACHER_SHARED_FIELDS,
    MultiStillConfig,
    audio_encoder_input_name,
)
from multistill.modeling_multistill import MultiStillForEmotionClassification
from multistill.processing_multistill import MultiStillProcessor
from multistill.training.arguments import (
    DataArguments,
    DistillationArguments,
    ModelArguments,
    MultiStillTrainingArguments,
    UsageError,
    check_pooled_audio,
    parse_command_line,
    run_script,
)
from multistill.training.features import FeaturePlan
from multistill.training.trainer import DistillationSettings
from multistill.training.workflow import (
    check_teacher_split,
    count_parameters,
    data_info,
    finish_run,
    fit_model,
    lock_output_dir,
    prepare_features,
    prepare_splits,
    resolve_checkpoint,
    setup_logging,
)

logger = logging.getLogger("distill")


def parse_args(argv: list[str] | None = None):
    """Command line (or one JSON file) -> (model, data, distillation, training) arguments, each checked."""
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, DistillationArguments, MultiStillTrainingArguments), description=__doc__
    )
    parser.set_defaults(preset="multimodal_student", output_dir="outputs/student")
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, *rest = parser.parse_json_file(argv[0])
    else:
        model_args, *rest = parse_command_line(parser, argv)
    if model_args.preset == "teacher":
        raise UsageError("--preset teacher: distill.py trains students; train the teacher with train.py.")
    given = [f"--{name}" for name in ("backbones", "audio_encoder", "text_encoder") if getattr(model_args, name)]
    if given:
        raise UsageError(f"{', '.join(given)}: distill.py takes the student's encoders from the teacher.")
    teacher_model = rest[1].teacher_model
    if Path(teacher_model).is_dir():  # a Hub id is checked once loaded (load_teacher)
        try:
            config = MultiStillConfig.from_pretrained(teacher_model)
        except (OSError, ValueError) as error:
            raise UsageError(f"--teacher_model {teacher_model}: {error}") from None
        check_teacher_modalities(model_args.preset, list(config.modalities), teacher_model)
        fusion, teacher = model_args.fusion_type or config.fusion_type, f"the teacher's ({teacher_model}) "
        if model_args.audio_weight is None:  # each option checked where its value comes from
            check_pooled_audio(config.audio_weight, None, fusion, model_args.preset, source=teacher)
        if model_args.audio_layer_mix is None:
            check_pooled_audio(None, config.audio_layer_mix, fusion, model_args.preset, source=teacher)
        check_pooled_audio(model_args.audio_weight, model_args.audio_layer_mix, fusion, model_args.preset)
        if model_args.preset == "light_student":
            check_light_audio_layers(rest[1].light_audio_layers, config, teacher_model)
    return (model_args, *rest)


def check_light_audio_layers(layers: int, teacher_config: MultiStillConfig, teacher_model: str) -> None:
    """Refuse ``--light_audio_layers 0`` unless the teacher's audio encoder is Whisper (whose convolutions are
    a front end on their own) and a layer count the teacher does not have."""
    if "audio" not in teacher_config.modalities:
        return
    audio = teacher_config.audio_config
    if layers == 0 and audio_encoder_input_name(audio) != "input_features":
        raise UsageError(f"--light_audio_layers 0 needs a Whisper teacher; --teacher_model {teacher_model} has a "
                         f"{audio.model_type} audio encoder (use 1 or more).")
    if layers > audio.num_hidden_layers:
        raise UsageError(f"--light_audio_layers {layers}: the teacher --teacher_model {teacher_model} has "
                         f"{audio.num_hidden_layers} audio layers.")


def check_teacher_modalities(preset: str, teacher_modalities: list[str], teacher_model: str) -> None:
    """Refuse a student that uses a modality the teacher lacks: its encoder cannot come from the teacher (it
    would be random, or a download of the paper's encoder)."""
    wanted = list(PRESETS[preset]["modalities"])
    missing = [m for m in wanted if m not in teacher_modalities]
    if missing:
        raise UsageError(f"--preset {preset} uses {'+'.join(wanted)}, but the teacher --teacher_model {teacher_model} "
                         f"has only {'+'.join(teacher_modalities)}: the student's {' and '.join(missing)} encoder "
                         "cannot come from the teacher. Choose a preset of the teacher's modalities (e.g. "
                         f"--preset {teacher_modalities[0]}_student) or a teacher with both.")


def load_teacher(path: str) -> tuple[MultiStillForEmotionClassification, MultiStillProcessor]:
    """The trained teacher and its processor (a folder written by train.py, or a Hub id), frozen; a folder that
    cannot load (damaged weights or files) is a :class:`UsageError` naming the file."""
    try:
        teacher = MultiStillForEmotionClassification.from_pretrained(path)
        processor = MultiStillProcessor.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"--teacher_model {path}: cannot load the teacher: {error}") from None
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher, processor


def build_student(model_args: ModelArguments, teacher: MultiStillForEmotionClassification,
                  distill_args: DistillationArguments) -> MultiStillForEmotionClassification:
    """A paper student around copies of the teacher's (frozen) encoders, or the light student initialised
    from it (its encoders train), with ``--freeze_*_encoder`` applied."""
    overrides = {**model_args.freeze_overrides(), **model_args.context_overrides(), **model_args.fusion_overrides()}
    if model_args.preset == "light_student":
        return MultiStillForEmotionClassification.light_student_from_teacher(
            teacher, audio_layers=distill_args.light_audio_layers, text_layers=distill_args.light_text_layers,
            **overrides,
        )
    shared = {key: getattr(teacher.config, key) for key in TEACHER_SHARED_FIELDS}
    used = PRESETS[model_args.preset]["modalities"]
    encoders = {f"{modality}_encoder": copy.deepcopy(encoder)  # the student's own: the teacher stays as it is
                for modality, encoder in teacher.multistill.encoders().items() if modality in used}
    return MultiStillForEmotionClassification.from_encoders(preset=model_args.preset, **encoders,
                                                            **{**shared, **overrides})


def main(argv: list[str] | None = None) -> dict:
    # 1. Arguments (each checked before anything loads, the teacher folder included), logging, threads, seed
    model_args, data_args, distill_args, training_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    lock_output_dir(training_args)  # a second run into the same --output_dir is refused
    checkpoint = resolve_checkpoint(training_args)

    # 2. Data: the same split as the teacher's run (refused otherwise), balanced training split
    splits, data_report = prepare_splits(data_args, training_args)
    teacher_info = check_teacher_split(distill_args.teacher_model, data_args, splits,
                                       allow_mismatch=distill_args.allow_split_mismatch)

    # 3. Teacher and student; the student's processor is the teacher's, with the student's modalities
    teacher, teacher_processor = load_teacher(distill_args.teacher_model)
    check_teacher_modalities(model_args.preset, list(teacher.config.modalities), distill_args.teacher_model)
    student = build_student(model_args, teacher, distill_args)
    processor = MultiStillProcessor.from_model_config(
        student.config, teacher_processor.feature_extractor, teacher_processor.tokenizer
    )
    parameters = count_parameters(student)
    logger.info("Student %s: %s parameters, %s trainable (teacher: %s)", model_args.preset,
                f"{parameters['total']:,}", f"{parameters['trainable']:,}", f"{count_parameters(teacher)['total']:,}")

    # 4. Features: what each split carries (cached encoder outputs shared with the teacher's run, the teacher's
    #    logits as a column of the training split, the teacher's hidden states), then the collator
    settings = DistillationSettings(distill_args.alpha, distill_args.temperature, distill_args.hidden_weight)
    try:
        plan = FeaturePlan.decide(student.config, teacher.config, cache_features=model_args.cache_encoder_features,
                                  alpha=settings.alpha, hidden_weight=settings.hidden_weight,
                                  online_teacher=distill_args.online_teacher)
    except ValueError as error:
        raise UsageError(f"--preset {model_args.preset}: {error}") from error
    data = prepare_features(plan, splits, student, processor, model_args, data_args, training_args,
                            teacher=teacher, teacher_processor=teacher_processor)

    # 5. Train: the student learns from the votes and the teacher; --refit_on_validation retrains on training +
    #    validation rows
    online = teacher if plan.online_teacher else None
    trainer, train_result, refit_epochs = fit_model(
        student, lambda: build_student(model_args, teacher, distill_args), processor, data, training_args,
        checkpoint, distillation=settings, teacher=online)

    # 6. Test, save model + processor + metrics + plots + run_info.json + data_splits.json
    run_info = {
        "script": "distill.py", "preset": model_args.preset, **data_info(data_args, splits),
        "backbones": teacher_info.get("backbones"), "audio_encoder": student.config.audio_encoder_name,
        "text_encoder": student.config.text_encoder_name, "teacher_model": distill_args.teacher_model,
        "allow_split_mismatch": distill_args.allow_split_mismatch, "alpha": settings.alpha,
        "temperature": settings.temperature, "online_teacher": plan.online_teacher,
        "hidden_weight": settings.hidden_weight, "seed": training_args.seed, "threads": training_args.threads,
        "cached_encoder_features": bool(plan.cached), "cached_modalities": list(plan.cached),
        "feature_caching_seconds": round(data.seconds, 2), "utterances_encoded": sum(data.encoded.values()),
        "refit_epochs": refit_epochs,
    }
    if model_args.preset == "light_student":
        run_info.update(light_audio_layers=distill_args.light_audio_layers,
                        light_text_layers=distill_args.light_text_layers)
    return finish_run(trainer, data.splits, processor, run_info, data_report, train_result)


if __name__ == "__main__":
    run_script(main)
