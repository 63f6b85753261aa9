"""The model card's text (``multistill/tools/model_card.py``): what it says about the fusion head and the training."""

from __future__ import annotations

from multistill.configuration_multistill import MultiStillConfig
from multistill.tools.model_card import fusion_text, training_lines


def test_card_describes_the_fusion_the_model_has():
    paper = MultiStillConfig()
    assert fusion_text(paper) == "3 MulT-style cross-modal attention layer(s)"
    recipe = MultiStillConfig(fusion_type="concat", classifier_hidden_size=0, context_size=4)
    text = fusion_text(recipe)
    assert "pooled branches" in text and "linear classifier" in text and "attention" not in text
    lines = training_lines(recipe, {}, "teacher", 1000, 10)
    assert "concat fusion; 4 previous utterances as context (decayed sum)" in lines[0] and "1,000 parameters (10 trainable)" in lines[0]
    assert "no run_info.json" in lines[1]
    info = {"corpus": "kemdy19", "split": "session", "seed": 1, "audio_encoder": "/home/me/whisper",
            "text_encoder": "ngram", "backbones": "mixed", "teacher_model": "/home/me/teacher", "alpha": 0.5,
            "temperature": 2.0}
    lines = training_lines(paper, info, "multimodal_student", 1000, 10)
    assert "3 fusion layer(s)" in lines[0] and "/home/me" not in "\n".join(lines)  # no local path in a card
    assert lines[2].startswith("- distilled from") and "alpha 0.5" in lines[2]
