"""The model card's text (``multistill/tools/model_card.py``): what it says about the fusion head and the training."""

from __future__ import annotations

import json

from multistill.annotations import EMOTIONS
from multistill.configuration_multistill import MultiStillConfig
from multistill.tools.model_card import describe_test_set, fusion_text, training_lines


def test_card_describes_the_fusion_the_model_has():
    paper = MultiStillConfig()
    assert fusion_text(paper) == "3 MulT-style cross-modal attention layer(s)"
    recipe = MultiStillConfig(fusion_type="concat", classifier_hidden_size=0, context_size=4)
    text = fusion_text(recipe)
    assert "pooled branches" in text and "linear classifier" in text and "attention" not in text
    assert "every encoder layer's frame mean and standard deviation mixed by learnt weights" in text
    last = fusion_text(MultiStillConfig(fusion_type="concat", audio_layer_mix="last"))
    assert "audio: the last encoder layer's frame mean and standard deviation;" in last and "mixed" not in last
    lines = training_lines(recipe, {}, "teacher", 1000, 10)
    assert "concat fusion; 4 previous utterances as context (decayed sum)" in lines[0] and "1,000 parameters (10 trainable)" in lines[0]
    assert "no run_info.json" in lines[1] and "audio weight" not in lines[0]
    weighted = MultiStillConfig(fusion_type="concat", audio_weight=2.0)
    assert "(audio+text; concat fusion, audio weight 2; audio front end" in training_lines(weighted, {}, "teacher", 1, 1)[0]
    info = {"corpus": "kemdy19", "split": "session", "seed": 1, "audio_encoder": "/home/me/whisper",
            "text_encoder": "ngram", "backbones": "mixed", "teacher_model": "/home/me/teacher", "alpha": 0.5,
            "temperature": 2.0}
    lines = training_lines(paper, info, "multimodal_student", 1000, 10)
    assert "3 fusion layer(s)" in lines[0] and "/home/me" not in "\n".join(lines)  # no local path in a card
    assert lines[2].startswith("- distilled from") and "alpha 0.5" in lines[2]


def test_card_names_the_test_set_and_warns_when_emotions_are_missing(tmp_path):
    """A cross-corpus test with two emotions (scripts/publish_recipe.sh): the card says so, since macro-F1 there
    favours predicting the majority emotion."""
    info = {"held_out": {"test": {"sessions": ["KEMDy20:01"]}}}
    assert describe_test_set(info, tmp_path, list(EMOTIONS)) == "Test set: held-out sessions KEMDy20:01."
    assert describe_test_set({}, tmp_path, list(EMOTIONS)) == ""
    rows = [{"id": str(i), "emotion": "neutral" if i < 5 else "happy", "predicted": "neutral"} for i in range(7)]
    (tmp_path / "test_predictions.json").write_text(json.dumps(rows))
    text = describe_test_set(info, tmp_path, list(EMOTIONS))
    assert text.startswith("Test set: held-out sessions KEMDy20:01, 7 utterances (neutral 5, happy 2). No surprise, "
                           "angry, sad, disgust, fear in it: macro-F1 averages")
    rows = [{"id": str(i), "emotion": label} for i, label in enumerate(EMOTIONS)]
    (tmp_path / "test_predictions.json").write_text(json.dumps(rows))
    assert "No " not in describe_test_set({}, tmp_path, list(EMOTIONS))
    (tmp_path / "test_predictions.json").write_text("not json")
    assert describe_test_set(info, tmp_path, list(EMOTIONS)) == "Test set: held-out sessions KEMDy20:01."
