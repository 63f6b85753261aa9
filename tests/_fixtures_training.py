"""Helpers of the training-path tests (``test_feature_cache``, ``test_features``, ``test_trainer``); their
fixtures (``tiny_teacher``, ``rows_dataset``, ``small_splits``) are in ``conftest.py``."""

from __future__ import annotations

import copy


def student_of(preset: str, teacher):
    """A student of ``teacher`` as distill.py builds it (copies of its encoders; the light student's own)."""
    from multistill import MultiStillForEmotionClassification
    from multistill.configuration_multistill import TEACHER_SHARED_FIELDS

    if preset == "light_student":
        return MultiStillForEmotionClassification.light_student_from_teacher(teacher)
    shared = {key: getattr(teacher.config, key) for key in TEACHER_SHARED_FIELDS}
    return MultiStillForEmotionClassification.from_encoders(copy.deepcopy(teacher.multistill.audio_encoder),
                                                            copy.deepcopy(teacher.multistill.text_encoder),
                                                            preset=preset, **shared)
